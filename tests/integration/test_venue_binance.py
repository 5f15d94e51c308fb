"""Stock ``ccxt.binance`` against the venue over real HTTP: every call the system uses parses,
agrees with the ``/_sim`` ground truth, and each refusal raises the class real Binance causes."""

from __future__ import annotations

import time
from decimal import Decimal as D

import ccxt
import pytest

from tests.helpers_venue import admin, binance_client, running_venue

SYMBOL = "BTC/USDT"


@pytest.fixture(scope="module")
def venue():
    with running_venue(seed=1) as handle:
        yield handle


@pytest.fixture
def exchange(venue):
    admin(venue.url, "/_sim/reset", "POST")
    exchange = binance_client(venue.url)
    exchange.load_markets()
    return exchange


def truth_orders(venue, account="demo-key"):
    return {o["id"]: o for o in admin(venue.url, f"/_sim/orders?account={account}")}


def test_load_markets_reflects_venue_filters(exchange):
    market = exchange.market(SYMBOL)
    assert market["spot"] and market["active"] and market["id"] == "BTCUSDT"
    assert market["precision"]["amount"] == 0.00001 and market["precision"]["price"] == 0.01
    assert market["limits"]["cost"]["min"] == 5 and market["limits"]["amount"]["min"] == 0.00001
    assert {"BTC/USDT", "ETH/USDT", "ETH/BTC"} <= set(exchange.symbols)


def test_ticker_and_order_book_are_consistent(exchange):
    ticker = exchange.fetch_ticker(SYMBOL)
    book = exchange.fetch_order_book(SYMBOL, limit=5)
    assert ticker["symbol"] == SYMBOL and ticker["bid"] < ticker["ask"]
    assert len(book["bids"]) == 5 and len(book["asks"]) == 5
    assert book["bids"][0][0] < book["asks"][0][0]
    assert book["bids"][0][0] <= ticker["ask"] and book["asks"][0][0] >= ticker["bid"]


def test_balance_matches_ground_truth(venue, exchange):
    balance = exchange.fetch_balance()
    truth = admin(venue.url, "/_sim/balances")["demo-key"]
    for currency in ("USDT", "BTC", "ETH"):
        assert D(str(balance[currency]["free"])) == D(truth[currency]["free"])
        assert D(str(balance[currency]["used"])) == D(truth[currency]["locked"])


def test_limit_order_lifecycle_by_id_and_client_id(venue, exchange):
    created = exchange.create_order(SYMBOL, "limit", "buy", 0.01, 50000,
                                    {"newClientOrderId": "lifecycle-1"})
    assert created["status"] == "open" and created["clientOrderId"] == "lifecycle-1"
    assert created["price"] == 50000 and created["amount"] == 0.01
    by_id = exchange.fetch_order(created["id"], SYMBOL)
    by_client = exchange.fetch_order(None, SYMBOL, {"clientOrderId": "lifecycle-1"})
    assert by_id["id"] == by_client["id"] == created["id"]
    assert [o["id"] for o in exchange.fetch_open_orders(SYMBOL)] == [created["id"]]
    assert exchange.fetch_balance()["USDT"]["used"] == 500
    truth = truth_orders(venue)[int(created["id"])]
    assert truth["client_order_id"] == "lifecycle-1" and truth["status"] == "new"
    assert D(truth["price"]) == D("50000") and truth["symbol"] == SYMBOL
    canceled = exchange.cancel_order(created["id"], SYMBOL)
    assert canceled["status"] == "canceled"
    assert exchange.fetch_open_orders(SYMBOL) == []
    assert truth_orders(venue)[int(created["id"])]["status"] == "canceled"
    assert exchange.fetch_order(created["id"], SYMBOL)["status"] == "canceled"


def test_market_order_fills_and_trades_match_ground_truth(venue, exchange):
    order = exchange.create_order(SYMBOL, "market", "buy", 0.02,
                                  params={"newClientOrderId": "mkt-1"})
    assert order["status"] == "closed" and order["filled"] == 0.02
    assert order["clientOrderId"] == "mkt-1" and order["trades"]
    trades = exchange.fetch_my_trades(SYMBOL)
    truth = admin(venue.url, "/_sim/trades?account=demo-key")
    assert [int(t["id"]) for t in trades] == [t["id"] for t in truth]
    assert sum(t["amount"] for t in trades) == pytest.approx(0.02)
    for mine, real in zip(trades, truth, strict=True):
        assert mine["order"] == str(real["order_id"]) and mine["side"] == "buy"
        assert D(str(mine["price"])) == D(real["price"])
        assert mine["fee"]["currency"] == real["fee_currency"] == "BTC"
    assert exchange.fetch_my_trades(SYMBOL, params={"orderId": order["id"]}) == trades
    assert truth_orders(venue)[int(order["id"])]["status"] == "filled"
    assert admin(venue.url, "/_sim/audit")["problems"] == []


def test_sell_limit_crossing_the_book_fills_at_maker_price(exchange):
    bid = exchange.fetch_ticker(SYMBOL)["bid"]
    order = exchange.create_order(SYMBOL, "limit", "sell", 0.01, bid - 100)
    assert order["status"] == "closed" and order["average"] == bid


def test_duplicate_client_order_id_is_invalid_order(venue, exchange):
    exchange.create_order(SYMBOL, "limit", "buy", 0.01, 50000, {"newClientOrderId": "dup-1"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        exchange.create_order(SYMBOL, "limit", "buy", 0.01, 50000, {"newClientOrderId": "dup-1"})
    assert sum(o["client_order_id"] == "dup-1" for o in truth_orders(venue).values()) == 1


def test_insufficient_funds(exchange):
    with pytest.raises(ccxt.InsufficientFunds):
        exchange.create_order(SYMBOL, "limit", "buy", 1000, 50000)


def test_below_min_notional_is_bad_request(exchange):
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        exchange.create_order(SYMBOL, "limit", "buy", 0.00001, 50000)


def test_lot_size_and_price_filter_are_invalid_order(exchange):
    # bypass ccxt's own rounding so the venue sees the raw values
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        exchange.private_post_order({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                     "timeInForce": "GTC", "quantity": "0.000015",
                                     "price": "50000"})
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        exchange.private_post_order({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                     "timeInForce": "GTC", "quantity": "0.01",
                                     "price": "50000.001"})


def test_unknown_orders(exchange):
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        exchange.fetch_order("987654321", SYMBOL)
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        exchange.cancel_order("987654321", SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):
        exchange.fetch_order(None, SYMBOL, {"clientOrderId": "never-sent"})


def test_bad_signature_and_unknown_key_are_authentication_errors(venue):
    bad_secret = binance_client(venue.url, secret="wrong")
    bad_secret.load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        bad_secret.fetch_balance()
    unknown = binance_client(venue.url, api_key="nobody", secret="x")
    unknown.load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        unknown.fetch_balance()


def test_expired_timestamp_is_invalid_nonce(venue):
    late = binance_client(venue.url)
    late.load_markets()
    late.options["timeDifference"] = 60_000  # ccxt subtracts it: our requests look a minute old
    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        late.fetch_balance()
    early = binance_client(venue.url)
    early.load_markets()
    early.options["timeDifference"] = -5_000
    with pytest.raises(ccxt.InvalidNonce, match="ahead"):
        early.fetch_balance()


def test_fetch_time_and_all_orders(exchange):
    assert abs(exchange.fetch_time() - time.time() * 1000) < 5000
    created = exchange.create_order(SYMBOL, "limit", "buy", 0.01, 50000)
    assert [o["id"] for o in exchange.fetch_orders(SYMBOL)][-1] == created["id"]


def test_public_trades_show_the_tape(exchange):
    exchange.create_order(SYMBOL, "market", "buy", 0.01)
    exchange.create_order(SYMBOL, "market", "sell", 0.02)
    public = exchange.fetch_trades(SYMBOL)
    assert [t["side"] for t in public[-2:]] == ["buy", "sell"]
    assert public[-1]["amount"] == 0.02
    raw = exchange.fetch_trades(SYMBOL, params={"fetchTradesMethod": "publicGetTrades"})
    assert [t["id"] for t in raw] == [t["id"] for t in public]
