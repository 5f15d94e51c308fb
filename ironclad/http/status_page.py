"""The operator's status page: ``GET /`` and its static files, and the venue's own balances.

The page (``ironclad/http/static/``: plain HTML, JS and CSS, no build step) polls the JSON
routes (``/status``, ``/alerts``, ``/orders``, ``/balances``) and
``GET /venues/{venue}/balance``: the venue's figures as ``fetch_balance`` returns them through
the gateway (breaker, rate limiter, pool) — the same source reconciliation compares the ledger
with, whatever the venue is. That answer is kept ``VENUE_BALANCE_TTL`` seconds, so open pages
cost the venue at most one call per venue in that time.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ironclad.http.errors import ApiError
from ironclad.http.routes import Answer, ApiContext, Inputs, Operation, Reply, RouteGroup
from ironclad.http.schema import Field, Kind
from messages.codec import plain_decimal

__all__ = ["status_page_routes"]

#: Where the page's files live (shipped with the package).
STATIC_DIR = Path(__file__).with_name("static")
#: Seconds one venue balance answer is reused for.
VENUE_BALANCE_TTL = 5.0

_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
_VENUE = Field(name="venue", kind=Kind.STRING, max_length=64,
               description="the venue's short name, as in /status (e.g. sim)")


def _fetch_venue_balance(venue: str, timeout: float) -> dict[str, Any]:
    """One ``fetch_balance`` through the gateway, as JSON: figures or the typed error."""
    from actors.api import call  # actors import ironclad: late
    from messages.exchange import Category, ExchangeRequest, ExchangeResult

    request = ExchangeRequest.new(venue, "fetch_balance", category=Category.TRADING,
                                  idempotent=True, timeout=timeout)
    reply = call(request)
    at = time.time()
    if not isinstance(reply, ExchangeResult):
        return {"venue": venue, "at": at, "ok": False, "error": type(reply).__name__,
                "detail": _detail(reply)}
    value: Any = reply.value  # ccxt's unified balance, frozen: a mapping of mappings
    currencies = sorted(
        c for c, total in (value.get("total") or {}).items()
        if total not in (None, "0", 0) or (value.get("used") or {}).get(c) not in (None, "0", 0))
    balances = [{"currency": c,
                 "total": _text(value["total"].get(c)),
                 "free": _text((value.get("free") or {}).get(c)),
                 "used": _text((value.get("used") or {}).get(c))} for c in currencies]
    return {"venue": venue, "at": at, "ok": True, "source": "fetch_balance via the gateway",
            "stale": bool(getattr(reply, "stale", False)), "balances": balances}


def _detail(reply: Any) -> str:
    """Why the venue did not answer, shortened, with request signatures and keys redacted
    (ccxt's messages carry the signed URL)."""
    from ironclad.logs import redact

    for name in ("reason", "message"):
        if getattr(reply, name, None):
            text = redact(str(getattr(reply, name)))
            return text if len(text) <= 240 else text[:239] + "…"
    if hasattr(reply, "next_probe_in"):
        return f"breaker open; next probe in {reply.next_probe_in:.1f}s"
    return "no answer before the deadline"


def _text(value: Any) -> str | None:
    """A venue figure as the API writes decimals (plain, no exponent)."""
    if value is None:
        return None
    try:
        return plain_decimal(Decimal(str(value)))
    except InvalidOperation:
        return str(value)


def status_page_routes(context: ApiContext) -> RouteGroup:
    """``GET /`` (the page), its script and style sheet, and the venue's balances."""
    cache: dict[str, dict[str, Any]] = {}
    locks: dict[str, asyncio.Lock] = {}

    def static(name: str, media_type: str) -> Any:
        async def handler(_inputs: Inputs) -> Response:
            body = await run_in_threadpool((STATIC_DIR / name).read_bytes)
            return Response(body, media_type=media_type,
                            headers={"Cache-Control": "no-cache"})
        return handler

    async def venue_balance(inputs: Inputs) -> Answer:
        venue = inputs.path["venue"]
        lock = locks.setdefault(venue, asyncio.Lock())
        async with lock:  # one call in flight per venue, however many pages poll
            held = cache.get(venue)
            if held is None or time.time() - held["at"] >= VENUE_BALANCE_TTL:
                try:
                    held = await run_in_threadpool(_fetch_venue_balance, venue,
                                                   min(context.ask_timeout, 5.0))
                except ValueError as error:  # a venue name ExchangeRequest refuses
                    raise ApiError(422, "invalid_venue", str(error), "venue") from None
                cache[venue] = held
        return Answer(200 if held["ok"] else 503, held)

    operations = tuple(
        Operation(method="GET", path=path, operation_id=f"getStatusPage{name.split('.')[1]}",
                  summary=f"The operator's status page: {name}", handler=static(name, kind),
                  replies={200: Reply(kind)})
        for path, (name, kind) in _FILES.items()
    ) + (
        Operation(
            method="GET", path="/venues/{venue}/balance", operation_id="getVenueBalance",
            summary="The venue's own balances (fetch_balance through the gateway)",
            description=f"Reused for {VENUE_BALANCE_TTL:g}s. 503 with the typed error "
                        "(CircuitOpen, DeadlineExceeded...) when the venue did not answer.",
            handler=venue_balance, path_params=(_VENUE,),
            replies={200: Reply("the venue's figures", "VenueBalance"),
                     503: Reply("the venue did not answer (error names why)", "VenueBalance")},
        ),
    )
    schema = {
        "type": "object",
        "required": ["venue", "at", "ok"],
        "properties": {
            "venue": {"type": "string"},
            "at": {"type": "number", "description": "when the venue answered (Unix seconds)"},
            "ok": {"type": "boolean"},
            "source": {"type": "string"},
            "stale": {"type": "boolean"},
            "error": {"type": "string"},
            "detail": {"type": "string"},
            "balances": {"type": "array", "items": {
                "type": "object", "required": ["currency", "total", "free", "used"],
                "properties": {k: {"type": ["string", "null"]}
                               for k in ("currency", "total", "free", "used")}}},
        },
    }
    return RouteGroup(tag="status-page",
                      description="The operator's live status page and what only it needs.",
                      operations=operations, schemas={"VenueBalance": schema})
