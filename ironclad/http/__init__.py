"""The node's HTTP control API: an ASGI app assembled from per-component route groups.

A component offers its routes as a :class:`RouteGroupFactory` (``ApiContext -> RouteGroup``);
:data:`ROUTE_GROUPS` lists those the node serves (orders now; health, metrics, status and
alerts are added here by their components). :func:`build_app` validates every request against
the declared operations and publishes the OpenAPI document at ``/openapi.json``;
:class:`HttpServer` runs it under uvicorn on a thread of its own.
"""

from ironclad.http.app import build_app
from ironclad.http.errors import ApiError
from ironclad.http.observability import observability_routes
from ironclad.http.orders import orders_routes
from ironclad.http.routes import (
    Answer,
    ApiContext,
    Inputs,
    Operation,
    Reply,
    RouteGroup,
    RouteGroupFactory,
)
from ironclad.http.schema import Body, Field, Kind
from ironclad.http.server import HttpServer
from ironclad.http.status_page import status_page_routes

#: The route groups the node serves, one per component (health, metrics, status and alerts
#: add theirs here).
ROUTE_GROUPS: tuple[RouteGroupFactory, ...] = (orders_routes, observability_routes,
                                               status_page_routes)

__all__ = [
    "ROUTE_GROUPS",
    "Answer",
    "ApiContext",
    "ApiError",
    "Body",
    "Field",
    "HttpServer",
    "Inputs",
    "Kind",
    "Operation",
    "Reply",
    "RouteGroup",
    "RouteGroupFactory",
    "build_app",
    "observability_routes",
    "orders_routes",
    "status_page_routes",
]
