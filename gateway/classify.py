"""What an exchange call's exception means for the breaker, for retries and for the order protocol.

Two questions are answered separately because they differ: does the outcome say the *venue* is
unhealthy (`Outcome.FAILURE`, counts for the breaker), and may a non-idempotent request have
executed anyway (`ambiguous`, the transaction layer must resolve it before resending).

Decisions, checked against ccxt 4.5's `ccxt/base/errors.py` hierarchy:
- The whole `NetworkError` family fails the breaker (RequestTimeout, ExchangeNotAvailable,
  OnMaintenance, DDoSProtection, RateLimitExceeded — a sibling of DDoSProtection in 4.5, not a
  subclass), except `InvalidNonce`: it means *our* clock or nonce sequence is off. The venue is up
  and rejected the request outright; opening the breaker would block calls that succeed once the
  clock is resynced, so it is IGNORED, not ambiguous, and retryable.
- `BadResponse`/`NullResponse` (an unreadable answer) and a bare `OperationFailed` (what
  ccxt.binance raises for HTTP 500) fail the breaker and are ambiguous.
- Definitive refusals (the ExchangeError family: InvalidOrder, OrderNotFound, InsufficientFunds,
  AuthenticationError, BadRequest, BadSymbol, NotSupported...) are IGNORED and not ambiguous.
  A plain ExchangeError is also ccxt's fallback for an HTTP status it does not map, so callers
  that know the status pass `http_status`: any 5xx fails the breaker and is ambiguous.
- Exceptions from outside ccxt: `TimeoutError` (our deadline) and `OSError` (connection) fail
  and are ambiguous; anything else is unclassified — IGNORED for the breaker (it says nothing
  about the venue) but ambiguous, because nobody knows how far the call got.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import attrs
import ccxt

from exchanges.errors import RateLimitBackOff, VenueBan


class Outcome(enum.Enum):
    """How a finished call counts for a breaker."""

    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"


@attrs.frozen
class Classification:
    """The meaning of one call's end; `error` is the exception class name ('' on success)."""

    outcome: Outcome
    ambiguous: bool
    retryable: bool
    error: str
    reason: str


SUCCESS = Classification(Outcome.SUCCESS, ambiguous=False, retryable=False, error="", reason="ok")
DEADLINE_EXCEEDED = Classification(
    Outcome.FAILURE, ambiguous=True, retryable=True, error="DeadlineExceeded",
    reason="deadline exceeded before the venue answered",
)

# Most specific first: the first isinstance match wins.
_TABLE: tuple[tuple[type[BaseException], Outcome, bool, bool, str], ...] = (
    (ccxt.InvalidNonce, Outcome.IGNORED, False, True, "nonce/clock rejected by venue"),
    (ccxt.RequestTimeout, Outcome.FAILURE, True, True, "request timed out"),
    (ccxt.OnMaintenance, Outcome.FAILURE, False, True, "venue on maintenance"),
    (ccxt.ExchangeNotAvailable, Outcome.FAILURE, True, True, "venue unavailable / 5xx"),
    (ccxt.RateLimitExceeded, Outcome.FAILURE, False, True, "rate limit exceeded"),
    (ccxt.DDoSProtection, Outcome.FAILURE, False, True, "ddos protection / ban"),
    (ccxt.NetworkError, Outcome.FAILURE, True, True, "network error"),
    (ccxt.BadResponse, Outcome.FAILURE, True, True, "unreadable venue response"),
    (ccxt.CancelPending, Outcome.IGNORED, True, False, "cancel accepted, still pending"),
    # ccxt.binance raises the bare base class for an HTTP 500.
    (ccxt.OperationFailed, Outcome.FAILURE, True, True, "operation failed at the venue"),
    (ccxt.OrderNotFound, Outcome.IGNORED, False, False, "order not found"),
    (ccxt.InvalidOrder, Outcome.IGNORED, False, False, "order refused"),
    (ccxt.InsufficientFunds, Outcome.IGNORED, False, False, "insufficient funds"),
    (ccxt.AuthenticationError, Outcome.IGNORED, False, False, "authentication refused"),
    (ccxt.BadSymbol, Outcome.IGNORED, False, False, "unknown symbol"),
    (ccxt.BadRequest, Outcome.IGNORED, False, False, "bad request"),
    (ccxt.ExchangeError, Outcome.IGNORED, False, False, "refused by venue"),
    (TimeoutError, Outcome.FAILURE, True, True, "deadline exceeded"),
    (OSError, Outcome.FAILURE, True, True, "connection error"),
)


def classify_exception(exc: BaseException, *, http_status: int | None = None) -> Classification:
    """Classify an exception raised by an exchange call; never raises.

    `http_status`, when the caller knows it, overrides ccxt's fallback class for 5xx answers
    and clears `ambiguous` for 4xx answers other than 408.
    """
    name = type(exc).__name__
    if http_status is not None and 500 <= http_status <= 599 and not isinstance(
        exc, ccxt.NetworkError
    ):
        return Classification(Outcome.FAILURE, True, True, name, f"HTTP {http_status}")
    for cls, outcome, ambiguous, retryable, reason in _TABLE:
        if isinstance(exc, cls):
            if ambiguous and http_status is not None and 400 <= http_status <= 499:
                # A 4xx answer (ccxt maps 400/403/404 to ExchangeNotAvailable) means the venue
                # read and refused the request; only 408 leaves the outcome open.
                ambiguous = http_status == 408
            return Classification(outcome, ambiguous, retryable, name, reason)
    return Classification(Outcome.IGNORED, True, False, name, "unclassified exception")


class BackoffKind(enum.Enum):
    """What the venue asked for: slow down for a while, or you are banned until a time."""

    RATE_LIMIT = "rate_limit"
    BAN = "ban"


@attrs.frozen
class BackoffSignal:
    """The venue's own instruction to stop sending for `seconds` (relative to when it was read)."""

    kind: BackoffKind
    seconds: float
    source: str


_STATUS_IN_MESSAGE = re.compile(r"(?<![\d.])(418|429)(?![\d.])")
_BANNED_UNTIL = re.compile(r"banned until (\d{10,13})")
_BAN_CODES = frozenset({"TokenBlocked", "IPBlocked"})


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return str(value)
    return None


def _retry_after_seconds(value: str, wall_now: float | None) -> float | None:
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        if wall_now is None:
            return None
        try:
            seconds = parsedate_to_datetime(value).timestamp() - wall_now
        except (TypeError, ValueError):
            return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _body_mapping(body: str | Mapping[str, object] | None) -> Mapping[str, object] | None:
    if isinstance(body, Mapping):
        return body
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None


def backoff_signal(
    exc: BaseException | None,
    headers: Mapping[str, str] | None = None,
    body: str | Mapping[str, object] | None = None,
    *,
    http_status: int | None = None,
    wall_now: float | None = None,
    default_rate_limit_seconds: float = 1.0,
    default_ban_seconds: float = 120.0,
) -> BackoffSignal | None:
    """Extract the venue's back-off instruction from a failed call, or None if there is none.

    Reads, in order: the kind (the adapter's VenueBan, HTTP 418, Nobitex's TokenBlocked/IPBlocked
    codes or "banned until" mean a ban; 429, RateLimitExceeded or DDoSProtection a rate limit),
    then the duration: the adapter's `retry_after_seconds`, the `Retry-After` header (seconds or
    an HTTP date), Nobitex's `backOff` in the body, Binance's "banned until <ms>" text. ccxt keeps
    the last answer's headers in `exchange.last_response_headers` and its body in
    `exchange.last_http_response`; pass those: they belong to the failed request whenever ccxt
    raised for an HTTP answer, and a stale pair after a timeout is never taken for a signal.
    Dates need `wall_now` (epoch seconds); without it they are skipped and the default applies.
    """
    message = str(exc) if exc is not None else ""
    status = http_status
    if status is None and isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        found = _STATUS_IN_MESSAGE.search(message)
        status = int(found.group(1)) if found else None
    text = body if isinstance(body, str) else ""
    parsed = _body_mapping(body)
    body_code = parsed.get("code") if parsed is not None else None
    # Only the exception (or a status the caller read itself) decides *whether* the venue asked
    # to back off: ccxt's last_* attributes still hold the previous answer after a timeout.
    asked = (
        isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection)
        or http_status in (418, 429)
        or (exc is None and (body_code == "TooManyRequests" or body_code in _BAN_CODES))
    )
    if not asked:
        return None
    is_ban = (
        isinstance(exc, VenueBan)
        or status == 418
        or body_code in _BAN_CODES
        or "banned until" in message
        or "banned until" in text
    )
    kind = BackoffKind.BAN if is_ban else BackoffKind.RATE_LIMIT
    told = getattr(exc, "retry_after_seconds", None)
    if isinstance(exc, VenueBan | RateLimitBackOff) and told is not None:
        seconds = float(told)
        if math.isfinite(seconds) and seconds >= 0:
            return BackoffSignal(kind, seconds, "exception")
    retry_after = _header(headers, "Retry-After")
    if retry_after is not None:
        from_header = _retry_after_seconds(retry_after, wall_now)
        if from_header is not None:
            return BackoffSignal(kind, from_header, "Retry-After")
    if parsed is not None and "backOff" in parsed:
        try:
            seconds = float(str(parsed["backOff"]))
        except ValueError:
            seconds = -1.0
        if math.isfinite(seconds) and seconds >= 0:
            return BackoffSignal(kind, seconds, "backOff")
    until = _BANNED_UNTIL.search(message) or _BANNED_UNTIL.search(text)
    if until is not None and wall_now is not None:
        raw = int(until.group(1))
        epoch = raw / 1000.0 if raw >= 10**12 else float(raw)
        return BackoffSignal(BackoffKind.BAN, max(0.0, epoch - wall_now), "banned until")
    default = default_ban_seconds if kind is BackoffKind.BAN else default_rate_limit_seconds
    return BackoffSignal(kind, default, "default")
