"""The ledger made durable: every entry goes through its own hash-chained journal.

Decision: the ledger keeps its own journal directory (``<data-dir>/ledger``, DESIGN.md
section 8) rather than sharing the transaction journal, so each store has one writer
and the ledger can be rebuilt, verified and exported on its own. An entry is appended
(durably, synchronous=FULL) *before* it is applied in memory; a store failure raises
and leaves the in-memory ledger unchanged. On open, the journal is verified and every
entry is re-validated and re-applied in order, so the rebuilt balances obey the same
invariants as live ones.

Crash between the transaction journal and the ledger: the coordinator journals its
intent (with the transfer, post and trade ids it will use) before calling the ledger,
and on restart re-issues the ledger operations implied by each non-terminal
transaction. Every ledger operation is idempotent by id, ignoring time and memo:

- crash before the ledger append: the re-issued operation is applied once;
- crash after it: the entry is rebuilt from the ledger journal, and the re-issued
  operation returns that entry without posting again.
"""

from __future__ import annotations

from pathlib import Path

from trading.errors import JournalIntegrityError, LedgerError
from trading.journal import Journal, JournalHead, JournalRecord
from trading.ledger import Entry, Ledger

__all__ = ["LedgerStore"]

_KIND_PREFIX = "ledger."


class LedgerStore:
    """A :class:`Ledger` whose every accepted entry is durable before it takes effect."""

    def __init__(self, journal: Journal, ledger: Ledger) -> None:
        """Use :meth:`open`; this pairs an open journal with the ledger rebuilt from it."""
        self._journal = journal
        self._ledger = ledger

    @classmethod
    def open(cls, directory: str | Path, *, anchor: JournalHead | None = None) -> LedgerStore:
        """Open or create the store in ``directory``, verify it and rebuild the ledger.

        Raises JournalIntegrityError if the journal fails verification or holds an
        entry the ledger refuses on replay (naming that record's seq).
        """
        ledger = Ledger()

        def restore(record: JournalRecord) -> None:
            if not record.kind.startswith(_KIND_PREFIX):
                return
            try:
                ledger.restore(Entry.from_json(record.data))
            except (LedgerError, KeyError, ValueError, TypeError) as exc:
                raise JournalIntegrityError(
                    record.seq, f"ledger entry refused on replay: {exc}"
                ) from None

        journal = Journal.open(directory, anchor=anchor, visit=restore)
        store = cls(journal, ledger)
        ledger.set_recorder(store._append)
        return store

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def journal(self) -> Journal:
        return self._journal

    def close(self) -> None:
        self._journal.close()

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
