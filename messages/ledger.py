"""The ledger conversation (ask ``trading/ledger``): balances, entries, freezes.

Answers are views of the shadow ledger: every amount is a Decimal derived from postings.
Errors are values (:class:`UnknownCurrency`, ``messages.orders.InvalidOrder`` for a bad
filter), never exceptions.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from messages import _checks as check
from messages.codec import register_tagged_union

__all__ = [
    "GetBalances",
    "ListLedgerEntries",
    "Unfreeze",
    "BalanceView",
    "Balances",
    "PostingView",
    "LedgerEntryView",
    "LedgerEntries",
    "Unfrozen",
    "NotFrozen",
    "ExportFormat",
    "ExportLedger",
    "LedgerExport",
    "LedgerReply",
    "BalanceDiscrepancy",
]


def _optional_str(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None:
        check.non_empty_str(_instance, attribute, value)


def _optional_aware(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None:
        check.aware_datetime(_instance, attribute, value)


def _limit(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise ValueError(f"{attribute.name}: expected an int in 1..100000, got {value!r}")


@attrs.frozen(kw_only=True)
class GetBalances:
    """The ledger's balance per currency of the venue (None: the node's venue)."""

    venue: str | None = attrs.field(default=None, validator=_optional_str)


@attrs.frozen(kw_only=True)
class ListLedgerEntries:
    """Entries filtered by order (directly or through its reservation), currency and
    ``since <= time < until``; oldest first, at most ``limit`` (the latest ones)."""

    order_id: str | None = attrs.field(default=None, validator=_optional_str)
    currency: str | None = attrs.field(default=None, validator=_optional_str)
    since: datetime | None = attrs.field(default=None, validator=_optional_aware)
    until: datetime | None = attrs.field(default=None, validator=_optional_aware)
    limit: int = attrs.field(default=1000, validator=_limit)


@attrs.frozen(kw_only=True)
class Unfreeze:
    """Operator command: lift the freeze of ``currency`` (on the node's venue if None)."""

    currency: str = attrs.field(validator=check.non_empty_str)
    reason: str = attrs.field(default="operator unfreeze", validator=check.non_empty_str)
    venue: str | None = attrs.field(default=None, validator=_optional_str)


@attrs.frozen(kw_only=True)
class BalanceView:
    """One currency: ``total == available + reserved``; ``frozen`` carries the reason."""

    venue: str
    currency: str
    total: Decimal
    available: Decimal
    reserved: Decimal
    frozen: str | None


@attrs.frozen(kw_only=True)
class Balances:
    """Answer to GetBalances, sorted by currency."""

    balances: tuple[BalanceView, ...]


@attrs.frozen(kw_only=True)
class PostingView:
    account: str
    currency: str
    amount: Decimal


@attrs.frozen(kw_only=True)
class LedgerEntryView:
    """One entry: ``kind`` (open, reserve, post, void, fill, adjust, freeze, unfreeze)."""

    id: str
    kind: str
    time: datetime
    cause: str
    order_id: str | None
    postings: tuple[PostingView, ...]


@attrs.frozen(kw_only=True)
class LedgerEntries:
    """Answer to ListLedgerEntries."""

    entries: tuple[LedgerEntryView, ...]


@attrs.frozen(kw_only=True)
class Unfrozen:
    """The freeze was lifted (journaled as an unfreeze entry)."""

    venue: str
    currency: str


@attrs.frozen(kw_only=True)
class NotFrozen:
    """Nothing to unfreeze: ``currency`` is not frozen on ``venue``."""

    venue: str
    currency: str


class ExportFormat(enum.Enum):
    """Text formats of the ledger export: CSV (one row per posting) or beancount (checkable
    with ``bean-check``, with balance assertions of the derived balances)."""

    CSV = "csv"
    BEANCOUNT = "beancount"


@attrs.frozen(kw_only=True)
class ExportLedger:
    """Ask: every ledger entry in ``format`` (the accountant's copy of the audit trail)."""

    format: ExportFormat = ExportFormat.CSV


@attrs.frozen(kw_only=True)
class LedgerExport:
    """Answer to ExportLedger."""

    format: ExportFormat
    text: str


#: Every answer of this conversation (tagged with ``_type`` in JSON).
LedgerReply = Balances | LedgerEntries | Unfrozen | NotFrozen | LedgerExport

register_tagged_union(LedgerReply)


@attrs.frozen(kw_only=True)
class BalanceDiscrepancy:
    """Event: the ledger and the venue disagree on ``currency`` beyond tolerance (published by
    the reconciler for the alert system; ``frozen``: new orders in it are refused)."""

    run_id: str
    venue: str
    currency: str
    ledger_total: Decimal
    venue_total: Decimal
    delta: Decimal
    frozen: bool
    at: datetime
