"""The node's Prometheus metrics (``GET /metrics``), in a registry of its own per node.

Two sources, as Prometheus client libraries recommend for state owned elsewhere:

- **At scrape time**, a custom collector reads the components (``read()`` → the same
  :class:`~ironclad.health_rules.NodeReadings` the health actor polls: breakers, pool queues
  and latency histograms, rate-limit waits, orders by state, reconciliation, frozen
  currencies, alerts by level, the supervision tree's restart counts). Values the actors
  count themselves are exposed as they report them, so a restarted actor's counter starts
  again at zero (Prometheus' ``rate()`` handles such resets).
- **Event-fed counters** for what happens between scrapes: supervision events (restarts,
  crashes, supervisors giving up), breaker transitions, health changes and reconciliation
  discrepancies.

The registry is not the library's global one, so tests (and several nodes in one process)
never collide. prometheus_client's metrics are thread-safe: the owner feeds them from its
actor thread while the HTTP thread renders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, exposition
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from ironclad.health_rules import (
    HealthChange,
    HealthReport,
    NodeReadings,
    Status,
    Unreadable,
)
from messages.supervision import (
    ChildCrashed,
    ChildRestarted,
    SupervisionEvent,
    SupervisorGaveUp,
    SupervisorStatus,
)

__all__ = ["CONTENT_TYPE", "NodeMetrics", "ReadingsCollector", "readings_families",
           "BREAKER_STATES", "HEALTH_VALUES"]

#: The Content-Type of the text exposition format that ``render`` writes (0.0.4, which every
#: Prometheus server reads; older client versions call it CONTENT_TYPE_LATEST).
CONTENT_TYPE: str = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4",
                            exposition.CONTENT_TYPE_LATEST)
#: Every breaker state, each exposed as a 0/1 series (a Prometheus state set).
BREAKER_STATES = ("closed", "open", "half_open", "forced_open", "disabled")
#: Health statuses as numbers (gauges): ok 0, degraded 1, down 2.
HEALTH_VALUES = {Status.OK: 0, Status.DEGRADED: 1, Status.DOWN: 2}


def _bucket_bound(bound: float) -> str:
    return repr(float(bound))


def readings_families(readings: NodeReadings) -> list[Metric]:
    """The scrape-time metric families of one reading of the node (pure)."""
    unreadable = GaugeMetricFamily("ironclad_component_unreadable",
                                   "1 when the component did not answer the scrape in time",
                                   labels=["component"])
    families: list[Metric] = [unreadable]
    families += _tree_families(readings.tree, unreadable)

    state = GaugeMetricFamily("ironclad_breaker_state",
                              "Circuit breaker state: 1 for the current state, 0 for the others",
                              labels=["venue", "breaker", "state"])
    opened = CounterMetricFamily("ironclad_breaker_opened",
                                 "Times the breaker opened (as counted by its gatekeeper)",
                                 labels=["venue", "breaker"])
    calls = CounterMetricFamily("ironclad_breaker_calls", "Calls the breaker admitted",
                                labels=["venue", "breaker"])
    failures = CounterMetricFamily("ironclad_breaker_failures",
                                   "Admitted calls that failed (count for the breaker)",
                                   labels=["venue", "breaker"])
    rejected = CounterMetricFamily("ironclad_breaker_rejected",
                                   "Calls refused at once because the breaker was open",
                                   labels=["venue", "breaker"])
    queue = GaugeMetricFamily("ironclad_pool_queue_depth", "Requests queued per bulkhead",
                              labels=["venue", "category"])
    bound = GaugeMetricFamily("ironclad_pool_queue_bound", "Queue bound per bulkhead",
                              labels=["venue", "category"])
    in_flight = GaugeMetricFamily("ironclad_pool_in_flight", "Calls held by workers",
                                  labels=["venue", "category"])
    workers = GaugeMetricFamily("ironclad_pool_workers", "Workers: known, idle, expected",
                                labels=["venue", "kind"])
    requests = CounterMetricFamily("ironclad_pool_requests",
                                   "Requests by what the pool did with them",
                                   labels=["venue", "result"])
    errors = CounterMetricFamily("ironclad_pool_errors", "Failed calls by error class",
                                 labels=["venue", "error"])
    latency = HistogramMetricFamily("ironclad_pool_call_latency_seconds",
                                    "Latency of exchange calls by method (worker side)",
                                    labels=["venue", "method"])
    waits = CounterMetricFamily("ironclad_rate_limit_waits",
                                "Times a request had to wait for the rate limit",
                                labels=["venue"])
    granted = CounterMetricFamily("ironclad_rate_limit_granted",
                                  "Requests the rate limit let through", labels=["venue"])
    paused = GaugeMetricFamily("ironclad_rate_limit_paused_seconds",
                               "Seconds left of a pause the venue imposed (0: not paused)",
                               labels=["venue", "reason"])
    tokens = GaugeMetricFamily("ironclad_rate_limit_tokens", "Tokens left in the bucket",
                               labels=["venue"])
    families += [state, opened, calls, failures, rejected, queue, bound, in_flight, workers,
                 requests, errors, latency, waits, granted, paused, tokens]
    for venue in readings.venues:
        v = venue.venue
        if isinstance(venue.breakers, Unreadable):
            unreadable.add_metric([f"venue:{v}/gatekeeper"], 1)
        else:
            for b in venue.breakers:
                for name in BREAKER_STATES:
                    state.add_metric([v, b.breaker, name], 1 if b.state == name else 0)
                opened.add_metric([v, b.breaker], b.opened_count)
                calls.add_metric([v, b.breaker], b.calls)
                failures.add_metric([v, b.breaker], b.failures)
                rejected.add_metric([v, b.breaker], b.rejected)
        pool = venue.pool
        if isinstance(pool, Unreadable):
            unreadable.add_metric([f"venue:{v}/pool"], 1)
        else:
            for category, depth in sorted(pool.queued.items()):
                queue.add_metric([v, category], depth)
                if category in pool.bounds:
                    bound.add_metric([v, category], pool.bounds[category])
            for category, n in sorted(pool.in_flight.items()):
                in_flight.add_metric([v, category], n)
            workers.add_metric([v, "known"], pool.known_workers)
            workers.add_metric([v, "idle"], pool.idle_workers)
            workers.add_metric([v, "expected"], pool.expected_workers)
            for result, n in (("submitted", pool.submitted), ("overloaded", pool.overloaded),
                              ("expired", pool.expired), ("lost", pool.lost)):
                requests.add_metric([v, result], n)
            for error, n in sorted(pool.errors.items()):
                errors.add_metric([v, error], n)
            for method, counts in sorted(pool.latency.items()):
                bounds = [_bucket_bound(b) for b in pool.latency_buckets] + ["+Inf"]
                if len(bounds) != len(counts):
                    continue  # a pool reporting other buckets than it declares: not exposed
                cumulative, total = [], 0
                for le, n in zip(bounds, counts, strict=True):
                    total += n
                    cumulative.append((le, total))
                latency.add_metric([v, method], cumulative,
                                   sum_value=pool.latency_sum.get(method))
        limit = venue.rate_limit
        if isinstance(limit, Unreadable):
            unreadable.add_metric([f"venue:{v}/rate-limiter"], 1)
        else:
            waits.add_metric([v], limit.waits)
            granted.add_metric([v], limit.granted)
            tokens.add_metric([v], limit.tokens)
            for reason in ("rate_limit", "ban"):
                left = limit.paused_for if limit.pause_reason == reason else None
                paused.add_metric([v, reason], max(0.0, left or 0.0))
    families += _trading_families(readings, unreadable)
    return families


def _tree_families(tree: SupervisorStatus | Unreadable, unreadable: GaugeMetricFamily
                   ) -> list[Metric]:
    restarts = GaugeMetricFamily(
        "ironclad_child_restarts",
        "Restarts of each child since its supervisor started (the supervisor's own count)",
        labels=["supervisor", "child"])
    running = GaugeMetricFamily("ironclad_child_running", "1 while the child is running",
                                labels=["supervisor", "child"])
    in_period = GaugeMetricFamily("ironclad_supervisor_restarts_in_period",
                                  "Restarts within the supervisor's intensity period",
                                  labels=["supervisor"])
    if isinstance(tree, Unreadable):
        unreadable.add_metric(["supervisor:node"], 1)
        return [restarts, running, in_period]

    def visit(status: SupervisorStatus) -> None:
        in_period.add_metric([status.name], status.restarts_in_period)
        for child in status.children:
            restarts.add_metric([status.name, child.name], child.restarts)
            running.add_metric([status.name, child.name],
                               1 if child.state.value == "running" else 0)
            if child.supervisor is not None:
                visit(child.supervisor)

    visit(tree)
    return [restarts, running, in_period]


def _trading_families(readings: NodeReadings, unreadable: GaugeMetricFamily) -> list[Metric]:
    out: list[Metric] = []
    trading = readings.trading
    if isinstance(trading, Unreadable):
        unreadable.add_metric(["trading/transactions"], 1)
    elif trading is not None:
        orders = GaugeMetricFamily("ironclad_orders", "Orders known to the node, by state",
                                   labels=["state"])
        for name, n in sorted(trading.by_state.items()):
            orders.add_metric([name], n)
        out += [
            orders,
            GaugeMetricFamily("ironclad_orders_open", "Orders not in a final state",
                              value=trading.open_transactions),
            GaugeMetricFamily("ironclad_trading_accepting",
                              "1 while new orders are accepted", value=int(trading.accepting)),
            GaugeMetricFamily("ironclad_journal_lag_orders",
                              "In-flight orders overdue for their lookup", value=trading.overdue),
        ]
    recon = readings.reconciliation
    if isinstance(recon, Unreadable):
        unreadable.add_metric(["trading/reconciler"], 1)
    elif recon is not None:
        runs = CounterMetricFamily("ironclad_reconciliation_runs",
                                   "Reconciliation runs since the reconciler started",
                                   value=recon.runs)
        differences = GaugeMetricFamily(
            "ironclad_reconciliation_differences",
            "Differences found by the last successful reconciliation, by kind and outcome",
            labels=["kind", "outcome"])
        for outcome, n in sorted(recon.currency_differences.items()):
            differences.add_metric(["currency", outcome], n)
        for kind, n in sorted(recon.order_differences.items()):
            differences.add_metric(["order", kind], n)
        out += [runs, differences]
        if recon.last_success_age is not None:
            out.append(GaugeMetricFamily(
                "ironclad_reconciliation_last_success_age_seconds",
                "Seconds since the last successful reconciliation finished",
                value=recon.last_success_age))
    ledger = readings.ledger
    if isinstance(ledger, Unreadable):
        unreadable.add_metric(["trading/ledger"], 1)
    elif ledger is not None:
        frozen = GaugeMetricFamily("ironclad_ledger_frozen_currencies",
                                   "Currencies in which trading is frozen",
                                   value=len(ledger.frozen))
        out.append(frozen)
    alerts = readings.alerts
    if isinstance(alerts, Unreadable):
        unreadable.add_metric(["alerts/alert-manager"], 1)
    elif alerts is not None:
        active = GaugeMetricFamily("ironclad_alerts", "Active alerts by level and state",
                                   labels=["level", "state"])
        for (level, state), n in sorted(alerts.active.items()):
            active.add_metric([level, state], n)
        out.append(active)
    return out


class ReadingsCollector(Collector):
    """Reads the node at scrape time (``read`` bounds its own waiting)."""

    def __init__(self, read: Callable[[], NodeReadings]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        yield from readings_families(self._read())


class NodeMetrics:
    """One node's registry: event-fed counters plus, with ``read``, the scrape-time
    collector. Feed it from one thread; render it from any."""

    def __init__(self, read: Callable[[], NodeReadings] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.restarts = Counter("ironclad_restarts", "Child restarts seen (supervision events)",
                                ["supervisor", "child"], registry=r)
        self.crashes = Counter("ironclad_crashes", "Child crashes seen, by error type",
                               ["supervisor", "child", "error_type"], registry=r)
        self.gave_up = Counter("ironclad_supervisor_gave_up",
                               "Times a supervisor exceeded its restart intensity",
                               ["supervisor"], registry=r)
        self.breaker_transitions = Counter(
            "ironclad_breaker_transitions", "Circuit breaker transitions",
            ["venue", "breaker", "from_state", "to_state"], registry=r)
        self.health_changes = Counter("ironclad_health_changes",
                                      "Component health changes, by new status",
                                      ["component", "status"], registry=r)
        self.discrepancies = Counter("ironclad_reconciliation_discrepancies",
                                     "Balance differences beyond tolerance found",
                                     ["venue", "currency"], registry=r)
        self.component_health = Gauge("ironclad_component_health",
                                      "Component health: 0 ok, 1 degraded, 2 down",
                                      ["component"], registry=r)
        self.node_health = Gauge("ironclad_node_health",
                                 "Overall node health: 0 ok, 1 degraded, 2 down", registry=r)
        if read is not None:
            r.register(ReadingsCollector(read))

    def observe_supervision(self, event: SupervisionEvent) -> None:
        if isinstance(event, ChildRestarted):
            self.restarts.labels(event.supervisor, event.name).inc()
        elif isinstance(event, ChildCrashed):
            self.crashes.labels(event.supervisor, event.name, event.error_type).inc()
        elif isinstance(event, SupervisorGaveUp):
            self.gave_up.labels(event.supervisor).inc()

    def observe_breaker_transition(self, venue: str, breaker: str, from_state: str,
                                   to_state: str) -> None:
        self.breaker_transitions.labels(venue, breaker, from_state, to_state).inc()

    def observe_discrepancy(self, venue: str, currency: str) -> None:
        self.discrepancies.labels(venue, currency).inc()

    def observe_health(self, report: HealthReport, changes: list[HealthChange]) -> None:
        self.node_health.set(HEALTH_VALUES[report.status])
        for component in report.components:
            self.component_health.labels(component.component).set(
                HEALTH_VALUES[component.status])
        for change in changes:
            self.health_changes.labels(change.component, change.status.value).inc()

    def render(self) -> bytes:
        """The text exposition of every metric (reads the components: call off any actor
        whose answers it may need, e.g. from the HTTP server's worker threads)."""
        return generate_latest(self.registry)
