"""Typed errors of the ledger and the journal.

Every error is raised *before* any state changes: a caller that catches one may
assume the ledger or journal is exactly as it was before the call.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = [
    "CurrencyFrozen",
    "IdempotencyConflict",
    "InsufficientAvailable",
    "InvalidAccount",
    "InvalidInput",
        "JournalError",
    "JournalIntegrityError",
    "LedgerError",
    "Overfill",
    "ReservationClosed",
    "UnbalancedEntry",
    "UnknownReservation",
]


class LedgerError(Exception):
    """Raised when the ledger refuses an operation; the ledger is unchanged."""


class InvalidAccount(LedgerError):
    """Raised when an account path is malformed or does not fit the posting's currency."""

    def __init__(self, account: str, reason: str) -> None:
        super().__init__(f"invalid account {account!r}: {reason}")
        self.account = account
        self.reason = reason


class InvalidInput(LedgerError):
    """Raised when a field is malformed: a non-Decimal or wrongly signed amount, naive time, ..."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"invalid {field} {value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class UnbalancedEntry(LedgerError):
    """Raised when an entry's postings do not sum to zero in every currency."""

    def __init__(self, entry_id: str, residuals: dict[str, Decimal]) -> None:
        shown = ", ".join(f"{cur} {amt}" for cur, amt in sorted(residuals.items()))
        super().__init__(f"entry {entry_id!r} does not balance: residual {shown}")
        self.entry_id = entry_id
        self.residuals = residuals


class InsufficientAvailable(LedgerError):
    """Raised when an operation would take an available balance below zero."""

    def __init__(self, venue: str, currency: str, needed: Decimal, available: Decimal) -> None:
        super().__init__(
            f"insufficient available {currency} on {venue}: needed {needed}, available {available}"
        )
        self.venue = venue
        self.currency = currency
        self.needed = needed
        self.available = available


class IdempotencyConflict(LedgerError):
    """Raised when an id is reused for an operation with different content."""

    def __init__(self, op_id: str, existing: str, attempted: str) -> None:
        super().__init__(
            f"id {op_id!r} already used with different content: "
            f"existing {existing}, attempted {attempted}"
        )
        self.op_id = op_id
        self.existing = existing
        self.attempted = attempted


class UnknownReservation(LedgerError):
    """Raised when a post, void or fill names a transfer id that was never reserved."""

    def __init__(self, transfer_id: str) -> None:
        super().__init__(f"no reservation with transfer id {transfer_id!r}")
        self.transfer_id = transfer_id


class ReservationClosed(LedgerError):
    """Raised when a post or fill targets a reservation that was already voided."""

    def __init__(self, transfer_id: str) -> None:
        super().__init__(f"reservation {transfer_id!r} is closed (voided); nothing can be posted")
        self.transfer_id = transfer_id


class Overfill(LedgerError):
    """Raised when a post or fill would consume more than a reservation has left."""

    def __init__(self, transfer_id: str, requested: Decimal, remaining: Decimal) -> None:
        super().__init__(
            f"overfill of reservation {transfer_id!r}: requested {requested}, remaining {remaining}"
        )
        self.transfer_id = transfer_id
        self.requested = requested
        self.remaining = remaining


class CurrencyFrozen(LedgerError):
    """Raised when a new reservation is asked in a currency frozen after a discrepancy."""

    def __init__(self, venue: str, currency: str, reason: str) -> None:
        super().__init__(f"{currency} on {venue} is frozen ({reason}); releases only")
        self.venue = venue
        self.currency = currency
        self.reason = reason


class JournalError(Exception):
    """Raised when a journal append is refused (bad record content); nothing was written."""


class JournalIntegrityError(JournalError):
    """Raised when the stored journal fails verification: the node must not trade on it."""

    def __init__(self, seq: int | None, problem: str) -> None:
        where = f"at seq {seq}" if seq is not None else "in journal"
        super().__init__(f"journal integrity check failed {where}: {problem}")
        self.seq = seq
        self.problem = problem
