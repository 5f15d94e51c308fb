"""Health rules, one at a time: what each reading makes of its component and of the node."""

from __future__ import annotations

import attrs
import pytest

from ironclad.config import ConfigError, load_config
from ironclad.health_rules import (
    AlertsReading,
    BreakerReading,
    HealthReport,
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

T = HealthThresholds()


def child(name: str, state: ChildState = ChildState.RUNNING, restarts: int = 0,
          failure: str | None = None, supervisor: SupervisorStatus | None = None
          ) -> ChildStatus:
    kind = ChildKind.SUPERVISOR if supervisor is not None else ChildKind.WORKER
    return ChildStatus(id=name.rsplit("/", 1)[-1], name=name, kind=kind, state=state,
                       restarts=restarts, last_failure=failure, supervisor=supervisor)


def tree(*children: ChildStatus, restarts: int = 0) -> SupervisorStatus:
    return SupervisorStatus(id="node", name="node", strategy="one_for_one",
                            restarts_in_period=restarts, children=children)


def breakers(market: str = "closed", trading: str = "closed") -> tuple[BreakerReading, ...]:
    return (BreakerReading(breaker="sim/market_data", category="market_data", state=market),
            BreakerReading(breaker="sim/trading", category="trading", state=trading))


def pool(**changes: object) -> PoolReading:
    base = PoolReading(queued={"market_data": 0, "trading": 0},
                       bounds={"market_data": 10, "trading": 10},
                       in_flight={"market_data": 0, "trading": 0}, idle_workers=4,
                       known_workers=4, expected_workers=4)
    return attrs.evolve(base, **changes)


def limit(paused_for: float | None = None, reason: str | None = None) -> RateLimitReading:
    return RateLimitReading(paused_for=paused_for, pause_reason=reason)


def venue(**changes: object) -> VenueReadings:
    base = VenueReadings(venue="sim", breakers=breakers(), pool=pool(), rate_limit=limit())
    return attrs.evolve(base, **changes)


def healthy(**changes: object) -> NodeReadings:
    base = NodeReadings(
        tree=tree(child("events"), child("health")),
        venues=(venue(),),
        trading=TradingReading(accepting=True, not_accepting_reason=None),
        reconciliation=ReconciliationReading(last_success_age=5.0, last_failure=None),
        ledger=LedgerReading(frozen={}),
        alerts=AlertsReading(active={}),
    )
    return attrs.evolve(base, **changes)


def status_of(report: HealthReport, component: str) -> Status:
    found = report.component(component)
    assert found is not None, [c.component for c in report.components]
    return found.status


def test_a_healthy_node_is_ok_everywhere() -> None:
    report = derive_health(healthy(), T)
    assert report.status is Status.OK and report.reason == "all components ok"
    assert {c.status for c in report.components} == {Status.OK}


def test_worst_orders_the_statuses() -> None:
    assert worst([]) is Status.OK
    assert worst([Status.OK, Status.DOWN, Status.DEGRADED]) is Status.DOWN


@pytest.mark.parametrize(("market", "trading", "expected"), [
    ("open", "closed", Status.DEGRADED),
    ("closed", "half_open", Status.DEGRADED),
    ("closed", "forced_open", Status.DEGRADED),
    ("open", "open", Status.DOWN),
    ("closed", "closed", Status.OK),
])
def test_breakers(market: str, trading: str, expected: Status) -> None:
    report = derive_health(healthy(venues=(venue(breakers=breakers(market, trading)),)), T)
    assert status_of(report, "venue:sim/gatekeeper") is expected
    assert report.status is expected
    if expected is not Status.OK:
        assert "sim/market_data" in report.reason or "sim/trading" in report.reason


def test_an_open_per_method_breaker_alone_degrades_but_never_downs() -> None:
    method = BreakerReading(breaker="sim/trading/create_order", category="trading",
                            state="open", open_for=3.0)
    report = derive_health(healthy(venues=(venue(breakers=(*breakers(), method)),)), T)
    gatekeeper = report.component("venue:sim/gatekeeper")
    assert gatekeeper is not None and gatekeeper.status is Status.DEGRADED
    assert "sim/trading/create_order open, next probe in 3.0s" in gatekeeper.reason


def test_pool_workers_and_queues() -> None:
    def pool_status(reading: PoolReading) -> Status:
        return status_of(derive_health(healthy(venues=(venue(pool=reading),)), T),
                         "venue:sim/pool")

    assert pool_status(pool(known_workers=0, idle_workers=0)) is Status.DOWN
    assert pool_status(pool(known_workers=3)) is Status.DEGRADED
    assert pool_status(pool(queued={"market_data": 8, "trading": 0})) is Status.DEGRADED
    assert pool_status(pool(queued={"market_data": 7, "trading": 0})) is Status.OK


def test_rate_limit_pause_degrades_and_a_ban_downs() -> None:
    def limiter(reading: RateLimitReading) -> Status:
        return status_of(derive_health(healthy(venues=(venue(rate_limit=reading),)), T),
                         "venue:sim/rate-limiter")

    assert limiter(limit(4.0, "rate_limit")) is Status.DEGRADED
    assert limiter(limit(60.0, "ban")) is Status.DOWN
    assert limiter(limit(0.0, "rate_limit")) is Status.OK  # the pause just ended


def test_supervision_restarting_stopped_and_restarts_in_period() -> None:
    pool_sup = SupervisorStatus(id="pool", name="venue:sim/pool", strategy="one_for_one",
                                restarts_in_period=0,
                                children=(child("venue:sim/pool/worker-1", ChildState.RESTARTING,
                                                restarts=2, failure="RuntimeError: boom"),))
    report = derive_health(healthy(tree=tree(child("venue:sim/pool", supervisor=pool_sup))), T)
    component = report.component("supervisor:venue:sim/pool")
    assert component is not None and component.status is Status.DEGRADED
    assert "worker-1 is restarting (last failure: RuntimeError: boom)" in component.reason
    assert status_of(report, "supervisor:node") is Status.OK

    report = derive_health(healthy(tree=tree(child("events"), restarts=2)), T)
    assert status_of(report, "supervisor:node") is Status.DEGRADED
    relaxed = attrs.evolve(T, restarts_degraded=0)
    assert derive_health(healthy(tree=tree(child("events"), restarts=2)), relaxed).status \
        is Status.OK


def test_trading_not_accepting_and_journal_lag() -> None:
    report = derive_health(healthy(trading=TradingReading(
        accepting=False, not_accepting_reason="start-up reconciliation pending")), T)
    assert status_of(report, "trading/transactions") is Status.DEGRADED
    assert "start-up reconciliation pending" in report.reason
    lagging = TradingReading(accepting=True, not_accepting_reason=None, overdue=3,
                             oldest_overdue_age=42.0)
    report = derive_health(healthy(trading=lagging), T)
    assert "journal lag: 3 in-flight orders overdue for a lookup, oldest for 42s" in report.reason


def test_reconciliation_age() -> None:
    def recon(age: float | None, failure: str | None = None) -> HealthReport:
        return derive_health(healthy(reconciliation=ReconciliationReading(
            last_success_age=age, last_failure=failure)), T)

    assert recon(10.0).status is Status.OK
    old = recon(T.reconciliation_max_age + 1, "venue unavailable")
    assert old.status is Status.DEGRADED and "last failure: venue unavailable" in old.reason
    assert recon(None).status is Status.DEGRADED


def test_ledger_freezes() -> None:
    report = derive_health(healthy(ledger=LedgerReading(frozen={"BTC": "discrepancy"})), T)
    assert status_of(report, "trading/ledger") is Status.DEGRADED
    assert "trading frozen in BTC (discrepancy)" in report.reason


def test_an_unreadable_component_is_down_with_its_reason() -> None:
    gone = Unreadable(reason="venue:sim/gatekeeper did not answer in time")
    report = derive_health(healthy(venues=(venue(breakers=gone),)), T)
    assert report.status is Status.DOWN
    assert "did not answer in time" in report.reason
    report = derive_health(healthy(tree=Unreadable(reason="root busy")), T)
    assert status_of(report, "supervisor:node") is Status.DOWN


def test_non_critical_components_make_the_node_at_most_degraded() -> None:
    report = derive_health(healthy(alerts=Unreadable(reason="restarting")), T)
    assert status_of(report, "alerts/alert-manager") is Status.DOWN
    assert report.status is Status.DEGRADED
    alerts_tree = SupervisorStatus(id="alerts", name="alerts", strategy="one_for_one",
                                   restarts_in_period=3, children=())
    report = derive_health(healthy(tree=tree(child("alerts", supervisor=alerts_tree))), T)
    assert status_of(report, "supervisor:alerts") is Status.DEGRADED
    assert report.status is Status.DEGRADED


def test_parts_left_out_by_config_are_not_components() -> None:
    report = derive_health(NodeReadings(tree=tree()), T)
    assert [c.component for c in report.components] == ["supervisor:node"]


def test_tracker_reports_changes_only() -> None:
    tracker = HealthTracker()
    assert tracker.update(derive_health(healthy(), T)) == []
    degraded = derive_health(healthy(ledger=LedgerReading(frozen={"BTC": "x"})), T)
    changes = tracker.update(degraded)
    assert [(c.component, c.status, c.previous) for c in changes] == [
        ("trading/ledger", Status.DEGRADED, Status.OK)]
    assert tracker.update(degraded) == []
    back = tracker.update(derive_health(healthy(), T))
    assert [(c.component, c.status) for c in back] == [("trading/ledger", Status.OK)]


def test_tracker_reports_a_component_first_seen_unhealthy() -> None:
    tracker = HealthTracker()
    changes = tracker.update(derive_health(healthy(ledger=Unreadable(reason="x")), T))
    assert [(c.component, c.status, c.previous) for c in changes] == [
        ("trading/ledger", Status.DOWN, None)]


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match="queue_degraded_ratio"):
        HealthThresholds(queue_degraded_ratio=0)
    with pytest.raises(ValueError, match="reconciliation_max_age"):
        HealthThresholds(reconciliation_max_age=-1)


def test_health_config_section(tmp_path) -> None:
    path = tmp_path / "node.toml"
    path.write_text("[health]\npoll_interval = 0.5\nqueue_degraded_ratio = 0.5\n")
    config = load_config(path, env={})
    assert config.health.poll_interval == 0.5 and config.health.queue_degraded_ratio == 0.5
    path.write_text("[health]\npoll_interval = 0\n")
    with pytest.raises(ConfigError, match="health.poll_interval"):
        load_config(path, env={})
    path.write_text("[health]\nqueue_degraded_ratio = 2\n")
    with pytest.raises(ConfigError, match="health.queue_degraded_ratio"):
        load_config(path, env={})
