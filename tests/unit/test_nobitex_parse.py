"""Nobitex adapter without a network: parsing of the docs' own samples, signing, error map.

Samples are the JSON examples of nobitex/docs-api (market-trade.md, market-data.md,
user-data.md, general-notes.md, other.md), so these tests pin the adapter to the real dialect.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import ccxt
import pytest

from exchanges import RateLimitBackOff, UnknownExchange, create_client
from exchanges.nobitex import Nobitex

OPTIONS = {
    "status": "ok",
    "coins": [
        {"coin": "rls", "name": "Rial", "stdName": "\ufdfc"},
        {"coin": "btc", "name": "Bitcoin", "stdName": "بیت‌کوین"},
        {"coin": "usdt", "name": "Tether", "stdName": "تتر"},
        {"coin": "ltc", "name": "Litecoin"},
    ],
    "nobitex": {
        "minOrders": {"rls": "3000000", "usdt": "11", "2": "3000000", "13": "11"},
        "amountPrecisions": {"BTCIRT": "0.000001", "BTCUSDT": "0.000001", "USDTIRT": "0.01",
                             "LTCIRT": "0.001", "WEIRD": "1"},
        "pricePrecisions": {"BTCIRT": "10", "BTCUSDT": "0.01", "USDTIRT": "10", "LTCIRT": "10",
                            "WEIRD": "1"},
    },
}


class _Offline(Nobitex):
    """Nobitex whose transport is a table of canned answers keyed by path (no sockets)."""

    def __init__(self, answers: dict, **config: object) -> None:
        super().__init__({"token": "tok-123456", **config})
        self.answers = answers
        self.sent: list[tuple[str, str, dict]] = []
        self.number = str  # as create_client sets it: exact decimal strings

    def request(self, path, api=None, method="GET", params=None, config=None):  # noqa: ANN001
        params = params or {}
        self.sent.append((method, path, dict(params)))
        answer = self.answers[path]
        return answer(params) if callable(answer) else answer


def dec(value: object) -> object:
    """Numbers in results are exact decimal strings; compare them as Decimals."""
    if isinstance(value, dict):
        return {k: dec(v) for k, v in value.items()}
    if isinstance(value, list):
        return [dec(v) for v in value]
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return value
    return value


@pytest.fixture
def nobitex() -> _Offline:
    client = _Offline({"v2/options": OPTIONS})
    client.load_markets()
    return client


def test_markets_come_from_options_with_irt_in_tomans(nobitex: _Offline) -> None:
    assert set(nobitex.symbols) == {"BTC/IRT", "BTC/USDT", "USDT/IRT", "LTC/IRT"}
    btc_irt = nobitex.market("BTC/IRT")
    assert (btc_irt["id"], btc_irt["baseId"], btc_irt["quoteId"]) == ("BTCIRT", "btc", "rls")
    assert dec(btc_irt["precision"]["price"]) == Decimal("1")  # 10 rials
    assert dec(btc_irt["precision"]["amount"]) == Decimal("0.000001")
    assert dec(btc_irt["limits"]["cost"]["min"]) == Decimal("300000")  # 3 000 000 rials
    btc_usdt = nobitex.market("BTC/USDT")
    assert dec(btc_usdt["limits"]["cost"]["min"]) == Decimal("11")
    assert dec(btc_usdt["precision"]["price"]) == Decimal("0.01")


def test_ticker_from_stats_converts_rials(nobitex: _Offline) -> None:
    nobitex.answers["market/stats"] = {"status": "ok", "stats": {"btc-rls": {
        "isClosed": False, "bestSell": "749976360", "bestBuy": "733059600",
        "volumeSrc": "0.2929480000", "volumeDst": "212724856.0678640000", "latest": "750350000",
        "mark": "747461987", "dayLow": "686021860", "dayHigh": "750350000",
        "dayOpen": "686021860", "dayClose": "750350000", "dayChange": "9.38"}}}
    ticker = nobitex.fetch_ticker("BTC/IRT")
    assert nobitex.sent[-1] == ("GET", "market/stats", {"srcCurrency": "btc", "dstCurrency": "rls"})
    assert dec(ticker["bid"]) == Decimal("73305960")
    assert dec(ticker["ask"]) == Decimal("74997636")
    assert dec(ticker["last"]) == Decimal("75035000")
    assert dec(ticker["baseVolume"]) == Decimal("0.2929480000")
    assert dec(ticker["quoteVolume"]) == Decimal("21272485.606786400")
    assert dec(ticker["percentage"]) == Decimal("9.38")


def test_ticker_of_a_market_without_stats_is_bad_symbol(nobitex: _Offline) -> None:
    nobitex.answers["market/stats"] = {"status": "ok", "stats": {}}
    with pytest.raises(ccxt.BadSymbol):
        nobitex.fetch_ticker("BTC/IRT")


def test_order_book_sorted_and_converted(nobitex: _Offline) -> None:
    nobitex.answers["v3/orderbook/{symbol}"] = {
        "status": "ok", "lastUpdate": 1644991756704, "lastTradePrice": "35650565900",
        "asks": [["1479700000", "0.2561"], ["1476091000", "1.016"]],
        "bids": [["1470000000", "0.818994"], ["1470001120", "0.126571"]]}
    book = nobitex.fetch_order_book("BTC/IRT", limit=1)
    assert nobitex.sent[-1][2] == {"symbol": "BTCIRT"}
    assert dec(book["asks"]) == [[Decimal("147609100"), Decimal("1.016")]]
    assert dec(book["bids"]) == [[Decimal("147000112"), Decimal("0.126571")]]
    assert book["timestamp"] == 1644991756704


def test_public_trades(nobitex: _Offline) -> None:
    nobitex.answers["v2/trades/{symbol}"] = {"status": "ok", "trades": [
        {"time": 1588689375067, "price": "1470000110", "volume": "0.002", "type": "sell"},
        {"time": 1588689360464, "price": "1470000110", "volume": "0.001", "type": "buy"}]}
    trades = nobitex.fetch_trades("BTC/IRT")
    assert [t["timestamp"] for t in trades] == [1588689360464, 1588689375067]
    assert dec(trades[0]["price"]) == Decimal("147000011")
    assert dec(trades[0]["amount"]) == Decimal("0.001")
    assert dec(trades[0]["cost"]) == Decimal("147000.011")
    assert trades[0]["side"] == "buy"


def test_balance_converts_the_rial_wallet_only(nobitex: _Offline) -> None:
    nobitex.answers["users/wallets/list"] = {"status": "ok", "wallets": [
        {"id": 1, "currency": "rls", "balance": "746212980", "blockedBalance": "10",
         "activeBalance": "746212970"},
        {"id": 2, "currency": "btc", "balance": "1.5", "blockedBalance": "0.5",
         "activeBalance": "1.0"}]}
    balance = nobitex.fetch_balance()
    assert dec(balance["IRT"]) == {"free": Decimal("74621297"), "used": Decimal("1"),
                              "total": Decimal("74621298")}
    assert dec(balance["BTC"]["free"]) == Decimal("1.0")
    assert dec(balance["BTC"]["used"]) == Decimal("0.5")


def test_create_order_sends_wire_units_and_client_id(nobitex: _Offline) -> None:
    nobitex.answers["market/orders/add"] = {"status": "ok", "order": {
        "type": "buy", "execution": "Limit", "market": "BTC-RLS", "srcCurrency": "Bitcoin",
        "dstCurrency": "\ufdfc", "price": "520000000", "amount": "0.6",
        "totalPrice": "0", "totalOrderPrice": "312000000", "matchedAmount": "0",
        "unmatchedAmount": "0.6", "id": 25, "status": "Active", "partial": False, "fee": "0",
        "created_at": "2018-11-28T11:36:13.592827+00:00", "clientOrderId": "order1"}}
    order = nobitex.create_order("BTC/IRT", "limit", "buy", "0.6000009", "52000000.4",
                                 {"clientOrderId": "order1"})
    method, path, sent = nobitex.sent[-1]
    assert (method, path) == ("POST", "market/orders/add")
    assert sent == {"type": "buy", "execution": "limit", "srcCurrency": "btc",
                    "dstCurrency": "rls", "amount": "0.6", "price": "520000000",
                    "clientOrderId": "order1"}
    assert order["id"] == "25"
    assert order["clientOrderId"] == "order1"
    assert order["status"] == "open"
    assert dec(order["price"]) == Decimal("52000000")
    assert dec(order["remaining"]) == Decimal("0.6")
    assert order["symbol"] == "BTC/IRT"


def test_client_order_id_longer_than_32_is_refused_before_sending(nobitex: _Offline) -> None:
    with pytest.raises(ccxt.InvalidOrder):
        nobitex.create_order("BTC/USDT", "limit", "buy", "1", "100", {"clientOrderId": "x" * 33})
    assert all(path != "market/orders/add" for _, path, _ in nobitex.sent)


def test_limit_order_without_price_is_refused(nobitex: _Offline) -> None:
    with pytest.raises(ccxt.ArgumentsRequired):
        nobitex.create_order("BTC/USDT", "limit", "buy", "1")


def test_parse_order_status_done_with_fee_and_names_only(nobitex: _Offline) -> None:
    order = nobitex.parse_order({
        "id": 5684, "type": "sell", "execution": "Limit", "srcCurrency": "Litecoin",
        "dstCurrency": "\ufdfc", "price": "8500000.0000000000", "amount": "3.0000000000",
        "matchedAmount": "3.0000000000", "unmatchedAmount": "0E-10",
        "averagePrice": "8500000", "fee": "25500", "status": "Done",
        "created_at": "2018-11-28T12:25:22.696029+00:00", "clientOrderId": None})
    assert order["symbol"] == "LTC/IRT"
    assert order["status"] == "closed"
    assert dec(order["filled"]) == Decimal("3")
    assert dec(order["cost"]) == Decimal("2550000")
    assert dec(order["average"]) == Decimal("850000")
    assert dec(order["fee"]) == {"cost": Decimal("2550"), "currency": "IRT"}


@pytest.mark.parametrize(("wire", "unified"), [
    ("Active", "open"), ("Inactive", "open"), ("New", "open"), ("Done", "closed"),
    ("Canceled", "canceled")])
def test_order_statuses(nobitex: _Offline, wire: str, unified: str) -> None:
    assert nobitex.parse_order_status(wire) == unified


def test_my_trades_fee_currency_follows_side(nobitex: _Offline) -> None:
    nobitex.answers["market/trades/list"] = {"status": "ok", "hasNext": False, "trades": [
        {"id": 123412, "orderId": 1231222, "srcCurrency": "Tether", "dstCurrency": "\ufdfc",
         "market": "USDT-RLS", "timestamp": "2022-07-05T09:57:38.560820+00:00", "type": "sell",
         "price": "316800", "amount": "57.3605", "total": "18171806.4", "fee": "27257.7096"}]}
    (trade,) = nobitex.fetch_my_trades("USDT/IRT")
    assert nobitex.sent[-1][2] == {"srcCurrency": "usdt", "dstCurrency": "rls"}
    assert trade["symbol"] == "USDT/IRT"
    assert trade["order"] == "1231222"
    assert dec(trade["price"]) == Decimal("31680")
    assert dec(trade["cost"]) == Decimal("1817180.64")
    assert trade["fee"]["currency"] == "IRT"
    assert dec(trade["fee"]["cost"]) == Decimal("2725.77096")


def test_fetch_order_by_client_id_falls_back_to_the_list(nobitex: _Offline) -> None:
    def status(params: dict) -> dict:
        nobitex.handle_errors(200, "OK", "u", "POST", {}, '{"status":"failed"}',
                              {"status": "failed", "code": "NotFound",
                               "message": "order not found"}, None, None)
        raise AssertionError("handle_errors should have raised")

    nobitex.answers["market/orders/status"] = status
    nobitex.answers["market/orders/list"] = {"status": "ok", "orders": [
        {"id": 9, "type": "buy", "execution": "Limit", "market": "BTC-USDT", "price": "100",
         "amount": "1", "matchedAmount": "1", "unmatchedAmount": "0", "status": "Done",
         "clientOrderId": "other", "created_at": "2024-01-01T00:00:00+00:00"},
        {"id": 7, "type": "buy", "execution": "Limit", "market": "BTC-USDT", "price": "100",
         "amount": "1", "matchedAmount": "1", "unmatchedAmount": "0", "status": "Done",
         "clientOrderId": "mine", "created_at": "2024-01-01T00:00:00+00:00"}]}
    order = nobitex.fetch_order(None, "BTC/USDT", {"clientOrderId": "mine"})
    assert order["id"] == "7"
    assert order["status"] == "closed"
    assert nobitex.sent[-1][2]["status"] == "all"
    with pytest.raises(ccxt.OrderNotFound):
        nobitex.fetch_order(None, "BTC/USDT", {"clientOrderId": "absent"})


def test_fetch_order_needs_an_id_or_client_id(nobitex: _Offline) -> None:
    with pytest.raises(ccxt.ArgumentsRequired):
        nobitex.fetch_order(None)


def _fail(client: Nobitex, body: dict, status: int = 200) -> None:
    import json
    client.handle_errors(status, "", "http://venue/market/orders/add", "POST", {},
                         json.dumps(body), body, None, None)


@pytest.mark.parametrize(("code", "error"), [
    ("OverValueOrder", ccxt.InsufficientFunds),
    ("SmallOrder", ccxt.InvalidOrder),
    ("DuplicateClientOrderId", ccxt.DuplicateOrderId),
    ("DuplicateOrder", ccxt.InvalidOrder),
    ("InvalidOrderPrice", ccxt.InvalidOrder),
    ("BadPrice", ccxt.InvalidOrder),
    ("InvalidMarketPair", ccxt.BadSymbol),
    ("MarketClosed", ccxt.MarketClosed),
    ("TradingUnavailable", ccxt.PermissionDenied),
    ("NullIdAndClientOrderId", ccxt.ArgumentsRequired),
    ("NotFound", ccxt.OrderNotFound),
    ("SomethingNew", ccxt.ExchangeError),
])
def test_status_failed_with_http_200_raises_by_code(nobitex: _Offline, code: str,
                                                    error: type) -> None:
    with pytest.raises(error) as caught:
        _fail(nobitex, {"status": "failed", "code": code, "message": "m"})
    assert type(caught.value) is error


def test_ok_answer_passes(nobitex: _Offline) -> None:
    assert _fail(nobitex, {"status": "ok"}) is None


def test_429_carries_back_off_seconds(nobitex: _Offline) -> None:
    with pytest.raises(RateLimitBackOff) as caught:
        _fail(nobitex, {"status": "failed", "code": "TooManyRequests", "message": "wait",
                        "backOff": 12, "limit": 60}, status=429)
    assert dec(caught.value.retry_after_seconds) == Decimal("12")
    assert isinstance(caught.value, ccxt.RateLimitExceeded)
    assert isinstance(caught.value, ccxt.NetworkError)


def test_bad_token_is_authentication_error(nobitex: _Offline) -> None:
    with pytest.raises(ccxt.AuthenticationError):
        _fail(nobitex, {"detail": "Invalid token."}, status=401)


def test_sign_puts_the_token_in_the_header_and_json_in_the_body(nobitex: _Offline) -> None:
    signed = nobitex.sign("market/orders/add", ["private"], "POST", {"amount": "1"})
    assert signed["headers"]["Authorization"] == "Token tok-123456"
    assert signed["headers"]["Content-Type"] == "application/json"
    assert signed["body"] == '{"amount":"1"}' or signed["body"] == '{"amount": "1"}'
    public = nobitex.sign("v3/orderbook/{symbol}", ["public"], "GET", {"symbol": "BTCIRT"})
    assert public["url"].endswith("/v3/orderbook/BTCIRT")
    assert "Authorization" not in public["headers"]


def test_private_call_without_token_is_authentication_error() -> None:
    client = Nobitex({})
    with pytest.raises(ccxt.AuthenticationError):
        client.sign("users/wallets/list", ["private"], "GET", {})


def test_token_is_redacted_from_ccxt_logs(caplog: pytest.LogCaptureFixture) -> None:
    client = Nobitex({"token": "very-secret-token", "verbose": False})
    with caplog.at_level(logging.DEBUG):
        client.logger.debug("%s %s, Request: %s %s", "GET", "url",
                            {"Authorization": "Token very-secret-token"}, None)
    assert caplog.records
    assert "very-secret-token" not in caplog.text
    assert "***" in caplog.text


def test_factory_points_every_url_at_the_venue() -> None:
    binance = create_client("binance", url="http://127.0.0.1:1/", api_key="k", secret="s")
    urls = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, str):
            urls.append(node)

    walk(binance.urls["api"])
    assert urls and all(u.startswith("http://127.0.0.1:1") for u in urls if "://" in u)
    assert binance.options["fetchMarkets"]["types"] == ["spot"]
    assert binance.enableRateLimit is False
    assert binance.number is str
    nobitex = create_client("nobitex", url="http://127.0.0.1:2", token="t", timeout_ms=1234)
    assert isinstance(nobitex, Nobitex)
    assert nobitex.urls["api"] == {"public": "http://127.0.0.1:2", "private": "http://127.0.0.1:2"}
    assert nobitex.timeout == 1234
    with pytest.raises(UnknownExchange):
        create_client("no-such-exchange")
