"""The operator's routes: health, metrics, status, alerts and silences.

``GET /health`` answers the health actor's latest report: 200 while the node is ok or
degraded, 503 when it is down, with every component's status and reason. ``GET /status``
answers what the latest poll read (the supervision tree with states, restart counts and last
failures; breakers; the pool; trading, reconciliation, ledger, alerts). ``GET /metrics`` is the
Prometheus text exposition. The alert routes turn validated input into the alert manager's
commands; a command it refuses answers 404 (no such alert) or 409 (not in a state that allows
it), and changes nothing.
"""

from __future__ import annotations

import datetime
import enum
import re
import types
import typing
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ironclad.http.errors import ApiError
from ironclad.http.routes import Answer, ApiContext, Inputs, Operation, Reply, RouteGroup
from ironclad.http.schema import Body, Field, Kind
from messages.alerts import (
    AckAlert,
    Alert,
    AlertCommandRejected,
    AlertList,
    CreateSilence,
    LabelMatcher,
    ListAlerts,
    ListNotifications,
    ListSilences,
    MatchOp,
    NotificationList,
    Silence,
    SilenceList,
)
from messages.base import FrozenMap
from messages.codec import plain_decimal, to_api_dict

__all__ = ["HEALTH_ACTOR", "ALERT_MANAGER_ACTOR", "observability_routes", "parse_matchers",
           "record_schemas", "to_json"]

#: The actors these routes ask (stable names in the node's tree).
HEALTH_ACTOR = "health"
ALERT_MANAGER_ACTOR = "alerts/alert-manager"

#: Longest silence accepted (seconds): 30 days.
MAX_SILENCE = 30 * 24 * 3600

_MATCHER = re.compile(
    r"\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"
    r"(?:\"(?P<quoted>(?:[^\"\\]|\\.)*)\"|(?P<bare>[^\s,\"{}]+))\s*(?:,|$)")


def parse_matchers(text: str) -> tuple[LabelMatcher, ...]:
    """Alertmanager's matcher syntax, e.g. ``{venue="sim", rule=~"breaker-.*"}`` (braces
    optional, values quoted or bare). ValueError with the position of the first bad part."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    matchers = []
    position = 0
    while position < len(body):
        if not body[position:].strip():
            break
        found = _MATCHER.match(body, position)
        if found is None:
            raise ValueError(f"expected name=\"value\" (or !=, =~, !~) at {body[position:]!r}")
        value = found["quoted"] if found["quoted"] is not None else found["bare"]
        if found["quoted"] is not None:
            value = re.sub(r"\\(.)", r"\1", value)
        matchers.append(LabelMatcher(found["name"], MatchOp(found["op"]), value))
        position = found.end()
    if not matchers:
        raise ValueError("at least one matcher is required, e.g. venue=\"sim\"")
    return tuple(matchers)


def to_json(value: Any) -> Any:
    """A JSON-ready copy of an attrs record tree: enums by value, datetimes ISO 8601, tuple
    keys joined with '/', Decimals as plain decimal strings."""
    if attrs.has(type(value)):
        return {f.name: to_json(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {"/".join(k) if isinstance(k, tuple) else str(k): to_json(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return plain_decimal(value)
    return str(value)


ACK_BODY = Body(
    schema_name="AckAlertBody",
    description="Who acknowledges, and for how long (left out: until the alert resolves).",
    fields=(
        Field(name="by", kind=Kind.STRING, required=True, max_length=64,
              description="who acknowledges (shown in the alert)"),
        Field(name="duration", kind=Kind.INTEGER, minimum=1, maximum=MAX_SILENCE,
              description="seconds; after them a still-firing alert notifies again"),
    ),
)

SILENCE_BODY = Body(
    schema_name="CreateSilenceBody",
    description="Mute every alert whose labels match all matchers, for duration seconds.",
    fields=(
        Field(name="matchers", kind=Kind.STRING, required=True, max_length=1024,
              description="Alertmanager matchers, e.g. venue=\"sim\", rule=~\"breaker-.*\" "
                          "(operators =, !=, =~, !~; regular expressions are anchored)"),
        Field(name="duration", kind=Kind.INTEGER, required=True, minimum=1,
              maximum=MAX_SILENCE, description="seconds from now"),
        Field(name="created_by", kind=Kind.STRING, required=True, max_length=64,
              description="who silences"),
        Field(name="comment", kind=Kind.STRING, max_length=512, description="why"),
    ),
)

_INCLUDE_RESOLVED = Field(name="include_resolved", kind=Kind.CHOICE, choices=("true", "false"),
                          description="also resolved alerts (default false)")
_INCLUDE_EXPIRED = Field(name="include_expired", kind=Kind.CHOICE, choices=("true", "false"),
                         description="also expired silences (default false)")
_LIMIT = Field(name="limit", kind=Kind.INTEGER, minimum=1, maximum=10_000,
               description="at most this many, latest first (default 100)")
_ALERT_ID = Field(name="id", kind=Kind.STRING, max_length=128,
                  description="the alert's id (its fingerprint)")

_COMPONENT_SCHEMA = {
    "type": "object",
    "required": ["component", "status", "reason", "critical"],
    "properties": {
        "component": {"type": "string"},
        "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
        "reason": {"type": "string"},
        "critical": {"type": "boolean",
                     "description": "false: can make the node at most degraded"},
    },
}
_SCHEMAS: dict[str, Any] = {
    "Health": {
        "type": "object",
        "required": ["status", "reason", "at", "components"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
            "reason": {"type": "string"},
            "at": {"type": "number", "description": "when it was derived (Unix seconds)"},
            "components": {"type": "array", "items": {"$ref": "#/components/schemas/"
                                                               "ComponentHealth"}},
        },
    },
    "ComponentHealth": _COMPONENT_SCHEMA,
    "HealthOrError": {"oneOf": [{"$ref": "#/components/schemas/Health"},
                                {"$ref": "#/components/schemas/Error"}]},
    "NodeStatus": {
        "type": "object",
        "required": ["at", "health", "tree", "venues"],
        "properties": {
            "at": {"type": "number"},
            "health": {"$ref": "#/components/schemas/Health"},
            "tree": {"type": "object", "description": "the supervision tree: id, name, "
                     "strategy, restarts_in_period, children (id, name, kind, state, "
                     "restarts, last_failure, supervisor); or {reason} if unreadable"},
            "venues": {"type": "array", "items": {"type": "object"},
                       "description": "per venue: breakers, pool, rate_limit"},
            "trading": {"type": ["object", "null"]},
            "reconciliation": {"type": ["object", "null"]},
            "ledger": {"type": ["object", "null"]},
            "alerts": {"type": ["object", "null"]},
        },
    },
}


def record_schemas(cls: type) -> dict[str, dict[str, Any]]:
    """JSON schemas of the alert records as the codec writes them (floats are Unix seconds or
    durations, labels are string maps), for the OpenAPI components."""
    schemas: dict[str, dict[str, Any]] = {}

    def of(kind: Any) -> dict[str, Any]:
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(options) == 1:
            return {"anyOf": [of(options[0]), {"type": "null"}]}
        if typing.get_origin(kind) is tuple:
            return {"type": "array", "items": of(typing.get_args(kind)[0])}
        simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
        if kind in simple:
            return {"type": simple[kind]}
        if kind is FrozenMap:
            return {"type": "object", "additionalProperties": {"type": "string"}}
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return {"type": "string", "enum": [member.value for member in kind]}
        if attrs.has(kind):
            add(kind)
            return {"$ref": f"#/components/schemas/{kind.__name__}"}
        raise TypeError(f"no JSON schema for {kind!r}")

    def add(kind: type) -> None:
        if kind.__name__ in schemas:
            return
        schemas[kind.__name__] = {}
        hints = typing.get_type_hints(kind)
        fields = attrs.fields(kind)
        schemas[kind.__name__] = {
            "type": "object",
            "description": " ".join((kind.__doc__ or kind.__name__).split("\n\n")[0].split()),
            "required": [f.name for f in fields],
            "properties": {f.name: of(hints[f.name]) for f in fields},
        }

    add(cls)
    return schemas


def _refused(reply: AlertCommandRejected) -> ApiError:
    if "no alert" in reply.reason or "no active silence" in reply.reason:
        return ApiError(404, "not_found", reply.reason, "id")
    return ApiError(409, "conflict", reply.reason)


def observability_routes(context: ApiContext) -> RouteGroup:
    """The health, status, metrics and alert routes, asking the health actor and the alert
    manager through ``context``."""
    from actors.health import GetHealth, GetMetrics, GetNodeStatus  # actors import us: late

    def health_json(view: Any) -> dict[str, Any]:
        report = view.report
        return {"status": report.status.value, "reason": report.reason, "at": view.at,
                "components": [to_json(c) for c in report.components]}

    async def health(_inputs: Inputs) -> Answer:
        view = await context.ask(HEALTH_ACTOR, GetHealth())
        return Answer(503 if view.report.status.value == "down" else 200, health_json(view))

    async def status(_inputs: Inputs) -> Answer:
        view = await context.ask(HEALTH_ACTOR, GetNodeStatus())
        readings = view.readings
        return Answer(200, {
            "at": view.at,
            "health": health_json(view),
            "tree": to_json(readings.tree),
            "venues": to_json(readings.venues),
            "trading": to_json(readings.trading),
            "reconciliation": to_json(readings.reconciliation),
            "ledger": to_json(readings.ledger),
            "alerts": to_json(readings.alerts),
        })

    async def metrics(_inputs: Inputs) -> Response:
        from ironclad.metrics import CONTENT_TYPE

        registry = await context.ask(HEALTH_ACTOR, GetMetrics())
        body = await run_in_threadpool(registry.render)
        return Response(body, status_code=200, headers={"Content-Type": CONTENT_TYPE})

    async def list_alerts(inputs: Inputs) -> Answer:
        query = inputs.query
        reply = await context.ask(ALERT_MANAGER_ACTOR, ListAlerts(
            include_resolved=query.get("include_resolved") == "true",
            limit=query.get("limit", 100)))
        if not isinstance(reply, AlertList):
            raise TypeError(f"unexpected answer {type(reply).__name__}")
        return Answer(200, to_api_dict(reply, AlertList))

    async def ack_alert(inputs: Inputs) -> Answer:
        body = inputs.body
        reply = await context.ask(ALERT_MANAGER_ACTOR, AckAlert(
            alert_id=inputs.path["id"], by=body["by"],
            duration=None if "duration" not in body else float(body["duration"])))
        if isinstance(reply, AlertCommandRejected):
            raise _refused(reply)
        return Answer(200, to_api_dict(reply, Alert))

    async def create_silence(inputs: Inputs) -> Answer:
        body = inputs.body
        try:
            matchers = parse_matchers(body["matchers"])
        except ValueError as error:
            raise ApiError(422, "invalid_matchers", f"matchers: {error}", "matchers") from None
        reply = await context.ask(ALERT_MANAGER_ACTOR, CreateSilence(
            matchers=matchers, duration=float(body["duration"]),
            created_by=body["created_by"], comment=body.get("comment", "")))
        if isinstance(reply, AlertCommandRejected):
            raise ApiError(422, "invalid_silence", reply.reason, "matchers")
        return Answer(201, to_api_dict(reply, Silence))

    async def list_silences(inputs: Inputs) -> Answer:
        reply = await context.ask(ALERT_MANAGER_ACTOR, ListSilences(
            include_expired=inputs.query.get("include_expired") == "true"))
        return Answer(200, to_api_dict(reply, SilenceList))

    async def list_notifications(inputs: Inputs) -> Answer:
        reply = await context.ask(ALERT_MANAGER_ACTOR,
                                  ListNotifications(limit=inputs.query.get("limit", 50)))
        return Answer(200, to_api_dict(reply, NotificationList))

    error = "Error"
    unavailable = {503: Reply("the answering actor is unavailable", error),
                   504: Reply("no answer in time", error)}
    operations = (
        Operation(
            method="GET", path="/health", operation_id="getHealth",
            summary="Overall and per-component health (ok, degraded, down) with reasons",
            description="From the health actor's latest poll (see `at`). 200 while ok or "
                        "degraded; 503 when down (the body is the same report).",
            handler=health,
            replies={200: Reply("ok or degraded", "Health"),
                     503: Reply("down (the report), or the health actor is unavailable "
                                "(an error)", "HealthOrError"),
                     504: Reply("no answer in time", error)},
        ),
        Operation(
            method="GET", path="/status", operation_id="getStatus",
            summary="Supervision tree, breakers, pool and trading state",
            description="What the health actor's latest poll read: every supervisor's "
                        "children with their states, restart counts and last failures; "
                        "breakers; pool queues and workers; rate limit; orders by state; "
                        "reconciliation; frozen currencies; active alerts.",
            handler=status, replies={200: Reply("the node's status", "NodeStatus"),
                                     **unavailable},
        ),
        Operation(
            method="GET", path="/metrics", operation_id="getMetrics",
            summary="Prometheus metrics (text exposition format 0.0.4)",
            description="Breaker states and transitions, pool queue depth and latency "
                        "histograms, rate-limit waits, orders by state, reconciliation "
                        "differences, alerts by level, restarts and health.",
            handler=metrics,
            replies={200: Reply("text/plain; version=0.0.4"), **unavailable},
        ),
        Operation(
            method="GET", path="/alerts", operation_id="listAlerts",
            summary="Alerts (active; resolved too if asked) with their delivery results",
            handler=list_alerts, query_params=(_INCLUDE_RESOLVED, _LIMIT),
            replies={200: Reply("alerts, latest change first", "AlertList"),
                     400: Reply("bad query parameter", error), **unavailable},
        ),
        Operation(
            method="POST", path="/alerts/{id}/ack", operation_id="ackAlert",
            summary="Acknowledge an alert: no more repeats (for duration seconds if given)",
            handler=ack_alert, path_params=(_ALERT_ID,), body=ACK_BODY,
            replies={200: Reply("the acknowledged alert", "Alert"),
                     400: Reply("the body is not a JSON object", error),
                     404: Reply("no such alert", error),
                     409: Reply("the alert is not firing (resolved or pending)", error),
                     422: Reply("invalid field", error), **unavailable},
        ),
        Operation(
            method="POST", path="/silences", operation_id="createSilence",
            summary="Silence the alerts matching the matchers for a while",
            handler=create_silence, body=SILENCE_BODY,
            replies={201: Reply("the silence", "Silence"),
                     400: Reply("the body is not a JSON object", error),
                     422: Reply("invalid field or matchers", error), **unavailable},
        ),
        Operation(
            method="GET", path="/silences", operation_id="listSilences",
            summary="Silences (active; expired too if asked)",
            handler=list_silences, query_params=(_INCLUDE_EXPIRED,),
            replies={200: Reply("silences by start", "SilenceList"),
                     400: Reply("bad query parameter", error), **unavailable},
        ),
        Operation(
            method="GET", path="/notifications", operation_id="listNotifications",
            summary="Latest notifications with their per-channel delivery results",
            handler=list_notifications, query_params=(_LIMIT,),
            replies={200: Reply("notifications, latest first", "NotificationList"),
                     400: Reply("bad query parameter", error), **unavailable},
        ),
    )
    schemas: dict[str, Any] = dict(_SCHEMAS)
    for cls in (AlertList, Alert, Silence, SilenceList, NotificationList):
        schemas.update(record_schemas(cls))
    return RouteGroup(tag="observability",
                      description="Health, status, metrics, alerts and silences.",
                      operations=operations, schemas=schemas)

