"""Start-up cost of the durable stores: journal open+verify, and ledger rebuild.

Goal: opening and verifying 10 000 journal records takes well under 2 s. Run from the
repo root: ``PYTHONPATH=. python bench/journal.py [records ...]``; prints two tables.
Appends are fsynced (synchronous=FULL), so append rates depend on the disk.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trading.journal import Journal
from trading.ledger import Fill
from trading.store import LedgerStore

START = datetime(2026, 11, 24, tzinfo=UTC)
DATA = {"order_id": "o-1", "symbol": "BTC/USDT", "side": "buy", "amount": "0.0100",
        "price": "30000.00", "state": "open", "client_order_id": "x-ironclad-00000001"}


def measure_journal(records: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as directory:
        journal = Journal.open(directory)
        t0 = time.perf_counter()
        for i in range(records):
            journal.append(f"tx-{i % 2000}", "state", "bench", DATA,
                           START + timedelta(milliseconds=i))
        append_s = time.perf_counter() - t0
        journal.close()
        t0 = time.perf_counter()
        journal = Journal.open(directory)
        open_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        journal.latest_state_by_transaction(lambda r: r.data["state"] == "settled")
        latest_s = time.perf_counter() - t0
        journal.close()
    return append_s, open_s, latest_s


def measure_ledger(orders: int) -> tuple[int, float]:
    """Each order is reserve + fill + void: three entries."""
    with tempfile.TemporaryDirectory() as directory:
        with LedgerStore.open(directory) as store:
            ledger = store.ledger
            ledger.deposit("usdt", "binance", "USDT", Decimal("1e9"), START)
            for i in range(orders):
                ledger.reserve(f"t{i}", "binance", "USDT", Decimal("31"), START)
                ledger.fill(Fill(f"tr{i}", "binance", "BTC/USDT", "buy", Decimal("0.001"),
                                 Decimal("30000"), transfer_id=f"t{i}"), START)
                ledger.void(f"t{i}", START)
            entries = len(ledger.entries)
        t0 = time.perf_counter()
        LedgerStore.open(directory).close()
        return entries, time.perf_counter() - t0


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [1_000, 10_000]
    print(f"{'records':>8} | {'appends/s':>9} | {'open+verify s':>13} | {'latest-by-tx s':>14}")
    for n in sizes:
        append_s, open_s, latest_s = measure_journal(n)
        print(f"{n:>8} | {n / append_s:>9.0f} | {open_s:>13.3f} | {latest_s:>14.3f}")
    print()
    print(f"{'orders':>8} | {'entries':>8} | {'ledger rebuild s':>16}")
    for n in sizes:
        entries, rebuild_s = measure_ledger(n // 3)
        print(f"{n // 3:>8} | {entries:>8} | {rebuild_s:>16.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
