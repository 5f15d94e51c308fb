"""The message protocol: frozen, slotted attrs classes, one module per conversation.

``messages.exchange`` is the gateway conversation; ``messages.codec`` turns any message into
JSON and back (strictly, with :class:`MessageDecodeError` naming the failing field);
``messages.supervision`` holds the supervision events and status records, ``messages.event_log``
the query of the node's event log.
"""

from messages.base import DECIMAL_TAG, FrozenMap, Value, check_value, freeze, new_id, utc_now
from messages.codec import (
    MessageDecodeError,
    converter,
    from_dict,
    from_json,
    register_tagged_union,
    to_dict,
    to_json,
)
from messages.event_log import RecentEvents
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
from messages.supervision import (
    ActorStatistics,
    ChildCrashed,
    ChildKind,
    ChildRestarted,
    ChildStarted,
    ChildState,
    ChildStatus,
    ChildStopped,
    DeadLetter,
    SupervisionEvent,
    SupervisorGaveUp,
    SupervisorStatus,
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
    "converter",
    "register_tagged_union",
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
    # event log
    "RecentEvents",
    # supervision
    "ActorStatistics",
    "ChildCrashed",
    "ChildKind",
    "ChildRestarted",
    "ChildStarted",
    "ChildState",
    "ChildStatus",
    "ChildStopped",
    "DeadLetter",
    "SupervisionEvent",
    "SupervisorGaveUp",
    "SupervisorStatus",
]
