"""The reconciler (``trading/reconciler``): start-up and periodic reconciliation with the venue.

One run: fetch the balances and the open orders, then the account's recent trades (since the
lookback) for every symbol where a fill may be missing: orders not final or changed within the
lookback, except orders open at the venue whose reported ``filled`` is already covered by
booked trades (nothing there to miss), and unknown open orders that report executions. A
symbol's trades weigh a quarter of the all-symbols open-orders query (Binance: 4 and 16
units), so reading them for resting, unfilled orders made a run wait seconds for the account's
rate-limit budget. Hand what the venue shows to the coordinator (it seeds the ledger at first
start, adopts unknown orders as external, resolves UNKNOWN and in-flight orders, books missed
fills); then compare balances with the ledger. Balances move while orders execute, so a
difference is acted on (adjusting entry within tolerance; beyond it a
:class:`~messages.ledger.BalanceDiscrepancy` event and, if configured, a freeze) only when a
second look at the venue's balances shows the same difference; otherwise it is reported as
``unsettled``. Every run's report is journaled by the coordinator.

Alerts (when the node runs the alerts part): each settled verdict that matters is told to
the alert manager as a :class:`~messages.alerts.LedgerDiscrepancy` carrying the currency's
tolerance — every discrepancy, every later verdict on a currency reported discrepant (a
difference back within tolerance clears the alert), and on this actor's first verdict on a
currency (so an alert restored from a previous run is cleared once the books agree). Freezes
reach the alert manager from the health actor (``TradingHalted``), not from here.

Fail closed: until a start-up run succeeds the coordinator refuses new orders; a failed
start-up run is retried every ``reconcile_retry`` seconds. Exchange calls go through the
gatekeeper without blocking this actor (replies come back as messages), in the read bulkhead
(``Category.MARKET_DATA``; account data is never cached) so they never delay order placement.

Discrepancy events: :func:`subscribe_discrepancies` registers an in-process listener (the
alert system's hook); listeners run on this actor's thread and must be quick.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pykka
from loguru import logger

from actors.alert_manager import publish_alert_event
from actors.ledger import ReconcileBalances
from actors.protocol import ReplySlot
from actors.trading import (
    LEDGER,
    RECONCILER,
    TRANSACTIONS,
    CallAnswered,
    CallOverdue,
    TradingSettings,
    call_for_self,
)
from actors.transactions import ActiveSymbols, FoldVenue, RecordReconciliation, StartupReconciled
from messages.alerts import LedgerDiscrepancy
from messages.base import FrozenMap, new_id, utc_now
from messages.exchange import (
    Category,
    DeadlineExceeded,
    ExchangeRejected,
    ExchangeReply,
    ExchangeRequest,
    ExchangeResult,
)
from messages.ledger import BalanceDiscrepancy
from messages.orders import (
    CurrencyDifference,
    OrderDifference,
    Reconcile,
    ReconciliationView,
    VenueUnavailable,
)
from supervisors import SupervisedActor, names
from trading.reconcile import ExchangeBalance, Outcome

__all__ = [
    "GetReconcilerStatistics",
    "Reconciler",
    "ReconcilerStatistics",
    "next_window",
    "reconcile_now",
    "subscribe_discrepancies",
]

#: At most this many symbols' trades are read per run (each is one call); when more need
#: reading, successive runs take turns (`next_window`), so every market is read in time.
MAX_TRADE_SYMBOLS = 50
#: Seconds past a call's deadline before this actor settles an unanswered call itself.
_OVERDUE_GRACE = 1.0

_listeners: list[Callable[[BalanceDiscrepancy], None]] = []
_listeners_lock = threading.Lock()


def next_window(items: Sequence[str], after: str | None, limit: int) -> tuple[str, ...]:
    """At most `limit` of the sorted `items`, starting after `after` (the last one the previous
    window held) and wrapping around: any item is in one of ceil(len / limit) windows in a row."""
    ordered = sorted(items)
    if len(ordered) <= limit:
        return tuple(ordered)
    start = 0 if after is None else bisect.bisect_right(ordered, after)
    return tuple((ordered[start:] + ordered[:start])[:limit])


def subscribe_discrepancies(listener: Callable[[BalanceDiscrepancy], None]
                            ) -> Callable[[], None]:
    """Call ``listener`` with every balance discrepancy found; returns the unsubscribe."""
    with _listeners_lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _listeners_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def _publish(event: BalanceDiscrepancy) -> None:
    with _listeners_lock:
        listeners = tuple(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # noqa: BLE001 - a failing listener never stops reconciliation
            logger.exception("reconciler: discrepancy listener failed")


@attrs.frozen(slots=True)
class GetReconcilerStatistics:
    """Ask: the reconciler's :class:`ReconcilerStatistics` (for health and /metrics)."""


@attrs.frozen(slots=True)
class ReconcilerStatistics:
    """Runs so far, the last successful report (None before the first), the last failure."""

    runs: int
    failures: int
    running: bool
    last: ReconciliationView | None
    last_failure: str | None
    last_failure_at: datetime | None
    #: Symbols whose recent trades the last successful run read.
    last_trade_symbols: tuple[str, ...] = ()


def reconcile_now(timeout: float) -> ReconciliationView | VenueUnavailable:
    """Run one reconciliation (or join the one running) and wait for its report.

    For callers outside the actors (the control API's thread): raises pykka.Timeout if no
    report within ``timeout`` seconds."""
    result: pykka.Future[Any] = names.ask(RECONCILER, Reconcile(), timeout=timeout)
    return result.get(timeout=timeout)


@attrs.frozen(slots=True)
class _Begin:
    token: int


@attrs.define
class _Run:
    run_id: str
    startup: bool
    started_at: datetime
    phase: str = "fetch"
    waiting: dict[str, str] = attrs.Factory(dict)
    slots: dict[str, ReplySlot] = attrs.Factory(dict)
    balances: Mapping[str, ExchangeBalance] | None = None
    open_orders: tuple[Any, ...] = ()
    trades: list[Any] = attrs.Factory(list)
    failure: str | None = None
    first: Mapping[str, Decimal] = attrs.Factory(dict)
    differences: tuple[OrderDifference, ...] = ()
    trade_symbols: tuple[str, ...] = ()


def _decimal(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def _thaw(value: Any) -> Any:
    if isinstance(value, FrozenMap):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def parse_balances(value: Any) -> dict[str, ExchangeBalance]:
    """ccxt's unified ``fetch_balance`` answer as exact balances per currency."""
    free = value.get("free") or {}
    used = value.get("used") or {}
    return {currency: ExchangeBalance(_decimal(free.get(currency)), _decimal(used.get(currency)))
            for currency in sorted(set(free) | set(used))}


class Reconciler(SupervisedActor):
    """See the module docstring."""

    def __init__(self, settings: TradingSettings,
                 clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__()
        self._s = settings
        self._clock = clock
        self._run: _Run | None = None
        #: Where the last run's window of trade symbols ended (see `next_window`).
        self._last_trade_symbol: str | None = None
        self._waiters: list[pykka.ThreadingFuture[Any]] = []
        self._startup_done = False
        self._last: ReconciliationView | None = None
        self._last_trade_symbols: tuple[str, ...] = ()
        self._token = 0
        self._runs = self._failures = 0
        self._last_failure: tuple[str, datetime] | None = None
        #: Currencies given a settled verdict by this actor, and those last found discrepant.
        self._judged: set[str] = set()
        self._discrepant: set[str] = set()

    def on_start(self) -> None:
        self.actor_ref.tell(_Begin(self._token))

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, CallAnswered):
            return self._on_answer(message.request_id, message.reply)
        if isinstance(message, CallOverdue):
            slot = None if self._run is None else self._run.slots.get(message.request_id)
            if slot is not None:  # nobody answered (an actor died holding the call)
                slot.answer(DeadlineExceeded(request_id=message.request_id, deadline=0.0,
                                             sent=True))
            return None
        if isinstance(message, _Begin):
            if self._run is None and message.token == self._token:
                self._begin(startup=not self._startup_done)
            return None
        if isinstance(message, Reconcile):
            future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
            self._waiters.append(future)
            if self._run is None:
                self._begin(startup=not self._startup_done)
            return future
        if isinstance(message, GetReconcilerStatistics):
            failure = self._last_failure
            return ReconcilerStatistics(
                runs=self._runs, failures=self._failures, running=self._run is not None,
                last=self._last, last_failure=None if failure is None else failure[0],
                last_failure_at=None if failure is None else failure[1],
                last_trade_symbols=self._last_trade_symbols)
        raise TypeError(f"Reconciler: unexpected message {type(message).__name__}")

    # ------------------------------------------------------------------ a run

    def _begin(self, *, startup: bool) -> None:
        now = self._clock()
        self._run = _Run(run_id=f"r{now.strftime('%Y%m%dT%H%M%S')}-{new_id()[:8]}",
                         startup=startup, started_at=now)
        self._call("balance", "fetch_balance")
        self._call("open_orders", "fetch_open_orders")

    def _call(self, kind: str, method: str, args: tuple[Any, ...] = (),
              kwargs: Mapping[str, Any] | None = None,
              category: Category = Category.MARKET_DATA) -> None:
        assert self._run is not None
        request = ExchangeRequest.new(self._s.venue, method, args, kwargs,
                                      category=category, idempotent=True,
                                      timeout=self._s.call_timeout)
        self._run.waiting[request.id] = kind
        self._run.slots[request.id] = call_for_self(
            self, self.send_after, request,
            overdue_after=self._s.call_timeout + _OVERDUE_GRACE)

    def _on_answer(self, request_id: str, reply: ExchangeReply) -> None:
        run = self._run
        if run is None or request_id not in run.waiting:
            return
        kind = run.waiting.pop(request_id)
        run.slots.pop(request_id, None)
        if (kind == "open_orders" and isinstance(reply, ExchangeRejected)
                and "without specifying a symbol" in reply.message):
            # Some ccxt clients refuse an all-symbols query unless told it is fine (binance's
            # warnOnFetchOpenOrdersWithoutSymbol, which exchanges.create_client turns off):
            # ask market by market instead.
            self._call("markets", "load_markets")
            return
        if not isinstance(reply, ExchangeResult):
            run.failure = run.failure or f"{kind}: {type(reply).__name__}: " \
                                         f"{getattr(reply, 'message', '') or reply}"[:300]
        else:
            value = _thaw(reply.value)
            try:
                if kind == "balance":
                    run.balances = parse_balances(value)
                elif kind == "open_orders":
                    run.open_orders += tuple(value)
                elif kind == "markets":
                    for symbol in sorted(value):
                        self._call("open_orders", "fetch_open_orders", (symbol,))
                elif kind == "trades":
                    run.trades.extend(value)
            except (AttributeError, TypeError, ValueError, ArithmeticError) as error:
                run.failure = run.failure or f"{kind}: unreadable answer: {error}"
        if run.waiting:
            return
        if run.failure is not None:
            self._fail(run.failure)
            return
        self._advance()

    def _advance(self) -> None:
        run = self._run
        assert run is not None
        if run.phase == "fetch":
            run.phase = "trades"
            since = run.started_at - timedelta(seconds=self._s.trades_lookback)
            open_at_venue = tuple(
                (o.get("clientOrderId"), None if o.get("id") is None else str(o["id"]),
                 str(o["symbol"]), None if o.get("filled") is None else _decimal(o["filled"]))
                for o in run.open_orders if o.get("symbol"))
            symbols = names.ask(TRANSACTIONS, ActiveSymbols(since, open_at_venue),
                                timeout=self._s.ask_timeout)
            run.trade_symbols = next_window(list(symbols), self._last_trade_symbol,
                                            MAX_TRADE_SYMBOLS)
            if run.trade_symbols:
                self._last_trade_symbol = run.trade_symbols[-1]
            since_ms = int(since.timestamp() * 1000)
            for symbol in run.trade_symbols:
                self._call("trades", "fetch_my_trades", (symbol, since_ms))
            if run.waiting:
                return
        if run.phase == "trades":
            assert run.balances is not None
            totals = {c: b.total for c, b in run.balances.items()}
            folded = names.ask(TRANSACTIONS, FoldVenue(
                open_orders=run.open_orders, trades=tuple(run.trades), balances=totals,
                observed_at=run.started_at, run_id=run.run_id), timeout=self._s.ask_timeout * 3)
            run.differences = folded.differences
            report, _ = names.ask(LEDGER, ReconcileBalances(run.balances, run.run_id, apply=False),
                                  timeout=self._s.ask_timeout)
            if all(r.outcome is Outcome.MATCH for r in report.results):
                self._finish(report, frozenset())
                return
            if folded.unresolved:
                # Orders still settling explain part of any difference: compare again soon.
                self._finish(report, frozenset(r.currency for r in report.results
                                               if r.outcome is not Outcome.MATCH),
                             next_in=self._s.reconcile_retry)
                return
            run.first = {r.currency: r.delta for r in report.results}
            run.phase = "confirm"
            self._call("balance", "fetch_balance")
            return
        if run.phase == "confirm":
            assert run.balances is not None
            report, unconfirmed = names.ask(
                LEDGER, ReconcileBalances(run.balances, run.run_id, apply=True,
                                          confirm=run.first),
                timeout=self._s.ask_timeout)
            self._finish(report, unconfirmed)

    def _finish(self, report: Any, unconfirmed: frozenset[str],
                next_in: float | None = None) -> None:
        run = self._run
        assert run is not None
        now = self._clock()
        currencies = []
        for r in report.results:
            outcome = "unsettled" if r.currency in unconfirmed else r.outcome.value
            currencies.append(CurrencyDifference(
                currency=r.currency, outcome=outcome, ledger_total=r.ledger.total,
                venue_total=r.exchange.total, delta=r.delta,
                frozen=r.freeze and r.currency not in unconfirmed, reason=r.reason))
        view = ReconciliationView(
            run_id=run.run_id, venue=self._s.venue, started_at=run.started_at, finished_at=now,
            open_orders_seen=len(run.open_orders), trades_seen=len(run.trades),
            currencies=tuple(currencies), orders=run.differences)
        names.ask(TRANSACTIONS, RecordReconciliation(view), timeout=self._s.ask_timeout)
        for c in view.currencies:
            if c.outcome == "discrepancy":
                logger.bind(context="ledger_discrepancy").error(
                    "reconciler: {} differs beyond tolerance: ledger {}, venue {}{}",
                    c.currency, c.ledger_total, c.venue_total, " (frozen)" if c.frozen else "")
                _publish(BalanceDiscrepancy(
                    run_id=view.run_id, venue=view.venue, currency=c.currency,
                    ledger_total=c.ledger_total, venue_total=c.venue_total, delta=c.delta,
                    frozen=c.frozen, at=now))
        if self._s.alerts:
            self._tell_alerts(view, now)
        if view.orders or any(c.outcome != "match" for c in view.currencies):
            logger.info("reconciler: run {}: {} order differences, {} currency differences",
                        view.run_id, len(view.orders),
                        sum(c.outcome != "match" for c in view.currencies))
        if run.startup:
            names.tell(TRANSACTIONS, StartupReconciled(ok=True, message="reconciled"))
            self._startup_done = True
        self._last = view
        self._last_trade_symbols = run.trade_symbols
        self._runs += 1
        self._end(view, self._s.reconcile_interval if next_in is None else next_in)

    def _tell_alerts(self, view: ReconciliationView, now: datetime) -> None:
        """Tell the alert manager the verdicts that can change an alert (module docstring);
        an ``unsettled`` currency has no verdict yet."""
        for c in view.currencies:
            if c.outcome == "unsettled":
                continue
            discrepant = c.outcome == "discrepancy"
            if discrepant or c.currency in self._discrepant or c.currency not in self._judged:
                tolerance = self._s.reconcile_policy.for_currency(c.currency).limit(
                    c.ledger_total, c.venue_total)
                publish_alert_event(LedgerDiscrepancy(
                    venue=view.venue, currency=c.currency, ledger=c.ledger_total,
                    venue_balance=c.venue_total, tolerance=tolerance, at=now.timestamp()))
            self._judged.add(c.currency)
            (self._discrepant.add if discrepant else self._discrepant.discard)(c.currency)

    def _fail(self, message: str) -> None:
        run = self._run
        assert run is not None
        logger.warning("reconciler: run {} failed: {}", run.run_id, message)
        self._runs += 1
        self._failures += 1
        self._last_failure = (message, self._clock())
        if run.startup:
            names.tell(TRANSACTIONS, StartupReconciled(ok=False, message=message))
        delay = self._s.reconcile_retry if not self._startup_done else self._s.reconcile_interval
        self._end(VenueUnavailable(message=f"reconciliation failed: {message}"), delay)

    def _end(self, answer: Any, next_in: float) -> None:
        self._run = None
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.set(answer)
        self._token += 1
        self.send_after(next_in, _Begin(self._token))
