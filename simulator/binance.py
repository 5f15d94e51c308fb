"""The Binance spot REST dialect (``/api/v3/...``), enough for stock ``ccxt.binance``.

Signed endpoints check, in Binance's order: API key (``-2014``/``-2015``), ``timestamp`` and
``recvWindow`` against the venue clock (``-1102``/``-1021``, clock-skew faults apply), the
HMAC-SHA256 ``signature`` of the query string followed by the body, up to ``&signature=``
(``-1022``). Engine refusals become Binance's codes and messages (``-1121`` unknown symbol,
``-1013 Filter failure: ...``, ``-2010 Duplicate order sent.``, ``-2010 Account has insufficient
balance for requested action.``, ``-2013 Order does not exist.``, ``-2011 Unknown order sent.``).
Faults answer as Binance's edge does: JSON ``-1000`` for 500, HTML for 502/503/maintenance
(so ccxt sees ``ExchangeNotAvailable``), 429/418 JSON ``-1003`` with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import zlib
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from simulator.app import JSONResponse
from simulator.dialect import Call, Route
from simulator.errors import (
    DuplicateClientOrderId,
    FilterFailure,
    InsufficientBalance,
    InvalidOrderRequest,
    OrderNotOpen,
    UnknownOrder,
    UnknownSymbol,
)
from simulator.model import Fill, MarketSpec, Order, Side
from simulator.venue import Venue

__all__ = ["BinanceDialect", "fmt"]

_MAX_RECV_WINDOW = 60000
_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_HTML = "text/html"


class BinanceError(Exception):
    """Raised inside a handler to answer Binance's error JSON."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def fmt(value: Decimal) -> str:
    """Binance style: at least 8 decimals, exact (never rounded)."""
    if value.as_tuple().exponent >= -8:  # type: ignore[operator]
        return f"{value:.8f}"
    return format(value, "f")


def _error(code: int, msg: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status)


def _mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or "
                               "malformed.")


def _decimal(params: dict[str, str], name: str, required: bool = True) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise _mandatory(name)
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range "
                                  "is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
    return value


def _int(params: dict[str, str], name: str, required: bool = False) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise _mandatory(name)
        return None
    try:
        return int(raw)
    except ValueError:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range "
                                  "is '^[0-9]{1,20}$'.") from None


class BinanceDialect:
    """Routes and renderers of the Binance spot dialect (see module docstring)."""

    name = "binance"

    def __init__(self) -> None:
        self._by_id: dict[str, MarketSpec] | None = None

    # ------------------------------------------------------------------ plumbing
    def account_of(self, request: Request, venue: Venue) -> str | None:
        key = request.headers.get("x-mbx-apikey")
        if key is None:
            return None
        spec = venue.engine.account_by_api_key(key)
        return spec.id if spec is not None else None

    def render_fault(self, fault: str, call: Call) -> Response:
        headers = {}
        if call.retry_after_s is not None:
            headers["Retry-After"] = str(call.retry_after_s)
        if fault == "error_500":
            return _error(-1000, "An unknown error occurred while processing the request.", 500)
        if fault == "error_502":
            return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", 502,
                            media_type=_HTML)
        if fault == "error_503":
            return Response("<html><body><h1>503 Service Unavailable</h1></body></html>", 503,
                            media_type=_HTML)
        if fault == "maintenance":
            return Response("<html><body><h1>System maintenance</h1><p>Binance is upgrading "
                            "its system. Please try again later.</p></body></html>", 503,
                            media_type=_HTML)
        if fault == "rate_limit":
            return JSONResponse({"code": -1003, "msg": "Too much request weight used; current "
                                 "limit is 6000 request weight per 1 MINUTE. Please use WebSocket"
                                 " Streams for live updates to avoid polling the API."},
                                status_code=429, headers=headers)
        if fault == "ban":
            until = call.now + (call.retry_after_s or 0) * 1000
            return JSONResponse({"code": -1003, "msg": f"Way too much request weight used; IP "
                                 f"banned until {until}. Please use WebSocket Streams for live "
                                 "updates to avoid bans."}, status_code=418, headers=headers)
        raise ValueError(f"binance dialect cannot render fault {fault!r}")

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/api/v3/ping", None, self.ping),
            Route("GET", "/api/v3/time", "fetch_time", self.time),
            Route("GET", "/api/v3/exchangeInfo", "load_markets", self.exchange_info),
            Route("GET", "/api/v3/ticker/24hr", "fetch_ticker", self.ticker_24hr),
            Route("GET", "/api/v3/ticker/bookTicker", "fetch_ticker", self.book_ticker),
            Route("GET", "/api/v3/depth", "fetch_order_book", self.depth),
            Route("GET", "/api/v3/trades", "fetch_trades", self.trades),
            Route("GET", "/api/v3/aggTrades", "fetch_trades", self.agg_trades),
            Route("GET", "/api/v3/account", "fetch_balance", self._signed(self.account)),
            Route("POST", "/api/v3/order", "create_order", self._signed(self.create_order)),
            Route("GET", "/api/v3/order", "fetch_order", self._signed(self.fetch_order)),
            Route("DELETE", "/api/v3/order", "cancel_order", self._signed(self.cancel_order)),
            Route("GET", "/api/v3/openOrders", "fetch_open_orders",
                  self._signed(self.open_orders)),
            Route("DELETE", "/api/v3/openOrders", "cancel_order",
                  self._signed(self.cancel_all)),
            Route("GET", "/api/v3/allOrders", "fetch_orders", self._signed(self.all_orders)),
            Route("GET", "/api/v3/myTrades", "fetch_my_trades", self._signed(self.my_trades)),
        ]

    def _signed(self, handler):  # noqa: ANN001, ANN202 - wraps a (call, account, params) handler
        async def endpoint(call: Call) -> Response:
            try:
                account, params = await self._authenticate(call)
                return handler(call, account, params)
            except BinanceError as exc:
                return _error(exc.code, exc.msg, exc.status)
        return endpoint

    async def _authenticate(self, call: Call) -> tuple[str, dict[str, str]]:
        request = call.request
        key = request.headers.get("x-mbx-apikey")
        if not key:
            raise BinanceError(-2014, "API-key format invalid.", 401)
        spec = call.engine.account_by_api_key(key)
        if spec is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        query = request.url.query
        body = (await request.body()).decode() if request.method in ("POST", "PUT") else ""
        total = query + body
        params = dict(parse_qsl(query))
        if body:
            params.update(parse_qsl(body))
        timestamp = _int(params, "timestamp", required=True)
        assert timestamp is not None  # required=True raised otherwise
        recv_window = _int(params, "recvWindow") or 5000
        if recv_window > _MAX_RECV_WINDOW:
            raise BinanceError(-1131, "recvWindow must be less than 60000.")
        server_time = call.server_time
        if timestamp >= server_time + 1000:
            raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the "
                                      "server's time.")
        if server_time - timestamp > recv_window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        cut = total.rfind("&signature=")
        if cut < 0:
            raise _mandatory("signature")
        payload, signature = total[:cut], total[cut + len("&signature="):]
        expected = hmac.new(spec.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        return spec.id, params

    def _market(self, call: Call, params: dict[str, str]) -> MarketSpec:
        """The market named by the mandatory ``symbol`` parameter."""
        market = self._optional_market(call, params)
        if market is None:
            raise _mandatory("symbol")
        return market

    def _optional_market(self, call: Call, params: dict[str, str]) -> MarketSpec | None:
        raw = params.get("symbol")
        if not raw:
            return None
        if self._by_id is None:
            self._by_id = {m.binance_id: m for m in call.engine.markets.values()}
        spec = self._by_id.get(raw)
        if spec is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return spec

    # ------------------------------------------------------------------ public
    async def ping(self, call: Call) -> Response:
        return JSONResponse({})

    async def time(self, call: Call) -> Response:
        return JSONResponse({"serverTime": call.server_time})

    async def exchange_info(self, call: Call) -> Response:
        symbols = [self._symbol_info(m) for m in call.engine.markets.values()]
        return JSONResponse({
            "timezone": "UTC", "serverTime": call.server_time,
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": 100},
            ],
            "exchangeFilters": [], "symbols": symbols,
        })

    @staticmethod
    def _symbol_info(m: MarketSpec) -> dict[str, Any]:
        return {
            "symbol": m.binance_id, "status": "TRADING", "baseAsset": m.base,
            "baseAssetPrecision": 8, "quoteAsset": m.quote, "quotePrecision": 8,
            "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
            "icebergAllowed": False, "ocoAllowed": False, "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
            "cancelReplaceAllowed": False, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": fmt(m.tick_size),
                 "maxPrice": "10000000000.00000000", "tickSize": fmt(m.tick_size)},
                {"filterType": "LOT_SIZE", "minQty": fmt(m.min_qty),
                 "maxQty": "9000000000.00000000", "stepSize": fmt(m.step_size)},
                {"filterType": "NOTIONAL", "minNotional": fmt(m.min_notional),
                 "applyMinToMarket": True, "maxNotional": "9000000000000.00000000",
                 "applyMaxToMarket": False, "avgPriceMins": 5},
            ],
            "permissions": [], "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }

    async def ticker_24hr(self, call: Call) -> Response:
        params = dict(call.request.query_params)
        try:
            market = self._optional_market(call, params)
        except BinanceError as exc:
            return _error(exc.code, exc.msg, exc.status)
        engine = call.engine
        if market is not None:
            return JSONResponse(self._ticker(engine.ticker(market.symbol, call.now), market))
        return JSONResponse([self._ticker(engine.ticker(m.symbol, call.now), m)
                             for m in engine.markets.values()])

    @staticmethod
    def _ticker(t, market: MarketSpec) -> dict[str, Any]:  # noqa: ANN001 - simulator.Ticker
        change = t.last - t.open
        return {
            "symbol": market.binance_id, "priceChange": fmt(change),
            "priceChangePercent": f"{(change / t.open * 100):.3f}",
            "weightedAvgPrice": fmt(t.quote_volume / t.volume if t.volume else t.last),
            "prevClosePrice": fmt(t.open), "lastPrice": fmt(t.last), "lastQty": fmt(Decimal(0)),
            "bidPrice": fmt(t.bid or Decimal(0)), "bidQty": fmt(t.bid_qty),
            "askPrice": fmt(t.ask or Decimal(0)), "askQty": fmt(t.ask_qty),
            "openPrice": fmt(t.open), "highPrice": fmt(t.high), "lowPrice": fmt(t.low),
            "volume": fmt(t.volume), "quoteVolume": fmt(t.quote_volume),
            "openTime": t.time - 86_400_000, "closeTime": t.time, "firstId": 0,
            "lastId": t.trade_count - 1, "count": t.trade_count,
        }

    async def book_ticker(self, call: Call) -> Response:
        params = dict(call.request.query_params)
        try:
            market = self._optional_market(call, params)
        except BinanceError as exc:
            return _error(exc.code, exc.msg, exc.status)
        markets = [market] if market else list(call.engine.markets.values())
        out = []
        for m in markets:
            t = call.engine.ticker(m.symbol, call.now)
            out.append({"symbol": m.binance_id, "bidPrice": fmt(t.bid or Decimal(0)),
                        "bidQty": fmt(t.bid_qty), "askPrice": fmt(t.ask or Decimal(0)),
                        "askQty": fmt(t.ask_qty)})
        return JSONResponse(out[0] if market else out)

    async def depth(self, call: Call) -> Response:
        params = dict(call.request.query_params)
        try:
            market = self._market(call, params)
            limit = _int(params, "limit") or 100
        except BinanceError as exc:
            return _error(exc.code, exc.msg, exc.status)
        if not 1 <= limit <= 5000:
            return _error(-1100, "Illegal characters found in parameter 'limit'.")
        book = call.engine.order_book(market.symbol, limit, call.now)
        return JSONResponse({
            "lastUpdateId": book.sequence,
            "bids": [[fmt(p), fmt(q)] for p, q in book.bids],
            "asks": [[fmt(p), fmt(q)] for p, q in book.asks],
        })

    def _tape(self, call: Call, since_param: str | None):  # noqa: ANN202 - list[Trade]
        params = dict(call.request.query_params)
        market = self._market(call, params)
        limit = _int(params, "limit") or 500
        if not 1 <= limit <= 1000:
            raise BinanceError(-1100, "Illegal characters found in parameter 'limit'.")
        since = _int(params, since_param) if since_param else None
        return market, call.engine.recent_trades(market.symbol, limit, since,
                                                 _int(params, "fromId"))

    async def trades(self, call: Call) -> Response:
        try:
            market, tape = self._tape(call, None)
        except BinanceError as exc:
            return _error(exc.code, exc.msg, exc.status)
        return JSONResponse([{
            "id": t.trade_id, "price": fmt(t.price), "qty": fmt(t.amount),
            "quoteQty": fmt(t.quote_amount), "time": t.time,
            "isBuyerMaker": t.taker_side is Side.SELL, "isBestMatch": True} for t in tape])

    async def agg_trades(self, call: Call) -> Response:
        try:
            market, tape = self._tape(call, "startTime")
        except BinanceError as exc:
            return _error(exc.code, exc.msg, exc.status)
        return JSONResponse([{
            "a": t.trade_id, "p": fmt(t.price), "q": fmt(t.amount), "f": t.trade_id,
            "l": t.trade_id, "T": t.time, "m": t.taker_side is Side.SELL, "M": True}
            for t in tape])

    # ------------------------------------------------------------------ private
    def account(self, call: Call, account: str, params: dict[str, str]) -> Response:
        spec = call.engine.account(account)
        balances = call.engine.balances(account)
        return JSONResponse({
            "makerCommission": int(spec.maker_fee * 10000),
            "takerCommission": int(spec.taker_fee * 10000), "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": fmt(spec.maker_fee), "taker": fmt(spec.taker_fee),
                                "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": call.now, "accountType": "SPOT",
            "balances": [{"asset": c, "free": fmt(b.free), "locked": fmt(b.locked)}
                         for c, b in sorted(balances.items())],
            "permissions": ["SPOT"], "uid": zlib.crc32(account.encode()),
        })

    def create_order(self, call: Call, account: str, params: dict[str, str]) -> Response:
        market = self._market(call, params)
        side = params.get("side")
        if not side:
            raise _mandatory("side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        order_type = params.get("type")
        if not order_type:
            raise _mandatory("type")
        if order_type not in ("LIMIT", "MARKET"):
            raise BinanceError(-1116, "Invalid orderType.")
        client_id = (params.get("newClientOrderId")
                     or f"venue{call.venue.next_in_sequence('binance.client_order_id')}")
        if not _CLIENT_ID.match(client_id):
            raise BinanceError(-1100, "Illegal characters found in parameter "
                                      "'newClientOrderId'; legal range is "
                                      "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
        price = None
        tif = "GTC"
        if order_type == "LIMIT":
            tif = params.get("timeInForce") or ""
            if not tif:
                raise _mandatory("timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise BinanceError(-1115, "Invalid timeInForce.")
            price = _decimal(params, "price")
            amount = _decimal(params, "quantity")
        else:
            amount = _decimal(params, "quantity", required=False)
            if amount is None:
                quote_qty = _decimal(params, "quoteOrderQty", required=False)
                if quote_qty is None:
                    raise BinanceError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, "
                                              "but both were empty/null!")
                amount = self._amount_for_quote(call, market, side, quote_qty)
        try:
            placed = call.engine.place_order(
                account, market.symbol, side.lower(), order_type.lower(), amount, price, tif,
                client_id, call.now)
        except FilterFailure as exc:
            raise BinanceError(-1013, f"Filter failure: {exc.filter}") from None
        except DuplicateClientOrderId:
            raise BinanceError(-2010, "Duplicate order sent.") from None
        except InsufficientBalance:
            raise BinanceError(-2010, "Account has insufficient balance for requested action.") \
                from None
        except UnknownSymbol:
            raise BinanceError(-1121, "Invalid symbol.") from None
        except InvalidOrderRequest as exc:
            raise BinanceError(-1102, str(exc)) from None
        order = placed.order
        resp_type = params.get("newOrderRespType", "FULL")
        body: dict[str, Any] = {
            "symbol": market.binance_id, "orderId": order.id, "orderListId": -1,
            "clientOrderId": order.client_order_id, "transactTime": call.now,
        }
        if resp_type == "ACK":
            return JSONResponse(body)
        body.update(self._order_fields(order, market))
        body["workingTime"] = order.created_at
        body["selfTradePreventionMode"] = "NONE"
        if resp_type == "FULL":
            body["fills"] = [{"price": fmt(f.price), "qty": fmt(f.amount),
                              "commission": fmt(f.fee), "commissionAsset": f.fee_currency,
                              "tradeId": f.trade_id} for f in placed.fills]
        return JSONResponse(body)

    @staticmethod
    def _amount_for_quote(call: Call, market: MarketSpec, side: str, quote_qty: Decimal
                          ) -> Decimal:
        """Base amount a ``quoteOrderQty`` market order buys/sells at the current book."""
        book = call.engine.order_book(market.symbol, 5000, call.now)
        levels = book.asks if side == "BUY" else book.bids
        left, amount = quote_qty, Decimal(0)
        for price, qty in levels:
            take = min(qty, left / price)
            amount += take
            left -= take * price
            if left <= 0:
                break
        return (amount // market.step_size) * market.step_size

    @staticmethod
    def _status(order: Order) -> str:
        """Binance's names are the engine's, upper-cased (NEW, PARTIALLY_FILLED, ...)."""
        return order.status.value.upper()

    def _order_fields(self, order: Order, market: MarketSpec) -> dict[str, Any]:
        return {
            "price": fmt(order.price or Decimal(0)), "origQty": fmt(order.amount),
            "executedQty": fmt(order.filled), "origQuoteOrderQty": "0.00000000",
            "cummulativeQuoteQty": fmt(order.cost), "status": self._status(order),
            "timeInForce": order.time_in_force.value, "type": order.type.value.upper(),
            "side": order.side.value.upper(),
        }

    def _order_view(self, order: Order, market: MarketSpec) -> dict[str, Any]:
        body = {"symbol": market.binance_id, "orderId": order.id, "orderListId": -1,
                "clientOrderId": order.client_order_id}
        body.update(self._order_fields(order, market))
        body.update({"stopPrice": "0.00000000", "icebergQty": "0.00000000",
                     "time": order.created_at, "updateTime": order.updated_at,
                     "isWorking": True, "workingTime": order.created_at,
                     "selfTradePreventionMode": "NONE"})
        return body

    def _find(self, call: Call, account: str, params: dict[str, str],
              market: MarketSpec) -> Order:
        order_id = _int(params, "orderId")
        client_id = params.get("origClientOrderId")
        if order_id is None and not client_id:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but "
                                      "both were empty/null!")
        if order_id is not None:
            order = call.engine.get_order(account, order_id)
        else:
            order = call.engine.get_order_by_client_id(account, client_id)
        if order.symbol != market.symbol:
            raise UnknownOrder("symbol mismatch")
        return order

    def fetch_order(self, call: Call, account: str, params: dict[str, str]) -> Response:
        market = self._market(call, params)
        try:
            order = self._find(call, account, params, market)
        except UnknownOrder:
            raise BinanceError(-2013, "Order does not exist.") from None
        return JSONResponse(self._order_view(order, market))

    def cancel_order(self, call: Call, account: str, params: dict[str, str]) -> Response:
        market = self._market(call, params)
        try:
            order = self._find(call, account, params, market)
            call.engine.cancel_order(account, call.now, order_id=order.id)
        except (UnknownOrder, OrderNotOpen):
            raise BinanceError(-2011, "Unknown order sent.") from None
        body = {"symbol": market.binance_id, "origClientOrderId": order.client_order_id,
                "orderId": order.id, "orderListId": -1,
                "clientOrderId": params.get("newClientOrderId") or f"cancel{order.id}",
                "transactTime": call.now}
        body.update(self._order_fields(order, market))
        body["selfTradePreventionMode"] = "NONE"
        return JSONResponse(body)

    def cancel_all(self, call: Call, account: str, params: dict[str, str]) -> Response:
        market = self._market(call, params)
        orders = call.engine.open_orders(account, market.symbol)
        if not orders:
            raise BinanceError(-2011, "Unknown order sent.")
        out = []
        for order in orders:
            call.engine.cancel_order(account, call.now, order_id=order.id)
            view = {"symbol": market.binance_id, "origClientOrderId": order.client_order_id,
                    "orderId": order.id, "orderListId": -1,
                    "clientOrderId": f"cancel{order.id}", "transactTime": call.now}
            view.update(self._order_fields(order, market))
            out.append(view)
        return JSONResponse(out)

    def open_orders(self, call: Call, account: str, params: dict[str, str]) -> Response:
        market = self._optional_market(call, params)
        markets = call.engine.markets
        orders = call.engine.open_orders(account, market.symbol if market else None)
        return JSONResponse([self._order_view(o, markets[o.symbol]) for o in orders])

    def all_orders(self, call: Call, account: str, params: dict[str, str]) -> Response:
        market = self._market(call, params)
        from_id = _int(params, "orderId")
        start = _int(params, "startTime")
        end = _int(params, "endTime")
        limit = min(_int(params, "limit") or 500, 1000)
        orders = [o for o in call.engine.orders(account, market.symbol)
                  if (from_id is None or o.id >= from_id)
                  and (start is None or o.created_at >= start)
                  and (end is None or o.created_at <= end)]
        orders = orders[:limit] if (from_id is not None or start is not None) \
            else orders[-limit:]
        return JSONResponse([self._order_view(o, market) for o in orders])

    def my_trades(self, call: Call, account: str, params: dict[str, str]) -> Response:
        market = self._market(call, params)
        order_id = _int(params, "orderId")
        start = _int(params, "startTime")
        end = _int(params, "endTime")
        from_id = _int(params, "fromId")
        limit = min(_int(params, "limit") or 500, 1000)
        fills = [f for f in call.engine.fills(account, market.symbol, since=start,
                                              order_id=order_id, from_id=from_id)
                 if end is None or f.time <= end]
        fills = fills[:limit] if (from_id is not None or start is not None) else fills[-limit:]
        return JSONResponse([self._trade(f, market) for f in fills])

    @staticmethod
    def _trade(f: Fill, market: MarketSpec) -> dict[str, Any]:
        return {
            "symbol": market.binance_id, "id": f.trade_id, "orderId": f.order_id,
            "orderListId": -1, "price": fmt(f.price), "qty": fmt(f.amount),
            "quoteQty": fmt(f.quote_amount), "commission": fmt(f.fee),
            "commissionAsset": f.fee_currency, "time": f.time, "isBuyer": f.side is Side.BUY,
            "isMaker": f.is_maker, "isBestMatch": True,
        }

