"""uvicorn serving an ASGI app on its own thread, for an actor that must not block.

The socket is bound in :meth:`HttpServer.start` (so "port in use" fails the start at once,
with SO_REUSEADDR so a restarted node gets its port back), and ``start`` returns only once
uvicorn listens. ``on_exit`` is called from the server thread when it ends for any reason,
so the owning actor learns of a server that died on its own.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

__all__ = ["HttpServer"]


class _Server(uvicorn.Server):
    """uvicorn's server, signalling an Event once it listens."""

    def __init__(self, config: uvicorn.Config, listening: threading.Event) -> None:
        super().__init__(config)
        self._listening = listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._listening.set()


class HttpServer:
    """One uvicorn server on ``host:port`` (port 0: any free port) in a daemon thread."""

    def __init__(self, app: Any, host: str, port: int, *,
                 on_exit: Callable[[BaseException | None], None] | None = None,
                 graceful_timeout: int = 3) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._on_exit = on_exit
        self._graceful_timeout = graceful_timeout
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None
        self._socket: socket.socket | None = None
        self._ended = False
        self._failure: BaseException | None = None
        self.address: tuple[str, int] | None = None

    def start(self, timeout: float = 10.0) -> tuple[str, int]:
        """Bind, start serving, and return the bound ``(host, port)`` once listening.

        Raises OSError if the address cannot be bound, RuntimeError if the server did not
        listen within ``timeout`` seconds or ended during start.
        """
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self.address = (self._host, sock.getsockname()[1])
        config = uvicorn.Config(
            self._app, log_config=None, access_log=False, lifespan="off",
            timeout_graceful_shutdown=self._graceful_timeout, log_level="warning",
        )
        self._server = _Server(config, self._listening)
        self._thread = threading.Thread(target=self._run, name=f"http[{self.address[1]}]",
                                        daemon=True)
        self._thread.start()
        if not self._listening.wait(timeout) or self._ended:
            self.stop(timeout=1.0)
            raise RuntimeError(f"http server on {self.address} did not start within {timeout}s"
                               + (f": {self._failure!r}" if self._failure else ""))
        return self.address

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # noqa: BLE001 - reported to the owner, never lost
            self._failure = exc
        finally:
            self._socket.close()
            self._ended = True
            self._listening.set()  # a start still waiting stops waiting
        if self._on_exit is not None:
            self._on_exit(self._failure)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop accepting, let in-flight requests finish (bounded), join; True if it ended."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is None:
            if self._socket is not None:
                self._socket.close()
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
