"""The OpenAPI 3.1 document, generated from the route groups' declarations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ironclad.http.errors import ERROR_SCHEMA
from ironclad.http.routes import Operation, RouteGroup

__all__ = ["OPENAPI_VERSION", "openapi_document"]

OPENAPI_VERSION = "3.1.0"

#: Statuses every operation may answer, whatever it declares.
_COMMON_ERRORS = {
    500: "internal error (a bug); the request may or may not have taken effect",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(op: Operation, tag: str) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [tag],
        "responses": {},
    }
    if op.description:
        document["description"] = op.description
    parameters = [
        {"name": f.name, "in": "path", "required": True, "description": f.description,
         "schema": f.json_schema()}
        for f in op.path_params
    ] + [
        {"name": f.name, "in": "query", "required": f.required, "description": f.description,
         "schema": f.json_schema()}
        for f in op.query_params
    ]
    if parameters:
        document["parameters"] = parameters
    if op.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body.schema_name)}},
        }
    replies = {status: (reply.description, reply.schema) for status, reply in op.replies.items()}
    for status, description in _COMMON_ERRORS.items():
        replies.setdefault(status, (description, "Error"))
    for status, (description, schema) in sorted(replies.items()):
        answer: dict[str, Any] = {"description": description}
        if schema is not None:
            answer["content"] = {"application/json": {"schema": _ref(schema)}}
        document["responses"][str(status)] = answer
    return document


def openapi_document(groups: Sequence[RouteGroup], *, title: str, version: str,
                     description: str) -> dict[str, Any]:
    """The document describing every operation and schema of ``groups``.

    Raises ValueError if two groups declare the same schema name differently or the same
    method and path twice: a silent override would publish a wrong contract.
    """
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for group in groups:
        for name, schema in group.schemas.items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"schema {name!r} is declared twice, differently")
            schemas[name] = dict(schema)
        for op in group.operations:
            if op.body is not None:
                schemas[op.body.schema_name] = op.body.json_schema()
            methods = paths.setdefault(op.path, {})
            if op.method.lower() in methods:
                raise ValueError(f"{op.method} {op.path} is declared twice")
            methods[op.method.lower()] = _operation(op, group.tag)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version, "description": description},
        "servers": [{"url": "/"}],
        "tags": [{"name": g.tag, "description": g.description} for g in groups],
        "paths": paths,
        "components": {"schemas": schemas},
    }
