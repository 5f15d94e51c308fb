"""The orders conversation: commands to the trading subtree and their typed answers.

Who answers what (ask by name with a timeout, ``supervisors.ask(name, command, timeout=...)``):

- ``trading/transactions``: :class:`PlaceOrder`, :class:`CancelOrder`, :class:`GetOrder`,
  :class:`ListOrders`, :class:`GetOrderHistory`, :class:`ExportJournal`.
- ``trading/ledger``: ``messages.ledger`` (balances, entries, unfreeze).
- ``trading/reconciler``: :class:`Reconcile`.

Every command is answered by exactly one value: a result or one of the typed errors in
:data:`OrderError` (never an exception for an expected failure). :class:`PlaceOrder` is
answered once the intent is journaled and its funds reserved (durable: a ``kill -9`` after
the answer loses nothing); submission to the venue continues asynchronously and the order's
``state`` says how far it got. ``client_id`` is the caller's idempotency key: the same
content again answers the existing order (``created=False``), other content under the same
key answers :class:`IdempotencyConflict`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from messages import _checks as check
from messages.codec import register_tagged_union

__all__ = [
    "OrderState",
    "PlaceOrder",
    "CancelOrder",
    "GetOrder",
    "ListOrders",
    "GetOrderHistory",
    "ExportJournal",
    "Reconcile",
    "FillView",
    "OrderView",
    "OrderPlaced",
    "OrderList",
    "OrderEvent",
    "OrderHistory",
    "JournalExport",
    "CurrencyDifference",
    "OrderDifference",
    "ReconciliationView",
    "IdempotencyConflict",
    "InvalidOrder",
    "InsufficientFunds",
    "TradingFrozen",
    "NotAcceptingReason",
    "NotAcceptingOrders",
    "OrderNotFound",
    "VenueUnavailable",
    "OrderError",
    "OrderReply",
]


class OrderState(enum.Enum):
    """An order's state as callers see it (``settled`` is a separate flag on the view)."""

    PREPARED = "prepared"
    SUBMITTING = "submitting"
    UNKNOWN = "unknown"
    OPEN = "open"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    ABORTED = "aborted"


def _optional_str(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None:
        check.non_empty_str(_instance, attribute, value)


def _optional_decimal(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None:
        check.finite_decimal(_instance, attribute, value)


def _limit(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ValueError(f"{attribute.name}: expected an int in 1..10000, got {value!r}")


# ---------------------------------------------------------------------------- commands


@attrs.frozen(kw_only=True)
class PlaceOrder:
    """Place an order; ``client_id`` is the caller's idempotency key (at most 64 chars).

    ``side``/``type``/``time_in_force`` are the caller's strings: the coordinator validates
    them (and the amounts against the market) and answers :class:`InvalidOrder` naming the
    field. ``venue`` None means the node's venue. Build it from an HTTP body with
    :meth:`from_body`.
    """

    client_id: str = attrs.field(validator=check.non_empty_str)
    symbol: str = attrs.field(validator=check.non_empty_str)
    side: str = attrs.field(validator=check.non_empty_str)
    type: str = attrs.field(validator=check.non_empty_str)
    amount: Decimal = attrs.field(validator=check.finite_decimal)
    price: Decimal | None = attrs.field(default=None, validator=_optional_decimal)
    time_in_force: str | None = attrs.field(default=None, validator=_optional_str)
    venue: str | None = attrs.field(default=None, validator=_optional_str)

    @classmethod
    def from_body(cls, body: object) -> PlaceOrder | InvalidOrder:
        """Parse a JSON body (amounts as decimal strings); an :class:`InvalidOrder` names the
        first bad field. Only checks shape and types; market rules are the coordinator's."""
        if not isinstance(body, Mapping):
            return InvalidOrder(field="$", code="not_an_object", message="expected an object")
        allowed = {f.name for f in attrs.fields(cls)}
        for key in body:
            if key not in allowed:
                return InvalidOrder(field=str(key), code="unknown_field",
                                    message=f"unknown field; expected {sorted(allowed)}")
        values: dict[str, Any] = {}
        for name in ("client_id", "symbol", "side", "type"):
            text = body.get(name)
            if not isinstance(text, str) or not text.strip():
                return InvalidOrder(field=name, code="required",
                                    message="expected a non-empty string")
            values[name] = text
        for name in ("time_in_force", "venue"):
            text = body.get(name)
            if text is not None and (not isinstance(text, str) or not text.strip()):
                return InvalidOrder(field=name, code="invalid",
                                    message="expected a non-empty string or null")
            values[name] = text
        for name in ("amount", "price"):
            raw = body.get(name)
            if raw is None:
                if name == "amount":
                    return InvalidOrder(field=name, code="required",
                                        message="expected a decimal string")
                values[name] = None
                continue
            if not isinstance(raw, str):
                return InvalidOrder(field=name, code="not_a_decimal",
                                    message=f"expected a decimal string, got {raw!r}")
            try:
                number = Decimal(raw.strip())
            except InvalidOperation:
                number = None
            if number is None or not number.is_finite():
                return InvalidOrder(field=name, code="not_a_decimal",
                                    message=f"expected a finite decimal string, got {raw!r}")
            values[name] = number
        return cls(**values)


@attrs.frozen(kw_only=True)
class CancelOrder:
    """Cancel an order by ``id`` (the node's order id) or ``client_id``; exactly one.

    Idempotent: cancelling a cancel-pending or closed order answers its current view.
    """

    id: str | None = attrs.field(default=None, validator=_optional_str)
    client_id: str | None = attrs.field(default=None, validator=_optional_str)

    def __attrs_post_init__(self) -> None:
        if (self.id is None) == (self.client_id is None):
            raise ValueError("CancelOrder: give exactly one of id and client_id")


@attrs.frozen(kw_only=True)
class GetOrder:
    """Ask for one order by ``id`` or ``client_id`` (exactly one); answers an OrderView."""

    id: str | None = attrs.field(default=None, validator=_optional_str)
    client_id: str | None = attrs.field(default=None, validator=_optional_str)

    def __attrs_post_init__(self) -> None:
        if (self.id is None) == (self.client_id is None):
            raise ValueError("GetOrder: give exactly one of id and client_id")


@attrs.frozen(kw_only=True)
class ListOrders:
    """Orders filtered by state and symbol, newest first, at most ``limit``."""

    state: OrderState | None = None
    symbol: str | None = attrs.field(default=None, validator=_optional_str)
    limit: int = attrs.field(default=1000, validator=_limit)


@attrs.frozen(kw_only=True)
class GetOrderHistory:
    """Ask for the journaled state changes of order ``id`` (its audit trail), oldest first."""

    id: str = attrs.field(validator=check.non_empty_str)


@attrs.frozen(kw_only=True)
class ExportJournal:
    """Ask for the whole transaction journal as CSV (seq, time, stream, kind, cause, data,
    hashes): the order side of the audit trail, re-checkable row by row."""


@attrs.frozen(kw_only=True)
class Reconcile:
    """Run one reconciliation now (ask ``trading/reconciler``); answers a ReconciliationView
    or :class:`VenueUnavailable`."""


# ---------------------------------------------------------------------------- answers


@attrs.frozen(kw_only=True)
class FillView:
    """One trade of an order, as booked (deduplicated by ``trade_id``)."""

    trade_id: str
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str | None


@attrs.frozen(kw_only=True)
class OrderView:
    """An order as the node knows it. ``id`` is the node's transaction id; ``client_order_id``
    is what the venue sees. ``external``: adopted from the venue, not placed by this node.
    ``settled``: the reservation was settled (nothing of it remains pending)."""

    id: str
    client_id: str | None
    client_order_id: str
    venue: str
    symbol: str
    side: str
    type: str
    time_in_force: str | None
    amount: Decimal
    price: Decimal | None
    state: OrderState
    filled: Decimal
    average_price: Decimal | None
    created_at: datetime
    updated_at: datetime
    venue_order_id: str | None
    fills: tuple[FillView, ...]
    cancel_requested: bool
    settled: bool
    external: bool
    reason: str | None


@attrs.frozen(kw_only=True)
class OrderPlaced:
    """Answer to PlaceOrder: ``created`` True for a new order (HTTP 202), False when the
    ``client_id`` named an existing order with the same content (HTTP 200)."""

    order: OrderView
    created: bool


@attrs.frozen(kw_only=True)
class OrderList:
    """Answer to ListOrders."""

    orders: tuple[OrderView, ...]


@attrs.frozen(kw_only=True)
class OrderEvent:
    """One journaled change of an order: ``seq`` in the journal, the states, and its cause."""

    seq: int
    at: datetime
    from_state: OrderState
    to_state: OrderState
    cause: str


@attrs.frozen(kw_only=True)
class OrderHistory:
    """Answer to GetOrderHistory."""

    order_id: str
    events: tuple[OrderEvent, ...]


@attrs.frozen(kw_only=True)
class JournalExport:
    """Answer to ExportJournal."""

    text: str


@attrs.frozen(kw_only=True)
class CurrencyDifference:
    """One currency's balance comparison: ``delta`` is venue total minus ledger total.

    ``outcome``: match, adjust (an adjusting entry was posted) or discrepancy (an alert;
    ``frozen`` if trading in it was frozen)."""

    currency: str
    outcome: str
    ledger_total: Decimal
    venue_total: Decimal
    delta: Decimal
    frozen: bool
    reason: str


@attrs.frozen(kw_only=True)
class OrderDifference:
    """An order-level finding: ``kind`` is adopted (a venue order the node did not know),
    resolved (an unknown/in-flight order got its venue state), missed_fill (a trade the node
    had not booked), or vanished (an order the node thought open is not open at the venue)."""

    kind: str
    order_id: str
    client_order_id: str | None
    detail: str


@attrs.frozen(kw_only=True)
class ReconciliationView:
    """The report of one reconciliation run; every difference is also journaled."""

    run_id: str
    venue: str
    started_at: datetime
    finished_at: datetime
    open_orders_seen: int
    trades_seen: int
    currencies: tuple[CurrencyDifference, ...]
    orders: tuple[OrderDifference, ...]

    @property
    def discrepancies(self) -> tuple[CurrencyDifference, ...]:
        return tuple(c for c in self.currencies if c.outcome == "discrepancy")


# ---------------------------------------------------------------------------- errors


@attrs.frozen(kw_only=True)
class IdempotencyConflict:
    """Refused: ``client_id`` already names order ``order_id`` with different content
    (HTTP 409). Nothing was placed."""

    client_id: str
    order_id: str
    message: str


@attrs.frozen(kw_only=True)
class InvalidOrder:
    """Refused before anything changed: ``field`` is wrong (``code`` says how: required,
    invalid_choice, amount_precision, min_notional...). HTTP 422."""

    field: str
    code: str
    message: str


@attrs.frozen(kw_only=True)
class InsufficientFunds:
    """Refused in prepare: ``needed`` of ``currency`` exceeds what is ``available`` in the
    ledger. Nothing was reserved or sent."""

    currency: str
    needed: Decimal
    available: Decimal


@attrs.frozen(kw_only=True)
class TradingFrozen:
    """Refused: trading in ``currency`` is frozen after a reconciliation discrepancy until an
    operator unfreezes it (cancels still work)."""

    currency: str
    reason: str


class NotAcceptingReason(enum.Enum):
    """Why new orders are refused while reads and cancels are served."""

    RECONCILIATION_PENDING = "reconciliation_pending"
    RECONCILIATION_FAILED = "reconciliation_failed"


@attrs.frozen(kw_only=True)
class NotAcceptingOrders:
    """Refused (fail closed): start-up reconciliation has not succeeded yet (HTTP 503)."""

    reason: NotAcceptingReason
    message: str


@attrs.frozen(kw_only=True)
class OrderNotFound:
    """No order has this ``id`` / ``client_id`` (HTTP 404)."""

    id: str | None
    client_id: str | None


@attrs.frozen(kw_only=True)
class VenueUnavailable:
    """The venue could not be asked (circuit open, timeout, overload): nothing was decided;
    ``message`` says why. HTTP 503."""

    message: str


#: Every typed error of this conversation; usable with ``isinstance``.
OrderError = (IdempotencyConflict | InvalidOrder | InsufficientFunds | TradingFrozen
              | NotAcceptingOrders | OrderNotFound | VenueUnavailable)

#: Every answer of this conversation (tagged with ``_type`` in JSON).
OrderReply = (OrderPlaced | OrderView | OrderList | OrderHistory | JournalExport
              | ReconciliationView | OrderError)

register_tagged_union(OrderError)
register_tagged_union(OrderReply)
