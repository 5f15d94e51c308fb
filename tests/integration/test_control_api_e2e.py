"""The control API end to end: the node's real tree in-process (real gateway, real trading
actors, real ccxt over HTTP) against the local venue, driven over real HTTP.

Every check that matters is made against the venue's ``/_sim`` ground truth, and every answer
is validated against the schema the OpenAPI document declares for it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from beancount import loader
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from actors.control_api import CONTROL_API, ServerAddress
from ironclad.config import Config, HttpConfig, NodeConfig, TradingConfig, VenueConfig
from ironclad.http.orders import LEDGER, RECONCILER, TRANSACTIONS
from ironclad.node import build_node_spec
from supervisors import ask, start_tree
from tests.helpers_control_api import call, free_port, request, sim
from tests.helpers_venue import running_venue
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(90)

ENV = {"IRONCLAD_API_KEY": "demo-key", "IRONCLAD_API_SECRET": "demo-secret",
       "IRONCLAD_API_TOKEN": "demo-token"}
CLOSED = ("filled", "canceled", "rejected", "aborted")


def node_config(tmp_path: Path, venue_url: str) -> Config:
    from ironclad.config import Credentials

    config = Config(
        node=NodeConfig(data_dir=tmp_path / "node"),
        venue=VenueConfig(url=venue_url),
        http=HttpConfig(port=0, ask_timeout=10.0),
        trading=TradingConfig(absence_grace=1.0, inflight_initial=0.2, inflight_max=1.0,
                              inflight_tick=0.1, reconcile_retry=0.5),
    )
    return attrs.evolve(config, credentials=Credentials.from_env(config.venue, ENV))


@attrs.frozen
class Node:
    base: str
    venue_url: str
    document: dict[str, Any]
    venue: Any  # the in-process venue's handle (its engine, to drift a balance)

    def conforms(self, operation: str, status: int, payload: Any) -> None:
        for path in self.document["paths"].values():
            for op in path.values():
                if op["operationId"] == operation:
                    content = op["responses"][str(status)]["content"]["application/json"]
                    schema = {**content["schema"], "components": self.document["components"]}
                    OAS31Validator(schema).validate(payload)
                    return
        raise AssertionError(operation)

    def order_until(self, order_id: str, states: tuple[str, ...]) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status, order = call(self.base, "GET", f"/orders/{order_id}")
            assert status == 200, order
            return order if order["state"] in states else None

        return wait_until(reached, 20, f"order {order_id} in {states}")

    def venue_orders(self) -> list[dict[str, Any]]:
        return sim(self.venue_url, "/_sim/orders?account=demo-key")


def start_node(config: Config) -> tuple[Any, str]:
    tree = start_tree(build_node_spec(config))
    host, port = ask(CONTROL_API, ServerAddress(), timeout=10)
    return tree, f"http://{host}:{port}"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with running_venue(seed=5) as venue:
        tree, base = start_node(node_config(tmp_path, venue.url))
        try:
            # Orders are accepted once start-up reconciliation succeeded.
            wait_until(lambda: call(base, "GET", "/orders")[0] == 200, 20, "node serving")
            _, document = call(base, "GET", "/openapi.json")
            yield Node(base, venue.url, document, venue)
        finally:
            assert tree.stop(timeout=20)


def ready_to_trade(base: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST an order, repeating (same client_id) while the node is still reconciling."""
    def attempt() -> tuple[int, Any] | None:
        status, answer = call(base, "POST", "/orders", body)
        if status == 503 and answer["error"]["code"] == "not_accepting_orders":
            return None
        return status, answer

    return wait_until(attempt, 20, "orders accepted")


RESTING = {"client_id": "rest-1", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
           "amount": "0.001", "price": "20000"}


def test_route_names_are_the_trading_subtree_names() -> None:
    from actors import trading

    assert (TRANSACTIONS, LEDGER, RECONCILER) == (
        trading.TRANSACTIONS, trading.LEDGER, trading.RECONCILER)


def test_openapi_document_validates(node: Node) -> None:
    validate(node.document)


def test_place_is_idempotent_by_client_id_at_the_venue(node: Node) -> None:
    status, order = ready_to_trade(node.base, RESTING)
    assert status == 202, order
    node.conforms("placeOrder", 202, order)
    assert order["client_id"] == "rest-1" and order["amount"] == "0.001"
    opened = node.order_until(order["id"], ("open",))
    venue = [v for v in node.venue_orders() if v["client_order_id"] == order["client_order_id"]]
    assert len(venue) == 1 and venue[0]["status"] == "new"  # the engine's name for open
    assert opened["venue_order_id"] == str(venue[0]["id"])

    status, again = call(node.base, "POST", "/orders", RESTING)
    assert status == 200 and again["id"] == order["id"]
    node.conforms("placeOrder", 200, again)
    status, conflict = call(node.base, "POST", "/orders", {**RESTING, "price": "20001"})
    assert status == 409 and conflict["error"]["code"] == "idempotency_conflict"
    assert len(node.venue_orders()) == 1  # nothing more was placed

    status, listed = call(node.base, "GET", "/orders?state=open&symbol=BTC/USDT")
    assert status == 200 and [o["id"] for o in listed["orders"]] == [order["id"]]
    node.conforms("listOrders", 200, listed)
    status, entries = call(node.base, "GET", f"/ledger/entries?order_id={order['id']}")
    assert status == 200 and entries["entries"], entries
    node.conforms("listLedgerEntries", 200, entries)


def test_cancel_is_idempotent_and_the_venue_agrees(node: Node) -> None:
    _, order = ready_to_trade(node.base, {**RESTING, "client_id": "rest-2"})
    node.order_until(order["id"], ("open",))
    status, pending = call(node.base, "DELETE", f"/orders/{order['id']}")
    assert status in (200, 202), pending
    node.conforms("cancelOrder", status, pending)
    canceled = node.order_until(order["id"], ("canceled",))
    assert canceled["settled"] is True
    status, again = call(node.base, "DELETE", f"/orders/{order['id']}")
    assert status == 200 and again["state"] == "canceled"
    venue = [v for v in node.venue_orders() if v["client_order_id"] == order["client_order_id"]]
    assert [v["status"] for v in venue] == ["canceled"]
    status, body = call(node.base, "DELETE", "/orders/no-such-order")
    assert status == 404 and body["error"]["code"] == "order_not_found"


def test_fills_reach_the_ledger_and_balances_equal_the_venue(node: Node) -> None:
    _, bought = ready_to_trade(node.base, {"client_id": "mkt-1", "symbol": "BTC/USDT",
                                           "side": "buy", "type": "limit", "amount": "0.002",
                                           "price": "200000"})
    _, sold = ready_to_trade(node.base, {"client_id": "mkt-2", "symbol": "ETH/USDT",
                                         "side": "sell", "type": "market", "amount": "0.05"})
    filled = node.order_until(bought["id"], CLOSED)
    assert filled["state"] == "filled" and Decimal(filled["filled"]) == Decimal("0.002")
    assert node.order_until(sold["id"], CLOSED)["state"] == "filled"
    wait_until(lambda: all(call(node.base, "GET", f"/orders/{o}")[1]["settled"]
                           for o in (bought["id"], sold["id"])), 20, "settled")

    status, report = call(node.base, "POST", "/reconcile")
    assert status == 200, report
    node.conforms("reconcile", 200, report)
    assert {c["outcome"] for c in report["currencies"]} == {"match"}, report

    status, balances = call(node.base, "GET", "/balances")
    assert status == 200
    node.conforms("getBalances", 200, balances)
    wallets = sim(node.venue_url, "/_sim/balances")["demo-key"]
    for row in balances["balances"]:
        venue = wallets.get(row["currency"], {"free": "0", "locked": "0"})
        assert Decimal(row["total"]) == Decimal(venue["free"]) + Decimal(venue["locked"]), row
        assert Decimal(row["total"]) == Decimal(row["available"]) + Decimal(row["reserved"])


def _text(base: str, path: str) -> tuple[int, dict[str, str], str]:
    status, headers, raw = request(base, "GET", path)
    return status, {k.lower(): v for k, v in headers.items()}, raw.decode()


def test_the_ledger_exports_over_http_as_csv_and_checkable_beancount(node: Node) -> None:
    _, order = ready_to_trade(node.base, {"client_id": "exp-1", "symbol": "BTC/USDT",
                                          "side": "buy", "type": "limit", "amount": "0.002",
                                          "price": "200000"})
    assert node.order_until(order["id"], CLOSED)["state"] == "filled"
    wait_until(lambda: call(node.base, "GET", f"/orders/{order['id']}")[1]["settled"], 20,
               "settled")

    status, headers, text = _text(node.base, "/ledger/export?format=beancount")
    assert status == 200 and headers["content-type"].startswith("text/plain"), text[:500]
    entries, errors, _options = loader.load_string(text)
    assert errors == [] and entries, errors
    assert order["id"] in text

    for query in ("?format=csv", ""):  # CSV is the default
        status, headers, text = _text(node.base, f"/ledger/export{query}")
        assert status == 200 and headers["content-type"].startswith("text/csv"), text[:500]
        rows = list(csv.DictReader(io.StringIO(text)))
        assert any(r["order_id"] == order["id"] for r in rows), rows[:3]
        sums: dict[str, Decimal] = {}
        for row in rows:
            if row["amount"]:
                sums[row["currency"]] = sums.get(row["currency"], Decimal(0)) + Decimal(
                    row["amount"])
        assert sums and set(sums.values()) == {Decimal(0)}, sums  # double entry

    status, body = call(node.base, "GET", "/ledger/export?format=xlsx")
    assert status == 400 and body["error"]["field"] == "format", body
    node.conforms("exportLedger", 400, body)


def test_refusals_change_nothing_at_the_venue(node: Node) -> None:
    _, resting = ready_to_trade(node.base, RESTING)
    # A 202 is durable, not yet on the wire: snapshot the venue once the order reached it.
    node.order_until(resting["id"], ("open",))
    before = node.venue_orders()
    cases = [
        ({**RESTING, "client_id": "p-1", "amount": "0.0000001"}, 422, "amount"),
        ({**RESTING, "client_id": "p-2", "amount": 0.001}, 422, "amount"),
        ({**RESTING, "client_id": "p-3", "symbol": "DOGE/USDT"}, 422, "symbol"),
        ({**RESTING, "client_id": "p-4", "side": "sell", "amount": "1000",
          "price": "70000"}, 422, "amount"),
        ({**RESTING, "client_id": "p-5", "price": None}, 422, "price"),
    ]
    for body, status, field in cases:
        got, answer = call(node.base, "POST", "/orders", body)
        assert got == status and answer["error"]["field"] == field, (body, answer)
        node.conforms("placeOrder", status, answer)
    assert node.venue_orders() == before
    status, listed = call(node.base, "GET", "/orders")
    assert {o["client_id"] for o in listed["orders"]} == {"rest-1"}


def test_an_operator_unfreezes_a_currency_over_http(node: Node) -> None:
    ready_to_trade(node.base, RESTING)  # start-up reconciliation is done
    node.venue.venue.engine.drift_balance("demo-key", "USDT", Decimal("25"))
    status, report = call(node.base, "POST", "/reconcile")
    usdt = next(c for c in report["currencies"] if c["currency"] == "USDT")
    assert usdt["outcome"] == "discrepancy" and usdt["frozen"], report
    buy = {**RESTING, "client_id": "after-freeze"}
    status, refused = call(node.base, "POST", "/orders", buy)
    assert status == 409 and refused["error"]["code"] == "trading_frozen", refused

    for body, field in [({"currency": "USDT"}, "reason"), ({"reason": "checked"}, "currency"),
                        ({"currency": "USDT", "reason": "x", "venue": "sim"}, "venue"),
                        ({"currency": 5, "reason": "checked"}, "currency")]:
        status, answer = call(node.base, "POST", "/ledger/unfreeze", body)
        assert status == 422 and answer["error"]["field"] == field, (body, answer)
        node.conforms("unfreezeCurrency", 422, answer)
    assert call(node.base, "POST", "/orders", buy)[0] == 409  # still frozen: nothing changed

    unfreeze = {"currency": "USDT", "reason": "drift explained by a deposit"}
    status, unfrozen = call(node.base, "POST", "/ledger/unfreeze", unfreeze)
    assert (status, unfrozen) == (200, {"venue": "sim", "currency": "USDT"})
    node.conforms("unfreezeCurrency", 200, unfrozen)
    status, again = call(node.base, "POST", "/ledger/unfreeze", unfreeze)
    assert status == 409 and again["error"]["code"] == "not_frozen", again
    node.conforms("unfreezeCurrency", 409, again)
    _, balances = call(node.base, "GET", "/balances")
    assert next(b for b in balances["balances"] if b["currency"] == "USDT")["frozen"] is None
    _, entries = call(node.base, "GET", "/ledger/entries?currency=USDT")
    assert "drift explained by a deposit" in entries["entries"][-1]["cause"], entries

    status, order = call(node.base, "POST", "/orders", buy)
    assert status == 202 and order["client_id"] == "after-freeze", order
    node.order_until(order["id"], ("open",))


def test_no_orders_while_the_venue_cannot_be_reached(tmp_path: Path) -> None:
    """Fail closed: without start-up reconciliation, reads are served, new orders are not."""
    config = node_config(tmp_path, f"http://127.0.0.1:{free_port()}")  # nobody listens
    tree, base = start_node(config)
    try:
        status, body = call(base, "POST", "/orders", RESTING)
        assert status == 503 and body["error"]["code"] == "not_accepting_orders", body
        assert body["error"]["reason"] in ("reconciliation_pending", "reconciliation_failed")
        assert call(base, "GET", "/orders")[0] == 200
        assert call(base, "GET", "/balances")[0] == 200
    finally:
        assert tree.stop(timeout=20)
