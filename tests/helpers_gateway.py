"""Start a venue subtree (gatekeeper → pool → workers) against a running local venue, for tests.

`gateway_config(url, tmp_path, pool=..., breaker=...)` is a node Config with small, fast
settings; `start_gateway(config)` starts the `venue:<name>` subtree under a root and returns
the Tree; `ticker`/`balance`/`order` build requests; `wait_until` polls a condition.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import attrs

from actors import GetStatistics, Worker, venue_spec
from actors.names import GatewayNames
from ironclad.config import (
    BackoffConfig,
    BreakerSettings,
    Config,
    Credentials,
    NodeConfig,
    PoolConfig,
    RateLimitConfig,
    Secret,
    SupervisionConfig,
    VenueConfig,
)
from ironclad.node import supervisor_spec
from messages.exchange import Category, ExchangeRequest
from supervisors import Strategy, Tree, names, start_tree

VENUE = "sim"
NAMES = GatewayNames(VENUE)


def gateway_config(url: str | None, tmp_path: Path, *, exchange: str = "binance",
                   pool: dict[str, Any] | None = None, breaker: dict[str, Any] | None = None,
                   ratelimit: dict[str, Any] | None = None, intensity: int = 50) -> Config:
    """Fast test settings: short breaker windows and open times, a generous rate limit."""
    breaker_settings = {"window_size": 4.0, "minimum_calls": 4, "failure_rate_threshold": 0.5,
                        "half_open_probes": 1, "open_base": 0.3, "open_cap": 1.0,
                        "jitter": 0.0, **(breaker or {})}
    pool_settings = {"workers": 4, "health_interval": 30.0, **(pool or {})}
    limit = {"units_per_second": 10_000.0, **(ratelimit or {})}
    return Config(
        node=NodeConfig(data_dir=tmp_path),
        supervision=SupervisionConfig(intensity=intensity, period=5.0, backoff=BackoffConfig(
            initial=0.001, factor=2.0, max=0.01, jitter=0.1)),
        venue=VenueConfig(exchange=exchange, url=url, name=VENUE, timeout_ms=5000),
        pool=PoolConfig(**pool_settings),
        breaker=BreakerSettings(**breaker_settings),
        ratelimit=RateLimitConfig(**limit),
    )


DEMO = {"api_key": "demo-key", "api_secret": "demo-secret", "token": "demo-token"}


def start_gateway(config: Config, worker_class: type[Worker] = Worker) -> Tree:
    """The venue subtree under a root `node` with the venue's demo account; `tree.stop()` it."""
    config = attrs.evolve(config, credentials=Credentials(
        **{key: Secret(value) for key, value in DEMO.items()}))
    subtree = venue_spec(config, functools.partial(supervisor_spec, config), worker_class)
    return start_tree(supervisor_spec(config, "node", Strategy.ONE_FOR_ONE, [subtree]))


def statistics(name: str) -> Any:
    return names.ask(name, GetStatistics(), timeout=5.0)


def breaker_state(category: Category) -> str:
    stats = statistics(NAMES.gatekeeper)
    return stats.breakers[f"{VENUE}/{category.value}"].state.value


def ticker(symbol: str = "BTC/USDT", timeout: float = 3.0) -> ExchangeRequest:
    return ExchangeRequest.new(VENUE, "fetch_ticker", [symbol], category=Category.MARKET_DATA,
                               idempotent=True, timeout=timeout)


def balance(timeout: float = 3.0) -> ExchangeRequest:
    return ExchangeRequest.new(VENUE, "fetch_balance", category=Category.TRADING,
                               idempotent=True, timeout=timeout)


def order(client_order_id: str, *, side: str = "buy", amount: str = "0.001",
          timeout: float = 3.0, id_param: str = "newClientOrderId") -> ExchangeRequest:
    """A market order on BTC/USDT; `id_param` is the dialect's client order id parameter."""
    return ExchangeRequest.new(VENUE, "create_order", ["BTC/USDT", "market", side, amount],
                               {"params": {id_param: client_order_id}},
                               category=Category.TRADING, idempotent=False, timeout=timeout)
