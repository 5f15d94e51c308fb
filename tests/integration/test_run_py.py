"""`python run.py` as a user runs it: starts, says ready, stops cleanly on a signal."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from messages import from_json
from messages.supervision import ChildStarted, SupervisionEvent

REPO = Path(__file__).resolve().parents[2]


class Node:
    """A `run.py` subprocess whose stderr lines are collected by a reader thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "run.py"), *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {text!r} within {timeout}s: {self.seen}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line

    def output(self) -> str:
        self._reader.join(5)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "".join(self.seen)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def nodes() -> list[Node]:
    started: list[Node] = []
    yield started
    for node in started:
        node.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_py_starts_and_stops_cleanly(nodes: list[Node], tmp_path: Path, sig: int) -> None:
    node = Node("--data-dir", str(tmp_path / "data"), "--http-port", "0")
    nodes.append(node)
    node.wait_for("ready")
    signalled = time.monotonic()
    node.proc.send_signal(sig)
    assert node.proc.wait(timeout=5) == 0
    assert time.monotonic() - signalled < 5
    output = node.output()
    assert "node ironclad stopped" in output
    assert "Traceback" not in output
    events = (tmp_path / "data" / "events.jsonl").read_text().splitlines()
    decoded = [from_json(SupervisionEvent, line) for line in events]
    assert any(isinstance(e, ChildStarted) and e.name == "events" for e in decoded)


def test_log_json_and_config_file(nodes: list[Node], tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nname = "n7"\ndata_dir = "{tmp_path / "d7"}"\n')
    key, secret = "key-for-json-Pw38sLk2", "secret-for-json-Ur51gX9"
    node = Node("--config", str(config), "--log-json", "--log-level", "DEBUG", "--http-port", "0",
                env={"IRONCLAD_API_KEY": key, "IRONCLAD_API_SECRET": secret})
    nodes.append(node)
    ready = json.loads(node.wait_for("ready"))
    assert "node n7 running" in ready["record"]["message"]
    request = json.loads(node.wait_for("X-MBX-APIKEY"))  # ccxt's signed request, at DEBUG
    assert "'X-MBX-APIKEY': '***'" in request["record"]["message"]
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(timeout=5) == 0
    output = node.output()
    assert key not in output and secret not in output
    for line in output.splitlines():
        json.loads(line)  # every line is a JSON object
    assert (tmp_path / "d7" / "events.jsonl").exists()


def test_debug_level_starts_and_stops_cleanly(nodes: list[Node], tmp_path: Path) -> None:
    node = Node("--log-level", "DEBUG", "--data-dir", str(tmp_path / "tmp"), "--http-port", "0")
    nodes.append(node)
    node.wait_for("ready")
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(timeout=5) == 0
    output = node.output()
    assert "| DEBUG    |" in output
    assert "Traceback" not in output


def test_secrets_are_redacted_where_trace_logging_would_show_them(
    nodes: list[Node], tmp_path: Path
) -> None:
    secrets = {
        "IRONCLAD_API_KEY": "key-Zq81vN0pLx4c2Rt7",
        "IRONCLAD_API_SECRET": "secret-Hy62mWq0bT9sKe3",
        "IRONCLAD_API_TOKEN": "token-Jd55aQ1rVu8yPn0",
    }
    node = Node("--log-level", "TRACE", "--data-dir", str(tmp_path / "data"), "--http-port",
                "0", env=secrets)
    nodes.append(node)
    node.wait_for("ready")
    # ccxt logs every signed request's headers at DEBUG: the API key header is in that line.
    request = node.wait_for("X-MBX-APIKEY")
    assert "'X-MBX-APIKEY': '***'" in request
    assert "signature=***" in request
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(timeout=5) == 0
    output = node.output()
    assert "| TRACE    |" in output or "| DEBUG    |" in output
    for value in secrets.values():
        assert value not in output


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[supervision]\nintensity = 'three'\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "supervision.intensity" in result.stderr
    assert "expected an integer" in result.stderr


def test_bad_flag_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "--log-level", "LOUD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--log-level" in result.stderr
