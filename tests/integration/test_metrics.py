"""GET /metrics of the node's real tree against the local venue, read back by the Prometheus
parser: venue faults open a breaker (state, transitions, breaker-open alert), recovery closes
it again; pool latency histograms, rate-limit counters and orders by state follow the traffic."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.alert_manager import ALERT_MANAGER
from messages.alerts import AlertList, ListAlerts
from messages.exchange import CircuitOpen, ExchangeResult
from supervisors import ask
from tests.helpers_control_api import call
from tests.helpers_health import metric_samples, node_config, running_node, sample, ticker
from tests.helpers_venue import admin, install_faults, running_venue
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(90)
MARKET = "sim/market_data"


def refused(reply: object) -> bool:
    """The breaker answered by itself: CircuitOpen, or the cached ticker marked stale."""
    return isinstance(reply, CircuitOpen) or (isinstance(reply, ExchangeResult) and reply.stale)


def fresh(reply: object) -> bool:
    return isinstance(reply, ExchangeResult) and not reply.stale


def breaker_alerts() -> list:
    listed: AlertList = ask(ALERT_MANAGER, ListAlerts(include_resolved=True), timeout=5)
    return [v.alert for v in listed.alerts if v.alert.rule == "breaker-open"]


def test_faults_open_and_recovery_closes_a_breaker_as_the_metrics_show(tmp_path: Path) -> None:
    with running_venue(seed=4) as venue, running_node(node_config(tmp_path, venue.url)) as (
            _tree, base):
        wait_until(lambda: call(base, "GET", "/health")[1]["status"] == "ok", 30, "healthy")
        assert fresh(ticker())
        found = metric_samples(base)
        assert sample(found, "ironclad_breaker_state", venue="sim", breaker=MARKET,
                      state="closed") == 1
        assert sample(found, "ironclad_pool_call_latency_seconds_bucket", venue="sim",
                      method="fetch_ticker", le="+Inf") >= 1
        assert sample(found, "ironclad_pool_call_latency_seconds_sum", venue="sim",
                      method="fetch_ticker") > 0
        assert sample(found, "ironclad_rate_limit_granted_total", venue="sim") >= 1

        install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "error_503"}])
        wait_until(lambda: refused(ticker()), 20, "breaker open")
        found = metric_samples(base)
        assert sample(found, "ironclad_breaker_state", venue="sim", breaker=MARKET,
                      state="open") == 1
        assert sample(found, "ironclad_breaker_transitions_total", venue="sim", breaker=MARKET,
                      from_state="closed", to_state="open") == 1
        assert sample(found, "ironclad_breaker_opened_total", venue="sim", breaker=MARKET) >= 1
        assert any(name == "ironclad_pool_errors_total" and value >= 2
                   for (name, _), value in found.items())
        wait_until(lambda: [a for a in breaker_alerts() if a.state.value == "firing"], 10,
                   "breaker-open alert firing")
        wait_until(lambda: sample(metric_samples(base), "ironclad_alerts", level="error",
                                  state="firing") == 1, 10, "alerts by level")
        wait_until(lambda: sample(metric_samples(base), "ironclad_component_health",
                                  component="venue:sim/gatekeeper") == 1, 10,
                   "gatekeeper degraded")

        admin(venue.url, "/_sim/faults", "DELETE")
        wait_until(lambda: fresh(ticker()), 20, "calls flow again")
        wait_until(lambda: sample(metric_samples(base), "ironclad_breaker_state", venue="sim",
                                  breaker=MARKET, state="closed") == 1, 20, "breaker closed")
        found = metric_samples(base)
        assert sample(found, "ironclad_breaker_transitions_total", venue="sim", breaker=MARKET,
                      from_state="half_open", to_state="closed") == 1
        wait_until(lambda: breaker_alerts()[0].state.value == "resolved", 10, "alert resolved")


def test_orders_by_state_follow_the_api(tmp_path: Path) -> None:
    with running_venue(seed=4) as venue, running_node(node_config(tmp_path, venue.url)) as (
            _tree, base):
        wait_until(lambda: call(base, "GET", "/health")[1]["status"] == "ok", 30, "healthy")
        status, order = call(base, "POST", "/orders", {
            "client_id": "metrics-1", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
            "amount": "0.001", "price": "20000"})
        assert status == 202, order
        wait_until(lambda: call(base, "GET", f"/orders/{order['id']}")[1]["state"] == "open",
                   20, "order open")
        found = metric_samples(base)
        assert sample(found, "ironclad_orders", state="open") == 1
        assert sample(found, "ironclad_orders_open") == 1
        assert sample(found, "ironclad_trading_accepting") == 1
        assert sample(found, "ironclad_reconciliation_runs_total") >= 1
        assert sample(found, "ironclad_reconciliation_last_success_age_seconds") >= 0
        assert sample(found, "ironclad_ledger_frozen_currencies") == 0
