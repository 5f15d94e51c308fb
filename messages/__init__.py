"""The message protocol: frozen, slotted attrs classes, one module per conversation.

``messages.exchange`` is the gateway conversation; ``messages.codec`` turns any message into
JSON and back (strictly, with :class:`MessageDecodeError` naming the failing field).
"""

from messages.base import DECIMAL_TAG, FrozenMap, Value, check_value, freeze, new_id, utc_now
from messages.codec import MessageDecodeError, from_dict, from_json, to_dict, to_json
from messages.exchange import (
    Category,
    CircuitOpen,
    DeadlineExceeded,
    ExchangeErrorReply,
    ExchangeFailed,
    ExchangeRejected,
    ExchangeReply,
    ExchangeRequest,
    ExchangeResult,
    OutcomeUnknown,
    Overloaded,
)

__all__ = [
    # base
    "DECIMAL_TAG",
    "FrozenMap",
    "Value",
    "check_value",
    "freeze",
    "new_id",
    "utc_now",
    # codec
    "MessageDecodeError",
    "from_dict",
    "from_json",
    "to_dict",
    "to_json",
    # exchange
    "Category",
    "CircuitOpen",
    "DeadlineExceeded",
    "ExchangeErrorReply",
    "ExchangeFailed",
    "ExchangeRejected",
    "ExchangeReply",
    "ExchangeRequest",
    "ExchangeResult",
    "OutcomeUnknown",
    "Overloaded",
]
