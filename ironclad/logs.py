"""Logging set-up: loguru is the only logger; stdlib logging (pykka, ccxt, uvicorn) flows into it.

Every sink is wrapped by :class:`RedactingSink`, which rewrites the *final* text of each record
(message, bound extras, exception traceback, JSON line) so a secret cannot reach a sink by
any route: configured secret values and credential-looking fragments (``secret=``,
``signature=``, ``X-MBX-APIKEY``, ``Token ...``) become ``***``. Tracebacks are formatted
without variable values (``diagnose=False``) for the same reason.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from loguru import logger

__all__ = [
    "REDACTED",
    "InterceptHandler",
    "RedactingSink",
    "redact",
    "route_stdlib_logging",
    "configure_logging",
]

REDACTED = "***"

# key=value / key: value / "key": "value" forms of credential fields (ccxt verbose output,
# URLs with query strings, header dicts). The key is kept, the value replaced.
_KEYED = re.compile(
    r"""(?ix)
    (\b(?:signature|secret|api[_-]?secret|api[_-]?key|apikey|x-mbx-apikey|password|passphrase
        |access[_-]?token|token)
     ["']?\s*[=:]\s*["']?)
    ([^\s&"',;}\])]+)
    """
)
# Authorization schemes followed by a credential of any length. Inside an Authorization header
# every credential is redacted; elsewhere `Token`/`Bearer` followed by a plain lowercase word is
# prose ("Token bucket refilled"), anything else after them is taken for a credential.
_CREDENTIAL = r"""[^\s"',;}\])]+"""
_SCHEME = re.compile(
    rf"""(?x)
    (\bAuthorization["']?\s*[:=]\s*["']?(?:Token|Bearer|Basic)\s+)({_CREDENTIAL})
    | (\b(?:Token|Bearer)\s+)(?![a-z]+(?:[\s.,;:!?]|$))({_CREDENTIAL})
    | (\bBasic\s+)([A-Za-z0-9+/=]{{16,}})
    """
)


def _redact_scheme(match: re.Match[str]) -> str:
    prefix = next(group for group in match.groups()[::2] if group is not None)
    return prefix + REDACTED


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret value and credential-looking fragment replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
            escaped = json.dumps(secret)[1:-1]  # how the secret looks inside a JSON line
            if escaped != secret:
                text = text.replace(escaped, REDACTED)
    text = _KEYED.sub(lambda m: m.group(1) + REDACTED, text)
    return _SCHEME.sub(_redact_scheme, text)


class RedactingSink:
    """A loguru sink that redacts the formatted record before writing it to ``stream``.

    ``secrets`` is read at every write, so secrets added later (credentials loaded after
    logging was configured) are redacted too.
    """

    def __init__(self, stream: TextIO | Callable[[str], Any], secrets: set[str]) -> None:
        self._write = stream.write if hasattr(stream, "write") else stream
        self._flush = getattr(stream, "flush", None)
        self.secrets = secrets

    def __call__(self, message: str) -> None:
        self._write(redact(str(message), tuple(self.secrets)))
        if self._flush is not None:
            self._flush()


class InterceptHandler(logging.Handler):
    """Send stdlib ``logging`` records to loguru, keeping level, origin and exception."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).bind(stdlib=record.name).log(
            level, record.getMessage()
        )


def route_stdlib_logging(level: int = logging.NOTSET) -> None:
    """Make loguru the only handler of the stdlib root logger (idempotent)."""
    logging.basicConfig(handlers=[InterceptHandler()], level=level, force=True)


_TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | "
    "<cyan>{name}</cyan>:<cyan>{line}</cyan> - <level>{message}</level>"
)


def configure_logging(
    *,
    level: str = "INFO",
    json_lines: bool = False,
    secrets: Iterable[str] = (),
    stream: TextIO | Callable[[str], Any] | None = None,
) -> RedactingSink:
    """Replace every loguru sink by one redacting sink on ``stream`` (default stderr).

    Returns the sink; add to ``sink.secrets`` to redact values learnt later.
    """
    sink = RedactingSink(stream if stream is not None else sys.stderr, set(secrets))
    logger.remove()
    logger.add(
        sink,
        level=level,
        serialize=json_lines,
        format=_TEXT_FORMAT,
        colorize=False,
        backtrace=False,
        diagnose=False,
    )
    route_stdlib_logging()
    return sink
