"""Reconciliation against the local venue: opening balances at first start, external orders
adopted, balance differences adjusted or alerted and frozen, fail-closed start, and journal
integrity checked at start (a damaged journal stops the node with a clear message)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import diskcache
import pykka
import pytest

from actors.reconciler import GetReconcilerStatistics, reconcile_now, subscribe_discrepancies
from actors.trading import LEDGER, RECONCILER, TRANSACTIONS
from exchanges import create_client
from messages.ledger import (
    BalanceDiscrepancy,
    LedgerEntries,
    ListLedgerEntries,
    NotFrozen,
    Unfreeze,
    Unfrozen,
)
from messages.orders import (
    ListOrders,
    OrderState,
    ReconciliationView,
    TradingFrozen,
)
from simulator.model import HOUSE
from simulator.server import RunningVenue
from supervisors import Tree
from tests.helpers_trading import (
    ask,
    cancel,
    get,
    ground_truth,
    ledger_balances,
    ledger_sums,
    place,
    placed,
    start_trading,
    trading_config,
    wait_accepting,
)
from tests.helpers_venue import (
    DEMO_TOKEN,
    admin,
    binance_client,
    install_faults,
    running_venue,
)
from tests.waiting import wait_until
from trading.journal import Journal

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def venue() -> Iterator[RunningVenue]:
    with running_venue(seed=11) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


def start(url: str, data_dir: Path, **trading: Any) -> Tree:
    tree = start_trading(trading_config(url, data_dir, **trading))
    wait_accepting()
    return tree


def venue_totals(url: str) -> dict[str, Decimal]:
    truth = ground_truth(url, "balances")["demo-key"]
    return {c: Decimal(f["free"]) + Decimal(f["locked"]) for c, f in truth.items()}


def ledger_totals() -> dict[str, Decimal]:
    return {b.currency: b.total for b in ledger_balances().balances}


def test_first_start_seeds_opening_balances_once(venue: RunningVenue, tmp_path: Path) -> None:
    tree = start(venue.url, tmp_path)
    assert ledger_totals() == venue_totals(venue.url)
    entries = ask(LEDGER, ListLedgerEntries()).entries
    assert {e.kind for e in entries} == {"open"}
    assert all(p.account.startswith(("assets:sim:", "equity:opening:sim:"))
               for e in entries for p in e.postings)
    tree.stop()
    tree = start(venue.url, tmp_path)
    assert len(ask(LEDGER, ListLedgerEntries()).entries) == len(entries)
    report = reconcile_now(20)
    assert isinstance(report, ReconciliationView)
    assert {c.outcome for c in report.currencies} == {"match"}
    tree.stop()


def test_orders_placed_elsewhere_are_adopted_as_external(venue: RunningVenue,
                                                         tmp_path: Path) -> None:
    client = binance_client(venue.url)
    before = client.create_order("BTC/USDT", "limit", "sell", 0.01, 90000)
    tree = start(venue.url, tmp_path)
    adopted = [o for o in ask(TRANSACTIONS, ListOrders()).orders if o.external]
    assert [o.venue_order_id for o in adopted] == [before["id"]]
    assert adopted[0].state is OrderState.OPEN and adopted[0].client_id is None
    assert ledger_totals() == venue_totals(venue.url)
    later = client.create_order("ETH/USDT", "limit", "buy", 0.1, 1000)
    report = reconcile_now(20)
    assert [d.kind for d in report.orders] == ["adopted"]
    external = get(report.orders[0].order_id)
    assert external.venue_order_id == later["id"] and external.external
    cancel(external.id)
    assert wait_until(lambda: (v := get(external.id)).settled and v).state is OrderState.CANCELED
    client.cancel_order(before["id"], "BTC/USDT")
    wait_until(lambda: get(adopted[0].id).state is OrderState.CANCELED)
    assert all(total == 0 for total in ledger_sums().values())
    assert ledger_totals() == venue_totals(venue.url)
    tree.stop()


@pytest.mark.parametrize("exchange", ["binance", "nobitex"])
def test_open_orders_are_read_in_one_call_without_a_symbol(venue: RunningVenue, tmp_path: Path,
                                                          exchange: str) -> None:
    """One all-markets query per run, never one per market (with many markets the per-market
    reads flooded the gateway and start-up reconciliation never finished)."""
    tree = start(venue.url, tmp_path, exchange=exchange)
    client = (binance_client(venue.url) if exchange == "binance"
              else create_client("nobitex", url=venue.url, token=DEMO_TOKEN))
    elsewhere = client.create_order("BTC/USDT", "limit", "sell", "0.01", "90000")
    install_faults(venue.url, [{"endpoint": "fetch_open_orders", "fault": "latency",
                                "latency_ms": 0}])
    report = reconcile_now(20)
    assert isinstance(report, ReconciliationView), report
    assert [d.kind for d in report.orders] == ["adopted"]
    assert get(report.orders[0].order_id).venue_order_id == str(elsewhere["id"])
    assert admin(venue.url, "/_sim/faults")["stats"] == [{"seen": 1, "fired": 1}]
    tree.stop()


def test_a_difference_within_tolerance_becomes_an_adjusting_entry(
        venue: RunningVenue, tmp_path: Path) -> None:
    tree = start(venue.url, tmp_path, tolerance_absolute="1")
    venue.venue.engine.drift_balance("demo-key", "USDT", Decimal("0.5"))
    report = reconcile_now(20)
    usdt = next(c for c in report.currencies if c.currency == "USDT")
    assert (usdt.outcome, usdt.delta, usdt.frozen) == ("adjust", Decimal("-0.5"), False)
    adjustments = [e for e in ask(LEDGER, ListLedgerEntries(currency="USDT")).entries
                   if e.kind == "adjust"]
    assert len(adjustments) == 1 and "exchange" in adjustments[0].cause
    assert ledger_totals() == venue_totals(venue.url)
    tree.stop()


def test_a_discrepancy_is_published_and_freezes_new_orders_but_not_cancels(
        venue: RunningVenue, tmp_path: Path) -> None:
    events: list[BalanceDiscrepancy] = []
    unsubscribe = subscribe_discrepancies(events.append)
    try:
        tree = start(venue.url, tmp_path)
        resting = placed(place("fr-1", price="50000"))
        wait_until(lambda: get(resting.id).state is OrderState.OPEN)
        venue.venue.engine.drift_balance("demo-key", "USDT", Decimal("25"))
        report = reconcile_now(20)
        usdt = next(c for c in report.currencies if c.currency == "USDT")
        assert usdt.outcome == "discrepancy" and usdt.frozen
        assert [(e.currency, e.delta, e.frozen) for e in events] == [
            ("USDT", Decimal("-25"), True)]
        refused = place("fr-2", price="50000")
        assert isinstance(refused, TradingFrozen) and refused.currency == "USDT"
        assert placed(place("fr-3", side="sell", price="90000")).symbol == "BTC/USDT"
        cancel(resting.id)
        assert wait_until(lambda: (v := get(resting.id)).settled and v).state \
            is OrderState.CANCELED
        assert isinstance(ask(LEDGER, Unfreeze(currency="USDT")), Unfrozen)
        assert isinstance(ask(LEDGER, Unfreeze(currency="USDT")), NotFrozen)
        assert placed(place("fr-2", price="50000")).client_id == "fr-2"
        tree.stop()
    finally:
        unsubscribe()


def test_every_reconciliation_report_is_journaled(venue: RunningVenue, tmp_path: Path) -> None:
    tree = start(venue.url, tmp_path)
    report = reconcile_now(20)
    tree.stop()
    with Journal.open(tmp_path / "journal") as journal:
        kinds = [(r.kind, r.stream) for r in journal.replay()]
    assert ("reconcile.report", f"reconcile:{report.run_id}") in kinds
    assert kinds[0][0] == "ledger.seeded"


def _damage(directory: Path, how: str) -> None:
    with diskcache.Cache(str(directory)) as cache:
        if how == "edited":
            text = cache.get(1)
            cache.set(1, text.replace('"cause":"', '"cause":"X', 1))
        else:
            last = max(k for k in cache.iterkeys() if isinstance(k, int))
            del cache[last]


@pytest.mark.parametrize("how", ["edited", "truncated"])
def test_a_damaged_journal_stops_the_node(venue: RunningVenue, tmp_path: Path,
                                          how: str) -> None:
    tree = start(venue.url, tmp_path)
    placed(place("j-1", price="50000"))
    tree.stop()
    _damage(tmp_path / "journal", how)
    tree = start_trading(trading_config(venue.url, tmp_path, intensity=1))
    assert tree.wait(30), "the node kept running on a damaged journal"
    assert tree.failed


def test_run_py_refuses_to_start_on_a_damaged_journal(venue: RunningVenue,
                                                      tmp_path: Path) -> None:
    tree = start(venue.url, tmp_path)
    placed(place("j-2", price="50000"))
    tree.stop()
    pykka.ActorRegistry.stop_all()
    _damage(tmp_path / "journal", "edited")
    env = {**os.environ, "IRONCLAD_API_KEY": "demo-key", "IRONCLAD_API_SECRET": "demo-secret"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "run.py", "--data-dir", str(tmp_path), "--venue-url", venue.url,
         "--http-port", "0"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "integrity check" in result.stderr + result.stdout
    assert time.monotonic() - started < 60


def test_ledger_entries_are_queried_by_order(venue: RunningVenue, tmp_path: Path) -> None:
    tree = start(venue.url, tmp_path)
    order = placed(place("q-1", price="70000"))
    wait_until(lambda: get(order.id).settled)
    entries: LedgerEntries = ask(LEDGER, ListLedgerEntries(order_id=order.id))
    assert [e.kind for e in entries.entries] == ["reserve", "fill", "void"]
    assert all(e.order_id == order.id for e in entries.entries)
    tree.stop()


def test_trades_are_not_read_for_resting_orders_with_nothing_executed(
        venue: RunningVenue, tmp_path: Path) -> None:
    """Each symbol's trades cost as much weight as a quarter of the all-symbols open-orders
    query: a run reads them only where a fill can be missing (1 000 resting orders on 8
    markets made every run wait seconds for the rate-limit budget)."""
    tree = start(venue.url, tmp_path, inflight_initial=600.0, inflight_max=600.0)
    resting = placed(place("rest-1", price="30000"))
    wait_until(lambda: get(resting.id).state is OrderState.OPEN)
    report = reconcile_now(20)
    assert isinstance(report, ReconciliationView), report
    assert report.open_orders_seen == 1 and report.orders == ()
    assert {c.outcome for c in report.currencies} == {"match"}
    assert ask(RECONCILER, GetReconcilerStatistics()).last_trade_symbols == ()
    tree.stop()


def test_a_fill_the_node_missed_on_an_open_order_is_found_and_booked(
        venue: RunningVenue, tmp_path: Path) -> None:
    """The venue reports the open order partly filled, the node has booked nothing: that
    symbol's trades are read and the fill is booked as ``missed_fill``."""
    tree = start(venue.url, tmp_path, inflight_initial=600.0, inflight_max=600.0)
    engine = venue.venue.engine
    book = engine.order_book("BTC/USDT")
    price = book.bids[0][0] + engine.market("BTC/USDT").tick_size
    assert price < book.asks[0][0]
    resting = placed(place("half", amount="0.002", price=str(price)))
    wait_until(lambda: get(resting.id).state is OrderState.OPEN)
    engine.place_order(HOUSE, "BTC/USDT", "sell", "limit", Decimal("0.001"), price,
                       now=int(time.time() * 1000))
    assert get(resting.id).filled == 0  # the node has not looked (its lookups are far off)
    report = reconcile_now(20)
    assert isinstance(report, ReconciliationView), report
    assert [(d.kind, d.order_id) for d in report.orders] == [("missed_fill", resting.id)]
    assert ask(RECONCILER, GetReconcilerStatistics()).last_trade_symbols == ("BTC/USDT",)
    assert get(resting.id).filled == Decimal("0.001")
    assert all(total == 0 for total in ledger_sums().values())
    assert ledger_totals() == venue_totals(venue.url)
    tree.stop()
