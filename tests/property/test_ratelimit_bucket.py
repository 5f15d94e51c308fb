"""Properties of the account bucket over any sequence of requests, pauses and clock steps."""

from __future__ import annotations

import copy

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gateway.classify import BackoffKind, BackoffSignal
from gateway.ratelimit import AccountLimiter, Granted, LimiterConfig, PauseReason, Wait

EPS = 1e-9

configs = st.builds(
    LimiterConfig,
    capacity=st.sampled_from([1.0, 5.0, 20.0]),
    refill_per_second=st.sampled_from([0.5, 5.0, 20.0]),
    safety_margin=st.sampled_from([0.5, 0.8, 1.0]),
)
requests = st.tuples(st.just("request"), st.sampled_from([0.0, 0.01, 0.1, 0.5, 2.0]),
                     st.sampled_from([0.0, 0.2, 0.4, 1.0, 4.0]))
pauses = st.tuples(st.sampled_from(["pause", "ban"]), st.sampled_from([0.0, 0.3, 1.0]),
                   st.sampled_from([0.5, 3.0, 30.0]))


@settings(max_examples=200, deadline=None)
@given(config=configs, ops=st.lists(st.one_of(requests, pauses), max_size=80))
def test_never_grants_more_than_the_usable_allowance_and_honours_pauses(
    config: LimiterConfig, ops: list[tuple[str, float, float]]
) -> None:
    limiter = AccountLimiter(config, now=0.0)
    now = 0.0
    grants: list[tuple[float, float]] = []
    granted_after: list[int] = []  # how many pauses had been ordered before each grant
    blocked: list[tuple[float, float]] = []  # [from, until) when nothing may be granted
    for kind, dt, amount in ops:
        now += dt
        if kind == "request":
            if amount > config.usable_capacity:
                continue
            got = limiter.try_acquire(amount, now)
            if isinstance(got, Granted):
                grants.append((now, amount))
                granted_after.append(len(blocked))
            else:
                assert isinstance(got, Wait) and got.seconds > 0
        else:
            reason = PauseReason.BAN if kind == "ban" else PauseReason.RATE_LIMIT
            limiter.pause_until(now + amount, reason, now)
            blocked.append((now, now + amount))
    for (t, _), pauses_before in zip(grants, granted_after, strict=True):
        assert not any(start <= t < end for start, end in blocked[:pauses_before]), (t, blocked)
    for i, (start, _) in enumerate(grants):
        total = 0.0
        for end, cost in grants[i:]:
            total += cost
            allowance = config.usable_capacity + config.usable_rate * (end - start)
            assert total <= allowance + EPS, (start, end, total, allowance)


@settings(max_examples=200, deadline=None)
@given(config=configs, spend=st.lists(st.sampled_from([0.2, 0.5, 1.0]), max_size=30),
       cost=st.sampled_from([0.1, 0.5, 1.0]), gap=st.sampled_from([0.0, 0.05, 0.3]))
def test_wait_is_exact(config: LimiterConfig, spend: list[float], cost: float, gap: float) -> None:
    """Asking again after the advised wait succeeds; a little earlier does not."""
    limiter = AccountLimiter(config, now=0.0)
    now = 0.0
    for amount in spend:
        now += gap
        if amount <= config.usable_capacity:
            limiter.try_acquire(amount, now)
    if cost > config.usable_capacity:
        return
    got = limiter.try_acquire(cost, now)
    if isinstance(got, Wait):
        early = copy.deepcopy(limiter)
        assert isinstance(early.try_acquire(cost, now + got.seconds * 0.99 - 1e-6), Wait)
        assert isinstance(limiter.try_acquire(cost, now + got.seconds + 1e-9), Granted)


class SharedAccountBucket(RuleBasedStateMachine):
    """Several workers share one account bucket; the venue sends 429s and bans at any time."""

    @initialize(config=configs)
    def start(self, config: LimiterConfig) -> None:
        self.config = config
        self.limiter = AccountLimiter(config, now=0.0)
        self.now = 0.0
        self.grants: list[tuple[float, float]] = []
        self.paused_until = 0.0

    @rule(worker=st.integers(0, 7), dt=st.sampled_from([0.0, 0.01, 0.1, 1.0]),
          cost=st.sampled_from([0.1, 0.4, 1.0, 4.0]))
    def worker_asks(self, worker: int, dt: float, cost: float) -> None:
        self.now += dt
        if cost > self.config.usable_capacity:
            return
        got = self.limiter.try_acquire(cost, self.now)
        if isinstance(got, Granted):
            assert self.now >= self.paused_until
            self.grants.append((self.now, cost))
        elif self.now < self.paused_until:
            assert got.reason is not None
            assert got.seconds == pytest.approx(self.paused_until - self.now)

    @rule(kind=st.sampled_from(BackoffKind), seconds=st.sampled_from([0.5, 2.0, 120.0]))
    def venue_signals(self, kind: BackoffKind, seconds: float) -> None:
        self.limiter.on_signal(BackoffSignal(kind, seconds, "test"), self.now)
        self.paused_until = max(self.paused_until, self.now + seconds)

    @rule(before=st.sampled_from([1e-6, 0.05]))
    def ask_just_before_the_pause_ends(self, before: float) -> None:
        if self.paused_until - before > self.now:
            self.now = self.paused_until - before
            got = self.limiter.try_acquire(0.1, self.now)  # every config's bucket holds 0.1
            assert isinstance(got, Wait) and got.reason is not None

    @invariant()
    def tokens_within_bounds(self) -> None:
        if hasattr(self, "limiter"):
            tokens = self.limiter.statistics(self.now).tokens
            assert -EPS <= tokens <= self.config.usable_capacity + EPS

    @invariant()
    def allowance_over_every_window_ending_now(self) -> None:
        if not hasattr(self, "limiter"):
            return
        total = 0.0
        for at, cost in reversed(self.grants):
            total += cost
            allowance = self.config.usable_capacity + self.config.usable_rate * (self.now - at)
            assert total <= allowance + EPS


SharedAccountBucket.TestCase.settings = settings(
    max_examples=100, stateful_step_count=60, deadline=None
)
TestSharedAccountBucket = SharedAccountBucket.TestCase
