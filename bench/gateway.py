"""Gateway benchmarks against the local venue in its own process (run by hand).

    python bench/gateway.py [--calls 400] [--port 8791]

1. Overhead: fetch_ticker through gatekeeper → pool → worker vs the same ccxt call made
   directly (same process, same venue), interleaved in rounds so drift hits both alike.
   Goal: added median <= 0.3 ms and <= 15 % of the direct call. Measured through `call()`
   (which runs the gatekeeper's, the pool's and an idle worker's handlers on the caller's
   thread) and, for comparison, by sending a `Call` message to the gatekeeper's actor ref
   (thread hand-offs to the gatekeeper, to the worker and back).
2. Scaling: with 20 ms venue latency, throughput of 1, 2, 4, 8, 16 workers.
   Goal: 8 workers >= 6x one worker.
3. Fail-fast: an open trading breaker answering create_order. Goal: median <= 0.2 ms, and
   the venue saw no order.
Prints a table of measured figures and ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from loguru import logger  # noqa: E402

from actors import ReplySlot, call, gatekeeper_name, submit  # noqa: E402
from actors.protocol import Call  # noqa: E402
from exchanges import create_client  # noqa: E402
from ironclad.config import (  # noqa: E402
    BreakerSettings,
    Config,
    Credentials,
    NodeConfig,
    PoolConfig,
    RateLimitConfig,
    Secret,
    VenueConfig,
)
from ironclad.node import build_node_spec, venue_part  # noqa: E402
from messages.exchange import Category, CircuitOpen, ExchangeRequest, ExchangeResult  # noqa: E402
from supervisors import resolve, start_tree  # noqa: E402

DEMO = Credentials(api_key=Secret("demo-key"), api_secret=Secret("demo-secret"),
                   token=Secret("demo-token"))


def admin(url: str, path: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def start_venue(port: int) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "--port", str(port),
                             "--seed", "1", "--log-level", "WARNING"], cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            admin(url, "/_sim/health")
            return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("venue did not start") from None
            time.sleep(0.05)


def config(url: str, data_dir: str, workers: int, **breaker: Any) -> Config:
    return Config(node=NodeConfig(data_dir=Path(data_dir)),
                  venue=VenueConfig(url=url, name="sim"),
                  pool=PoolConfig(workers=workers, reserved_for_trading=0,
                                  market_data_queue=100_000, trading_queue=100_000),
                  breaker=BreakerSettings(**breaker),
                  ratelimit=RateLimitConfig(units_per_second=1e6),
                  credentials=DEMO)


def ticker(timeout: float = 10.0) -> ExchangeRequest:
    return ExchangeRequest.new("sim", "fetch_ticker", ["BTC/USDT"],
                               category=Category.MARKET_DATA, idempotent=True, timeout=timeout)


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def overhead(url: str, calls: int, data_dir: str) -> dict[str, float]:
    direct_client = create_client("binance", url=url, api_key="demo-key", secret="demo-secret")
    direct_client.load_markets()
    tree = start_tree(build_node_spec(config(url, data_dir, 4), parts=(venue_part,)))
    try:
        for _ in range(50):  # warm-up: every worker loads markets, sessions connect
            direct_client.fetch_ticker("BTC/USDT")
            assert isinstance(call(ticker()), ExchangeResult)
        gatekeeper = resolve(gatekeeper_name("sim"), timeout=5)

        def by_message() -> None:
            slot = ReplySlot()
            gatekeeper.tell(Call(ticker(), slot))
            assert isinstance(slot.future.get(timeout=10), ExchangeResult)

        direct: list[float] = []
        through: list[float] = []
        messaged: list[float] = []
        for _ in range(calls // 20):
            direct += [timed(lambda: direct_client.fetch_ticker("BTC/USDT")) for _ in range(20)]
            through += [timed(lambda: call(ticker())) for _ in range(20)]
            messaged += [timed(by_message) for _ in range(20)]
    finally:
        tree.stop()
    d, g, m = (statistics.median(x) for x in (direct, through, messaged))
    return {"direct_median": d, "direct_p99": pct(direct, 0.99), "gateway_median": g,
            "gateway_p99": pct(through, 0.99), "added": g - d, "added_ratio": (g - d) / d,
            "message_added": m - d, "message_ratio": (m - d) / d}


def scaling(url: str, data_dir: str, worker_counts: tuple[int, ...]) -> dict[int, float]:
    admin(url, "/_sim/faults", "POST", {"seed": 1, "rules": [
        {"endpoint": "fetch_ticker", "fault": "latency", "latency_ms": 20}]})
    results: dict[int, float] = {}
    try:
        for workers in worker_counts:
            tree = start_tree(build_node_spec(config(url, data_dir, workers),
                                              parts=(venue_part,)))
            try:
                for slot in [submit(ticker()) for _ in range(workers * 2)]:  # warm-up
                    slot.future.get(timeout=30)
                count = max(60, 30 * workers)
                started = time.perf_counter()
                slots = [submit(ticker(timeout=60)) for _ in range(count)]
                replies = [slot.future.get(timeout=90) for slot in slots]
                elapsed = time.perf_counter() - started
                assert all(isinstance(r, ExchangeResult) for r in replies)
                results[workers] = count / elapsed
            finally:
                tree.stop()
    finally:
        admin(url, "/_sim/faults", "DELETE")
    return results


def fail_fast(url: str, calls: int, data_dir: str) -> dict[str, float]:
    cfg = config(url, data_dir, 2, window_size=4.0, minimum_calls=4, open_base=600.0,
                 open_cap=600.0)
    tree = start_tree(build_node_spec(cfg, parts=(venue_part,)))
    try:
        admin(url, "/_sim/faults", "POST", {"seed": 1, "rules": [
            {"endpoint": "fetch_balance", "fault": "error_503"}]})
        opened = False
        for _ in range(20):
            reply = call(ExchangeRequest.new("sim", "fetch_balance", category=Category.TRADING,
                                             idempotent=True, timeout=5))
            if isinstance(reply, CircuitOpen):
                opened = True
                break
        assert opened, "trading breaker did not open"
        before = len(admin(url, "/_sim/orders"))
        times = []
        for i in range(calls):
            request = ExchangeRequest.new("sim", "create_order",
                                          ["BTC/USDT", "market", "buy", "0.001"],
                                          {"params": {"newClientOrderId": f"ff-{i}"}},
                                          category=Category.TRADING, idempotent=False,
                                          timeout=5)
            started = time.perf_counter()
            reply = call(request)
            times.append(time.perf_counter() - started)
            assert isinstance(reply, CircuitOpen)
        assert len(admin(url, "/_sim/orders")) == before, "an order reached the venue"
    finally:
        admin(url, "/_sim/faults", "DELETE")
        tree.stop()
    return {"median": statistics.median(times), "p99": pct(times, 0.99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    proc, url = start_venue(args.port)
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            o = overhead(url, args.calls, data_dir)
            s = scaling(url, data_dir, (1, 2, 4, 8, 16))
            f = fail_fast(url, args.calls * 5, data_dir)
    finally:
        proc.terminate()
        proc.wait(10)
    ms = 1000.0
    print("| benchmark | measured | goal | ratio |")
    print("|---|---|---|---|")
    print(f"| fetch_ticker direct (median / p99) | {o['direct_median'] * ms:.3f} / "
          f"{o['direct_p99'] * ms:.3f} ms | | |")
    print(f"| fetch_ticker via gateway (median / p99) | {o['gateway_median'] * ms:.3f} / "
          f"{o['gateway_p99'] * ms:.3f} ms | | |")
    print(f"| added median, `call()` | {o['added'] * ms:.3f} ms | <= 0.3 ms, <= 15 % | "
          f"{o['added_ratio'] * 100:.1f} % of direct |")
    print(f"| added median, `Call` message to the gatekeeper's ref | "
          f"{o['message_added'] * ms:.3f} ms | | {o['message_ratio'] * 100:.1f} % of direct |")
    base = s[1]
    for workers, rate in s.items():
        goal = ">= 6x" if workers == 8 else ""
        print(f"| {workers} worker(s), 20 ms venue latency | {rate:.0f} calls/s | {goal} | "
              f"{rate / base:.2f}x |")
    print(f"| open breaker answers create_order (median / p99) | {f['median'] * ms:.3f} / "
          f"{f['p99'] * ms:.3f} ms | <= 0.2 ms median, no network | no order at the venue |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
