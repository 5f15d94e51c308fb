"""The supervisor's pure core: restart intensity, restart plans per strategy, backoff.

No threads and no clock reads: callers pass `now` (monotonic seconds) and a seeded RNG, so every
decision is reproducible and testable to the millisecond (STYLE.md #1, #4).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence

import attrs

from supervisors.specs import BackoffPolicy, Restart, Strategy


def add_restart(
    restarts: tuple[float, ...], now: float, *, intensity: int, period: float
) -> tuple[tuple[float, ...], bool]:
    """Record a restart at `now`; return the restarts still inside `period` and whether allowed.

    As OTP's add_restart: at most `intensity` restarts within any `period` seconds; the one that
    makes it `intensity + 1` is refused (so intensity 0 refuses the first restart).
    """
    # `t + period >= now`, not `now - t <= period`: the two round differently at the edge,
    # and the window is "the period that starts at each restart".
    kept = tuple(t for t in (*restarts, now) if t + period >= now)
    return kept, len(kept) <= intensity


@attrs.frozen(slots=True)
class BackoffState:
    """Per-child backoff memory: how many restarts in a row, and when the last crash was."""

    attempt: int = 0
    last_crash_at: float | None = None


def next_backoff(
    policy: BackoffPolicy, state: BackoffState, now: float, rng: random.Random
) -> tuple[float, BackoffState]:
    """Return the delay before the next restart and the updated state.

    The exponent resets when the previous crash is at least `reset_after` ago (a quiet period).
    The delay is initial * factor**attempt, scaled by a uniform jitter in [1-j, 1+j], capped at max.
    """
    attempt = state.attempt
    if state.last_crash_at is not None and now - state.last_crash_at >= policy.reset_after:
        attempt = 0
    base = min(policy.max, policy.initial * policy.factor**attempt)
    jitter = rng.uniform(-policy.jitter, policy.jitter) if policy.jitter else 0.0
    delay = min(policy.max, max(0.0, base * (1.0 + jitter)))
    return delay, BackoffState(attempt=attempt + 1, last_crash_at=now)


@attrs.frozen(slots=True)
class RestartPlan:
    """Stop `stop` (reverse start order), then after `delay` start `start` (start order).

    `dropped` are temporary siblings that were stopped and are not restarted.
    """

    stop: tuple[str, ...]
    start: tuple[str, ...]
    dropped: tuple[str, ...]
    delay: float


@attrs.frozen(slots=True)
class NoRestart:
    """The exited child stays stopped (temporary, or transient that exited normally)."""


@attrs.frozen(slots=True)
class GiveUp:
    """Restart intensity exceeded, or the child failed unrecoverably: the supervisor stops all
    children and fails."""

    restarts_in_period: int
    unrecoverable: bool = False


Decision = RestartPlan | NoRestart | GiveUp


def should_restart(restart: Restart, *, abnormal: bool) -> bool:
    """OTP restart types: permanent always, transient only after a crash, temporary never."""
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return abnormal
    return False


def affected_siblings(strategy: Strategy, order: Sequence[str], failed: str) -> tuple[str, ...]:
    """Siblings (not `failed`) that restart together with `failed`, in start order."""
    if strategy is Strategy.ONE_FOR_ONE:
        return ()
    if strategy is Strategy.ONE_FOR_ALL:
        return tuple(c for c in order if c != failed)
    index = order.index(failed)
    return tuple(order[index + 1 :])


class SupervisorCore:
    """Restart decisions for one supervisor instance; state is restart timestamps and backoffs.

    `active` passed to `child_exited` is the set of siblings currently running or waiting to be
    restarted; only those are stopped/restarted with the failed child.
    """

    def __init__(
        self,
        *,
        strategy: Strategy,
        restarts: dict[str, Restart],
        intensity: int,
        period: float,
        backoff: BackoffPolicy,
        rng: random.Random,
    ) -> None:
        self.strategy = strategy
        self.order = tuple(restarts)
        self.restart_types = dict(restarts)
        self.intensity = intensity
        self.period = period
        self.backoff = backoff
        self.rng = rng
        self.restarts: tuple[float, ...] = ()
        self.backoffs: dict[str, BackoffState] = {c: BackoffState() for c in self.order}

    def restarts_in_period(self, now: float) -> int:
        """How many restarts of this supervisor still count against its intensity at `now`."""
        return sum(1 for t in self.restarts if now - t <= self.period)

    def child_exited(
        self, child: str, *, abnormal: bool, active: Collection[str], now: float,
        unrecoverable: bool = False,
    ) -> Decision:
        """Decide what to do after `child` exited (abnormally or not) at `now`; a child that
        failed `unrecoverable` is never restarted: the supervisor gives up at once."""
        if unrecoverable:
            return GiveUp(restarts_in_period=self.restarts_in_period(now), unrecoverable=True)
        if not should_restart(self.restart_types[child], abnormal=abnormal):
            return NoRestart()
        kept, allowed = add_restart(
            self.restarts, now, intensity=self.intensity, period=self.period
        )
        self.restarts = kept
        if not allowed:
            return GiveUp(restarts_in_period=len(kept))
        delay, self.backoffs[child] = next_backoff(
            self.backoff, self.backoffs[child], now, self.rng
        )
        siblings = tuple(
            s for s in affected_siblings(self.strategy, self.order, child) if s in active
        )
        dropped = tuple(s for s in siblings if self.restart_types[s] is Restart.TEMPORARY)
        restarted = {child, *(s for s in siblings if s not in dropped)}
        return RestartPlan(
            stop=tuple(reversed(siblings)),
            start=tuple(c for c in self.order if c in restarted),
            dropped=dropped,
            delay=delay,
        )
