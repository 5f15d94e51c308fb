"""Venue throughput: signed create_order/s and ticker reads/s from concurrent keep-alive clients.

The venue runs in its own process (``python -m simulator``); one asyncio client process keeps
``--clients`` keep-alive connections busy (aiohttp), signing every order exactly as ccxt does
(HMAC-SHA256 of the form body, ``X-MBX-APIKEY``). Orders alternate market buys and sells of
0.001 BTC so balances stay level; every answer is checked (HTTP 200, FILLED).

    python bench/venue.py [--seconds 5] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.server import READY_PREFIX  # noqa: E402

KEY, SECRET = b"demo-key", b"demo-secret"


def start_venue() -> tuple[subprocess.Popen, str]:
    """``python -m simulator --port 0``; returns once its ``venue ready`` line names the URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", "0", "--log-level", "WARNING"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while selector.select(max(0.0, deadline - time.monotonic())):
            line = process.stdout.readline()
            if not line:
                raise SystemExit("venue exited during start")
            if line.startswith(READY_PREFIX):
                return process, json.loads(line[len(READY_PREFIX):])["url"]
    process.kill()
    raise SystemExit("venue did not start")


async def ticker_worker(session: aiohttp.ClientSession, url: str, stop_at: float,
                        counts: list[int]) -> None:
    target = url + "/api/v3/ticker/24hr?symbol=BTCUSDT"
    while time.monotonic() < stop_at:
        async with session.get(target) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"ticker answered {response.status}")
        counts[0] += 1


async def order_worker(session: aiohttp.ClientSession, url: str, stop_at: float,
                       counts: list[int], worker: int) -> None:
    target = url + "/api/v3/order"
    n = 0
    while time.monotonic() < stop_at:
        n += 1
        body = urlencode({
            "symbol": "BTCUSDT", "side": "BUY" if (n + worker) % 2 else "SELL",
            "type": "MARKET", "quantity": "0.001", "newClientOrderId": f"b{worker}-{n}",
            "newOrderRespType": "FULL", "timestamp": int(time.time() * 1000),
            "recvWindow": 10000,
        })
        signature = hmac.new(SECRET, body.encode(), hashlib.sha256).hexdigest()
        async with session.post(target, data=f"{body}&signature={signature}", headers={
                "X-MBX-APIKEY": KEY.decode(),
                "Content-Type": "application/x-www-form-urlencoded"}) as response:
            answer = await response.json()
            if response.status != 200 or answer.get("status") != "FILLED":
                raise RuntimeError(f"order answered {response.status}: {answer}")
        counts[0] += 1


async def phase(url: str, kind: str, clients: int, seconds: float) -> float:
    counts = [0]
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        # warm up the connections, then measure
        warm = time.monotonic() + 0.5
        if kind == "ticker":
            await asyncio.gather(*(ticker_worker(session, url, warm, [0]) for _ in range(clients)))
        started = time.monotonic()
        stop_at = started + seconds
        if kind == "ticker":
            jobs = [ticker_worker(session, url, stop_at, counts) for _ in range(clients)]
        else:
            jobs = [order_worker(session, url, stop_at, counts, w) for w in range(clients)]
        await asyncio.gather(*jobs)
        elapsed = time.monotonic() - started
    return counts[0] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    venue, url = start_venue()
    try:
        tickers = asyncio.run(phase(url, "ticker", args.clients, args.seconds))
        orders = asyncio.run(phase(url, "order", args.clients, args.seconds))
    finally:
        venue.send_signal(signal.SIGTERM)
        venue.wait(15)
    print(f"venue benchmark: {args.clients} keep-alive clients, {args.seconds:g} s per phase, "
          f"{os.cpu_count()} cores")
    print(f"{'operation':<28}{'req/s':>10}{'goal':>10}")
    print(f"{'fetch_ticker (24hr)':<28}{tickers:>10.0f}{2000:>10}")
    print(f"{'create_order (signed)':<28}{orders:>10.0f}{1000:>10}")


if __name__ == "__main__":
    main()
