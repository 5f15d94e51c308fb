"""The health actor in the node's real tree (real gateway and trading actors, ccxt over HTTP to
the local venue): GET /health and /status over real HTTP, a crashed worker and a venue ban seen
as degraded and down, and each change raised as an alert by the real alert manager."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from openapi_schema_validator import OAS31Validator

from actors.alert_manager import ALERT_MANAGER
from actors.health import HEALTH, GetHealth
from actors.names import GatewayNames
from actors.protocol import ApplyBackoff
from actors.reconciler import reconcile_now
from actors.trading import LEDGER
from gateway.classify import BackoffKind, BackoffSignal
from ironclad.config import AlertRulesConfig, TradingConfig
from messages.alerts import AlertList, ListAlerts
from messages.ledger import Unfreeze, Unfrozen
from supervisors import ask, tell
from tests.helpers_control_api import call
from tests.helpers_health import metric_samples, node_config, running_node, sample
from tests.helpers_venue import admin, install_faults, running_venue
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(90)
NAMES = GatewayNames("sim")


class Garbage:
    """A message no actor understands: receiving it is a bug, so the receiver crashes."""


def health(base: str) -> tuple[int, dict[str, Any]]:
    return call(base, "GET", "/health")


def component(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in body["components"] if c["component"] == name)


def alerts(rule: str) -> list[Any]:
    listed: AlertList = ask(ALERT_MANAGER, ListAlerts(include_resolved=True), timeout=5)
    return [v.alert for v in listed.alerts if v.alert.rule == rule]


def conforms(base: str, path: str, status: int, payload: Any) -> None:
    _, document = call(base, "GET", "/openapi.json")
    operation = document["paths"][path]["get"]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    OAS31Validator({**schema, "components": document["components"]}).validate(payload)


def test_a_started_node_is_ok_and_shows_its_tree_breakers_and_pool(tmp_path: Path) -> None:
    with running_venue(seed=3) as venue, running_node(node_config(tmp_path, venue.url)) as (
            _tree, base):
        status, body = wait_until(lambda: (r := health(base))[1]["status"] == "ok" and r,
                                  30, "node healthy (start-up reconciliation done)")
        assert status == 200 and body["reason"] == "all components ok"
        conforms(base, "/health", 200, body)
        names = {c["component"] for c in body["components"]}
        assert {"supervisor:node", "supervisor:venue:sim", "supervisor:venue:sim/pool",
                "supervisor:trading", "venue:sim/gatekeeper", "venue:sim/pool",
                "venue:sim/rate-limiter", "trading/transactions", "trading/reconciler",
                "trading/ledger", "alerts/alert-manager"} <= names

        status, view = call(base, "GET", "/status")
        assert status == 200
        conforms(base, "/status", 200, view)
        tree = view["tree"]
        assert tree["name"] == "node"
        top = {c["id"]: c for c in tree["children"]}
        assert list(top) == ["events", "alerts", "venue:sim", "trading", "health", "control-api"]
        assert all(c["state"] == "running" and c["restarts"] == 0 for c in top.values())
        pool = next(c for c in top["venue:sim"]["supervisor"]["children"] if c["id"] == "pool")
        assert [w["id"] for w in pool["supervisor"]["children"]] == [
            "dispatcher", "worker-1", "worker-2", "worker-3", "worker-4"]
        (venue_view,) = view["venues"]
        assert {b["breaker"]: b["state"] for b in venue_view["breakers"]} == {
            "sim/market_data": "closed", "sim/trading": "closed"}
        assert venue_view["pool"]["known_workers"] == 4
        assert view["trading"]["accepting"] is True
        # The health actor answers its own ask too (the same report).
        assert ask(HEALTH, GetHealth(), timeout=5).report.status.value == "ok"


def test_a_crashed_worker_degrades_its_supervisor_and_raises_an_alert(tmp_path: Path) -> None:
    with running_venue(seed=3) as venue, running_node(node_config(tmp_path, venue.url)) as (
            _tree, base):
        wait_until(lambda: health(base)[1]["status"] == "ok", 30, "node healthy")
        tell(NAMES.worker(2), Garbage())

        def degraded() -> dict[str, Any] | None:
            status, body = health(base)
            pool = component(body, "supervisor:venue:sim/pool")
            return body if status == 200 and pool["status"] == "degraded" else None

        body = wait_until(degraded, 10, "pool supervisor degraded")
        assert "restarts within the intensity period" in component(
            body, "supervisor:venue:sim/pool")["reason"]
        assert body["status"] == "degraded"

        def restarted() -> dict[str, Any] | None:
            _, view = call(base, "GET", "/status")
            venue_sup = next(c for c in view["tree"]["children"] if c["id"] == "venue:sim")
            pool = next(c for c in venue_sup["supervisor"]["children"] if c["id"] == "pool")
            worker = next(c for c in pool["supervisor"]["children"] if c["id"] == "worker-2")
            return worker if worker["restarts"] == 1 and worker["state"] == "running" else None

        worker = wait_until(restarted, 10, "worker-2 restarted")
        assert worker["last_failure"].startswith("TypeError")
        found = metric_samples(base)
        assert sample(found, "ironclad_restarts_total", supervisor="venue:sim/pool",
                      child="venue:sim/pool/worker-2") == 1
        assert sample(found, "ironclad_crashes_total", supervisor="venue:sim/pool",
                      child="venue:sim/pool/worker-2", error_type="TypeError") == 1
        assert sample(found, "ironclad_child_restarts", supervisor="venue:sim/pool",
                      child="venue:sim/pool/worker-2") == 1
        raised = wait_until(lambda: [a for a in alerts("health-degraded")
                                     if a.labels["component"] == "supervisor:venue:sim/pool"],
                            10, "health-degraded alert")
        assert "restarts within the intensity period" in raised[0].summary
        # The restart falls out of the intensity period (5 s): healthy again, alert resolved.
        wait_until(lambda: component(health(base)[1], "supervisor:venue:sim/pool")["status"]
                   == "ok", 15, "pool supervisor ok again")
        wait_until(lambda: [a.state.value for a in alerts("health-degraded")
                            if a.labels["component"] == "supervisor:venue:sim/pool"]
                   == ["resolved"], 10, "health-degraded alert resolved")


def test_a_venue_ban_takes_the_node_down_with_503(tmp_path: Path) -> None:
    with running_venue(seed=3) as venue, running_node(node_config(tmp_path, venue.url)) as (
            _tree, base):
        wait_until(lambda: health(base)[1]["status"] == "ok", 30, "node healthy")
        tell(NAMES.rate_limiter, ApplyBackoff(BackoffSignal(BackoffKind.BAN, 60.0, "test ban")))
        status, body = wait_until(lambda: (r := health(base))[0] == 503 and r, 10,
                                  "health 503")
        assert body["status"] == "down"
        limiter = component(body, "venue:sim/rate-limiter")
        assert limiter["status"] == "down" and "banned by the venue" in limiter["reason"]
        assert "venue:sim/rate-limiter: banned by the venue" in body["reason"]
        conforms(base, "/health", 503, body)
        found = metric_samples(base)
        assert sample(found, "ironclad_node_health") == 2
        assert 0 < sample(found, "ironclad_rate_limit_paused_seconds", venue="sim",
                          reason="ban") <= 60
        down = wait_until(lambda: alerts("health-down"), 10, "health-down alert")
        assert down[0].labels["component"] == "venue:sim/rate-limiter"
        assert down[0].labels["venue"] == "sim"
        assert down[0].level.value == "critical"


def test_a_ledger_freeze_degrades_the_ledger_and_raises_trading_frozen(tmp_path: Path) -> None:
    with running_venue(seed=3) as venue, running_node(node_config(tmp_path, venue.url)) as (
            _tree, base):
        wait_until(lambda: health(base)[1]["status"] == "ok", 30, "node healthy")
        venue.venue.engine.drift_balance("demo-key", "USDT", Decimal("25"))
        report = reconcile_now(20)
        assert [c.currency for c in report.discrepancies] == ["USDT"]

        def ledger_degraded() -> dict[str, Any] | None:
            ledger = component(health(base)[1], "trading/ledger")
            return ledger if ledger["status"] == "degraded" else None

        ledger = wait_until(ledger_degraded, 10, "ledger degraded")
        assert ledger["reason"].startswith("trading frozen in USDT")
        frozen = wait_until(lambda: alerts("trading-frozen"), 10, "trading-frozen alert")
        assert (frozen[0].labels["currency"], frozen[0].labels["venue"]) == ("USDT", "sim")
        found = metric_samples(base)
        assert sample(found, "ironclad_ledger_frozen_currencies") == 1
        assert sample(found, "ironclad_reconciliation_discrepancies_total", venue="sim",
                      currency="USDT") == 1
        assert isinstance(ask(LEDGER, Unfreeze(currency="USDT"), timeout=5), Unfrozen)
        wait_until(lambda: component(health(base)[1], "trading/ledger")["status"] == "ok", 10,
                   "ledger ok again")
        wait_until(lambda: [a.state.value for a in alerts("trading-frozen")] == ["resolved"],
                   10, "trading-frozen alert resolved")


def test_a_balance_drift_beyond_tolerance_raises_ledger_discrepancy_until_it_is_within(
        tmp_path: Path) -> None:
    """The reconciler tells the alert manager what it found per currency, with the tolerance:
    beyond it the ledger-discrepancy alert fires (and the currency freezes, as configured);
    a later report within tolerance — here after a restart with a wider tolerance, so the
    alert restored from the store is cleared by the new reconciler's first run — resolves it."""
    with running_venue(seed=3) as venue:
        with running_node(node_config(tmp_path, venue.url)) as (_tree, base):
            wait_until(lambda: health(base)[1]["status"] == "ok", 30, "node healthy")
            install_faults(venue.url, [{"endpoint": "fetch_balance", "fault": "balance_drift",
                                        "currency": "USDT", "amount": "25", "count": 1}])
            report = reconcile_now(20)
            usdt = next(c for c in report.currencies if c.currency == "USDT")
            assert (usdt.outcome, usdt.delta, usdt.frozen) == ("discrepancy", Decimal(-25), True)
            firing = wait_until(lambda: [a for a in alerts("ledger-discrepancy")
                                         if a.state.value == "firing"], 10,
                                "ledger-discrepancy alert")
            assert [(a.labels["venue"], a.labels["currency"]) for a in firing] == [("sim", "USDT")]
            assert "tolerance 0" in firing[0].summary
            assert wait_until(lambda: alerts("trading-frozen"), 10, "trading-frozen alert")
            assert [a.labels["currency"] for a in alerts("ledger-discrepancy")] == ["USDT"]
        wider = node_config(tmp_path, venue.url, trading=TradingConfig(
            reconcile_retry=0.5, tolerance_absolute="100"))
        with running_node(wider) as (_tree, base):
            wait_until(lambda: [a.state.value for a in alerts("ledger-discrepancy")]
                       == ["resolved"], 20, "ledger-discrepancy resolved")


def test_an_order_of_unknown_outcome_raises_order_stuck_until_it_is_known(
        tmp_path: Path) -> None:
    rules = AlertRulesConfig(breaker_open_seconds=0.0, health_for_seconds=0.0,
                             order_unknown_seconds=0.5)
    with running_venue(seed=3) as venue:
        config = node_config(tmp_path, venue.url)
        config = attrs.evolve(config, alerts=attrs.evolve(config.alerts, rules=rules))
        with running_node(config) as (_tree, base):
            wait_until(lambda: health(base)[1]["status"] == "ok", 30, "node healthy")
            # The order executes but its answer is lost, and nothing can look it up yet.
            install_faults(venue.url, [
                {"endpoint": "create_order", "fault": "lose_response", "count": 1},
                {"endpoint": "fetch_order", "fault": "error_503"},
                {"endpoint": "fetch_orders", "fault": "error_503"},
                {"endpoint": "fetch_open_orders", "fault": "error_503"},
            ])
            status, order = call(base, "POST", "/orders", {
                "client_id": "stuck-1", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
                "amount": "0.001", "price": "20000"})
            assert status == 202, order
            stuck = wait_until(lambda: [a for a in alerts("order-stuck")
                                        if a.state.value == "firing"], 20, "order-stuck firing")
            assert [a.labels["client_order_id"] for a in stuck] == [order["client_order_id"]]
            assert sample(metric_samples(base), "ironclad_orders", state="unknown") == 1
            admin(venue.url, "/_sim/faults", "DELETE")
            wait_until(lambda: call(base, "GET", f"/orders/{order['id']}")[1]["state"]
                       == "open", 30, "order known again")
            wait_until(lambda: [a.state.value for a in alerts("order-stuck")] == ["resolved"],
                       10, "order-stuck resolved")
