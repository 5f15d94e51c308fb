"""The gateway conversation: one :class:`ExchangeRequest`, answered by exactly one reply.

A reply is either an :class:`ExchangeResult` or one of the typed errors in
:data:`ExchangeErrorReply`; callers match on the type (``isinstance(reply, ExchangeErrorReply)``
works, it is a union). Expected failures are these values, never exceptions.

Deadlines are ``time.monotonic()`` instants of the process that built the request: they bound
the work inside this node; ``created`` is the wall-clock UTC time, for the audit trail.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from messages import _checks as check
from messages.base import FrozenMap, Value, check_value, freeze, new_id, trusted, utc_now

__all__ = [
    "Category",
    "ExchangeRequest",
    "ExchangeResult",
    "CircuitOpen",
    "Overloaded",
    "DeadlineExceeded",
    "OutcomeUnknown",
    "ExchangeRejected",
    "ExchangeFailed",
    "ExchangeErrorReply",
    "ExchangeReply",
]


def _float_free_value(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    """A Value that may carry money: no float anywhere inside (FloatNotAllowed names where)."""
    check_value(value, attribute.name, floats=False)


class Category(enum.Enum):
    """Which bulkhead and breaker a request belongs to: reads can never starve orders."""

    MARKET_DATA = "market_data"
    TRADING = "trading"

    # Members are singletons, so identity hashing is exact; Enum's own __hash__ is Python code
    # and showed up in the gateway's per-call profile (queues and counters keyed by category).
    __hash__ = object.__hash__


def _freeze_args(value: Any) -> tuple:
    kind = type(value)
    if (kind is list or kind is tuple) and all(type(item) is str for item in value):
        return tuple(value)  # the common case: symbols and order fields as strings
    frozen = freeze(value, "args")
    if not isinstance(frozen, tuple):
        raise ValueError(f"args: expected a sequence, got {value!r}")
    return frozen


#: Shared by every request without keyword arguments (a FrozenMap never changes).
_NO_KWARGS = FrozenMap()


def _freeze_kwargs(value: Any) -> FrozenMap:
    if not value:  # None, or an empty mapping or sequence, as before
        return _NO_KWARGS
    frozen = freeze(value, "kwargs")
    if not isinstance(frozen, FrozenMap):
        raise ValueError(f"kwargs: expected a mapping, got {value!r}")
    return frozen


def _plainly_valid(venue: Any, method: Any, category: Any, idempotent: Any, deadline: Any,
                   created: Any) -> bool:
    """ExchangeRequest's validators in one expression, for the fields `new` did not build
    itself (args and kwargs come frozen, hence valid): every exchange call builds a request."""
    return (type(venue) is str and bool(venue.strip()) and type(method) is str
            and method.isascii() and method.isidentifier() and not method.startswith("_")
            and type(category) is Category and type(idempotent) is bool
            and type(deadline) is float and math.isfinite(deadline)
            and type(created) is datetime and created.utcoffset() is not None)


@attrs.frozen(kw_only=True)
class ExchangeRequest:
    """Call ``method(*args, **kwargs)`` on the ccxt client of ``venue`` before ``deadline``.

    ``idempotent`` says whether the call may be retried on another worker after a worker
    died mid-call; a non-idempotent request (``create_order``) is then answered
    :class:`OutcomeUnknown` instead.
    """

    id: str = attrs.field(validator=check.non_empty_str)
    venue: str = attrs.field(validator=check.non_empty_str)
    method: str = attrs.field(validator=check.public_method_name)
    args: tuple[Value, ...] = attrs.field(default=(), validator=check.value_tuple)
    kwargs: FrozenMap = attrs.field(factory=FrozenMap, validator=check.value_map)
    category: Category = attrs.field(validator=attrs.validators.instance_of(Category))
    idempotent: bool = attrs.field(validator=check.strict_bool)
    deadline: float = attrs.field(validator=check.finite_float)
    created: datetime = attrs.field(validator=check.aware_datetime)

    def __attrs_post_init__(self) -> None:
        if self.category is Category.TRADING:  # amounts and prices: Decimal or str, never float
            check_value(self.args, "args", floats=False)
            check_value(self.kwargs, "kwargs", floats=False)

    @classmethod
    def new(
        cls,
        venue: str,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        category: Category,
        idempotent: bool,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
    ) -> ExchangeRequest:
        """A request with a fresh id, due ``timeout`` seconds after ``clock()``.

        ``args``/``kwargs`` may be plain lists and dicts; they are frozen (a ``ValueError``
        names the offending element if they are not JSON-like; a float in a trading request
        is a :class:`~messages.base.FloatNotAllowed`).
        """
        if isinstance(timeout, bool) or not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout: expected a finite number > 0, got {timeout!r}")
        request_id, deadline, created = new_id(), clock() + timeout, now()
        frozen_args, frozen_kwargs = _freeze_args(args), _freeze_kwargs(kwargs)
        if not _plainly_valid(venue, method, category, idempotent, deadline, created):
            return cls(id=request_id, venue=venue, method=method, args=frozen_args,
                       kwargs=frozen_kwargs, category=category, idempotent=idempotent,
                       deadline=deadline, created=created)  # the validators say what is wrong
        if category is Category.TRADING:
            check_value(frozen_args, "args", floats=False)
            check_value(frozen_kwargs, "kwargs", floats=False)
        return trusted(cls)(id=request_id, venue=venue, method=method, args=frozen_args,
                            kwargs=frozen_kwargs, category=category, idempotent=idempotent,
                            deadline=deadline, created=created)

    def remaining(self, now: float) -> float:
        """Seconds left before the deadline at monotonic time ``now`` (never negative)."""
        return max(0.0, self.deadline - now)

    def expired(self, now: float) -> bool:
        """True once monotonic time ``now`` has reached the deadline."""
        return now >= self.deadline


@attrs.frozen(kw_only=True)
class ExchangeResult:
    """The venue answered: ``value`` is ccxt's return value, frozen, with no float inside.

    ``stale`` is True when the value was served from cache because the circuit is open.
    """

    request_id: str = attrs.field(validator=check.non_empty_str)
    value: Value = attrs.field(validator=_float_free_value)
    latency: float = attrs.field(validator=check.non_negative_float)
    stale: bool = attrs.field(default=False, validator=check.strict_bool)

    @classmethod
    def from_ccxt(
        cls, request_id: str, value: Any, latency: float, *, stale: bool = False
    ) -> ExchangeResult:
        """Wrap a raw ccxt return value (dicts, lists, floats...) after freezing it.

        ccxt parses prices and amounts into floats (binance order books, tickers); each becomes
        ``Decimal(repr(x))`` here, at the edge, so no float reaches our code.
        """
        frozen = freeze(value, "value", floats_to_decimal=True)  # valid, with no float left
        if (type(request_id) is str and request_id.strip() and type(latency) is float
                and 0.0 <= latency < math.inf and type(stale) is bool):
            return trusted(cls)(request_id=request_id, value=frozen, latency=latency,
                                stale=stale)
        return cls(request_id=request_id, value=frozen, latency=latency, stale=stale)


@attrs.frozen(kw_only=True)
class CircuitOpen:
    """Refused at once: the breaker of ``venue``/``category`` is open; nothing was sent.

    ``next_probe_in`` is how many seconds remain until the breaker lets a probe through.
    """

    request_id: str = attrs.field(validator=check.non_empty_str)
    venue: str = attrs.field(validator=check.non_empty_str)
    category: Category = attrs.field(validator=attrs.validators.instance_of(Category))
    next_probe_in: float = attrs.field(validator=check.non_negative_float)

    def next_probe_at(self, received_at: float) -> float:
        """The monotonic instant of the next probe, given when this reply was received."""
        return received_at + self.next_probe_in


@attrs.frozen(kw_only=True)
class Overloaded:
    """Refused: the queue for this category is full (backpressure); nothing was sent."""

    request_id: str = attrs.field(validator=check.non_empty_str)
    reason: str = attrs.field(validator=check.non_empty_str)


@attrs.frozen(kw_only=True)
class DeadlineExceeded:
    """The deadline passed before an answer; ``sent`` says whether the call reached the wire.

    When ``sent`` is True and the request is not idempotent the reply is
    :class:`OutcomeUnknown` instead, so a DeadlineExceeded never hides an effect.
    """

    request_id: str = attrs.field(validator=check.non_empty_str)
    deadline: float = attrs.field(validator=check.finite_float)
    sent: bool = attrs.field(default=False, validator=check.strict_bool)


@attrs.frozen(kw_only=True)
class OutcomeUnknown:
    """A non-idempotent call may or may not have taken effect (timeout, 5xx, worker died).

    It was not retried: the transaction layer must look the order up before acting again.
    """

    request_id: str = attrs.field(validator=check.non_empty_str)
    reason: str = attrs.field(validator=check.non_empty_str)


@attrs.frozen(kw_only=True)
class ExchangeRejected:
    """A definitive "no" from the venue (InvalidOrder, InsufficientFunds, OrderNotFound...).

    ``error_class`` is the ccxt exception class name. It does not count against the breaker.
    """

    request_id: str = attrs.field(validator=check.non_empty_str)
    error_class: str = attrs.field(validator=check.non_empty_str)
    message: str = attrs.field(validator=attrs.validators.instance_of(str))

    @classmethod
    def from_exception(cls, request_id: str, error: BaseException) -> ExchangeRejected:
        """Record a ccxt exception by its class name and message."""
        return cls(request_id=request_id, error_class=type(error).__name__, message=str(error))


@attrs.frozen(kw_only=True)
class ExchangeFailed:
    """A network-family failure (timeout, connection error, 5xx, 429/418) of an idempotent call.

    It counts against the breaker; ``retry_after`` carries the venue's Retry-After in seconds.
    """

    request_id: str = attrs.field(validator=check.non_empty_str)
    error_class: str = attrs.field(validator=check.non_empty_str)
    message: str = attrs.field(validator=attrs.validators.instance_of(str))
    retry_after: float | None = attrs.field(
        default=None, validator=check.optional_non_negative_float
    )

    @classmethod
    def from_exception(
        cls, request_id: str, error: BaseException, *, retry_after: float | None = None
    ) -> ExchangeFailed:
        """Record a ccxt exception by its class name and message."""
        return cls(
            request_id=request_id,
            error_class=type(error).__name__,
            message=str(error),
            retry_after=retry_after,
        )


#: Every typed error reply; usable with ``isinstance``.
ExchangeErrorReply = (
    CircuitOpen | Overloaded | DeadlineExceeded | OutcomeUnknown | ExchangeRejected | ExchangeFailed
)

#: Exactly what an ExchangeRequest is answered with.
ExchangeReply = ExchangeResult | ExchangeErrorReply
