"""The control API's ASGI app (Starlette) built from route groups.

Every request is validated against its operation's declaration before the handler runs;
every failure answers the one error shape (:mod:`ironclad.http.errors`), unknown paths and
methods included; an unexpected exception is logged and answered 500, never a bare page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from loguru import logger
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ironclad.http.errors import ApiError
from ironclad.http.openapi import openapi_document
from ironclad.http.routes import Answer, Inputs, Operation, Reply, RouteGroup
from ironclad.http.schema import parse_query
from messages.codec import plain_decimal

__all__ = ["API_TITLE", "build_app", "json_response"]

API_TITLE = "Ironclad control API"
_DESCRIPTION = (
    "JSON over HTTP on the loopback interface. Amounts and prices are decimal strings. "
    "Every error answers {\"error\": {\"code\", \"message\", \"field\"}}; a 4xx changed nothing."
)
_MAX_BODY = 64 * 1024


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain_decimal(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response; Decimals become plain decimal strings (never floats, never an
    exponent: the form the API takes as input)."""
    body = json.dumps(payload, default=_default, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _error(error: ApiError) -> Response:
    return json_response(error.status, error.body(), error.headers)


def _endpoint(op: Operation) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            path = {f.name: f.parse(request.path_params[f.name], status=400, from_text=True)
                    for f in op.path_params}
            counts = {key: len(request.query_params.getlist(key))
                      for key in request.query_params}
            query = parse_query(request.query_params, op.query_params, counts)
            body: dict[str, Any] = {}
            if op.body is not None:
                raw = await request.body()
                if len(raw) > _MAX_BODY:
                    raise ApiError(413, "body_too_large", f"the body exceeds {_MAX_BODY} bytes")
                body = op.body.parse(raw)
            answer = await op.handler(Inputs(path=path, query=query, body=body))
        except ApiError as error:
            return _error(error)
        except Exception:
            logger.bind(context="http_handler", operation=op.operation_id).exception(
                "control API: {} {} failed", op.method, request.url.path
            )
            return _error(ApiError(500, "internal",
                                   "internal error; the request may or may not have taken "
                                   "effect: look it up before repeating it"))
        if isinstance(answer, Answer):
            return json_response(answer.status, answer.payload)
        return answer

    return endpoint


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    return _error(ApiError(exc.status_code, codes.get(exc.status_code, "http_error"),
                           str(exc.detail), headers=dict(exc.headers or {})))


def build_app(groups: Sequence[RouteGroup], *, version: str = "1") -> Starlette:
    """The app serving ``groups`` plus ``GET /openapi.json`` describing all of them."""
    document: dict[str, Any] = {}

    async def openapi(_inputs: Inputs) -> Answer:
        return Answer(200, document)

    meta = RouteGroup(
        tag="meta",
        description="The API's own description.",
        operations=(Operation(
            method="GET", path="/openapi.json", operation_id="getOpenApi",
            summary="This OpenAPI 3.1 document", handler=openapi,
            replies={200: Reply("the document", "OpenApiDocument")},
        ),),
        schemas={"OpenApiDocument": {"type": "object", "required": ["openapi", "paths"]}},
    )
    groups = (*groups, meta)
    document.update(openapi_document(groups, title=API_TITLE, version=version,
                                     description=_DESCRIPTION))
    routes = [Route(op.path, _endpoint(op), methods=[op.method])
              for group in groups for op in group.operations]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
