"""Supervision core: restart intensity, restart plans per strategy and type, backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from supervisors.core import (
    BackoffState,
    GiveUp,
    NoRestart,
    RestartPlan,
    SupervisorCore,
    add_restart,
    next_backoff,
    should_restart,
)
from supervisors.specs import BackoffPolicy, Restart, Strategy

NO_JITTER = BackoffPolicy(initial=0.05, factor=2.0, max=1.0, jitter=0.0, reset_after=30.0)


def make_core(strategy: Strategy, restarts: dict[str, Restart] | None = None,
              intensity: int = 3, period: float = 5.0) -> SupervisorCore:
    types = restarts or {c: Restart.PERMANENT for c in ("a", "b", "c", "d")}
    return SupervisorCore(strategy=strategy, restarts=types, intensity=intensity, period=period,
                          backoff=NO_JITTER, rng=random.Random(1))


class TestAddRestart:
    def test_allows_intensity_restarts_then_refuses_the_next(self) -> None:
        restarts: tuple[float, ...] = ()
        for now in (0.0, 1.0, 2.0):
            restarts, ok = add_restart(restarts, now, intensity=3, period=5.0)
            assert ok
        restarts, ok = add_restart(restarts, 3.0, intensity=3, period=5.0)
        assert not ok
        assert restarts == (0.0, 1.0, 2.0, 3.0)

    def test_old_restarts_leave_the_window(self) -> None:
        restarts = (0.0, 1.0, 2.0)
        restarts, ok = add_restart(restarts, 6.5, intensity=3, period=5.0)
        assert ok
        assert restarts == (2.0, 6.5)

    def test_restart_exactly_period_ago_still_counts(self) -> None:
        _, ok = add_restart((0.0,), 5.0, intensity=1, period=5.0)
        assert not ok

    def test_intensity_zero_refuses_the_first_restart(self) -> None:
        _, ok = add_restart((), 0.0, intensity=0, period=5.0)
        assert not ok

    @settings(max_examples=60, deadline=None)
    # Regression: a restart exactly one period after another was kept out of the window by
    # `now - t` rounding while `t + period` rounded onto it (hypothesis found it).
    @example(gaps=[1.0, 3.0, 0.46187252496626974], intensity=1, period=0.46187252496626974)
    @given(
        gaps=st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=30),
        intensity=st.integers(min_value=0, max_value=5),
        period=st.floats(min_value=0.1, max_value=10.0),
    )
    def test_never_more_than_intensity_allowed_in_any_window(
        self, gaps: list[float], intensity: int, period: float
    ) -> None:
        now, restarts, allowed = 0.0, (), []
        for gap in gaps:
            now += gap
            restarts, ok = add_restart(restarts, now, intensity=intensity, period=period)
            if not ok:
                break
            allowed.append(now)
        for t in allowed:
            assert sum(1 for u in allowed if t <= u <= t + period) <= intensity


class TestRestartTypes:
    @pytest.mark.parametrize(
        ("restart", "abnormal", "expected"),
        [
            (Restart.PERMANENT, True, True),
            (Restart.PERMANENT, False, True),
            (Restart.TRANSIENT, True, True),
            (Restart.TRANSIENT, False, False),
            (Restart.TEMPORARY, True, False),
            (Restart.TEMPORARY, False, False),
        ],
    )
    def test_restart_table(self, restart: Restart, abnormal: bool, expected: bool) -> None:
        assert should_restart(restart, abnormal=abnormal) is expected

    def test_temporary_exit_is_not_counted_against_intensity(self) -> None:
        core = make_core(Strategy.ONE_FOR_ONE, {"a": Restart.TEMPORARY}, intensity=0)
        assert core.child_exited("a", abnormal=True, active=set(), now=0.0) == NoRestart()
        assert core.restarts == ()


class TestStrategies:
    ALL = {"a", "b", "c", "d"}

    def test_one_for_one_restarts_only_the_failed_child(self) -> None:
        plan = make_core(Strategy.ONE_FOR_ONE).child_exited(
            "b", abnormal=True, active=self.ALL - {"b"}, now=0.0)
        assert isinstance(plan, RestartPlan)
        assert (plan.stop, plan.start, plan.dropped) == ((), ("b",), ())

    def test_one_for_all_stops_others_in_reverse_and_restarts_all_in_order(self) -> None:
        plan = make_core(Strategy.ONE_FOR_ALL).child_exited(
            "b", abnormal=True, active=self.ALL - {"b"}, now=0.0)
        assert isinstance(plan, RestartPlan)
        assert plan.stop == ("d", "c", "a")
        assert plan.start == ("a", "b", "c", "d")

    def test_rest_for_one_restarts_the_failed_and_later_children(self) -> None:
        plan = make_core(Strategy.REST_FOR_ONE).child_exited(
            "b", abnormal=True, active=self.ALL - {"b"}, now=0.0)
        assert isinstance(plan, RestartPlan)
        assert plan.stop == ("d", "c")
        assert plan.start == ("b", "c", "d")

    def test_siblings_that_are_not_active_are_left_alone(self) -> None:
        plan = make_core(Strategy.ONE_FOR_ALL).child_exited(
            "a", abnormal=True, active={"c"}, now=0.0)
        assert isinstance(plan, RestartPlan)
        assert plan.stop == ("c",)
        assert plan.start == ("a", "c")

    def test_temporary_siblings_are_stopped_and_dropped(self) -> None:
        types = {"a": Restart.PERMANENT, "b": Restart.TEMPORARY, "c": Restart.TRANSIENT}
        plan = make_core(Strategy.ONE_FOR_ALL, types).child_exited(
            "a", abnormal=True, active={"b", "c"}, now=0.0)
        assert isinstance(plan, RestartPlan)
        assert plan.stop == ("c", "b")
        assert plan.dropped == ("b",)
        assert plan.start == ("a", "c")

    def test_transient_normal_exit_is_not_restarted(self) -> None:
        core = make_core(Strategy.ONE_FOR_ALL, {"a": Restart.TRANSIENT, "b": Restart.PERMANENT})
        assert core.child_exited("a", abnormal=False, active={"b"}, now=0.0) == NoRestart()

    def test_permanent_normal_exit_is_restarted(self) -> None:
        plan = make_core(Strategy.ONE_FOR_ONE).child_exited("a", abnormal=False, active=set(),
                                                            now=0.0)
        assert isinstance(plan, RestartPlan)

    def test_gives_up_when_intensity_is_exceeded_and_counts_one_per_crash(self) -> None:
        core = make_core(Strategy.ONE_FOR_ALL, intensity=2, period=10.0)
        for now in (0.0, 1.0):
            assert isinstance(core.child_exited("a", abnormal=True, active=self.ALL, now=now),
                              RestartPlan)
        assert core.child_exited("c", abnormal=True, active=self.ALL, now=2.0) == GiveUp(3)

    def test_an_unrecoverable_failure_gives_up_at_once_whatever_the_intensity(self) -> None:
        for restart in Restart:
            core = make_core(Strategy.ONE_FOR_ONE, {"a": restart}, intensity=100)
            decision = core.child_exited("a", abnormal=True, active=set(), now=0.0,
                                         unrecoverable=True)
            assert decision == GiveUp(0, unrecoverable=True)
            assert core.restarts_in_period(0.0) == 0

    def test_restarts_in_period_forgets_old_restarts(self) -> None:
        core = make_core(Strategy.ONE_FOR_ONE, period=5.0)
        core.child_exited("a", abnormal=True, active=set(), now=0.0)
        assert core.restarts_in_period(4.0) == 1
        assert core.restarts_in_period(5.1) == 0


class TestBackoff:
    def test_grows_exponentially_and_is_capped(self) -> None:
        state, delays = BackoffState(), []
        for i in range(8):
            delay, state = next_backoff(NO_JITTER, state, float(i), random.Random(0))
            delays.append(delay)
        assert delays[:5] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8])
        assert delays[5:] == [1.0, 1.0, 1.0]

    def test_resets_after_a_quiet_period(self) -> None:
        state = BackoffState()
        for i in range(4):
            _, state = next_backoff(NO_JITTER, state, float(i), random.Random(0))
        delay, state = next_backoff(NO_JITTER, state, 3.0 + 30.0, random.Random(0))
        assert delay == pytest.approx(0.05)
        assert state.attempt == 1

    def test_no_reset_just_before_the_quiet_period(self) -> None:
        state = BackoffState(attempt=3, last_crash_at=0.0)
        delay, _ = next_backoff(NO_JITTER, state, 29.9, random.Random(0))
        assert delay == pytest.approx(0.4)

    @settings(max_examples=50, deadline=None)
    @given(seed=st.integers(0, 2**32), attempt=st.integers(0, 20))
    def test_jitter_stays_in_bounds_and_is_reproducible(self, seed: int, attempt: int) -> None:
        policy = BackoffPolicy(initial=0.1, factor=2.0, max=3.0, jitter=0.25)
        state = BackoffState(attempt=attempt, last_crash_at=0.0)
        delay, _ = next_backoff(policy, state, 1.0, random.Random(seed))
        again, _ = next_backoff(policy, state, 1.0, random.Random(seed))
        base = min(3.0, 0.1 * 2.0**attempt)
        assert delay == again
        assert 0.75 * base - 1e-12 <= delay <= min(3.0, 1.25 * base) + 1e-12

    def test_each_child_has_its_own_backoff(self) -> None:
        core = make_core(Strategy.ONE_FOR_ONE, intensity=100, period=100.0)
        delays_a = [core.child_exited("a", abnormal=True, active=set(), now=float(i)).delay
                    for i in range(3)]
        first_b = core.child_exited("b", abnormal=True, active=set(), now=3.0).delay
        assert delays_a == pytest.approx([0.05, 0.1, 0.2])
        assert first_b == pytest.approx(0.05)
