"""Routes as data: each component contributes a :class:`RouteGroup` of :class:`Operation`\\ s.

An operation declares its path and query parameters, its body and its answers; the app
parses and validates the request against that declaration before the handler runs, and the
OpenAPI document is generated from the same declarations, so the two cannot drift.
Handlers reach actors only through :meth:`ApiContext.ask`, which runs the blocking ask on a
worker thread (the event loop never waits) and bounds it by the configured timeout.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import pykka
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ironclad.http.errors import ApiError
from ironclad.http.schema import Body, Field
from supervisors import ActorUnavailable, NameNotFound, ask

__all__ = ["Inputs", "Answer", "Reply", "Operation", "RouteGroup", "RouteGroupFactory",
           "ApiContext"]


@attrs.frozen(kw_only=True)
class Inputs:
    """A request already validated against its operation: typed path, query and body values."""

    path: Mapping[str, Any] = attrs.field(factory=dict)
    query: Mapping[str, Any] = attrs.field(factory=dict)
    body: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Answer:
    """A JSON answer: HTTP status and a JSON-ready payload (str decimals, ISO datetimes)."""

    status: int
    payload: Any


#: What a handler returns: a JSON :class:`Answer`, or any Starlette response (e.g. text).
Handler = Callable[[Inputs], Awaitable[Answer | Response]]


@attrs.frozen
class Reply:
    """One documented answer of an operation: description and schema (a component name)."""

    description: str
    schema: str | None = None


@attrs.frozen(kw_only=True)
class Operation:
    """One method on one path, fully declared (the OpenAPI document is built from this)."""

    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler
    description: str = ""
    path_params: tuple[Field, ...] = ()
    query_params: tuple[Field, ...] = ()
    body: Body | None = None
    replies: Mapping[int, Reply] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class RouteGroup:
    """The routes of one component (orders, health, alerts...) and the schemas they use."""

    tag: str
    description: str
    operations: tuple[Operation, ...]
    schemas: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ApiContext:
    """What route groups need from the node: how long to wait for the actors."""

    ask_timeout: float = 10.0
    reconcile_timeout: float = 60.0

    async def ask(self, name: str, message: Any, *, timeout: float | None = None) -> Any:
        """Ask the actor named ``name`` off the event loop; its reply, or ApiError 503/504.

        ``timeout`` defaults to :attr:`ask_timeout`. A reply that is a future (completed
        later by the actor) is waited for within the same timeout.
        503 ``unavailable``: the actor is not running (or restarting past the timeout);
        nothing was done. 504 ``timeout``: no reply in time; the request may still take
        effect, so the caller must look it up (or repeat it with the same idempotency key).
        """
        timeout = self.ask_timeout if timeout is None else timeout
        try:
            return await run_in_threadpool(_ask_and_wait, name, message, timeout)
        except (NameNotFound, ActorUnavailable) as error:
            raise ApiError(503, "unavailable", f"{name} is not available: {error}") from None
        except pykka.Timeout:
            raise ApiError(504, "timeout",
                           f"{name} did not answer within {timeout}s; the request "
                           "may still take effect: look it up or repeat it") from None
        except pykka.ActorDeadError as error:  # ActorCrashed: died with our message queued
            raise ApiError(503, "unavailable",
                           f"{name} stopped before answering: {error}; repeat the request "
                           "(it is idempotent where it matters)") from None


def _ask_and_wait(name: str, message: Any, timeout: float) -> Any:
    """Ask, and if the actor answered with a future (a reply it completes later, as the
    reconciler does for a run in progress), wait for that too, within the same deadline."""
    deadline = time.monotonic() + timeout
    reply = ask(name, message, timeout=timeout)
    if isinstance(reply, pykka.Future):
        reply = reply.get(timeout=max(0.0, deadline - time.monotonic()))
    return reply


#: Builds a component's route group from the node's context (registered in the app).
RouteGroupFactory = Callable[[ApiContext], RouteGroup]
