"""Helpers for the control API tests and bench: HTTP client, conditions, real processes.

``call(base, method, path, body)`` returns ``(status, json)`` for any status (4xx/5xx
included); ``request`` sends a body verbatim (for malformed JSON). ``VenueProcess`` and
``NodeProcess`` run the venue and the node as real child processes (for SIGKILL tests);
``sim`` reads the venue's ground truth.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.waiting import wait_until


def request(base: str, method: str, path: str, body: bytes | None = None,
            timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request on a fresh connection: (status, headers, body)."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def call(base: str, method: str, path: str, body: Any = None,
         timeout: float = 15.0) -> tuple[int, Any]:
    """A JSON request; (status, decoded JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    status, _headers, raw = request(base, method, path, data, timeout)
    return status, json.loads(raw) if raw else None


# --------------------------------------------------------------------------- real processes

REPO = Path(__file__).resolve().parents[1]
DEMO_ENV = {"IRONCLAD_API_KEY": "demo-key", "IRONCLAD_API_SECRET": "demo-secret",
            "IRONCLAD_API_TOKEN": "demo-token"}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Process:
    """A child process whose combined output is collected by a reader thread."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=REPO, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for_line(self, text: str, timeout: float) -> str:
        """The first output line containing ``text``; AssertionError (with the output) if the
        process exits or the deadline passes first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    tail = "".join(self.lines[-30:])
                    raise AssertionError(f"no line with {text!r} within {timeout}s:\n{tail}")
                self._changed.wait(min(remaining, 0.1))

    def kill(self) -> None:
        """SIGKILL (no clean-up runs in the child) and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not exit in time. The exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode)


class VenueProcess(Process):
    """``python -m simulator`` on its own port, ready when its admin API answers."""

    def __init__(self, port: int, seed: int = 1) -> None:
        super().__init__(["-m", "simulator", "--port", str(port), "--seed", str(seed),
                          "--log-level", "WARNING"])
        self.url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(self.url + "/_sim/health"), 20, "venue ready")


class NodeProcess(Process):
    """``python run.py`` against ``venue_url``, ready once its control API answers."""

    def __init__(self, venue_url: str | None, data_dir: Path, http_port: int,
                 extra: tuple[str, ...] = ()) -> None:
        args = ["run.py", "--data-dir", str(data_dir), "--http-port", str(http_port), *extra]
        if venue_url is not None:
            args += ["--venue-url", venue_url]
        super().__init__(args, env=DEMO_ENV)
        self.base = f"http://127.0.0.1:{http_port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the control API answers (any log level); AssertionError if the node exits."""

        def serving() -> bool:
            if self.proc.poll() is not None:
                tail = "".join(self.lines[-30:])
                raise AssertionError(f"node exited with {self.proc.returncode}:\n{tail}")
            return _answers(self.base + "/openapi.json")

        wait_until(serving, timeout, "node serving its control API")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def sim(url: str, path: str, method: str = "GET", body: Any = None) -> Any:
    """The venue's ``/_sim`` admin API (ground truth); decoded JSON."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.loads(response.read())
