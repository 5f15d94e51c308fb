"""Helpers for the control API tests: an HTTP client and waiting on conditions.

``call(base, method, path, body)`` returns ``(status, json)`` for any status (4xx/5xx
included); ``raw`` sends a body verbatim (for malformed JSON).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit


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


def wait_until(condition: Callable[[], Any], timeout: float = 10.0,
               what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; its value, or AssertionError."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        pause.wait(0.02)
