"""The audit trail: query ledger entries and journal records, export CSV and beancount.

Exports are plain text built from the stored entries, so an accountant's tools can
re-check that every transaction balances per currency and that the balances the
node reports follow from its postings (the beancount export can carry ``balance``
assertions for exactly that).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from trading import accounts
from trading.journal import JournalRecord, canonical_json
from trading.ledger import Entry, EntryKind

__all__ = [
    "beancount_account",
    "beancount_currency",
    "entries_to_beancount",
    "entries_to_csv",
    "journal_to_csv",
    "query_entries",
    "query_journal",
]

ENTRY_CSV_COLUMNS = ("entry_id", "time", "kind", "cause", "order_id", "transfer_id",
                     "account", "currency", "amount")
JOURNAL_CSV_COLUMNS = ("seq", "time", "stream", "kind", "cause", "data", "prev_hash", "hash")

_ROOTS = {"assets": "Assets", "expenses": "Expenses", "equity": "Equity",
          "trading": "Equity:Trading"}
_BEAN_CURRENCY = re.compile(r"^[A-Z]([A-Z0-9'._-]{0,22}[A-Z0-9])?$")


def _in_window(time: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or time >= since) and (until is None or time < until)


def _order_of_transfers(entries: Iterable[Entry]) -> dict[str, str]:
    return {
        tid: oid for e in entries
        if e.kind is EntryKind.RESERVE
        and (tid := e.tag("transfer_id")) is not None and (oid := e.tag("order_id")) is not None
    }


def _order_id(entry: Entry, transfers: Mapping[str, str]) -> str | None:
    direct = entry.tag("order_id")
    if direct is not None:
        return direct
    transfer_id = entry.tag("transfer_id")
    return transfers.get(transfer_id) if transfer_id is not None else None


def query_entries(
    entries: Iterable[Entry],
    *,
    order_id: str | None = None,
    currency: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Entry]:
    """Entries of an order (directly or through its reservation), touching a currency,
    with ``since <= time < until``; every filter left as None matches all."""
    entries = list(entries)
    transfers = _order_of_transfers(entries)
    return [
        e for e in entries
        if (order_id is None or _order_id(e, transfers) == order_id)
        and (currency is None or e.tag("currency") == currency
             or any(p.currency == currency for p in e.postings))
        and _in_window(e.time, since, until)
    ]


def query_journal(
    records: Iterable[JournalRecord],
    *,
    stream: str | None = None,
    order_id: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[JournalRecord]:
    """Journal records by stream, by order id (the stream, an ``order_id`` in the data or
    its tags, or a ledger record of that order's reservation), by kind and by
    ``since <= time < until``."""
    records = list(records)
    transfers: dict[str, str] = {}
    for r in records:
        tags = r.data.get("tags")
        if isinstance(tags, dict) and "transfer_id" in tags and "order_id" in tags:
            transfers[str(tags["transfer_id"])] = str(tags["order_id"])

    def mentions_order(r: JournalRecord) -> bool:
        tags = r.data.get("tags")
        tags = tags if isinstance(tags, dict) else {}
        return (r.stream == order_id or r.data.get("order_id") == order_id
                or tags.get("order_id") == order_id
                or transfers.get(str(tags.get("transfer_id"))) == order_id)

    return [
        r for r in records
        if (stream is None or r.stream == stream)
        and (order_id is None or mentions_order(r))
        and (kind is None or r.kind == kind)
        and _in_window(r.time, since, until)
    ]


def entries_to_csv(entries: Iterable[Entry]) -> str:
    """One row per posting (an entry without postings gets one row with no account)."""
    entries = list(entries)
    transfers = _order_of_transfers(entries)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ENTRY_CSV_COLUMNS)
    for e in entries:
        head = [e.id, e.time.isoformat(), e.kind.value, e.cause,
                _order_id(e, transfers) or "", e.tag("transfer_id") or ""]
        for p in e.postings or (None,):
            writer.writerow(head + ([p.account, p.currency, str(p.amount)] if p else ["", "", ""]))
    return out.getvalue()


def journal_to_csv(records: Iterable[JournalRecord]) -> str:
    """One row per record, data as canonical JSON, hashes included for re-verification."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(JOURNAL_CSV_COLUMNS)
    for r in records:
        writer.writerow([r.seq, r.time.isoformat(), r.stream, r.kind, r.cause,
                         canonical_json(r.data), r.prev_hash, r.hash])
    return out.getvalue()


def beancount_currency(currency: str) -> str:
    """A beancount commodity for ``currency``: unchanged when legal, else ``X``-prefixed
    with illegal characters dropped (``1INCH`` -> ``X1INCH``)."""
    if _BEAN_CURRENCY.match(currency):
        return currency
    cleaned = re.sub(r"[^A-Z0-9'._-]", "", currency.upper())
    cleaned = re.sub(r"[^A-Z0-9]+$", "", cleaned)[:22]
    return f"X{cleaned}"


def _component(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9-]", "-", text)
    return text[:1].upper() + text[1:]


def beancount_account(path: str) -> str:
    """Our account path as a beancount account: capitalised components under a legal root
    (``trading:`` conversion accounts go under ``Equity:Trading``)."""
    parsed = accounts.parse_account(path)
    root, *rest = path.split(":")
    if parsed.kind in ("available", "reserved", "fees", "adjustments", "opening"):
        rest = [beancount_currency(c) if c == parsed.currencies[0] else c for c in rest]
    else:
        rest = [rest[0], "-".join(beancount_currency(c) for c in parsed.currencies)]
    return ":".join([_ROOTS[root], *(_component(c) for c in rest)])


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def entries_to_beancount(
    entries: Iterable[Entry],
    *,
    balances: Mapping[tuple[str, str], Decimal] | None = None,
    title: str = "Ironclad shadow ledger",
) -> str:
    """Beancount text: ``open`` directives, one transaction per entry (ids, kind, time and
    order as metadata) and, if ``balances`` (per account and currency) are given,
    ``balance`` assertions dated the day after the last entry."""
    entries = sorted(entries, key=lambda e: e.time)
    transfers = _order_of_transfers(entries)
    opened: dict[str, datetime] = {}
    for e in entries:
        for p in e.postings:
            opened.setdefault(p.account, e.time)
    if balances and not entries:
        raise ValueError("balance assertions need at least one entry to date them")
    for account, _currency in balances or {}:
        opened.setdefault(account, entries[0].time)
    lines = [f"option \"title\" {_quote(title)}", ""]
    for account, time in sorted(opened.items(), key=lambda kv: (kv[1].date(), kv[0])):
        lines.append(f"{time.date().isoformat()} open {beancount_account(account)}")
    lines.append("")
    for e in entries:
        lines.append(f"{e.time.date().isoformat()} * {_quote(e.cause)}")
        meta = {"entry-id": e.id, "kind": e.kind.value, "time": e.time.isoformat(),
                "order-id": _order_id(e, transfers), "transfer-id": e.tag("transfer_id")}
        lines.extend(f"  {k}: {_quote(v)}" for k, v in meta.items() if v is not None)
        for p in e.postings:
            lines.append(
                f"  {beancount_account(p.account)}  {p.amount} {beancount_currency(p.currency)}"
            )
        lines.append("")
    if balances:
        last = entries[-1].time
        day = (last.date() + timedelta(days=1)).isoformat()
        for (account, currency), amount in sorted(balances.items()):
            lines.append(f"{day} balance {beancount_account(account)}  "
                         f"{amount} {beancount_currency(currency)}")
        lines.append("")
    return "\n".join(lines)
