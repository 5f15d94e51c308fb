"""The orders, balances, ledger and reconciliation routes (the trading subtree's API).

Each handler turns validated input into one command of ``messages.orders`` /
``messages.ledger``, asks the actor that owns it by name, and maps the typed answer to HTTP:
an order placed 202 (the same ``client_id`` and content again 200, other content 409);
invalid order or insufficient funds 422; frozen currency 409; not accepting orders (start-up
reconciliation pending or failed) and venue unavailable 503; unknown order 404; unfreezing
a currency that is not frozen 409.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ironclad.http.errors import ApiError
from ironclad.http.routes import Answer, ApiContext, Inputs, Operation, Reply, RouteGroup
from ironclad.http.schema import Body, Field, Kind, message_schemas
from messages.codec import to_api_dict
from messages.ledger import (
    Balances,
    ExportFormat,
    ExportLedger,
    GetBalances,
    LedgerEntries,
    LedgerExport,
    ListLedgerEntries,
    NotFrozen,
    Unfreeze,
    Unfrozen,
)
from messages.orders import (
    CancelOrder,
    GetOrder,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidOrder,
    ListOrders,
    NotAcceptingOrders,
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

__all__ = ["TRANSACTIONS", "LEDGER", "RECONCILER", "orders_routes"]

#: The actors these routes ask (stable names in the node's tree).
TRANSACTIONS = "trading/transactions"
LEDGER = "trading/ledger"
RECONCILER = "trading/reconciler"

_CLOSED = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED,
                     OrderState.ABORTED})

PLACE_ORDER = Body(
    schema_name="PlaceOrderBody",
    description="A new order; client_id is the caller's idempotency key.",
    fields=(
        Field(name="client_id", kind=Kind.STRING, required=True, max_length=64,
              description="your idempotency key: repeat it to get the same order back"),
        Field(name="symbol", kind=Kind.STRING, required=True, max_length=32,
              description="unified market symbol, e.g. BTC/USDT"),
        Field(name="side", kind=Kind.CHOICE, required=True, choices=("buy", "sell"),
              description="buy or sell"),
        Field(name="type", kind=Kind.CHOICE, required=True, choices=("limit", "market"),
              description="limit or market"),
        Field(name="amount", kind=Kind.DECIMAL, required=True,
              description="base amount, a decimal string"),
        Field(name="price", kind=Kind.DECIMAL,
              description="limit price (a market buy: the price funds are reserved at)"),
        Field(name="time_in_force", kind=Kind.CHOICE, choices=("GTC", "IOC", "FOK"),
              description="limit orders only; default GTC"),
    ),
)

UNFREEZE = Body(
    schema_name="UnfreezeBody",
    description="Lift the freeze of one currency on the node's venue (journaled with reason).",
    fields=(
        Field(name="currency", kind=Kind.STRING, required=True, max_length=16,
              description="the frozen currency, e.g. USDT"),
        Field(name="reason", kind=Kind.STRING, required=True, max_length=500,
              description="why it is safe to trade again (kept in the ledger's audit trail)"),
    ),
)

_EXPORT_FORMAT = Field(name="format", kind=Kind.CHOICE,
                       choices=tuple(f.value for f in ExportFormat),
                       description="csv (one row per posting; the default) or beancount")
#: The media type of each export format.
_EXPORT_MEDIA = {ExportFormat.CSV: "text/csv; charset=utf-8",
                 ExportFormat.BEANCOUNT: "text/plain; charset=utf-8"}

_ORDER_ID = Field(name="id", kind=Kind.STRING, max_length=64, description="the node's order id")
_STATE = Field(name="state", kind=Kind.CHOICE, choices=tuple(s.value for s in OrderState),
               description="only orders in this state")
_SYMBOL = Field(name="symbol", kind=Kind.STRING, max_length=32,
                description="only orders of this market")
_LIMIT_ORDERS = Field(name="limit", kind=Kind.INTEGER, minimum=1, maximum=10_000,
                      description="at most this many, newest first (default 1000)")
_LEDGER_FILTERS = (
    Field(name="order_id", kind=Kind.STRING, max_length=64,
          description="entries of this order (including its reservation)"),
    Field(name="currency", kind=Kind.STRING, max_length=16,
          description="entries with a posting in this currency"),
    Field(name="since", kind=Kind.DATETIME, description="entries at or after this time"),
    Field(name="until", kind=Kind.DATETIME, description="entries before this time"),
    Field(name="limit", kind=Kind.INTEGER, minimum=1, maximum=100_000,
          description="at most this many (the latest), oldest first (default 1000)"),
)


def _order(view: OrderView) -> dict[str, Any]:
    return to_api_dict(view, OrderView)  # type: ignore[no-any-return]


def _refusal(reply: object) -> ApiError:
    """The HTTP form of a typed error answer; a reply of no known type is a bug."""
    if isinstance(reply, InvalidOrder):
        return ApiError(422, reply.code, reply.message, reply.field)
    if isinstance(reply, InsufficientFunds):
        return ApiError(422, "insufficient_funds",
                        f"needs {reply.needed} {reply.currency}, {reply.available} available",
                        "amount")
    if isinstance(reply, IdempotencyConflict):
        return ApiError(409, "idempotency_conflict",
                        f"{reply.message} (existing order {reply.order_id})", "client_id")
    if isinstance(reply, TradingFrozen):
        return ApiError(409, "trading_frozen",
                        f"trading in {reply.currency} is frozen: {reply.reason}", "symbol")
    if isinstance(reply, NotAcceptingOrders):
        return ApiError(503, "not_accepting_orders", f"{reply.reason.value}: {reply.message}",
                        headers={"Retry-After": "1"}, reason=reply.reason.value)
    if isinstance(reply, OrderNotFound):
        key = reply.id if reply.id is not None else reply.client_id
        return ApiError(404, "order_not_found", f"no order {key!r}", "id")
    if isinstance(reply, VenueUnavailable):
        return ApiError(503, "venue_unavailable", reply.message)
    if isinstance(reply, NotFrozen):
        return ApiError(409, "not_frozen",
                        f"trading in {reply.currency} on {reply.venue} is not frozen; "
                        "nothing changed", "currency")
    raise TypeError(f"unexpected answer {type(reply).__name__}: {reply!r}")


def orders_routes(context: ApiContext) -> RouteGroup:
    """The trading routes, asking the trading subtree's actors through ``context``."""

    async def place_order(inputs: Inputs) -> Answer:
        command = PlaceOrder(**inputs.body)
        reply = await context.ask(TRANSACTIONS, command)
        if not isinstance(reply, OrderPlaced):
            raise _refusal(reply)
        return Answer(202 if reply.created else 200, _order(reply.order))

    async def get_order(inputs: Inputs) -> Answer:
        reply = await context.ask(TRANSACTIONS, GetOrder(id=inputs.path["id"]))
        if not isinstance(reply, OrderView):
            raise _refusal(reply)
        return Answer(200, _order(reply))

    async def list_orders(inputs: Inputs) -> Answer:
        query = dict(inputs.query)
        if "state" in query:
            query["state"] = OrderState(query["state"])
        reply = await context.ask(TRANSACTIONS, ListOrders(**query))
        if not isinstance(reply, OrderList):
            raise _refusal(reply)
        return Answer(200, to_api_dict(reply, OrderList))

    async def cancel_order(inputs: Inputs) -> Answer:
        reply = await context.ask(TRANSACTIONS, CancelOrder(id=inputs.path["id"]))
        if not isinstance(reply, OrderView):
            raise _refusal(reply)
        return Answer(200 if reply.state in _CLOSED else 202, _order(reply))

    async def balances(_inputs: Inputs) -> Answer:
        reply = await context.ask(LEDGER, GetBalances())
        if not isinstance(reply, Balances):
            raise _refusal(reply)
        return Answer(200, to_api_dict(reply, Balances))

    async def ledger_entries(inputs: Inputs) -> Answer:
        query = inputs.query
        if "since" in query and "until" in query and query["since"] >= query["until"]:
            raise ApiError(400, "empty_interval", "since must be before until", "until")
        reply = await context.ask(LEDGER, ListLedgerEntries(**query))
        if isinstance(reply, InvalidOrder):  # a filter the ledger refused
            raise ApiError(400, reply.code, reply.message, reply.field)
        if not isinstance(reply, LedgerEntries):
            raise _refusal(reply)
        return Answer(200, to_api_dict(reply, LedgerEntries))

    async def export_ledger(inputs: Inputs) -> Response:
        format = ExportFormat(inputs.query.get("format", ExportFormat.CSV.value))
        reply = await context.ask(LEDGER, ExportLedger(format=format))
        if not isinstance(reply, LedgerExport):
            raise _refusal(reply)
        return Response(reply.text, status_code=200, media_type=_EXPORT_MEDIA[format])

    async def unfreeze(inputs: Inputs) -> Answer:
        reply = await context.ask(LEDGER, Unfreeze(**inputs.body))
        if not isinstance(reply, Unfrozen):
            raise _refusal(reply)
        return Answer(200, to_api_dict(reply, Unfrozen))

    async def reconcile(_inputs: Inputs) -> Answer:
        reply = await context.ask(RECONCILER, Reconcile(), timeout=context.reconcile_timeout)
        if not isinstance(reply, ReconciliationView):
            raise _refusal(reply)
        return Answer(200, to_api_dict(reply, ReconciliationView))

    error = "Error"
    operations = (
        Operation(
            method="POST", path="/orders", operation_id="placeOrder", summary="Place an order",
            description=(
                "Answered once the intent is journaled and its funds reserved (durable); "
                "submission continues asynchronously: poll GET /orders/{id}. On a timeout "
                "or a lost answer, repeat with the same client_id: it never places twice."),
            handler=place_order, body=PLACE_ORDER,
            replies={
                200: Reply("this client_id already names this order: nothing placed",
                           "OrderView"),
                202: Reply("accepted: journaled and reserved; see state", "OrderView"),
                400: Reply("the body is not a JSON object", error),
                409: Reply("client_id names an order with other content, or the currency "
                           "is frozen", error),
                422: Reply("invalid field, outside market rules, or insufficient funds", error),
                503: Reply("not accepting orders (reason given) or the trading actors are "
                           "unavailable", error),
                504: Reply("no answer in time: repeat with the same client_id", error),
            },
        ),
        Operation(
            method="GET", path="/orders", operation_id="listOrders", summary="List orders",
            handler=list_orders, query_params=(_STATE, _SYMBOL, _LIMIT_ORDERS),
            replies={200: Reply("matching orders, newest first", "OrderList"),
                     400: Reply("bad query parameter", error),
                     503: Reply("unavailable", error), 504: Reply("timeout", error)},
        ),
        Operation(
            method="GET", path="/orders/{id}", operation_id="getOrder", summary="One order",
            handler=get_order, path_params=(_ORDER_ID,),
            replies={200: Reply("the order", "OrderView"), 404: Reply("no such order", error),
                     503: Reply("unavailable", error), 504: Reply("timeout", error)},
        ),
        Operation(
            method="DELETE", path="/orders/{id}", operation_id="cancelOrder",
            summary="Cancel an order (idempotent)",
            description="Repeating it is harmless. The venue's answer decides between "
                        "canceled and filled; poll GET /orders/{id}.",
            handler=cancel_order, path_params=(_ORDER_ID,),
            replies={200: Reply("the order is already closed", "OrderView"),
                     202: Reply("cancel requested or pending", "OrderView"),
                     404: Reply("no such order", error),
                     503: Reply("unavailable", error), 504: Reply("timeout", error)},
        ),
        Operation(
            method="GET", path="/balances", operation_id="getBalances",
            summary="Ledger balances per currency (total, available, reserved)",
            handler=balances,
            replies={200: Reply("balances sorted by currency", "Balances"),
                     503: Reply("unavailable", error), 504: Reply("timeout", error)},
        ),
        Operation(
            method="GET", path="/ledger/entries", operation_id="listLedgerEntries",
            summary="The audit trail: ledger entries by order, currency and time",
            handler=ledger_entries, query_params=_LEDGER_FILTERS,
            replies={200: Reply("entries, oldest first", "LedgerEntries"),
                     400: Reply("bad query parameter", error),
                     503: Reply("unavailable", error), 504: Reply("timeout", error)},
        ),
        Operation(
            method="GET", path="/ledger/export", operation_id="exportLedger",
            summary="Every ledger entry as CSV or beancount (the accountant's copy)",
            description=(
                "csv: text/csv, one row per posting (id, time, kind, cause, order_id, "
                "transfer_id, account, currency, amount). beancount: text/plain that "
                "bean-check accepts, with balance assertions of the derived balances."),
            handler=export_ledger, query_params=(_EXPORT_FORMAT,),
            replies={200: Reply("text/csv or text/plain (beancount), by format"),
                     400: Reply("bad query parameter", error),
                     503: Reply("unavailable", error), 504: Reply("timeout", error)},
        ),
        Operation(
            method="POST", path="/ledger/unfreeze", operation_id="unfreezeCurrency",
            summary="Lift a currency's trading freeze (operator)",
            description=(
                "A reconciliation difference beyond tolerance freezes new orders in that "
                "currency (cancels still go). Once the difference is explained, lift the "
                "freeze; it is journaled with the reason. A later reconciliation that finds "
                "the difference again freezes it again."),
            handler=unfreeze, body=UNFREEZE,
            replies={200: Reply("unfrozen: new orders in the currency are accepted again",
                                "Unfrozen"),
                     400: Reply("the body is not a JSON object", error),
                     409: Reply("the currency is not frozen: nothing changed", error),
                     422: Reply("missing, unknown or invalid field", error),
                     503: Reply("unavailable", error), 504: Reply("timeout", error)},
        ),
        Operation(
            method="POST", path="/reconcile", operation_id="reconcile",
            summary="Run one reconciliation against the venue and answer its report",
            handler=reconcile,
            replies={200: Reply("the report (also journaled)", "ReconciliationView"),
                     503: Reply("venue or reconciler unavailable", error),
                     504: Reply("timeout", error)},
        ),
    )
    schemas: dict[str, Any] = {}
    for cls in (OrderView, OrderList, Balances, LedgerEntries, ReconciliationView, Unfrozen):
        schemas.update(message_schemas(cls))
    return RouteGroup(tag="orders", description="Orders, balances, the ledger, reconciliation.",
                      operations=operations, schemas=schemas)
