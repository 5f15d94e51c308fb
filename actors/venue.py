"""The `venue:<name>` subtree (DESIGN §1), built from the node config.

```
venue:<name> (rest_for_one)
├── embedded-venue        only without [venue] url: the local simulator on a free port
├── rate-limiter          the account's shared bucket
├── pool (one_for_one)
│   ├── dispatcher        bounded queues, bulkheads, deadlines
│   └── worker-1 … worker-N
└── gatekeeper            breakers; every call enters here
```
rest_for_one: a restarted rate limiter (or embedded venue) restarts everything after it, so
nobody holds a stale bucket or URL; a crashed worker only restarts itself (one_for_one).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from loguru import logger

from actors.gatekeeper import Gatekeeper
from actors.names import GatewayNames
from actors.pool import Dispatcher
from actors.rate_limiter import RateLimiter, bucket_for_exchange
from actors.worker import CacheSettings, ClientSettings, Worker
from gateway.breaker import BreakerConfig, WindowKind
from gateway.cache import MarketDataKind
from supervisors import ChildSpec, Strategy, SupervisedActor, SupervisorSpec

if TYPE_CHECKING:
    from ironclad.config import Config
    from simulator.server import RunningVenue

__all__ = ["DEMO_CREDENTIALS", "EmbeddedVenue", "GetVenueUrl", "venue_spec"]

#: The embedded venue's demo account (simulator defaults), used when no credentials are set.
DEMO_CREDENTIALS = {"api_key": "demo-key", "secret": "demo-secret", "token": "demo-token"}

SupervisorFactory = Callable[[str, Strategy, Sequence[ChildSpec | SupervisorSpec]], SupervisorSpec]


@attrs.frozen(slots=True)
class GetVenueUrl:
    """Ask the embedded venue for its base URL."""


class EmbeddedVenue(SupervisedActor):
    """The local simulator served from this process on a free loopback port (demo account)."""

    def __init__(self, seed: int = 1) -> None:
        super().__init__()
        self._seed = seed
        self._running: RunningVenue | None = None

    def on_start(self) -> None:
        from simulator import VenueConfig, serve_in_thread

        self._running = serve_in_thread(VenueConfig(seed=self._seed), port=0)
        logger.info("embedded venue serving on {}", self._running.url)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, GetVenueUrl):
            assert self._running is not None
            return self._running.url
        raise TypeError(f"EmbeddedVenue: unexpected message {type(message).__name__}")

    def on_stop(self) -> None:
        if self._running is not None:
            self._running.stop()


def breaker_config(config: Config) -> BreakerConfig:
    """The pure breaker's tuning from the [breaker] section."""
    b = config.breaker
    return BreakerConfig(
        window_kind=WindowKind.COUNT if b.window_kind == "count" else WindowKind.TIME,
        window_size=int(b.window_size) if b.window_kind == "count" else b.window_size,
        minimum_calls=b.minimum_calls, failure_rate_threshold=b.failure_rate_threshold,
        slow_call_duration=b.slow_call_duration,
        slow_call_rate_threshold=b.slow_call_rate_threshold,
        half_open_probes=b.half_open_probes, half_open_timeout=b.half_open_timeout,
        open_base=b.open_base, open_growth=b.open_growth, open_cap=b.open_cap, jitter=b.jitter)


def client_settings(config: Config) -> ClientSettings:
    """How workers build clients; the embedded venue's demo keys when none are configured."""
    creds = config.credentials
    given = {
        "api_key": creds.api_key.reveal() if creds.api_key else None,
        "secret": creds.api_secret.reveal() if creds.api_secret else None,
        "token": creds.token.reveal() if creds.token else None,
    }
    if config.venue.url is None and not any(given.values()):
        given = dict(DEMO_CREDENTIALS)
    return ClientSettings(exchange_id=config.venue.exchange, url=config.venue.url,
                          timeout_ms=config.venue.timeout_ms,
                          health_symbol=config.venue.health_symbol, **given)


def cache_settings(config: Config) -> CacheSettings | None:
    c = config.cache
    if not c.enabled:
        return None
    return CacheSettings(
        directory=str(Path(config.node.data_dir) / "cache"),
        ttls={MarketDataKind.MARKETS: c.markets_ttl, MarketDataKind.TICKER: c.ticker_ttl,
              MarketDataKind.ORDER_BOOK: c.order_book_ttl, MarketDataKind.TRADES: c.trades_ttl},
        max_stale=c.max_stale)


def unified_methods(exchange_id: str) -> frozenset[str]:
    """The unified ccxt methods the exchange's client declares in `has` (snake_case), plus
    `load_markets`: all a request may name. Raw HTTP (`fetch`, `request`) and the implicit
    endpoint methods stay out of reach."""
    from exchanges import create_client

    client = create_client(exchange_id)
    allowed = {"load_markets"}
    for name, supported in client.has.items():
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        if supported and callable(getattr(client, snake, None)):
            allowed.add(snake)
    return frozenset(allowed)


def _make_bucket(config: Config) -> Any:
    from exchanges import create_client

    r = config.ratelimit
    return bucket_for_exchange(create_client(config.venue.exchange),
                               units_per_second=r.units_per_second,
                               safety_margin=r.safety_margin, burst_seconds=r.burst_seconds)


def venue_spec(config: Config, supervisor: SupervisorFactory,
               worker_class: type[Worker] = Worker) -> SupervisorSpec:
    """The `venue:<name>` subtree for `config`. `supervisor(id, strategy, children)` builds a
    supervisor spec with the node's restart intensity; `worker_class` lets crash tests
    substitute a Worker subclass."""
    gateway_names = GatewayNames(config.venue.name)
    pool = config.pool
    client = client_settings(config)
    cache = cache_settings(config)
    workers = [
        ChildSpec(id=f"worker-{i}", start=functools.partial(
            worker_class.start, gateway_names, i, client, cache,
            health_interval=pool.health_interval, rebuild_after=pool.rebuild_after))
        for i in range(1, pool.workers + 1)
    ]
    dispatcher = ChildSpec(id="dispatcher", start=functools.partial(
        Dispatcher.start, gateway_names, pool.workers,
        market_data_queue=pool.market_data_queue, trading_queue=pool.trading_queue,
        reserved_for_trading=pool.reserved_for_trading, crash_retries=pool.crash_retries))
    children: list[ChildSpec | SupervisorSpec] = []
    if config.venue.url is None:
        children.append(ChildSpec(id="embedded-venue", start=EmbeddedVenue.start))
    children += [
        ChildSpec(id="rate-limiter",
                  start=functools.partial(RateLimiter.start, gateway_names.venue,
                                          functools.partial(_make_bucket, config))),
        supervisor("pool", Strategy.ONE_FOR_ONE, [dispatcher, *workers]),
        ChildSpec(id="gatekeeper", start=functools.partial(
            Gatekeeper.start, gateway_names, breaker_config(config),
            per_method=config.breaker.per_method, idle_ttl=config.breaker.idle_ttl,
            methods=unified_methods(config.venue.exchange), cache=cache)),
    ]
    return supervisor(gateway_names.subtree, Strategy.REST_FOR_ONE, children)
