"""The health actor (``health``): polls every component, derives ok/degraded/down, tells the
alert manager what changed, and owns the node's metrics.

Every ``poll_interval`` seconds (a timer, ``send_after``) it reads the components with one
bounded wait (:func:`read_node`: all asks are sent at once, then collected until one shared
deadline, so a hung actor costs at most ``ask_timeout``), derives the report with the pure
rules of :mod:`ironclad.health_rules`, and publishes a ``HealthChanged`` event to the alert
manager for each component whose status changed, and ``TradingHalted`` / ``TradingResumed``
when the ledger's frozen currencies change, ``OrderUnknown`` / ``OrderUnknownResolved`` when
an order's outcome becomes unknown or known again. It also subscribes to supervision events,
reconciliation discrepancies and breaker transitions to feed the event counters of
:class:`~ironclad.metrics.NodeMetrics`; ``GET /metrics`` renders that registry, whose
collector reads the components again at scrape time (from the HTTP thread, not this actor).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import pykka
from loguru import logger

from actors.alert_manager import ALERT_MANAGER, publish_alert_event
from actors.names import GatewayNames, tell_if_up
from actors.pool import LATENCY_BUCKETS, PoolStatistics
from actors.protocol import GetStatistics
from actors.reconciler import (
    GetReconcilerStatistics,
    ReconcilerStatistics,
    subscribe_discrepancies,
)
from actors.trading import LEDGER, RECONCILER, TRANSACTIONS
from actors.transactions import CoordinatorStatistics
from actors.transactions import GetStatistics as GetCoordinatorStatistics
from alerts.rules import breaker_event
from gateway.breaker import Transition
from ironclad.config import Config
from ironclad.health_rules import (
    AlertsReading,
    BreakerReading,
    HealthReport,
    HealthThresholds,
    HealthTracker,
    LedgerReading,
    NodeReadings,
    PoolReading,
    RateLimitReading,
    ReconciliationReading,
    TradingReading,
    Unreadable,
    VenueReadings,
    derive_health,
)
from ironclad.metrics import NodeMetrics
from messages.alerts import (
    HealthChanged,
    ListAlerts,
    OrderUnknown,
    OrderUnknownResolved,
    TradingHalted,
    TradingResumed,
)
from messages.ledger import BalanceDiscrepancy, GetBalances
from messages.orders import ListOrders, OrderList, OrderState
from messages.supervision import ChildKind, SupervisionEvent, SupervisorStatus
from supervisors import (
    ActorUnavailable,
    ChildSpec,
    NameNotFound,
    StatusRequest,
    SupervisedActor,
    Supervisor,
    names,
    subscribe,
)

__all__ = [
    "HEALTH",
    "BreakerTransitioned",
    "GetHealth",
    "GetMetrics",
    "GetNodeStatus",
    "Health",
    "HealthSettings",
    "HealthView",
    "NodeStatusView",
    "health_part",
    "read_node",
    "report_breaker_transition",
]

#: The actor's id in the node tree (and its stable name).
HEALTH = "health"
#: The id of the node's root supervisor (its status names it so).
_ROOT = "node"


@attrs.frozen(kw_only=True)
class HealthSettings:
    """What to poll and how; derived from the node config by :meth:`from_config`."""

    poll_interval: float = 2.0
    ask_timeout: float = 1.0
    thresholds: HealthThresholds = attrs.field(factory=HealthThresholds)
    venue: str | None = "sim"
    workers: int = 4
    queue_bounds: Mapping[str, int] = attrs.field(factory=dict)
    trading: bool = True
    alerts: bool = True
    root: str = _ROOT

    @classmethod
    def from_config(cls, config: Config) -> HealthSettings:
        h = config.health
        return cls(
            poll_interval=h.poll_interval, ask_timeout=h.ask_timeout,
            thresholds=HealthThresholds(
                queue_degraded_ratio=h.queue_degraded_ratio,
                restarts_degraded=h.restarts_degraded,
                journal_lag_degraded=h.journal_lag_degraded,
                reconciliation_max_age=h.reconciliation_max_age),
            venue=config.venue.name, workers=config.pool.workers,
            queue_bounds={"market_data": config.pool.market_data_queue,
                          "trading": config.pool.trading_queue},
            trading=config.trading.enabled, alerts=config.alerts.enabled)


# -- messages -----------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class GetHealth:
    """Ask: the latest :class:`HealthView` (polls once first if none was taken yet)."""


@attrs.frozen(slots=True)
class GetNodeStatus:
    """Ask: the latest :class:`NodeStatusView` (readings and report of the last poll)."""


@attrs.frozen(slots=True)
class GetMetrics:
    """Ask: the node's :class:`~ironclad.metrics.NodeMetrics` (render it off this actor)."""


@attrs.frozen(slots=True)
class HealthView:
    """The report of the poll at ``at`` (wall-clock seconds)."""

    report: HealthReport
    at: float


@attrs.frozen(slots=True)
class NodeStatusView:
    """What the last poll read (the supervision tree, breakers, pool...) and derived."""

    readings: NodeReadings
    report: HealthReport
    at: float


@attrs.frozen(slots=True)
class BreakerTransitioned:
    """A breaker of ``venue`` changed state (told by its gatekeeper, counted in metrics)."""

    venue: str
    breaker: str
    from_state: str
    to_state: str


@attrs.frozen(slots=True)
class _Poll:
    """Timer: read the components and derive health."""


def report_breaker_transition(venue: str, breaker: str, transition: Transition) -> None:
    """For a gatekeeper's breaker listener: count the transition in the metrics and tell the
    alert manager (``BreakerOpened`` / ``BreakerClosed``). Never blocks. A health actor that
    is not running misses it; an alert manager that is restarting too (logged as a warning);
    a node without alerts (no alert manager in its tree) is not told."""
    tell_if_up(HEALTH, BreakerTransitioned(venue, breaker, transition.from_state.value,
                                           transition.to_state.value))
    event = breaker_event(venue, breaker, transition, time.time())
    if event is not None and ALERT_MANAGER in names.registered():
        publish_alert_event(event)


# -- reading the node ---------------------------------------------------------------------------


def _send(name: str, message: Any) -> pykka.Future[Any] | Unreadable:
    try:
        return names.resolve(name, 0.0).ask(message, block=False)
    except (NameNotFound, ActorUnavailable, pykka.ActorDeadError) as error:
        return Unreadable(reason=f"{name}: {type(error).__name__}: {error}")


def _collect(pending: pykka.Future[Any] | Unreadable, name: str, deadline: float) -> Any:
    if isinstance(pending, Unreadable):
        return pending
    try:
        return pending.get(timeout=max(0.0, deadline - time.monotonic()))
    except pykka.Timeout:
        return Unreadable(reason=f"{name} did not answer in time")
    except Exception as error:  # noqa: BLE001 - a crash while answering: that component is down
        return Unreadable(reason=f"{name}: {type(error).__name__}: {error}")


def _tree(statuses: list[SupervisorStatus], root: str) -> SupervisorStatus | Unreadable:
    """Nest the supervisors' own statuses (each lists its children) under the root."""
    by_name = {s.name: s for s in statuses}

    def expand(status: SupervisorStatus) -> SupervisorStatus:
        children = []
        for child in status.children:
            if child.kind is ChildKind.SUPERVISOR and child.name in by_name:
                child = attrs.evolve(child, supervisor=expand(by_name[child.name]))
            children.append(child)
        return attrs.evolve(status, children=tuple(children))

    candidates = [s for s in statuses if s.name == root]
    if not candidates:
        return Unreadable(reason=f"the root supervisor {root!r} did not answer")
    # Several trees in one process (tests): the one that runs this health actor, if any.
    mine = [s for s in candidates if any(c.name == HEALTH for c in s.children)]
    return expand((mine or candidates)[0])


def read_node(settings: HealthSettings, timeout: float) -> NodeReadings:
    """Read every component once, waiting at most ``timeout`` seconds overall.

    Blocks its caller: use it from the health actor's own poll or a thread of the HTTP
    server, never from an actor that one of the components might ask.
    """
    deadline = time.monotonic() + timeout
    supervisors = []
    for ref in pykka.ActorRegistry.get_by_class(Supervisor):
        try:
            supervisors.append(ref.ask(StatusRequest(), block=False))
        except pykka.ActorDeadError:
            continue
    asks: dict[str, tuple[str, pykka.Future[Any] | Unreadable]] = {}

    def ask(key: str, name: str, message: Any) -> None:
        asks[key] = (name, _send(name, message))

    gateway = GatewayNames(settings.venue) if settings.venue is not None else None
    if gateway is not None:
        ask("gatekeeper", gateway.gatekeeper, GetStatistics())
        ask("pool", gateway.dispatcher, GetStatistics())
        ask("rate_limit", gateway.rate_limiter, GetStatistics())
    if settings.trading:
        ask("trading", TRANSACTIONS, GetCoordinatorStatistics())
        ask("unknown", TRANSACTIONS, ListOrders(state=OrderState.UNKNOWN, limit=1000))
        ask("reconciliation", RECONCILER, GetReconcilerStatistics())
        ask("ledger", LEDGER, GetBalances())
    if settings.alerts:
        ask("alerts", ALERT_MANAGER, ListAlerts(limit=10_000))
    answers = {key: _collect(pending, name, deadline) for key, (name, pending) in asks.items()}
    statuses = []
    for future in supervisors:
        answer = _collect(future, "supervisor", deadline)
        if isinstance(answer, SupervisorStatus):
            statuses.append(answer)
    venues: tuple[VenueReadings, ...] = ()
    if gateway is not None:
        venues = (VenueReadings(
            venue=gateway.venue,
            breakers=_breakers(answers["gatekeeper"]),
            pool=_pool(answers["pool"], settings),
            rate_limit=_rate_limit(answers["rate_limit"])),)
    return NodeReadings(
        tree=_tree(statuses, settings.root),
        venues=venues,
        trading=_trading(answers["trading"], answers["unknown"]) if settings.trading else None,
        reconciliation=(_reconciliation(answers["reconciliation"])
                        if settings.trading else None),
        ledger=_ledger(answers["ledger"]) if settings.trading else None,
        alerts=_alerts(answers["alerts"]) if settings.alerts else None,
    )


def _unexpected(answer: Any, what: str) -> Unreadable:
    return answer if isinstance(answer, Unreadable) else Unreadable(
        reason=f"{what} answered {type(answer).__name__}")


def _breakers(answer: Any) -> tuple[BreakerReading, ...] | Unreadable:
    breakers = getattr(answer, "breakers", None)
    if not isinstance(breakers, Mapping):
        return _unexpected(answer, "gatekeeper")
    now = time.monotonic()  # the gatekeeper's breakers run on the monotonic clock
    return tuple(
        BreakerReading(
            breaker=key, category=key.split("/")[1] if key.count("/") >= 1 else key,
            state=m.state.value, opened_count=m.opened_count, calls=m.calls,
            failures=m.failures, rejected=m.rejected, failure_rate=m.failure_rate,
            open_for=None if m.open_until is None else max(0.0, m.open_until - now))
        for key, m in sorted(breakers.items()))


def _pool(answer: Any, settings: HealthSettings) -> PoolReading | Unreadable:
    if not isinstance(answer, PoolStatistics):
        return _unexpected(answer, "pool")
    return PoolReading(
        queued=dict(answer.queued), bounds=dict(settings.queue_bounds),
        in_flight=dict(answer.in_flight), idle_workers=answer.idle_workers,
        known_workers=answer.known_workers, expected_workers=settings.workers,
        submitted=answer.submitted, overloaded=answer.overloaded, expired=answer.expired,
        lost=answer.lost, latency=dict(answer.latency), latency_buckets=LATENCY_BUCKETS,
        latency_sum=dict(answer.latency_sum),
        errors=dict(answer.errors))


def _rate_limit(answer: Any) -> RateLimitReading | Unreadable:
    bucket = getattr(answer, "bucket", None)
    if bucket is None:
        return _unexpected(answer, "rate limiter")
    now = time.monotonic()  # the bucket runs on the monotonic clock
    paused = None if bucket.paused_until is None else max(0.0, bucket.paused_until - now)
    return RateLimitReading(
        paused_for=paused,
        pause_reason=None if bucket.pause_reason is None else bucket.pause_reason.value,
        waits=bucket.waits, granted=bucket.granted_count, tokens=bucket.tokens,
        capacity=bucket.usable_capacity)


def _age(moment: datetime | None) -> float | None:
    return None if moment is None else max(0.0, (datetime.now(UTC) - moment).total_seconds())


def _trading(answer: Any, unknown: Any) -> TradingReading | Unreadable:
    if not isinstance(answer, CoordinatorStatistics):
        return _unexpected(answer, "transactions")
    if not isinstance(unknown, OrderList):
        return _unexpected(unknown, "transactions (unknown orders)")
    return TradingReading(
        accepting=answer.accepting, not_accepting_reason=answer.not_accepting_reason,
        by_state=dict(answer.by_state), open_transactions=answer.open_transactions,
        overdue=answer.inflight.overdue,
        oldest_overdue_age=_age(answer.inflight.oldest_overdue_since),
        unknown_orders=tuple(sorted(o.client_order_id for o in unknown.orders)))


def _reconciliation(answer: Any) -> ReconciliationReading | Unreadable:
    if not isinstance(answer, ReconcilerStatistics):
        return _unexpected(answer, "reconciler")
    currencies: dict[str, int] = {}
    orders: dict[str, int] = {}
    if answer.last is not None:
        for c in answer.last.currencies:
            currencies[c.outcome] = currencies.get(c.outcome, 0) + 1
        for o in answer.last.orders:
            orders[o.kind] = orders.get(o.kind, 0) + 1
    failure = answer.last_failure
    last_ok = None if answer.last is None else answer.last.finished_at
    if failure is not None and last_ok is not None and answer.last_failure_at is not None \
            and answer.last_failure_at < last_ok:
        failure = None  # an older failure, since recovered from
    return ReconciliationReading(
        last_success_age=_age(last_ok), last_failure=failure, runs=answer.runs,
        currency_differences=currencies, order_differences=orders)


def _ledger(answer: Any) -> LedgerReading | Unreadable:
    balances = getattr(answer, "balances", None)
    if balances is None:
        return _unexpected(answer, "ledger")
    return LedgerReading(frozen={b.currency: b.frozen for b in balances if b.frozen})


def _alerts(answer: Any) -> AlertsReading | Unreadable:
    views = getattr(answer, "alerts", None)
    if views is None:
        return _unexpected(answer, "alert manager")
    active: dict[tuple[str, str], int] = {}
    for view in views:
        key = (view.alert.level.value, view.alert.state.value)
        active[key] = active.get(key, 0) + 1
    return AlertsReading(active=active)


# -- the actor ----------------------------------------------------------------------------------


class Health(SupervisedActor):
    """See the module docstring. A restart starts from a clean state: the first poll after it
    reports every component that is not ok again (the alert core dedups by fingerprint)."""

    def __init__(self, settings: HealthSettings,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._settings = settings
        self._clock = clock
        self._tracker = HealthTracker()
        self._metrics = NodeMetrics(functools.partial(read_node, settings,
                                                      settings.ask_timeout))
        self._latest: NodeStatusView | None = None
        self._frozen: dict[str, str] = {}
        self._unknown: frozenset[str] = frozenset()
        self._unsubscribe: list[Callable[[], None]] = []

    def on_start(self) -> None:
        ref = self.actor_ref

        def forward(message: Any) -> None:
            try:
                ref.tell(message)
            except pykka.ActorDeadError:
                pass  # stopping or restarting: the successor subscribes anew

        self._unsubscribe.append(subscribe(forward))
        if self._settings.trading:
            self._unsubscribe.append(subscribe_discrepancies(forward))
        # The first poll waits one interval: the tree is still starting the parts after us.
        self.send_after(self._settings.poll_interval, _Poll())

    def on_stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Poll):
            self._poll()
            self.send_after(self._settings.poll_interval, _Poll())
            return None
        if isinstance(message, GetHealth):
            latest = self._latest or self._poll()
            return HealthView(report=latest.report, at=latest.at)
        if isinstance(message, GetNodeStatus):
            return self._latest or self._poll()
        if isinstance(message, GetMetrics):
            return self._metrics
        if isinstance(message, BreakerTransitioned):
            self._metrics.observe_breaker_transition(message.venue, message.breaker,
                                                     message.from_state, message.to_state)
            return None
        if isinstance(message, BalanceDiscrepancy):
            self._metrics.observe_discrepancy(message.venue, message.currency)
            return None
        if isinstance(message, SupervisionEvent):
            self._metrics.observe_supervision(message)
            return None
        raise TypeError(f"Health: unexpected message {type(message).__name__}")

    def _poll(self) -> NodeStatusView:
        readings = read_node(self._settings, self._settings.ask_timeout)
        report = derive_health(readings, self._settings.thresholds)
        changes = self._tracker.update(report)
        now = self._clock()
        self._metrics.observe_health(report, changes)
        for change in changes:
            previous = change.previous.value if change.previous else "unknown"
            log = logger.bind(context="health_changed", component=change.component)
            (log.info if change.status.value == "ok" else log.warning)(
                "health: {} {} -> {}: {}", change.component, previous, change.status.value,
                change.reason)
            if self._settings.alerts:
                publish_alert_event(HealthChanged(component=change.component,
                                                  status=change.status.value,
                                                  reason=change.reason[:500], at=now))
        if isinstance(readings.ledger, LedgerReading):
            self._frozen_changes(dict(readings.ledger.frozen), now)
        if isinstance(readings.trading, TradingReading):
            self._unknown_changes(frozenset(readings.trading.unknown_orders), now)
        self._latest = NodeStatusView(readings=readings, report=report, at=now)
        return self._latest


    def _frozen_changes(self, frozen: dict[str, str], now: float) -> None:
        """Tell the alert manager when trading in a currency is frozen or resumes (the
        ledger's freezes, as polled; the first read after a start announces every freeze)."""
        previous, self._frozen = self._frozen, frozen
        if not self._settings.alerts or self._settings.venue is None:
            return
        venue = self._settings.venue
        for currency in sorted(set(frozen) - set(previous)):
            publish_alert_event(TradingHalted(venue, currency, frozen[currency][:500], now))
        for currency in sorted(set(previous) - set(frozen)):
            publish_alert_event(TradingResumed(venue, currency, now))


    def _unknown_changes(self, unknown: frozenset[str], now: float) -> None:
        """Tell the alert manager which orders became unknown or known again (the order-stuck
        rule fires for one unknown longer than its threshold)."""
        previous, self._unknown = self._unknown, unknown
        if not self._settings.alerts or self._settings.venue is None:
            return
        for client_order_id in sorted(unknown - previous):
            publish_alert_event(OrderUnknown(self._settings.venue, client_order_id, now))
        for client_order_id in sorted(previous - unknown):
            publish_alert_event(OrderUnknownResolved(self._settings.venue, client_order_id, now))


def health_part(config: Config) -> ChildSpec | None:
    """The ``health`` child of the node; None when ``[health] enabled = false``."""
    if not config.health.enabled:
        return None
    return ChildSpec(id=HEALTH, start=functools.partial(Health.start,
                                                        HealthSettings.from_config(config)))
