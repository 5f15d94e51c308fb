"""The three-phase order protocol as a pure state machine (DESIGN.md section 4).

``prepare(...)`` creates an order; ``apply(order, event, now, config)`` returns a
:class:`Step`: the new order, the effects the actor shell must perform in order, the
:class:`StateChanged` record, or an :class:`Ignored` denial when the event brought nothing
new (a duplicate, a stale report). No I/O, no clock: time is the ``now`` argument.

States and decisions (the API shows ``state`` in lower case):

- PREPARED: validated, journaled; funds reserved once ``reserved`` is true. Nothing sent.
- SUBMITTING: a create is (about to be) on the wire. UNKNOWN: its outcome is ambiguous.
- OPEN: the venue holds the order; a partially filled order is OPEN with ``filled > 0``.
- FILLED, CANCELED (also the venue's "expired"), REJECTED, ABORTED (nothing reached the
  venue) are *closed*: no transition leaves them. Late trades still attach to a closed
  order, and settling its reservation sets ``settled_at``; a closed and settled order is
  *final* and refuses every change. Settlement is a flag, not a SETTLED state, so that an
  order keeps the venue outcome callers query by (``state=filled``).
- A cancel is an intent (``cancel_requested_at``), not a state: fills may still arrive
  while it is pending, and the venue's answer decides between FILLED and CANCELED.

Guarantees:

- Every change goes through one trigger, checked against :data:`TRANSITIONS`; anything
  else raises :class:`InvalidTransition` and the caller keeps the unchanged order.
- A step whose effects write (journal-worthy data, ledger, or wire writes: create and
  cancel) begins with a :class:`Journal` effect: journal first, then ledger, then wire.
  :class:`QueryOrder` is a read and may stand alone; the actor routes it through the
  in-flight schedule (``trading.inflight``), which caps queries per cycle.
- A create is sent once per attempt, always with the same client order id; a further
  attempt only after the venue confirmed absence at least ``absence_grace`` after the
  previous send (and, where its client-id lookup only sees open orders, in its history).
- Fills are deduplicated by trade id; their total never exceeds the amount.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

__all__ = [
    "CLOSED_STATES",
    "TRANSITIONS",
    "CancelAcked",
    "CancelNotFound",
    "CancelRequested",
    "ConflictingVenueReport",
    "Effect",
    "Event",
    "Fill",
    "FillExceedsAmount",
    "FundsReserved",
    "Ignored",
    "InvalidTransition",
    "Journal",
    "MalformedVenueReport",
    "MarketRules",
    "Order",
    "OrderAbsent",
    "OrderIntent",
    "OrderObserved",
    "OrderState",
    "OrderType",
    "OrderValidationError",
    "PostFill",
    "ProtocolConfig",
    "ProtocolError",
    "QueryOrder",
    "ReservationRefused",
    "ReserveFunds",
    "Resume",
    "SendCancel",
    "SendCreate",
    "SettleReservation",
    "Settled",
    "Side",
    "StateChanged",
    "Step",
    "Submit",
    "SubmitAcked",
    "SubmitAmbiguous",
    "SubmitRejected",
    "TimeInForce",
    "Trade",
    "VenueSnapshot",
    "VenueStatus",
    "apply",
    "lookup_priority",
    "prepare",
    "validate_for_market",
]


# --------------------------------------------------------------------------- errors


class ProtocolError(Exception):
    """Raised when the order protocol refuses an event; the order is unchanged."""


class InvalidTransition(ProtocolError):
    """Raised when an event would move an order along an edge not in the transition table."""

    def __init__(self, transaction_id: str, from_state: OrderState, to_state: OrderState,
                 cause: str, reason: str = "not in the transition table") -> None:
        super().__init__(
            f"order {transaction_id}: {from_state.value} -> {to_state.value} refused "
            f"({reason}); cause: {cause}"
        )
        self.transaction_id = transaction_id
        self.from_state = from_state
        self.to_state = to_state
        self.cause = cause
        self.reason = reason


class FillExceedsAmount(ProtocolError):
    """Raised when fills or a venue report would take ``filled`` above the order amount."""

    def __init__(self, transaction_id: str, filled: Decimal, amount: Decimal) -> None:
        super().__init__(f"order {transaction_id}: filled {filled} would exceed amount {amount}")
        self.transaction_id = transaction_id
        self.filled = filled
        self.amount = amount


class ConflictingVenueReport(ProtocolError):
    """Raised when a venue report contradicts what is known (a second venue order id, a trade
    id reused with other figures, fills on a rejected order): escalate, never overwrite."""

    def __init__(self, transaction_id: str, problem: str) -> None:
        super().__init__(f"order {transaction_id}: conflicting venue report: {problem}")
        self.transaction_id = transaction_id
        self.problem = problem


class MalformedVenueReport(ProtocolError):
    """Raised when a venue payload lacks a field or carries one of the wrong type."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"venue report field {field!r} = {value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class OrderValidationError(ProtocolError):
    """Raised when an order intent is malformed or outside the market's rules; ``field`` and
    ``code`` name the culprit (the control API answers them as 422)."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- values


class OrderState(enum.Enum):
    PREPARED = "prepared"
    SUBMITTING = "submitting"
    UNKNOWN = "unknown"
    OPEN = "open"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    ABORTED = "aborted"


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.Enum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(enum.Enum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class VenueStatus(enum.Enum):
    """ccxt's unified order status."""

    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


CLOSED_STATES = frozenset(
    {OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.ABORTED}
)

#: The whitelist: every allowed edge, self-edges included (data updates in place).
TRANSITIONS: Mapping[OrderState, frozenset[OrderState]] = {
    OrderState.PREPARED: frozenset(
        {OrderState.PREPARED, OrderState.SUBMITTING, OrderState.ABORTED}
    ),
    OrderState.SUBMITTING: frozenset(
        {OrderState.SUBMITTING, OrderState.UNKNOWN, OrderState.OPEN, OrderState.FILLED,
         OrderState.CANCELED, OrderState.REJECTED}
    ),
    OrderState.UNKNOWN: frozenset(
        {OrderState.UNKNOWN, OrderState.SUBMITTING, OrderState.OPEN, OrderState.FILLED,
         OrderState.CANCELED, OrderState.REJECTED, OrderState.ABORTED}
    ),
    OrderState.OPEN: frozenset(
        {OrderState.OPEN, OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED}
    ),
    OrderState.FILLED: frozenset({OrderState.FILLED}),
    OrderState.CANCELED: frozenset({OrderState.CANCELED}),
    OrderState.REJECTED: frozenset({OrderState.REJECTED}),
    OrderState.ABORTED: frozenset({OrderState.ABORTED}),
}

_VENUE_TARGET = {
    VenueStatus.OPEN: OrderState.OPEN,
    VenueStatus.CLOSED: OrderState.FILLED,
    VenueStatus.CANCELED: OrderState.CANCELED,
    VenueStatus.EXPIRED: OrderState.CANCELED,
    VenueStatus.REJECTED: OrderState.REJECTED,
}


def _aware(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise ValueError(f"{attribute.name}: expected a timezone-aware datetime, got {value!r}")


def _decimal(value: object, field: str, *, error: type = OrderValidationError,
             allow_float: bool = False) -> Decimal:
    """A finite Decimal from a Decimal, int or decimal string (floats only from ccxt)."""
    if isinstance(value, bool):
        result = None
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float) and allow_float:
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            result = None
    else:
        result = None
    if result is None or not result.is_finite():
        if error is OrderValidationError:
            raise OrderValidationError(field, "not_a_decimal",
                                       f"expected a finite decimal string, got {value!r}")
        raise error(field, value, "expected a finite decimal")
    return result


def _enum(kind: type[enum.Enum], value: object, field: str) -> Any:
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in kind)
        raise OrderValidationError(field, "invalid_choice",
                                   f"expected one of {allowed}, got {value!r}") from None


@attrs.frozen(slots=True)
class OrderIntent:
    """What the caller asked for, already parsed; build it with :meth:`parse`."""

    client_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None
    time_in_force: TimeInForce | None

    @classmethod
    def parse(cls, *, client_id: object, symbol: object, side: object, type: object,
              amount: object, price: object = None,
              time_in_force: object = None) -> OrderIntent:
        """Parse caller input (strings from JSON); OrderValidationError names the bad field."""
        def label(name: str, text: object) -> str:
            if not isinstance(text, str) or not text.strip() or len(text) > 64:
                raise OrderValidationError(name, "invalid",
                                           f"expected a non-empty str of at most 64 chars, "
                                           f"got {text!r}")
            return text

        caller_key, market_symbol = label("client_id", client_id), label("symbol", symbol)
        order_type = _enum(OrderType, type, "type")
        qty = _decimal(amount, "amount")
        if qty <= 0:
            raise OrderValidationError("amount", "not_positive", f"must be > 0, got {qty}")
        limit = None if price is None else _decimal(price, "price")
        if limit is not None and limit <= 0:
            raise OrderValidationError("price", "not_positive", f"must be > 0, got {limit}")
        tif = None if time_in_force is None else _enum(TimeInForce, time_in_force,
                                                       "time_in_force")
        if order_type is OrderType.LIMIT:
            if limit is None:
                raise OrderValidationError("price", "required", "a limit order needs a price")
            tif = tif or TimeInForce.GTC
        elif tif is not None:
            raise OrderValidationError("time_in_force", "not_allowed",
                                       "a market order takes no time in force")
        order_side = _enum(Side, side, "side")
        if order_type is OrderType.MARKET and order_side is Side.BUY and limit is None:
            raise OrderValidationError("price", "required",
                                       "a market buy needs a price to reserve funds against")
        return cls(caller_key, market_symbol, order_side, order_type, qty, limit, tif)


@attrs.frozen(slots=True)
class MarketRules:
    """A market's precision and limits (ccxt's unified ``precision``/``limits``), in Decimal.

    Steps and ticks are sizes (ccxt TICK_SIZE mode); a limit of None means "no limit".
    """

    symbol: str
    base: str
    quote: str
    amount_step: Decimal | None = None
    price_tick: Decimal | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_cost: Decimal | None = None
    max_cost: Decimal | None = None

    @classmethod
    def from_ccxt(cls, market: Mapping[str, Any], precision_mode: int = 4) -> MarketRules:
        """From a ccxt unified market; ``precision_mode`` is the exchange's ``precisionMode``
        (4 = TICK_SIZE, 2 = DECIMAL_PLACES; significant digits are not supported)."""

        def number(value: object, field: str) -> Decimal | None:
            if value is None:
                return None
            return _decimal(value, field, error=MalformedVenueReport, allow_float=True)

        def step(value: object, field: str) -> Decimal | None:
            size = number(value, field)
            if size is None:
                return None
            if precision_mode == 2:
                return Decimal(1).scaleb(-int(size))
            if precision_mode != 4:
                raise MalformedVenueReport("precisionMode", precision_mode,
                                           "only TICK_SIZE (4) and DECIMAL_PLACES (2)")
            return size

        for key in ("symbol", "base", "quote"):
            if not isinstance(market.get(key), str):
                raise MalformedVenueReport(key, market.get(key), "expected a str")
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}

        def limit(group: str, bound: str) -> Decimal | None:
            return number((limits.get(group) or {}).get(bound), f"limits.{group}.{bound}")

        return cls(
            symbol=market["symbol"], base=market["base"], quote=market["quote"],
            amount_step=step(precision.get("amount"), "precision.amount"),
            price_tick=step(precision.get("price"), "precision.price"),
            min_amount=limit("amount", "min"), max_amount=limit("amount", "max"),
            min_price=limit("price", "min"), max_price=limit("price", "max"),
            min_cost=limit("cost", "min"), max_cost=limit("cost", "max"),
        )


def validate_for_market(intent: OrderIntent, market: MarketRules) -> None:
    """Check ``intent`` against precision, limits and min notional; never rounds.

    Raises OrderValidationError naming the field (``amount``, ``price``, ``symbol``) and a
    code (``amount_precision``, ``price_precision``, ``amount_min`` ... ``min_notional``).
    """
    if intent.symbol != market.symbol:
        raise OrderValidationError("symbol", "wrong_market",
                                   f"{intent.symbol!r} checked against {market.symbol!r}")

    def within(field: str, value: Decimal, low: Decimal | None, high: Decimal | None) -> None:
        if low is not None and value < low:
            raise OrderValidationError(field, f"{field}_min", f"{value} is below {low}")
        if high is not None and high > 0 and value > high:
            raise OrderValidationError(field, f"{field}_max", f"{value} is above {high}")

    if market.amount_step and intent.amount % market.amount_step != 0:
        raise OrderValidationError("amount", "amount_precision",
                                   f"{intent.amount} is not a multiple of {market.amount_step}")
    within("amount", intent.amount, market.min_amount, market.max_amount)
    if intent.price is None:
        return
    if intent.type is OrderType.LIMIT:
        if market.price_tick and intent.price % market.price_tick != 0:
            raise OrderValidationError("price", "price_precision",
                                       f"{intent.price} is not a multiple of {market.price_tick}")
        within("price", intent.price, market.min_price, market.max_price)
    notional = intent.amount * intent.price
    if market.min_cost is not None and notional < market.min_cost:
        raise OrderValidationError("amount", "min_notional",
                                   f"notional {notional} is below {market.min_cost}")
    if market.max_cost and notional > market.max_cost:
        raise OrderValidationError("amount", "max_notional",
                                   f"notional {notional} is above {market.max_cost}")


@attrs.frozen(slots=True)
class Trade:
    """One execution at the venue; ``trade_id`` is the dedup key."""

    trade_id: str
    amount: Decimal
    price: Decimal
    fee_cost: Decimal = Decimal(0)
    fee_currency: str | None = None

    @classmethod
    def from_ccxt(cls, trade: Mapping[str, Any]) -> Trade:
        """From a ccxt unified trade (as in ``fetch_my_trades`` or an order's ``trades``)."""
        trade_id = trade.get("id")
        if trade_id is None or isinstance(trade_id, bool):
            raise MalformedVenueReport("id", trade_id, "a trade needs an id")
        fee = trade.get("fee") or {}
        amount = _decimal(trade.get("amount"), "amount", error=MalformedVenueReport,
                          allow_float=True)
        price = _decimal(trade.get("price"), "price", error=MalformedVenueReport,
                         allow_float=True)
        if amount <= 0 or price <= 0:
            raise MalformedVenueReport("amount", amount, "trade amount and price must be > 0")
        cost = fee.get("cost")
        return cls(str(trade_id), amount, price,
                   Decimal(0) if cost is None else _decimal(cost, "fee.cost",
                                                            error=MalformedVenueReport,
                                                            allow_float=True),
                   fee.get("currency"))


@attrs.frozen(slots=True)
class VenueSnapshot:
    """What the venue said about the order at ``observed_at``."""

    status: VenueStatus
    filled: Decimal
    observed_at: datetime = attrs.field(validator=_aware)
    venue_order_id: str | None = None
    average_price: Decimal | None = None
    trades: tuple[Trade, ...] = ()

    @classmethod
    def from_ccxt(cls, order: Mapping[str, Any], observed_at: datetime) -> VenueSnapshot:
        """From a ccxt unified order (``create_order``/``fetch_order``/``cancel_order``)."""
        raw_status = order.get("status")
        try:
            status = VenueStatus(raw_status)
        except ValueError:
            raise MalformedVenueReport("status", raw_status, "not a ccxt order status") from None
        filled = order.get("filled")
        venue_id = order.get("id")
        average = order.get("average")
        return cls(
            status=status,
            filled=Decimal(0) if filled is None else _decimal(
                filled, "filled", error=MalformedVenueReport, allow_float=True),
            observed_at=observed_at,
            venue_order_id=None if venue_id is None else str(venue_id),
            average_price=None if average is None else _decimal(
                average, "average", error=MalformedVenueReport, allow_float=True),
            trades=tuple(Trade.from_ccxt(t) for t in order.get("trades") or ()),
        )


@attrs.frozen(slots=True)
class ProtocolConfig:
    """Per-venue protocol settings.

    ``absence_grace``: how long after a send a venue's "no such order" is trusted (a create
    may still be in flight before that). ``lookup_sees_closed_orders``: False for venues
    (Nobitex) whose client-id lookup only sees open orders; absence then needs the history.
    """

    absence_grace: timedelta = timedelta(seconds=30)
    max_submit_attempts: int = 3
    lookup_sees_closed_orders: bool = True

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.absence_grace, timedelta) or self.absence_grace <= timedelta(0):
            raise ValueError(f"absence_grace: expected a positive timedelta, "
                             f"got {self.absence_grace!r}")
        if isinstance(self.max_submit_attempts, bool) or not isinstance(
                self.max_submit_attempts, int) or self.max_submit_attempts < 1:
            raise ValueError(f"max_submit_attempts: expected an int >= 1, "
                             f"got {self.max_submit_attempts!r}")


@attrs.frozen(slots=True)
class Order:
    """One transaction's order. ``filled`` is the largest executed quantity known, from venue
    reports or from the trades in ``fills``; settling waits until the trades account for all
    of it. Query timing lives in the in-flight schedule, not here."""

    transaction_id: str
    venue: str
    client_order_id: str
    intent: OrderIntent
    state: OrderState
    reserve_currency: str
    reserve_amount: Decimal
    created_at: datetime = attrs.field(validator=_aware)
    updated_at: datetime = attrs.field(validator=_aware)
    reserved: bool = False
    attempts: int = 0
    venue_order_id: str | None = None
    filled: Decimal = Decimal(0)
    average_price: Decimal | None = None
    fills: tuple[Trade, ...] = ()
    cancel_requested_at: datetime | None = attrs.field(default=None, validator=_aware)
    cancel_attempts: int = 0
    last_sent_at: datetime | None = attrs.field(default=None, validator=_aware)
    acknowledged_at: datetime | None = attrs.field(default=None, validator=_aware)
    closed_at: datetime | None = attrs.field(default=None, validator=_aware)
    settled_at: datetime | None = attrs.field(default=None, validator=_aware)
    reason: str | None = None

    @property
    def fills_total(self) -> Decimal:
        return sum((t.amount for t in self.fills), Decimal(0))

    @property
    def cost(self) -> Decimal:
        """Quote spent or received by the fills seen."""
        return sum((t.amount * t.price for t in self.fills), Decimal(0))

    @property
    def is_closed(self) -> bool:
        return self.state in CLOSED_STATES

    @property
    def is_final(self) -> bool:
        """Closed and settled: nothing may change any more."""
        return self.is_closed and self.settled_at is not None

    @property
    def trades_complete(self) -> bool:
        """Every execution the venue reported has its trade record (needed to settle)."""
        return self.fills_total >= self.filled


# --------------------------------------------------------------------------- events


@attrs.frozen(slots=True)
class FundsReserved:
    """The ledger holds the reservation (pending transfer) for this order."""


@attrs.frozen(slots=True)
class ReservationRefused:
    """The ledger refused the reservation (insufficient available, currency frozen)."""

    reason: str


@attrs.frozen(slots=True)
class Submit:
    """Command: send the create (first attempt)."""


@attrs.frozen(slots=True)
class SubmitAcked:
    """The venue accepted attempt ``attempt``; ``snapshot`` is its answer."""

    attempt: int
    snapshot: VenueSnapshot


@attrs.frozen(slots=True)
class SubmitRejected:
    """The venue definitively refused attempt ``attempt``. ``duplicate_client_order_id``:
    the refusal says the client order id is taken — evidence the order exists."""

    attempt: int
    reason: str
    duplicate_client_order_id: bool = False


@attrs.frozen(slots=True)
class SubmitAmbiguous:
    """Attempt ``attempt`` has no definitive outcome (timeout, 5xx, reset, worker died)."""

    attempt: int
    reason: str


@attrs.frozen(slots=True)
class OrderObserved:
    """A lookup (by client order id, venue id or history) found the order."""

    snapshot: VenueSnapshot


@attrs.frozen(slots=True)
class OrderAbsent:
    """The venue answered, at ``confirmed_at``, that no order has this client order id.
    ``searched_history``: the order and trade history were searched, not only open orders."""

    confirmed_at: datetime = attrs.field(validator=_aware)
    searched_history: bool = False


@attrs.frozen(slots=True)
class Fill:
    """A trade of this order seen in the trade history."""

    trade: Trade


@attrs.frozen(slots=True)
class CancelRequested:
    """Command: cancel (idempotent; repeating it retries the cancel on the wire)."""

    reason: str = "requested"


@attrs.frozen(slots=True)
class CancelAcked:
    """The venue answered the cancel; without a snapshot the outcome must be looked up."""

    snapshot: VenueSnapshot | None = None


@attrs.frozen(slots=True)
class CancelNotFound:
    """The venue answered the cancel with "no such order": look it up, never assume."""


@attrs.frozen(slots=True)
class Settled:
    """The ledger settled the reservation (used part posted, remainder voided)."""


@attrs.frozen(slots=True)
class Resume:
    """The node restarted; re-derive what this order still needs."""


Event = (FundsReserved | ReservationRefused | Submit | SubmitAcked | SubmitRejected
         | SubmitAmbiguous | OrderObserved | OrderAbsent | Fill | CancelRequested
         | CancelAcked | CancelNotFound | Settled | Resume)


# --------------------------------------------------------------------------- effects


@attrs.frozen(slots=True)
class StateChanged:
    """The record of one change (``from_state`` may equal ``to_state``: data update)."""

    transaction_id: str
    from_state: OrderState
    to_state: OrderState
    cause: str
    at: datetime


@attrs.frozen(slots=True)
class Ignored:
    """The denial for an event that changed nothing (duplicate, stale, already done)."""

    transaction_id: str
    event: str
    reason: str


@attrs.frozen(slots=True)
class Journal:
    """Append ``order`` with its ``change`` to the journal, durably, before the rest."""

    change: StateChanged
    order: Order


@attrs.frozen(slots=True)
class ReserveFunds:
    """Reserve ``amount`` of ``currency`` as a pending transfer keyed by transaction id."""

    transaction_id: str
    currency: str
    amount: Decimal


@attrs.frozen(slots=True)
class SendCreate:
    """Create the order at the venue; ``attempt`` > 1 is a resubmission with the same id."""

    transaction_id: str
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None
    time_in_force: TimeInForce | None
    attempt: int


@attrs.frozen(slots=True)
class QueryOrder:
    """Look the order up. ``via_history``: the client-id lookup cannot be trusted to see it
    (closed order on an open-only venue), search orders and trades history.
    ``with_trades``: fetch the order's trades too (fills are missing)."""

    transaction_id: str
    client_order_id: str
    venue_order_id: str | None
    symbol: str
    via_history: bool
    with_trades: bool


@attrs.frozen(slots=True)
class SendCancel:
    """Cancel at the venue (idempotent; ``attempt`` counts the retries)."""

    transaction_id: str
    client_order_id: str
    venue_order_id: str | None
    symbol: str
    attempt: int


@attrs.frozen(slots=True)
class PostFill:
    """Post one trade to the ledger (idempotent by trade id)."""

    transaction_id: str
    symbol: str
    side: Side
    trade: Trade


@attrs.frozen(slots=True)
class SettleReservation:
    """Settle the reservation: ``filled``/``cost`` were used, void the remainder."""

    transaction_id: str
    side: Side
    filled: Decimal
    cost: Decimal


Effect = (Journal | ReserveFunds | SendCreate | QueryOrder | SendCancel | PostFill
          | SettleReservation)


@attrs.frozen(slots=True)
class Step:
    """The outcome of one event: the order after it, the effects to perform in order, and
    either the change record or the denial."""

    order: Order
    effects: tuple[Effect, ...] = ()
    change: StateChanged | None = None
    ignored: Ignored | None = None


# --------------------------------------------------------------------------- core


def _check_now(now: object) -> None:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ValueError(f"now: expected a timezone-aware datetime, got {now!r}")


def prepare(*, transaction_id: str, venue: str, client_order_id: str, intent: OrderIntent,
            market: MarketRules, now: datetime) -> Step:
    """Create a PREPARED order after checking ``intent`` against ``market``.

    Effects: journal the intent, then reserve funds. Raises OrderValidationError (nothing
    created) when the intent breaks the market's rules.
    """
    _check_now(now)
    for name, value in (("transaction_id", transaction_id), ("venue", venue),
                        ("client_order_id", client_order_id)):
        if not isinstance(value, str) or not value:
            raise OrderValidationError(name, "invalid", f"expected a non-empty str, "
                                                        f"got {value!r}")
    validate_for_market(intent, market)
    if intent.side is Side.BUY:
        assert intent.price is not None  # OrderIntent.parse guarantees it for buys
        currency, amount = market.quote, intent.amount * intent.price
    else:
        currency, amount = market.base, intent.amount
    order = Order(transaction_id=transaction_id, venue=venue, client_order_id=client_order_id,
                  intent=intent, state=OrderState.PREPARED, reserve_currency=currency,
                  reserve_amount=amount, created_at=now, updated_at=now)
    change = StateChanged(transaction_id, OrderState.PREPARED, OrderState.PREPARED,
                          "prepared: intent validated", now)
    return Step(order, (Journal(change, order), ReserveFunds(transaction_id, currency, amount)),
                change)


def _trigger(order: Order, to_state: OrderState, cause: str, now: datetime,
             changes: Mapping[str, Any]) -> tuple[Order, StateChanged]:
    """The only way an order changes: checked against the table and finality."""
    if order.is_final:
        raise InvalidTransition(order.transaction_id, order.state, to_state, cause,
                                "the order is closed and settled")
    if to_state not in TRANSITIONS[order.state]:
        raise InvalidTransition(order.transaction_id, order.state, to_state, cause)
    if to_state in CLOSED_STATES and order.closed_at is None:
        changes = {**changes, "closed_at": now}
    new = attrs.evolve(order, state=to_state, updated_at=now, **changes)
    return new, StateChanged(order.transaction_id, order.state, to_state, cause, now)


def _query(order: Order, config: ProtocolConfig) -> QueryOrder:
    return QueryOrder(
        transaction_id=order.transaction_id, client_order_id=order.client_order_id,
        venue_order_id=order.venue_order_id, symbol=order.intent.symbol,
        via_history=not config.lookup_sees_closed_orders and order.venue_order_id is None,
        with_trades=not order.trades_complete or order.state is OrderState.UNKNOWN,
    )


def _create(order: Order) -> SendCreate:
    i = order.intent
    return SendCreate(order.transaction_id, order.client_order_id, i.symbol, i.side, i.type,
                      i.amount, i.price, i.time_in_force, order.attempts)


def _cancel(order: Order) -> SendCancel:
    return SendCancel(order.transaction_id, order.client_order_id, order.venue_order_id,
                      order.intent.symbol, order.cancel_attempts)


def _settlement_due(order: Order) -> bool:
    return order.is_closed and order.settled_at is None and order.trades_complete


def _settle(order: Order) -> SettleReservation:
    return SettleReservation(order.transaction_id, order.intent.side, order.fills_total,
                             order.cost)


def _ignored(order: Order, event: object, reason: str) -> Step:
    return Step(order, ignored=Ignored(order.transaction_id, type(event).__name__, reason))


def _commit(order: Order, target: OrderState, cause: str, now: datetime,
            changes: Mapping[str, Any], event: object, config: ProtocolConfig, *,
            new_trades: tuple[Trade, ...] = (), write: tuple[Effect, ...] = (),
            force: bool = False) -> Step:
    """Apply one change through the trigger and derive the follow-up effects.

    Order of effects: Journal, PostFill..., SettleReservation, then wire writes/queries.
    ``force`` journals a record even when no field changes (a resumed write).
    """
    changes = {k: v for k, v in changes.items() if getattr(order, k) != v}
    if target is order.state and not changes and not force:
        return _ignored(order, event, "nothing new")
    new, change = _trigger(order, target, cause, now, changes)
    if new.state is OrderState.ABORTED and not new.reserved and new.settled_at is None:
        new = attrs.evolve(new, settled_at=now)  # nothing was reserved: nothing to settle
    effects: list[Effect] = [Journal(change, new)]
    effects += [PostFill(new.transaction_id, new.intent.symbol, new.intent.side, t)
                for t in new_trades]
    if _settlement_due(new) and (not _settlement_due(order) or force):
        effects.append(_settle(new))
    effects += write
    if new.is_closed and not new.trades_complete and order.trades_complete:
        effects.append(_query(new, config))
    return Step(new, tuple(effects), change)


def _merge_trades(order: Order, trades: tuple[Trade, ...]) -> tuple[tuple[Trade, ...],
                                                                    tuple[Trade, ...], Decimal]:
    """Deduplicate by trade id; refuse a reused id with other figures and overfills.

    Returns all fills, the new ones, and the trades' total."""
    known = {t.trade_id: t for t in order.fills}
    new: list[Trade] = []
    for trade in trades:
        seen = known.get(trade.trade_id)
        if seen is None:
            known[trade.trade_id] = trade
            new.append(trade)
        elif seen != trade:
            raise ConflictingVenueReport(order.transaction_id,
                                         f"trade {trade.trade_id} reported as {seen} and {trade}")
    fills = order.fills + tuple(new)
    total = sum((t.amount for t in fills), Decimal(0))
    if total > order.intent.amount:
        raise FillExceedsAmount(order.transaction_id, total, order.intent.amount)
    return fills, tuple(new), total


def _observe(order: Order, snapshot: VenueSnapshot, cause: str, now: datetime,
             event: object, config: ProtocolConfig) -> Step:
    """Fold a venue report into the order: stale parts are dropped, contradictions raise."""
    tx = order.transaction_id
    if snapshot.filled > order.intent.amount:
        raise FillExceedsAmount(tx, snapshot.filled, order.intent.amount)
    if (snapshot.venue_order_id is not None and order.venue_order_id is not None
            and snapshot.venue_order_id != order.venue_order_id):
        raise ConflictingVenueReport(tx, f"venue order id {snapshot.venue_order_id} but "
                                         f"{order.venue_order_id} is known: two venue orders")
    fills, new_trades, fills_total = _merge_trades(order, snapshot.trades)
    filled = max(order.filled, snapshot.filled, fills_total)
    reported = _VENUE_TARGET[snapshot.status]
    if order.is_closed and reported is OrderState.OPEN and order.acknowledged_at is not None:
        target = order.state  # an older report of an order that has closed since
    else:
        target = reported
    if target is OrderState.OPEN and filled == order.intent.amount:
        target = OrderState.FILLED
    if target is OrderState.REJECTED and filled > 0:
        raise ConflictingVenueReport(tx, f"rejected with {filled} filled")
    changes: dict[str, Any] = {"fills": fills, "filled": filled}
    if not order.is_final:  # a final order takes no late details, only refuses news
        changes["venue_order_id"] = order.venue_order_id or snapshot.venue_order_id
        changes["average_price"] = snapshot.average_price or order.average_price
        if order.acknowledged_at is None and reported is not OrderState.REJECTED:
            changes["acknowledged_at"] = snapshot.observed_at
    write: tuple[Effect, ...] = ()
    if target is OrderState.OPEN and order.cancel_requested_at is not None:
        changes["cancel_attempts"] = order.cancel_attempts + 1
        write = (SendCancel(tx, order.client_order_id, changes.get("venue_order_id"),
                            order.intent.symbol, changes["cancel_attempts"]),)
    return _commit(order, target, cause, now, changes, event, config,
                   new_trades=new_trades, write=write)


def apply(order: Order, event: Event, now: datetime, config: ProtocolConfig) -> Step:
    """Apply ``event`` to ``order`` at ``now``.

    Returns a Step; raises a ProtocolError (InvalidTransition, FillExceedsAmount,
    ConflictingVenueReport) when the event cannot be accepted — the order is then unchanged
    and the caller keeps the one it passed in.
    """
    _check_now(now)
    tx = order.transaction_id
    state = order.state
    name = type(event).__name__

    if isinstance(event, FundsReserved):
        if order.reserved:
            return _ignored(order, event, "already reserved")
        if state is not OrderState.PREPARED:
            raise InvalidTransition(tx, state, state, name, "reservation after preparation")
        return _commit(order, state, "funds reserved", now, {"reserved": True}, event, config)

    if isinstance(event, ReservationRefused):
        if state is OrderState.ABORTED:
            return _ignored(order, event, "already aborted")
        if order.reserved or state is not OrderState.PREPARED:
            raise InvalidTransition(tx, state, OrderState.ABORTED, name,
                                    "funds were already reserved")
        return _commit(order, OrderState.ABORTED, f"reservation refused: {event.reason}", now,
                       {"reason": event.reason}, event, config)

    if isinstance(event, Submit):
        if state is not OrderState.PREPARED:
            return _ignored(order, event, f"already {state.value}")
        if not order.reserved:
            raise InvalidTransition(tx, state, OrderState.SUBMITTING, name,
                                    "funds are not reserved yet")
        changes = {"attempts": 1, "last_sent_at": now}
        return _commit(order, OrderState.SUBMITTING, "submit: attempt 1", now, changes, event,
                       config, write=(_create(attrs.evolve(order, attempts=1)),))

    if isinstance(event, SubmitAcked):
        if event.attempt > order.attempts or event.attempt < 1:
            raise InvalidTransition(tx, state, state, name,
                                    f"ack for attempt {event.attempt} of {order.attempts}")
        if state is OrderState.PREPARED:
            raise InvalidTransition(tx, state, OrderState.OPEN, name)
        return _observe(order, event.snapshot, f"submit acknowledged (attempt {event.attempt})",
                        now, event, config)

    if isinstance(event, SubmitRejected | SubmitAmbiguous):
        if state is not OrderState.SUBMITTING or event.attempt != order.attempts:
            return _ignored(order, event, f"late answer for attempt {event.attempt} "
                                          f"while {state.value} at attempt {order.attempts}")
        if isinstance(event, SubmitRejected) and not event.duplicate_client_order_id:
            return _commit(order, OrderState.REJECTED, f"submit rejected: {event.reason}", now,
                           {"reason": event.reason}, event, config)
        cause = (f"submit rejected as duplicate: {event.reason}"
                 if isinstance(event, SubmitRejected) else f"submit ambiguous: {event.reason}")
        step = _commit(order, OrderState.UNKNOWN, cause, now, {"reason": event.reason}, event,
                       config)
        return attrs.evolve(step, effects=step.effects + (_query(step.order, config),))

    if isinstance(event, OrderObserved):
        if state is OrderState.PREPARED:
            raise InvalidTransition(tx, state, OrderState.OPEN, name, "nothing was sent")
        return _observe(order, event.snapshot, "order observed at the venue", now, event, config)

    if isinstance(event, OrderAbsent):
        return _absent(order, event, now, config)

    if isinstance(event, Fill):
        return _fill(order, event, now, config)

    if isinstance(event, CancelRequested):
        return _cancel_requested(order, event, now, config)

    if isinstance(event, CancelAcked):
        if event.snapshot is None:
            if order.is_closed:
                return _ignored(order, event, f"already {state.value}")
            return Step(order, (_query(order, config),))
        if state is OrderState.PREPARED:
            raise InvalidTransition(tx, state, OrderState.CANCELED, name, "nothing was sent")
        return _observe(order, event.snapshot, "cancel acknowledged", now, event, config)

    if isinstance(event, CancelNotFound):
        if order.is_closed or state is OrderState.PREPARED:
            return _ignored(order, event, f"already {state.value}")
        return Step(order, (attrs.evolve(_query(order, config), with_trades=True,
                                         via_history=not config.lookup_sees_closed_orders),))

    if isinstance(event, Settled):
        if order.settled_at is not None:
            return _ignored(order, event, "already settled")
        if not _settlement_due(order):
            raise InvalidTransition(tx, state, state, name,
                                    "settlement before the order closed with all its trades")
        return _commit(order, state, "reservation settled", now, {"settled_at": now}, event,
                       config)

    if isinstance(event, Resume):
        return _resume(order, event, now, config)

    raise TypeError(f"not an order protocol event: {event!r}")


def _absent(order: Order, event: OrderAbsent, now: datetime, config: ProtocolConfig) -> Step:
    state = order.state
    if state is OrderState.OPEN:
        # Known to exist, now invisible: it closed; only the history can say how.
        return Step(order, (attrs.evolve(_query(order, config), via_history=True,
                                         with_trades=True),))
    if event.confirmed_at > now:
        raise MalformedVenueReport("confirmed_at", event.confirmed_at, f"later than now ({now})")
    if state is not OrderState.UNKNOWN:
        return _ignored(order, event, f"consistent with {state.value}")
    if not config.lookup_sees_closed_orders and not event.searched_history:
        return Step(order, (attrs.evolve(_query(order, config), via_history=True),))
    assert order.last_sent_at is not None  # UNKNOWN is only reached after a send
    trusted_from = order.last_sent_at + config.absence_grace
    if event.confirmed_at < trusted_from:
        return _ignored(order, event, f"absence at {event.confirmed_at.isoformat()} is within "
                                      f"the grace window (until {trusted_from.isoformat()})")
    if order.cancel_requested_at is not None:
        return _commit(order, OrderState.ABORTED, "confirmed absent; cancel was requested",
                       now, {"reason": "canceled before reaching the venue"}, event, config)
    if order.attempts >= config.max_submit_attempts:
        return _commit(order, OrderState.ABORTED,
                       f"confirmed absent after {order.attempts} attempts", now,
                       {"reason": f"absent at the venue after {order.attempts} attempts"},
                       event, config)
    attempt = order.attempts + 1
    return _commit(order, OrderState.SUBMITTING,
                   f"confirmed absent past grace: resubmit (attempt {attempt})", now,
                   {"attempts": attempt, "last_sent_at": now}, event, config,
                   write=(_create(attrs.evolve(order, attempts=attempt)),))


def _fill(order: Order, event: Fill, now: datetime, config: ProtocolConfig) -> Step:
    state = order.state
    if any(t.trade_id == event.trade.trade_id for t in order.fills):
        _merge_trades(order, (event.trade,))  # raises if the figures differ
        return _ignored(order, event, f"trade {event.trade.trade_id} already recorded")
    if state is OrderState.PREPARED or (state in (OrderState.REJECTED, OrderState.ABORTED)
                                        and order.acknowledged_at is None):
        raise InvalidTransition(order.transaction_id, state, OrderState.OPEN,
                                f"Fill {event.trade.trade_id}",
                                "a trade for an order the venue never held")
    fills, new_trades, total = _merge_trades(order, (event.trade,))
    if order.is_closed:
        target = state
    elif total == order.intent.amount:
        target = OrderState.FILLED
    else:
        target = OrderState.OPEN  # a trade proves the order exists
    changes: dict[str, Any] = {"fills": fills, "filled": max(order.filled, total)}
    if order.acknowledged_at is None:
        changes["acknowledged_at"] = now
    write: tuple[Effect, ...] = ()
    if (target is OrderState.OPEN and state is not OrderState.OPEN
            and order.cancel_requested_at is not None):
        changes["cancel_attempts"] = order.cancel_attempts + 1
        write = (SendCancel(order.transaction_id, order.client_order_id, order.venue_order_id,
                            order.intent.symbol, changes["cancel_attempts"]),)
    return _commit(order, target, f"trade {event.trade.trade_id}", now, changes, event, config,
                   new_trades=new_trades, write=write)


def _cancel_requested(order: Order, event: CancelRequested, now: datetime,
                      config: ProtocolConfig) -> Step:
    state = order.state
    if order.is_closed:
        return _ignored(order, event, f"already {state.value}")
    first = order.cancel_requested_at or now
    cause = f"cancel requested: {event.reason}"
    if state is OrderState.PREPARED:
        return _commit(order, OrderState.ABORTED, cause, now,
                       {"cancel_requested_at": first, "reason": event.reason}, event, config)
    if state is OrderState.OPEN:
        attempt = order.cancel_attempts + 1
        return _commit(order, state, cause, now,
                       {"cancel_requested_at": first, "cancel_attempts": attempt}, event, config,
                       write=(_cancel(attrs.evolve(order, cancel_attempts=attempt)),))
    # SUBMITTING or UNKNOWN: no venue order to cancel yet; the intent waits for the outcome.
    step = _commit(order, state, cause, now, {"cancel_requested_at": first}, event, config)
    if state is OrderState.UNKNOWN and step.change is not None:
        return attrs.evolve(step, effects=step.effects + (_query(order, config),))
    return step


def _resume(order: Order, event: Resume, now: datetime, config: ProtocolConfig) -> Step:
    state = order.state
    if order.is_final:
        return _ignored(order, event, "final")
    if state is OrderState.PREPARED:
        if order.reserved:
            return _ignored(order, event, "prepared and reserved: ready to submit")
        step = _commit(order, state, "resumed: reserve funds", now, {}, event, config,
                       force=True)
        return attrs.evolve(step, effects=step.effects + (
            ReserveFunds(order.transaction_id, order.reserve_currency, order.reserve_amount),))
    if state is OrderState.SUBMITTING:
        step = _commit(order, OrderState.UNKNOWN,
                       "resumed while submitting: the create may have reached the venue", now,
                       {}, event, config)
        return attrs.evolve(step, effects=step.effects + (_query(step.order, config),))
    if state is OrderState.UNKNOWN:
        return Step(order, (_query(order, config),))
    if state is OrderState.OPEN:
        if order.cancel_requested_at is None:
            return _ignored(order, event, "open: the in-flight schedule follows it")
        attempt = order.cancel_attempts + 1
        return _commit(order, state, "resumed: cancel pending", now,
                       {"cancel_attempts": attempt}, event, config,
                       write=(_cancel(attrs.evolve(order, cancel_attempts=attempt)),))
    if _settlement_due(order):
        return _commit(order, state, "resumed: settle the reservation", now, {}, event, config,
                       force=True)
    return Step(order, (attrs.evolve(_query(order, config), with_trades=True),))


def lookup_priority(order: Order) -> int | None:
    """How urgently the in-flight schedule should look the order up (0 first), or None.

    0: UNKNOWN. 1: cancel pending, or closed with trades missing. 2: OPEN (fills progress).
    SUBMITTING waits for its answer (every ask has a timeout); PREPARED was never sent.
    """
    if order.state is OrderState.UNKNOWN:
        return 0
    if order.state is OrderState.OPEN:
        return 1 if order.cancel_requested_at is not None else 2
    if order.is_closed and not order.trades_complete:
        return 1
    return None
