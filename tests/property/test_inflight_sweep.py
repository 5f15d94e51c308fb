"""In-flight plan with sweeps: one listing of open orders instead of many lookups, never
dropping an order (trading/inflight.py ``InflightSchedule.plan``)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.inflight import (
    SWEEP_PRIORITY,
    BackoffPolicy,
    InflightPlan,
    InflightSchedule,
    SweepCosts,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
S = timedelta(seconds=1)
BINANCE = SweepCosts(lookup=0.8, sweep=16.0)

_tracks = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 120), st.booleans()),
                   min_size=0, max_size=60)
_costs = st.builds(SweepCosts, lookup=st.sampled_from([0.5, 0.8, 1.0, 2.0]),
                   sweep=st.none() | st.sampled_from([1.0, 4.0, 16.0, 40.0]))


def _schedule(tracks: list[tuple[int, int, bool]], handed: list[int]) -> InflightSchedule:
    schedule = InflightSchedule(BackoffPolicy(initial=S, factor=2.0, maximum=30 * S))
    for k, (priority, at, immediately) in enumerate(tracks):
        schedule.track(f"o{k}", priority, T0 + at * S / 4, immediately=immediately)
    for step, cap in enumerate(handed):  # some history: lookups already handed out
        schedule.due(T0 + step * 7 * S, cap)
    return schedule


@settings(max_examples=300, deadline=None)
@given(tracks=_tracks, handed=st.lists(st.integers(0, 8), max_size=5), costs=_costs,
       cap=st.integers(0, 12), in_flight=st.booleans(), at=st.integers(0, 90))
def test_plan_never_drops_an_order_and_respects_the_cap(
        tracks: list[tuple[int, int, bool]], handed: list[int], costs: SweepCosts, cap: int,
        in_flight: bool, at: int) -> None:
    schedule = _schedule(tracks, handed)
    now = T0 + at * S
    keys = [f"o{k}" for k in range(len(tracks))]
    before = {key: schedule.entry(key) for key in keys}
    due = {key for key, e in before.items() if e.next_at <= now}
    sweepable = {key for key, e in before.items() if e.sweepable}

    plan = schedule.plan(now, cap, costs, sweep_in_flight=in_flight)

    alone, swept = set(plan.alone), set(plan.sweep)
    assert len(alone) == len(plan.alone) and len(swept) == len(plan.sweep)
    assert not alone & swept
    assert len(plan.alone) + (1 if plan.sweep else 0) <= cap
    chose_sweep = cap > 0 and not in_flight and costs.prefer_sweep(len(due & sweepable))
    assert bool(plan.sweep) == (chose_sweep and bool(sweepable))
    if plan.sweep:
        assert swept == sweepable  # the listing refreshes every plain OPEN order
    assert alone <= due
    if plan.sweep or in_flight:  # plain OPEN orders go in the listing, or wait for it
        assert not alone & sweepable
    for key in keys:
        after = schedule.entry(key)
        if key in alone | swept:
            assert after.next_at > now and after.queries == before[key].queries + 1
            assert not after.alone
        else:  # not handed out: untouched, so a due one is still due next cycle
            assert after == before[key]
    full = len(plan.alone) + (1 if plan.sweep else 0) == cap
    for key in due - alone - swept:  # a due order waits only for room or an answered sweep
        assert full or (in_flight and key in sweepable)


@settings(max_examples=200, deadline=None)
@given(tracks=_tracks, handed=st.lists(st.integers(0, 8), max_size=5),
       cap=st.integers(0, 12), at=st.integers(0, 90))
def test_without_a_sweep_cost_the_plan_is_the_plain_due_list(
        tracks: list[tuple[int, int, bool]], handed: list[int], cap: int, at: int) -> None:
    schedule = _schedule(tracks, handed)
    twin = copy.deepcopy(schedule)
    now = T0 + at * S
    plan = schedule.plan(now, cap, SweepCosts(lookup=0.8, sweep=None))
    assert plan.sweep == ()
    assert list(plan.alone) == twin.due(now, cap)


@settings(max_examples=200, deadline=None)
@given(tracks=_tracks, data=st.data(), in_flight=st.booleans())
def test_orders_missing_from_a_listing_are_looked_up_alone(
        tracks: list[tuple[int, int, bool]], data: st.DataObject, in_flight: bool) -> None:
    schedule = _schedule(tracks, [])
    now = T0 + 60 * S
    plan = schedule.plan(now, 10, SweepCosts(lookup=1.0, sweep=0.5))
    absent = data.draw(st.lists(st.sampled_from(plan.sweep), unique=True, max_size=9)
                       if plan.sweep else st.just([]))
    later = now + S / 10
    for key in absent:  # what the actor does for a swept order the listing lacks
        schedule.track(key, SWEEP_PRIORITY, later, immediately=True)
    waiting_alone = sum(1 for k in range(len(tracks)) if (e := schedule.entry(f"o{k}"))
                        and e.next_at <= later and not e.sweepable)
    nxt = schedule.plan(later, waiting_alone + 1, SweepCosts(lookup=1.0, sweep=0.5),
                        sweep_in_flight=in_flight)
    assert set(absent) <= set(nxt.alone)  # given room for every lookup that waits alone
    assert not set(absent) & set(nxt.sweep)


def test_a_thousand_resting_orders_cost_one_listing_per_cycle() -> None:
    """The profiled case: 1 000 OPEN orders, Binance costs, 0.5 s ticks, at most 10 requests
    outstanding. Once aligned by the first sweep, the schedule asks one listing per
    inflight_max instead of ~33 lookups a second."""
    schedule = InflightSchedule(BackoffPolicy(initial=S, factor=2.0, maximum=30 * S))
    for k in range(1000):
        schedule.track(f"o{k}", SWEEP_PRIORITY, T0 + k * S / 100)  # placed over 10 s
    units: list[tuple[datetime, float]] = []
    now = T0
    while now < T0 + 180 * S:
        plan = schedule.plan(now, 10, BINANCE)
        units += [(now, BINANCE.lookup)] * len(plan.alone)
        if plan.sweep:
            assert len(plan.sweep) == 1000
            units.append((now, BINANCE.sweep))
        now += S / 2
    last_minute = sum(u for t, u in units if t >= T0 + 120 * S)
    assert last_minute <= 2 * BINANCE.sweep + 10 * BINANCE.lookup
    assert schedule.statistics(now).tracked == 1000


def test_an_explicit_lookup_is_never_swept_and_a_cap_of_zero_sends_nothing() -> None:
    schedule = InflightSchedule()
    for k in range(30):
        schedule.track(f"o{k}", SWEEP_PRIORITY, T0)
    schedule.track("o0", SWEEP_PRIORITY, T0, immediately=True)
    schedule.track("unknown", 0, T0, immediately=True)
    assert schedule.plan(T0 + 5 * S, 0, BINANCE).alone == ()
    plan = schedule.plan(T0 + 5 * S, 2, BINANCE)  # 29 due OPEN orders: 23.2 units > 16
    assert plan.alone == ("unknown",) and len(plan.sweep) == 29 and "o0" not in plan.sweep
    plan = schedule.plan(T0 + 5 * S, 2, BINANCE)
    assert plan == InflightPlan(alone=("o0",))  # the rest are not due any more


def test_sweep_costs_are_validated() -> None:
    with pytest.raises(ValueError):
        SweepCosts(lookup=0, sweep=16.0)
    with pytest.raises(ValueError):
        SweepCosts(lookup=0.8, sweep=-1.0)
    assert not SweepCosts(lookup=0.8, sweep=None).prefer_sweep(10_000)
    assert SweepCosts(lookup=0.8, sweep=16.0).prefer_sweep(21)
    assert not SweepCosts(lookup=0.8, sweep=16.0).prefer_sweep(20)


def test_an_order_seen_in_a_listing_taken_for_others_counts_as_looked_up() -> None:
    schedule = InflightSchedule(BackoffPolicy(initial=S, factor=2.0, maximum=30 * S))
    schedule.track("open", SWEEP_PRIORITY, T0)
    schedule.track("unknown", 0, T0)
    schedule.track("asked", SWEEP_PRIORITY, T0, immediately=True)
    untouched = {key: schedule.entry(key) for key in ("unknown", "asked")}
    schedule.observed("open", T0 + S / 2)
    schedule.observed("unknown", T0 + S / 2)
    schedule.observed("asked", T0 + S / 2)
    schedule.observed("gone", T0 + S / 2)  # not followed: nothing to do
    entry = schedule.entry("open")
    assert (entry.next_at, entry.interval, entry.queries) == (T0 + 3 * S / 2, 2 * S, 1)
    assert {key: schedule.entry(key) for key in untouched} == untouched
    assert schedule.statistics(T0 + S / 2).queries_handed_out == 0
