"""The diskcache-backed market-data cache, on a real directory, with an injected wall clock."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.cache import Cached, MarketDataCache, MarketDataKind, kind_for_method
from gateway.errors import InvalidConfigError, NotJsonableError, UncacheableKindError

TICKER = {"symbol": "BTC/USDT", "bid": 100.5, "ask": 101.0, "last": 100.8, "info": {"x": "1"}}
T0 = 1_700_000_000.0


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[MarketDataCache]:
    with MarketDataCache(tmp_path, "binance", max_stale=60.0) as c:
        yield c


def test_fresh_then_stale_then_gone(cache: MarketDataCache) -> None:
    cache.put(MarketDataKind.TICKER, "BTC/USDT", TICKER, T0)
    assert cache.get("ticker", "BTC/USDT", T0 + 1.0) == Cached(TICKER, True, T0, 1.0)
    stale = cache.get(MarketDataKind.TICKER, "BTC/USDT", T0 + 30.0)
    assert stale is not None and not stale.fresh and stale.value == TICKER
    assert cache.get(MarketDataKind.TICKER, "BTC/USDT", T0 + 62.5) is None  # past TTL+max_stale
    assert cache.get(MarketDataKind.TICKER, "BTC/USDT", T0 + 1.0) is None  # and deleted


def test_ttl_per_kind(tmp_path: Path) -> None:
    with MarketDataCache(tmp_path, "v", ttls={MarketDataKind.ORDER_BOOK: 0.5}) as c:
        c.put("markets", "", [{"symbol": "BTC/USDT"}], T0)
        c.put("order_book", "BTC/USDT", {"bids": [[1.0, 2.0]], "asks": []}, T0)
        assert c.get("markets", "", T0 + 1800).fresh  # markets: one hour by default
        assert not c.get("order_book", "BTC/USDT", T0 + 0.6).fresh


def test_refuses_account_data_and_changes_nothing(cache: MarketDataCache) -> None:
    for kind in ("balance", "orders", "order", "my_trades", "open_orders"):
        with pytest.raises(UncacheableKindError):
            cache.put(kind, "BTC/USDT", {"free": {}}, T0)
        with pytest.raises(UncacheableKindError):
            cache.get(kind, "BTC/USDT", T0)
    assert len(cache) == 0


def test_only_json_values(cache: MarketDataCache) -> None:
    with pytest.raises(NotJsonableError):
        cache.put("ticker", "BTC/USDT", {"bid": Decimal("1.5")}, T0)
    with pytest.raises(NotJsonableError):
        cache.put("ticker", "BTC/USDT", {"bid": float("nan")}, T0)
    assert cache.get("ticker", "BTC/USDT", T0) is None


def test_venues_are_separate_and_survive_reopen(tmp_path: Path) -> None:
    with MarketDataCache(tmp_path, "binance") as a, MarketDataCache(tmp_path, "nobitex") as b:
        a.put("ticker", "BTC/USDT", TICKER, T0)
        assert b.get("ticker", "BTC/USDT", T0) is None
    with MarketDataCache(tmp_path, "binance") as again:
        assert again.get("ticker", "BTC/USDT", T0 + 1).value == TICKER


def test_clock_stepping_back_is_never_fresh(cache: MarketDataCache) -> None:
    cache.put("ticker", "BTC/USDT", TICKER, T0)
    got = cache.get("ticker", "BTC/USDT", T0 - 5.0)
    assert got is not None and not got.fresh


def test_bad_config_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError) as info:
        MarketDataCache(tmp_path, "v", ttls={MarketDataKind.TICKER: 0})
    assert info.value.field == "ttls[ticker]"
    with pytest.raises(InvalidConfigError) as info:
        MarketDataCache(tmp_path, "../escape")
    assert info.value.field == "venue"


def test_kind_for_method() -> None:
    assert kind_for_method("fetch_ticker") is MarketDataKind.TICKER
    assert kind_for_method("load_markets") is MarketDataKind.MARKETS
    assert kind_for_method("fetch_balance") is None
    assert kind_for_method("fetch_open_orders") is None
