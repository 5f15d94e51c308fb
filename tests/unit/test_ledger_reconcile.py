"""Reconciliation of ledger balances against venue balances: match, adjust, discrepancy, freeze."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from trading.errors import CurrencyFrozen, InvalidInput
from trading.ledger import Ledger
from trading.reconcile import (
    ExchangeBalance,
    Outcome,
    ReconciliationPolicy,
    Tolerance,
    apply_reconciliation,
    reconcile,
)

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def ledger() -> Ledger:
    ledger = Ledger()
    ledger.deposit("usdt", "binance", "USDT", D("1000"), T0)
    ledger.deposit("btc", "binance", "BTC", D("1"), T0)
    ledger.reserve("t1", "binance", "USDT", D("300"), T0)
    return ledger


POLICY = ReconciliationPolicy(
    default=Tolerance(absolute=D("0.01")),
    per_currency={"BTC": Tolerance(relative=D("0.001"), freeze_on_discrepancy=True)},
)


def by_currency(report):  # type: ignore[no-untyped-def]
    return {r.currency: r for r in report.results}


def test_equal_balances_match_and_change_nothing(ledger: Ledger) -> None:
    before = ledger.entries
    report = reconcile(ledger, "binance", {
        "USDT": {"free": "700", "locked": "300"}, "BTC": {"free": D("1"), "used": D("0")},
    }, POLICY, T0, run_id="r1")
    assert {r.outcome for r in report.results} == {Outcome.MATCH}
    assert apply_reconciliation(ledger, report, T0) == ()
    assert ledger.entries == before


def test_small_difference_is_adjusted_with_both_figures(ledger: Ledger) -> None:
    report = reconcile(ledger, "binance", {
        "USDT": {"free": "699.995", "locked": "300"}, "BTC": {"total": "1.0004"},
    }, POLICY, T0, run_id="r1")
    results = by_currency(report)
    assert results["USDT"].outcome is Outcome.ADJUST and results["USDT"].delta == D("-0.005")
    assert results["BTC"].outcome is Outcome.ADJUST  # 0.0004 <= 0.1% of 1.0004
    entries = apply_reconciliation(ledger, report, T0)
    assert len(entries) == 2
    usdt = next(e for e in entries if e.tag("currency") == "USDT")
    assert usdt.tag("ledger_total") == "1000" and usdt.tag("exchange_total") == "999.995"
    assert ledger.balance("binance", "USDT").total == D("999.995")
    assert ledger.account_balance("equity:adjustments:binance:USDT", "USDT") == D("0.005")
    assert apply_reconciliation(ledger, report, T0) == entries  # idempotent per run
    again = reconcile(ledger, "binance", {
        "USDT": {"free": "699.995", "locked": "300"}, "BTC": {"total": "1.0004"},
    }, POLICY, T0, run_id="r2")
    assert {r.outcome for r in again.results} == {Outcome.MATCH}


def test_large_difference_is_a_discrepancy_and_freezes_if_configured(ledger: Ledger) -> None:
    report = reconcile(ledger, "binance", {
        "USDT": {"free": "650", "locked": "300"}, "BTC": {"free": "0.9", "locked": "0"},
    }, POLICY, T0, run_id="r1")
    results = by_currency(report)
    assert [r.currency for r in report.discrepancies] == ["BTC", "USDT"]
    assert results["BTC"].freeze and not results["USDT"].freeze
    entries = apply_reconciliation(ledger, report, T0)
    assert [e.kind.value for e in entries] == ["freeze"]
    assert ledger.is_frozen("binance", "BTC") and not ledger.is_frozen("binance", "USDT")
    assert ledger.balance("binance", "BTC").total == D("1")  # never adjusted beyond tolerance
    with pytest.raises(CurrencyFrozen):
        ledger.reserve("t2", "binance", "BTC", D("0.1"), T0)
    ledger.void("t1", T0)  # releases are still allowed


def test_currencies_missing_on_one_side_count_as_zero(ledger: Ledger) -> None:
    report = reconcile(ledger, "binance", {
        "USDT": {"free": "700", "locked": "300"}, "ETH": {"free": "0.001", "locked": "0"},
    }, ReconciliationPolicy(default=Tolerance(absolute=D("0.01"))), T0, run_id="r1")
    results = by_currency(report)
    assert results["BTC"].outcome is Outcome.DISCREPANCY and results["BTC"].delta == D("-1")
    assert results["ETH"].outcome is Outcome.ADJUST and results["ETH"].delta == D("0.001")


def test_locked_mismatch_is_reported_not_adjusted(ledger: Ledger) -> None:
    report = reconcile(ledger, "binance", {
        "USDT": {"free": "800", "locked": "200"}, "BTC": {"free": "1", "locked": "0"},
    }, POLICY, T0, run_id="r1")
    usdt = by_currency(report)["USDT"]
    assert usdt.outcome is Outcome.MATCH and usdt.reserved_mismatch
    assert "locked 200" in usdt.reason and "reserved 300" in usdt.reason


def test_negative_adjustment_beyond_available_is_a_discrepancy(ledger: Ledger) -> None:
    ledger.reserve("t2", "binance", "BTC", D("1"), T0)
    report = reconcile(ledger, "binance", {
        "USDT": {"free": "700", "locked": "300"}, "BTC": {"free": "0", "locked": "0.9995"},
    }, POLICY, T0, run_id="r1")
    assert by_currency(report)["BTC"].outcome is Outcome.DISCREPANCY


def test_exact_match_needed_without_tolerance(ledger: Ledger) -> None:
    report = reconcile(ledger, "binance", {
        "USDT": {"free": "700.00000001", "locked": "300"}, "BTC": {"free": "1", "locked": "0"},
    }, ReconciliationPolicy(), T0, run_id="r1")
    assert by_currency(report)["USDT"].outcome is Outcome.DISCREPANCY


@pytest.mark.parametrize("raw", [
    {"free": 1.5, "locked": "0"},
    {"free": "abc", "locked": "0"},
    {"free": "1"},
    {"free": "1", "locked": "1", "total": "3"},
    {"free": "Infinity", "locked": "0"},
])
def test_malformed_venue_balances_are_refused(ledger: Ledger, raw: dict) -> None:
    with pytest.raises(InvalidInput):
        reconcile(ledger, "binance", {"USDT": raw}, POLICY, T0, run_id="r1")


def test_exchange_balance_accepts_any_two_figures() -> None:
    assert ExchangeBalance.from_mapping("X", {"total": "5", "free": "3"}) == ExchangeBalance(
        D("3"), D("2"))
    assert ExchangeBalance.from_mapping("X", {"total": "5", "used": "1"}) == ExchangeBalance(
        D("4"), D("1"))


def test_tolerance_rejects_negative_or_float_bounds() -> None:
    with pytest.raises(InvalidInput):
        Tolerance(absolute=D("-1"))
    with pytest.raises(InvalidInput):
        Tolerance(relative=0.1)  # type: ignore[arg-type]


def test_the_limit_is_the_wider_of_the_absolute_and_relative_bounds() -> None:
    both = Tolerance(absolute=D("1"), relative=D("0.01"))
    assert both.limit(D("50"), D("40")) == D("1")
    assert both.limit(D("500"), D("400")) == D("5")
    assert Tolerance().limit(D("500"), D("400")) == 0
    assert both.allows(D("500"), D("495")) and not both.allows(D("500"), D("494.9"))
