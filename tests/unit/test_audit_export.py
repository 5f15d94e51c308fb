"""The audit trail: queries by order, currency and time; CSV and beancount exports."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from beancount import loader

from trading.audit import (
    beancount_account,
    beancount_currency,
    entries_to_beancount,
    entries_to_csv,
    journal_to_csv,
    query_entries,
    query_journal,
)
from trading.journal import GENESIS_HASH, canonical_json
from trading.ledger import Fill
from trading.store import LedgerStore

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with LedgerStore.open(tmp_path) as store:
        ledger = store.ledger
        ledger.deposit("usdt", "binance", "USDT", D("10000"), day(0), cause='wire "A-17"')
        ledger.deposit("inch", "binance", "1INCH", D("50"), day(0))
        ledger.reserve("t1", "binance", "USDT", D("3000"), day(1), order_id="o1")
        ledger.fill(Fill("tr1", "binance", "BTC/USDT", "buy", D("0.04"), D("30000"),
                         fee=D("0.00004"), fee_currency="BTC", transfer_id="t1",
                         order_id="o1"), day(1))
        ledger.void("t1", day(2))
        ledger.reserve("t2", "binance", "1INCH", D("20"), day(2), order_id="o2")
        ledger.fill(Fill("tr2", "binance", "1INCH/USDT", "sell", D("20"), D("0.35"),
                         fee=D("0.007"), fee_currency="USDT", transfer_id="t2",
                         order_id="o2"), day(3))
        ledger.void("t2", day(3))
        ledger.adjust("r1:USDT", "binance", "USDT", D("-0.01"), day(4), reason="reconcile r1",
                      ledger_total=D("8806.993"), exchange_total=D("8806.983"))
        ledger.freeze("f1", "binance", "BTC", day(4), reason="drift")
        yield store


def test_query_entries_by_order_includes_voids_through_the_reservation(store) -> None:  # type: ignore[no-untyped-def]
    found = query_entries(store.ledger.entries, order_id="o1")
    assert [e.id for e in found] == ["reserve:t1", "fill:binance:BTC/USDT:tr1", "void:t1"]


def test_query_entries_by_currency_and_time(store) -> None:  # type: ignore[no-untyped-def]
    entries = store.ledger.entries
    btc = query_entries(entries, currency="BTC")
    assert [e.id for e in btc] == ["fill:binance:BTC/USDT:tr1", "freeze:f1"]
    window = query_entries(entries, since=day(2), until=day(4))
    assert {e.time for e in window} == {day(2), day(3)}
    assert query_entries(entries, order_id="o2", currency="BTC") == []


def test_query_journal_by_order_kind_and_time(store) -> None:  # type: ignore[no-untyped-def]
    records = list(store.journal.replay())
    assert [r.kind for r in query_journal(records, order_id="o1")] == [
        "ledger.reserve", "ledger.fill", "ledger.void"]
    assert [r.stream for r in query_journal(records, stream="t2")] == ["t2", "t2", "t2"]
    assert len(query_journal(records, kind="ledger.void")) == 2
    assert [r.seq for r in query_journal(records, since=day(4))] == [9, 10]


def test_entries_csv_balances_per_entry_and_currency(store) -> None:  # type: ignore[no-untyped-def]
    text = entries_to_csv(store.ledger.entries)
    rows = list(csv.DictReader(io.StringIO(text)))
    posted = sum(len(e.postings) or 1 for e in store.ledger.entries)
    assert len(rows) == posted
    sums: dict[tuple[str, str], D] = defaultdict(D)
    for row in rows:
        if row["account"]:
            sums[(row["entry_id"], row["currency"])] += D(row["amount"])
    assert sums and all(v == 0 for v in sums.values())
    assert {r["order_id"] for r in rows if r["entry_id"] == "void:t1"} == {"o1"}
    assert next(r for r in rows if r["entry_id"] == "open:usdt")["cause"] == 'wire "A-17"'


def test_journal_csv_carries_enough_to_reverify_the_chain(store) -> None:  # type: ignore[no-untyped-def]
    rows = list(csv.DictReader(io.StringIO(journal_to_csv(store.journal.replay()))))
    prev = GENESIS_HASH
    for row in rows:
        body = {"seq": int(row["seq"]), "time": row["time"], "stream": row["stream"],
                "kind": row["kind"], "cause": row["cause"], "data": json.loads(row["data"]),
                "prev_hash": row["prev_hash"]}
        assert row["prev_hash"] == prev
        assert hashlib.sha256(canonical_json(body).encode()).hexdigest() == row["hash"]
        prev = row["hash"]
    assert prev == store.journal.head.hash


def test_beancount_export_loads_cleanly_with_balance_assertions(store) -> None:  # type: ignore[no-untyped-def]
    text = entries_to_beancount(store.ledger.entries, balances=store.ledger.account_balances())
    entries, errors, _options = loader.load_string(text)
    assert errors == []
    kinds = defaultdict(int)
    for entry in entries:
        kinds[type(entry).__name__] += 1
    assert kinds["Transaction"] == len(store.ledger.entries)
    assert kinds["Balance"] == len(store.ledger.account_balances())
    assert kinds["Open"] >= 10
    assert "2026-11-25 * \"reserve\"" in text
    assert "  Assets:Binance:USDT:Reserved  3000 USDT" in text
    assert '  order-id: "o1"' in text


def test_beancount_catches_a_wrong_balance(store) -> None:  # type: ignore[no-untyped-def]
    balances = store.ledger.account_balances()
    key = ("assets:binance:USDT:available", "USDT")
    balances[key] += D("1")
    _entries, errors, _options = loader.load_string(
        entries_to_beancount(store.ledger.entries, balances=balances))
    assert len(errors) == 1 and "Balance failed" in errors[0].message


@pytest.mark.parametrize(("path", "expected"), [
    ("assets:binance:USDT:available", "Assets:Binance:USDT:Available"),
    ("expenses:fees:binance:BNB", "Expenses:Fees:Binance:BNB"),
    ("equity:adjustments:kucoin_hf:BTC", "Equity:Adjustments:Kucoin-hf:BTC"),
    ("equity:opening:nobitex:IRT", "Equity:Opening:Nobitex:IRT"),
    ("trading:binance:BTC/USDT", "Equity:Trading:Binance:BTC-USDT"),
    ("assets:binance:1INCH:reserved", "Assets:Binance:X1INCH:Reserved"),
])
def test_beancount_account_names(path: str, expected: str) -> None:
    assert beancount_account(path) == expected


@pytest.mark.parametrize(("currency", "expected"), [
    ("USDT", "USDT"), ("1INCH", "X1INCH"), ("B", "B"), ("USDC.E", "USDC.E"), ("ABC-", "XABC"),
])
def test_beancount_currencies(currency: str, expected: str) -> None:
    assert beancount_currency(currency) == expected


def test_beancount_balances_need_entries() -> None:
    with pytest.raises(ValueError, match="at least one entry"):
        entries_to_beancount([], balances={("assets:binance:USDT:available", "USDT"): D("1")})
    assert "option" in entries_to_beancount([])
