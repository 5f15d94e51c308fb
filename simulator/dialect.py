"""How a REST dialect plugs into the venue app (Binance here, Nobitex in ``simulator.nobitex``).

A dialect is an object with:

* ``name: str``
* ``routes() -> list[Route]``: its HTTP routes. ``Route.endpoint`` names the logical endpoint
  (``create_order``, ``fetch_ticker``, ... see ``simulator.faults.ENDPOINTS``) that fault rules
  target; ``None`` exempts the route from faults.
* ``account_of(request, venue) -> str | None``: the engine account id the request's
  credentials name (None when they name none), for per-account fault rules and
  ``balance_drift``; it must not reject or log anything, the handler authenticates.
* ``render_fault(fault, call) -> Response``: the dialect's own answer for an answering fault
  (``error_500``, ``error_502``, ``error_503``, ``maintenance``, ``rate_limit``, ``ban``);
  ``call.retry_after_s`` is set for ``rate_limit`` and ``ban``.

The app (``simulator.app``) runs every route through the same pipeline: advance the engine's
clock, decide faults, delay, drift, answer a fault / hold / run the handler, and drop the
connection after running it for ``lose_response``. Handlers are ``async def handler(call)``
and must only call the engine synchronously (no awaits between reading and mutating it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import attrs
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from simulator.venue import Venue

__all__ = ["Call", "Dialect", "Route"]


@attrs.define(slots=True)
class Call:
    """One request as a handler sees it. ``now`` is the venue's true time (ms);
    ``server_time`` includes any ``clock_skew`` fault and is what timestamp checks use."""

    request: Request
    venue: Venue
    endpoint: str | None
    now: int
    skew_ms: int = 0
    retry_after_s: int | None = None

    @property
    def server_time(self) -> int:
        return self.now + self.skew_ms

    @property
    def engine(self):  # noqa: ANN201 - simulator.engine.Engine
        return self.venue.engine


Handler = Callable[[Call], Awaitable[Response]]


@attrs.frozen(slots=True)
class Route:
    method: str
    path: str
    endpoint: str | None
    handler: Handler


class Dialect(Protocol):
    name: str

    def routes(self) -> list[Route]: ...

    def account_of(self, request: Request, venue: Venue) -> str | None: ...

    def render_fault(self, fault: str, call: Call) -> Response: ...
