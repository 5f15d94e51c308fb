"""The shadow ledger core: accounts, balancing, reservations, fills, idempotency, freezes."""

from __future__ import annotations

import copy
import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

import trading
from trading import accounts
from trading.errors import (
    CurrencyFrozen,
    IdempotencyConflict,
    InsufficientAvailable,
    InvalidAccount,
    InvalidInput,
    Overfill,
    ReservationClosed,
    UnbalancedEntry,
    UnknownReservation,
)
from trading.ledger import Balance, Entry, EntryKind, Fill, Ledger, Posting

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def funded(usdt: str = "10000", btc: str = "1") -> Ledger:
    ledger = Ledger()
    ledger.deposit("usdt", "binance", "USDT", D(usdt), T0)
    ledger.deposit("btc", "binance", "BTC", D(btc), T0)
    return ledger


def snapshot(ledger: Ledger) -> tuple:
    return (ledger.entries, ledger.account_balances(), ledger.reservations(), ledger.frozen())


def buy(trade_id: str, amount: str, price: str = "30000", **kw: object) -> Fill:
    return Fill(trade_id, "binance", "BTC/USDT", "buy", D(amount), D(price), **kw)


def test_package_exports_are_complete_and_importable() -> None:
    modules = [importlib.import_module(f"trading.{name}") for name in
               ("accounts", "audit", "errors", "journal", "ledger", "reconcile", "store")]
    for module in modules:
        assert all(hasattr(module, name) for name in module.__all__), module.__name__
    public = {name for module in modules for name in module.__all__}
    assert set(trading.__all__) <= public
    for name in trading.__all__:
        assert getattr(trading, name) is not None
    missing = {"Ledger", "Journal", "LedgerStore", "Fill", "reconcile", "entries_to_beancount",
               "JournalIntegrityError", "InsufficientAvailable"} - set(trading.__all__)
    assert not missing


@pytest.mark.parametrize("path", [
    "assets:binance:USDT:available",
    "assets:binance:USDT:reserved",
    "expenses:fees:binance:BNB",
    "equity:adjustments:nobitex:IRT",
    "equity:opening:binance:BTC",
    "trading:binance:BTC/USDT",
])
def test_valid_account_paths_parse(path: str) -> None:
    assert accounts.parse_account(path).path == path


@pytest.mark.parametrize(("path", "culprit"), [
    ("assets:binance:USDT:free", "unknown shape"),
    ("assets:Binance:USDT:available", "venue"),
    ("assets:binance:usdt:available", "currency"),
    ("expenses:binance:USDT", "unknown shape"),
    ("trading:binance:BTCUSDT", "BASE/QUOTE"),
    ("trading:binance:BTC/BTC", "differ"),
    ("income:binance:USDT", "unknown shape"),
])
def test_invalid_account_paths_are_refused_by_name(path: str, culprit: str) -> None:
    with pytest.raises(InvalidAccount) as info:
        accounts.parse_account(path)
    assert info.value.account == path
    assert culprit in str(info.value)


def test_deposit_credits_available_against_opening_equity() -> None:
    ledger = funded()
    assert ledger.balance("binance", "USDT") == Balance(D("10000"), D(0))
    assert ledger.account_balance("equity:opening:binance:USDT", "USDT") == D("-10000")


def test_unbalanced_entry_is_refused_and_changes_nothing() -> None:
    ledger = funded()
    before = snapshot(ledger)
    bad = Entry("open:x", EntryKind.OPEN, T0, "bad", (
        Posting("assets:binance:USDT:available", "USDT", D("5")),
        Posting("equity:opening:binance:USDT", "USDT", D("-4")),
    ), (("amount", "5"),))
    with pytest.raises(UnbalancedEntry) as info:
        ledger.record(bad)
    assert info.value.residuals == {"USDT": D("1")}
    assert snapshot(ledger) == before


def test_posting_currency_must_fit_the_account() -> None:
    ledger = funded()
    bad = Entry("open:x", EntryKind.OPEN, T0, "bad", (
        Posting("assets:binance:USDT:available", "BTC", D("5")),
        Posting("equity:opening:binance:BTC", "BTC", D("-5")),
    ), ())
    with pytest.raises(InvalidAccount, match="cannot hold BTC"):
        ledger.record(bad)


@pytest.mark.parametrize("amount", [D("0"), D("-1"), D("NaN"), 1.5, "10"])
def test_amounts_must_be_positive_finite_decimals(amount: object) -> None:
    ledger = funded()
    before = snapshot(ledger)
    with pytest.raises(InvalidInput):
        ledger.reserve("t", "binance", "USDT", amount, T0)  # type: ignore[arg-type]
    assert snapshot(ledger) == before


def test_naive_time_is_refused() -> None:
    with pytest.raises(InvalidInput, match="timezone-aware"):
        funded().reserve("t", "binance", "USDT", D("1"), datetime(2026, 1, 1))


def test_reserve_moves_available_to_reserved() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("3000"), T0, order_id="o1")
    assert ledger.balance("binance", "USDT") == Balance(D("7000"), D("3000"))
    res = ledger.reservation("t1")
    assert res is not None and res.remaining == D("3000") and res.order_id == "o1"


def test_reserving_more_than_available_is_refused_and_changes_nothing() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("9000"), T0)
    before = snapshot(ledger)
    with pytest.raises(InsufficientAvailable) as info:
        ledger.reserve("t2", "binance", "USDT", D("1000.01"), T0)
    assert (info.value.needed, info.value.available) == (D("1000.01"), D("1000"))
    assert snapshot(ledger) == before


def test_same_reserve_again_is_a_noop_returning_the_original() -> None:
    ledger = funded()
    first = ledger.reserve("t1", "binance", "USDT", D("100"), T0, order_id="o1")
    again = ledger.reserve("t1", "binance", "USDT", D("100"), T0 + timedelta(hours=1),
                           order_id="o1", cause="retry after restart")
    assert again is first
    assert ledger.reserve("t1", "binance", "USDT", D("100.000"), T0, order_id="o1") is first
    assert ledger.balance("binance", "USDT") == Balance(D("9900"), D("100"))


def test_same_id_with_different_content_is_a_conflict() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("100"), T0)
    before = snapshot(ledger)
    with pytest.raises(IdempotencyConflict):
        ledger.reserve("t1", "binance", "USDT", D("101"), T0)
    with pytest.raises(IdempotencyConflict):
        ledger.reserve("t1", "binance", "BTC", D("100"), T0)
    assert snapshot(ledger) == before


def test_buy_fill_goes_through_the_conversion_account_with_fee_as_expense() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("3000"), T0, order_id="o1")
    entry = ledger.fill(buy("tr1", "0.1", fee=D("0.0001"), fee_currency="BTC",
                            transfer_id="t1", order_id="o1"), T0)
    assert set(entry.postings) == {
        Posting("assets:binance:USDT:reserved", "USDT", D("-3000")),
        Posting("trading:binance:BTC/USDT", "USDT", D("3000")),
        Posting("trading:binance:BTC/USDT", "BTC", D("-0.1")),
        Posting("assets:binance:BTC:available", "BTC", D("0.1")),
        Posting("assets:binance:BTC:available", "BTC", D("-0.0001")),
        Posting("expenses:fees:binance:BTC", "BTC", D("0.0001")),
    }
    assert ledger.balance("binance", "USDT") == Balance(D("7000"), D("0"))
    assert ledger.balance("binance", "BTC") == Balance(D("1.0999"), D("0"))
    assert ledger.account_balance("expenses:fees:binance:BTC", "BTC") == D("0.0001")


def test_sell_fill_spends_reserved_base_and_credits_quote() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "BTC", D("0.5"), T0)
    ledger.fill(Fill("tr1", "binance", "BTC/USDT", "sell", D("0.2"), D("31000"),
                     fee=D("6.2"), fee_currency="USDT", transfer_id="t1"), T0)
    assert ledger.balance("binance", "BTC") == Balance(D("0.5"), D("0.3"))
    assert ledger.balance("binance", "USDT") == Balance(D("16193.8"), D("0"))


def test_fee_in_spent_currency_uses_the_reservation_then_available() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("3001"), T0)
    ledger.fill(buy("tr1", "0.1", fee=D("3"), fee_currency="USDT", transfer_id="t1"), T0)
    res = ledger.reservation("t1")
    assert res is not None and res.remaining == D("0")
    assert ledger.balance("binance", "USDT") == Balance(D("6997"), D("0"))


def test_partial_fills_then_void_release_the_rest() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("3000"), T0)
    ledger.fill(buy("tr1", "0.03", transfer_id="t1"), T0)
    ledger.fill(buy("tr2", "0.02", price="29000", transfer_id="t1"), T0)
    void = ledger.void("t1", T0)
    assert void.postings[0].amount == D("-1520")
    assert ledger.balance("binance", "USDT") == Balance(D("8520"), D("0"))
    res = ledger.reservation("t1")
    assert res is not None and res.voided and res.released == D("1520")
    assert ledger.void("t1", T0 + timedelta(minutes=5)) is void


def test_duplicate_trade_id_is_booked_once() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("3000"), T0)
    first = ledger.fill(buy("tr1", "0.05", transfer_id="t1"), T0)
    assert ledger.fill(buy("tr1", "0.05", transfer_id="t1"), T0 + timedelta(seconds=1)) is first
    assert ledger.balance("binance", "BTC").available == D("1.05")
    with pytest.raises(IdempotencyConflict):
        ledger.fill(buy("tr1", "0.06", transfer_id="t1"), T0)


def test_overfill_is_refused_and_changes_nothing() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("3000"), T0)
    ledger.fill(buy("tr1", "0.06", transfer_id="t1"), T0)
    before = snapshot(ledger)
    with pytest.raises(Overfill) as info:
        ledger.fill(buy("tr2", "0.05", transfer_id="t1"), T0)
    assert (info.value.requested, info.value.remaining) == (D("1500.00"), D("1200.00"))
    assert snapshot(ledger) == before


def test_fill_after_void_is_refused() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("3000"), T0)
    ledger.void("t1", T0)
    with pytest.raises(ReservationClosed):
        ledger.fill(buy("tr1", "0.01", transfer_id="t1"), T0)
    with pytest.raises(ReservationClosed):
        ledger.post("t1", "p1", D("1"), "expenses:fees:binance:USDT", T0)


def test_unknown_reservation_is_refused() -> None:
    ledger = funded()
    with pytest.raises(UnknownReservation):
        ledger.void("nope", T0)
    with pytest.raises(UnknownReservation):
        ledger.fill(buy("tr1", "0.01", transfer_id="nope"), T0)


def test_fill_of_the_wrong_currency_reservation_is_refused() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "BTC", D("0.1"), T0)
    with pytest.raises(InvalidInput, match="reservation holds BTC"):
        ledger.fill(buy("tr1", "0.01", transfer_id="t1"), T0)


def test_fill_without_reservation_spends_available() -> None:
    ledger = funded(usdt="100")
    ledger.fill(buy("ext-1", "0.001"), T0)
    assert ledger.balance("binance", "USDT") == Balance(D("70.000"), D("0"))
    with pytest.raises(InsufficientAvailable):
        ledger.fill(buy("ext-2", "0.01"), T0)


def test_post_consumes_partially_once_per_post_id() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("100"), T0)
    first = ledger.post("t1", "p1", D("40"), "expenses:fees:binance:USDT", T0)
    assert ledger.post("t1", "p1", D("40"), "expenses:fees:binance:USDT", T0) is first
    with pytest.raises(IdempotencyConflict):
        ledger.post("t1", "p1", D("41"), "expenses:fees:binance:USDT", T0)
    with pytest.raises(Overfill):
        ledger.post("t1", "p2", D("61"), "expenses:fees:binance:USDT", T0)
    with pytest.raises(InvalidAccount):
        ledger.post("t1", "p2", D("1"), "expenses:fees:binance:BTC", T0)
    ledger.post("t1", "p2", D("60"), "expenses:fees:binance:USDT", T0)
    assert ledger.balance("binance", "USDT") == Balance(D("9900"), D("0"))


def test_frozen_currency_refuses_reservations_but_allows_releases_and_fills() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("3000"), T0)
    ledger.freeze("f1", "binance", "USDT", T0, reason="discrepancy 12 USDT")
    before = snapshot(ledger)
    with pytest.raises(CurrencyFrozen, match="discrepancy 12 USDT"):
        ledger.reserve("t2", "binance", "USDT", D("1"), T0)
    assert snapshot(ledger) == before
    ledger.fill(buy("tr1", "0.01", transfer_id="t1"), T0)
    ledger.void("t1", T0)
    ledger.reserve("t3", "binance", "BTC", D("0.1"), T0)
    ledger.unfreeze("u1", "binance", "USDT", T0, reason="operator alice checked")
    ledger.reserve("t2", "binance", "USDT", D("1"), T0)
    assert not ledger.is_frozen("binance", "USDT")


def test_adjust_records_both_figures_and_refuses_negative_available() -> None:
    ledger = funded()
    entry = ledger.adjust("r1:USDT", "binance", "USDT", D("-0.5"), T0, reason="reconcile",
                          ledger_total=D("10000"), exchange_total=D("9999.5"))
    assert "ledger 10000" in entry.cause and "exchange 9999.5" in entry.cause
    assert ledger.balance("binance", "USDT").available == D("9999.5")
    with pytest.raises(InsufficientAvailable):
        ledger.adjust("r2:USDT", "binance", "USDT", D("-10000"), T0, reason="reconcile",
                      ledger_total=D("9999.5"), exchange_total=D("-0.5"))


def test_rebuild_from_entries_equals_the_live_ledger() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("3000"), T0, order_id="o1")
    ledger.fill(buy("tr1", "0.05", fee=D("1"), fee_currency="USDT", transfer_id="t1"), T0)
    ledger.freeze("f1", "binance", "BTC", T0, reason="x")
    ledger.void("t1", T0)
    rebuilt = Ledger.from_entries(Entry.from_json(e.to_json()) for e in ledger.entries)
    assert snapshot(rebuilt) == snapshot(ledger)
    assert rebuilt.account_balances() == rebuilt.recompute_balances()


def test_entry_json_roundtrip_is_exact() -> None:
    ledger = funded()
    entry = ledger.fill(buy("tr1", "0.00012345", price="30000.10"), T0)
    assert Entry.from_json(copy.deepcopy(entry.to_json())) == entry


def test_hand_made_void_must_release_everything_that_remains() -> None:
    ledger = funded()
    ledger.reserve("t1", "binance", "USDT", D("100"), T0)
    partial = Entry("void:t1", EntryKind.VOID, T0, "void", (
        Posting("assets:binance:USDT:reserved", "USDT", D("-40")),
        Posting("assets:binance:USDT:available", "USDT", D("40")),
    ), (("transfer_id", "t1"),))
    before = snapshot(ledger)
    with pytest.raises(InvalidInput, match="releases all"):
        ledger.record(partial)
    assert snapshot(ledger) == before
