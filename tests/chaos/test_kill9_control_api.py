"""kill -9 of the whole node while orders stream through the control API.

Real processes: the venue (``python -m simulator``) with ambiguous faults on (create_order's
response lost after execution, 503s, latency) and the node (``python run.py``) on a data
dir. Callers POST a seeded stream of orders, retrying each with the same ``client_id`` until
they get an answer (and cancel some); a killer SIGKILLs the node at seeded moments — when the
venue has seen a seeded number of orders — and restarts it on the same data dir. After
recovery, the venue's ``/_sim`` ground truth is the judge (for each of two seeds):

- every client id has exactly one node order and at most one venue order;
- every venue order is known to the node;
- no node order is left in prepared/submitting/unknown;
- the ledger's balances equal the venue's, per currency.
"""

from __future__ import annotations

import random
import signal
import threading
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.helpers_control_api import NodeProcess, VenueProcess, call, free_port, sim
from tests.waiting import wait_until

#: Each seed is its own run: order stream, kill moments, the venue's faults and prices.
SEEDS = (20261124, 4242)
KILLS = 4
ORDERS = 48
CALLERS = 3
UNSETTLED = ("prepared", "submitting", "unknown")
_RETRY_PAUSE = 0.05

FAULT_RULES = [
    {"endpoint": "create_order", "fault": "lose_response", "probability": 0.2},
    {"endpoint": "create_order", "fault": "error_503", "probability": 0.1},
    {"endpoint": "cancel_order", "fault": "lose_response", "probability": 0.2},
    {"endpoint": "fetch_order", "fault": "error_503", "probability": 0.1},
    {"endpoint": "*", "fault": "latency", "probability": 0.3, "latency_ms": 30,
     "jitter_ms": 30},
]

#: Short protocol timings so that ambiguous orders resolve within the test's budget.
NODE_CONFIG = """
[trading]
absence_grace = 1.0
inflight_tick = 0.1
inflight_initial = 0.2
inflight_max = 1.0
reconcile_retry = 0.5
"""


def order_stream(rng: random.Random, seed: int) -> list[dict[str, Any]]:
    """Seeded orders: resting limit buys (stay open, some cancelled), crossing limits and
    market orders (fill), on BTC/USDT and ETH/USDT."""
    orders = []
    for number in range(ORDERS):
        kind = rng.choice(["rest", "rest", "cross", "market"])
        symbol = rng.choice(["BTC/USDT", "ETH/USDT"])
        amount = {"BTC/USDT": "0.001", "ETH/USDT": "0.01"}[symbol]
        far = {"BTC/USDT": "20000", "ETH/USDT": "500"}[symbol]
        high = {"BTC/USDT": "200000", "ETH/USDT": "20000"}[symbol]
        body = {"client_id": f"chaos-{seed}-{number}", "symbol": symbol, "amount": amount}
        if kind == "rest":
            body.update(side="buy", type="limit", price=far)
        elif kind == "cross":
            body.update(side="buy", type="limit", price=high)
        else:
            body.update(side="sell", type="market")
        orders.append({"body": body, "cancel": kind == "rest" and rng.random() < 0.5})
    return orders


class Cluster:
    """The venue and the (restartable) node; callers read ``node.base`` at each try."""

    def __init__(self, tmp_path: Path, seed: int) -> None:
        self.venue = VenueProcess(free_port(), seed=seed)
        sim(self.venue.url, "/_sim/faults", "POST", {"seed": seed, "rules": FAULT_RULES})
        self.data_dir = tmp_path / "node"
        self.config = tmp_path / "node.toml"
        self.config.write_text(NODE_CONFIG)
        self.port = free_port()
        self.kills = 0
        try:
            self.node = self._start()
        except BaseException:
            self.venue.kill()
            raise

    def _start(self) -> NodeProcess:
        node = NodeProcess(self.venue.url, self.data_dir, self.port,
                           extra=("--config", str(self.config), "--log-level", "WARNING"))
        try:
            node.wait_ready(30)
        except BaseException:
            node.kill()
            raise
        return node

    def restart_after_kill(self) -> None:
        assert self.node.proc.poll() is None, "the node died before its kill"
        self.node.kill()
        assert self.node.proc.returncode == -signal.SIGKILL, self.node.proc.returncode
        self.kills += 1
        self.node = self._start()

    def close(self) -> None:
        self.node.kill()
        self.venue.kill()


#: Retries the callers needed, by cause (the test checks the chaos really happened).
RETRIES: Counter[str] = Counter()
#: The last refusal a caller saw (for the failure message).
LAST: list[Any] = []


def answered(base: str, method: str, path: str, body: Any = None,
             until: float = 60.0) -> tuple[int, Any]:
    """Repeat the same request until the node gives a definitive answer (not 5xx, not a
    dropped connection): what a careful caller does with an idempotency key."""
    pause = threading.Event()
    last: Any = None

    def attempt() -> Any:
        nonlocal last
        try:
            status, payload = call(base, method, path, body, timeout=10)
        except OSError as error:  # refused (node down), reset (killed mid-request)
            RETRIES[type(error).__name__] += 1
            last = error
            pause.wait(_RETRY_PAUSE)
            return None
        if status >= 500:
            RETRIES[f"{status} {payload['error']['code']}"] += 1
            LAST[:] = [payload]
            last = (status, payload)
            pause.wait(_RETRY_PAUSE)
            return None
        return status, payload

    try:
        return wait_until(attempt, until, f"{method} {path} answered")
    except AssertionError:
        raise AssertionError(f"{method} {path} never answered; last: {last}") from None


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", SEEDS)
def test_orders_survive_repeated_kill9(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    orders = order_stream(rng, seed)
    kill_points = sorted(rng.sample(range(4, ORDERS - 4), KILLS))
    RETRIES.clear()
    LAST.clear()
    cluster = Cluster(tmp_path, seed)
    answers: dict[str, dict[str, Any]] = {}
    failures: list[BaseException] = []

    def caller(share: list[dict[str, Any]]) -> None:
        try:
            for item in share:
                body = item["body"]
                status, order = answered_via(cluster, "POST", "/orders", body)
                assert status in (200, 202), (body, status, order)
                assert order["client_id"] == body["client_id"], order
                answers[body["client_id"]] = order
                if item["cancel"]:
                    status, cancelled = answered_via(cluster, "DELETE", f"/orders/{order['id']}")
                    assert status in (200, 202), (status, cancelled)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test thread
            failures.append(error)

    threads = [threading.Thread(target=caller, args=(orders[i::CALLERS],), daemon=True)
               for i in range(CALLERS)]
    try:
        for thread in threads:
            thread.start()
        for point in kill_points:
            # A seeded moment: as soon as the venue has seen `point` orders, whatever the
            # node is doing (journaling, submitting, resolving an unknown order). Orders
            # cancelled before they were sent never reach the venue, so once every caller is
            # done the remaining kills hit the node while it settles and reconciles.
            try:
                wait_until(lambda p=point: len(venue_orders(cluster)) >= p or failures
                           or len(answers) == ORDERS, 60, f"venue saw {point} orders")
            except AssertionError as stalled:
                raise AssertionError(f"{stalled}; answered {len(answers)}, caller retries "
                                     f"{dict(RETRIES)}, last refusal {LAST[-1:]}") from None
            cluster.restart_after_kill()
        for thread in threads:
            thread.join(90)
        assert not failures, failures
        assert len(answers) == ORDERS
        check_ground_truth(cluster, answers)
        # The chaos was real: the venue lost create responses and answered 503s, and callers
        # met a dead node (refused or reset connections) while it restarted.
        stats = sim(cluster.venue.url, "/_sim/faults")["stats"]
        fired = {f"{r['endpoint']}:{r['fault']}": st["fired"]
                 for r, st in zip(FAULT_RULES, stats, strict=True)}
        print(f"seed {seed}: kills {KILLS}, faults fired {fired}, caller retries {dict(RETRIES)}")
        assert fired["create_order:lose_response"] > 0 and fired["create_order:error_503"] > 0
        # Every kill hit a live node; whether a caller then met a refused connection or the
        # restarted node's 503 (start-up reconciliation) is timing, so either counts.
        assert cluster.kills == KILLS
        assert sum(RETRIES.values()) > 0
    finally:
        cluster.close()


def answered_via(cluster: Cluster, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """``answered`` against whichever node process is current (restarts keep the port)."""
    return answered(cluster.node.base, method, path, body)


def venue_orders(cluster: Cluster) -> list[dict[str, Any]]:
    return sim(cluster.venue.url, "/_sim/orders?account=demo-key")


def check_ground_truth(cluster: Cluster, answers: dict[str, dict[str, Any]]) -> None:
    base = cluster.node.base

    def node_orders() -> list[dict[str, Any]]:
        status, listed = answered(base, "GET", "/orders?limit=10000")
        assert status == 200
        return listed["orders"]

    def settled() -> list[dict[str, Any]] | None:
        orders = node_orders()
        return None if any(o["state"] in UNSETTLED for o in orders) else orders

    # Unknown and in-flight orders resolve by the node's own schedule; a reconciliation run
    # speeds it up (it is what an operator would do after an incident).
    answered(base, "POST", "/reconcile")
    orders = wait_until(settled, 45, "no node order left in prepared/submitting/unknown")

    by_client = Counter(o["client_id"] for o in orders if o["client_id"] is not None)
    assert set(by_client) == set(answers), "every client id has a node order"
    assert all(count == 1 for count in by_client.values()), by_client
    for client_id, order in answers.items():
        assert order["id"] in {o["id"] for o in orders if o["client_id"] == client_id}

    truth = venue_orders(cluster)
    per_client_order_id = Counter(v["client_order_id"] for v in truth)
    assert all(n == 1 for n in per_client_order_id.values()), per_client_order_id
    known = {o["client_order_id"] for o in orders} | {o["venue_order_id"] for o in orders}
    for venue_order in truth:
        assert (venue_order["client_order_id"] in known or venue_order["id"] in known), (
            f"venue order unknown to the node: {venue_order}")
    placed = {o["client_order_id"]: o for o in orders}
    for venue_order in truth:
        node_order = placed.get(venue_order["client_order_id"])
        if node_order is not None:
            assert Decimal(node_order["filled"]) == Decimal(venue_order["filled"]), (
                node_order, venue_order)

    # The ledger tracked every fill itself: a fresh reconciliation finds every currency equal
    # (tolerance is 0, so any difference would be a discrepancy) and nothing was ever
    # papered over with an adjusting entry.
    status, report = answered(base, "POST", "/reconcile")
    assert status == 200, report
    assert {c["outcome"] for c in report["currencies"]} == {"match"}, report["currencies"]
    status, entries = answered(base, "GET", "/ledger/entries?limit=100000")
    assert status == 200
    assert not [e for e in entries["entries"] if e["kind"] == "adjust"], entries
    status, ledger = answered(base, "GET", "/balances")
    assert status == 200
    wallets = sim(cluster.venue.url, "/_sim/balances")["demo-key"]
    venue_totals = {c: Decimal(b["free"]) + Decimal(b["locked"]) for c, b in wallets.items()}
    ledger_totals = {b["currency"]: Decimal(b["total"]) for b in ledger["balances"]}
    for currency in set(venue_totals) | set(ledger_totals):
        assert ledger_totals.get(currency, Decimal(0)) == venue_totals.get(currency, Decimal(0)), (
            currency, ledger_totals, venue_totals)
