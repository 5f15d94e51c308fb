"""The circuit breaker as a pure state machine: no threads, no clock reads, no I/O.

The owner (an actor, or `guard.GuardedBreaker` behind a lock) passes monotonic `now` seconds in
every call. Guarantees:
- In HALF_OPEN at most `half_open_probes` permits are outstanding-or-counted at any time, however
  many callers race; ignored outcomes free their slot.
- Each permit carries the state generation it was issued in; an outcome reported for an older
  generation (a slow call admitted while CLOSED that returns after the breaker opened) is counted
  as `late` and changes nothing else.
- Open duration is `min(cap, base * growth**level) * (1 - jitter * u)`, u from the injected RNG
  drawn once per opening, so it never exceeds the cap. `level` counts the openings since the last
  reset; a half-open trial that closes the breaker resets it (if `reset_growth_on_close`).
  `open_for` (venue back-off) neither draws jitter nor changes the level.
- Every state change is published to the listeners as a `Transition`, synchronously.
- A `now` earlier than one already seen is treated as the latest seen (time never runs back).
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from collections.abc import Callable

import attrs

from gateway.classify import Outcome
from gateway.errors import ForeignPermitError, InvalidConfigError, InvalidOutcomeError


class BreakerState(enum.Enum):
    """CLOSED admits all; OPEN rejects until the open time ends; HALF_OPEN admits a few probes.
    FORCED_OPEN rejects and DISABLED admits everything until an operator calls `reset`."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


class WindowKind(enum.Enum):
    """COUNT: the last `window_size` calls. TIME: calls finished in the last `window_size` s."""

    COUNT = "count"
    TIME = "time"


def _check(owner: str, field: str, ok: bool, message: str) -> None:
    if not ok:
        raise InvalidConfigError(owner, field, message)


def _finite_positive(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _validate_config(cfg: BreakerConfig) -> None:
    o = "BreakerConfig"
    _check(o, "window_kind", isinstance(cfg.window_kind, WindowKind), "must be a WindowKind")
    _check(o, "window_size", _finite_positive(cfg.window_size), "must be > 0")
    _check(o, "minimum_calls", isinstance(cfg.minimum_calls, int) and cfg.minimum_calls >= 1,
           "must be an int >= 1")
    if cfg.window_kind is WindowKind.COUNT:
        _check(o, "window_size", float(cfg.window_size).is_integer(),
               "must be a whole number of calls for a count window")
        _check(o, "minimum_calls", cfg.minimum_calls <= cfg.window_size,
               "must not exceed window_size of a count window (it could never trip)")
    for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
        value = getattr(cfg, name)
        _check(o, name, _finite_positive(value) and value <= 1, "must be in (0, 1]")
    _check(o, "slow_call_duration", _finite_positive(cfg.slow_call_duration), "must be > 0")
    probes = cfg.half_open_probes
    _check(o, "half_open_probes", isinstance(probes, int) and probes >= 1, "must be an int >= 1")
    _check(o, "half_open_timeout", _finite_positive(cfg.half_open_timeout), "must be > 0")
    _check(o, "open_base", _finite_positive(cfg.open_base), "must be > 0")
    _check(o, "open_growth", _finite_positive(cfg.open_growth) and cfg.open_growth >= 1,
           "must be >= 1")
    _check(o, "open_cap", _finite_positive(cfg.open_cap) and cfg.open_cap >= cfg.open_base,
           "must be >= open_base")
    _check(o, "jitter", isinstance(cfg.jitter, int | float) and 0 <= cfg.jitter < 1,
           "must be in [0, 1)")


@attrs.frozen
class BreakerConfig:
    """A breaker's tuning, validated on construction (the error names the bad field)."""

    window_kind: WindowKind = WindowKind.COUNT
    window_size: float = 20
    minimum_calls: int = 10
    failure_rate_threshold: float = 0.5
    slow_call_duration: float = 5.0
    slow_call_rate_threshold: float = 1.0
    half_open_probes: int = 3
    half_open_timeout: float = 60.0
    open_base: float = 5.0
    open_growth: float = 2.0
    open_cap: float = 300.0
    jitter: float = 0.1
    reset_growth_on_close: bool = True

    def __attrs_post_init__(self) -> None:
        _validate_config(self)

    def open_duration(self, level: int, u: float) -> float:
        """Open time for the `level`-th consecutive opening, with jitter draw `u` in [0, 1)."""
        ceiling = math.log(self.open_cap / self.open_base)
        if self.open_growth == 1 or level * math.log(self.open_growth) < ceiling:
            raw = self.open_base * self.open_growth**level
        else:
            raw = self.open_cap
        return min(self.open_cap, raw) * (1 - self.jitter * u)


@attrs.frozen
class Permit:
    """Leave to make one call; report its outcome exactly once with the same permit."""

    breaker: str
    id: int
    generation: int
    state: BreakerState
    issued_at: float


@attrs.frozen
class Rejected:
    """The breaker refused the call. `next_probe_at` is None when no time is known
    (operator forced-open, or all half-open probes are in flight)."""

    breaker: str
    state: BreakerState
    next_probe_at: float | None

    def next_probe_in(self, now: float, unknown: float = 0.0) -> float:
        """Seconds from `now` until the next probe (>= 0); `unknown` when no time is known."""
        if self.next_probe_at is None:
            return unknown
        return max(0.0, self.next_probe_at - now)


@attrs.frozen
class Transition:
    """A state change, as published to listeners."""

    breaker: str
    from_state: BreakerState
    to_state: BreakerState
    reason: str
    at: float


@attrs.frozen
class BreakerMetrics:
    """A snapshot: lifetime counters plus the current window's rates."""

    breaker: str
    state: BreakerState
    calls: int
    failures: int
    slow: int
    ignored: int
    rejected: int
    late: int
    window_calls: int
    failure_rate: float
    slow_rate: float
    open_until: float | None
    opened_count: int
    level: int


TransitionListener = Callable[[Transition], None]


class Breaker:
    """One circuit breaker. Not thread-safe by design: its owner serialises calls."""

    def __init__(self, name: str, config: BreakerConfig, rng: random.Random | None = None) -> None:
        self.name = name
        self.config = config
        self._rng = rng if rng is not None else random.Random()
        self._listeners: list[TransitionListener] = []
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._next_permit = 0
        self._now = -math.inf
        # CLOSED window of (finished_at, failed, slow) with running sums, so every outcome costs
        # O(1) amortised whatever the window size. A time window holds the calls of its span.
        self._window: deque[tuple[float, bool, bool]] = deque()
        self._window_sums = [0, 0, 0]  # calls, failures, slow
        self._open_until: float | None = None
        self._level = 0
        self._half_open_since = 0.0
        self._probes_out: set[int] = set()
        self._probe_results: list[tuple[bool, bool]] = []
        self._calls = self._failures = self._slow = 0
        self._ignored = self._rejected = self._late = self._opened = 0

    # ----- observation -------------------------------------------------------------------------

    def add_listener(self, listener: TransitionListener) -> None:
        """Call `listener(transition)` on every state change, in the caller's thread."""
        self._listeners.append(listener)

    @property
    def state(self) -> BreakerState:
        """The state as of the last call (time-driven changes happen in `advance`)."""
        return self._state

    @property
    def generation(self) -> int:
        """Bumped on every transition; permits from older generations report as `late`."""
        return self._generation

    @property
    def probes_in_flight(self) -> int:
        """Half-open permits issued and not yet reported."""
        return len(self._probes_out)

    @property
    def level(self) -> int:
        """Openings since the last reset: the exponent of the next open duration."""
        return self._level

    @property
    def open_until(self) -> float | None:
        """When an OPEN breaker lets the next probe through (None in other states)."""
        return self._open_until

    def metrics(self, now: float | None = None) -> BreakerMetrics:
        """Counters and rates; with `now`, due time-driven transitions are applied first."""
        if now is not None:
            self.advance(now)
        calls, failures, slow = self._window_counts()
        return BreakerMetrics(
            breaker=self.name, state=self._state, calls=self._calls, failures=self._failures,
            slow=self._slow, ignored=self._ignored, rejected=self._rejected, late=self._late,
            window_calls=calls, failure_rate=failures / calls if calls else 0.0,
            slow_rate=slow / calls if calls else 0.0,
            open_until=self._open_until if self._state is BreakerState.OPEN else None,
            opened_count=self._opened, level=self._level,
        )

    # ----- gate ------------------------------------------------------------------------------

    def advance(self, now: float) -> BreakerState:
        """Apply transitions that are due by time alone; returns the resulting state."""
        now = self._tick(now)
        if self._state is BreakerState.OPEN and self._open_until is not None:
            if now >= self._open_until:
                self._enter(BreakerState.HALF_OPEN, "open time elapsed", now)
        elif self._state is BreakerState.HALF_OPEN:
            if now - self._half_open_since >= self.config.half_open_timeout:
                self._open(now, "half-open trial timed out")
        return self._state

    def acquire(self, now: float) -> Permit | Rejected:
        """Ask to make a call now. A Permit must later be reported once; a Rejected must not."""
        state = self.advance(now)
        now = self._now
        if state in (BreakerState.CLOSED, BreakerState.DISABLED):
            return self._issue(now)
        if state is BreakerState.HALF_OPEN:
            if len(self._probes_out) + len(self._probe_results) < self.config.half_open_probes:
                permit = self._issue(now)
                self._probes_out.add(permit.id)
                return permit
            self._rejected += 1
            return Rejected(self.name, state, None)
        self._rejected += 1
        next_probe = self._open_until if state is BreakerState.OPEN else None
        return Rejected(self.name, state, next_probe)

    def on_success(self, permit: Permit, latency: float, now: float) -> None:
        """The call returned normally after `latency` seconds."""
        self._record(permit, latency, now, failed=False)

    def on_failure(self, permit: Permit, latency: float, now: float) -> None:
        """The call failed in a way that says the venue is unhealthy (see classify.py)."""
        self._record(permit, latency, now, failed=True)

    def record(self, permit: Permit, outcome: Outcome, latency: float, now: float) -> None:
        """Report a classified outcome (see classify.py): dispatches to on_success/on_failure/
        on_ignored, so an actor can forward a worker's classification as is."""
        if outcome is Outcome.SUCCESS:
            self.on_success(permit, latency, now)
        elif outcome is Outcome.FAILURE:
            self.on_failure(permit, latency, now)
        elif outcome is Outcome.IGNORED:
            self.on_ignored(permit, now)
        else:
            raise InvalidOutcomeError(f"not an Outcome: {outcome!r}")

    def on_ignored(self, permit: Permit, now: float) -> None:
        """The call ended in a way that says nothing about venue health; frees a probe slot."""
        self._own(permit)
        now = self._tick(now)
        self._ignored += 1
        if self._current_probe(permit):
            self._probes_out.discard(permit.id)

    # ----- operator and venue commands --------------------------------------------------------

    def open_for(self, seconds: float, now: float, reason: str) -> None:
        """Open for at least `seconds` on the venue's instruction (Retry-After, ban end).
        Does not grow the back-off level; never shortens an open period; operator states win."""
        if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0):
            raise InvalidOutcomeError(f"open_for seconds must be finite and >= 0, got {seconds!r}")
        now = self._tick(now)
        if self._state in (BreakerState.FORCED_OPEN, BreakerState.DISABLED):
            return
        until = now + seconds
        if self._state is BreakerState.OPEN and self._open_until is not None:
            self._open_until = max(self._open_until, until)
            return
        self._enter(BreakerState.OPEN, reason, now, open_until=until)

    def force_open(self, now: float, reason: str = "forced open by operator") -> None:
        """Reject every call until `reset`."""
        self._enter(BreakerState.FORCED_OPEN, reason, self._tick(now))

    def disable(self, now: float, reason: str = "disabled by operator") -> None:
        """Admit every call and never trip until `reset`; outcomes still feed the metrics."""
        self._enter(BreakerState.DISABLED, reason, self._tick(now))

    def reset(self, now: float, reason: str = "reset by operator") -> None:
        """Back to CLOSED with an empty window and back-off level 0."""
        self._level = 0
        self._enter(BreakerState.CLOSED, reason, self._tick(now))

    # ----- internals --------------------------------------------------------------------------

    def _tick(self, now: float) -> float:
        # A float in range is the common case; the general check costs more (every call).
        if not (type(now) is float and -math.inf < now < math.inf) and not (
                isinstance(now, int | float) and math.isfinite(now)):
            raise InvalidOutcomeError(f"now must be a finite number, got {now!r}")
        if now > self._now:
            self._now = float(now)
        return self._now

    def _own(self, permit: Permit) -> None:
        if not isinstance(permit, Permit) or permit.breaker != self.name:
            raise ForeignPermitError(f"permit {permit!r} was not issued by breaker {self.name!r}")

    def _issue(self, now: float) -> Permit:
        self._next_permit += 1
        return Permit(self.name, self._next_permit, self._generation, self._state, now)

    def _current_probe(self, permit: Permit) -> bool:
        return (
            self._state is BreakerState.HALF_OPEN
            and permit.generation == self._generation
            and permit.id in self._probes_out
        )

    def _record(self, permit: Permit, latency: float, now: float, failed: bool) -> None:
        self._own(permit)
        if not (type(latency) is float and 0.0 <= latency < math.inf) and not (
                isinstance(latency, int | float) and math.isfinite(latency) and latency >= 0):
            raise InvalidOutcomeError(f"latency must be finite and >= 0, got {latency!r}")
        now = self._tick(now)
        slow = latency >= self.config.slow_call_duration
        if permit.generation != self._generation:
            self._late += 1
            return
        if self._state is BreakerState.HALF_OPEN and permit.id not in self._probes_out:
            self._late += 1  # reported twice: the first report already counted
            return
        self._calls += 1
        self._failures += failed
        self._slow += slow
        if self._state is BreakerState.CLOSED:
            self._push(now, failed, slow)
            self._evaluate_closed(now)
        elif self._state is BreakerState.HALF_OPEN:
            self._probes_out.discard(permit.id)
            self._probe_results.append((failed, slow))
            self._evaluate_half_open(now)

    def _push(self, now: float, failed: bool, slow: bool) -> None:
        self._window.append((now, failed, slow))
        sums = self._window_sums
        sums[0] += 1
        sums[1] += failed
        sums[2] += slow
        if self.config.window_kind is WindowKind.COUNT and sums[0] > self.config.window_size:
            self._pop()

    def _pop(self) -> None:
        _, failed, slow = self._window.popleft()
        sums = self._window_sums
        sums[0] -= 1
        sums[1] -= failed
        sums[2] -= slow

    def _evict(self, now: float) -> None:
        horizon = now - self.config.window_size
        while self._window and self._window[0][0] <= horizon:
            self._pop()

    def _window_counts(self) -> tuple[int, int, int]:
        if self._state is BreakerState.HALF_OPEN:
            rows = self._probe_results
            return len(rows), sum(f for f, _ in rows), sum(s for _, s in rows)
        if self._state is BreakerState.CLOSED:
            if self.config.window_kind is WindowKind.TIME:
                self._evict(self._now)
            calls, failures, slow = self._window_sums
            return calls, failures, slow
        return 0, 0, 0

    def _trip_reason(self, calls: int, failures: int, slow: int) -> str | None:
        cfg = self.config
        if failures / calls >= cfg.failure_rate_threshold:
            return f"failure rate {failures}/{calls} >= {cfg.failure_rate_threshold}"
        if slow / calls >= cfg.slow_call_rate_threshold:
            return f"slow-call rate {slow}/{calls} >= {cfg.slow_call_rate_threshold}"
        return None

    def _evaluate_closed(self, now: float) -> None:
        calls, failures, slow = self._window_counts()
        if calls < self.config.minimum_calls:
            return
        reason = self._trip_reason(calls, failures, slow)
        if reason is not None:
            self._open(now, reason)

    def _evaluate_half_open(self, now: float) -> None:
        calls, failures, slow = self._window_counts()
        if calls < self.config.half_open_probes:
            return
        reason = self._trip_reason(calls, failures, slow)
        if reason is not None:
            self._open(now, "probes failed: " + reason)
        else:
            if self.config.reset_growth_on_close:
                self._level = 0
            self._enter(BreakerState.CLOSED, f"{calls} probes succeeded", now)

    def _open(self, now: float, reason: str) -> None:
        duration = self.config.open_duration(self._level, self._rng.random())
        self._level += 1
        self._enter(BreakerState.OPEN, reason, now, open_until=now + duration)

    def _enter(
        self, to_state: BreakerState, reason: str, now: float, open_until: float | None = None
    ) -> None:
        from_state = self._state
        self._state = to_state
        self._generation += 1
        self._window.clear()
        self._window_sums = [0, 0, 0]
        self._probes_out.clear()
        self._probe_results.clear()
        self._open_until = open_until
        if to_state is BreakerState.OPEN:
            self._opened += 1
        if to_state is BreakerState.HALF_OPEN:
            self._half_open_since = now
        transition = Transition(self.name, from_state, to_state, reason, now)
        for listener in list(self._listeners):
            listener(transition)
