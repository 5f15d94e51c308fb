"""Health derivation for any readings: the overall status is the worst that counts, nothing
unreadable passes for healthy, making a reading worse never makes the node look better, and the
tracker reports exactly the status changes (checked against a reference model)."""

from __future__ import annotations

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ironclad.health_rules import (
    AlertsReading,
    BreakerReading,
    HealthThresholds,
    HealthTracker,
    LedgerReading,
    NodeReadings,
    PoolReading,
    RateLimitReading,
    ReconciliationReading,
    Status,
    TradingReading,
    Unreadable,
    VenueReadings,
    derive_health,
    worst,
)
from messages.supervision import ChildKind, ChildState, ChildStatus, SupervisorStatus

STATES = ("closed", "open", "half_open", "forced_open", "disabled")
T = HealthThresholds()

unreadable = st.builds(Unreadable, reason=st.sampled_from(["timeout", "restarting"]))


def _or_unreadable(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(strategy, strategy, strategy, unreadable)


breaker_sets = st.tuples(st.sampled_from(STATES), st.sampled_from(STATES)).map(
    lambda s: (BreakerReading(breaker="sim/market_data", category="market_data", state=s[0]),
               BreakerReading(breaker="sim/trading", category="trading", state=s[1])))


@st.composite
def pools(draw: st.DrawFn) -> PoolReading:
    expected = draw(st.integers(1, 4))
    known = draw(st.integers(0, expected))
    return PoolReading(
        queued={"market_data": draw(st.integers(0, 10)), "trading": draw(st.integers(0, 10))},
        bounds={"market_data": 10, "trading": 10}, in_flight={"market_data": 0, "trading": 0},
        idle_workers=draw(st.integers(0, known)), known_workers=known,
        expected_workers=expected)


limits = st.one_of(
    st.just(RateLimitReading(paused_for=None, pause_reason=None)),
    st.builds(RateLimitReading, paused_for=st.floats(0, 100),
              pause_reason=st.sampled_from(["rate_limit", "ban"])))
tradings = st.builds(TradingReading, accepting=st.booleans(),
                     not_accepting_reason=st.none() | st.just("pending"),
                     overdue=st.integers(0, 3))
reconciliations = st.builds(ReconciliationReading,
                            last_success_age=st.none() | st.floats(0, 1000),
                            last_failure=st.none() | st.just("venue unavailable"))
ledgers = st.builds(LedgerReading,
                    frozen=st.dictionaries(st.sampled_from(["BTC", "USDT"]), st.just("why")))
alert_readings = st.builds(AlertsReading, active=st.just({}))


@st.composite
def trees(draw: st.DrawFn) -> SupervisorStatus:
    children = tuple(
        ChildStatus(id=name, name=name, kind=ChildKind.WORKER,
                    state=draw(st.sampled_from(list(ChildState))),
                    restarts=draw(st.integers(0, 3)), last_failure=None)
        for name in ("events", "health", "control-api"))
    return SupervisorStatus(id="node", name="node", strategy="one_for_one",
                            restarts_in_period=draw(st.integers(0, 3)), children=children)


@st.composite
def node_readings(draw: st.DrawFn) -> NodeReadings:
    venue = VenueReadings(venue="sim", breakers=draw(_or_unreadable(breaker_sets)),
                          pool=draw(_or_unreadable(pools())),
                          rate_limit=draw(_or_unreadable(limits)))
    return NodeReadings(
        tree=draw(_or_unreadable(trees())), venues=(venue,),
        trading=draw(st.none() | _or_unreadable(tradings)),
        reconciliation=draw(st.none() | _or_unreadable(reconciliations)),
        ledger=draw(st.none() | _or_unreadable(ledgers)),
        alerts=draw(st.none() | _or_unreadable(alert_readings)))


@settings(max_examples=200, deadline=None)
@given(node_readings())
def test_overall_is_the_worst_that_counts(readings: NodeReadings) -> None:
    report = derive_health(readings, T)
    def counted(c) -> Status:
        return c.status if c.critical else min(c.status, Status.DEGRADED, key=lambda s: s.rank)

    assert report.status is worst(counted(c) for c in report.components)
    assert (report.status is Status.OK) == all(c.status is Status.OK for c in report.components)
    for c in report.components:
        assert c.reason, c
        if report.status is not Status.OK and counted(c) is report.status:
            assert f"{c.component}: {c.reason}" in report.reason


@settings(max_examples=200, deadline=None)
@given(node_readings())
def test_nothing_unreadable_passes_for_healthy(readings: NodeReadings) -> None:
    report = derive_health(readings, T)
    venue = readings.venues[0]
    expected_down = {
        "venue:sim/gatekeeper": isinstance(venue.breakers, Unreadable),
        "venue:sim/pool": isinstance(venue.pool, Unreadable),
        "venue:sim/rate-limiter": isinstance(venue.rate_limit, Unreadable),
        "trading/transactions": isinstance(readings.trading, Unreadable),
        "trading/reconciler": isinstance(readings.reconciliation, Unreadable),
        "trading/ledger": isinstance(readings.ledger, Unreadable),
        "supervisor:node": isinstance(readings.tree, Unreadable),
    }
    for name, unread in expected_down.items():
        if unread:
            component = report.component(name)
            assert component is not None and component.status is Status.DOWN


_PARTS = ("tree", "breakers", "pool", "rate_limit", "trading", "reconciliation", "ledger")


@settings(max_examples=200, deadline=None)
@given(node_readings(), st.sampled_from(_PARTS))
def test_losing_a_component_never_makes_the_node_look_better(readings: NodeReadings,
                                                            part: str) -> None:
    before = derive_health(readings, T)
    gone = Unreadable(reason="lost")
    if part in ("breakers", "pool", "rate_limit"):
        worse = attrs.evolve(readings, venues=(attrs.evolve(readings.venues[0], **{part: gone}),))
    elif part != "tree" and getattr(readings, part) is None:
        return  # a part the config leaves out
    else:
        worse = attrs.evolve(readings, **{part: gone})
    after = derive_health(worse, T)
    assert after.status.rank >= before.status.rank
    assert after.status is Status.DOWN


class TrackerMachine(RuleBasedStateMachine):
    """Feed the tracker reports; it must announce exactly the status changes."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker = HealthTracker()
        self.model: dict[str, Status] = {}
        self.last_changes: list = []
        self.expected: list[tuple[str, Status]] = []

    @rule(readings=node_readings())
    def poll(self, readings: NodeReadings) -> None:
        report = derive_health(readings, T)
        self.expected = [
            (c.component, c.status) for c in report.components
            if self.model.get(c.component, Status.OK) is not c.status]
        self.last_changes = self.tracker.update(report)
        self.model = {c.component: c.status for c in report.components}

    @invariant()
    def announces_exactly_the_changes(self) -> None:
        assert [(c.component, c.status) for c in self.last_changes] == self.expected
        for change in self.last_changes:
            assert change.previous is not change.status

    @invariant()
    def remembers_the_last_report(self) -> None:
        assert dict(self.tracker.statuses) == self.model


TrackerMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=15,
                                            deadline=None)
test_tracker_announces_exactly_the_changes = TrackerMachine.TestCase


@given(st.lists(st.sampled_from(list(Status))))
def test_worst_is_the_maximum_rank(statuses: list[Status]) -> None:
    result = worst(statuses)
    assert all(result.rank >= s.rank for s in statuses)
    assert result in statuses or (not statuses and result is Status.OK)
