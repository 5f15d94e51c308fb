"""The venue's Nobitex REST dialect, over the shared matching engine.

Answers in Nobitex's own formats (``nobitex/docs-api``): success is ``{"status": "ok", ...}``;
a refused operation is **HTTP 200** with ``{"status": "failed", "code": ..., "message": ...}``
and the docs' codes (``OverValueOrder``, ``SmallOrder``, ``DuplicateClientOrderId``,
``InvalidMarketPair``, ``NullIdAndClientOrderId``, ...); an uninterpretable request is HTTP 400;
a missing or unknown token is HTTP 401 (``code: InvalidToken``, ``message: Invalid token.``,
the words Django REST framework uses).

Conventions kept from the real venue:

* Token auth: ``Authorization: Token <token>``, the engine account's ``nobitex_token``.
* Markets: every engine market quoted in ``IRT`` or ``USDT`` is served as ``BTCIRT``/``BTCUSDT``
  (order/trade pairs as ``BTC-RLS``/``BTC-USDT``). The wire currency ``rls`` is the rial and
  every rial figure on the wire is ``engine IRT x 10``: the engine's ``IRT`` is the toman.
* ``clientOrderId`` (<= 32 chars) is found by ``orders/status`` and ``update-status`` **only
  among open orders**; a filled or canceled order is reachable by id or through the list.
* Amounts with more digits than the market's step are rounded down, prices to the tick with
  banker's rounding, before validation (the docs' "monetary" rule).
* Order states: ``Active`` (open, partial fills included), ``Done``, ``Canceled`` (also for an
  expired market/IOC remainder, which Nobitex cancels).

Where the docs are silent the dialect chooses, and the adapter accepts both the docs' and
these: unknown order -> failed ``NotFound``; cancelling a closed order -> failed
``InvalidOrderStatus``; a token ban (Nobitex blocks a token that ignores 429s) -> 429 with
``code: TokenBlocked`` and ``backOff``; 5xx bodies are the plain pages a proxy would send.
* ``DuplicateOrder``: an order identical (market, side, execution, amount, price) to one the
  account placed in the last 10 seconds is refused, unless the request says ``pro: yes``.

Not modelled: stop/OCO orders, the 1 % price band of market orders.

Fault endpoints: options -> ``load_markets``, stats -> ``fetch_ticker``, orderbook ->
``fetch_order_book``, public trades -> ``fetch_trades``, wallets -> ``fetch_balance``,
orders/add -> ``create_order``, orders/status -> ``fetch_order``, orders/list ->
``fetch_open_orders``, update-status -> ``cancel_order``, trades/list -> ``fetch_my_trades``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

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
from simulator.model import Fill, MarketSpec, Order, OrderStatus, OrderType

if TYPE_CHECKING:
    from simulator.venue import Venue

__all__ = ["NobitexDialect", "RIALS_PER_TOMAN", "MAX_CLIENT_ORDER_ID_LENGTH"]

RIALS_PER_TOMAN = Decimal(10)
MAX_CLIENT_ORDER_ID_LENGTH = 32
TRADE_HISTORY_MS = 3 * 24 * 3600 * 1000
"""``trades/list`` shows the last 3 days only."""
DUPLICATE_WINDOW_MS = 10_000
"""An identical order within this window is refused with ``DuplicateOrder``."""

_RIAL = "rls"
_TOMAN = "IRT"
_QUOTES = (_TOMAN, "USDT")
_NAMES = {"btc": "Bitcoin", "eth": "Ethereum", "usdt": "Tether", "rls": "\ufdfc"}
_STATUS_NAMES = {
    OrderStatus.NEW: "Active",
    OrderStatus.PARTIALLY_FILLED: "Active",
    OrderStatus.FILLED: "Done",
    OrderStatus.CANCELED: "Canceled",
    OrderStatus.EXPIRED: "Canceled",
}
_LIST_FILTERS: dict[str, Callable[[Order], bool]] = {
    "all": lambda o: True,
    "open": lambda o: o.status.is_open,
    "done": lambda o: o.filled > 0,
    "close": lambda o: not o.status.is_open,
}
_SORT_KEYS: dict[str, Callable[[Order], Any]] = {
    "id": lambda o: o.id,
    "created_at": lambda o: (o.created_at, o.id),
    "price": lambda o: (o.price or Decimal(0), o.id),
}


class _Refused(Exception):
    """A request the dialect answers with an error body instead of running it."""

    def __init__(self, code: str, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def _ok(**fields: Any) -> JSON:
    return JSON({"status": "ok", **fields})


def _failed(code: str, message: str, http_status: int = 200, **extra: Any) -> JSON:
    return JSON({"status": "failed", "code": code, "message": message, **extra},
                status_code=http_status)


def _text(d: Decimal) -> str:
    """Plain decimal text, never exponent notation."""
    return format(d.normalize(), "f") if d else "0"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def currency_id(code: str) -> str:
    """Engine currency code -> Nobitex wire id (``IRT`` -> ``rls``, ``BTC`` -> ``btc``)."""
    return _RIAL if code == _TOMAN else code.lower()


def currency_code(wire_id: str) -> str:
    return _TOMAN if wire_id.lower() == _RIAL else wire_id.upper()


def to_wire(value: Decimal, code: str) -> Decimal:
    """An engine amount of ``code`` in wire units (tomans -> rials)."""
    return value * RIALS_PER_TOMAN if code == _TOMAN else value


def from_wire(value: Decimal, code: str) -> Decimal:
    return value / RIALS_PER_TOMAN if code == _TOMAN else value


def market_id(spec: MarketSpec) -> str:
    return spec.base + spec.quote


def pair(spec: MarketSpec) -> str:
    return spec.base + "-" + currency_id(spec.quote).upper()


class NobitexDialect:
    """Nobitex routes over the venue's engine (see the module docstring for the contract)."""

    name = "nobitex"

    # ----------------------------------------------------------------- plug-in interface
    def routes(self) -> list[Route]:
        spec = [
            ("GET", "/v2/options", "load_markets", self.options),
            ("GET", "/market/stats", "fetch_ticker", self.stats),
            ("POST", "/market/stats", "fetch_ticker", self.stats),
            ("GET", "/v3/orderbook/{symbol}", "fetch_order_book", self.orderbook),
            ("GET", "/v2/trades/{symbol}", "fetch_trades", self.public_trades),
            ("GET", "/users/wallets/list", "fetch_balance", self.wallets),
            ("POST", "/users/wallets/list", "fetch_balance", self.wallets),
            ("POST", "/market/orders/add", "create_order", self.add_order),
            ("POST", "/market/orders/status", "fetch_order", self.order_status),
            ("GET", "/market/orders/list", "fetch_open_orders", self.list_orders),
            ("POST", "/market/orders/list", "fetch_open_orders", self.list_orders),
            ("POST", "/market/orders/update-status", "cancel_order", self.update_status),
            ("GET", "/market/trades/list", "fetch_my_trades", self.my_trades),
            ("POST", "/market/trades/list", "fetch_my_trades", self.my_trades),
        ]
        return [Route(method, path, endpoint, self._guarded(handler))
                for method, path, endpoint, handler in spec]

    def account_of(self, request: Request, venue: Venue) -> str | None:
        token = _token(request)
        if token is None:
            return None
        spec = venue.engine.account_by_token(token)
        return spec.id if spec is not None else None

    def render_fault(self, fault: str, call: Call) -> Response:
        seconds = call.retry_after_s or 1
        if fault == "rate_limit":
            return _failed(
                "TooManyRequests",
                "تعداد درخواست شما بیش از حد معمول تشخیص داده شده."
                f" لطفا {seconds} ثانیه صبر نمایید.",
                429, backOff=seconds, limit=60)
        if fault == "ban":
            return _failed("TokenBlocked", "Token blocked for ignoring rate limits.", 429,
                           backOff=seconds)
        if fault == "maintenance":
            return _failed("Maintenance", "Nobitex is under maintenance.", 503)
        if fault == "error_500":
            return Response("<h1>Server Error (500)</h1>", 500, media_type="text/html")
        if fault == "error_502":
            return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", 502,
                            media_type="text/html")
        if fault == "error_503":
            return Response("<html><body><h1>503 Service Temporarily Unavailable</h1>"
                            "</body></html>", 503, media_type="text/html")
        raise ValueError(f"nobitex dialect cannot render fault {fault!r}")

    # ----------------------------------------------------------------- plumbing
    def _guarded(self, handler: Callable[[Call], Any]) -> Callable[[Call], Any]:
        async def run(call: Call) -> Response:
            try:
                return await handler(call)
            except _Refused as refusal:
                return _failed(refusal.code, refusal.message, refusal.http_status)

        return run

    def _account(self, call: Call) -> str:
        token = _token(call.request)
        spec = call.engine.account_by_token(token) if token else None
        if spec is None:
            raise _Unauthorized()
        return spec.id

    def _markets(self, call: Call) -> dict[str, MarketSpec]:
        """Engine markets this dialect serves, by Nobitex market id."""
        return {market_id(m): m for m in call.engine.markets.values() if m.quote in _QUOTES}

    def _market_by_currencies(self, call: Call, src: Any, dst: Any) -> MarketSpec:
        if not isinstance(src, str) or not isinstance(dst, str):
            raise _Refused("InvalidMarketPair", "srcCurrency and dstCurrency are required")
        spec = self._markets(call).get(currency_code(src) + currency_code(dst))
        if spec is None:
            raise _Refused("InvalidMarketPair", f"no market {src}-{dst}")
        return spec

    # ----------------------------------------------------------------- rendering
    def _order_json(self, call: Call, order: Order, fee: Decimal, details: int = 2) -> dict:
        spec = call.engine.market(order.symbol)
        quote = spec.quote
        received = spec.base if order.side.value == "buy" else quote
        body: dict[str, Any] = {
            "type": order.side.value,
            "execution": "Limit" if order.type is OrderType.LIMIT else "Market",
            "tradeType": "Spot",
            "market": pair(spec),
            "srcCurrency": _NAMES.get(currency_id(spec.base), spec.base),
            "dstCurrency": _NAMES.get(currency_id(quote), quote),
            "price": "market" if order.price is None else _text(to_wire(order.price, quote)),
            "amount": _text(order.amount),
            "totalPrice": _text(to_wire(order.cost, quote)),
            "totalOrderPrice": _text(to_wire((order.price or Decimal(0)) * order.amount, quote)),
            "matchedAmount": _text(order.filled),
            "unmatchedAmount": _text(order.remaining),
            "partial": bool(order.filled) and order.filled < order.amount,
            "clientOrderId": order.client_order_id,
        }
        if details >= 2:
            average = order.cost / order.filled if order.filled else Decimal(0)
            body.update({
                "id": order.id,
                "status": _STATUS_NAMES[order.status],
                "fee": _text(to_wire(fee, received)),
                "created_at": _iso(order.created_at),
                "averagePrice": _text(to_wire(average, quote)),
            })
        return body

    def _fees_by_order(self, call: Call, account: str) -> dict[int, Decimal]:
        fees: dict[int, Decimal] = {}
        for fill in call.engine.fills(account):
            fees[fill.order_id] = fees.get(fill.order_id, Decimal(0)) + fill.fee
        return fees

    def _order_fee(self, call: Call, account: str, order: Order) -> Decimal:
        return sum((f.fee for f in call.engine.fills(account, order_id=order.id)), Decimal(0))

    def _trade_json(self, call: Call, fill: Fill) -> dict:
        spec = call.engine.market(fill.symbol)
        return {
            "id": fill.trade_id,
            "orderId": fill.order_id,
            "srcCurrency": _NAMES.get(currency_id(spec.base), spec.base),
            "dstCurrency": _NAMES.get(currency_id(spec.quote), spec.quote),
            "market": pair(spec),
            "timestamp": _iso(fill.time),
            "type": fill.side.value,
            "price": _text(to_wire(fill.price, spec.quote)),
            "amount": _text(fill.amount),
            "total": _text(to_wire(fill.quote_amount, spec.quote)),
            "fee": _text(to_wire(fill.fee, fill.fee_currency)),
        }

    # ----------------------------------------------------------------- public
    async def options(self, call: Call) -> Response:
        markets = self._markets(call)
        min_orders: dict[str, str] = {}
        for spec in markets.values():
            quote_id = currency_id(spec.quote)
            wire = to_wire(spec.min_notional, spec.quote)
            if quote_id not in min_orders or wire > Decimal(min_orders[quote_id]):
                min_orders[quote_id] = _text(wire)
        currencies = sorted({currency_id(c) for m in markets.values() for c in (m.base, m.quote)})
        coins = [{"coin": c, "name": "Rial" if c == _RIAL else _NAMES.get(c, c.upper()),
                  "stdName": _NAMES.get(c, c.upper())} for c in currencies]
        return _ok(
            features={"enabledFeatures": []},
            coins=coins,
            nobitex={
                "allCurrencies": currencies,
                "activeCurrencies": currencies,
                "minOrders": min_orders,
                "amountPrecisions": {mid: _text(m.step_size) for mid, m in markets.items()},
                "pricePrecisions": {mid: _text(to_wire(m.tick_size, m.quote))
                                    for mid, m in markets.items()},
            },
        )

    async def stats(self, call: Call) -> Response:
        params = await _params(call.request)
        wanted_src = _csv(params.get("srcCurrency"))
        wanted_dst = _csv(params.get("dstCurrency"))
        stats: dict[str, Any] = {}
        for spec in self._markets(call).values():
            src, dst = currency_id(spec.base), currency_id(spec.quote)
            if (wanted_src and src not in wanted_src) or (wanted_dst and dst not in wanted_dst):
                continue
            t = call.engine.ticker(spec.symbol, call.now)

            def wire(value: Decimal | None, quote: str = spec.quote) -> str | None:
                return None if value is None else _text(to_wire(value, quote))

            change = (t.last - t.open) / t.open * 100 if t.open else Decimal(0)
            stats[f"{src}-{dst}"] = {
                "isClosed": False,
                "bestSell": wire(t.ask),
                "bestBuy": wire(t.bid),
                "volumeSrc": _text(t.volume),
                "volumeDst": wire(t.quote_volume),
                "latest": wire(t.last),
                "mark": wire(t.last),
                "dayLow": wire(t.low),
                "dayHigh": wire(t.high),
                "dayOpen": wire(t.open),
                "dayClose": wire(t.last),
                "dayChange": _text(change.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)),
            }
        return _ok(stats=stats)

    async def orderbook(self, call: Call) -> Response:
        symbol = call.request.path_params["symbol"].upper()
        markets = self._markets(call)
        if symbol == "ALL":
            return _ok(**{mid: self._book_json(call, spec) for mid, spec in markets.items()})
        spec = markets.get(symbol)
        if spec is None:
            raise _Refused("InvalidSymbol", f"unknown market symbol {symbol}")
        return _ok(**self._book_json(call, spec))

    def _book_json(self, call: Call, spec: MarketSpec) -> dict:
        book = call.engine.order_book(spec.symbol, 50, call.now)
        ticker = call.engine.ticker(spec.symbol, call.now)
        return {
            "lastUpdate": call.now,
            "lastTradePrice": _text(to_wire(ticker.last, spec.quote)),
            "asks": [[_text(to_wire(p, spec.quote)), _text(q)] for p, q in book.asks],
            "bids": [[_text(to_wire(p, spec.quote)), _text(q)] for p, q in book.bids],
        }

    async def public_trades(self, call: Call) -> Response:
        symbol = call.request.path_params["symbol"].upper()
        spec = self._markets(call).get(symbol)
        if spec is None:
            raise _Refused("InvalidSymbol", f"unknown market symbol {symbol}")
        engine = call.engine
        # every trade once: the taker's side of it
        taker_fills = [f for account in engine.account_ids()
                       for f in engine.fills(account, spec.symbol) if not f.is_maker]
        taker_fills.sort(key=lambda f: f.trade_id, reverse=True)
        return _ok(trades=[{
            "time": f.time,
            "price": _text(to_wire(f.price, spec.quote)),
            "volume": _text(f.amount),
            "type": f.side.value,
        } for f in taker_fills[:100]])

    # ----------------------------------------------------------------- private
    async def wallets(self, call: Call) -> Response:
        account = self._account(call)
        wallets = []
        for index, (code, balance) in enumerate(sorted(call.engine.balances(account).items())):
            wallets.append({
                "id": index + 1,
                "currency": currency_id(code),
                "balance": _text(to_wire(balance.total, code)),
                "blockedBalance": _text(to_wire(balance.locked, code)),
                "activeBalance": _text(to_wire(balance.free, code)),
                "depositAddress": None,
                "depositTag": None,
            })
        return _ok(wallets=wallets)

    async def add_order(self, call: Call) -> Response:
        account = self._account(call)
        params = await _params(call.request)
        side = params.get("type")
        if side not in ("buy", "sell"):
            raise _Refused("ParseError", "type must be buy or sell", 400)
        execution = params.get("execution", "limit")
        if execution not in ("limit", "market"):
            raise _Refused("ParseError", f"execution {execution!r} is not supported", 400)
        spec = self._market_by_currencies(call, params.get("srcCurrency"),
                                          params.get("dstCurrency"))
        client_order_id = params.get("clientOrderId")
        if client_order_id is not None and (not isinstance(client_order_id, str)
                                            or not 0 < len(client_order_id)
                                            <= MAX_CLIENT_ORDER_ID_LENGTH):
            raise _Refused("ParseError", "clientOrderId must be 1 to 32 characters", 400)
        amount = _monetary(params.get("amount"), "amount")
        if amount is None or amount <= 0:
            raise _Refused("ParseError", "amount must be a positive number", 400)
        amount = (amount / spec.step_size).to_integral_value(ROUND_DOWN) * spec.step_size
        price = _monetary(params.get("price"), "price")
        if price is not None:
            price = from_wire(price, spec.quote)
            price = (price / spec.tick_size).to_integral_value(ROUND_HALF_EVEN) * spec.tick_size
        if execution == "limit" and (price is None or price <= 0):
            raise _Refused("InvalidOrderPrice", "price is missing or invalid")
        if params.get("pro") != "yes":
            self._refuse_duplicate(call, account, spec, side, execution, amount,
                                   price if execution == "limit" else None)
        try:
            placement = call.engine.place_order(
                account, spec.symbol, side, execution, amount,
                price if execution == "limit" else None, "GTC", client_order_id, call.now)
        except FilterFailure as exc:
            if exc.filter == "PRICE_FILTER":
                raise _Refused("InvalidOrderPrice", str(exc)) from None
            raise _Refused("SmallOrder", "Order value is below the minimum "
                           f"({_text(to_wire(spec.min_notional, spec.quote))} "
                           f"{currency_id(spec.quote)}) or amount below the minimum") from None
        except InsufficientBalance:
            raise _Refused("OverValueOrder", "Order value exceeds the wallet balance") from None
        except DuplicateClientOrderId:
            raise _Refused("DuplicateClientOrderId",
                           "An open order with this clientOrderId exists") from None
        except (InvalidOrderRequest, UnknownSymbol) as exc:
            raise _Refused("ParseError", str(exc), 400) from None
        order = placement.order
        fee = sum((f.fee for f in placement.fills if f.account == account), Decimal(0))
        return _ok(order=self._order_json(call, order, fee))

    def _refuse_duplicate(self, call: Call, account: str, spec: MarketSpec, side: str,
                          execution: str, amount: Decimal, price: Decimal | None) -> None:
        """Nobitex's guard against network-retried orders (off in its "Pro" mode)."""
        since = call.now - DUPLICATE_WINDOW_MS
        for order in reversed(call.engine.orders(account, spec.symbol)):
            if order.created_at < since:
                return
            if (order.side.value == side and order.type.value == execution
                    and order.amount == amount and order.price == price):
                raise _Refused("DuplicateOrder",
                               "An identical order was placed in the last 10 seconds")

    def _find_order(self, call: Call, account: str, order_id: Any,
                    client_order_id: Any) -> Order:
        """By id (which wins), else by client id among open orders only, as Nobitex does."""
        try:
            if order_id is not None:
                number = _integer(order_id, "order id")
                if number < 1:
                    raise _Refused("ParseError", "order id must be a positive integer", 400)
                return call.engine.get_order(account, number)
            if client_order_id is not None:
                return call.engine.get_order_by_client_id(account, str(client_order_id),
                                                          open_only=True)
        except UnknownOrder:
            raise _Refused("NotFound", "Order not found") from None
        raise _Refused("NullIdAndClientOrderId", "id or clientOrderId is required")

    async def order_status(self, call: Call) -> Response:
        account = self._account(call)
        params = await _params(call.request)
        order = self._find_order(call, account, params.get("id"), params.get("clientOrderId"))
        return _ok(order=self._order_json(call, order, self._order_fee(call, account, order)))

    async def update_status(self, call: Call) -> Response:
        account = self._account(call)
        params = await _params(call.request)
        if params.get("status") != "canceled":
            raise _Refused("ParseError", "status can only be changed to canceled here", 400)
        order = self._find_order(call, account, params.get("order"), params.get("clientOrderId"))
        try:
            order = call.engine.cancel_order(account, call.now, order_id=order.id)
        except OrderNotOpen:
            raise _Refused("InvalidOrderStatus",
                           f"Order is {_STATUS_NAMES[order.status]} and cannot be canceled") \
                from None
        return _ok(updatedStatus="Canceled",
                   order=self._order_json(call, order, self._order_fee(call, account, order)))

    async def list_orders(self, call: Call) -> Response:
        account = self._account(call)
        params = await _params(call.request)
        status = params.get("status", "open")
        keep = _LIST_FILTERS.get(status)
        if keep is None:
            raise _Refused("ParseError", f"unknown status {status!r}", 400)
        symbol = None
        if params.get("srcCurrency") is not None or params.get("dstCurrency") is not None:
            symbol = self._market_by_currencies(call, params.get("srcCurrency"),
                                                params.get("dstCurrency")).symbol
        served = {m.symbol for m in self._markets(call).values()}
        side = params.get("type")
        from_id = _int(params.get("fromId"), "fromId", 0)
        orders = [o for o in call.engine.orders(account, symbol)
                  if o.symbol in served and keep(o) and (side is None or o.side.value == side)
                  and o.id > from_id]
        order_by = params.get("order") or "-created_at"
        key = _SORT_KEYS.get(order_by.lstrip("-"))
        if key is None:
            raise _Refused("ParseError", f"unknown order {order_by!r}", 400)
        orders.sort(key=key, reverse=order_by.startswith("-"))
        page = _int(params.get("page"), "page", 1)
        page_size = _int(params.get("pageSize"), "pageSize", 100)
        if page < 1 or not 1 <= page_size <= 1000:
            raise _Refused("ParseError", "page >= 1 and 1 <= pageSize <= 1000", 400)
        orders = orders[(page - 1) * page_size: page * page_size]
        details = _int(params.get("details"), "details", 1)
        fees = self._fees_by_order(call, account)
        return _ok(orders=[self._order_json(call, o, fees.get(o.id, Decimal(0)), details)
                           for o in orders])

    async def my_trades(self, call: Call) -> Response:
        account = self._account(call)
        params = await _params(call.request)
        src, dst = params.get("srcCurrency"), params.get("dstCurrency")
        if (src is None) != (dst is None):
            raise _Refused("ParseError", "srcCurrency and dstCurrency go together", 400)
        symbol = None if src is None else self._market_by_currencies(call, src, dst).symbol
        served = {m.symbol for m in self._markets(call).values()}
        fills = [f for f in call.engine.fills(account, symbol,
                                              since=call.now - TRADE_HISTORY_MS,
                                              from_id=_int(params.get("fromId"), "fromId", 0))
                 if f.symbol in served]
        fills.reverse()  # newest first
        page = _int(params.get("page"), "page", 1)
        page_size = _int(params.get("pageSize"), "pageSize", 30)
        if page < 1 or not 1 <= page_size <= 100:
            raise _Refused("ParseError", "page >= 1 and 1 <= pageSize <= 100", 400)
        chunk = fills[(page - 1) * page_size: page * page_size]
        return _ok(trades=[self._trade_json(call, f) for f in chunk],
                   hasNext=len(fills) > page * page_size)


class _Unauthorized(_Refused):
    def __init__(self) -> None:
        super().__init__("InvalidToken", "Invalid token.", 401)


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "token" else None


async def _params(request: Request) -> dict[str, Any]:
    """Query parameters, then the JSON or form body (Nobitex accepts both encodings)."""
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if not body:
        return params
    content_type = request.headers.get("content-type", "")
    if "json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            raise _Refused("ParseError", "body is not valid JSON", 400) from None
        if not isinstance(data, dict):
            raise _Refused("ParseError", "body must be a JSON object", 400)
        params.update(data)
    else:
        params.update(parse_qsl(body.decode("utf-8", "replace")))
    return params


def _monetary(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Refused("ParseError", f"{name} must be a number", 400)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _Refused("ParseError", f"{name} must be a number", 400) from None
    if not number.is_finite():
        raise _Refused("ParseError", f"{name} must be finite", 400)
    return number


_DIGITS = re.compile(r"^[0-9]{1,20}$")


def _integer(value: Any, name: str) -> int:
    """A non-negative integer written as a JSON integer or a string of digits; anything else
    (``1.5``, ``"1.5"``, ``true``, ``" 1"``, ``-1``) is refused, never truncated."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DIGITS.match(value):
        return int(value)
    raise _Refused("ParseError", f"{name} must be a non-negative integer", 400)


def _int(value: Any, name: str, default: int) -> int:
    return default if value is None else _integer(value, name)


def _csv(value: Any) -> set[str]:
    if not isinstance(value, str) or not value:
        return set()
    return {part.strip().lower() for part in value.split(",") if part.strip()}
