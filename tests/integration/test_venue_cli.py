"""``python -m simulator`` as a process: it announces the port it really bound (also for
``--port 0``) in a machine-readable ready line, and every log line, uvicorn's included, is
loguru's format."""

from __future__ import annotations

import re
import signal
import socket

from tests.helpers_venue import admin, start_venue_process

LOGURU_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ +\| \S+:\d+ - ")


def stop(process) -> str:  # noqa: ANN001 - subprocess.Popen
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    return stderr


def test_port_0_announces_and_logs_the_bound_port():
    process, ready = start_venue_process("--port", "0")
    try:
        port = ready["port"]
        assert isinstance(port, int) and port > 0
        assert ready["url"] == f"http://127.0.0.1:{port}"
        assert admin(ready["url"], "/_sim/health")["ok"] is True
    finally:
        stderr = stop(process)
    assert f"http://127.0.0.1:{port}" in stderr
    assert ":0 " not in stderr and ":0)" not in stderr


def test_uvicorn_logs_go_through_loguru():
    process, ready = start_venue_process("--port", "0", "--log-level", "DEBUG")
    try:
        with socket.create_connection(("127.0.0.1", ready["port"]), timeout=5) as raw:
            raw.sendall(b"\x00\x01 this is not HTTP\r\n\r\n")
            raw.recv(1024)  # uvicorn answers 400 and logs a warning
        admin(ready["url"], "/api/v3/ping")
    finally:
        stderr = stop(process)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert any("Invalid HTTP request" in line for line in lines), stderr
    assert any("GET /api/v3/ping" in line for line in lines), stderr
    assert [line for line in lines if not LOGURU_LINE.match(line)] == []
