"""The registry: keys, listing, listeners, idle eviction of per-method breakers."""

from __future__ import annotations

import random

import pytest

from gateway.breaker import BreakerConfig, BreakerState, Permit, Transition
from gateway.breaker_registry import BreakerKey, BreakerRegistry
from gateway.classify import Outcome
from gateway.errors import ForeignPermitError, InvalidConfigError

CONFIG = BreakerConfig(window_size=2, minimum_calls=2, open_base=5.0, open_cap=5.0, jitter=0.0)


def trip(registry: BreakerRegistry, key: BreakerKey, now: float) -> None:
    breaker = registry.get(key, now)
    for _ in range(2):
        p = breaker.acquire(now)
        assert isinstance(p, Permit)
        breaker.on_failure(p, 0.1, now)


def test_one_breaker_per_key_and_listing() -> None:
    registry = BreakerRegistry(CONFIG, rng=random.Random(1))
    market = BreakerKey("binance", "market_data")
    trading = BreakerKey("binance", "trading")
    assert registry.get(market, 0.0) is registry.get(market, 1.0)
    registry.get(trading, 0.0)
    registry.get(BreakerKey("binance", "trading", "create_order"), 0.0)
    trip(registry, trading, 2.0)
    snapshot = registry.snapshot(3.0)
    assert set(snapshot) == {market, trading, BreakerKey("binance", "trading", "create_order")}
    assert snapshot[trading].state is BreakerState.OPEN
    assert snapshot[market].state is BreakerState.CLOSED
    assert str(BreakerKey("binance", "trading", "create_order")) == "binance/trading/create_order"


def test_listeners_receive_key_and_transition() -> None:
    registry = BreakerRegistry(CONFIG)
    seen: list[tuple[BreakerKey, Transition]] = []
    registry.add_listener(lambda key, t: seen.append((key, t)))
    key = BreakerKey("nobitex", "trading")
    trip(registry, key, 0.0)
    assert [(k, t.to_state) for k, t in seen] == [(key, BreakerState.OPEN)]


def test_config_per_key() -> None:
    def config_for(key: BreakerKey) -> BreakerConfig:
        probes = 1 if key.category == "trading" else 5
        return BreakerConfig(half_open_probes=probes)

    registry = BreakerRegistry(config_for)
    assert registry.get(BreakerKey("v", "trading"), 0).config.half_open_probes == 1
    assert registry.get(BreakerKey("v", "market_data"), 0).config.half_open_probes == 5


def test_idle_per_method_breakers_are_evicted_only_when_healthy() -> None:
    registry = BreakerRegistry(CONFIG, idle_ttl=60.0)
    venue = BreakerKey("binance", "market_data")
    healthy = BreakerKey("binance", "market_data", "fetch_ticker")
    failing = BreakerKey("binance", "market_data", "fetch_trades")
    registry.get(venue, 0.0)
    registry.get(healthy, 0.0)
    registry.get(BreakerKey("binance", "trading", "cancel_order"), 0.0).force_open(0.0)
    trip(registry, failing, 58.0)
    assert registry.evict_idle(59.0) == []  # nothing idle for longer than the TTL yet
    evicted = registry.evict_idle(61.0)
    assert evicted == [healthy]  # venue-wide never evicted; the failing one is still open
    assert registry.find(healthy) is None
    assert registry.find(failing) is not None
    # idle long enough now, but it is half-open (awaiting probes), not closed: kept.
    assert failing not in registry.evict_idle(119.0)
    assert registry.find(venue) is not None
    assert len(registry) == 3


def test_thousands_of_endpoints_do_not_accumulate() -> None:
    registry = BreakerRegistry(CONFIG, idle_ttl=10.0)
    for i in range(5000):
        now = float(i) / 100
        registry.get(BreakerKey("v", "market_data", f"endpoint-{i}"), now)
        if i % 500 == 0:
            registry.evict_idle(now)
    assert len(registry) <= 1500


def test_idle_ttl_must_be_positive() -> None:
    with pytest.raises(InvalidConfigError) as info:
        BreakerRegistry(CONFIG, idle_ttl=0)
    assert info.value.field == "idle_ttl"


def test_record_routes_classified_outcomes() -> None:
    registry = BreakerRegistry(CONFIG)
    key = BreakerKey("binance", "trading", "create_order")
    other = BreakerKey("binance", "trading", "cancel_order")
    for outcome in (Outcome.IGNORED, Outcome.FAILURE, Outcome.FAILURE):
        permit = registry.get(key, 0.0).acquire(0.0)
        assert isinstance(permit, Permit)
        assert registry.record(key, permit, outcome, 0.1, 0.0)
    assert registry.get(key, 0.0).state is BreakerState.OPEN
    assert registry.snapshot(0.0)[key].ignored == 1
    stray = registry.get(other, 0.0).acquire(0.0)
    assert isinstance(stray, Permit)
    with pytest.raises(ForeignPermitError):
        registry.record(key, stray, Outcome.SUCCESS, 0.1, 0.0)
    registry.get(other, 0.0)
    assert registry.evict_idle(1000.0) == [other]
    assert registry.record(other, stray, Outcome.SUCCESS, 0.1, 1000.0) is False
