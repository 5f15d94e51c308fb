"""The venue subtree spec is built from config: children, names, credentials, breaker tuning."""

from __future__ import annotations

import functools

import attrs

from actors.venue import (
    DEMO_CREDENTIALS,
    breaker_config,
    client_settings,
    unified_methods,
    venue_spec,
)
from gateway.breaker import WindowKind
from ironclad.config import BreakerSettings, Config, Credentials, PoolConfig, Secret, VenueConfig
from ironclad.node import build_node_spec, supervisor_spec
from supervisors import Strategy, check_child_specs


def spec_names(config: Config) -> tuple[str, ...]:
    return check_child_specs(build_node_spec(config))


def test_default_node_runs_the_embedded_venue_and_the_whole_path() -> None:
    names = spec_names(Config(pool=PoolConfig(workers=2)))
    assert [n for n in names if n.startswith("venue:sim")] == [
        "venue:sim", "venue:sim/embedded-venue", "venue:sim/rate-limiter", "venue:sim/pool",
        "venue:sim/pool/dispatcher", "venue:sim/pool/worker-1", "venue:sim/pool/worker-2",
        "venue:sim/gatekeeper"]


def test_a_configured_url_means_no_embedded_venue() -> None:
    config = Config(venue=VenueConfig(url="http://127.0.0.1:9", name="main"))
    spec = venue_spec(config, functools.partial(supervisor_spec, config))
    assert spec.id == "venue:main" and spec.strategy is Strategy.REST_FOR_ONE
    assert [c.id for c in spec.children] == ["rate-limiter", "pool", "gatekeeper"]


def test_demo_keys_only_for_the_embedded_venue_without_credentials() -> None:
    embedded = client_settings(Config())
    assert (embedded.api_key, embedded.secret) == (DEMO_CREDENTIALS["api_key"],
                                                   DEMO_CREDENTIALS["secret"])
    remote = client_settings(Config(venue=VenueConfig(url="http://127.0.0.1:9")))
    assert remote.api_key is None and remote.secret is None
    given = attrs.evolve(Config(), credentials=Credentials(api_key=Secret("k"),
                                                           api_secret=Secret("s")))
    settings = client_settings(given)
    assert (settings.api_key, settings.secret) == ("k", "s")
    assert "k" not in repr(settings) and "'s'" not in repr(settings)


def test_breaker_tuning_comes_from_the_breaker_section() -> None:
    cfg = breaker_config(Config(breaker=BreakerSettings(window_kind="time", window_size=30.0,
                                                        minimum_calls=7, open_base=2.0)))
    assert cfg.window_kind is WindowKind.TIME and cfg.window_size == 30.0
    assert cfg.minimum_calls == 7 and cfg.open_base == 2.0
    assert breaker_config(Config()).window_kind is WindowKind.COUNT


def test_requests_may_name_only_unified_methods() -> None:
    methods = unified_methods("binance")
    assert {"fetch_ticker", "fetch_balance", "create_order", "load_markets"} <= methods
    assert not {"fetch", "request", "sign", "public_get_ticker_24hr"} & methods
    assert "create_order" in unified_methods("nobitex")
