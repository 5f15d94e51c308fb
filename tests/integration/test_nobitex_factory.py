"""``exchanges.create_client`` against the venue: stock ccxt.binance and our Nobitex.

The factory is what every worker uses, so it is checked end to end: all URLs on the venue,
spot-only market loading, exact decimal strings in results, and an order each way.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pytest
import requests

from exchanges import Nobitex, create_client
from simulator.server import RunningVenue, serve_in_thread


@pytest.fixture(scope="module")
def venue() -> Iterator[RunningVenue]:
    running = serve_in_thread()  # the default dialects: Binance and Nobitex
    try:
        yield running
    finally:
        running.stop()


def test_binance_client_trades_spot_on_the_venue(venue: RunningVenue) -> None:
    binance = create_client("binance", url=venue.url, api_key="demo-key", secret="demo-secret",
                            timeout_ms=5000)
    assert isinstance(binance, ccxt.binance)
    binance.load_markets()
    assert {"BTC/USDT", "ETH/USDT", "ETH/BTC"} <= set(binance.symbols)
    assert all(m["spot"] for m in binance.markets.values())
    ticker = binance.fetch_ticker("BTC/USDT")
    assert isinstance(ticker["bid"], str)
    assert Decimal(ticker["bid"]) == venue.venue.engine.ticker("BTC/USDT").bid
    order = binance.create_order("BTC/USDT", "market", "buy", "0.001", None,
                                 {"newClientOrderId": "factory-1"})
    assert order["status"] == "closed"
    orders = requests.get(venue.url + "/_sim/orders", params={"account": "demo-key"},
                          timeout=5).json()
    assert [o["client_order_id"] for o in orders] == ["factory-1"]


def test_nobitex_client_on_the_same_venue_sees_the_same_account(venue: RunningVenue) -> None:
    nobitex = create_client("nobitex", url=venue.url, token="demo-token", timeout_ms=5000)
    assert isinstance(nobitex, Nobitex)
    balance = nobitex.fetch_balance()
    truth = venue.venue.engine.balance("demo-key", "BTC")
    assert Decimal(balance["BTC"]["free"]) == truth.free
    assert isinstance(balance["BTC"]["free"], str)


def test_no_request_leaves_for_the_real_exchange(venue: RunningVenue) -> None:
    for exchange_id in ("binance", "nobitex"):
        client = create_client(exchange_id, url=venue.url, api_key="k", secret="s", token="t")
        stack = [client.urls["api"]]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                stack.extend(node.values())
            elif isinstance(node, str) and "://" in node:
                assert node.startswith(venue.url), node
