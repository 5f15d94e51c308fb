"""Trading state that must survive anything.

Offers the pure double-entry shadow ledger (:class:`Ledger`) and its account paths,
balance reconciliation against a venue, the durable hash-chained :class:`Journal`,
the journal-backed :class:`LedgerStore`, and the audit trail's queries and exports.
Errors are typed and raised before anything changes.

The order protocol lives in its own modules, imported by name so its event
vocabulary (``Fill``, ``Settled``...) never shadows the ledger's:
:mod:`trading.protocol` (the pure three-phase state machine),
:mod:`trading.client_ids` (per-venue client order ids) and
:mod:`trading.inflight` (the re-query schedule).
"""

from trading.accounts import AccountPath, parse_account
from trading.audit import (
    beancount_account,
    entries_to_beancount,
    entries_to_csv,
    journal_to_csv,
    query_entries,
    query_journal,
)
from trading.errors import (
    CurrencyFrozen,
    IdempotencyConflict,
    InsufficientAvailable,
    InvalidAccount,
    InvalidInput,
    JournalError,
    JournalIntegrityError,
    LedgerError,
    Overfill,
    ReservationClosed,
    UnbalancedEntry,
    UnknownReservation,
)
from trading.journal import Journal, JournalHead, JournalRecord
from trading.ledger import Balance, Entry, EntryKind, Fill, Ledger, Posting, Reservation
from trading.reconcile import (
    CurrencyReconciliation,
    ExchangeBalance,
    Outcome,
    ReconciliationPolicy,
    ReconciliationReport,
    Tolerance,
    apply_reconciliation,
    reconcile,
)
from trading.store import LedgerStore

__all__ = [
    "AccountPath",
    "Balance",
    "CurrencyFrozen",
    "CurrencyReconciliation",
    "Entry",
    "EntryKind",
    "ExchangeBalance",
    "Fill",
    "IdempotencyConflict",
    "InsufficientAvailable",
    "InvalidAccount",
    "InvalidInput",
    "Journal",
    "JournalError",
    "JournalHead",
    "JournalIntegrityError",
    "JournalRecord",
    "Ledger",
    "LedgerError",
    "LedgerStore",
    "Outcome",
    "Overfill",
    "Posting",
    "ReconciliationPolicy",
    "ReconciliationReport",
    "Reservation",
    "ReservationClosed",
    "Tolerance",
    "UnbalancedEntry",
    "UnknownReservation",
    "apply_reconciliation",
    "beancount_account",
    "entries_to_beancount",
    "entries_to_csv",
    "journal_to_csv",
    "parse_account",
    "query_entries",
    "query_journal",
    "reconcile",
]
