"""Cost of the gateway cores on the hot path, to set against the issue's overhead goals
(added median <= 0.3 ms per call; open breaker answers in <= 0.2 ms).

Run from the repo root: ``PYTHONPATH=. python bench/breaker.py [calls]``; prints a table of
median and p99 microseconds per operation.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable

from gateway import (
    AccountLimiter,
    Breaker,
    BreakerConfig,
    BreakerKey,
    BreakerRegistry,
    GuardedBreaker,
    LimiterConfig,
    Permit,
    WindowKind,
)


def timed(op: Callable[[int], object], calls: int) -> tuple[float, float]:
    samples = []
    for i in range(calls):
        t0 = time.perf_counter_ns()
        op(i)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main(calls: int) -> None:
    rows: list[tuple[str, float, float]] = []
    for kind in WindowKind:
        size = 100 if kind is WindowKind.COUNT else 10.0
        breaker = Breaker("b", BreakerConfig(window_kind=kind, window_size=size), random.Random(0))

        def closed_call(i: int, breaker: Breaker = breaker) -> None:
            permit = breaker.acquire(i * 1e-4)
            assert isinstance(permit, Permit)
            breaker.on_success(permit, 0.001, i * 1e-4)

        label = f"acquire+on_success, closed, {kind.value} window"
        rows.append((label, *timed(closed_call, calls)))

    open_breaker = Breaker("b", BreakerConfig(), random.Random(0))
    open_breaker.force_open(0.0)
    rows.append(("acquire, open (fail fast)", *timed(lambda i: open_breaker.acquire(1.0), calls)))

    registry = BreakerRegistry(BreakerConfig())
    key = BreakerKey("binance", "market_data")
    rows.append(("registry.get", *timed(lambda i: registry.get(key, i * 1e-4), calls)))

    limiter = AccountLimiter(LimiterConfig(1e9, 1e9), now=0.0)
    rows.append(("limiter.try_acquire", *timed(lambda i: limiter.try_acquire(1.0, i * 1e-4),
                                                calls)))

    guarded = GuardedBreaker(Breaker("g", BreakerConfig(), random.Random(0)))
    rows.append(("GuardedBreaker.call (lock, clock)", *timed(lambda i: guarded.call(int), calls)))

    print(f"{'operation':45} {'median us':>10} {'p99 us':>10}")
    for name, median, p99 in rows:
        print(f"{name:45} {median:10.2f} {p99:10.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
