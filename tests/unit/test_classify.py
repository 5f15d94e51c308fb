"""Classification over the real ccxt 4.5 exception classes, and back-off signals read from
exceptions produced by ccxt's own error handling (binance) and our Nobitex adapter."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterator
from email.utils import formatdate

import ccxt
import pytest
from ccxt.base import errors as ccxt_errors

from exchanges import create_client
from exchanges.errors import RateLimitBackOff, VenueBan
from exchanges.nobitex import Nobitex
from gateway.classify import (
    DEADLINE_EXCEEDED,
    BackoffKind,
    BackoffSignal,
    Outcome,
    backoff_signal,
    classify_exception,
)
from simulator.nobitex import NobitexDialect
from tests.helpers_venue import (
    DEMO_TOKEN,
    admin,
    binance_client,
    install_faults,
    running_venue,
)

F, IGN = Outcome.FAILURE, Outcome.IGNORED
SYMBOL = "BTC/USDT"

# (exception, outcome, ambiguous for a non-idempotent call, retryable)
TABLE = [
    (ccxt.RequestTimeout("t"), F, True, True),
    (ccxt.NetworkError("connection reset"), F, True, True),
    (ccxt.ExchangeNotAvailable("503"), F, True, True),
    (ccxt.OnMaintenance("maintenance"), F, False, True),
    (ccxt.DDoSProtection("418"), F, False, True),
    (ccxt.RateLimitExceeded("429"), F, False, True),
    (RateLimitBackOff("429", None), F, False, True),
    (VenueBan("blocked", None), F, False, True),
    (ccxt.InvalidNonce("recvWindow"), IGN, False, True),
    (ccxt.ChecksumError("book"), IGN, False, True),
    (ccxt.BadResponse("garbled"), F, True, True),
    (ccxt.NullResponse("empty"), F, True, True),
    (ccxt.OperationFailed("binance 500"), F, True, True),
    (ccxt.InvalidOrder("lot size"), IGN, False, False),
    (ccxt.OrderNotFound("-2013"), IGN, False, False),
    (ccxt.DuplicateOrderId("dup"), IGN, False, False),
    (ccxt.InsufficientFunds("balance"), IGN, False, False),
    (ccxt.AuthenticationError("sig"), IGN, False, False),
    (ccxt.PermissionDenied("perm"), IGN, False, False),
    (ccxt.AccountSuspended("susp"), IGN, False, False),
    (ccxt.BadRequest("-1013"), IGN, False, False),
    (ccxt.BadSymbol("XYZ"), IGN, False, False),
    (ccxt.NotSupported("x"), IGN, False, False),
    (ccxt.ArgumentsRequired("x"), IGN, False, False),
    (ccxt.MarketClosed("x"), IGN, False, False),
    (ccxt.ExchangeError("unmapped"), IGN, False, False),
    (ccxt.CancelPending("x"), IGN, True, False),
    (TimeoutError(), F, True, True),
    (ConnectionResetError(), F, True, True),
    (KeyError("bug"), IGN, True, False),
]


@pytest.mark.parametrize(("exc", "outcome", "ambiguous", "retryable"), TABLE,
                         ids=[type(row[0]).__name__ for row in TABLE])
def test_classification_table(exc: BaseException, outcome: Outcome, ambiguous: bool,
                              retryable: bool) -> None:
    got = classify_exception(exc)
    assert (got.outcome, got.ambiguous, got.retryable) == (outcome, ambiguous, retryable)
    assert got.error == type(exc).__name__


def test_rate_limit_exceeded_is_not_ddos_protection_in_this_ccxt() -> None:
    assert not issubclass(ccxt.RateLimitExceeded, ccxt.DDoSProtection)
    assert issubclass(ccxt.RateLimitExceeded, ccxt.NetworkError)


def test_every_ccxt_class_has_a_deliberate_meaning() -> None:
    """NetworkError family fails (except the nonce branch), ExchangeError family is ignored."""
    classes = [c for _, c in inspect.getmembers(ccxt_errors, inspect.isclass)
               if issubclass(c, ccxt.BaseError)]
    assert len(classes) > 30
    for cls in classes:
        got = classify_exception(cls("x"))
        if issubclass(cls, ccxt.InvalidNonce) or issubclass(cls, ccxt.ExchangeError):
            assert got.outcome is IGN, cls
        elif issubclass(cls, ccxt.NetworkError | ccxt.BadResponse):
            assert got.outcome is F, cls


def test_http_5xx_fallback_fails_and_is_ambiguous() -> None:
    # ccxt raises a plain ExchangeError for an HTTP status it does not map (e.g. 505).
    got = classify_exception(ccxt.ExchangeError("binance GET /order"), http_status=505)
    assert (got.outcome, got.ambiguous) == (F, True)
    assert classify_exception(ccxt.InvalidOrder("x"), http_status=400).outcome is IGN


def test_4xx_mapped_to_network_family_is_not_ambiguous() -> None:
    with pytest.raises(ccxt.BaseError) as info:
        ccxt.binance().handle_http_status_code(404, "Not Found", "https://v/x", "POST", "")
    got = classify_exception(info.value, http_status=404)
    assert (got.outcome, got.ambiguous) == (F, False)
    assert classify_exception(ccxt.RequestTimeout("408"), http_status=408).ambiguous


def test_real_ccxt_http_status_mapping_is_classified() -> None:
    binance = ccxt.binance()
    with pytest.raises(ccxt.BaseError) as info:
        binance.handle_http_status_code(503, "Service Unavailable", "https://v/x", "GET", "down")
    assert classify_exception(info.value).outcome is F
    with pytest.raises(ccxt.BaseError) as info:
        binance.handle_http_status_code(504, "Gateway Timeout", "https://v/x", "POST", "")
    assert isinstance(info.value, ccxt.RequestTimeout)
    assert classify_exception(info.value).ambiguous


def test_deadline_constant() -> None:
    assert DEADLINE_EXCEEDED.outcome is F and DEADLINE_EXCEEDED.ambiguous


# ----- back-off signals -------------------------------------------------------------------------

def binance_error(status: int, body: str) -> BaseException:
    with pytest.raises(ccxt.BaseError) as info:
        ccxt.binance().handle_errors(status, "Too Many Requests", "https://v/api/v3/depth", "GET",
                                     {}, body, json.loads(body), None, None)
    return info.value


def nobitex_error(status: int, response: dict[str, object]) -> BaseException:
    with pytest.raises(ccxt.BaseError) as info:
        Nobitex().handle_errors(status, "r", "https://v/market/orders/add", "POST", {},
                                json.dumps(response), response, None, None)
    return info.value


def test_binance_429_with_retry_after_header() -> None:
    exc = binance_error(429, '{"code":-1003,"msg":"Too much request weight used"}')
    signal = backoff_signal(exc, {"retry-after": "7"})
    assert signal == BackoffSignal(BackoffKind.RATE_LIMIT, 7.0, "Retry-After")


def test_binance_418_ban_from_header_or_ban_end_in_body() -> None:
    body = '{"code":-1003,"msg":"Way too much request weight used; IP banned until 1700000060000."}'
    exc = binance_error(418, body)
    assert backoff_signal(exc, {"Retry-After": "60"}).kind is BackoffKind.BAN
    signal = backoff_signal(exc, {}, body, wall_now=1_700_000_000.0)
    assert signal == BackoffSignal(BackoffKind.BAN, 60.0, "banned until")
    assert backoff_signal(exc, {}, body).seconds == 120.0  # no wall clock: the default


def test_retry_after_as_http_date() -> None:
    exc = binance_error(429, '{"code":-1003,"msg":"Too much request weight used"}')
    header = {"Retry-After": formatdate(1_700_000_030, usegmt=True)}
    assert backoff_signal(exc, header, wall_now=1_700_000_000.0).seconds == pytest.approx(30.0)


def test_nobitex_backoff_and_token_block() -> None:
    exc = nobitex_error(429, {"status": "failed", "code": "TooManyRequests", "backOff": 12})
    assert backoff_signal(exc) == BackoffSignal(BackoffKind.RATE_LIMIT, 12.0, "exception")
    body = {"status": "failed", "code": "TooManyRequests", "backOff": "9"}
    assert backoff_signal(ccxt.RateLimitExceeded("x"), None, body).seconds == 9.0
    blocked = nobitex_error(200, {"status": "failed", "code": "TokenBlocked", "message": "m"})
    assert backoff_signal(blocked) == BackoffSignal(BackoffKind.BAN, 120.0, "default")


def test_no_signal_for_other_errors_and_bad_values_ignored() -> None:
    assert backoff_signal(ccxt.InvalidOrder("price 429 is off")) is None
    assert backoff_signal(ccxt.RequestTimeout("t")) is None
    exc = ccxt.RateLimitExceeded("x")
    assert backoff_signal(exc, {"Retry-After": "soon"}).source == "default"
    assert backoff_signal(exc, {"Retry-After": "-3"}).source == "default"
    assert backoff_signal(exc, None, '{"backOff": "nan"}').source == "default"


# ----- the same, from real HTTP answers of the local venue through stock ccxt.binance --------

@pytest.fixture(scope="module")
def venue_exchange() -> Iterator[tuple[str, ccxt.binance]]:
    with running_venue(seed=1) as venue:
        exchange = binance_client(venue.url, timeout_ms=700)
        exchange.load_markets()
        yield venue.url, exchange


VENUE_FAULTS = [
    # fault, extra rule fields, outcome, ambiguous, signal kind and seconds
    ("error_500", {}, F, True, None),
    ("error_502", {}, F, True, None),
    ("error_503", {}, F, True, None),
    ("maintenance", {}, F, True, None),
    ("rate_limit", {"retry_after_s": 7}, F, False, (BackoffKind.RATE_LIMIT, 7.0)),
    ("ban", {"ban_s": 30}, F, False, (BackoffKind.BAN, 30.0)),
    ("hang", {}, F, True, None),
    ("lose_response", {}, F, True, None),
]


@pytest.mark.parametrize(("fault", "extra", "outcome", "ambiguous", "signal"), VENUE_FAULTS,
                         ids=[row[0] for row in VENUE_FAULTS])
def test_venue_faults_through_real_ccxt(
    venue_exchange: tuple[str, ccxt.binance], fault: str, extra: dict[str, object],
    outcome: Outcome, ambiguous: bool, signal: tuple[BackoffKind, float] | None,
) -> None:
    url, exchange = venue_exchange
    admin(url, "/_sim/reset", "POST")
    # a ban first, so a later timeout finds ccxt's last_* still holding the ban's answer
    install_faults(url, [{"endpoint": "fetch_order_book", "fault": "ban", "ban_s": 1,
                          "count": 1}])
    with pytest.raises(ccxt.DDoSProtection):
        exchange.fetch_order_book(SYMBOL)
    admin(url, "/_sim/reset", "POST")
    install_faults(url, [{"endpoint": "fetch_ticker", "fault": fault, "count": 1, **extra}])
    try:
        with pytest.raises(ccxt.BaseError) as info:
            exchange.fetch_ticker(SYMBOL)
    finally:
        admin(url, "/_sim/faults", "DELETE")
    got = classify_exception(info.value)
    assert (got.outcome, got.ambiguous) == (outcome, ambiguous)
    read = backoff_signal(info.value, exchange.last_response_headers,
                          exchange.last_http_response, wall_now=time.time())
    assert (None if read is None else (read.kind, read.seconds)) == signal


def test_nobitex_dialect_signals_through_our_adapter() -> None:
    with running_venue(seed=1, dialects=[NobitexDialect()]) as venue:
        client = create_client("nobitex", url=venue.url, token=DEMO_TOKEN, timeout_ms=2000)
        client.load_markets()
        install_faults(venue.url, [{"endpoint": "fetch_balance", "fault": "rate_limit",
                                    "retry_after_s": 9, "count": 1}])
        with pytest.raises(RateLimitBackOff) as limited:
            client.fetch_balance()
        install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "ban", "ban_s": 120,
                                    "count": 1}])
        with pytest.raises(VenueBan) as banned:
            client.fetch_ticker("BTC/USDT")
    assert classify_exception(limited.value).outcome is F
    assert backoff_signal(limited.value) == BackoffSignal(BackoffKind.RATE_LIMIT, 9.0, "exception")
    signal = backoff_signal(banned.value)
    assert signal is not None and signal.kind is BackoffKind.BAN
    assert 119.0 <= signal.seconds <= 120.0
