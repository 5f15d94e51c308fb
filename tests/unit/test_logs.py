"""Logging: stdlib (pykka included) reaches loguru; no secret reaches a sink by any route."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pykka
import pytest
from loguru import logger

from ironclad.logs import REDACTED, configure_logging, redact

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def lines() -> Iterator[list[str]]:
    """Loguru configured as the node does it, writing into a list."""
    out: list[str] = []
    configure_logging(level="DEBUG", secrets={SECRET}, stream=out.append)
    yield out
    logger.remove()


def test_stdlib_records_are_routed_with_level_and_origin(lines: list[str]) -> None:
    logging.getLogger("some.library").warning("disk %s is %d%% full", "sda", 93)
    (line,) = lines
    assert "WARNING" in line
    assert "disk sda is 93% full" in line
    assert "test_logs" in line  # the caller's location, not logging's internals


def test_pykka_failure_logs_reach_loguru(lines: list[str]) -> None:
    class Failing(pykka.ThreadingActor):
        def on_receive(self, message: object) -> None:
            raise RuntimeError("handler exploded")

    ref = Failing.start()
    ref.tell("boom")  # pykka logs the unhandled exception via stdlib logging, then stops
    assert ref.actor_stopped.wait(5)
    text = "".join(lines)
    assert "handler exploded" in text
    assert "ERROR" in text


def test_configured_secret_values_are_redacted_everywhere(lines: list[str]) -> None:
    logger.info("connecting with {}", SECRET)
    logger.bind(key=SECRET).warning("bound")
    logging.getLogger("ccxt").error("request failed key=%s", SECRET)
    try:
        raise ValueError(f"bad credentials {SECRET}")
    except ValueError:
        logger.exception("login failed")
    text = "".join(lines)
    assert SECRET not in text
    assert text.count(REDACTED) >= 3


def test_json_lines_are_valid_and_redacted() -> None:
    out: list[str] = []
    quoted = 'pa"ss\\word-123'
    configure_logging(level="INFO", json_lines=True, secrets={SECRET, quoted}, stream=out.append)
    try:
        logger.bind(api=SECRET).info("x {} {}", SECRET, quoted)
        logger.debug("below the level")
    finally:
        logger.remove()
    (line,) = out
    record = json.loads(line)
    assert record["record"]["message"] == f"x {REDACTED} {REDACTED}"
    assert record["record"]["extra"]["api"] == REDACTED
    assert SECRET not in line and 'pa\\"ss' not in line


def test_secrets_added_after_configuration_are_redacted() -> None:
    out: list[str] = []
    sink = configure_logging(stream=out.append)
    try:
        sink.secrets.add("late-secret-value")
        logger.info("token is late-secret-value")
    finally:
        logger.remove()
    assert "late-secret-value" not in out[0]


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        (
            "GET /api/v3/order?symbol=BTCUSDT&signature=9f86d081884c7d65 HTTP/1.1",
            "9f86d081884c7d65",
        ),
        ("POST body: timestamp=1&secret=abcdef123", "abcdef123"),
        ("headers {'X-MBX-APIKEY': 'vmPUZE6mv9SD5VNHk4', 'Accept': 'json'}", "vmPUZE6mv9SD5VNHk4"),
        ('{"X-MBX-APIKEY": "vmPUZE6mv9SD5VNHk4"}', "vmPUZE6mv9SD5VNHk4"),
        ("Authorization: Token 0123456789abcdef0123456789abcdef", "0123456789abcdef0123"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9"),
        ("apiKey=AKIA1234 apiSecret: zzz999", "AKIA1234"),
        ("apiKey=AKIA1234 apiSecret: zzz999", "zzz999"),
        ("password='hunter2'", "hunter2"),
        ("Authorization: Token demo-token", "demo-token"),
        ("{'Authorization': 'Token demo'}", "demo"),
        ('{"Authorization": "Bearer abc"}', "abc"),
        ("sent Token tok-123 to nobitex", "tok-123"),
        ("retry with Bearer Xy9", "Xy9"),
    ],
)
def test_credential_patterns_are_redacted(text: str, leak: str) -> None:
    cleaned = redact(text)
    assert leak not in cleaned
    assert REDACTED in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "Token bucket refilled",
        "Token blocked for ignoring rate limits.",
        "api_key_env='IRONCLAD_API_KEY' token_env='IRONCLAD_API_TOKEN'",
        "order 42 filled at 30000.5",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact(text) == text
