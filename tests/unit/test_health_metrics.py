"""The node's metrics: readings and events become a Prometheus exposition that the standard
parser reads back with the right values; registries of two nodes never collide."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from ironclad.health_rules import (
    AlertsReading,
    BreakerReading,
    HealthThresholds,
    LedgerReading,
    NodeReadings,
    PoolReading,
    RateLimitReading,
    ReconciliationReading,
    TradingReading,
    Unreadable,
    VenueReadings,
    derive_health,
)
from ironclad.metrics import NodeMetrics
from messages.supervision import (
    ChildCrashed,
    ChildKind,
    ChildRestarted,
    ChildState,
    ChildStatus,
    SupervisorGaveUp,
    SupervisorStatus,
)

BUCKETS = (0.01, 0.1, 1.0)


def readings() -> NodeReadings:
    worker = ChildStatus(id="worker-1", name="venue:sim/pool/worker-1", kind=ChildKind.WORKER,
                         state=ChildState.RUNNING, restarts=2, last_failure="RuntimeError")
    pool_sup = SupervisorStatus(id="pool", name="venue:sim/pool", strategy="one_for_one",
                                restarts_in_period=1, children=(worker,))
    tree = SupervisorStatus(id="node", name="node", strategy="one_for_one",
                            restarts_in_period=0, children=(
                                ChildStatus(id="pool", name="venue:sim/pool",
                                            kind=ChildKind.SUPERVISOR, state=ChildState.RUNNING,
                                            restarts=0, last_failure=None,
                                            supervisor=pool_sup),))
    venue = VenueReadings(
        venue="sim",
        breakers=(BreakerReading(breaker="sim/trading", category="trading", state="open",
                                 opened_count=3, calls=40, failures=25, rejected=7),),
        pool=PoolReading(queued={"trading": 2}, bounds={"trading": 64},
                         in_flight={"trading": 1}, idle_workers=3, known_workers=4,
                         expected_workers=4, submitted=50, overloaded=1,
                         latency={"fetch_ticker": (1, 2, 0, 1)}, latency_buckets=BUCKETS,
                         latency_sum={"fetch_ticker": 1.75},
                         errors={"NetworkError": 5}),
        rate_limit=RateLimitReading(paused_for=2.5, pause_reason="rate_limit", waits=9,
                                    granted=41, tokens=3.0, capacity=10.0))
    return NodeReadings(
        tree=tree, venues=(venue,),
        trading=TradingReading(accepting=True, not_accepting_reason=None,
                               by_state={"open": 2, "filled": 5}, open_transactions=2),
        reconciliation=ReconciliationReading(last_success_age=12.0, last_failure=None, runs=4,
                                             currency_differences={"match": 2, "adjust": 1},
                                             order_differences={"adopted": 1}),
        ledger=LedgerReading(frozen={"BTC": "discrepancy"}),
        alerts=AlertsReading(active={("error", "firing"): 2, ("warning", "acknowledged"): 1}))


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_scrape_time_readings_parse_back() -> None:
    metrics = NodeMetrics(readings)
    found = samples(metrics.render().decode())
    assert value(found, "ironclad_breaker_state", venue="sim", breaker="sim/trading",
                 state="open") == 1
    assert value(found, "ironclad_breaker_state", venue="sim", breaker="sim/trading",
                 state="closed") == 0
    assert value(found, "ironclad_breaker_opened_total", venue="sim", breaker="sim/trading") == 3
    assert value(found, "ironclad_pool_queue_depth", venue="sim", category="trading") == 2
    assert value(found, "ironclad_pool_queue_bound", venue="sim", category="trading") == 64
    assert value(found, "ironclad_pool_requests_total", venue="sim", result="overloaded") == 1
    # Buckets are cumulative, +Inf counts every call.
    for le, count in (("0.01", 1), ("0.1", 3), ("1.0", 3), ("+Inf", 4)):
        assert value(found, "ironclad_pool_call_latency_seconds_bucket", venue="sim",
                     method="fetch_ticker", le=le) == count
    assert value(found, "ironclad_pool_call_latency_seconds_count", venue="sim",
                 method="fetch_ticker") == 4
    assert value(found, "ironclad_pool_call_latency_seconds_sum", venue="sim",
                 method="fetch_ticker") == 1.75
    assert value(found, "ironclad_rate_limit_waits_total", venue="sim") == 9
    assert value(found, "ironclad_rate_limit_paused_seconds", venue="sim",
                 reason="rate_limit") == 2.5
    assert value(found, "ironclad_rate_limit_paused_seconds", venue="sim", reason="ban") == 0
    assert value(found, "ironclad_orders", state="filled") == 5
    assert value(found, "ironclad_reconciliation_differences", kind="currency",
                 outcome="adjust") == 1
    assert value(found, "ironclad_reconciliation_runs_total") == 4
    assert value(found, "ironclad_ledger_frozen_currencies") == 1
    assert value(found, "ironclad_alerts", level="error", state="firing") == 2
    assert value(found, "ironclad_child_restarts", supervisor="venue:sim/pool",
                 child="venue:sim/pool/worker-1") == 2
    assert value(found, "ironclad_supervisor_restarts_in_period",
                 supervisor="venue:sim/pool") == 1


def test_unreadable_components_are_flagged_not_invented() -> None:
    gone = Unreadable(reason="timeout")
    metrics = NodeMetrics(lambda: NodeReadings(
        tree=gone, venues=(VenueReadings(venue="sim", breakers=gone, pool=gone,
                                         rate_limit=gone),),
        trading=gone, reconciliation=gone, ledger=gone, alerts=gone))
    found = samples(metrics.render().decode())
    for component in ("venue:sim/gatekeeper", "venue:sim/pool", "venue:sim/rate-limiter",
                      "trading/transactions", "trading/reconciler", "trading/ledger",
                      "alerts/alert-manager", "supervisor:node"):
        assert value(found, "ironclad_component_unreadable", component=component) == 1
    assert not any(name.startswith("ironclad_breaker_state") for name, _ in found)


def test_events_feed_counters_and_health_gauges() -> None:
    metrics = NodeMetrics()
    now = time.time()
    metrics.observe_supervision(ChildCrashed("venue:sim/pool", "worker-1",
                                             "venue:sim/pool/worker-1", "RuntimeError", "boom",
                                             now))
    for _ in range(2):
        metrics.observe_supervision(ChildRestarted("venue:sim/pool", "worker-1",
                                                   "venue:sim/pool/worker-1", 1, 0.1, now))
    metrics.observe_supervision(SupervisorGaveUp("trading", 4, 5.0, "boom", now))
    metrics.observe_breaker_transition("sim", "sim/trading", "closed", "open")
    metrics.observe_discrepancy("sim", "BTC")
    report = derive_health(readings(), HealthThresholds())
    metrics.observe_health(report, [])
    found = samples(metrics.render().decode())
    assert value(found, "ironclad_restarts_total", supervisor="venue:sim/pool",
                 child="venue:sim/pool/worker-1") == 2
    assert value(found, "ironclad_crashes_total", supervisor="venue:sim/pool",
                 child="venue:sim/pool/worker-1", error_type="RuntimeError") == 1
    assert value(found, "ironclad_supervisor_gave_up_total", supervisor="trading") == 1
    assert value(found, "ironclad_breaker_transitions_total", venue="sim",
                 breaker="sim/trading", from_state="closed", to_state="open") == 1
    assert value(found, "ironclad_reconciliation_discrepancies_total", venue="sim",
                 currency="BTC") == 1
    assert value(found, "ironclad_node_health") == 2  # down: the only breaker refuses
    assert value(found, "ironclad_component_health", component="trading/ledger") == 1


def test_two_nodes_have_separate_registries() -> None:
    first, second = NodeMetrics(), NodeMetrics()
    first.observe_discrepancy("sim", "BTC")
    assert "ironclad_reconciliation_discrepancies_total{" in first.render().decode()
    assert "ironclad_reconciliation_discrepancies_total{" not in second.render().decode()
