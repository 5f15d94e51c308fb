"""Nobitex as a ccxt exchange class, order-capable (ccxt 4.5 ships none).

Written the way ccxt writes its own classes: ``describe()`` holds urls, endpoint costs, fees
and the error map; ``sign()`` adds the token; ``parse_*`` turn Nobitex's JSON into ccxt's
unified structures through ``safe_*`` helpers, so numbers stay strings (``Precise``) until
ccxt's final ``parse_number``.

Conventions decided here (from Nobitex's docs, ``nobitex/docs-api``):

* **Credentials**: the API token goes in ccxt's ``token`` field (ccxt reserves it for HTTP
  token auth); ``apiKey``/``secret`` are unused. It is sent as ``Authorization: Token <token>``
  and is redacted from everything ccxt logs.
* **Rial and toman**: Nobitex's wire currency ``rls`` is the rial, and every rial value on the
  wire (prices, totals, fees, balances, minimum order) is in rials, while its market symbols
  say ``IRT`` (toman). Unified symbols here follow the market names (``BTC/IRT``, ``BTC/USDT``)
  and every unified ``IRT`` figure is in tomans: wire rials / 10, and back x 10 when sending.
  Both directions are exact decimal shifts (``Precise``), never floats.
* **Failures** arrive as HTTP 200 with ``{"status": "failed", "code": ...}``; ``handle_errors``
  maps the code (exact) and the message (broad) to ccxt classes. A 429 raises
  ``RateLimitBackOff`` carrying Nobitex's ``backOff`` seconds; a blocked token
  (``TokenBlocked``/``IPBlocked``) raises ``VenueBan`` (a ``DDoSProtection``) with the same.
* **Duplicates**: Nobitex refuses an order identical to one placed in the last 10 seconds
  (``DuplicateOrder`` -> ``InvalidOrder``) unless ``params={'pro': 'yes'}`` is passed through.
* **Client order ids** (``clientOrderId``, at most 32 characters) are found by
  ``orders/status`` only among open orders, so ``fetch_order`` by client id falls back to the
  order list (status ``all``), newest first.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from ccxt.base.decimal_to_precision import TICK_SIZE
from ccxt.base.errors import (
    ArgumentsRequired,
    AuthenticationError,
    BadRequest,
    BadSymbol,
    DuplicateOrderId,
    ExchangeError,
    ExchangeNotAvailable,
    InsufficientFunds,
    InvalidOrder,
    MarketClosed,
    OnMaintenance,
    OrderNotFound,
    PermissionDenied,
)
from ccxt.base.exchange import Exchange
from ccxt.base.precise import Precise
from ccxt.base.types import Entry

from exchanges.errors import ListIncomplete, RateLimitBackOff, VenueBan

__all__ = ["Nobitex", "RIALS_PER_TOMAN", "MAX_CLIENT_ORDER_ID_LENGTH"]

RIALS_PER_TOMAN = "10"
"""Wire ``rls`` amounts are rials; unified ``IRT`` amounts are tomans (rials / 10)."""

MAX_CLIENT_ORDER_ID_LENGTH = 32

_RIAL_ID = "rls"
_QUOTES_BY_SUFFIX = (("IRT", _RIAL_ID), ("USDT", "usdt"))

# Endpoint costs against rateLimit = 200 ms (300 requests a minute), from the limits the docs
# give per endpoint: e.g. market/stats 20/min -> 15, orders/add 300 per 10 min -> 10.
_API: dict[str, dict[str, dict[str, float]]] = {
    "public": {
        "get": {
            "v2/options": 1,
            "market/stats": 15,
            "v3/orderbook/{symbol}": 1,
            "v2/trades/{symbol}": 5,
        },
    },
    "private": {
        "get": {
            "users/wallets/list": 30,
            "market/orders/list": 10,
            "market/trades/list": 10,
        },
        "post": {
            "market/orders/add": 10,
            "market/orders/status": 1,
            "market/orders/update-status": 3.34,
        },
    },
}


def _implicit_api(api: dict[str, dict[str, dict[str, float]]]) -> type:
    """Build the ``privatePostMarketOrdersAdd``-style methods ccxt generates into abstract/."""
    namespace: dict[str, Entry] = {}
    for access, methods in api.items():
        for method, paths in methods.items():
            for path, cost in paths.items():
                words = [access, method] + [
                    w for w in path.replace("{", "").replace("}", "").replace("-", "/").split("/")
                ]
                camel = words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])
                entry = Entry(path, [access], method.upper(), {"cost": cost})
                namespace[camel] = entry
                namespace["_".join(w.lower() for w in words)] = entry
    return type("NobitexImplicitAPI", (), namespace)


ImplicitAPI = _implicit_api(_API)


class _RedactingLogger(logging.LoggerAdapter):
    """Hides the token in what ccxt logs: ccxt logs request headers at debug level."""

    def __init__(self, logger: logging.Logger, exchange: Exchange) -> None:
        super().__init__(logger, {})
        self._exchange = exchange

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        secret = self._exchange.token or ""
        super().log(level, msg, *(_redacted(a, secret) for a in args), **kwargs)


def _redacted(value: object, secret: str) -> object:
    if not secret:
        return value
    if isinstance(value, dict):
        return {k: _redacted(v, secret) for k, v in value.items()}
    if isinstance(value, str) and secret in value:
        return value.replace(secret, "***")
    return value


class Nobitex(Exchange, ImplicitAPI):  # type: ignore[misc,valid-type]
    """ccxt client for Nobitex spot: markets, tickers, books, trades, balances and orders."""

    def describe(self) -> dict:
        return self.deep_extend(super().describe(), {
            "id": "nobitex",
            "name": "Nobitex",
            "countries": ["IR"],
            "rateLimit": 200,
            "version": "v2",
            "certified": False,
            "pro": False,
            "has": {
                "CORS": None,
                "spot": True,
                "margin": False,
                "swap": False,
                "future": False,
                "option": False,
                "cancelOrder": True,
                "createOrder": True,
                "createMarketOrder": True,
                "createLimitOrder": True,
                "fetchBalance": True,
                "fetchMarkets": True,
                "fetchCurrencies": False,
                "fetchMyTrades": True,
                "fetchOpenOrders": True,
                "fetchOrder": True,
                "fetchOrderBook": True,
                "fetchTicker": True,
                "fetchTrades": True,
            },
            "urls": {
                "api": {
                    "public": "https://apiv2.nobitex.ir",
                    "private": "https://apiv2.nobitex.ir",
                },
                "www": "https://nobitex.ir",
                "doc": ["https://apidocs.nobitex.ir", "https://github.com/nobitex/docs-api"],
            },
            "api": _API,
            "requiredCredentials": {
                "apiKey": False,
                "secret": False,
                "token": True,
            },
            "precisionMode": TICK_SIZE,
            "commonCurrencies": {
                "RLS": "IRT",
            },
            "fees": {
                "trading": {
                    # the docs' profile sample: 0.35 % on rial markets, 0.2 % on tether markets
                    "tierBased": True,
                    "percentage": True,
                    "maker": self.parse_number("0.0035"),
                    "taker": self.parse_number("0.0035"),
                },
            },
            "options": {
                "feesByQuoteId": {
                    "rls": "0.0035",
                    "usdt": "0.002",
                },
                # pages of 100 searched, newest first, for a client id that orders/status
                # no longer sees (the order is no longer open)
                "fetchOrderByClientIdMaxPages": 10,
            },
            "exceptions": {
                "exact": {
                    "InvalidOrderPrice": InvalidOrder,
                    "BadPrice": InvalidOrder,
                    "PriceConditionFailed": InvalidOrder,
                    "OverValueOrder": InsufficientFunds,
                    "SmallOrder": InvalidOrder,
                    "DuplicateOrder": InvalidOrder,
                    "DuplicateClientOrderId": DuplicateOrderId,
                    "InvalidMarketPair": BadSymbol,
                    "InvalidSymbol": BadSymbol,
                    "MarketClosed": MarketClosed,
                    "TradingUnavailable": PermissionDenied,
                    "FeatureUnavailable": PermissionDenied,
                    "NullIdAndClientOrderId": ArgumentsRequired,
                    "NotFound": OrderNotFound,
                    "OrderNotFound": OrderNotFound,
                    "InvalidOrderStatus": InvalidOrder,
                    "InvalidToken": AuthenticationError,
                    "ParseError": BadRequest,
                    "Maintenance": OnMaintenance,
                },
                "broad": {
                    "Invalid token": AuthenticationError,
                    "Authentication credentials were not provided": AuthenticationError,
                    "No Order matches": OrderNotFound,
                    "maintenance": OnMaintenance,
                },
            },
        })

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config or {})
        plain: logging.Logger = vars(self)["logger"]  # ccxt's (or the config's) logger
        self.logger = _RedactingLogger(plain, self)

    def log(self, *args: object) -> None:
        """ccxt's verbose mode prints request headers; print them without the token."""
        super().log(*(_redacted(a, self.token or "") for a in args))

    # ----- wire conversions: the only place the rial/toman factor lives -----

    def from_wire(self, value: str | None, currency_id: str | None) -> str | None:
        """A wire figure in ``currency_id`` as a unified figure (rials -> tomans)."""
        if value is None or currency_id != _RIAL_ID:
            return value
        return Precise.string_div(value, RIALS_PER_TOMAN)

    def to_wire(self, value: str, currency_id: str | None) -> str:
        """A unified figure as the wire figure in ``currency_id`` (tomans -> rials)."""
        if currency_id != _RIAL_ID:
            return value
        return Precise.string_mul(value, RIALS_PER_TOMAN)

    # ----- requests -----

    def sign(self, path: str, api: Any = "public", method: str = "GET", params: dict | None = None,
             headers: dict | None = None, body: str | None = None) -> dict:
        params = params or {}
        access = api[0] if isinstance(api, list) else api
        url = self.urls["api"][access] + "/" + self.implode_params(path, params)
        query = self.omit(params, self.extract_params(path))
        headers = {}
        if method == "GET":
            if query:
                url += "?" + self.urlencode(query)
        else:
            body = self.json(query)
            headers["Content-Type"] = "application/json"
        if access == "private":
            self.check_required_credentials()
            headers["Authorization"] = "Token " + self.token
        return {"url": url, "method": method, "body": body, "headers": headers}

    def handle_errors(self, code: int, reason: str, url: str, method: str, headers: dict,
                      body: str, response: Any, requestHeaders: Any, requestBody: Any) -> None:
        if not isinstance(response, dict):
            return None  # not JSON: ccxt's handling of the HTTP status applies
        feedback = self.id + " " + body
        back_off = self.safe_string(response, "backOff")
        error_code = self.safe_string(response, "code")
        seconds = Decimal(back_off) if back_off is not None else None
        if error_code in ("TokenBlocked", "IPBlocked"):
            raise VenueBan(feedback, seconds)
        if code == 429 or error_code == "TooManyRequests":
            raise RateLimitBackOff(feedback, seconds)
        failed = self.safe_string(response, "status") == "failed"
        if not failed and code < 400:
            return None
        message = self.safe_string_2(response, "message", "detail")
        exact = self.exceptions["exact"]
        self.throw_exactly_matched_exception(exact, error_code, feedback)
        self.throw_broadly_matched_exception(self.exceptions["broad"], message, feedback)
        if code >= 500:
            raise ExchangeNotAvailable(feedback)
        if code >= 400:
            return None  # ccxt's httpExceptions: 401 -> AuthenticationError, ...
        raise ExchangeError(feedback)

    # ----- markets -----

    def fetch_markets(self, params: dict | None = None) -> list:
        """Markets from ``/v2/options``: precisions per market and minimum order per quote."""
        response = self.publicGetV2Options(params or {})
        #
        #     {"status": "ok", "coins": [{"coin": "rls", "name": "Rial", "stdName": "﷼"}, ...],
        #      "nobitex": {"minOrders": {"rls": "3000000", "usdt": "11"},
        #                  "amountPrecisions": {"BTCIRT": "0.000001", ...},
        #                  "pricePrecisions": {"BTCIRT": "10", "BTCUSDT": "0.01", ...}}}
        #
        self.options["currencyIdsByName"] = self.currency_ids_by_name(
            self.safe_list(response, "coins", []))
        config = self.safe_dict(response, "nobitex", {})
        amount_precisions = self.safe_dict(config, "amountPrecisions", {})
        price_precisions = self.safe_dict(config, "pricePrecisions", {})
        min_orders = self.safe_dict(config, "minOrders", {})
        result = []
        for market_id in sorted(amount_precisions):
            if market_id not in price_precisions:
                continue
            market = self.parse_market({
                "id": market_id,
                "amountPrecision": amount_precisions[market_id],
                "pricePrecision": price_precisions[market_id],
                "minOrders": min_orders,
            })
            if market is not None:
                result.append(market)
        return result

    def currency_ids_by_name(self, coins: list) -> dict:
        """Orders name currencies by display name (``Bitcoin``, ``﷼``): map names to ids."""
        names: dict[str, str] = {}
        for coin in coins:
            coin_id = self.safe_string_lower(coin, "coin")
            if coin_id is None:
                continue
            for key in ("name", "stdName"):
                name = self.safe_string(coin, key)
                if name is not None:
                    names[name] = coin_id
        return names

    def split_market_id(self, market_id: str) -> tuple[str, str] | None:
        """``BTCIRT`` -> (``btc``, ``rls``); ``BTCUSDT`` -> (``btc``, ``usdt``)."""
        upper = market_id.upper()
        for suffix, quote_id in _QUOTES_BY_SUFFIX:
            if upper.endswith(suffix) and len(upper) > len(suffix):
                return upper[: -len(suffix)].lower(), quote_id
        return None

    def market_id_of_pair(self, base_id: str, quote_id: str) -> str:
        """Wire currency ids (or a ``BTC-RLS`` pair's halves) to a market id like ``BTCIRT``."""
        quote = "IRT" if quote_id.lower() == _RIAL_ID else quote_id.upper()
        return base_id.upper() + quote

    def parse_market(self, market: dict) -> dict | None:
        market_id = self.safe_string(market, "id")
        ids = self.split_market_id(market_id)
        if ids is None:
            return None
        base_id, quote_id = ids
        base = self.safe_currency_code(base_id)
        quote = self.safe_currency_code(quote_id)
        fee = self.parse_number(self.safe_string(self.options["feesByQuoteId"], quote_id))
        min_order = self.from_wire(
            self.safe_string(self.safe_dict(market, "minOrders", {}), quote_id), quote_id)
        price_tick = self.from_wire(self.safe_string(market, "pricePrecision"), quote_id)
        return self.safe_market_structure({
            "id": market_id,
            "symbol": base + "/" + quote,
            "base": base,
            "quote": quote,
            "baseId": base_id,
            "quoteId": quote_id,
            "type": "spot",
            "spot": True,
            "margin": False,
            "swap": False,
            "future": False,
            "option": False,
            "active": True,
            "contract": False,
            "taker": fee,
            "maker": fee,
            "precision": {
                "amount": self.parse_number(self.safe_string(market, "amountPrecision")),
                "price": self.parse_number(price_tick),
            },
            "limits": {
                "amount": {"min": self.parse_number(self.safe_string(market, "amountPrecision")),
                           "max": None},
                "price": {"min": None, "max": None},
                "cost": {"min": self.parse_number(min_order), "max": None},
                "leverage": {"min": None, "max": None},
            },
            "info": market,
        })

    def market_of_order(self, order: dict, market: dict | None) -> dict | None:
        """The market of an order or trade: its ``market`` pair, else its currency names."""
        pair = self.safe_string(order, "market")
        if pair is not None and "-" in pair:
            base_id, quote_id = pair.split("-", 1)
            return self.safe_market(self.market_id_of_pair(base_id, quote_id), market)
        names = self.safe_dict(self.options, "currencyIdsByName", {})
        base_id = self.safe_string(names, self.safe_string(order, "srcCurrency"))
        quote_id = self.safe_string(names, self.safe_string(order, "dstCurrency"))
        if base_id is not None and quote_id is not None:
            return self.safe_market(self.market_id_of_pair(base_id, quote_id), market)
        return market

    # ----- market data -----

    def fetch_ticker(self, symbol: str, params: dict | None = None) -> dict:
        self.load_markets()
        market = self.market(symbol)
        request = {"srcCurrency": market["baseId"], "dstCurrency": market["quoteId"]}
        response = self.publicGetMarketStats(self.extend(request, params or {}))
        #
        #     {"status": "ok", "stats": {"btc-rls": {"isClosed": false, "bestSell": "749976360",
        #      "bestBuy": "733059600", "volumeSrc": "0.29", "volumeDst": "212724856.06",
        #      "latest": "750350000", "dayLow": "...", "dayHigh": "...", "dayOpen": "...",
        #      "dayClose": "...", "dayChange": "9.38"}}}
        #
        stats = self.safe_dict(response, "stats", {})
        ticker = self.safe_dict(stats, market["baseId"] + "-" + market["quoteId"])
        if ticker is None:
            raise BadSymbol(self.id + " fetch_ticker() has no stats for " + symbol)
        return self.parse_ticker(ticker, market)

    def parse_ticker(self, ticker: dict, market: dict | None = None) -> dict:
        quote_id = self.safe_string(market, "quoteId")

        def price(key: str) -> str | None:
            return self.from_wire(self.safe_string(ticker, key), quote_id)

        return self.safe_ticker({
            "symbol": self.safe_string(market, "symbol"),
            "timestamp": None,
            "datetime": None,
            "high": price("dayHigh"),
            "low": price("dayLow"),
            "bid": price("bestBuy"),
            "bidVolume": None,
            "ask": price("bestSell"),
            "askVolume": None,
            "vwap": None,
            "open": price("dayOpen"),
            "close": price("dayClose"),
            "last": price("latest"),
            "previousClose": None,
            "change": None,
            "percentage": self.safe_string(ticker, "dayChange"),
            "average": None,
            "baseVolume": self.safe_string(ticker, "volumeSrc"),
            "quoteVolume": price("volumeDst"),
            "info": ticker,
        }, market)

    def fetch_order_book(self, symbol: str, limit: int | None = None,
                         params: dict | None = None) -> dict:
        self.load_markets()
        market = self.market(symbol)
        response = self.publicGetV3OrderbookSymbol(
            self.extend({"symbol": market["id"]}, params or {}))
        #
        #     {"status": "ok", "lastUpdate": 1644991756704, "lastTradePrice": "35650565900",
        #      "asks": [["1476091000", "1.016"], ...], "bids": [["1470001120", "0.126571"], ...]}
        #
        quote_id = market["quoteId"]
        book = {
            side: [[self.from_wire(self.safe_string(level, 0), quote_id),
                    self.safe_string(level, 1)]
                   for level in self.safe_list(response, side, [])]
            for side in ("bids", "asks")
        }
        timestamp = self.safe_integer(response, "lastUpdate")
        result = self.parse_order_book(book, market["symbol"], timestamp)
        if limit is not None:
            result["bids"] = result["bids"][:limit]
            result["asks"] = result["asks"][:limit]
        return result

    def parse_order_book_bid_ask(self, bidask: Any, priceKey: Any = 0, amountKey: Any = 1,
                                 countOrIdKey: Any = 2) -> list:
        """ccxt's default reads levels as floats; keep them exact (``number``, Decimal here)."""
        return [self.safe_number(bidask, priceKey), self.safe_number(bidask, amountKey)]

    def fetch_trades(self, symbol: str, since: int | None = None, limit: int | None = None,
                     params: dict | None = None) -> list:
        self.load_markets()
        market = self.market(symbol)
        response = self.publicGetV2TradesSymbol(
            self.extend({"symbol": market["id"]}, params or {}))
        #
        #     {"status": "ok", "trades": [{"time": 1588689375067, "price": "1470000110",
        #                                  "volume": "0.002", "type": "buy"}, ...]}
        #
        return self.parse_trades(self.safe_list(response, "trades", []), market, since, limit)

    def parse_trade(self, trade: dict, market: dict | None = None) -> dict:
        #
        # public (v2/trades):  {"time": 1588689375067, "price": "...", "volume": "...",
        #                       "type": "buy"}
        # private (trades/list): {"id": 123412, "orderId": 1231222, "market": "USDT-RLS",
        #                         "timestamp": "2022-07-05T09:57:38.560820+00:00",
        #                         "type": "sell", "price": "316800", "amount": "57.3605",
        #                         "total": "18171806.4", "fee": "27257.7096"}
        #
        market = self.market_of_order(trade, market)
        quote_id = self.safe_string(market, "quoteId")
        side = self.safe_string(trade, "type")
        timestamp = self.safe_integer(trade, "time")
        if timestamp is None:
            timestamp = self.parse8601(self.safe_string(trade, "timestamp"))
        fee = None
        fee_cost = self.safe_string(trade, "fee")
        if fee_cost is not None:
            # Nobitex takes the fee from what the trade pays out: base on a buy, quote on a sell
            fee_currency_id = self.safe_string(market, "baseId" if side == "buy" else "quoteId")
            fee = {
                "cost": self.from_wire(fee_cost, fee_currency_id),
                "currency": self.safe_currency_code(fee_currency_id),
            }
        return self.safe_trade({
            "id": self.safe_string(trade, "id"),
            "order": self.safe_string(trade, "orderId"),
            "info": trade,
            "timestamp": timestamp,
            "datetime": self.iso8601(timestamp),
            "symbol": self.safe_string(market, "symbol"),
            "type": None,
            "side": side,
            "takerOrMaker": None,
            "price": self.from_wire(self.safe_string(trade, "price"), quote_id),
            "amount": self.safe_string_2(trade, "amount", "volume"),
            "cost": self.from_wire(self.safe_string(trade, "total"), quote_id),
            "fee": fee,
        }, market)

    # ----- account -----

    def fetch_balance(self, params: dict | None = None) -> dict:
        self.load_markets()
        response = self.privateGetUsersWalletsList(params or {})
        return self.parse_balance(response)

    def parse_balance(self, response: dict) -> dict:
        #
        #     {"status": "ok", "wallets": [{"id": 2693280, "currency": "rls",
        #      "balance": "746212980", "blockedBalance": "0", "activeBalance": "746212980"}, ...]}
        #
        result: dict[str, Any] = {"info": response, "timestamp": None, "datetime": None}
        for wallet in self.safe_list(response, "wallets", []):
            currency_id = self.safe_string_lower(wallet, "currency")
            account = self.account()
            account["free"] = self.from_wire(self.safe_string(wallet, "activeBalance"),
                                             currency_id)
            account["used"] = self.from_wire(self.safe_string(wallet, "blockedBalance"),
                                             currency_id)
            account["total"] = self.from_wire(self.safe_string(wallet, "balance"), currency_id)
            result[self.safe_currency_code(currency_id)] = account
        return self.safe_balance(result)

    # ----- orders -----

    def create_order(self, symbol: str, type: str, side: str, amount: Any, price: Any = None,
                     params: dict | None = None) -> dict:
        """Place a limit or market order; ``params['clientOrderId']`` (<= 32 chars) is sent."""
        self.load_markets()
        market = self.market(symbol)
        params = dict(params or {})
        if type not in ("limit", "market"):
            raise InvalidOrder(self.id + " create_order() supports limit and market orders, not "
                               + str(type))
        if side not in ("buy", "sell"):
            raise InvalidOrder(self.id + " create_order() side must be buy or sell, not "
                               + str(side))
        request: dict[str, Any] = {
            "type": side,
            "execution": type,
            "srcCurrency": market["baseId"],
            "dstCurrency": market["quoteId"],
            "amount": self.amount_to_precision(symbol, amount),
        }
        if price is not None:
            request["price"] = self.to_wire(self.price_to_precision(symbol, price),
                                            market["quoteId"])
        elif type == "limit":
            raise ArgumentsRequired(self.id + " create_order() requires a price for a limit order")
        client_order_id = self.safe_string_2(params, "clientOrderId", "newClientOrderId")
        params = self.omit(params, ["clientOrderId", "newClientOrderId"])
        if client_order_id is not None:
            self.check_client_order_id(client_order_id)
            request["clientOrderId"] = client_order_id
        response = self.privatePostMarketOrdersAdd(self.extend(request, params))
        #
        #     {"status": "ok", "order": {"type": "sell", "execution": "Limit", "market": "BTC-RLS",
        #      "price": "520000000", "amount": "0.6", "matchedAmount": "0",
        #      "unmatchedAmount": "0.6", "id": 25, "status": "Active", "fee": "0",
        #      "created_at": "2018-11-28T11:36:13.592827+00:00", "clientOrderId": "order1"}}
        #
        return self.parse_order(self.safe_dict(response, "order", {}), market)

    def check_client_order_id(self, client_order_id: str) -> None:
        if not client_order_id or len(client_order_id) > MAX_CLIENT_ORDER_ID_LENGTH:
            raise InvalidOrder(self.id + " clientOrderId must be 1 to "
                               + str(MAX_CLIENT_ORDER_ID_LENGTH) + " characters, got "
                               + repr(client_order_id))

    def fetch_order(self, id: str | None, symbol: str | None = None,
                    params: dict | None = None) -> dict:
        """The order by exchange ``id``, or by ``params['clientOrderId']`` when ``id`` is None.

        A client id is looked up with ``orders/status`` first (open orders only); when that
        finds nothing, the order list (all statuses, newest first) is searched, so a filled or
        canceled order is still found. Raises ``OrderNotFound`` if neither knows it.
        """
        self.load_markets()
        market = self.market(symbol) if symbol is not None else None
        params = dict(params or {})
        client_order_id = self.safe_string_2(params, "clientOrderId", "origClientOrderId")
        params = self.omit(params, ["clientOrderId", "origClientOrderId"])
        if id is not None:
            request: dict[str, Any] = {"id": self.wire_order_id(id)}
        elif client_order_id is not None:
            self.check_client_order_id(client_order_id)
            request = {"clientOrderId": client_order_id}
        else:
            raise ArgumentsRequired(self.id + " fetch_order() requires an id or a clientOrderId")
        try:
            response = self.privatePostMarketOrdersStatus(self.extend(request, params))
        except OrderNotFound:
            if id is not None:
                raise
            return self.find_order_by_client_id(client_order_id, market, params)
        return self.parse_order(self.safe_dict(response, "order", {}), market)

    def find_order_by_client_id(self, client_order_id: str, market: dict | None,
                                params: dict) -> dict:
        """Search the order list (newest first) for a client id ``orders/status`` cannot see.

        ``OrderNotFound`` only once the whole list was read; a list longer than the pages the
        client may read (options ``fetchOrderByClientIdMaxPages`` × ``…PageSize``) raises
        ``ListIncomplete`` instead, since the order may be further back.
        """
        request = self.orders_list_request("all", market)
        request["order"] = "-id"
        for orders in self.orders_list_pages(request, params, "fetchOrderByClientId"):
            for order in orders:
                if self.safe_string(order, "clientOrderId") == client_order_id:
                    return self.parse_order(order, market)
        raise OrderNotFound(self.id + " no order with clientOrderId " + client_order_id)

    def orders_list_pages(self, request: dict, params: dict, option: str, *,
                          ascending_ids: bool = False) -> Any:
        """Yield the pages of ``market/orders/list`` until one comes back short (the end).

        Nobitex pages the list (at most 1000 orders a page). Newest first (``order: -id``) by
        page number suits a list that only grows at its front (all statuses: a new order
        repeats one, never hides one). A list orders also leave (open orders) is read by id
        with a ``fromId`` cursor (``ascending_ids``), so an order closing between two pages
        cannot shift another out of sight. Reading stops with ``ListIncomplete`` after
        ``options[option + 'MaxPages']`` full pages, never silently.
        """
        page_size = self.safe_integer(self.options, option + "PageSize", 1000)
        max_pages = self.safe_integer(self.options, option + "MaxPages", 10)
        after_id: int | None = None
        for page in range(1, max_pages + 1):
            if ascending_ids:
                step: dict[str, Any] = {"order": "id", "pageSize": page_size}
                if after_id is not None:
                    step["fromId"] = after_id
            else:
                step = {"page": page, "pageSize": page_size}
            response = self.privateGetMarketOrdersList(self.extend(request, step, params))
            orders = self.safe_list(response, "orders", [])
            yield orders
            if len(orders) < page_size:
                return
            ids = [self.safe_integer(order, "id") for order in orders]
            after_id = max((i for i in ids if i is not None), default=after_id)
        raise ListIncomplete(f"{self.id} orders list: more than {max_pages} pages of "
                             f"{page_size}; the rest was not read")

    def wire_order_id(self, id: Any) -> Any:
        text = str(id)
        return int(text) if text.isdigit() else text

    def orders_list_request(self, status: str, market: dict | None) -> dict:
        request: dict[str, Any] = {"status": status, "details": 2}
        if market is not None:
            request["srcCurrency"] = market["baseId"]
            request["dstCurrency"] = market["quoteId"]
        return request

    def fetch_open_orders(self, symbol: str | None = None, since: int | None = None,
                          limit: int | None = None, params: dict | None = None) -> list:
        """Every open order (all pages of the list; see ``orders_list_pages``)."""
        self.load_markets()
        market = self.market(symbol) if symbol is not None else None
        request = self.orders_list_request("open", market)
        orders: list = []
        seen: set[str] = set()
        for page in self.orders_list_pages(request, params or {}, "fetchOpenOrders",
                                           ascending_ids=True):
            for order in page:
                key = self.safe_string(order, "id")
                if key is None or key not in seen:
                    seen.add(key or "")
                    orders.append(order)
        return self.parse_orders(orders, market, since, limit)

    def cancel_order(self, id: str | None, symbol: str | None = None,
                     params: dict | None = None) -> dict:
        """Cancel by ``id`` or ``params['clientOrderId']`` (open orders only, as Nobitex does)."""
        self.load_markets()
        market = self.market(symbol) if symbol is not None else None
        params = dict(params or {})
        client_order_id = self.safe_string_2(params, "clientOrderId", "origClientOrderId")
        params = self.omit(params, ["clientOrderId", "origClientOrderId"])
        request: dict[str, Any] = {"status": "canceled"}
        if id is not None:
            request["order"] = self.wire_order_id(id)
        elif client_order_id is not None:
            request["clientOrderId"] = client_order_id
        else:
            raise ArgumentsRequired(self.id + " cancel_order() requires an id or a clientOrderId")
        response = self.privatePostMarketOrdersUpdateStatus(self.extend(request, params))
        #
        #     {"status": "ok", "updatedStatus": "Canceled", "order": {...}}
        #
        order = self.safe_dict(response, "order")
        if order is None:
            return self.safe_order({
                "id": None if id is None else str(id),
                "clientOrderId": client_order_id,
                "status": self.parse_order_status(self.safe_string(response, "updatedStatus")),
                "info": response,
            }, market)
        return self.parse_order(order, market)

    def fetch_my_trades(self, symbol: str | None = None, since: int | None = None,
                        limit: int | None = None, params: dict | None = None) -> list:
        """The account's trades (Nobitex keeps the last 3 days)."""
        self.load_markets()
        market = self.market(symbol) if symbol is not None else None
        request: dict[str, Any] = {}
        if market is not None:
            request["srcCurrency"] = market["baseId"]
            request["dstCurrency"] = market["quoteId"]
        response = self.privateGetMarketTradesList(self.extend(request, params or {}))
        return self.parse_trades(self.safe_list(response, "trades", []), market, since, limit)

    def parse_order_status(self, status: str | None) -> str | None:
        statuses = {
            "New": "open",
            "Active": "open",
            "Inactive": "open",
            "Done": "closed",
            "Canceled": "canceled",
        }
        return self.safe_string(statuses, status, status)

    def parse_order(self, order: dict, market: dict | None = None) -> dict:
        #
        #     {"id": 25, "type": "buy", "execution": "Limit", "market": "BTC-RLS",
        #      "srcCurrency": "Bitcoin", "dstCurrency": "﷼", "price": "520000000",
        #      "amount": "0.6", "matchedAmount": "0.2", "unmatchedAmount": "0.4",
        #      "averagePrice": "519000000", "totalPrice": "103800000", "status": "Active",
        #      "fee": "0.0007", "created_at": "2018-11-28T11:36:13.592827+00:00",
        #      "clientOrderId": "order1"}
        #
        market = self.market_of_order(order, market)
        quote_id = self.safe_string(market, "quoteId")
        side = self.safe_string(order, "type")
        timestamp = self.parse8601(self.safe_string(order, "created_at"))
        execution = self.safe_string_lower(order, "execution")
        price = self.safe_string(order, "price")
        if price == "market":
            price = None
        filled = self.safe_string(order, "matchedAmount")
        average = self.from_wire(self.omit_zero(self.safe_string(order, "averagePrice")),
                                 quote_id)
        cost = None
        if average is not None and filled is not None:
            cost = Precise.string_mul(filled, average)
        fee = None
        fee_cost = self.safe_string(order, "fee")
        if fee_cost is not None:
            fee_currency_id = self.safe_string(market, "baseId" if side == "buy" else "quoteId")
            fee = {
                "cost": self.parse_number(self.from_wire(fee_cost, fee_currency_id)),
                "currency": self.safe_currency_code(fee_currency_id),
            }
        return self.safe_order({
            "info": order,
            "id": self.safe_string(order, "id"),
            "clientOrderId": self.safe_string(order, "clientOrderId"),
            "timestamp": timestamp,
            "datetime": self.iso8601(timestamp),
            "lastTradeTimestamp": None,
            "symbol": self.safe_string(market, "symbol"),
            "type": execution,
            "timeInForce": None,
            "postOnly": None,
            "side": side,
            "price": self.from_wire(price, quote_id),
            "triggerPrice": None,
            "amount": self.safe_string(order, "amount"),
            "cost": cost,
            "average": average,
            "filled": filled,
            "remaining": self.safe_string(order, "unmatchedAmount"),
            "status": self.parse_order_status(self.safe_string(order, "status")),
            "fee": fee,
            "trades": None,
        }, market)
