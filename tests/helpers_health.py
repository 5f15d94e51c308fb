"""Helpers for the health, metrics and observability tests: a whole node in-process against a
venue, its control API's base URL, the Prometheus exposition parsed, market-data calls."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
from prometheus_client.parser import text_string_to_metric_families

from actors.api import call as exchange_call
from actors.control_api import CONTROL_API, ServerAddress
from ironclad.config import (
    AlertRulesConfig,
    AlertsConfig,
    BreakerSettings,
    Config,
    Credentials,
    HealthConfig,
    HttpConfig,
    NodeConfig,
    TradingConfig,
    VenueConfig,
)
from ironclad.node import build_node_spec
from messages.exchange import Category, ExchangeReply, ExchangeRequest
from supervisors import Tree, ask, start_tree
from tests.helpers_control_api import request

ENV = {"IRONCLAD_API_KEY": "demo-key", "IRONCLAD_API_SECRET": "demo-secret",
       "IRONCLAD_API_TOKEN": "demo-token"}

#: Breakers that open after a few failures and probe again soon (tests wait on them).
QUICK_BREAKER = BreakerSettings(window_size=4, minimum_calls=2, failure_rate_threshold=0.5,
                                half_open_probes=1, open_base=0.5, open_cap=1.0, jitter=0.0)


def node_config(data_dir: Path, venue_url: str, **sections: Any) -> Config:
    """A node against ``venue_url``: API on a free port, quick health polls, alerts fired at
    once on the log channel (sections given override these)."""
    config = Config(
        node=NodeConfig(data_dir=data_dir),
        venue=VenueConfig(url=venue_url),
        http=HttpConfig(port=0),
        breaker=QUICK_BREAKER,
        trading=TradingConfig(reconcile_retry=0.5),
        health=HealthConfig(poll_interval=0.2, ask_timeout=2.0),
        alerts=AlertsConfig(channels=("log://",), group_wait=0.0, group_interval=1.0,
                            evaluation_interval=0.1, throttle=0.0,
                            rules=AlertRulesConfig(breaker_open_seconds=0.0,
                                                   health_for_seconds=0.0)),
    )
    config = attrs.evolve(config, **sections)
    return attrs.evolve(config, credentials=Credentials.from_env(config.venue, ENV))


@contextmanager
def running_node(config: Config) -> Iterator[tuple[Tree, str]]:
    """The node's tree started in-process; yields it and the control API's base URL."""
    tree = start_tree(build_node_spec(config))
    try:
        host, port = ask(CONTROL_API, ServerAddress(), timeout=10)
        yield tree, f"http://{host}:{port}"
    finally:
        assert tree.stop(timeout=20)


def metric_samples(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET /metrics parsed by the Prometheus parser: {(sample name, labels): value}."""
    status, headers, raw = request(base, "GET", "/metrics")
    assert status == 200, raw
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    found = {}
    for family in text_string_to_metric_families(raw.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def sample(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float | None:
    """One sample's value, None if absent."""
    return found.get((name, frozenset(labels.items())))


def ticker(venue: str = "sim") -> ExchangeReply:
    """One market-data call through the gateway (gatekeeper → pool → worker → venue)."""
    return exchange_call(ExchangeRequest.new(venue, "fetch_ticker", ("BTC/USDT",),
                                             category=Category.MARKET_DATA, idempotent=True,
                                             timeout=5.0))
