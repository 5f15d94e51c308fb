"""End to end with real processes: the venue (``python -m simulator``) and the node
(``python run.py --alert-url json://...``) in processes of their own, a real HTTP webhook
receiver in the test.

Faults injected through the venue's ``/_sim/faults`` make the node's reconciliation calls
fail; they travel in the read bulkhead (account reads never delay orders), so the
market-data breaker opens and, once it stayed open ``breaker_open_seconds``, exactly one
notification for the breaker-open alert reaches the webhook within the configured delay and
no more while the fault lasts (the breaker keeps re-opening). The alert is acknowledged over
the API; the venue recovers, the breaker closes and a resolved notification follows.
``/metrics`` parses with the Prometheus parser and shows the transitions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers_alerts import WebhookReceiver
from tests.helpers_control_api import NodeProcess, VenueProcess, call, free_port, request, sim
from tests.waiting import wait_until

pytestmark = [pytest.mark.timeout(150), pytest.mark.slow]

BREAKER = "sim/market_data"
BREAKER_OPEN_SECONDS = 1.0
GROUP_WAIT = 1.0
EVALUATION = 0.2
#: The configured delay from the breaker opening to the notification, plus slack for the
#: health of a shared 2-core machine (polls, channel actor, HTTP).
NOTIFY_WITHIN = BREAKER_OPEN_SECONDS + GROUP_WAIT + 2 * EVALUATION + 3.0

NODE_CONFIG = f"""
[breaker]
window_size = 4.0
minimum_calls = 2
half_open_probes = 1
open_base = 1.0
open_cap = 2.0
jitter = 0.0

[trading]
reconcile_interval = 0.3
reconcile_retry = 0.3

[health]
poll_interval = 0.5

[alerts]
group_wait = {GROUP_WAIT}
group_interval = 1.0
repeat_interval = 3600.0
evaluation_interval = {EVALUATION}
throttle = 0.0
retry_initial = 0.2

[alerts.rules]
breaker_open_seconds = {BREAKER_OPEN_SECONDS}
"""

FAULTS = {"seed": 11, "rules": [
    {"endpoint": "fetch_balance", "fault": "error_503"},
    {"endpoint": "fetch_open_orders", "fault": "error_503"},
]}


def metrics(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, headers, raw = request(base, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain"), raw
    found = {}
    for family in text_string_to_metric_families(raw.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def breaker_state(base: str) -> str | None:
    found = metrics(base)
    for state in ("closed", "open", "half_open"):
        key = ("ironclad_breaker_state",
               frozenset({"venue": "sim", "breaker": BREAKER, "state": state}.items()))
        if found.get(key) == 1:
            return state
    return None


def transitions(base: str, from_state: str, to_state: str) -> float:
    key = ("ironclad_breaker_transitions_total", frozenset(
        {"venue": "sim", "breaker": BREAKER, "from_state": from_state,
         "to_state": to_state}.items()))
    return metrics(base).get(key, 0.0)


def breaker_items(receiver: WebhookReceiver, reason: str) -> list[str]:
    """Lines of the received messages that notify the market-data breaker's alert for ``reason``
    (new, resolved, ...); a throttled message may carry several notifications."""
    return [line for body in list(receiver.bodies)
            for line in str(body.get("message", "")).splitlines()
            if line.startswith(f"{reason}: ") and f"breaker {BREAKER} " in line]


class Cluster:
    def __init__(self, tmp_path: Path) -> None:
        self.receiver = WebhookReceiver().start()
        self.venue = VenueProcess(free_port(), seed=11)
        config = tmp_path / "node.toml"
        config.write_text(NODE_CONFIG)
        self.node = NodeProcess(self.venue.url, tmp_path / "node", free_port(), extra=(
            "--config", str(config), "--alert-url", self.receiver.url,
            "--log-level", "WARNING"))
        self.base = self.node.base

    def close(self) -> None:
        try:
            assert self.node.terminate() == 0, "".join(self.node.lines[-40:])
        finally:
            self.venue.kill()
            self.receiver.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Any:
    cluster = Cluster(tmp_path)
    try:
        cluster.node.wait_ready(40)
        yield cluster
    finally:
        cluster.close()


def test_breaker_alert_is_notified_once_acked_and_resolved(cluster: Cluster) -> None:
    base, receiver = cluster.base, cluster.receiver
    wait_until(lambda: call(base, "GET", "/health")[1]["status"] == "ok", 40, "node healthy")
    assert breaker_state(base) == "closed"

    sim(cluster.venue.url, "/_sim/faults", "POST", FAULTS)
    wait_until(lambda: breaker_state(base) == "open", 20, "market-data breaker open")
    opened_by = time.monotonic()  # the breaker opened at or before this instant

    wait_until(lambda: breaker_items(receiver, "new"), NOTIFY_WITHIN + 5,
               "breaker-open notification at the webhook")
    delay = time.monotonic() - opened_by
    assert delay <= NOTIFY_WITHIN, f"notified {delay:.1f}s after the breaker opened"

    # The fault lasts: the breaker probes and re-opens, and nobody is notified again.
    reopened = transitions(base, "half_open", "open")
    wait_until(lambda: transitions(base, "half_open", "open") >= reopened + 2, 20,
               "the breaker re-opened twice more")
    assert len(breaker_items(receiver, "new")) == 1, receiver.bodies
    assert breaker_items(receiver, "repeat") == []

    status, listed = call(base, "GET", "/alerts")
    assert status == 200
    (alert,) = [v["alert"] for v in listed["alerts"] if v["alert"]["rule"] == "breaker-open"]
    assert (alert["labels"]["venue"], alert["labels"]["breaker"]) == ("sim", BREAKER)
    assert alert["state"] == "firing" and alert["notifications"] == 1
    status, acked = call(base, "POST", f"/alerts/{alert['id']}/ack", {"by": "e2e-operator"})
    assert status == 200, acked
    assert acked["state"] == "acknowledged" and acked["acked_by"] == "e2e-operator"

    sim(cluster.venue.url, "/_sim/faults", "DELETE")
    wait_until(lambda: breaker_state(base) == "closed", 20, "market-data breaker closed")
    wait_until(lambda: breaker_items(receiver, "resolved"), 15,
               "resolved notification at the webhook")
    assert len(breaker_items(receiver, "new")) == 1
    assert len(breaker_items(receiver, "resolved")) == 1

    status, listed = call(base, "GET", "/alerts?include_resolved=true")
    (alert,) = [v for v in listed["alerts"] if v["alert"]["rule"] == "breaker-open"]
    assert alert["alert"]["state"] == "resolved"
    assert any(d["status"] == "delivered" for d in alert["deliveries"]), alert["deliveries"]

    found = metrics(base)
    assert transitions(base, "closed", "open") == 1
    assert transitions(base, "half_open", "closed") == 1
    assert found[("ironclad_breaker_opened_total",
                  frozenset({"venue": "sim", "breaker": BREAKER}.items()))] >= 3
    for state in ("firing", "acknowledged"):
        assert found.get(("ironclad_alerts", frozenset(
            {"level": "error", "state": state}.items())), 0) == 0
