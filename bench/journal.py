"""Journal open+verify and append cost, to check start-up stays well under 2 s at 10 000 records.

Run from the repo root: ``PYTHONPATH=. python bench/journal.py [records ...]``;
prints one table row per size.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from trading.journal import Journal

DATA = {"order_id": "o-1", "symbol": "BTC/USDT", "side": "buy", "amount": "0.0100",
        "price": "30000.00", "state": "open", "client_order_id": "x-ironclad-00000001"}


def measure(records: int) -> tuple[float, float, float, float]:
    start = datetime(2026, 11, 24, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as directory:
        journal = Journal.open(directory)
        t0 = time.perf_counter()
        for i in range(records):
            journal.append(f"tx-{i % 2000}", "state", "bench", DATA, start + timedelta(milliseconds=i))
        append_s = time.perf_counter() - t0
        journal.close()
        t0 = time.perf_counter()
        journal = Journal.open(directory)
        open_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        journal.latest_state_by_transaction(lambda r: r.data["state"] == "settled")
        latest_s = time.perf_counter() - t0
        journal.close()
    return append_s, open_s, latest_s, records / append_s


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [1_000, 10_000]
    print(f"{'records':>8} | {'append total s':>14} | {'appends/s':>9} | "
          f"{'open+verify s':>13} | {'latest-by-tx s':>14}")
    for n in sizes:
        append_s, open_s, latest_s, rate = measure(n)
        print(f"{n:>8} | {append_s:>14.2f} | {rate:>9.0f} | {open_s:>13.3f} | {latest_s:>14.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
