"""Serving the venue: in-process in a background thread, or as ``python -m simulator``.

``serve_in_thread(config, faults, host, port)`` binds the socket first (port 0 picks a free
one), starts uvicorn (uvloop + httptools when installed) in a daemon thread, returns once it
accepts connections, and gives a ``RunningVenue`` with ``url``, ``venue`` and ``stop()``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

import uvicorn
from loguru import logger

from simulator.app import build_app
from simulator.config import load_config
from simulator.errors import ConfigError
from simulator.faults import FaultPlan
from simulator.model import VenueConfig
from simulator.venue import Venue, wall_clock_ms

__all__ = ["READY_PREFIX", "RunningVenue", "bind_socket", "main", "serve_in_thread",
           "uvicorn_config"]


def uvicorn_config(app, **kwargs) -> uvicorn.Config:  # noqa: ANN001 - any ASGI app
    """uvicorn settings for the venue: fastest loop/parser available, no access log (the app
    logs each request at debug level), hung requests cut after 1 s on shutdown."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    # log_config=None: uvicorn installs no handlers of its own, its records propagate to the
    # stdlib root logger, which the host routes into loguru (``main`` below, or the node).
    return uvicorn.Config(app, loop=loop, http=http, lifespan="off", access_log=False,
                          log_level="warning", log_config=None, timeout_graceful_shutdown=1,
                          timeout_keep_alive=30, **kwargs)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (0 picks a free port): binding before
    uvicorn starts is how the caller learns the real port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server that calls ``on_started`` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()


class RunningVenue:
    """A venue served from a background thread. ``stop()`` is idempotent and waits for it."""

    def __init__(self, venue: Venue, server: uvicorn.Server, thread: threading.Thread,
                 host: str, port: int) -> None:
        self.venue = venue
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self._server = server
        self._thread = thread

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"venue at {self.url} did not stop within {timeout}s")

    def __enter__(self) -> RunningVenue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(config: VenueConfig | None = None, faults: FaultPlan | None = None,
                    host: str = "127.0.0.1", port: int = 0, dialects=None,  # noqa: ANN001
                    start_timeout: float = 10.0,
                    clock: Callable[[], int] = wall_clock_ms) -> RunningVenue:
    """Start a venue in this process; returns when it accepts connections. ``clock`` (epoch
    ms) drives timestamps, the price walk and fault windows (inject one to control time)."""
    venue = Venue(config, faults, clock)
    app = build_app(venue, dialects)
    sock = bind_socket(host, port)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"venue-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"venue on {host}:{port} failed to start")
        time.sleep(0.005)
    logger.info("venue serving on http://{}:{} (seed {})", host, port, venue.config.seed)
    return RunningVenue(venue, server, thread, host, port)


READY_PREFIX = "venue ready "
"""Start of the one stdout line ``main`` prints once it serves: ``venue ready {json}`` with
``url``, ``host``, ``port`` (the bound one) and ``seed``."""


def main(argv: list[str] | None = None) -> int:
    """``python -m simulator``: serve until SIGTERM/SIGINT, then stop cleanly (exit 0); a bad
    configuration, log level or address exits 2 with one error line."""
    # The node's logging set-up (loguru only, stdlib routed in, secrets redacted) is reused,
    # imported here rather than at module level: the venue is a layer below the node, and
    # only this command-line entry point, not the venue library, depends on it.
    from ironclad.logs import configure_logging

    parser = argparse.ArgumentParser(prog="python -m simulator",
                                     description="Ironclad's local exchange venue")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the price walk (overrides the config file)")
    parser.add_argument("--config", default=None, help="TOML: accounts, markets, faults")
    parser.add_argument("--log-level", default="INFO",
                        help="loguru level; DEBUG logs every request")
    args = parser.parse_args(argv)
    level = args.log_level.upper()
    try:
        logger.level(level)
    except ValueError:
        parser.error(f"unknown log level {args.log_level!r}")
    configure_logging(level=level)
    try:
        if args.config:
            config, faults = load_config(args.config, args.seed)
        else:
            config, faults = VenueConfig(seed=1 if args.seed is None else args.seed), FaultPlan()
        venue = Venue(config, faults)
    except ConfigError as exc:
        logger.error("bad venue configuration: {}", exc)
        return 2
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        logger.error("cannot listen on {}:{}: {}", args.host, args.port, exc)
        return 2
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"

    def announce() -> None:
        logger.info("venue serving on {} (seed {}, accounts {})", url, config.seed,
                    [a.id for a in config.accounts])
        ready = {"url": url, "host": host, "port": port, "seed": config.seed}
        sys.stdout.write(READY_PREFIX + json.dumps(ready) + "\n")
        sys.stdout.flush()

    server = _AnnouncingServer(uvicorn_config(build_app(venue)), announce)
    received: list[int] = []
    # uvicorn handles SIGTERM/SIGINT itself (graceful shutdown), then re-raises the signal to
    # the previous handler: make that one record it, so we exit 0 instead of dying by it.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: received.append(signum))
    server.run(sockets=[sock])
    logger.info("venue stopped{}", f" by signal {received[0]}" if received else "")
    return 0
