"""The transaction coordinator (``trading/transactions``): the three-phase order protocol's shell.

It owns the transaction journal (``<data_dir>/journal``), the pure protocol core
(:mod:`trading.protocol`), client order ids (:mod:`trading.client_ids`) and the in-flight
schedule (:mod:`trading.inflight`). The core decides; this actor performs the effects in the
order the core gives them — journal first (durable, synchronous FULL), then the ledger (asked
by name, idempotent by id), then the wire (through the gatekeeper, never waiting on it: each
call's one reply comes back as a message to this actor).

Guarantees:

- **Prepare**: a :class:`PlaceOrder` is validated against the market (precision, limits, min
  notional), its funds reserved in the ledger, and its intent journaled before it is answered
  and before anything is sent. A refusal (invalid, insufficient funds, frozen) changes nothing.
  The reservation is made just before the journal record; a crash between the two leaves a
  reservation without a transaction, which the next start voids.
- **Submit** once; a definitive rejection by the venue closes the order as rejected and voids
  the reservation; an ambiguous outcome moves it to UNKNOWN and it is looked up by client order
  id. A refusal that proves nothing was sent (circuit open, overloaded, deadline before
  sending) keeps the order SUBMITTING and sends the same attempt again once the breaker lets a
  call through (a cancel meanwhile turns it into a lookup, then an abort).
  A resubmission happens only after the venue confirmed absence past the grace window, with
  the same client order id.
- **Idempotent by client_id**, across restarts (the key is in the journal).
- **Restart**: the journal is verified (:class:`JournalCorrupted` stops the node otherwise) and
  every non-final order resumes from its last record, as the actor's first message (so the
  reconciler's venue reads overlap it; every message is answered after it). A snapshot written
  at a clean stop (and every ``SNAPSHOT_EVERY`` records) lets a start read only the records
  after it: closed and settled orders stay in the journal, found by client id, client order id
  and venue order id and decoded when asked for; a snapshot the journal does not hold is
  ignored (full replay).
- New orders are refused (:class:`~messages.orders.NotAcceptingOrders`) until the markets are
  loaded and the reconciler reported a successful start-up reconciliation; reads and cancels
  are always served.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
from loguru import logger

from actors.alert_manager import publish_alert_event
from actors.ledger import BookFill, LedgerRefused, OpenReservations, Release, Reserve, SeedOpening
from actors.protocol import ReplySlot
from actors.rate_limiter import bucket_for_exchange
from actors.trading import LEDGER, CallAnswered, CallOverdue, TradingSettings, call_for_self
from gateway.ratelimit import Granted
from messages.alerts import JournalIntegrityFailed
from messages.base import FrozenMap, utc_now
from messages.codec import from_dict, to_dict
from messages.exchange import (
    Category,
    CircuitOpen,
    DeadlineExceeded,
    ExchangeRejected,
    ExchangeReply,
    ExchangeRequest,
    ExchangeResult,
    OutcomeUnknown,
    Overloaded,
)
from messages.orders import (
    CancelOrder,
    ExportJournal,
    FillView,
    GetOrder,
    GetOrderHistory,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidOrder,
    JournalExport,
    ListOrders,
    NotAcceptingOrders,
    NotAcceptingReason,
    OrderDifference,
    OrderEvent,
    OrderHistory,
    OrderList,
    OrderNotFound,
    OrderPlaced,
    OrderState,
    OrderView,
    PlaceOrder,
    ReconciliationView,
    TradingFrozen,
)
from supervisors import SupervisedActor, UnrecoverableError, names
from trading import audit
from trading import protocol as core
from trading.client_ids import client_order_id, is_own
from trading.errors import JournalIntegrityError
from trading.inflight import SWEEP_PRIORITY, InflightSchedule, InflightStatistics, SweepCosts
from trading.journal import Journal, JournalRecord
from trading.ledger import Fill as LedgerFill
from trading.snapshot import Snapshot, SnapshotError, read_snapshot, write_snapshot

__all__ = [
    "ActiveSymbols",
    "CoordinatorStatistics",
    "FoldVenue",
    "Folded",
    "GetStatistics",
    "SNAPSHOT_EVERY",
    "JournalCorrupted",
    "RecordReconciliation",
    "StartupReconciled",
    "TransactionCoordinator",
    "journal_order",
    "new_transaction_id",
    "sweep_costs",
]

_ORDER_KIND = "order."
_SEED_STREAM = "ledger-seed"
_SNAPSHOT_KIND = "transactions"
_FINAL_STATES = frozenset({"filled", "canceled", "rejected", "aborted"})
#: Journal records between periodic snapshots (one is also written at every clean stop).
SNAPSHOT_EVERY = 10_000
_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
#: Seconds past a call's deadline before this actor settles the reply slot itself.
_OVERDUE_GRACE = 1.0
#: The bulkhead of account reads (lookups, trades): the read queue, so that however many
#: orders are being looked up, creates and cancels (Category.TRADING) are dispatched first.
#: Account data is never cached by the gateway, so a read is never answered stale.
_READS = Category.MARKET_DATA
#: Exchanges whose all-markets open-orders listing is one request and a complete answer, so an
#: order missing from it is known to have closed. Nobitex's listing reads every page of its
#: orders/list (see exchanges/nobitex.py), each page costing ten lookups in its rate limits, and
#: the gateway charges the call once: its open orders are looked up one by one.
_COMPLETE_OPEN_LISTING = frozenset({"binance"})


@functools.cache
def sweep_costs(exchange: str) -> SweepCosts:
    """What one order lookup and one all-markets open-orders listing weigh, read from a bucket
    built like the account's (``bucket_for_exchange``: the same cost table); a throw-away
    bucket, so nothing is taken from the account's budget."""
    from exchanges import UnknownExchange, create_client

    try:
        client = create_client(exchange)
    except UnknownExchange:
        return SweepCosts(lookup=1.0, sweep=None)
    bucket = bucket_for_exchange(client, units_per_second=1000.0, safety_margin=1.0,
                                 burst_seconds=1.0)
    lookup, listing = bucket.try_acquire("fetch_order"), bucket.try_acquire("fetch_open_orders")
    assert isinstance(lookup, Granted) and isinstance(listing, Granted)
    complete = exchange in _COMPLETE_OPEN_LISTING and client.has.get("fetchOpenOrders") is True
    return SweepCosts(lookup=lookup.cost, sweep=listing.cost if complete else None)


class JournalCorrupted(UnrecoverableError):
    """Raised at start when the transaction journal fails its integrity check: the node stops
    at once instead of trading on bad state (the message names the record and the problem),
    and the journal-integrity alert is raised."""

    def __init__(self, directory: str, error: JournalIntegrityError) -> None:
        super().__init__(f"journal integrity check failed: transaction journal in {directory}, "
                         f"refusing to trade on it: {error}")
        self.directory = directory
        self.error = error


def journal_order(journal: Journal, effect: core.Journal, *, external: bool = False
                  ) -> JournalRecord:
    """Append one order state change as the coordinator records it (stream: the transaction
    id; data: the whole order, enough to resume it). Durable when it returns."""
    order, change = effect.order, effect.change
    return journal.append(
        stream=order.transaction_id, kind=f"{_ORDER_KIND}{order.state.value}",
        cause=change.cause,
        data={"order": to_dict(order), "external": external,
              "from": change.from_state.value, "to": change.to_state.value},
        now=change.at)


def new_transaction_id() -> str:
    """A fresh transaction id: 20 random base36 characters (103 bits), short enough to be
    embedded verbatim in every venue's client order id (so it can be read back)."""
    number = secrets.randbelow(36 ** 20)
    digits = []
    for _ in range(20):
        number, rest = divmod(number, 36)
        digits.append(_ID_ALPHABET[rest])
    return "".join(digits)


# --------------------------------------------------------------------------- messages


@attrs.frozen(slots=True)
class StartupReconciled:
    """Reconciler → coordinator: the start-up reconciliation succeeded (``ok``) or failed."""

    ok: bool
    message: str


@attrs.frozen(slots=True)
class FoldVenue:
    """Reconciler → coordinator (ask): what the venue shows now. The coordinator seeds the
    ledger on first start, adopts unknown open orders as external, feeds known orders their
    venue state and missed trades, and answers the differences (``tuple[OrderDifference]``)."""

    open_orders: tuple[Any, ...]
    trades: tuple[Any, ...]
    balances: Mapping[str, Decimal]
    observed_at: datetime
    run_id: str


@attrs.frozen(slots=True)
class Folded:
    """The coordinator's answer to :class:`FoldVenue`. ``unresolved`` counts orders whose
    venue effects may not be booked yet (in flight, unknown, closed but unsettled, or with
    venue fills not yet seen as trades): balances compared before they are resolved would
    show differences that are not real, so the comparison waits for ``unresolved == 0``."""

    differences: tuple[OrderDifference, ...]
    unresolved: int


@attrs.frozen(slots=True)
class RecordReconciliation:
    """Reconciler → coordinator (ask): journal a finished run's report (the audit trail)."""

    view: ReconciliationView


@attrs.frozen(slots=True)
class ActiveSymbols:
    """Ask: symbols whose trades reconciliation should read (orders not final, or changed
    within ``since``). ``open_at_venue`` is the venue's open orders as ``(client order id,
    venue order id, symbol, filled)``: an order open there whose reported ``filled`` is
    already covered by booked trades can have no missed fill and does not count; an unknown
    one (to be adopted) counts if it reports executions (``filled`` None: unknown, counts)."""

    since: datetime
    open_at_venue: tuple[tuple[str | None, str | None, str, Decimal | None], ...] = ()


@attrs.frozen(slots=True)
class GetStatistics:
    """Ask: the coordinator's :class:`CoordinatorStatistics`."""


@attrs.frozen(slots=True)
class CoordinatorStatistics:
    """Counters for health, /status and benchmarks."""

    orders: int
    open_transactions: int
    by_state: Mapping[str, int]
    accepting: bool
    not_accepting_reason: str | None
    journal_records: int
    inflight: InflightStatistics
    pending_calls: int
    recovery_seconds: float


@attrs.frozen(slots=True)
class _Archived:
    """An order known from a snapshot and kept in the journal, not in memory: what listing,
    statistics and look-ups need without decoding it (the rest is read from record ``seq``,
    its latest). ``final`` orders are closed and settled; the others are read at start."""

    seq: int
    state: str
    symbol: str
    created_at: datetime
    updated_at: str
    settled: bool
    external: bool
    client_id: str
    client_order_id: str
    venue_order_id: str | None

    @property
    def final(self) -> bool:
        return self.settled and self.state in _FINAL_STATES

    def row(self, tx: str, history: list[int]) -> list[Any]:
        return [tx, self.state, self.symbol, self.created_at.isoformat(), self.updated_at,
                self.settled, self.external, self.client_id, self.client_order_id,
                self.venue_order_id, history]

    @classmethod
    def from_core(cls, seq: int, order: core.Order, external: bool) -> _Archived:
        return cls(seq=seq, state=order.state.value, symbol=order.intent.symbol,
                   created_at=order.created_at, updated_at=order.updated_at.isoformat(),
                   settled=order.settled_at is not None, external=external,
                   client_id=order.intent.client_id, client_order_id=order.client_order_id,
                   venue_order_id=order.venue_order_id)

    @classmethod
    def from_order(cls, seq: int, order: Mapping[str, Any], external: bool) -> _Archived:
        """From an order as journaled (``to_dict`` of the core order)."""
        return cls(seq=seq, state=order["state"], symbol=order["intent"]["symbol"],
                   created_at=datetime.fromisoformat(order["created_at"]),
                   updated_at=order["updated_at"], settled=order["settled_at"] is not None,
                   external=external, client_id=order["intent"]["client_id"],
                   client_order_id=order["client_order_id"],
                   venue_order_id=order.get("venue_order_id"))


@attrs.frozen(slots=True)
class _Tick:
    pass


@attrs.frozen(slots=True)
class _Restore:
    """Sent to itself at start: restore before anything else is handled."""


@attrs.frozen(slots=True)
class _LoadMarkets:
    pass


@attrs.frozen(slots=True)
class _RetryCancel:
    transaction_id: str


# Why a call was made (kept per request id until its reply arrives).
@attrs.frozen(slots=True)
class _CreateCall:
    transaction_id: str
    attempt: int
    effect: core.SendCreate
    resends: int = 0


@attrs.frozen(slots=True)
class _Resend:
    """Send again a create the gateway proved it never sent (same attempt, same client id)."""

    call: _CreateCall


@attrs.frozen(slots=True)
class _QueryCall:
    transaction_id: str
    query: core.QueryOrder


@attrs.frozen(slots=True)
class _SweepCall:
    """One listing of all open orders refreshing these plain OPEN orders."""

    transaction_ids: tuple[str, ...]


@attrs.frozen(slots=True)
class _TradesCall:
    transaction_id: str
    venue_order_id: str


@attrs.frozen(slots=True)
class _CancelCall:
    transaction_id: str
    attempt: int


@attrs.frozen(slots=True)
class _MarketsCall:
    pass


def _thaw(value: Any) -> Any:
    """A frozen exchange value as plain dicts and lists (for the protocol's parsers)."""
    if isinstance(value, FrozenMap):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _recaused(step: core.Step, cause: str) -> core.Step:
    """``step`` with its change record (and the journal effect carrying it) given ``cause``."""
    assert step.change is not None
    change = attrs.evolve(step.change, cause=cause)
    effects = tuple(attrs.evolve(e, change=change) if isinstance(e, core.Journal) else e
                    for e in step.effects)
    return attrs.evolve(step, change=change, effects=effects)


def _not_sent(reply: ExchangeReply) -> bool:
    """The reply proves the call never reached the venue."""
    return isinstance(reply, CircuitOpen | Overloaded) or (
        isinstance(reply, DeadlineExceeded) and not reply.sent)


class TransactionCoordinator(SupervisedActor):
    """See the module docstring."""

    def __init__(self, settings: TradingSettings,
                 clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__()
        self._s = settings
        self._clock = clock
        self._journal: Journal | None = None
        self._raw: dict[str, dict[str, Any]] = {}
        self._orders: dict[str, core.Order] = {}
        self._external: set[str] = set()
        self._by_client: dict[str, str] = {}
        self._by_coid: dict[str, str] = {}
        self._by_venue_id: dict[str, str] = {}
        self._schedule = InflightSchedule(settings.inflight_policy)
        self._queries: dict[str, core.QueryOrder] = {}
        self._querying: set[str] = set()
        #: The orders a listing of open orders in flight refreshes (at most one at a time).
        self._sweeping: frozenset[str] | None = None
        self._sweeps_refused = False
        self._pending: dict[str, Any] = {}
        self._slots: dict[str, ReplySlot] = {}
        self._markets: dict[str, core.MarketRules] = {}
        self._reconciled = False
        self._reconcile_failure: str | None = None
        self._seed: dict[str, Any] | None = None
        self._preseed_trades: frozenset[str] = frozenset()
        self._recovery_seconds = 0.0
        #: Each order's journal records (seqs), read back for its history.
        self._history: dict[str, list[int]] = {}
        self._archived: dict[str, _Archived] = {}
        self._snapshot_seq = 0
        self._started = datetime.now(UTC)

    # ------------------------------------------------------------------ lifecycle

    def on_start(self) -> None:
        """Returns at once; the restore is this actor's first message (:class:`_Restore`), so
        the supervisor starts the reconciler meanwhile and its venue reads, which wait on the
        account's rate limit, overlap the restore. Every message is answered after it."""
        self._started = datetime.now(UTC)
        self.actor_ref.tell(_Restore())

    def _restore_all(self) -> None:
        """Verify the journal and rebuild the state (from the snapshot if the journal holds
        it), resume non-final orders. A journal failing verification stops the node."""
        started = self._started
        directory = self._s.journal_dir
        directory.mkdir(parents=True, exist_ok=True)
        checkpoint = self._load_snapshot(directory)

        def refused(reason: str) -> None:
            nonlocal checkpoint
            logger.warning("transactions: snapshot in {} ignored ({}); full replay", directory,
                           reason)
            self._clear_state()
            checkpoint = None

        try:
            self._journal = Journal.open(directory, visit=self._restore, checkpoint=checkpoint,
                                         on_checkpoint_refused=refused)
            self._snapshot_seq = 0 if checkpoint is None else checkpoint.seq
            for tx, archived in list(self._archived.items()):
                if not archived.final:  # resumes below: read its latest record now
                    self._raw[tx] = self._read_latest(tx).data
                    del self._archived[tx]
        except JournalIntegrityError as error:
            publish_alert_event(JournalIntegrityFailed(journal=str(directory), reason=str(error),
                                                       at=time.time()))
            raise JournalCorrupted(str(directory), error) from None
        if self._seed is not None:
            self._preseed_trades = frozenset(self._seed.get("trade_ids", ()))
        resumed = self._resume_all()
        self._void_orphan_reservations()
        self._recovery_seconds = (datetime.now(UTC) - started).total_seconds()
        logger.info("transactions: {} orders in the journal ({} records, snapshot at {}), "
                    "{} resumed in {:.3f}s", self._order_count(), len(self._journal),
                    self._snapshot_seq, resumed, self._recovery_seconds)
        self.actor_ref.tell(_LoadMarkets())
        self.send_after(self._s.inflight_tick, _Tick())

    def on_stop(self) -> None:
        if self._journal is not None:
            self._snapshot()
            self._journal.close()

    def _restore(self, record: JournalRecord) -> None:
        if record.stream == _SEED_STREAM:
            self._seed = record.data
            return
        if not record.kind.startswith(_ORDER_KIND):
            return
        tx = record.stream
        self._history.setdefault(tx, []).append(record.seq)
        self._orders.pop(tx, None)
        self._archived.pop(tx, None)
        self._raw[tx] = record.data
        self._index(tx, record.data["order"], bool(record.data.get("external")))

    # ------------------------------------------------------------------ snapshot

    def _clear_state(self) -> None:
        for table in (self._raw, self._orders, self._by_client, self._by_coid,
                      self._by_venue_id, self._history, self._archived):
            table.clear()
        self._external.clear()
        self._seed = None

    def _load_snapshot(self, directory: Any) -> Any:
        """Fill the state from the snapshot in ``directory``; its head, or None (none there,
        or unusable: logged, state left empty for a full replay)."""
        try:
            snapshot = read_snapshot(directory, _SNAPSHOT_KIND)
            if snapshot is None:
                return None
            self._seed = snapshot.state["seed"]
            for row in snapshot.state["orders"]:
                (tx, state, symbol, created_at, updated_at, settled, external, client_id,
                 coid, venue_order_id, history) = row
                if not history or not all(isinstance(seq, int) for seq in history):
                    raise ValueError(f"order {tx} has no journal records")
                archived = _Archived(
                    seq=history[-1], state=str(state), symbol=str(symbol),
                    created_at=datetime.fromisoformat(created_at), updated_at=str(updated_at),
                    settled=bool(settled), external=bool(external), client_id=str(client_id),
                    client_order_id=str(coid),
                    venue_order_id=None if venue_order_id is None else str(venue_order_id))
                self._archived[tx] = archived
                self._history[tx] = list(history)
                self._index_archived(tx, archived)
            return snapshot.head
        except (SnapshotError, KeyError, ValueError, TypeError) as error:
            logger.warning("transactions: snapshot in {} ignored ({}); full replay", directory,
                           error)
            self._clear_state()
            return None

    def _index_archived(self, tx: str, archived: _Archived) -> None:
        if archived.external:
            self._external.add(tx)
        else:
            self._by_client[archived.client_id] = tx
        self._by_coid[archived.client_order_id] = tx
        if archived.venue_order_id is not None:
            self._by_venue_id[archived.venue_order_id] = tx

    def _snapshot(self) -> None:
        """Write a snapshot at the journal's head (if it moved since the last one): every
        order as a row, closed and settled ones to be left in the journal at the next start."""
        journal = self._journal
        assert journal is not None
        head = journal.head
        if head.seq == self._snapshot_seq:
            return
        rows = []
        for tx, history in self._history.items():
            archived = self._archived.get(tx)
            if archived is None:
                order = self._orders.get(tx)
                external = tx in self._external
                archived = _Archived.from_core(history[-1], order, external) \
                    if order is not None else \
                    _Archived.from_order(history[-1], self._raw[tx]["order"], external)
            rows.append(archived.row(tx, history))
        try:
            write_snapshot(journal.directory, Snapshot(_SNAPSHOT_KIND, head,
                                                       {"seed": self._seed, "orders": rows}))
        except OSError as error:  # the journal has everything: only the next start is slower
            logger.warning("transactions: snapshot not written ({})", error)
            return
        self._snapshot_seq = head.seq

    def _read_latest(self, tx: str) -> JournalRecord:
        """The latest order record of ``tx``, read back from the journal."""
        assert self._journal is not None
        seq = self._history[tx][-1]
        record = self._journal.read(seq)
        if record.stream != tx or not record.kind.startswith(_ORDER_KIND):
            raise JournalIntegrityError(seq, f"is not an order record of {tx} as the "
                                             "snapshot says")
        return record

    def _order_history(self, tx: str) -> tuple[OrderEvent, ...]:
        assert self._journal is not None
        events = []
        for seq in self._history[tx]:
            record = self._journal.read(seq)
            events.append(OrderEvent(
                seq=record.seq, at=record.time, from_state=OrderState(record.data["from"]),
                to_state=OrderState(record.data["to"]), cause=record.cause))
        return tuple(events)

    def _order_count(self) -> int:
        return len(self._orders) + len(self._raw) + len(self._archived)

    def _known(self, tx: str) -> bool:
        return tx in self._orders or tx in self._raw or tx in self._archived

    def _index(self, tx: str, order: Mapping[str, Any], external: bool) -> None:
        if external:
            self._external.add(tx)
        else:
            self._by_client[order["intent"]["client_id"]] = tx
        self._by_coid[order["client_order_id"]] = tx
        if order.get("venue_order_id") is not None:
            self._by_venue_id[order["venue_order_id"]] = tx

    def _resume_all(self) -> int:
        now = self._clock()
        resumed = 0
        for tx, data in list(self._raw.items()):
            raw = data["order"]
            if raw["settled_at"] is not None and raw["state"] in ("filled", "canceled",
                                                                   "rejected", "aborted"):
                continue
            order = self._get(tx)
            assert order is not None
            resumed += 1
            # A crash between a journal record and the ledger operations it implies: book its
            # trades again (idempotent by trade id) before the order moves on, e.g. to settle.
            for trade in order.fills:
                self._post_fill(core.PostFill(tx, order.intent.symbol, order.intent.side, trade))
            self._event(tx, core.Resume(), now)
            current = self._get(tx)
            if current is not None and current.state is core.OrderState.PREPARED \
                    and current.reserved:
                self._event(tx, core.Submit(), now)
        return resumed

    def _void_orphan_reservations(self) -> None:
        """Reservations whose transaction never reached the journal (crash between the two)."""
        open_ids = self._ask_ledger(OpenReservations())
        for transfer_id in open_ids:
            if not self._known(transfer_id):
                logger.warning("transactions: voiding reservation {} (no journaled transaction)",
                               transfer_id)
                self._ask_ledger(Release(transfer_id))

    # ------------------------------------------------------------------- helpers

    def _get(self, tx: str) -> core.Order | None:
        order = self._orders.get(tx)
        if order is None:
            data = self._raw.pop(tx, None)
            if data is None and tx in self._archived:
                data = self._read_latest(tx).data
                del self._archived[tx]
            if data is not None:
                order = from_dict(core.Order, data["order"])
                self._orders[tx] = order
        return order

    def _ask_ledger(self, message: Any) -> Any:
        return names.ask(LEDGER, message, timeout=self._s.ask_timeout)

    def _accepting(self) -> NotAcceptingOrders | None:
        if self._reconciled and self._markets:
            return None
        if self._reconcile_failure is not None:
            return NotAcceptingOrders(reason=NotAcceptingReason.RECONCILIATION_FAILED,
                                      message=self._reconcile_failure)
        what = "start-up reconciliation" if not self._reconciled else "loading the markets"
        return NotAcceptingOrders(reason=NotAcceptingReason.RECONCILIATION_PENDING,
                                  message=f"{what} has not finished; reads and cancels work")

    def _find(self, tx: str | None, client_id: str | None) -> str | None:
        if tx is not None:
            return tx if self._known(tx) else None
        assert client_id is not None
        return self._by_client.get(client_id)

    def view(self, order: core.Order) -> OrderView:
        """The caller's view of ``order``."""
        intent = order.intent
        external = order.transaction_id in self._external
        average = order.average_price
        if average is None and order.fills_total > 0:
            average = order.cost / order.fills_total
        return OrderView(
            id=order.transaction_id, client_id=None if external else intent.client_id,
            client_order_id=order.client_order_id, venue=order.venue, symbol=intent.symbol,
            side=intent.side.value, type=intent.type.value,
            time_in_force=None if intent.time_in_force is None else intent.time_in_force.value,
            amount=intent.amount, price=intent.price, state=OrderState(order.state.value),
            filled=order.filled, average_price=average, created_at=order.created_at,
            updated_at=order.updated_at, venue_order_id=order.venue_order_id,
            fills=tuple(FillView(trade_id=t.trade_id, amount=t.amount, price=t.price,
                                 fee=t.fee_cost, fee_currency=t.fee_currency)
                        for t in order.fills),
            cancel_requested=order.cancel_requested_at is not None,
            settled=order.settled_at is not None, external=external, reason=order.reason,
        )

    # ------------------------------------------------------------------ dispatch

    def on_receive(self, message: Any) -> Any:
        if self._journal is None:  # the first message, whichever it is, restores
            self._restore_all()
        if isinstance(message, _Restore):
            return None
        answer = self._handle(message)  # a handler that raised crashes the actor: no snapshot
        if self._journal is not None:
            # Every SNAPSHOT_EVERY records and a quarter of the journal: a snapshot has a row
            # per order, so they grow apart as the journal grows.
            added = self._journal.head.seq - self._snapshot_seq
            if added >= SNAPSHOT_EVERY and added >= self._journal.head.seq // 4:
                self._snapshot()
        return answer

    def _handle(self, message: Any) -> Any:
        if isinstance(message, CallAnswered):
            return self._on_answer(message.request_id, message.reply)
        if isinstance(message, _Tick):
            return self._on_tick()
        if isinstance(message, PlaceOrder):
            return self._place(message)
        if isinstance(message, CancelOrder):
            return self._cancel(message)
        if isinstance(message, GetOrder):
            tx = self._find(message.id, message.client_id)
            order = None if tx is None else self._get(tx)
            if order is None:
                return OrderNotFound(id=message.id, client_id=message.client_id)
            return self.view(order)
        if isinstance(message, ListOrders):
            return self._list(message)
        if isinstance(message, GetOrderHistory):
            if message.id not in self._history:
                return OrderNotFound(id=message.id, client_id=None)
            return OrderHistory(order_id=message.id, events=self._order_history(message.id))
        if isinstance(message, ExportJournal):
            assert self._journal is not None
            return JournalExport(text=audit.journal_to_csv(self._journal.replay()))
        if isinstance(message, CallOverdue):
            return self._on_overdue(message.request_id)
        if isinstance(message, _RetryCancel):
            return self._retry_cancel(message.transaction_id)
        if isinstance(message, _Resend):
            return self._resend(message.call)
        if isinstance(message, _LoadMarkets):
            if not self._markets:
                self._call(_MarketsCall(), "load_markets", category=Category.MARKET_DATA,
                           idempotent=True)
            return None
        if isinstance(message, StartupReconciled):
            return self._on_startup_reconciled(message)
        if isinstance(message, FoldVenue):
            return self._fold(message)
        if isinstance(message, RecordReconciliation):
            return self._record_reconciliation(message.view)
        if isinstance(message, ActiveSymbols):
            return self._active_symbols(message.since, message.open_at_venue)
        if isinstance(message, GetStatistics):
            return self._statistics()
        raise TypeError(f"TransactionCoordinator: unexpected message {type(message).__name__}")

    # ------------------------------------------------------------------ commands

    def _place(self, command: PlaceOrder) -> Any:
        existing = self._by_client.get(command.client_id)
        try:
            intent = core.OrderIntent.parse(
                client_id=command.client_id, symbol=command.symbol, side=command.side,
                type=command.type, amount=command.amount, price=command.price,
                time_in_force=command.time_in_force)
        except core.OrderValidationError as error:
            if existing is not None:
                return self._conflict(command, existing)
            return InvalidOrder(field=error.field, code=error.code, message=error.message)
        if existing is not None:
            order = self._get(existing)
            assert order is not None
            if order.intent == intent and command.venue in (None, self._s.venue):
                return OrderPlaced(order=self.view(order), created=False)
            return self._conflict(command, existing)
        if command.venue not in (None, self._s.venue):
            return InvalidOrder(field="venue", code="unknown_venue",
                                message=f"this node trades on {self._s.venue!r} only")
        refusal = self._accepting()
        if refusal is not None:
            return refusal
        market = self._markets.get(intent.symbol)
        if market is None:
            return InvalidOrder(field="symbol", code="unknown_symbol",
                                message=f"{intent.symbol!r} is not a market of {self._s.venue}")
        now = self._clock()
        tx = new_transaction_id()
        coid = client_order_id(self._s.id_rule, self._s.node_id, tx)
        try:
            prepared = core.prepare(transaction_id=tx, venue=self._s.venue, client_order_id=coid,
                                    intent=intent, market=market, now=now)
        except core.OrderValidationError as error:
            return InvalidOrder(field=error.field, code=error.code, message=error.message)
        order = prepared.order
        reply = self._ask_ledger(Reserve(tx, order.reserve_currency, order.reserve_amount))
        if isinstance(reply, InsufficientFunds | TradingFrozen):
            return reply
        if isinstance(reply, LedgerRefused):
            return InvalidOrder(field="symbol", code="ledger_refused", message=reply.reason)
        reserved = core.apply(order, core.FundsReserved(), now, self._s.protocol)
        self._run(_recaused(reserved, "prepared: intent validated, funds reserved"),
                  external=False)
        self._event(tx, core.Submit(), now)
        current = self._get(tx)
        assert current is not None
        return OrderPlaced(order=self.view(current), created=True)

    def _conflict(self, command: PlaceOrder, tx: str) -> IdempotencyConflict:
        return IdempotencyConflict(
            client_id=command.client_id, order_id=tx,
            message=f"client_id {command.client_id!r} already names order {tx} "
                    "with different content; nothing was placed")

    def _cancel(self, command: CancelOrder) -> Any:
        tx = self._find(command.id, command.client_id)
        if tx is None or self._get(tx) is None:
            return OrderNotFound(id=command.id, client_id=command.client_id)
        now = self._clock()
        self._event(tx, core.CancelRequested("requested by the caller"), now)
        order = self._get(tx)
        assert order is not None
        return self.view(order)

    def _retry_cancel(self, tx: str) -> None:
        order = self._get(tx)
        if order is None or order.is_closed or order.cancel_requested_at is None:
            return
        if order.state is core.OrderState.OPEN:
            now = self._clock()
            self._event(tx, core.CancelRequested("retry"), now)

    def _list(self, query: ListOrders) -> OrderList:
        """Newest first; chosen and sorted without decoding, only the answered ones are."""
        state = None if query.state is None else query.state.value
        chosen: list[tuple[datetime, str]] = []
        for tx, order in self._orders.items():
            if state in (None, order.state.value) and query.symbol in (None, order.intent.symbol):
                chosen.append((order.created_at, tx))
        for tx, data in self._raw.items():
            raw = data["order"]
            if state in (None, raw["state"]) and query.symbol in (None, raw["intent"]["symbol"]):
                chosen.append((datetime.fromisoformat(raw["created_at"]), tx))
        for tx, archived in self._archived.items():
            if state in (None, archived.state) and query.symbol in (None, archived.symbol):
                chosen.append((archived.created_at, tx))
        chosen.sort(reverse=True)
        views = []
        for _, tx in chosen[:query.limit]:
            answered = self._get(tx)
            assert answered is not None
            views.append(self.view(answered))
        return OrderList(orders=tuple(views))

    # ------------------------------------------------------------- core and effects

    def _event(self, tx: str, event: core.Event, now: datetime) -> None:
        """Apply one event to order ``tx`` and perform its effects; a refused event (protocol
        error) leaves the order unchanged and is logged and journaled as an anomaly."""
        order = self._get(tx)
        if order is None:
            return
        try:
            step = core.apply(order, event, now, self._s.protocol)
        except (core.ProtocolError, ValueError) as error:
            self._anomaly(tx, error)
            return
        self._run(step, external=tx in self._external)

    def _anomaly(self, tx: str, error: Exception) -> None:
        logger.bind(transaction=tx).error("transactions: event refused for {}: {}", tx, error)
        assert self._journal is not None
        self._journal.append(stream=f"anomaly:{tx}", kind="anomaly", cause=str(error)[:500],
                             data={"transaction_id": tx, "error": type(error).__name__},
                             now=self._clock())

    def _run(self, step: core.Step, *, external: bool) -> None:
        tx = step.order.transaction_id
        if step.ignored is not None:
            logger.trace("transactions: {} ignored: {}", tx, step.ignored.reason)
        for effect in step.effects:
            self._perform(effect, external)
        order = self._get(tx)
        if order is not None:
            self._follow(order)

    def _perform(self, effect: core.Effect, external: bool) -> None:
        if isinstance(effect, core.Journal):
            self._append(effect, external)
        elif isinstance(effect, core.PostFill):
            self._post_fill(effect)
        elif isinstance(effect, core.SettleReservation):
            self._settle(effect.transaction_id)
        elif isinstance(effect, core.SendCreate):
            self._send_create(effect)
        elif isinstance(effect, core.SendCancel):
            self._send_cancel(effect)
        elif isinstance(effect, core.QueryOrder):
            self._queries[effect.transaction_id] = effect
            self._schedule.track(effect.transaction_id, 0, self._clock(), immediately=True)
        elif isinstance(effect, core.ReserveFunds):
            self._reserve_on_resume(effect)
        else:  # pragma: no cover - the Effect union is closed
            raise TypeError(f"unknown effect {effect!r}")

    def _append(self, effect: core.Journal, external: bool) -> None:
        assert self._journal is not None
        order = effect.order
        record = journal_order(self._journal, effect, external=external)
        tx = order.transaction_id
        self._history.setdefault(tx, []).append(record.seq)
        self._raw.pop(tx, None)
        self._archived.pop(tx, None)
        self._orders[tx] = order
        if external:
            self._external.add(tx)
        else:
            self._by_client[order.intent.client_id] = tx
        self._by_coid[order.client_order_id] = tx
        if order.venue_order_id is not None:
            self._by_venue_id[order.venue_order_id] = tx

    def _post_fill(self, effect: core.PostFill) -> None:
        order = self._get(effect.transaction_id)
        assert order is not None
        trade = effect.trade
        if trade.trade_id in self._preseed_trades:
            logger.info("transactions: trade {} predates the opening balances; not booked",
                        trade.trade_id)
            return
        # A self-trade (our buy met our sell) is one venue trade id on two orders: the side
        # keeps their two bookings apart.
        fill = LedgerFill(
            trade_id=f"{trade.trade_id}.{effect.side.value}", venue=self._s.ledger_venue,
            symbol=effect.symbol,
            side=effect.side.value, amount=trade.amount, price=trade.price,
            fee=trade.fee_cost, fee_currency=trade.fee_currency if trade.fee_cost else None,
            transfer_id=order.transaction_id if order.reserved else None,
            order_id=order.transaction_id)
        reply = self._ask_ledger(BookFill(fill))
        if isinstance(reply, LedgerRefused):
            logger.error("transactions: ledger refused trade {} of {}: {}", trade.trade_id,
                         order.transaction_id, reply.reason)

    def _settle(self, tx: str) -> None:
        order = self._get(tx)
        assert order is not None
        if order.reserved:
            reply = self._ask_ledger(Release(tx))
            if isinstance(reply, LedgerRefused):
                logger.error("transactions: settling {} refused by the ledger: {}", tx,
                             reply.reason)
        now = self._clock()
        self._event(tx, core.Settled(), now)

    def _reserve_on_resume(self, effect: core.ReserveFunds) -> None:
        tx = effect.transaction_id
        reply = self._ask_ledger(Reserve(tx, effect.currency, effect.amount))
        now = self._clock()
        if isinstance(reply, InsufficientFunds | TradingFrozen | LedgerRefused):
            reason = type(reply).__name__
            self._event(tx, core.ReservationRefused(reason), now)
        else:
            self._event(tx, core.FundsReserved(), now)

    def _follow(self, order: core.Order) -> None:
        """Keep the in-flight schedule in step with the order's state."""
        tx = order.transaction_id
        priority = core.lookup_priority(order)
        if priority is None:
            self._schedule.forget(tx)
            self._queries.pop(tx, None)
        else:
            self._schedule.track(tx, priority, self._clock())

    # ------------------------------------------------------------------ the wire

    def _call(self, purpose: Any, method: str, args: tuple[Any, ...] = (),
              kwargs: Mapping[str, Any] | None = None, *, category: Category = Category.TRADING,
              idempotent: bool) -> None:
        request = ExchangeRequest.new(self._s.venue, method, args, kwargs, category=category,
                                      idempotent=idempotent, timeout=self._s.call_timeout)
        self._pending[request.id] = purpose
        self._slots[request.id] = call_for_self(
            self, self.send_after, request,
            overdue_after=self._s.call_timeout + _OVERDUE_GRACE)

    def _on_overdue(self, request_id: str) -> None:
        slot = self._slots.get(request_id)
        if slot is None or slot.answered:
            return
        purpose = self._pending.get(request_id)
        if isinstance(purpose, _CreateCall | _CancelCall):
            slot.answer(OutcomeUnknown(request_id=request_id,
                                       reason="no answer past the deadline; it may have executed"))
        else:
            slot.answer(DeadlineExceeded(request_id=request_id, deadline=0.0, sent=True))

    def _send_create(self, effect: core.SendCreate, resends: int = 0) -> None:
        params: dict[str, Any] = {"clientOrderId": effect.client_order_id}
        if effect.type is core.OrderType.LIMIT and effect.time_in_force not in (
                None, core.TimeInForce.GTC):  # GTC is every venue's default: not sent
            params["timeInForce"] = effect.time_in_force.value
        # A market order's price only sizes its reservation: given to ccxt, a market buy would
        # become a quote-sized order (quoteOrderQty) of a different amount.
        price = effect.price if effect.type is core.OrderType.LIMIT else None
        self._call(_CreateCall(effect.transaction_id, effect.attempt, effect, resends),
                   "create_order",
                   (effect.symbol, effect.type.value, effect.side.value, effect.amount, price),
                   {"params": params}, idempotent=False)

    def _resend(self, call: _CreateCall) -> None:
        order = self._get(call.transaction_id)
        if (order is None or order.state is not core.OrderState.SUBMITTING
                or order.attempts != call.attempt):
            return  # moved on meanwhile (a restart resumed it, or a later attempt exists)
        if order.cancel_requested_at is not None:  # let the lookup confirm absence and abort
            self._event(call.transaction_id, core.SubmitAmbiguous(
                call.attempt, "not sent, and a cancel was requested"), self._clock())
            return
        self._send_create(call.effect, call.resends + 1)

    def _send_cancel(self, effect: core.SendCancel) -> None:
        params = {} if effect.venue_order_id is not None else {
            "clientOrderId": effect.client_order_id}
        self._call(_CancelCall(effect.transaction_id, effect.attempt), "cancel_order",
                   (effect.venue_order_id, effect.symbol), {"params": params}, idempotent=True)

    def _send_query(self, tx: str) -> None:
        order = self._get(tx)
        if order is None:
            return
        query = self._queries.get(tx) or core.QueryOrder(
            tx, order.client_order_id, order.venue_order_id, order.intent.symbol,
            via_history=False, with_trades=not order.trades_complete)
        self._querying.add(tx)
        if order.venue_order_id is not None:
            args: tuple[Any, ...] = (order.venue_order_id, order.intent.symbol)
            params: dict[str, Any] = {}
        else:
            args = (None, order.intent.symbol)
            params = {"clientOrderId": order.client_order_id}
        self._call(_QueryCall(tx, query), "fetch_order", args, {"params": params},
                   category=_READS, idempotent=True)

    def _send_trades_query(self, order: core.Order) -> None:
        assert order.venue_order_id is not None
        params: dict[str, Any] = {}
        if self._s.exchange == "binance":
            params["orderId"] = order.venue_order_id
        self._querying.add(order.transaction_id)
        self._call(_TradesCall(order.transaction_id, order.venue_order_id), "fetch_my_trades",
                   (order.intent.symbol,), {"params": params}, category=_READS,
                   idempotent=True)

    def _on_tick(self) -> None:
        # At most inflight_cap lookups outstanding, not per tick: when the rate limit cannot
        # keep up with the schedule, lookups would otherwise pile up in the read bulkhead
        # and every other read (the reconciler's) would wait behind them past its deadline.
        # Many plain OPEN orders due: one listing of open orders (16 units on Binance) instead
        # of a lookup each (0.8): 1 000 resting orders asked ~27 units/s of a 16 units/s budget.
        now = self._clock()
        in_flight = self._sweeping is not None
        room = self._s.inflight_cap - len(self._querying) - in_flight
        if room > 0:
            costs = sweep_costs(self._s.exchange)
            if self._sweeps_refused:
                costs = attrs.evolve(costs, sweep=None)
            plan = self._schedule.plan(now, room, costs, sweep_in_flight=in_flight)
            for key in plan.alone:
                tx = str(key)
                if tx not in self._querying:
                    self._send_query(tx)
            if plan.sweep:
                self._send_sweep(plan.sweep)
        self.send_after(self._s.inflight_tick, _Tick())

    def _send_sweep(self, keys: tuple[Any, ...]) -> None:
        swept = tuple(str(key) for key in keys)
        self._sweeping = frozenset(swept)
        self._call(_SweepCall(swept), "fetch_open_orders", category=_READS, idempotent=True)

    # ------------------------------------------------------------------ replies

    def _on_answer(self, request_id: str, reply: ExchangeReply) -> None:
        self._slots.pop(request_id, None)
        purpose = self._pending.pop(request_id, None)
        if purpose is None:
            return
        now = self._clock()
        if isinstance(purpose, _MarketsCall):
            self._on_markets(reply)
        elif isinstance(purpose, _CreateCall):
            self._on_create(purpose, reply, now)
        elif isinstance(purpose, _QueryCall):
            self._querying.discard(purpose.transaction_id)
            self._on_query(purpose, reply, now)
        elif isinstance(purpose, _TradesCall):
            self._querying.discard(purpose.transaction_id)
            self._on_trades(purpose, reply, now)
        elif isinstance(purpose, _SweepCall):
            self._sweeping = None
            self._on_sweep(purpose, reply, now)
        elif isinstance(purpose, _CancelCall):
            self._on_cancel(purpose, reply, now)

    def _on_markets(self, reply: ExchangeReply) -> None:
        if not isinstance(reply, ExchangeResult) or not isinstance(reply.value, FrozenMap):
            logger.warning("transactions: loading markets failed ({}); retrying",
                           type(reply).__name__)
            self.send_after(self._s.reconcile_retry, _LoadMarkets())
            return
        markets = {}
        for symbol, market in reply.value.items():
            try:
                markets[symbol] = core.MarketRules.from_ccxt(_thaw(market))
            except core.ProtocolError as error:
                logger.warning("transactions: market {} skipped: {}", symbol, error)
        self._markets = markets
        logger.info("transactions: {} markets loaded", len(markets))

    def _on_create(self, purpose: _CreateCall, reply: ExchangeReply, now: datetime) -> None:
        tx, attempt = purpose.transaction_id, purpose.attempt
        event: core.Event
        if isinstance(reply, ExchangeResult):
            try:
                event = core.SubmitAcked(attempt, core.VenueSnapshot.from_ccxt(
                    _thaw(reply.value), now))
            except core.ProtocolError as error:
                event = core.SubmitAmbiguous(attempt, f"unreadable answer: {error}")
        elif isinstance(reply, ExchangeRejected):
            text = f"{reply.error_class}: {reply.message}"
            duplicate = (reply.error_class == "DuplicateOrderId"
                         or "duplicate order sent" in reply.message.lower()
                         or "duplicateclientorderid" in reply.message.lower())
            event = core.SubmitRejected(attempt, text[:300], duplicate_client_order_id=duplicate)
        elif _not_sent(reply):
            # Nothing reached the venue: this attempt is still to be made. Send it again once
            # the breaker lets a call through (or after a short backoff), same client order id.
            delay = reply.next_probe_in if isinstance(reply, CircuitOpen) else \
                0.2 * 2 ** min(purpose.resends, 6)
            self.send_after(min(max(delay, 0.05), 30.0), _Resend(purpose))
            return
        else:
            event = core.SubmitAmbiguous(attempt, f"{type(reply).__name__}: "
                                                  f"{getattr(reply, 'reason', '') or reply}"[:300])
        self._event(tx, event, now)
        self._need_trades(tx)

    def _on_query(self, purpose: _QueryCall, reply: ExchangeReply, now: datetime) -> None:
        tx = purpose.transaction_id
        before = self._get(tx)
        if before is None:
            return
        if isinstance(reply, ExchangeResult):
            try:
                snapshot = core.VenueSnapshot.from_ccxt(_thaw(reply.value), now)
            except core.ProtocolError as error:
                self._anomaly(tx, error)
                return
            self._event(tx, core.OrderObserved(snapshot), now)
        elif isinstance(reply, ExchangeRejected) and reply.error_class == "OrderNotFound":
            searched = not self._s.protocol.lookup_sees_closed_orders
            self._event(tx, core.OrderAbsent(now, searched_history=searched), now)
        else:
            return  # no news: the schedule asks again after its backoff
        after = self._get(tx)
        if after is not None and after != before:
            self._schedule.reset(tx, now)
        self._need_trades(tx, purpose.query.with_trades)

    def _on_sweep(self, purpose: _SweepCall, reply: ExchangeReply, now: datetime) -> None:
        """Each swept order still plainly OPEN takes what a lookup of it would have brought:
        listed, its report (its backoff goes on, or starts over if it brought news); not
        listed, it has closed and the core asks for a lookup of its own (never assumed). A
        plain OPEN order listed but not swept (it opened after the listing was asked for) takes
        its report too. Listed orders the node does not follow are the reconciler's business."""
        if isinstance(reply, ExchangeRejected) and "without specifying a symbol" in reply.message:
            logger.warning("transactions: the client refuses an all-markets open-orders query; "
                           "open orders are looked up one by one")
            self._sweeps_refused = True
            return
        if not isinstance(reply, ExchangeResult) or not isinstance(reply.value, tuple):
            return  # no news: each order is due again after its backoff
        listed: dict[str, Any] = {}
        for raw in reply.value:
            coid, venue_id = raw.get("clientOrderId"), raw.get("id")
            tx = (self._by_coid.get(coid) if coid else None) or (
                self._by_venue_id.get(str(venue_id)) if venue_id is not None else None)
            if tx is not None and tx in self._schedule:
                listed[tx] = raw
        # Not swept and not listed proves nothing (the listing may predate the order).
        swept = frozenset(purpose.transaction_ids)
        extra = [tx for tx in listed if tx not in swept]
        for tx in (*purpose.transaction_ids, *extra):
            before = self._get(tx)
            if before is None or core.lookup_priority(before) != SWEEP_PRIORITY:
                continue  # moved on meanwhile: its own lookups follow it
            raw = listed.get(tx)
            if raw is None:
                self._event(tx, core.OrderAbsent(now), now)
                continue
            try:
                snapshot = core.VenueSnapshot.from_ccxt(_thaw(raw), now)
            except core.ProtocolError as error:
                self._anomaly(tx, error)
                continue
            self._event(tx, core.OrderObserved(snapshot), now)
            after = self._get(tx)
            if after is not None and after != before:
                self._schedule.reset(tx, now)
            elif tx not in swept:
                self._schedule.observed(tx, now)
            query = self._queries.get(tx)
            self._need_trades(tx, query.with_trades if query is not None
                              else not before.trades_complete)

    def _need_trades(self, tx: str, asked: bool = False) -> None:
        order = self._get(tx)
        if order is None or order.venue_order_id is None or tx in self._querying:
            return
        if not order.trades_complete or (asked and order.filled > 0 and not order.is_final):
            self._send_trades_query(order)

    def _on_trades(self, purpose: _TradesCall, reply: ExchangeReply, now: datetime) -> None:
        if not isinstance(reply, ExchangeResult) or not isinstance(reply.value, tuple):
            return
        tx = purpose.transaction_id
        for raw in reply.value:
            trade = _thaw(raw)
            if str(trade.get("order")) != purpose.venue_order_id:
                continue
            try:
                event = core.Fill(core.Trade.from_ccxt(trade))
            except core.ProtocolError as error:
                self._anomaly(tx, error)
                continue
            self._event(tx, event, now)

    def _on_cancel(self, purpose: _CancelCall, reply: ExchangeReply, now: datetime) -> None:
        tx = purpose.transaction_id
        event: core.Event
        if isinstance(reply, ExchangeResult):
            try:
                snapshot: core.VenueSnapshot | None = core.VenueSnapshot.from_ccxt(
                    _thaw(reply.value), now)
            except core.ProtocolError:
                snapshot = None
            event = core.CancelAcked(snapshot)
        elif isinstance(reply, ExchangeRejected) and reply.error_class == "OrderNotFound":
            event = core.CancelNotFound()
        else:
            delay = min(2.0 ** purpose.attempt, 30.0)
            logger.warning("transactions: cancel of {} failed ({}); retry in {}s", tx,
                           type(reply).__name__, delay)
            self.send_after(delay, _RetryCancel(tx))
            return
        self._event(tx, event, now)
        self._need_trades(tx)

    # ---------------------------------------------------------------- reconciliation

    def _on_startup_reconciled(self, message: StartupReconciled) -> None:
        if message.ok:
            if not self._reconciled:
                logger.info("transactions: start-up reconciliation done; accepting orders")
            self._reconciled = True
            self._reconcile_failure = None
        elif not self._reconciled:
            self._reconcile_failure = message.message
            logger.warning("transactions: start-up reconciliation failed ({}); new orders are "
                           "refused until it succeeds", message.message)

    def _fold(self, venue: FoldVenue) -> Folded:
        now = self._clock()
        if self._seed is None:
            self._seed_ledger(venue, now)
        differences: list[OrderDifference] = []
        open_ids: set[str] = set()
        for raw in venue.open_orders:
            order_data = _thaw(raw)
            venue_id = None if order_data.get("id") is None else str(order_data["id"])
            coid = order_data.get("clientOrderId")
            tx = (self._by_coid.get(coid) if coid else None) or (
                self._by_venue_id.get(venue_id) if venue_id else None)
            if tx is None:
                differences.append(self._adopt(order_data, venue.observed_at, now))
                continue
            open_ids.add(tx)
            before = self._get(tx)
            try:
                snapshot = core.VenueSnapshot.from_ccxt(order_data, venue.observed_at)
            except core.ProtocolError as error:
                self._anomaly(tx, error)
                continue
            self._event(tx, core.OrderObserved(snapshot), now)
            after = self._get(tx)
            if before is not None and after is not None and before.state is not after.state:
                differences.append(OrderDifference(
                    kind="resolved", order_id=tx, client_order_id=after.client_order_id,
                    detail=f"{before.state.value} -> {after.state.value} (open at the venue)"))
            self._need_trades(tx)
        differences += self._fold_trades(venue.trades, now)
        for order in list(self._orders.values()):  # not-final orders are always decoded
            tx = order.transaction_id
            if tx in open_ids or order.is_closed:
                continue
            if order.state in (core.OrderState.OPEN, core.OrderState.UNKNOWN) \
                    and order.updated_at <= venue.observed_at:
                self._schedule.track(tx, 0, now, immediately=True)
                differences.append(OrderDifference(
                    kind="in_flight", order_id=tx, client_order_id=order.client_order_id,
                    detail=f"{order.state.value} here, not open at the venue: looked up"))
        unresolved = sum(
            1 for order in self._orders.values()
            if not order.is_final and (
                order.state is not core.OrderState.OPEN or not order.trades_complete
                or order.transaction_id not in open_ids))
        return Folded(differences=tuple(differences), unresolved=unresolved)

    def _seed_ledger(self, venue: FoldVenue, now: datetime) -> None:
        made = self._ask_ledger(SeedOpening(venue.balances, venue.run_id))
        trade_ids = sorted({str(_thaw(t).get("id")) for t in venue.trades})
        self._seed = {"run_id": venue.run_id, "at": now.isoformat(), "entries": made,
                      "trade_ids": trade_ids}
        assert self._journal is not None
        self._journal.append(stream=_SEED_STREAM, kind="ledger.seeded",
                             cause="opening balances from the venue at first start",
                             data=self._seed, now=now)
        self._preseed_trades = frozenset(trade_ids)

    def _adopt(self, data: Mapping[str, Any], observed_at: datetime,
               now: datetime) -> OrderDifference:
        """Take a venue order this node did not place into the journal as external."""
        tx = new_transaction_id()
        venue_id = str(data.get("id"))
        coid = data.get("clientOrderId") or f"venue-{venue_id}"
        own = isinstance(coid, str) and is_own(coid, self._s.node_id)
        try:
            intent = core.OrderIntent(
                client_id=f"external:{venue_id}", symbol=str(data["symbol"]),
                side=core.Side(data["side"]), type=core.OrderType(data.get("type") or "limit"),
                amount=Decimal(repr(data["amount"])) if isinstance(data["amount"], float)
                else Decimal(str(data["amount"])),
                price=None if data.get("price") is None else Decimal(repr(data["price"]))
                if isinstance(data["price"], float) else Decimal(str(data["price"])),
                time_in_force=None)
            snapshot = core.VenueSnapshot.from_ccxt(data, observed_at)
        except (KeyError, ValueError, ArithmeticError, core.ProtocolError) as error:
            return OrderDifference(kind="unreadable", order_id="-", client_order_id=str(coid),
                                   detail=f"venue order {venue_id} could not be read: {error}")
        base, quote = intent.symbol.split("/") if "/" in intent.symbol else (intent.symbol, "")
        shell = core.Order(
            transaction_id=tx, venue=self._s.venue, client_order_id=str(coid), intent=intent,
            state=core.OrderState.SUBMITTING,
            reserve_currency=quote if intent.side is core.Side.BUY else base,
            reserve_amount=Decimal(0), created_at=now, updated_at=now, reserved=False,
            attempts=1, last_sent_at=now)
        self._external.add(tx)
        try:
            step = core.apply(shell, core.OrderObserved(snapshot), now, self._s.protocol)
        except core.ProtocolError as error:
            self._external.discard(tx)
            return OrderDifference(kind="unreadable", order_id="-", client_order_id=str(coid),
                                   detail=f"venue order {venue_id} refused: {error}")
        self._run(_recaused(step, f"adopted from the venue as external (venue order {venue_id})"),
                  external=True)
        detail = f"venue order {venue_id} ({intent.side.value} {intent.amount} {intent.symbol})"
        if own:
            detail += " carries this node's client id tag but no journaled transaction"
        self._need_trades(tx)
        return OrderDifference(kind="adopted", order_id=tx, client_order_id=str(coid),
                               detail=detail)

    def _fold_trades(self, trades: tuple[Any, ...], now: datetime) -> list[OrderDifference]:
        differences = []
        for raw in trades:
            data = _thaw(raw)
            venue_id = None if data.get("order") is None else str(data["order"])
            tx = self._by_venue_id.get(venue_id) if venue_id else None
            if tx is None:
                continue
            order = self._get(tx)
            if order is None or any(t.trade_id == str(data.get("id")) for t in order.fills):
                continue
            try:
                event = core.Fill(core.Trade.from_ccxt(data))
            except core.ProtocolError as error:
                self._anomaly(tx, error)
                continue
            self._event(tx, event, now)
            differences.append(OrderDifference(
                kind="missed_fill", order_id=tx, client_order_id=order.client_order_id,
                detail=f"trade {event.trade.trade_id}: {event.trade.amount} at "
                       f"{event.trade.price}"))
        return differences

    def _record_reconciliation(self, view: ReconciliationView) -> int:
        assert self._journal is not None
        record = self._journal.append(stream=f"reconcile:{view.run_id}", kind="reconcile.report",
                                      cause=f"reconciliation {view.run_id}",
                                      data=to_dict(view), now=view.finished_at)
        return record.seq

    def _active_symbols(self, since: datetime, open_at_venue: tuple[
            tuple[str | None, str | None, str, Decimal | None], ...] = ()) -> tuple[str, ...]:
        symbols = set()
        booked: set[str] = set()  # open at the venue, every execution it reports booked here
        for coid, venue_id, symbol, filled in open_at_venue:
            tx = (self._by_coid.get(coid) if coid else None) or (
                self._by_venue_id.get(venue_id) if venue_id else None)
            order = None if tx is None else self._get(tx)
            if order is None:
                if filled is None or filled > 0:
                    symbols.add(symbol)
            elif filled is not None and filled <= order.fills_total and order.trades_complete:
                booked.add(order.transaction_id)
        for order in self._orders.values():
            if order.transaction_id in booked:
                continue
            if not order.is_final or order.updated_at >= since:
                symbols.add(order.intent.symbol)
        for data in self._raw.values():
            raw = data["order"]
            if raw["settled_at"] is None or raw["updated_at"] >= since.isoformat():
                symbols.add(raw["intent"]["symbol"])
        for archived in self._archived.values():  # closed and settled
            if archived.updated_at >= since.isoformat():
                symbols.add(archived.symbol)
        return tuple(sorted(symbols))

    def _statistics(self) -> CoordinatorStatistics:
        by_state: dict[str, int] = {}
        open_count = 0
        for order in self._orders.values():
            by_state[order.state.value] = by_state.get(order.state.value, 0) + 1
            open_count += not order.is_final
        for data in self._raw.values():
            state = data["order"]["state"]
            by_state[state] = by_state.get(state, 0) + 1
        for archived in self._archived.values():
            by_state[archived.state] = by_state.get(archived.state, 0) + 1
        refusal = self._accepting()
        assert self._journal is not None
        return CoordinatorStatistics(
            orders=self._order_count(), open_transactions=open_count,
            by_state=by_state, accepting=refusal is None,
            not_accepting_reason=None if refusal is None else refusal.message,
            journal_records=len(self._journal),
            inflight=self._schedule.statistics(self._clock()),
            pending_calls=len(self._pending), recovery_seconds=self._recovery_seconds)

