"""The ledger made durable: every entry goes through its own hash-chained journal.

Decision: the ledger keeps its own journal directory (``<data-dir>/ledger``, DESIGN.md
section 8) rather than sharing the transaction journal, so each store has one writer
and the ledger can be rebuilt, verified and exported on its own. An entry is appended
(durably, synchronous=FULL) *before* it is applied in memory; a store failure raises
and leaves the in-memory ledger unchanged. On open, the journal is verified and every
entry is re-validated and re-applied in order, so the rebuilt balances obey the same
invariants as live ones.

Snapshot: at a clean close (and every ``snapshot_every`` entries, when the owner asks) the
derived state is written as a snapshot bound to the journal's head (``trading.snapshot``).
An open that finds one the journal holds starts from it: the whole chain is still verified,
only the entries after it are re-validated and applied, and the entries before it are read
from the journal when asked for (exports, queries, an idempotent re-issue of an old id). A
snapshot that is torn, edited, inconsistent or not held by the journal is ignored (a full
replay, logged).

Crash between the transaction journal and the ledger: the coordinator journals its
intent (with the transfer, post and trade ids it will use) before calling the ledger,
and on restart re-issues the ledger operations implied by each non-terminal
transaction. Every ledger operation is idempotent by id, ignoring time and memo:

- crash before the ledger append: the re-issued operation is applied once;
- crash after it: the entry is rebuilt from the ledger journal, and the re-issued
  operation returns that entry without posting again.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from loguru import logger

from trading.errors import JournalIntegrityError, LedgerError
from trading.journal import Journal, JournalHead, JournalRecord
from trading.ledger import Archive, Entry, Ledger
from trading.snapshot import Snapshot, SnapshotError, read_snapshot, write_snapshot

__all__ = ["LedgerStore"]

_KIND_PREFIX = "ledger."
_SNAPSHOT_KIND = "ledger"


class LedgerStore:
    """A :class:`Ledger` whose every accepted entry is durable before it takes effect."""

    def __init__(self, journal: Journal, ledger: Ledger, *, restored_from: int = 0) -> None:
        """Use :meth:`open`; this pairs an open journal with the ledger rebuilt from it."""
        self._journal = journal
        self._ledger = ledger
        self._snapshot_seq = restored_from
        #: The journal seq of the snapshot the open started from (0: a full replay).
        self.restored_from = restored_from

    @classmethod
    def open(cls, directory: str | Path, *, anchor: JournalHead | None = None) -> LedgerStore:
        """Open or create the store in ``directory``, verify it and rebuild the ledger.

        Raises JournalIntegrityError if the journal fails verification or holds an
        entry the ledger refuses on replay (naming that record's seq).
        """
        journal_ref: list[Journal] = []
        snapshot = _usable_snapshot(directory)
        ledger = Ledger()
        checkpoint: JournalHead | None = None
        if snapshot is not None:
            try:
                ledger = Ledger.from_checkpoint(
                    snapshot.state, _archive(journal_ref, snapshot.state["entries"]))
                checkpoint = snapshot.head
            except (ValueError, KeyError, TypeError, ArithmeticError, LedgerError) as error:
                logger.warning("ledger: snapshot in {} ignored ({}); full replay", directory,
                               error)

        def refused(reason: str) -> None:
            nonlocal ledger, checkpoint
            logger.warning("ledger: snapshot in {} ignored ({}); full replay", directory, reason)
            ledger, checkpoint = Ledger(), None

        def restore(record: JournalRecord) -> None:
            if not record.kind.startswith(_KIND_PREFIX):
                return
            try:
                ledger.restore(Entry.from_json(record.data))
            except (LedgerError, KeyError, ValueError, TypeError) as exc:
                raise JournalIntegrityError(
                    record.seq, f"ledger entry refused on replay: {exc}"
                ) from None

        journal = Journal.open(directory, anchor=anchor, visit=restore, checkpoint=checkpoint,
                               on_checkpoint_refused=refused)
        journal_ref.append(journal)
        store = cls(journal, ledger, restored_from=0 if checkpoint is None else checkpoint.seq)
        ledger.set_recorder(store._append)
        return store

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def journal(self) -> Journal:
        return self._journal

    def close(self) -> None:
        """Snapshot the ledger (a clean stop: the next open starts from it) and close."""
        try:
            self.snapshot()
        except OSError as error:  # the journal has everything; the next open replays it
            logger.warning("ledger: snapshot not written ({})", error)
        self._journal.close()

    def snapshot(self) -> bool:
        """Write a snapshot at the journal's head if entries were added since the last one;
        True if written. Refused (False, logged) if the ledger does not hold exactly the
        journal's entries (state and journal would disagree)."""
        head = self._journal.head
        if head.seq == self._snapshot_seq:
            return False
        if self._ledger.entry_count() != head.seq:
            logger.error("ledger: {} entries in memory, {} in the journal: no snapshot",
                         self._ledger.entry_count(), head.seq)
            return False
        write_snapshot(self._journal.directory,
                       Snapshot(_SNAPSHOT_KIND, head, self._ledger.checkpoint_state()))
        self._snapshot_seq = head.seq
        return True

    def snapshot_due(self, every: int) -> bool:
        """Whether ``every`` entries or more, and a quarter of the journal or more, were added
        since the last snapshot (a snapshot names every entry: writing one costs in
        proportion to the journal, so they grow apart as it grows)."""
        added = self._journal.head.seq - self._snapshot_seq
        return added >= every and added >= self._journal.head.seq // 4

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _append(self, entry: Entry) -> None:
        self._journal.append(
            stream=entry.tag("transfer_id") or entry.id,
            kind=f"{_KIND_PREFIX}{entry.kind.value}",
            cause=entry.cause,
            data=entry.to_json(),
            now=entry.time,
        )


def _usable_snapshot(directory: str | Path) -> Snapshot | None:
    try:
        snapshot = read_snapshot(directory, _SNAPSHOT_KIND)
    except SnapshotError as error:
        logger.warning("ledger: {}; full replay", error)
        return None
    if snapshot is None:
        return None
    entries = snapshot.state.get("entries") if isinstance(snapshot.state, dict) else None
    if not isinstance(entries, list) or len(entries) != snapshot.head.seq:
        logger.warning("ledger: snapshot in {} does not name one entry per journal record; "
                       "full replay", directory)
        return None
    return snapshot


def _archive(journal_ref: list[Journal], ids: list[str]) -> Archive:
    """The entries before a snapshot, read from the journal (record ``i + 1`` is entry ``i``:
    the ledger's journal holds nothing else)."""

    def read_one(position: int) -> Entry:
        record = journal_ref[0].read(position + 1)
        entry = Entry.from_json(record.data)
        if entry.id != ids[position]:
            raise JournalIntegrityError(record.seq, f"holds entry {entry.id}, the snapshot "
                                                    f"names {ids[position]}")
        return entry

    def read_all() -> list[Entry]:
        return [Entry.from_json(record.data)
                for record in islice(journal_ref[0].replay(), len(ids))]

    return Archive(ids=tuple(ids), read_one=read_one, read_all=read_all)
