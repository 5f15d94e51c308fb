"""The HTTP layer of the control API: routing, strict input, error mapping, OpenAPI.

The trading actors here are a TEST DOUBLE of the orders conversation (``messages.orders`` /
``messages.ledger``): small in-memory actors that answer each command with the reply or typed
error the test wants, so every HTTP mapping can be driven. The end-to-end behaviour against
the real trading actors and the venue is in ``test_control_api_e2e.py``.
The HTTP side is real: the control-api actor, uvicorn, and requests over TCP.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pykka
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from actors.control_api import (
    CONTROL_API,
    ControlApi,
    ServerAddress,
    _ServerEnded,
    control_api_part,
)
from ironclad.config import Config, HttpConfig, NodeConfig
from messages.ledger import (
    Balances,
    BalanceView,
    GetBalances,
    LedgerEntries,
    LedgerEntryView,
    ListLedgerEntries,
    PostingView,
)
from messages.orders import (
    CancelOrder,
    CurrencyDifference,
    GetOrder,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidOrder,
    ListOrders,
    NotAcceptingOrders,
    NotAcceptingReason,
    OrderList,
    OrderNotFound,
    OrderPlaced,
    OrderState,
    OrderView,
    PlaceOrder,
    Reconcile,
    ReconciliationView,
    TradingFrozen,
    VenueUnavailable,
)
from supervisors import ChildSpec, Strategy, SupervisedActor, SupervisorSpec, ask, start_tree
from tests.helpers_control_api import call, request

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _view(command: PlaceOrder, number: int, state: OrderState = OrderState.PREPARED
          ) -> OrderView:
    return OrderView(
        id=f"tx{number}", client_id=command.client_id, client_order_id=f"ic-{number}",
        venue="sim", symbol=command.symbol, side=command.side, type=command.type,
        time_in_force=command.time_in_force, amount=command.amount, price=command.price,
        state=state, filled=Decimal(0), average_price=None, created_at=NOW, updated_at=NOW,
        venue_order_id=None, fills=(), cancel_requested=False, settled=False, external=False,
        reason=None)


class FakeTransactions(SupervisedActor):
    """Test double of ``trading/transactions``: idempotency by client_id, and refusals chosen
    by symbol (``FROZEN/USDT``, ``BAD/USDT``) or amount (> 100: insufficient funds)."""

    def __init__(self, controls: dict[str, Any]) -> None:
        super().__init__()
        self.controls = controls
        self.orders: dict[str, OrderView] = {}
        self.commands: list[Any] = controls.setdefault("commands", [])

    def on_receive(self, message: Any) -> Any:
        self.commands.append(message)
        gate = self.controls.get("gate")
        if gate is not None:
            gate.wait(10)
        if self.controls.get("crash"):
            raise RuntimeError("test double told to crash")
        if isinstance(message, PlaceOrder):
            if self.controls.get("not_accepting"):
                return NotAcceptingOrders(reason=NotAcceptingReason.RECONCILIATION_PENDING,
                                          message="start-up reconciliation is running")
            if message.symbol == "FROZEN/USDT":
                return TradingFrozen(currency="FROZEN", reason="discrepancy 5 > 1")
            if message.symbol == "BAD/USDT":
                return InvalidOrder(field="amount", code="amount_precision",
                                    message="0.0001 is not a multiple of 0.001")
            if message.amount > 100:
                return InsufficientFunds(currency="USDT", needed=message.amount,
                                         available=Decimal(100))
            for view in self.orders.values():
                if view.client_id == message.client_id:
                    same = (view.symbol, view.side, view.type, view.amount, view.price) == (
                        message.symbol, message.side, message.type, message.amount,
                        message.price)
                    if not same:
                        return IdempotencyConflict(client_id=message.client_id,
                                                   order_id=view.id, message="other content")
                    return OrderPlaced(order=view, created=False)
            view = _view(message, len(self.orders) + 1)
            self.orders[view.id] = view
            return OrderPlaced(order=view, created=True)
        if isinstance(message, GetOrder):
            return self.orders.get(message.id) or OrderNotFound(id=message.id, client_id=None)
        if isinstance(message, CancelOrder):
            view = self.orders.get(message.id)
            if view is None:
                return OrderNotFound(id=message.id, client_id=None)
            if view.state is OrderState.PREPARED:
                view = attrs.evolve(view, cancel_requested=True, state=OrderState.OPEN)
            else:
                view = attrs.evolve(view, state=OrderState.CANCELED)
            self.orders[view.id] = view
            return view
        if isinstance(message, ListOrders):
            if self.controls.get("odd_reply"):
                return "not a reply of this conversation"
            found = [v for v in self.orders.values()
                     if (message.state is None or v.state is message.state)
                     and (message.symbol is None or v.symbol == message.symbol)]
            return OrderList(orders=tuple(reversed(found))[: message.limit])
        raise TypeError(f"unexpected {message!r}")


class FakeLedger(SupervisedActor):
    """Test double of ``trading/ledger``."""

    def __init__(self, controls: dict[str, Any]) -> None:
        super().__init__()
        self.commands: list[Any] = controls.setdefault("ledger_commands", [])

    def on_receive(self, message: Any) -> Any:
        self.commands.append(message)
        if isinstance(message, GetBalances):
            return Balances(balances=(BalanceView(
                venue="sim", currency="USDT", total=Decimal("100.5"),
                available=Decimal("90.5"), reserved=Decimal("10"), frozen=None),))
        if isinstance(message, ListLedgerEntries):
            if message.currency == "NOPE":
                return InvalidOrder(field="currency", code="unknown_currency",
                                    message="no such currency")
            return LedgerEntries(entries=(LedgerEntryView(
                id="e1", kind="reserve", time=NOW, cause="prepare tx1", order_id="tx1",
                postings=(PostingView(account="assets:sim:USDT:available", currency="USDT",
                                      amount=Decimal("-10")),
                          PostingView(account="assets:sim:USDT:reserved", currency="USDT",
                                      amount=Decimal("10")))),))
        raise TypeError(f"unexpected {message!r}")


class FakeReconciler(SupervisedActor):
    """Test double of ``trading/reconciler``: like the real one, it answers Reconcile with a
    future it completes later (here: on its next message); VenueUnavailable when told."""

    def __init__(self, controls: dict[str, Any]) -> None:
        super().__init__()
        self.controls = controls
        self.waiters: list[pykka.ThreadingFuture[Any]] = []

    def on_receive(self, message: Any) -> Any:
        if message == "finish":
            for waiter in self.waiters:
                waiter.set(self._report())
            self.waiters.clear()
            return None
        assert isinstance(message, Reconcile)
        waiter: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        self.waiters.append(waiter)
        self.actor_ref.tell("finish")
        return waiter

    def _report(self) -> Any:
        if self.controls.get("venue_down"):
            return VenueUnavailable(message="circuit open")
        return ReconciliationView(
            run_id="r1", venue="sim", started_at=NOW, finished_at=NOW, open_orders_seen=0,
            trades_seen=0, currencies=(CurrencyDifference(
                currency="USDT", outcome="match", ledger_total=Decimal(1),
                venue_total=Decimal(1), delta=Decimal(0), frozen=False, reason="equal"),),
            orders=())


@attrs.frozen
class Api:
    base: str
    controls: dict[str, Any]
    document: dict[str, Any]


def _tree(controls: dict[str, Any], http: HttpConfig, with_trading: bool = True):
    trading = SupervisorSpec(id="trading", strategy=Strategy.ONE_FOR_ONE, children=(
        ChildSpec(id="ledger", start=functools.partial(FakeLedger.start, controls)),
        ChildSpec(id="transactions", start=functools.partial(FakeTransactions.start, controls)),
        ChildSpec(id="reconciler", start=functools.partial(FakeReconciler.start, controls)),
    ))
    api = ChildSpec(id=CONTROL_API, start=functools.partial(ControlApi.start, http))
    children = (trading, api) if with_trading else (api,)
    return start_tree(SupervisorSpec(id="node", strategy=Strategy.ONE_FOR_ONE,
                                     children=children))


@pytest.fixture
def api() -> Iterator[Api]:
    controls: dict[str, Any] = {}
    tree = _tree(controls, HttpConfig(port=0, ask_timeout=0.5))
    try:
        host, port = ask(CONTROL_API, ServerAddress(), timeout=5)
        base = f"http://{host}:{port}"
        status, document = call(base, "GET", "/openapi.json")
        assert status == 200
        yield Api(base, controls, document)
    finally:
        assert tree.stop(timeout=10)


ORDER = {"client_id": "c-1", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
         "amount": "0.01", "price": "30000"}


def conforms(api: Api, operation: str, status: int, payload: Any) -> None:
    """``payload`` validates against the schema the document declares for that answer."""
    for path in api.document["paths"].values():
        for op in path.values():
            if op["operationId"] == operation:
                content = op["responses"][str(status)]["content"]["application/json"]
                schema = {**content["schema"], "components": api.document["components"]}
                OAS31Validator(schema).validate(payload)
                return
    raise AssertionError(f"no operation {operation}")


# ------------------------------------------------------------------------- orders


def test_place_then_same_client_id_answers_existing_and_places_nothing(api: Api) -> None:
    status, order = call(api.base, "POST", "/orders", ORDER)
    assert status == 202, order
    conforms(api, "placeOrder", 202, order)
    assert order["client_id"] == "c-1" and order["amount"] == "0.01"
    assert order["price"] == "30000" and order["state"] == "prepared"
    for key in ("id", "client_order_id", "symbol", "side", "type", "filled", "created_at"):
        assert key in order
    status, again = call(api.base, "POST", "/orders", ORDER)
    assert status == 200 and again == order
    status, listed = call(api.base, "GET", "/orders")
    assert status == 200 and [o["id"] for o in listed["orders"]] == [order["id"]]
    conforms(api, "listOrders", 200, listed)
    placed = [c for c in api.controls["commands"] if isinstance(c, PlaceOrder)]
    assert placed[0] == PlaceOrder(client_id="c-1", symbol="BTC/USDT", side="buy",
                                   type="limit", amount=Decimal("0.01"),
                                   price=Decimal("30000"))


def test_same_client_id_other_content_is_409(api: Api) -> None:
    assert call(api.base, "POST", "/orders", ORDER)[0] == 202
    status, body = call(api.base, "POST", "/orders", {**ORDER, "amount": "0.02"})
    assert status == 409 and body["error"]["code"] == "idempotency_conflict"
    assert body["error"]["field"] == "client_id"
    conforms(api, "placeOrder", 409, body)


@pytest.mark.parametrize(("change", "field", "code"), [
    ({"amount": 0.01}, "amount", "not_a_decimal_string"),
    ({"amount": 1}, "amount", "not_a_decimal_string"),
    ({"price": 30000.5}, "price", "not_a_decimal_string"),
    ({"amount": "1e-2"}, "amount", "not_a_decimal_string"),
    ({"amount": "NaN"}, "amount", "not_a_decimal_string"),
    ({"amount": " 1"}, "amount", "not_a_decimal_string"),
    ({"side": "hold"}, "side", "invalid_choice"),
    ({"type": "stop"}, "type", "invalid_choice"),
    ({"time_in_force": "GTD"}, "time_in_force", "invalid_choice"),
    ({"client_id": ""}, "client_id", "invalid_length"),
    ({"client_id": "x" * 65}, "client_id", "invalid_length"),
    ({"client_id": 7}, "client_id", "not_a_string"),
    ({"leverage": "10"}, "leverage", "unknown_field"),
    ({"symbol": None}, "symbol", "missing_field"),
])
def test_bad_order_body_is_422_naming_the_field_and_changes_nothing(
        api: Api, change: dict[str, Any], field: str, code: str) -> None:
    status, body = call(api.base, "POST", "/orders", {**ORDER, **change})
    assert status == 422, body
    assert body["error"]["field"] == field and body["error"]["code"] == code
    assert body["error"]["message"]
    conforms(api, "placeOrder", 422, body)
    assert api.controls.get("commands", []) == []  # nothing reached the actors


@pytest.mark.parametrize(("raw", "code"), [
    (b"{not json", "malformed_json"),
    (b'["a"]', "not_an_object"),
    (b'{"amount": NaN}', "malformed_json"),
    (b"", "malformed_json"),
])
def test_unreadable_body_is_400(api: Api, raw: bytes, code: str) -> None:
    status, _headers, data = request(api.base, "POST", "/orders", raw)
    body = json.loads(data)
    assert status == 400 and body["error"]["code"] == code
    assert api.controls.get("commands", []) == []


@pytest.mark.parametrize(("symbol", "amount", "status", "code", "field"), [
    ("BAD/USDT", "1", 422, "amount_precision", "amount"),
    ("BTC/USDT", "1000", 422, "insufficient_funds", "amount"),
    ("FROZEN/USDT", "1", 409, "trading_frozen", "symbol"),
])
def test_typed_refusals_map_to_their_status(api: Api, symbol: str, amount: str, status: int,
                                            code: str, field: str) -> None:
    got, body = call(api.base, "POST", "/orders", {**ORDER, "symbol": symbol, "amount": amount})
    assert got == status and body["error"]["code"] == code and body["error"]["field"] == field
    conforms(api, "placeOrder", status, body)


def test_not_accepting_orders_is_503_with_reason(api: Api) -> None:
    api.controls["not_accepting"] = True
    status, headers, data = request(api.base, "POST", "/orders", json.dumps(ORDER).encode())
    body = json.loads(data)
    assert status == 503 and body["error"]["code"] == "not_accepting_orders"
    assert body["error"]["reason"] == "reconciliation_pending"
    assert headers.get("retry-after") == "1"
    conforms(api, "placeOrder", 503, body)


def test_get_and_cancel_order(api: Api) -> None:
    _, order = call(api.base, "POST", "/orders", ORDER)
    status, got = call(api.base, "GET", f"/orders/{order['id']}")
    assert status == 200 and got == order
    status, pending = call(api.base, "DELETE", f"/orders/{order['id']}")
    assert status == 202 and pending["cancel_requested"] is True
    conforms(api, "cancelOrder", 202, pending)
    status, closed = call(api.base, "DELETE", f"/orders/{order['id']}")
    assert status == 200 and closed["state"] == "canceled"
    status, body = call(api.base, "GET", "/orders/nope")
    assert status == 404 and body["error"]["code"] == "order_not_found"
    conforms(api, "getOrder", 404, body)
    assert call(api.base, "DELETE", "/orders/nope")[0] == 404


def test_list_filters_are_parsed_and_checked(api: Api) -> None:
    call(api.base, "POST", "/orders", ORDER)
    call(api.base, "POST", "/orders", {**ORDER, "client_id": "c-2", "symbol": "ETH/USDT"})
    status, listed = call(api.base, "GET", "/orders?state=prepared&symbol=ETH/USDT&limit=5")
    assert status == 200 and [o["client_id"] for o in listed["orders"]] == ["c-2"]
    assert api.controls["commands"][-1] == ListOrders(state=OrderState.PREPARED,
                                                      symbol="ETH/USDT", limit=5)
    for query, field, code in [
        ("state=lost", "state", "invalid_choice"),
        ("limit=0", "limit", "out_of_range"),
        ("limit=ten", "limit", "not_an_integer"),
        ("colour=red", "colour", "unknown_parameter"),
        ("state=open&state=filled", "state", "repeated_parameter"),
    ]:
        status, body = call(api.base, "GET", f"/orders?{query}")
        assert status == 400 and body["error"]["field"] == field, (query, body)
        assert body["error"]["code"] == code, (query, body)


# ------------------------------------------------------------------------- ledger


def test_balances(api: Api) -> None:
    status, body = call(api.base, "GET", "/balances")
    assert status == 200
    assert body["balances"] == [{"venue": "sim", "currency": "USDT", "total": "100.5",
                                 "available": "90.5", "reserved": "10", "frozen": None}]
    conforms(api, "getBalances", 200, body)


def test_ledger_entries_filters(api: Api) -> None:
    status, body = call(api.base, "GET", "/ledger/entries?order_id=tx1&currency=USDT"
                        "&since=2026-01-01T00:00:00%2B00:00&until=2026-02-01T00:00:00Z")
    assert status == 200 and body["entries"][0]["postings"][0]["amount"] == "-10"
    conforms(api, "listLedgerEntries", 200, body)
    assert api.controls["ledger_commands"][-1] == ListLedgerEntries(
        order_id="tx1", currency="USDT", since=datetime(2026, 1, 1, tzinfo=UTC),
        until=datetime(2026, 2, 1, tzinfo=UTC))
    for query, field, code in [
        ("since=yesterday", "since", "not_a_datetime"),
        ("since=2026-01-01T00:00:00", "since", "not_a_datetime"),
        ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until", "empty_interval"),
        ("currency=NOPE", "currency", "unknown_currency"),
    ]:
        status, body = call(api.base, "GET", f"/ledger/entries?{query}")
        assert status == 400 and body["error"]["field"] == field, (query, body)
        assert body["error"]["code"] == code


def test_reconcile(api: Api) -> None:
    status, report = call(api.base, "POST", "/reconcile")
    assert status == 200 and report["currencies"][0]["outcome"] == "match"
    conforms(api, "reconcile", 200, report)
    api.controls["venue_down"] = True
    status, body = call(api.base, "POST", "/reconcile")
    assert status == 503 and body["error"]["code"] == "venue_unavailable"


# ------------------------------------------------------------------------- failures


def test_unknown_path_and_method_answer_the_error_shape(api: Api) -> None:
    status, body = call(api.base, "GET", "/nowhere")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = call(api.base, "PUT", "/orders")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


def test_slow_actor_is_504_and_the_server_stays_responsive(api: Api) -> None:
    gate = threading.Event()
    api.controls["gate"] = gate
    try:
        status, body = call(api.base, "GET", "/orders/tx1")
        assert status == 504 and body["error"]["code"] == "timeout"
        # The event loop is free while an ask waits: another route answers at once.
        assert call(api.base, "GET", "/balances")[0] == 200
    finally:
        gate.set()


def test_missing_actor_is_503() -> None:
    tree = _tree({}, HttpConfig(port=0, ask_timeout=0.5), with_trading=False)
    try:
        host, port = ask(CONTROL_API, ServerAddress(), timeout=5)
        status, body = call(f"http://{host}:{port}", "GET", "/balances")
        assert status == 503 and body["error"]["code"] == "unavailable"
    finally:
        assert tree.stop(timeout=10)


def test_actor_crash_and_unexpected_reply_are_500_with_the_error_shape(api: Api) -> None:
    api.controls["crash"] = True  # the double raises while answering: a bug, not a refusal
    status, body = call(api.base, "GET", "/orders/tx1")
    assert status == 500 and body["error"]["code"] == "internal"
    conforms(api, "getOrder", 500, body)
    api.controls["crash"] = False
    # The supervisor restarted the double; the API reaches the new one by name.
    assert call(api.base, "GET", "/orders/tx1")[0] == 404
    api.controls["odd_reply"] = True  # a reply of no known type: logged and answered 500
    status, body = call(api.base, "GET", "/orders")
    assert status == 500 and body["error"]["code"] == "internal"


def test_port_in_use_fails_the_start_and_a_crash_restarts_on_the_same_port() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.listen()
        # The port is taken: every start of the actor crashes, the root gives up (loudly).
        busy = _tree({}, HttpConfig(port=port), with_trading=False)
        assert busy.wait(15) and busy.failed
    tree = _tree({}, HttpConfig(port=port), with_trading=False)
    try:
        base = f"http://127.0.0.1:{port}"
        assert call(base, "GET", "/openapi.json")[0] == 200
        with pytest.raises(RuntimeError, match="ended on its own"):
            ask(CONTROL_API, _ServerEnded(None), timeout=5)  # as if uvicorn had died
        # The supervisor restarts the actor, which serves on the same port again.
        assert ask(CONTROL_API, ServerAddress(), timeout=5) == ("127.0.0.1", port)
        assert call(base, "GET", "/openapi.json")[0] == 200
    finally:
        assert tree.stop(timeout=10)


# ------------------------------------------------------------------------- OpenAPI


def test_openapi_document_is_valid_and_describes_every_route(api: Api) -> None:
    validate(api.document)
    paths = api.document["paths"]
    assert set(paths) == {"/orders", "/orders/{id}", "/balances", "/ledger/entries",
                          "/ledger/unfreeze", "/ledger/export", "/reconcile", "/openapi.json",
                          # observability (issue 6): health, status, metrics and alerts
                          "/health", "/status", "/metrics", "/alerts", "/alerts/{id}/ack",
                          "/silences", "/notifications",
                          # the status page (issue 6): the page, its files, venue balances
                          "/", "/static/app.js", "/static/style.css",
                          "/venues/{venue}/balance"}
    assert set(paths["/orders"]) == {"get", "post"}
    assert set(paths["/orders/{id}"]) == {"get", "delete"}
    body = api.document["components"]["schemas"]["PlaceOrderBody"]
    assert body["additionalProperties"] is False
    assert body["properties"]["amount"]["type"] == "string"
    states = api.document["components"]["schemas"]["OrderView"]["properties"]["state"]["enum"]
    assert set(states) == {s.value for s in OrderState}


# ------------------------------------------------------------------------- the node part


def test_control_api_part_serves_on_the_configured_port(tmp_path) -> None:  # noqa: ANN001
    config = Config(node=NodeConfig(data_dir=tmp_path), http=HttpConfig(port=0))
    spec = control_api_part(config)
    assert spec.id == CONTROL_API
    tree = start_tree(SupervisorSpec(id="node", strategy=Strategy.ONE_FOR_ONE,
                                     children=(spec,)))
    try:
        host, port = ask(CONTROL_API, ServerAddress(), timeout=5)
        assert host == "127.0.0.1" and port > 0
        assert call(f"http://{host}:{port}", "GET", "/openapi.json")[0] == 200
    finally:
        assert tree.stop(timeout=10)


def test_run_py_flags_override_the_config_and_are_checked() -> None:
    from ironclad.cli import build_parser
    from ironclad.config import ConfigError

    args = build_parser().parse_args(
        ["--exchange", "nobitex", "--venue-url", "http://127.0.0.1:9", "--http-port", "0"])
    config = Config().with_overrides(exchange=args.exchange, venue_url=args.venue_url,
                                     http_port=args.http_port)
    assert config.venue.exchange == "nobitex" and config.venue.url == "http://127.0.0.1:9"
    assert config.http.port == 0 and config.http.host == "127.0.0.1"
    for change, key in [({"http_port": 70000}, "http.port"), ({"venue_url": "ftp://x"},
                        "venue.url"), ({"exchange": "Bin ance"}, "venue.exchange")]:
        with pytest.raises(ConfigError, match=key):
            Config().with_overrides(**change)
    with pytest.raises(ValueError):
        HttpConfig(host="0.0.0.0")  # never beyond loopback: the API has no authentication
