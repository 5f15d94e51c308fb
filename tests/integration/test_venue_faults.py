"""Each fault, through stock ccxt.binance over real HTTP, raises what the real venue's same
answer raises, with Binance's bodies and headers; lose_response executes the order."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from email.message import Message

import ccxt
import pytest

from tests.helpers_venue import admin, binance_client, install_faults, running_venue
from tests.waiting import wait_until

SYMBOL = "BTC/USDT"


@pytest.fixture(scope="module")
def venue():
    with running_venue(seed=1) as handle:
        yield handle


@pytest.fixture
def exchange(venue):
    admin(venue.url, "/_sim/reset", "POST")
    exchange = binance_client(venue.url)
    exchange.load_markets()
    yield exchange
    admin(venue.url, "/_sim/faults", "DELETE")


def raw_get(url: str) -> tuple[int, Message, bytes]:
    """Status, headers (case-insensitive) and body of a plain GET."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.mark.parametrize("fault, error", [
    ("error_500", ccxt.OperationFailed),
    ("error_502", ccxt.ExchangeNotAvailable),
    ("error_503", ccxt.ExchangeNotAvailable),
    ("maintenance", ccxt.ExchangeNotAvailable),
    ("rate_limit", ccxt.DDoSProtection),
    ("ban", ccxt.DDoSProtection),
])
def test_answering_faults_raise_the_binance_exception(venue, exchange, fault, error):
    install_faults(venue.url, [{"endpoint": "create_order", "fault": fault, "count": 1}])
    with pytest.raises(error):
        exchange.create_order(SYMBOL, "limit", "buy", 0.01, 50000)
    assert admin(venue.url, "/_sim/orders?account=demo-key") == [], "a refused call executed"
    if fault != "ban":  # a ban outlives its rule; the others fired their one time
        assert exchange.fetch_ticker(SYMBOL)["bid"] > 0


def test_rate_limit_and_ban_carry_retry_after_and_binance_bodies(venue, exchange):
    install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "rate_limit",
                                "retry_after_s": 7, "count": 1}])
    status, headers, body = raw_get(venue.url + "/api/v3/ticker/24hr?symbol=BTCUSDT")
    assert status == 429 and headers["Retry-After"] == "7" and b'"code":-1003' in body
    install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "ban", "ban_s": 30,
                                "count": 1}])
    status, headers, body = raw_get(venue.url + "/api/v3/ticker/24hr?symbol=BTCUSDT")
    assert status == 418 and 29 <= int(headers["Retry-After"]) <= 30 and b"banned until" in body
    # the ban covers every endpoint until it expires, though the rule fired once
    status, headers, _ = raw_get(venue.url + "/api/v3/depth?symbol=BTCUSDT")
    assert status == 418 and int(headers["Retry-After"]) >= 1
    with pytest.raises(ccxt.DDoSProtection):
        exchange.fetch_balance()
    admin(venue.url, "/_sim/faults", "DELETE")
    assert raw_get(venue.url + "/api/v3/depth?symbol=BTCUSDT")[0] == 200


def test_error_503_body_is_not_json_so_ccxt_classifies_by_status(venue, exchange):
    install_faults(venue.url, [{"endpoint": "fetch_order_book", "fault": "error_503"}])
    status, headers, body = raw_get(venue.url + "/api/v3/depth?symbol=BTCUSDT")
    assert status == 503 and headers["content-type"].startswith("text/html")


def test_hang_times_out_without_executing_or_blocking_others(venue, exchange):
    install_faults(venue.url, [{"endpoint": "create_order", "fault": "hang"}])
    slow = binance_client(venue.url, timeout_ms=1500)
    slow.load_markets()
    outcome = {}

    def submit():
        try:
            slow.create_order(SYMBOL, "limit", "buy", 0.01, 50000)
        except ccxt.BaseError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=submit)
    worker.start()
    # while one request hangs, others are served
    started = time.monotonic()
    assert exchange.fetch_ticker(SYMBOL)["ask"] > 0
    assert time.monotonic() - started < 1.0
    worker.join(10)
    assert isinstance(outcome.get("error"), ccxt.RequestTimeout)
    assert admin(venue.url, "/_sim/orders?account=demo-key") == []


def test_lose_response_executes_then_drops_the_connection(venue, exchange):
    install_faults(venue.url, [{"endpoint": "create_order", "fault": "lose_response",
                                "count": 1}])
    with pytest.raises(ccxt.NetworkError) as info:
        exchange.create_order(SYMBOL, "limit", "buy", 0.01, 50000,
                              {"newClientOrderId": "lost-1"})
    assert not isinstance(info.value, ccxt.ExchangeNotAvailable), "must not look like a 5xx"
    [order] = admin(venue.url, "/_sim/orders?account=demo-key")
    assert order["client_order_id"] == "lost-1" and order["status"] == "new"
    # the venue knows it: a retry with the same client id is a duplicate, a lookup finds it
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate"):
        exchange.create_order(SYMBOL, "limit", "buy", 0.01, 50000, {"newClientOrderId": "lost-1"})
    assert exchange.fetch_order(None, SYMBOL, {"clientOrderId": "lost-1"})["id"] == str(
        order["id"])


def test_latency_delays_the_answer(venue, exchange):
    install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "latency",
                                "latency_ms": 300, "jitter_ms": 50}])
    started = time.monotonic()
    exchange.fetch_ticker(SYMBOL)
    assert 0.3 <= time.monotonic() - started < 2.0


def test_clock_skew_makes_signed_requests_invalid_nonce(venue, exchange):
    install_faults(venue.url, [{"endpoint": "fetch_balance", "fault": "clock_skew",
                                "skew_ms": 120_000}])
    with pytest.raises(ccxt.InvalidNonce):
        exchange.fetch_balance()


def test_balance_drift_moves_funds_out_unrecorded(venue, exchange):
    before = exchange.fetch_balance()["BTC"]["free"]
    install_faults(venue.url, [{"endpoint": "fetch_balance", "fault": "balance_drift",
                                "currency": "BTC", "amount": "0.5", "count": 1}])
    assert exchange.fetch_balance()["BTC"]["free"] == pytest.approx(before - 0.5)
    truth = admin(venue.url, "/_sim/balances")
    assert truth["withdrawn"]["BTC"]["free"] == "0.5"
    assert admin(venue.url, "/_sim/audit")["problems"] == []


def test_window_and_wildcard_rules(venue, exchange):
    install_faults(venue.url, [{"endpoint": "*", "fault": "error_503", "after_ms": 60_000}])
    assert exchange.fetch_ticker(SYMBOL)  # not yet inside the window
    install_faults(venue.url, [{"endpoint": "*", "fault": "error_503", "until_ms": 60_000}])
    with pytest.raises(ccxt.ExchangeNotAvailable):
        exchange.fetch_ticker(SYMBOL)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        exchange.fetch_balance()


def test_account_filtered_rules_hit_only_that_account():
    from decimal import Decimal

    from simulator import AccountSpec, VenueConfig, default_accounts

    alice = AccountSpec(id="alice", api_key="alice-key", secret="alice-secret",
                        balances={"USDT": Decimal("1000")})
    with running_venue(VenueConfig(accounts=(*default_accounts(), alice))) as venue:
        demo = binance_client(venue.url)
        other = binance_client(venue.url, api_key="alice-key", secret="alice-secret")
        demo.load_markets()
        other.load_markets()
        # named by API key, stored as the account id
        shown = install_faults(venue.url, [{"endpoint": "fetch_balance", "fault": "error_503",
                                            "account": "alice-key"}])
        assert shown["rules"][0]["account"] == "alice"
        assert demo.fetch_balance()["USDT"]["free"] > 0
        with pytest.raises(ccxt.ExchangeNotAvailable):
            other.fetch_balance()
        with pytest.raises(urllib.error.HTTPError) as info:
            install_faults(venue.url, [{"endpoint": "*", "fault": "error_503",
                                        "account": "ghost"}])
        assert info.value.code == 400


def test_stopping_the_venue_drops_held_requests_promptly():
    with running_venue() as venue:
        install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "hang"}])
        client = binance_client(venue.url, timeout_ms=30_000)
        client.load_markets()
        outcome = {}

        def held():
            try:
                client.fetch_ticker(SYMBOL)
            except ccxt.BaseError as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=held)
        worker.start()
        wait_until(lambda: admin(venue.url, "/_sim/faults")["stats"][0]["fired"] > 0, 5,
                   "the request reaching the venue")
        started = time.monotonic()
    assert time.monotonic() - started < 5
    worker.join(5)
    assert isinstance(outcome.get("error"), ccxt.NetworkError)
    assert not isinstance(outcome["error"], ccxt.ExchangeNotAvailable), "not a 500"


def test_windows_and_ban_expiry_follow_the_injected_clock():
    now = [1_800_000_000_000]
    with running_venue(clock=lambda: now[0]) as venue:
        client = binance_client(venue.url)
        client.load_markets()
        install_faults(venue.url, [
            {"endpoint": "fetch_ticker", "fault": "error_503", "after_ms": 1000,
             "until_ms": 2000},
            {"endpoint": "fetch_order_book", "fault": "ban", "ban_s": 60, "count": 1}])
        assert client.fetch_ticker(SYMBOL)["bid"] > 0
        now[0] += 1500
        with pytest.raises(ccxt.ExchangeNotAvailable):
            client.fetch_ticker(SYMBOL)
        now[0] += 1000
        assert client.fetch_ticker(SYMBOL)["bid"] > 0
        with pytest.raises(ccxt.DDoSProtection):
            client.fetch_order_book(SYMBOL)
        now[0] += 59_000
        status, headers, _ = raw_get(venue.url + "/api/v3/ticker/24hr?symbol=BTCUSDT")
        assert status == 418 and headers["Retry-After"] == "1"
        now[0] += 1_000
        assert client.fetch_order_book(SYMBOL)["bids"]
