"""The breaker against a deliberately naive reference model, over any sequence of acquires,
outcomes (in any order, many permits outstanding), venue back-offs, operator commands and clock
steps. State, counters, open times and the half-open probe bound must agree at every step."""

from __future__ import annotations

import random

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from gateway.breaker import Breaker, BreakerConfig, BreakerState, Permit, Rejected, WindowKind

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
FORCED, DISABLED = BreakerState.FORCED_OPEN, BreakerState.DISABLED


class ReferenceBreaker:
    """The specification, written for clarity: the full outcome history since the last state
    change is kept and the window is recomputed by filtering it."""

    def __init__(self, cfg: BreakerConfig, seed: int) -> None:
        self.cfg = cfg
        self.rng = random.Random(seed)
        self.state = CLOSED
        self.gen = 0
        self.now = 0.0
        self.history: list[tuple[float, bool, bool]] = []  # outcomes in this CLOSED period
        self.open_until: float | None = None
        self.level = 0
        self.half_open_since = 0.0
        self.probes_out: set[int] = set()
        self.probe_results: list[tuple[bool, bool]] = []
        self.issued = 0
        self.calls = self.failures = self.slow = self.ignored = self.rejected = self.late = 0
        self.transitions: list[tuple[BreakerState, BreakerState]] = []

    def window(self) -> list[tuple[bool, bool]]:
        if self.cfg.window_kind is WindowKind.COUNT:
            rows = self.history[-int(self.cfg.window_size):]
        else:
            rows = [r for r in self.history if r[0] > self.now - self.cfg.window_size]
        return [(f, s) for _, f, s in rows]

    def go(self, to: BreakerState, open_until: float | None = None) -> None:
        self.transitions.append((self.state, to))
        self.state = to
        self.gen += 1
        self.history = []
        self.probes_out = set()
        self.probe_results = []
        self.open_until = open_until
        if to is HALF_OPEN:
            self.half_open_since = self.now

    def trip(self) -> None:
        cap, base, growth = self.cfg.open_cap, self.cfg.open_base, self.cfg.open_growth
        duration = min(cap, base * growth ** min(self.level, 200))
        duration *= 1 - self.cfg.jitter * self.rng.random()
        self.level += 1
        self.go(OPEN, self.now + duration)

    def tick(self, now: float) -> None:
        self.now = max(self.now, now)
        if self.state is OPEN and self.now >= self.open_until:
            self.go(HALF_OPEN)
        elif self.state is HALF_OPEN:
            if self.now - self.half_open_since >= self.cfg.half_open_timeout:
                self.trip()

    def too_bad(self, rows: list[tuple[bool, bool]]) -> bool:
        n = len(rows)
        fails = sum(f for f, _ in rows)
        slows = sum(s for _, s in rows)
        return (fails / n >= self.cfg.failure_rate_threshold
                or slows / n >= self.cfg.slow_call_rate_threshold)

    def acquire(self, now: float) -> tuple[str, int | None, float | None]:
        self.tick(now)
        if self.state in (CLOSED, DISABLED):
            self.issued += 1
            return ("permit", self.gen, None)
        if self.state is HALF_OPEN and (
            len(self.probes_out) + len(self.probe_results) < self.cfg.half_open_probes
        ):
            self.issued += 1
            self.probes_out.add(self.issued)
            return ("permit", self.gen, None)
        self.rejected += 1
        return ("rejected", None, self.open_until if self.state is OPEN else None)

    def outcome(self, pid: int, gen: int, kind: str, latency: float, now: float) -> None:
        self.now = max(self.now, now)
        if kind == "ignored":
            self.ignored += 1
            if self.state is HALF_OPEN and gen == self.gen:
                self.probes_out.discard(pid)
            return
        if gen != self.gen:
            self.late += 1
            return
        failed, slow = kind == "failure", latency >= self.cfg.slow_call_duration
        self.calls += 1
        self.failures += failed
        self.slow += slow
        if self.state is CLOSED:
            self.history.append((self.now, failed, slow))
            rows = self.window()
            if len(rows) >= self.cfg.minimum_calls and self.too_bad(rows):
                self.trip()
        elif self.state is HALF_OPEN:
            self.probes_out.discard(pid)
            self.probe_results.append((failed, slow))
            if len(self.probe_results) == self.cfg.half_open_probes:
                if self.too_bad(self.probe_results):
                    self.trip()
                else:
                    if self.cfg.reset_growth_on_close:
                        self.level = 0
                    self.go(CLOSED)

    def open_for(self, seconds: float, now: float) -> None:
        self.now = max(self.now, now)
        if self.state in (FORCED, DISABLED):
            return
        if self.state is OPEN:
            self.open_until = max(self.open_until, self.now + seconds)
        else:
            self.go(OPEN, self.now + seconds)


configs = st.builds(
    BreakerConfig,
    window_kind=st.sampled_from(WindowKind),
    window_size=st.sampled_from([3, 5, 8]),
    minimum_calls=st.integers(1, 3),
    failure_rate_threshold=st.sampled_from([0.34, 0.5, 1.0]),
    slow_call_duration=st.sampled_from([1.0, 2.0]),
    slow_call_rate_threshold=st.sampled_from([0.5, 1.0]),
    half_open_probes=st.integers(1, 4),
    half_open_timeout=st.sampled_from([5.0, 60.0]),
    open_base=st.sampled_from([1.0, 3.0]),
    open_growth=st.sampled_from([1.0, 2.0, 3.0]),
    open_cap=st.sampled_from([10.0, 30.0]),
    jitter=st.sampled_from([0.0, 0.3]),
    reset_growth_on_close=st.booleans(),
)
steps = st.sampled_from([0.0, 0.0, 0.25, 1.0, 2.0, 3.0, 7.0, 40.0])
latencies = st.sampled_from([0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 5.0])


class BreakerVersusModel(RuleBasedStateMachine):
    @initialize(cfg=configs, seed=st.integers(0, 2**16))
    def start(self, cfg: BreakerConfig, seed: int) -> None:
        self.cfg = cfg
        self.real = Breaker("b", cfg, random.Random(seed))
        self.model = ReferenceBreaker(cfg, seed)
        self.events: list[tuple[BreakerState, BreakerState]] = []
        self.real.add_listener(lambda t: self.events.append((t.from_state, t.to_state)))
        self.now = 0.0
        self.outstanding: list[Permit] = []

    def _step(self, dt: float) -> float:
        self.now += dt
        return self.now

    @rule(dt=steps, n=st.integers(1, 4))
    def acquire(self, dt: float, n: int) -> None:
        now = self._step(dt)
        for _ in range(n):
            got = self.real.acquire(now)
            kind, gen, next_probe = self.model.acquire(now)
            if kind == "permit":
                assert isinstance(got, Permit), got
                assert got.generation == self.real.generation
                self.outstanding.append(got)
            else:
                assert isinstance(got, Rejected), got
                assert got.next_probe_at == next_probe

    @precondition(lambda self: self.outstanding)
    @rule(data=st.data(), kind=st.sampled_from(["success", "success", "failure", "ignored"]),
          latency=latencies, dt=steps)
    def report(self, data: st.DataObject, kind: str, latency: float, dt: float) -> None:
        index = data.draw(st.integers(0, len(self.outstanding) - 1), label="which permit")
        permit = self.outstanding.pop(index)
        now = self._step(dt)
        if kind == "success":
            self.real.on_success(permit, latency, now)
        elif kind == "failure":
            self.real.on_failure(permit, latency, now)
        else:
            self.real.on_ignored(permit, now)
        self.model.outcome(permit.id, permit.generation, kind, latency, now)

    @rule(n=st.integers(1, 10), dt=steps)
    def healthy_traffic(self, n: int, dt: float) -> None:
        """A run of fast successful calls, each reported before the next is made."""
        now = self._step(dt)
        for _ in range(n):
            got = self.real.acquire(now)
            kind, _, _ = self.model.acquire(now)
            assert isinstance(got, Permit) == (kind == "permit")
            if isinstance(got, Permit):
                self.real.on_success(got, 0.0, now)
                self.model.outcome(got.id, got.generation, "success", 0.0, now)

    @rule(seconds=st.sampled_from([0.0, 1.0, 5.0, 100.0]), dt=steps)
    def venue_backoff(self, seconds: float, dt: float) -> None:
        now = self._step(dt)
        self.real.open_for(seconds, now, "Retry-After")
        self.model.open_for(seconds, now)

    @rule(dt=steps)
    def clock_passes(self, dt: float) -> None:
        now = self._step(dt)
        self.real.advance(now)
        self.model.tick(now)

    @rule(which=st.sampled_from(["open_until", "half_open_timeout"]),
          offset=st.sampled_from([-1e-6, 0.0]))
    def jump_to_a_deadline(self, which: str, offset: float) -> None:
        """Land exactly on (or just before) the instant a time-driven transition is due."""
        ref = self.model
        if which == "open_until" and ref.state is OPEN:
            target = ref.open_until + offset
        elif which == "half_open_timeout" and ref.state is HALF_OPEN:
            target = ref.half_open_since + self.cfg.half_open_timeout + offset
        else:
            return
        if target >= self.now:
            self.now = target
            self.real.advance(target)
            self.model.tick(target)

    @rule(command=st.sampled_from(["force_open", "disable", "reset"]), dt=steps)
    def operator(self, command: str, dt: float) -> None:
        now = self._step(dt)
        getattr(self.real, command)(now)
        self.model.now = max(self.model.now, now)
        if command == "reset":
            self.model.level = 0
        self.model.go({"force_open": FORCED, "disable": DISABLED, "reset": CLOSED}[command])

    @invariant()
    def same_state_and_timing(self) -> None:
        if not hasattr(self, "real"):
            return
        assert self.real.state is self.model.state
        assert self.real.generation == self.model.gen
        assert self.real.level == self.model.level
        if self.model.state is OPEN:
            assert self.real.open_until == self.model.open_until
        assert self.events == self.model.transitions

    @invariant()
    def same_counts(self) -> None:
        if not hasattr(self, "real"):
            return
        m = self.real.metrics()  # no `now`: observing must not advance the lazy clock
        ref = self.model
        assert (m.calls, m.failures, m.slow, m.ignored, m.rejected, m.late) == (
            ref.calls, ref.failures, ref.slow, ref.ignored, ref.rejected, ref.late)
        if ref.state is CLOSED:
            rows = ref.window()
            assert m.window_calls == len(rows)
            assert m.failure_rate == (sum(f for f, _ in rows) / len(rows) if rows else 0.0)

    @invariant()
    def half_open_never_overadmits(self) -> None:
        if not hasattr(self, "real") or self.real.state is not HALF_OPEN:
            return
        outstanding_probes = [
            p for p in self.outstanding
            if p.generation == self.real.generation and p.state is HALF_OPEN
        ]
        assert len(outstanding_probes) == self.real.probes_in_flight
        assert self.real.probes_in_flight + len(self.model.probe_results) <= (
            self.cfg.half_open_probes)


BreakerVersusModel.TestCase.settings = settings(
    max_examples=300, stateful_step_count=50, deadline=None
)
TestBreakerVersusModel = BreakerVersusModel.TestCase
