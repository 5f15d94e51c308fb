"""The ledger actor (``trading/ledger``): the one owner of the durable shadow ledger.

It owns a :class:`~trading.store.LedgerStore` under ``<data_dir>/ledger``: every entry is
durable (its own hash-chained journal, synchronous FULL) before it takes effect, and every
operation is idempotent by its id, so the coordinator may re-issue any of them after a crash.
A journal that fails verification stops the actor at start with :class:`LedgerCorrupted`
(the node must not trade on bad books).

Answers the public ledger conversation (``messages.ledger``) and the trading actors'
internal commands below; refusals are values (``InsufficientFunds``, ``TradingFrozen``,
:class:`LedgerRefused`), never exceptions.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
from loguru import logger

from actors.alert_manager import publish_alert_event
from actors.trading import TradingSettings
from messages.alerts import JournalIntegrityFailed
from messages.base import utc_now
from messages.ledger import (
    Balances,
    BalanceView,
    ExportFormat,
    ExportLedger,
    GetBalances,
    LedgerEntries,
    LedgerEntryView,
    LedgerExport,
    ListLedgerEntries,
    NotFrozen,
    PostingView,
    Unfreeze,
    Unfrozen,
)
from messages.orders import InsufficientFunds, TradingFrozen
from supervisors import SupervisedActor, UnrecoverableError
from trading import audit
from trading.errors import (
    CurrencyFrozen,
    InsufficientAvailable,
    JournalIntegrityError,
    LedgerError,
)
from trading.ledger import Entry, EntryKind, Fill
from trading.reconcile import (
    ExchangeBalance,
    Outcome,
    ReconciliationReport,
    apply_reconciliation,
    reconcile,
)
from trading.store import LedgerStore

__all__ = [
    "BookFill",
    "GetAccountBalances",
    "LedgerActor",
    "LedgerCorrupted",
    "LedgerRefused",
    "OpenReservations",
    "ReconcileBalances",
    "Release",
    "Reserve",
    "SeedOpening",
    "sums_by_currency",
]


#: Entries between periodic snapshots, at least (and at least a quarter of the journal; one is
#: also written at every clean stop): a start after a crash re-validates only those since.
SNAPSHOT_EVERY = 5_000


class LedgerCorrupted(UnrecoverableError):
    """Raised at start when the ledger's journal fails its integrity check: the node stops at
    once (no restart can mend it) and the journal-integrity alert is raised."""

    def __init__(self, directory: str, error: JournalIntegrityError) -> None:
        super().__init__(f"journal integrity check failed: ledger journal in {directory}, "
                         f"refusing to trade on it: {error}")
        self.directory = directory
        self.error = error


@attrs.frozen(slots=True)
class LedgerRefused:
    """The ledger refused an internal command (overfill, closed reservation...); unchanged."""

    reason: str


@attrs.frozen(slots=True)
class Reserve:
    """Hold ``amount`` of ``currency`` for order ``transfer_id`` (idempotent by that id)."""

    transfer_id: str
    currency: str
    amount: Decimal


@attrs.frozen(slots=True)
class BookFill:
    """Book one trade (idempotent by trade id); ``fill.transfer_id`` names the reservation.

    If the trade spends more than the reservation has left (a market buy that walked the book
    past its price), it is booked from available instead and the reservation is left whole
    for the settlement to void."""

    fill: Fill


@attrs.frozen(slots=True)
class Release:
    """Settle a reservation: void what is left of it (idempotent)."""

    transfer_id: str


@attrs.frozen(slots=True)
class OpenReservations:
    """Ask: the transfer ids of reservations not yet voided."""


@attrs.frozen(slots=True)
class SeedOpening:
    """Seed opening balances (``equity:opening``) from the venue's totals, only if the ledger
    has no entry for the venue yet. Answers the number of entries made (0: already seeded)."""

    totals: Mapping[str, Decimal]
    run_id: str


@attrs.frozen(slots=True)
class ReconcileBalances:
    """Compare with the venue's balances; if ``apply``, post adjustments and freezes.

    With ``confirm`` (each currency's delta seen by an earlier look), only differences equal
    to the earlier ones are acted on; the others are still moving (orders executing) and are
    answered as unconfirmed. Answers ``(ReconciliationReport, unconfirmed currencies)``."""

    exchange: Mapping[str, ExchangeBalance]
    run_id: str
    apply: bool
    confirm: Mapping[str, Decimal] | None = None


@attrs.frozen(slots=True)
class GetAccountBalances:
    """Ask: every account's balance ``{(account, currency): amount}`` (audits and tests)."""


class LedgerActor(SupervisedActor):
    """Owns the LedgerStore; see the module docstring."""

    def __init__(self, settings: TradingSettings, clock: Callable[[], datetime] = utc_now
                 ) -> None:
        super().__init__()
        self._settings = settings
        self._venue = settings.ledger_venue
        self._clock = clock
        self._store: LedgerStore | None = None

    def on_start(self) -> None:
        directory = self._settings.ledger_dir
        directory.mkdir(parents=True, exist_ok=True)
        try:
            self._store = LedgerStore.open(directory)
        except JournalIntegrityError as error:
            publish_alert_event(JournalIntegrityFailed(journal=str(directory), reason=str(error),
                                                       at=time.time()))
            raise LedgerCorrupted(str(directory), error) from None
        logger.info("ledger: {} entries restored from {} (snapshot at {}, the rest replayed)",
                    self._store.ledger.entry_count(), directory, self._store.restored_from)

    def on_stop(self) -> None:
        if self._store is not None:
            self._store.close()

    @property
    def _ledger(self) -> Any:
        assert self._store is not None
        return self._store.ledger

    def on_receive(self, message: Any) -> Any:
        answer = self._handle(message)  # a handler that raised crashes the actor: no snapshot
        if self._store is not None and self._store.snapshot_due(SNAPSHOT_EVERY):
            self._snapshot()
        return answer

    def _snapshot(self) -> None:
        assert self._store is not None
        try:
            self._store.snapshot()
        except OSError as error:  # the journal has everything: only the next start is slower
            logger.warning("ledger: snapshot not written ({})", error)

    def _handle(self, message: Any) -> Any:
        now = self._clock()
        if isinstance(message, Reserve):
            return self._reserve(message, now)
        if isinstance(message, BookFill):
            return self._book_fill(message.fill, now)
        if isinstance(message, Release):
            try:
                return self._ledger.void(message.transfer_id, now, cause="settle: void the rest")
            except LedgerError as error:
                return LedgerRefused(str(error))
        if isinstance(message, OpenReservations):
            return tuple(r.transfer_id for r in self._ledger.reservations(open_only=True))
        if isinstance(message, SeedOpening):
            return self._seed(message, now)
        if isinstance(message, ReconcileBalances):
            return self._reconcile(message, now)
        if isinstance(message, GetAccountBalances):
            return self._ledger.account_balances()
        if isinstance(message, GetBalances):
            return self._balances(message.venue or self._venue)
        if isinstance(message, ListLedgerEntries):
            return self._entries(message)
        if isinstance(message, Unfreeze):
            return self._unfreeze(message, now)
        if isinstance(message, ExportLedger):
            return self._export(message.format)
        raise TypeError(f"LedgerActor: unexpected message {type(message).__name__}")

    # ---------------------------------------------------------------- commands

    def _reserve(self, message: Reserve, now: datetime) -> Any:
        try:
            return self._ledger.reserve(message.transfer_id, self._venue, message.currency,
                                        message.amount, now, order_id=message.transfer_id,
                                        cause="prepare: reserve funds")
        except InsufficientAvailable as error:
            return InsufficientFunds(currency=message.currency, needed=error.needed,
                                     available=error.available)
        except CurrencyFrozen as error:
            return TradingFrozen(currency=message.currency, reason=error.reason)
        except LedgerError as error:
            return LedgerRefused(str(error))

    def _book_fill(self, fill: Fill, now: datetime) -> Entry | LedgerRefused:
        try:
            return self._ledger.fill(fill, now, cause=f"trade {fill.trade_id}")
        except LedgerError as error:
            if fill.transfer_id is None:
                return LedgerRefused(str(error))
            first = error
        logger.warning("ledger: trade {} does not fit its reservation ({}); booked from available",
                       fill.trade_id, first)
        try:
            return self._ledger.fill(attrs.evolve(fill, transfer_id=None), now,
                                     cause=f"trade {fill.trade_id} (beyond its reservation)")
        except LedgerError as error:
            return LedgerRefused(str(error))

    def _seed(self, message: SeedOpening, now: datetime) -> int:
        if any(venue == self._venue for venue, _ in self._ledger.balances()):
            return 0
        made = 0
        for currency, total in sorted(message.totals.items()):
            if total > 0:
                self._ledger.deposit(f"{message.run_id}:{self._venue}:{currency}", self._venue,
                                     currency, total, now,
                                     cause="opening balance from the venue at first start")
                made += 1
        logger.info("ledger: seeded {} opening balances from the venue", made)
        return made

    def _reconcile(self, message: ReconcileBalances, now: datetime
                   ) -> tuple[ReconciliationReport, frozenset[str]]:
        report = reconcile(self._ledger, self._venue, message.exchange,
                           self._settings.reconcile_policy, now, run_id=message.run_id)
        unconfirmed: frozenset[str] = frozenset()
        if message.confirm is not None:
            unconfirmed = frozenset(
                r.currency for r in report.results
                if r.outcome is not Outcome.MATCH and message.confirm.get(r.currency) != r.delta)
        if message.apply:
            acted = attrs.evolve(report, results=tuple(
                r for r in report.results if r.currency not in unconfirmed))
            apply_reconciliation(self._ledger, acted, now)
        return report, unconfirmed

    def _unfreeze(self, message: Unfreeze, now: datetime) -> Unfrozen | NotFrozen:
        venue = message.venue or self._venue
        if not self._ledger.is_frozen(venue, message.currency):
            return NotFrozen(venue=venue, currency=message.currency)
        self._ledger.unfreeze(f"{now.isoformat()}:{venue}:{message.currency}", venue,
                              message.currency, now, reason=message.reason)
        logger.warning("ledger: {} on {} unfrozen by operator: {}", message.currency, venue,
                       message.reason)
        return Unfrozen(venue=venue, currency=message.currency)

    # ------------------------------------------------------------------- reads

    def _balances(self, venue: str) -> Balances:
        frozen = self._ledger.frozen()
        views = [
            BalanceView(venue=v, currency=c, total=b.total, available=b.available,
                        reserved=b.reserved, frozen=frozen.get((v, c)))
            for (v, c), b in self._ledger.balances(venue).items()
        ]
        known = {(v.venue, v.currency) for v in views}
        views += [BalanceView(venue=v, currency=c, total=Decimal(0), available=Decimal(0),
                              reserved=Decimal(0), frozen=reason)
                  for (v, c), reason in frozen.items() if v == venue and (v, c) not in known]
        return Balances(balances=tuple(sorted(views, key=lambda b: b.currency)))

    def _export(self, format: ExportFormat) -> LedgerExport:
        entries = self._ledger.entries
        if format is ExportFormat.CSV:
            return LedgerExport(format=format, text=audit.entries_to_csv(entries))
        return LedgerExport(format=format, text=audit.entries_to_beancount(
            entries, balances=self._ledger.account_balances()))

    def _entries(self, message: ListLedgerEntries) -> LedgerEntries:
        entries = self._ledger.entries
        transfers: dict[str, str] = {}
        for entry in entries:
            if entry.kind is EntryKind.RESERVE:
                tid, oid = entry.tag("transfer_id"), entry.tag("order_id")
                if tid is not None and oid is not None:
                    transfers[tid] = oid
        chosen = audit.query_entries(entries, order_id=message.order_id,
                                     currency=message.currency, since=message.since,
                                     until=message.until)[-message.limit:]
        views = []
        for entry in chosen:
            order_id = entry.tag("order_id")
            if order_id is None and (tid := entry.tag("transfer_id")) is not None:
                order_id = transfers.get(tid)
            views.append(LedgerEntryView(
                id=entry.id, kind=entry.kind.value, time=entry.time, cause=entry.cause,
                order_id=order_id,
                postings=tuple(PostingView(account=p.account, currency=p.currency,
                                           amount=p.amount) for p in entry.postings)))
        return LedgerEntries(entries=tuple(views))


def sums_by_currency(balances: Mapping[tuple[str, str], Decimal]) -> dict[str, Decimal]:
    """Per-currency sum over every account: zero for books that balance (double entry)."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for (_, currency), amount in balances.items():
        sums[currency] += amount
    return dict(sums)
