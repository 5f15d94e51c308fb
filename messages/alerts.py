"""The alerts conversation: events the alert manager turns into alerts, operator commands, and
the alert, silence, notification and delivery records it answers with.

Publish an event with ``supervisors.tell("alerts/alert-manager", BreakerOpened(...))``; ask
a command with ``supervisors.ask("alerts/alert-manager", ListAlerts(), timeout=...)``. A
command is answered by exactly one record or an :class:`AlertCommandRejected` (never raises
for bad operator input). Timestamps ``at`` are wall-clock seconds (``time.time()``).
"""

from __future__ import annotations

import enum
import re
from decimal import Decimal
from typing import Any

import attrs

from messages._checks import (
    finite_decimal,
    finite_float,
    non_empty_str,
    non_negative_float,
    optional_non_negative_float,
)
from messages.base import FrozenMap
from messages.codec import register_tagged_union

__all__ = [
    "AlertLevel",
    "AlertState",
    "NotifyReason",
    "DeliveryStatus",
    "MatchOp",
    "HEALTH_STATUSES",
    # events
    "BreakerOpened",
    "BreakerClosed",
    "LedgerDiscrepancy",
    "TradingHalted",
    "TradingResumed",
    "RateLimitPaused",
    "VenueBanned",
    "OrderUnknown",
    "OrderUnknownResolved",
    "JournalIntegrityFailed",
    "HealthChanged",
    "ChannelDeliveryFailed",
    "ChannelDeliveryRecovered",
    "AlertEvent",
    # records
    "LabelMatcher",
    "Silence",
    "Alert",
    "NotificationItem",
    "Notification",
    "DeliveryResult",
    "AlertView",
    "NotificationView",
    # commands and replies
    "AckAlert",
    "ResolveAlert",
    "CreateSilence",
    "ExpireSilence",
    "ListAlerts",
    "ListSilences",
    "ListNotifications",
    "AlertCommandRejected",
    "AlertList",
    "SilenceList",
    "NotificationList",
    "AlertReply",
    "DeliverNotification",
]


class AlertLevel(enum.Enum):
    """Severity, in increasing order (``rank`` compares them)."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(AlertLevel).index(self)


class AlertState(enum.Enum):
    """Lifecycle of one alert: firing → acknowledged → resolved (pending: waiting for `for`)."""

    PENDING = "pending"
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class NotifyReason(enum.Enum):
    """Why an alert is in a notification."""

    NEW = "new"
    REPEAT = "repeat"
    ESCALATED = "escalated"  # its acknowledgment expired while it still fires
    FLAPPING = "flapping"
    RESOLVED = "resolved"


class DeliveryStatus(enum.Enum):
    """One notification on one channel: pending (queued), retrying, delivered or failed."""

    PENDING = "pending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED)


class MatchOp(enum.Enum):
    """Label matcher operators, as Alertmanager's."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


HEALTH_STATUSES = ("ok", "degraded", "down")


def _health_status(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value not in HEALTH_STATUSES:
        raise ValueError(f"{attribute.name}: expected one of {HEALTH_STATUSES}, got {value!r}")


def _non_negative_decimal(instance: object, attribute: attrs.Attribute, value: Any) -> None:
    finite_decimal(instance, attribute, value)
    if value < 0:
        raise ValueError(f"{attribute.name}: expected a Decimal >= 0, got {value!r}")


def _str_map(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, FrozenMap) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"{attribute.name}: expected a FrozenMap of str to str, got {value!r}")


def _optional_str(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{attribute.name}: expected a str or None, got {value!r}")


# -- events (past tense): what happened somewhere in the node ---------------------------------


@attrs.frozen(slots=True)
class BreakerOpened:
    """A circuit breaker of a venue opened (the gatekeeper publishes its transitions)."""

    venue: str = attrs.field(validator=non_empty_str)
    breaker: str = attrs.field(validator=non_empty_str)
    reason: str
    at: float = attrs.field(validator=finite_float)


@attrs.frozen(slots=True)
class BreakerClosed:
    """A circuit breaker of a venue closed again."""

    venue: str = attrs.field(validator=non_empty_str)
    breaker: str = attrs.field(validator=non_empty_str)
    at: float = attrs.field(validator=finite_float)


@attrs.frozen(slots=True)
class LedgerDiscrepancy:
    """Reconciliation compared the ledger with the venue for one currency (within tolerance
    or not: a report within tolerance clears the alert). ``tolerance`` is the largest
    difference allowed for these totals; 0 means only an exact match is within it."""

    venue: str = attrs.field(validator=non_empty_str)
    currency: str = attrs.field(validator=non_empty_str)
    ledger: Decimal = attrs.field(validator=finite_decimal)
    venue_balance: Decimal = attrs.field(validator=finite_decimal)
    tolerance: Decimal = attrs.field(validator=_non_negative_decimal)
    at: float = attrs.field(validator=finite_float)


@attrs.frozen(slots=True)
class TradingHalted:
    """Trading in a currency on a venue was frozen (e.g. by a discrepancy beyond tolerance)."""

    venue: str = attrs.field(validator=non_empty_str)
    currency: str = attrs.field(validator=non_empty_str)
    reason: str
    at: float = attrs.field(validator=finite_float)


@attrs.frozen(slots=True)
class TradingResumed:
    """Trading in a currency on a venue resumed."""

    venue: str = attrs.field(validator=non_empty_str)
    currency: str = attrs.field(validator=non_empty_str)
    at: float = attrs.field(validator=finite_float)


@attrs.frozen(slots=True)
class RateLimitPaused:
    """The venue asked us to back off (429): requests paused for ``seconds``."""

    venue: str = attrs.field(validator=non_empty_str)
    seconds: float = attrs.field(validator=non_negative_float)
    reason: str
    at: float = attrs.field(validator=finite_float)


@attrs.frozen(slots=True)
class VenueBanned:
    """The venue banned us (418 / IP ban) for ``seconds``."""

    venue: str = attrs.field(validator=non_empty_str)
    seconds: float = attrs.field(validator=non_negative_float)
    reason: str
    at: float = attrs.field(validator=finite_float)


@attrs.frozen(slots=True)
class OrderUnknown:
    """An order's outcome became unknown (timeout, 5xx, worker died): the alert fires if it
    stays unknown longer than the configured time."""

    venue: str = attrs.field(validator=non_empty_str)
    client_order_id: str = attrs.field(validator=non_empty_str)
    at: float = attrs.field(validator=finite_float)


@attrs.frozen(slots=True)
class OrderUnknownResolved:
    """An order that was unknown is known again (open, rejected, absent...)."""

    venue: str = attrs.field(validator=non_empty_str)
    client_order_id: str = attrs.field(validator=non_empty_str)
    at: float = attrs.field(validator=finite_float)


@attrs.frozen(slots=True)
class JournalIntegrityFailed:
    """The journal's hash chain or a record failed verification."""

    journal: str = attrs.field(validator=non_empty_str)
    reason: str
    at: float = attrs.field(validator=finite_float)


@attrs.frozen(slots=True)
class HealthChanged:
    """A component's derived health changed (``status``: ok, degraded or down)."""

    component: str = attrs.field(validator=non_empty_str)
    status: str = attrs.field(validator=_health_status)
    reason: str
    at: float = attrs.field(validator=finite_float)


@attrs.frozen(slots=True)
class ChannelDeliveryFailed:
    """A notification channel failed to deliver (breaker opened or a delivery gave up)."""

    channel: str = attrs.field(validator=non_empty_str)
    reason: str
    at: float = attrs.field(validator=finite_float)


@attrs.frozen(slots=True)
class ChannelDeliveryRecovered:
    """A notification channel delivered again after failing."""

    channel: str = attrs.field(validator=non_empty_str)
    at: float = attrs.field(validator=finite_float)


AlertEvent = (
    BreakerOpened
    | BreakerClosed
    | LedgerDiscrepancy
    | TradingHalted
    | TradingResumed
    | RateLimitPaused
    | VenueBanned
    | OrderUnknown
    | OrderUnknownResolved
    | JournalIntegrityFailed
    | HealthChanged
    | ChannelDeliveryFailed
    | ChannelDeliveryRecovered
)


# -- records --------------------------------------------------------------------------------


def _matcher_value(instance: LabelMatcher, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{attribute.name}: expected a str, got {value!r}")
    if instance.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"{attribute.name}: invalid regular expression: {error}") from None


@attrs.frozen(slots=True)
class LabelMatcher:
    """Matches one label; a missing label matches as the empty string (as in Alertmanager).
    Regular expressions are anchored at both ends."""

    name: str = attrs.field(validator=non_empty_str)
    op: MatchOp = attrs.field(validator=attrs.validators.instance_of(MatchOp))
    value: str = attrs.field(validator=_matcher_value)

    def matches(self, labels: FrozenMap) -> bool:
        actual = labels.get(self.name, "")
        if self.op is MatchOp.EQUAL:
            return actual == self.value
        if self.op is MatchOp.NOT_EQUAL:
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op is MatchOp.REGEX else not found


@attrs.frozen(slots=True)
class Silence:
    """Mutes every alert whose labels match all ``matchers`` from ``starts_at`` to ``ends_at``."""

    id: str = attrs.field(validator=non_empty_str)
    matchers: tuple[LabelMatcher, ...]
    starts_at: float = attrs.field(validator=finite_float)
    ends_at: float = attrs.field(validator=finite_float)
    created_by: str
    comment: str

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: FrozenMap) -> bool:
        return all(m.matches(labels) for m in self.matchers)


@attrs.frozen(slots=True)
class Alert:
    """One alert as the operator sees it; ``id`` is its fingerprint (stable for its labels)."""

    id: str
    rule: str
    level: AlertLevel
    labels: FrozenMap = attrs.field(validator=_str_map)
    summary: str
    state: AlertState
    flapping: bool
    started_at: float
    updated_at: float
    resolved_at: float | None
    acked_by: str | None
    acked_until: float | None
    silenced_by: tuple[str, ...]
    inhibited: bool
    notifications: int


@attrs.frozen(slots=True)
class NotificationItem:
    """One alert inside a notification, as it was when notified."""

    alert_id: str
    rule: str
    level: AlertLevel
    labels: FrozenMap = attrs.field(validator=_str_map)
    summary: str
    reason: NotifyReason
    started_at: float
    resolved_at: float | None


@attrs.frozen(slots=True)
class Notification:
    """What is sent to every channel: the due alerts of one group (by the grouping labels)."""

    id: str
    group: FrozenMap = attrs.field(validator=_str_map)
    created_at: float
    items: tuple[NotificationItem, ...]

    @property
    def title(self) -> str:
        firing = sum(1 for i in self.items if i.reason is not NotifyReason.RESOLVED)
        resolved = len(self.items) - firing
        top = max((i.level for i in self.items), key=lambda level: level.rank)
        group = ", ".join(f"{k}={v}" for k, v in self.group.items())
        counts = " ".join(
            text for n, text in ((firing, f"{firing} firing"), (resolved, f"{resolved} resolved"))
            if n
        )
        return f"[{top.value.upper()}] {counts} ({group})"

    @property
    def body(self) -> str:
        return "\n".join(f"{i.reason.value}: [{i.level.value}] {i.summary}" for i in self.items)


@attrs.frozen(slots=True)
class DeliveryResult:
    """Where one notification stands on one channel; ``reason`` says why it is not delivered."""

    notification_id: str
    channel: str
    status: DeliveryStatus
    attempts: int
    reason: str | None = attrs.field(validator=_optional_str)
    at: float


@attrs.frozen(slots=True)
class AlertView:
    """An alert with the per-channel results of its notifications (latest first)."""

    alert: Alert
    deliveries: tuple[DeliveryResult, ...]


@attrs.frozen(slots=True)
class NotificationView:
    """A notification with its per-channel delivery results."""

    notification: Notification
    deliveries: tuple[DeliveryResult, ...]


# -- commands (imperative) and their replies ------------------------------------------------


@attrs.frozen(slots=True)
class AckAlert:
    """Acknowledge an alert: no repeats; ``duration`` seconds (None: until resolved), after
    which a still-firing alert escalates again. Answered with the :class:`Alert`."""

    alert_id: str = attrs.field(validator=non_empty_str)
    by: str = attrs.field(validator=non_empty_str)
    duration: float | None = attrs.field(default=None, validator=optional_non_negative_float)


@attrs.frozen(slots=True)
class ResolveAlert:
    """Resolve an alert by hand (for alerts no event clears, e.g. a supervisor gave up)."""

    alert_id: str = attrs.field(validator=non_empty_str)
    by: str = attrs.field(validator=non_empty_str)


@attrs.frozen(slots=True)
class CreateSilence:
    """Silence matching alerts for ``duration`` seconds from now; answered with the
    :class:`Silence`. At least one matcher is required (no silencing everything by accident)."""

    matchers: tuple[LabelMatcher, ...]
    duration: float = attrs.field(validator=non_negative_float)
    created_by: str = attrs.field(validator=non_empty_str)
    comment: str = ""


@attrs.frozen(slots=True)
class ExpireSilence:
    """End a silence now; answered with the expired :class:`Silence`."""

    silence_id: str = attrs.field(validator=non_empty_str)


def _limit(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name}: expected an int >= 1, got {value!r}")


@attrs.frozen(slots=True)
class ListAlerts:
    """Ask for alerts (active; resolved too if asked), latest change first: :class:`AlertList`."""

    include_resolved: bool = False
    limit: int = attrs.field(default=100, validator=_limit)


@attrs.frozen(slots=True)
class ListSilences:
    """Ask for silences (active ones; expired too if asked): :class:`SilenceList`."""

    include_expired: bool = False


@attrs.frozen(slots=True)
class ListNotifications:
    """Ask for the latest notifications with their delivery results: :class:`NotificationList`."""

    limit: int = attrs.field(default=50, validator=_limit)


@attrs.frozen(slots=True)
class AlertCommandRejected:
    """A command that changed nothing, and why (unknown alert, already resolved, ...)."""

    command: str
    reason: str


@attrs.frozen(slots=True)
class AlertList:
    alerts: tuple[AlertView, ...]


@attrs.frozen(slots=True)
class SilenceList:
    silences: tuple[Silence, ...]


@attrs.frozen(slots=True)
class NotificationList:
    notifications: tuple[NotificationView, ...]


AlertReply = Alert | Silence | AlertList | SilenceList | NotificationList | AlertCommandRejected


@attrs.frozen(slots=True)
class DeliverNotification:
    """Manager → channel: deliver this notification (again, after a restart: at least once)."""

    notification: Notification


register_tagged_union(AlertEvent)
register_tagged_union(AlertReply)
