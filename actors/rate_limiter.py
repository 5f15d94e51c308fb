"""The rate-limiter actor: one per exchange account, owner of the bucket every worker shares.

Why a lock-protected bucket object and not a message per request: asking the limiter before each
call would add an actor round-trip (two thread switches) to every exchange call, which is most
of the gateway's overhead budget. So the limiter *owns* a `SharedBucket` and hands it to the pool
once (`GetBucket`); the pool's dispatcher takes tokens from it directly under its lock (a few
microseconds). What is rare goes through messages: venue back-off signals (`ApplyBackoff`, from
workers) and statistics. The bucket itself is the pure `gateway.ratelimit.AccountLimiter`.

If the limiter restarts, its rest_for_one siblings (pool, gatekeeper) restart with it and pick up
the new bucket, so no one keeps spending from a stale one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
from loguru import logger

from actors.alert_manager import ALERT_MANAGER, publish_alert_event
from actors.protocol import ApplyBackoff, GetBucket, GetStatistics
from gateway.classify import BackoffKind, BackoffSignal
from gateway.ratelimit import (
    EXCHANGE_ENDPOINTS,
    AccountLimiter,
    CostTable,
    Granted,
    LimiterConfig,
    LimiterStatistics,
    Wait,
    cost_table,
    limiter_config_from_ccxt,
)
from messages.alerts import RateLimitPaused, VenueBanned
from supervisors import SupervisedActor, names

__all__ = ["RateLimiter", "RateLimiterStatistics", "SharedBucket", "bucket_for_exchange"]


class SharedBucket:
    """An `AccountLimiter` behind a lock, with the method cost table; safe from any thread."""

    def __init__(self, limiter: AccountLimiter, costs: CostTable,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limiter = limiter
        self._costs = costs
        self._clock = clock
        self._lock = threading.Lock()

    def try_acquire(self, method: str) -> Granted | Wait:
        """Take the cost of one call of `method` now, or say how long to wait."""
        cost = self._costs.cost_of(method)
        with self._lock:
            return self._limiter.try_acquire(cost, self._clock())

    def take(self, method: str) -> float | None:
        """`try_acquire` for the pool's hot path: None when taken, else seconds to wait."""
        cost = self._costs.cost_of(method)
        with self._lock:
            return self._limiter.take(cost, self._clock())

    def on_signal(self, signal: BackoffSignal) -> None:
        """Pause the account as the venue asked (Retry-After, Nobitex backOff, ban)."""
        with self._lock:
            self._limiter.on_signal(signal, self._clock())

    def statistics(self) -> LimiterStatistics:
        with self._lock:
            return self._limiter.statistics(self._clock())


def bucket_for_exchange(client: Any, *, units_per_second: float, safety_margin: float,
                        burst_seconds: float) -> SharedBucket:
    """The bucket of one account: costs from the client's api tree for the exchanges mapped in
    `EXCHANGE_ENDPOINTS` (Binance spot, Nobitex), else one unit per call; the allowance from
    `units_per_second`, or ccxt's `rateLimit` when 0."""
    costs = CostTable({}, 1.0)
    endpoints = EXCHANGE_ENDPOINTS.get(getattr(client, "id", None) or "")
    if endpoints is not None:
        costs = cost_table(client.api, endpoints)
    if units_per_second > 0:
        dearest = max([costs.default, *costs.costs.values()])
        config = LimiterConfig(
            capacity=max(units_per_second * burst_seconds, dearest / safety_margin),
            refill_per_second=units_per_second, safety_margin=safety_margin)
    else:
        config = limiter_config_from_ccxt(client, costs, safety_margin=safety_margin,
                                          burst_seconds=burst_seconds)
    return SharedBucket(AccountLimiter(config, time.monotonic()), costs)


@attrs.frozen(slots=True)
class RateLimiterStatistics:
    """The limiter's view: the bucket and the signals the venue sent."""

    bucket: LimiterStatistics
    signals: int


class RateLimiter(SupervisedActor):
    """Owns the account's `SharedBucket`; applies venue back-off signals sent as messages and
    tells the alert manager (`RateLimitPaused` / `VenueBanned`) when the node has one."""

    def __init__(self, venue: str, make_bucket: Callable[[], SharedBucket]) -> None:
        super().__init__()
        self._venue = venue
        self._make_bucket = make_bucket
        self._bucket: SharedBucket | None = None
        self._signals = 0

    def on_start(self) -> None:
        self._bucket = self._make_bucket()

    def on_receive(self, message: Any) -> Any:
        assert self._bucket is not None
        if isinstance(message, GetBucket):
            return self._bucket
        if isinstance(message, ApplyBackoff):
            self._signals += 1
            self._bucket.on_signal(message.signal)
            logger.bind(context="venue_backoff", actor=self.supervised_name).warning(
                "venue asked to back off: {} for {:.3f}s ({})", message.signal.kind.value,
                message.signal.seconds, message.signal.source)
            self._alert(message.signal)
            return None
        if isinstance(message, GetStatistics):
            return RateLimiterStatistics(self._bucket.statistics(), self._signals)
        raise TypeError(f"RateLimiter: unexpected message {type(message).__name__}")

    def _alert(self, signal: BackoffSignal) -> None:
        if ALERT_MANAGER not in names.registered():
            return  # a node without the alerts subtree
        event: RateLimitPaused | VenueBanned
        reason = f"venue signal from {signal.source}"
        if signal.kind is BackoffKind.BAN:
            event = VenueBanned(self._venue, signal.seconds, reason, time.time())
        else:
            event = RateLimitPaused(self._venue, signal.seconds, reason, time.time())
        publish_alert_event(event)
