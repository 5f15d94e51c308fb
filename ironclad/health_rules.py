"""Health derivation, pure: readings of the node's components in, ok/degraded/down out.

The health actor (``actors.health``) gathers :class:`NodeReadings` from the actors'
statistics; :func:`derive_health` turns them into a :class:`HealthReport` with a reason per
component, and :class:`HealthTracker` says which components changed status since the last
report (those become ``HealthChanged`` events for the alert rules). Nothing here reads a
clock or talks to an actor: ages are passed in as seconds, so every rule is testable alone.

Guarantees: a component that could not be read is ``down`` (never silently ok); the overall
status is the worst of the critical components, and non-critical ones (event log, alert
manager) can make it at most ``degraded``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import attrs

from messages.supervision import ChildState, SupervisorStatus

__all__ = [
    "Status",
    "HealthThresholds",
    "Unreadable",
    "BreakerReading",
    "PoolReading",
    "RateLimitReading",
    "VenueReadings",
    "TradingReading",
    "ReconciliationReading",
    "LedgerReading",
    "AlertsReading",
    "NodeReadings",
    "ComponentHealth",
    "HealthReport",
    "HealthChange",
    "HealthTracker",
    "derive_health",
    "worst",
]


class Status(enum.Enum):
    """How well a component does its job, in increasing badness (``rank``)."""

    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Status.OK: 0, Status.DEGRADED: 1, Status.DOWN: 2}


def worst(statuses: Iterable[Status]) -> Status:
    """The worst of ``statuses`` (OK for none)."""
    return max(statuses, key=lambda s: s.rank, default=Status.OK)


def _fraction(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{attribute.name}: expected a fraction in (0, 1], got {value!r}")


def _non_negative(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{attribute.name}: expected a number >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class HealthThresholds:
    """Where degraded begins (config ``[health]``)."""

    #: A bulkhead queue filled to this fraction of its bound degrades the pool.
    queue_degraded_ratio: float = attrs.field(default=0.8, validator=_fraction)
    #: Restarts within a supervisor's intensity period from which its subtree is degraded.
    restarts_degraded: int = attrs.field(default=1, validator=_non_negative)
    #: In-flight orders overdue for a lookup (journal lag) from which trading is degraded.
    journal_lag_degraded: int = attrs.field(default=1, validator=_non_negative)
    #: A successful reconciliation older than this (seconds) degrades reconciliation.
    reconciliation_max_age: float = attrs.field(default=300.0, validator=_non_negative)


@attrs.frozen(kw_only=True)
class Unreadable:
    """A component that did not answer (down, restarting, or too slow); ``reason`` says which."""

    reason: str


@attrs.frozen(kw_only=True)
class BreakerReading:
    """One circuit breaker: ``state`` is a ``BreakerState`` value; ``open_for`` the seconds
    until its next probe while open."""

    breaker: str
    category: str
    state: str
    opened_count: int = 0
    calls: int = 0
    failures: int = 0
    rejected: int = 0
    failure_rate: float = 0.0
    open_for: float | None = None

    @property
    def refusing(self) -> bool:
        return self.state in ("open", "forced_open")


@attrs.frozen(kw_only=True)
class PoolReading:
    """The connection pool: queues and their bounds per bulkhead, workers, latencies
    (bucket counts per method, upper bounds in ``latency_buckets``, +inf last; their sums in
    seconds in ``latency_sum``)."""

    queued: Mapping[str, int]
    bounds: Mapping[str, int]
    in_flight: Mapping[str, int]
    idle_workers: int
    known_workers: int
    expected_workers: int
    submitted: int = 0
    overloaded: int = 0
    expired: int = 0
    lost: int = 0
    latency: Mapping[str, tuple[int, ...]] = attrs.field(factory=dict)
    latency_buckets: tuple[float, ...] = ()
    latency_sum: Mapping[str, float] = attrs.field(factory=dict)
    errors: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class RateLimitReading:
    """The account's bucket: a pause the venue imposed (``pause_reason`` rate_limit or ban)
    with the seconds left, and cumulative waits."""

    paused_for: float | None
    pause_reason: str | None
    waits: int = 0
    granted: int = 0
    tokens: float = 0.0
    capacity: float = 0.0


@attrs.frozen(kw_only=True)
class VenueReadings:
    """One venue subtree's gateway actors."""

    venue: str
    breakers: tuple[BreakerReading, ...] | Unreadable
    pool: PoolReading | Unreadable
    rate_limit: RateLimitReading | Unreadable


@attrs.frozen(kw_only=True)
class TradingReading:
    """The transaction coordinator: whether it accepts orders, orders by state, the journal
    lag (in-flight orders overdue for their lookup, the oldest one's age), and the client
    order ids of the orders whose outcome is unknown."""

    accepting: bool
    not_accepting_reason: str | None
    by_state: Mapping[str, int] = attrs.field(factory=dict)
    open_transactions: int = 0
    overdue: int = 0
    oldest_overdue_age: float | None = None
    unknown_orders: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class ReconciliationReading:
    """The reconciler: age of the last successful run (None: none yet), the last failure,
    and what the last report found."""

    last_success_age: float | None
    last_failure: str | None
    runs: int = 0
    currency_differences: Mapping[str, int] = attrs.field(factory=dict)
    order_differences: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class LedgerReading:
    """The ledger: frozen currencies and why."""

    frozen: Mapping[str, str]


@attrs.frozen(kw_only=True)
class AlertsReading:
    """The alert manager: active alerts counted by (level, state)."""

    active: Mapping[tuple[str, str], int]


@attrs.frozen(kw_only=True)
class NodeReadings:
    """Everything the health actor read in one poll; None for a part the config leaves out."""

    tree: SupervisorStatus | Unreadable
    venues: tuple[VenueReadings, ...] = ()
    trading: TradingReading | Unreadable | None = None
    reconciliation: ReconciliationReading | Unreadable | None = None
    ledger: LedgerReading | Unreadable | None = None
    alerts: AlertsReading | Unreadable | None = None


@attrs.frozen(kw_only=True)
class ComponentHealth:
    """One component's derived status; ``critical`` components decide the overall status."""

    component: str
    status: Status
    reason: str
    critical: bool = True


@attrs.frozen(kw_only=True)
class HealthReport:
    """The node's health: overall status with its reason, and every component."""

    status: Status
    reason: str
    components: tuple[ComponentHealth, ...]

    def component(self, name: str) -> ComponentHealth | None:
        return next((c for c in self.components if c.component == name), None)


def _ok(component: str, reason: str = "ok", critical: bool = True) -> ComponentHealth:
    return ComponentHealth(component=component, status=Status.OK, reason=reason,
                           critical=critical)


def _of(component: str, findings: list[tuple[Status, str]], ok_reason: str = "ok",
        critical: bool = True) -> ComponentHealth:
    """The worst finding decides; the reasons of every finding that bad are kept."""
    status = worst(s for s, _ in findings)
    if status is Status.OK:
        return _ok(component, ok_reason, critical)
    reason = "; ".join(text for s, text in findings if s is status)
    return ComponentHealth(component=component, status=status, reason=reason, critical=critical)


# -- rules per component ---------------------------------------------------------------------

#: Top-level children whose trouble degrades the node but never takes it down.
_NON_CRITICAL = ("events", "alerts")


def _critical(name: str) -> bool:
    return name.split("/", 1)[0] not in _NON_CRITICAL


def _supervisors(tree: SupervisorStatus | Unreadable,
                 t: HealthThresholds) -> list[ComponentHealth]:
    """One component per supervisor (``supervisor:<name>``): children restarting, stopped
    or restarted too often within the intensity period."""
    if isinstance(tree, Unreadable):
        return [ComponentHealth(component="supervisor:node", status=Status.DOWN,
                                reason=f"supervision tree unreadable: {tree.reason}")]
    out: list[ComponentHealth] = []

    def visit(status: SupervisorStatus) -> None:
        findings: list[tuple[Status, str]] = []
        if t.restarts_degraded and status.restarts_in_period >= t.restarts_degraded:
            findings.append((Status.DEGRADED,
                             f"{status.restarts_in_period} restarts within the intensity period"))
        for child in status.children:
            failure = f" (last failure: {child.last_failure})" if child.last_failure else ""
            if child.state in (ChildState.RESTARTING, ChildState.STARTING):
                findings.append((Status.DEGRADED, f"{child.name} is {child.state.value}"
                                                  f"{failure}"))
            elif child.state is ChildState.STOPPED:
                findings.append((Status.DEGRADED, f"{child.name} stopped{failure}"))
            if child.supervisor is not None:
                visit(child.supervisor)
            elif child.kind.value == "supervisor" and child.state is ChildState.RUNNING:
                findings.append((Status.DEGRADED, f"{child.name}: status unreadable"))
        out.append(_of(f"supervisor:{status.name}", findings, critical=_critical(status.name)))

    visit(tree)
    return out


def _venue(readings: VenueReadings, t: HealthThresholds) -> list[ComponentHealth]:
    prefix = f"venue:{readings.venue}"
    out = []
    breakers = readings.breakers
    if isinstance(breakers, Unreadable):
        out.append(ComponentHealth(component=f"{prefix}/gatekeeper", status=Status.DOWN,
                                   reason=f"gatekeeper unreadable: {breakers.reason}"))
    else:
        findings: list[tuple[Status, str]] = []
        categories = {b.category for b in breakers}
        refusing = {b.category for b in breakers if b.refusing and b.breaker.count("/") == 1}
        for b in breakers:
            if b.refusing:
                probe = f", next probe in {b.open_for:.1f}s" if b.open_for is not None else ""
                findings.append((Status.DEGRADED, f"breaker {b.breaker} {b.state}{probe}"))
            elif b.state == "half_open":
                findings.append((Status.DEGRADED, f"breaker {b.breaker} half-open (probing)"))
        if categories and refusing == categories:
            findings.append((Status.DOWN, "every breaker of the venue refuses calls: "
                                          + ", ".join(sorted(b.breaker for b in breakers
                                                             if b.refusing))))
        out.append(_of(f"{prefix}/gatekeeper", findings, "all breakers closed"))
    pool = readings.pool
    if isinstance(pool, Unreadable):
        out.append(ComponentHealth(component=f"{prefix}/pool", status=Status.DOWN,
                                   reason=f"pool unreadable: {pool.reason}"))
    else:
        findings = []
        if pool.known_workers == 0:
            findings.append((Status.DOWN, "no worker is available"))
        elif pool.known_workers < pool.expected_workers:
            findings.append((Status.DEGRADED, f"{pool.known_workers} of "
                                              f"{pool.expected_workers} workers available"))
        for category, depth in sorted(pool.queued.items()):
            bound = pool.bounds.get(category)
            if bound and depth >= t.queue_degraded_ratio * bound:
                findings.append((Status.DEGRADED, f"{category} queue at {depth}/{bound}"))
        out.append(_of(f"{prefix}/pool", findings,
                       f"{pool.known_workers} workers, queues "
                       + ", ".join(f"{c} {n}" for c, n in sorted(pool.queued.items()))))
    limit = readings.rate_limit
    if isinstance(limit, Unreadable):
        out.append(ComponentHealth(component=f"{prefix}/rate-limiter", status=Status.DOWN,
                                   reason=f"rate limiter unreadable: {limit.reason}"))
    elif limit.paused_for is not None and limit.paused_for > 0:
        banned = limit.pause_reason == "ban"
        out.append(ComponentHealth(
            component=f"{prefix}/rate-limiter", status=Status.DOWN if banned else Status.DEGRADED,
            reason=f"{'banned by' if banned else 'paused by'} the venue for another "
                   f"{limit.paused_for:.1f}s"))
    else:
        out.append(_ok(f"{prefix}/rate-limiter", "not paused"))
    return out


def _trading(reading: TradingReading | Unreadable, t: HealthThresholds) -> ComponentHealth:
    name = "trading/transactions"
    if isinstance(reading, Unreadable):
        return ComponentHealth(component=name, status=Status.DOWN,
                               reason=f"transactions unreadable: {reading.reason}")
    findings: list[tuple[Status, str]] = []
    if not reading.accepting:
        findings.append((Status.DEGRADED, "not accepting new orders: "
                                          f"{reading.not_accepting_reason or 'no reason given'}"))
    if t.journal_lag_degraded and reading.overdue >= t.journal_lag_degraded:
        age = (f", oldest for {reading.oldest_overdue_age:.0f}s"
               if reading.oldest_overdue_age is not None else "")
        findings.append((Status.DEGRADED, f"journal lag: {reading.overdue} in-flight orders "
                                          f"overdue for a lookup{age}"))
    return _of(name, findings, f"accepting orders, {reading.open_transactions} open")


def _reconciliation(reading: ReconciliationReading | Unreadable,
                    t: HealthThresholds) -> ComponentHealth:
    name = "trading/reconciler"
    if isinstance(reading, Unreadable):
        return ComponentHealth(component=name, status=Status.DOWN,
                               reason=f"reconciler unreadable: {reading.reason}")
    findings: list[tuple[Status, str]] = []
    failure = f" (last failure: {reading.last_failure})" if reading.last_failure else ""
    if reading.last_success_age is None:
        findings.append((Status.DEGRADED, f"no successful reconciliation yet{failure}"))
    elif reading.last_success_age > t.reconciliation_max_age:
        findings.append((Status.DEGRADED,
                         f"last successful reconciliation {reading.last_success_age:.0f}s ago "
                         f"(more than {t.reconciliation_max_age:.0f}s){failure}"))
    ok = ("ok" if reading.last_success_age is None
          else f"reconciled {reading.last_success_age:.0f}s ago")
    return _of(name, findings, ok)


def _ledger(reading: LedgerReading | Unreadable) -> ComponentHealth:
    name = "trading/ledger"
    if isinstance(reading, Unreadable):
        return ComponentHealth(component=name, status=Status.DOWN,
                               reason=f"ledger unreadable: {reading.reason}")
    if reading.frozen:
        frozen = ", ".join(f"{c} ({why})" for c, why in sorted(reading.frozen.items()))
        return ComponentHealth(component=name, status=Status.DEGRADED,
                               reason=f"trading frozen in {frozen}")
    return _ok(name, "no currency frozen")


def _alerts(reading: AlertsReading | Unreadable) -> ComponentHealth:
    name = "alerts/alert-manager"
    if isinstance(reading, Unreadable):
        return ComponentHealth(component=name, status=Status.DOWN, critical=False,
                               reason=f"alert manager unreadable: {reading.reason}")
    firing = sum(n for (_, state), n in reading.active.items() if state == "firing")
    return _ok(name, f"{firing} alerts firing", critical=False)


def derive_health(readings: NodeReadings, thresholds: HealthThresholds) -> HealthReport:
    """The node's health from one poll's readings (see the module docstring)."""
    components = _supervisors(readings.tree, thresholds)
    for venue in readings.venues:
        components += _venue(venue, thresholds)
    if readings.trading is not None:
        components.append(_trading(readings.trading, thresholds))
    if readings.reconciliation is not None:
        components.append(_reconciliation(readings.reconciliation, thresholds))
    if readings.ledger is not None:
        components.append(_ledger(readings.ledger))
    if readings.alerts is not None:
        components.append(_alerts(readings.alerts))

    def effective(c: ComponentHealth) -> Status:
        return c.status if c.critical else min(c.status, Status.DEGRADED, key=lambda s: s.rank)

    overall = worst(effective(c) for c in components)
    if overall is Status.OK:
        reason = "all components ok"
    else:
        reason = "; ".join(f"{c.component}: {c.reason}" for c in components
                           if effective(c) is overall)
    return HealthReport(status=overall, reason=reason, components=tuple(components))


@attrs.frozen(kw_only=True)
class HealthChange:
    """A component whose status differs from the previous report (or appeared)."""

    component: str
    status: Status
    previous: Status | None
    reason: str


class HealthTracker:
    """Remembers each component's last status; :meth:`update` yields only the changes.

    A component seen for the first time counts as a change only if it is not ok (a node
    starting healthy raises nothing). A component that vanished from the report (its part
    was reconfigured away) is forgotten without an event.
    """

    def __init__(self) -> None:
        self._last: dict[str, Status] = {}

    def update(self, report: HealthReport) -> list[HealthChange]:
        changes = []
        current: dict[str, Status] = {}
        for c in report.components:
            current[c.component] = c.status
            previous = self._last.get(c.component)
            if previous is c.status or (previous is None and c.status is Status.OK):
                continue
            changes.append(HealthChange(component=c.component, status=c.status,
                                        previous=previous, reason=c.reason))
        self._last = current
        return changes

    @property
    def statuses(self) -> Mapping[str, Status]:
        return dict(self._last)
