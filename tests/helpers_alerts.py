"""Real receivers for alert delivery tests: an HTTP webhook and an SMTP server on 127.0.0.1,
plus a condition wait with a deadline (no sleeps)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from ironclad.config import AlertRulesConfig, AlertsConfig, Config, NodeConfig
from ironclad.node import alerts_part, event_log_part


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebhookReceiver:
    """An HTTP server recording every JSON body POSTed to it; ``status`` is what it answers
    (500 makes it a failing receiver). ``start``/``stop`` may be called again (same port)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.status = 200
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.attempts += 1
                if receiver.status == 200:
                    receiver.bodies.append(json.loads(body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def titles(self) -> list[str]:
        return [b["title"] for b in self.bodies]

    def texts(self) -> list[str]:
        """Title and message of every body (merged notifications list theirs in the message)."""
        return [f"{b['title']}\n{b['message']}" for b in self.bodies]


class SmtpReceiver:
    """An aiosmtpd server keeping every message (plain SMTP, no TLS)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Any] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
                receiver.messages.append(envelope)
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return (f"mailto://127.0.0.1:{self.port}?mode=insecure"
                "&from=ironclad@example.com&to=ops@example.com")

    def start(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def subjects(self) -> list[str]:
        out = []
        for envelope in self.messages:
            for line in envelope.content.decode().splitlines():
                if line.startswith("Subject: "):
                    out.append(line[len("Subject: "):])
        return out


def alerts_config(data_dir: Path, channels: tuple[str, ...], **overrides: Any) -> Config:
    """A node config with fast alert timings for tests (seconds, not minutes)."""
    settings: dict[str, Any] = dict(
        channels=channels, group_wait=0.2, group_interval=0.3, repeat_interval=600.0,
        evaluation_interval=0.05, throttle=0.0, retry_attempts=50, retry_initial=0.05,
        retry_factor=2.0, retry_max=0.3, breaker_window=2, breaker_open_seconds=0.3,
        redispatch_after=0.5, rules=AlertRulesConfig(breaker_open_seconds=0.1),
    )
    settings.update(overrides)
    return Config(node=NodeConfig(data_dir=data_dir), alerts=AlertsConfig(**settings))


#: The node parts an alert test runs: the event log and the alerts subtree.
ALERT_PARTS = (event_log_part, alerts_part)
