"""The durable ledger: entries journaled before they apply, rebuilt on open, replay-safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import diskcache
import pytest

from trading.errors import JournalError, JournalIntegrityError
from trading.journal import Journal, canonical_json
from trading.ledger import Fill
from trading.store import LedgerStore

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def trade_some(store: LedgerStore) -> None:
    ledger = store.ledger
    ledger.deposit("usdt", "binance", "USDT", D("10000"), T0)
    ledger.reserve("t1", "binance", "USDT", D("3000"), T0, order_id="o1")
    ledger.fill(Fill("tr1", "binance", "BTC/USDT", "buy", D("0.05"), D("30000"), fee=D("1.5"),
                     fee_currency="USDT", transfer_id="t1", order_id="o1"), T0)
    ledger.freeze("f1", "binance", "ETH", T0, reason="drift")


def state(store: LedgerStore) -> tuple:
    ledger = store.ledger
    return (ledger.entries, ledger.account_balances(), ledger.reservations(), ledger.frozen())


def test_store_rebuilds_the_same_ledger(tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        before = state(store)
        assert len(store.journal) == 4
    with LedgerStore.open(tmp_path) as store:
        assert state(store) == before
        assert store.ledger.account_balances() == store.ledger.recompute_balances()
        assert store.ledger.is_frozen("binance", "ETH")


def test_reissuing_operations_after_a_restart_posts_nothing_twice(tmp_path: Path) -> None:
    """A coordinator replaying its journal after a crash re-issues ledger ops by id."""
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        before = state(store)
    later = T0 + timedelta(minutes=3)
    with LedgerStore.open(tmp_path) as store:
        store.ledger.reserve("t1", "binance", "USDT", D("3000"), later, order_id="o1",
                             cause="resumed")
        store.ledger.fill(Fill("tr1", "binance", "BTC/USDT", "buy", D("0.05"), D("30000"),
                               fee=D("1.5"), fee_currency="USDT", transfer_id="t1",
                               order_id="o1"), later)
        assert state(store) == before
        assert len(store.journal) == 4
        store.ledger.void("t1", later)  # the op the crash interrupted
        assert store.ledger.balance("binance", "USDT").reserved == D("0")
    with LedgerStore.open(tmp_path) as store:
        assert store.ledger.balance("binance", "USDT").available == D("8498.50")


def test_failed_journal_append_leaves_the_ledger_unchanged(tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        before = state(store)
        with Journal.open(tmp_path) as intruder:  # a second writer moves the head
            intruder.append("x", "note", "intruder", {}, T0)
        with pytest.raises(JournalError, match="another writer"):
            store.ledger.reserve("t2", "binance", "USDT", D("1"), T0)
        assert state(store) == before


def test_tampered_ledger_store_is_refused_at_open(tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
    with diskcache.Cache(str(tmp_path)) as raw:
        record = json.loads(raw[2])
        record["data"]["postings"][1][2] = "30000"  # inflate the reservation
        raw[2] = canonical_json(record)
    with pytest.raises(JournalIntegrityError) as info:
        LedgerStore.open(tmp_path)
    assert info.value.seq == 2


def test_entry_violating_ledger_invariants_is_refused_at_open(tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        forged = store.ledger.entries[1].to_json()
    forged["id"] = "reserve:t9"
    forged["tags"]["transfer_id"] = "t9"
    forged["postings"] = [["assets:binance:USDT:available", "USDT", "-99999"],
                          ["assets:binance:USDT:reserved", "USDT", "99999"]]
    with Journal.open(tmp_path) as journal:  # hash-valid, but the ledger must refuse it
        journal.append("t9", "ledger.reserve", "forged", forged, T0)
    with pytest.raises(JournalIntegrityError, match="refused on replay") as info:
        LedgerStore.open(tmp_path)
    assert info.value.seq == 5


WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from decimal import Decimal as D
    from trading.ledger import Fill
    from trading.store import LedgerStore
    store = LedgerStore.open(sys.argv[1])
    now = datetime(2026, 11, 24, tzinfo=UTC)
    store.ledger.deposit("usdt", "binance", "USDT", D("1000000"), now)
    i = 0
    while True:
        store.ledger.reserve(f"t{i}", "binance", "USDT", D("31"), now, order_id=f"o{i}")
        store.ledger.fill(Fill(f"tr{i}", "binance", "BTC/USDT", "buy", D("0.001"), D("30000"),
                               transfer_id=f"t{i}"), now)
        store.ledger.void(f"t{i}", now)
        print(i, flush=True)
        i += 1
""")


def test_acknowledged_ledger_operations_survive_sigkill(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "ledger")],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    last = -1
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            last = int(line)
            if last == 60:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    with LedgerStore.open(tmp_path / "ledger") as store:
        ledger = store.ledger
        assert all(ledger.entry(f"void:t{i}") is not None for i in range(last + 1))
        assert ledger.account_balances() == ledger.recompute_balances()
        # an operation cut short by the kill is completed by re-issuing it
        for res in ledger.reservations(open_only=True):
            ledger.void(res.transfer_id, T0)
        n = sum(1 for e in ledger.entries if e.kind.value == "fill")
        usdt = ledger.balance("binance", "USDT")
        assert usdt.reserved == 0 and usdt.available == D("1000000") - n * D("30")
        assert ledger.balance("binance", "BTC").available == n * D("0.001")
