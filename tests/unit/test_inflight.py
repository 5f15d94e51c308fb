"""In-flight schedule: backoff per order, a cap per cycle, most overdue first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.inflight import BackoffPolicy, InflightSchedule

T0 = datetime(2026, 1, 1, tzinfo=UTC)
S = timedelta(seconds=1)


def test_new_order_is_due_after_the_initial_interval_then_backs_off_to_the_cap() -> None:
    schedule = InflightSchedule(BackoffPolicy(initial=S, factor=2.0, maximum=4 * S))
    schedule.track("a", 0, T0)
    assert schedule.due(T0, 10) == []
    times = []
    now = T0
    while len(times) < 5:
        if schedule.due(now, 10) == ["a"]:
            times.append(now)
        now += S / 2
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert times[0] == T0 + S
    assert gaps == [S, 2 * S, 4 * S, 4 * S]


def test_immediately_makes_it_due_now_and_resets_backoff() -> None:
    schedule = InflightSchedule(BackoffPolicy(initial=S, maximum=60 * S))
    schedule.track("a", 2, T0)
    for k in range(1, 8):
        schedule.due(T0 + k * 100 * S, 1)
    assert schedule.entry("a").interval == 60 * S
    now = T0 + 1000 * S
    schedule.due(now, 1)
    schedule.track("a", 0, now, immediately=True)
    assert schedule.due(now, 1) == ["a"]
    assert schedule.entry("a").next_at == now + S
    assert schedule.entry("a").priority == 0


def test_cap_per_cycle_and_oldest_first() -> None:
    schedule = InflightSchedule()
    for k in range(10):
        schedule.track(f"o{k}", 2, T0 + k * S, immediately=True)
    now = T0 + 20 * S
    assert schedule.due(now, 3) == ["o0", "o1", "o2"]
    assert schedule.due(now, 3) == ["o3", "o4", "o5"]
    assert schedule.due(now, 0) == []
    assert schedule.statistics(now).overdue == 4


def test_priority_breaks_ties_then_tracking_order() -> None:
    schedule = InflightSchedule()
    schedule.track("open", 2, T0, immediately=True)
    schedule.track("unknown", 0, T0, immediately=True)
    schedule.track("cancel", 1, T0, immediately=True)
    schedule.track("open2", 2, T0, immediately=True)
    assert schedule.due(T0, 10) == ["unknown", "cancel", "open", "open2"]


def test_forget_and_reset() -> None:
    schedule = InflightSchedule()
    schedule.track("a", 0, T0, immediately=True)
    schedule.forget("a")
    schedule.forget("never-tracked")
    assert schedule.due(T0, 5) == [] and "a" not in schedule
    schedule.track("b", 0, T0)
    schedule.reset("b", T0 + 10 * S)
    assert schedule.next_due_at() == T0 + 11 * S


@pytest.mark.parametrize(
    "kwargs", [{"initial": timedelta(0)}, {"factor": 0.5}, {"maximum": timedelta(milliseconds=1)}]
)
def test_bad_policy_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)


def test_bad_arguments_are_refused() -> None:
    schedule = InflightSchedule()
    with pytest.raises(ValueError, match="now"):
        schedule.due(datetime(2026, 1, 1), 1)
    with pytest.raises(ValueError, match="max_queries"):
        schedule.due(T0, -1)
    with pytest.raises(ValueError, match="priority"):
        schedule.track("a", "high", T0)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(
    starts=st.lists(st.integers(0, 50), min_size=1, max_size=30),
    cap=st.integers(1, 5),
    ticks=st.lists(st.integers(1, 10), min_size=1, max_size=40),
)
def test_cap_holds_and_nothing_is_starved(starts: list[int], cap: int, ticks: list[int]) -> None:
    policy = BackoffPolicy(initial=S, factor=2.0, maximum=8 * S)
    schedule = InflightSchedule(policy)
    for k, start in enumerate(starts):
        schedule.track(k, k % 3, T0 + start * S, immediately=True)
    now = T0
    for tick in ticks:
        now += tick * S
        picked = schedule.due(now, cap)
        assert len(picked) <= cap
        assert len(set(picked)) == len(picked)
        for key in picked:
            assert schedule.entry(key).next_at > now
    # Enough capacity over time: every order has been handed out at least once.
    horizon = now + (len(starts) + 60) * S
    while now < horizon:
        now += S
        schedule.due(now, cap)
    assert all(schedule.entry(k).queries > 0 for k in range(len(starts)))
