"""The venue's ASGI app: dialect routes through one fault pipeline, plus the ``/_sim`` admin API.

``build_app(venue, dialects)`` returns a Starlette app. Every dialect route runs: advance the
engine clock → decide faults → latency → balance drift → answer a fault (dialect-rendered) or
hold (``hang``) or run the handler → for ``lose_response``, drop the connection after running
it. The admin API (JSON, decimals as strings) is never subject to faults:

* ``GET /_sim/orders[?account=ID|KEY|TOKEN]``, ``GET /_sim/trades[?account=...]``
* ``GET /_sim/balances``, ``GET /_sim/audit`` (invariant violations, ``[]`` when healthy)
* ``POST /_sim/faults`` (replace: ``{"seed", "rules"}``), ``GET`` (plan + per-rule stats),
  ``DELETE`` (clear)
* ``POST /_sim/reset``; ``GET /_sim/health``
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from loguru import logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from simulator.dialect import Call, Dialect, Route
from simulator.errors import ConfigError, UnknownAccount
from simulator.faults import FaultDecision, FaultPlan
from simulator.model import Fill, Order
from simulator.venue import Venue

__all__ = ["HeldResponse", "JSONResponse", "LostResponse", "build_app", "default_dialects"]

_RAW_SEND = "simulator.raw_send"
_NO_FAULT = FaultDecision()


class JSONResponse(Response):
    """Compact JSON (no spaces), as exchanges answer."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


class LostResponse(Response):
    """Drop the connection without answering: the client sees a connection error, never a 500."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200)

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI signature
        await _drop_connection(scope)


class HeldResponse(Response):
    """Hold the request until the client disconnects (or ``hold_s`` passes), then drop it."""

    def __init__(self, hold_s: float) -> None:
        super().__init__(b"", status_code=200)
        self.hold_s = hold_s

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI signature
        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        try:
            await asyncio.wait_for(until_disconnect(), timeout=self.hold_s)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            # The server is shutting down: the held client loses its connection, as it
            # would with a real venue going away, instead of getting a 500.
            await _drop_connection(scope)
            return
        await _drop_connection(scope)


async def _drop_connection(scope: dict) -> None:
    raw_send = scope.get(_RAW_SEND)
    transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("cannot reach the connection's transport to drop it")
    transport.close()
    # Let the server's connection_lost run, so it knows the client is gone and sends nothing.
    for _ in range(3):
        await asyncio.sleep(0)


class _KeepRawSend:
    """Outermost ASGI layer: remembers the server's own ``send`` so a response can drop the
    connection (uvicorn's ``send`` is a bound method of the cycle that owns the transport)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI signature
        scope[_RAW_SEND] = send
        await self.app(scope, receive, send)


def default_dialects() -> list[Dialect]:
    """Binance, and Nobitex when its dialect module is present."""
    from simulator.binance import BinanceDialect

    dialects: list[Dialect] = [BinanceDialect()]
    try:
        from simulator.nobitex import NobitexDialect
    except ImportError:
        logger.warning("simulator.nobitex not available; serving the Binance dialect only")
    else:
        dialects.append(NobitexDialect())
    return dialects


def _pipeline(venue: Venue, dialect: Dialect, route: Route):
    async def endpoint(request: Request) -> Response:
        now = venue.now()
        venue.engine.advance(now)
        decision = _NO_FAULT
        account = None
        if route.endpoint is not None:
            account = dialect.account_of(request, venue)
            decision = venue.faults.decide(route.endpoint, account, now)
        call = Call(request, venue, route.endpoint, now, decision.skew_ms,
                    decision.retry_after_s)
        if decision.is_clean:
            response = await route.handler(call)
            logger.debug("{} {} {} -> {}", dialect.name, request.method,
                         request.scope["path"], response.status_code)
            return response
        logger.debug("{} {} {} faults: {}", dialect.name, request.method, request.scope["path"],
                     decision)
        if decision.delay_ms:
            await asyncio.sleep(decision.delay_ms / 1000)
        for rule in decision.drifts:
            target = rule.target_account or account
            if target is not None and rule.currency is not None and rule.amount is not None:
                try:
                    venue.engine.drift_balance(target, rule.currency, rule.amount, now)
                except UnknownAccount:
                    logger.debug("balance_drift: unknown account {}", target)
        if decision.error is not None:
            return dialect.render_fault(decision.error, call)
        if decision.hang_s is not None:
            return HeldResponse(decision.hang_s)
        response = await route.handler(call)
        if decision.lose_response:
            return LostResponse()
        return response

    return endpoint


def _bad_request(message: str, field: str | None = None) -> JSONResponse:
    body = {"error": message} if field is None else {"error": message, "field": field}
    return JSONResponse(body, status_code=400)


def _text(value: Decimal) -> str:
    """Plain decimal notation (never ``1E+1`` or ``0E-8``): exact and easy to read."""
    return format(value, "f")


def order_to_admin(order: Order) -> dict[str, Any]:
    return {
        "account": order.account, "id": order.id, "client_order_id": order.client_order_id,
        "symbol": order.symbol, "side": order.side.value, "type": order.type.value,
        "time_in_force": order.time_in_force.value,
        "price": None if order.price is None else _text(order.price),
        "amount": _text(order.amount), "filled": _text(order.filled), "cost": _text(order.cost),
        "status": order.status.value, "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def fill_to_admin(fill: Fill) -> dict[str, Any]:
    return {
        "account": fill.account, "id": fill.trade_id, "order_id": fill.order_id,
        "symbol": fill.symbol, "side": fill.side.value, "price": _text(fill.price),
        "amount": _text(fill.amount), "cost": _text(fill.quote_amount), "fee": _text(fill.fee),
        "fee_currency": fill.fee_currency, "is_maker": fill.is_maker, "time": fill.time,
    }


def _admin_routes(venue: Venue) -> list[StarletteRoute]:
    engine = venue.engine

    def accounts_of(request: Request) -> list[str]:
        ref = request.query_params.get("account")
        if ref is None:
            return engine.account_ids()
        return [engine.resolve_account(ref).id]

    async def orders(request: Request) -> Response:
        try:
            ids = accounts_of(request)
        except UnknownAccount as exc:
            return _bad_request(str(exc))
        return JSONResponse([order_to_admin(o) for a in ids for o in engine.orders(a)])

    async def trades(request: Request) -> Response:
        try:
            ids = accounts_of(request)
        except UnknownAccount as exc:
            return _bad_request(str(exc))
        return JSONResponse([fill_to_admin(f) for a in ids for f in engine.fills(a)])

    async def balances(request: Request) -> Response:
        return JSONResponse({
            account: {c: {"free": _text(b.free), "locked": _text(b.locked)}
                      for c, b in wallets.items()}
            for account, wallets in engine.all_balances().items()
        })

    async def audit(request: Request) -> Response:
        return JSONResponse({"problems": engine.audit(),
                             "totals": {c: _text(v) for c, v in engine.totals().items()}})

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                data = json.loads(await request.body())
            except (ValueError, RecursionError) as exc:
                return _bad_request(f"body is not JSON: {exc}")
            try:
                plan = venue.install_faults(FaultPlan.from_json(data))
            except ConfigError as exc:
                return _bad_request(str(exc), exc.field)
            logger.info("fault plan installed: {}", plan.to_json())
        elif request.method == "DELETE":
            venue.faults.clear(venue.now())
            logger.info("fault plan cleared")
        body = venue.faults.plan.to_json()
        body["stats"] = venue.faults.stats()
        body["banned_until"] = venue.faults.banned_until or None
        return JSONResponse(body)

    async def reset(request: Request) -> Response:
        venue.reset()
        logger.info("venue reset")
        return JSONResponse({"reset": True})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "time": venue.now()})

    return [
        StarletteRoute("/_sim/orders", orders, methods=["GET"]),
        StarletteRoute("/_sim/trades", trades, methods=["GET"]),
        StarletteRoute("/_sim/balances", balances, methods=["GET"]),
        StarletteRoute("/_sim/audit", audit, methods=["GET"]),
        StarletteRoute("/_sim/faults", faults, methods=["GET", "POST", "DELETE"]),
        StarletteRoute("/_sim/reset", reset, methods=["POST"]),
        StarletteRoute("/_sim/health", health, methods=["GET"]),
    ]


def build_app(venue: Venue, dialects: Iterable[Dialect] | None = None) -> _KeepRawSend:
    """The ASGI app serving ``dialects`` (default: ``default_dialects()``) and the admin API."""
    routes = _admin_routes(venue)
    by_path: dict[str, dict[str, Any]] = {}
    for dialect in (default_dialects() if dialects is None else list(dialects)):
        for route in dialect.routes():
            methods = by_path.setdefault(route.path, {})
            if route.method in methods:
                raise ConfigError(f"two routes for {route.method} {route.path}")
            methods[route.method] = _pipeline(venue, dialect, route)
    for path, methods in by_path.items():
        routes.append(StarletteRoute(path, _by_method(methods), methods=list(methods)))
    return _KeepRawSend(Starlette(routes=routes))


def _by_method(handlers: dict[str, Any]):
    if len(handlers) == 1:
        return next(iter(handlers.values()))

    async def endpoint(request: Request) -> Response:
        return await handlers[request.method](request)

    return endpoint
