"""The control-api actor: owns the node's HTTP server (uvicorn on a thread of its own).

The actor never blocks on HTTP work: requests are served by uvicorn's event loop, and
handlers reach other actors by name with timeouts, off that loop. on_start binds the port
and returns once it listens (a port in use fails the start, so the supervisor sees it);
on_stop stops the server (in-flight requests get a bounded grace). A server that ends on
its own is reported to the actor, which then crashes so its supervisor restarts it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import attrs
import pykka
from loguru import logger

from ironclad.config import Config, HttpConfig
from ironclad.http import ROUTE_GROUPS, ApiContext, HttpServer, RouteGroupFactory, build_app
from supervisors import ChildSpec, SupervisedActor

__all__ = ["CONTROL_API", "ServerAddress", "ControlApi", "control_api_part"]

#: The actor's id in the node tree (and its stable name).
CONTROL_API = "control-api"


@attrs.frozen
class ServerAddress:
    """Ask: the ``(host, port)`` the server listens on (port 0 in config: the chosen one)."""


@attrs.frozen
class _ServerEnded:
    """Told by the server thread when uvicorn returned or raised."""

    failure: BaseException | None


class ControlApi(SupervisedActor):
    """Serves the route groups on ``http.host:http.port`` while it runs."""

    def __init__(self, http: HttpConfig,
                 groups: Sequence[RouteGroupFactory] = ROUTE_GROUPS) -> None:
        super().__init__()
        self._http = http
        self._groups = tuple(groups)
        self._server: HttpServer | None = None
        self._stopping = False

    def on_start(self) -> None:
        context = ApiContext(ask_timeout=self._http.ask_timeout,
                             reconcile_timeout=self._http.reconcile_timeout)
        app = build_app([group(context) for group in self._groups])
        ref = self.actor_ref

        def ended(failure: BaseException | None) -> None:
            try:
                ref.tell(_ServerEnded(failure))
            except pykka.ActorDeadError:
                pass  # the actor is gone already: it stopped the server itself

        self._server = HttpServer(app, self._http.host, self._http.port, on_exit=ended)
        host, port = self._server.start(timeout=10.0)
        logger.info("http: serving the control API on http://{}:{}", host, port)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ServerAddress):
            assert self._server is not None and self._server.address is not None
            return self._server.address
        if isinstance(message, _ServerEnded):
            if self._stopping:
                return None
            raise RuntimeError(f"the HTTP server ended on its own: {message.failure!r}")
        raise TypeError(f"ControlApi: unexpected message {type(message).__name__}")

    def on_stop(self) -> None:
        self._stop_server()

    def on_failure(self, *_exc_info: Any) -> None:
        # A crash skips on_stop; the port must be free for the restarted actor.
        self._stop_server()

    def _stop_server(self) -> None:
        self._stopping = True
        if self._server is not None and not self._server.stop(timeout=4.0):
            logger.warning("http: the server did not stop within 4s")


def control_api_part(config: Config) -> ChildSpec:
    """The ``control-api`` child of the node: serves the API from ``[http]``."""
    return ChildSpec(id=CONTROL_API, start=functools.partial(ControlApi.start, config.http),
                     shutdown_timeout=6.0)
