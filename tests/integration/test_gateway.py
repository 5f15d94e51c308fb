"""The exchange path end to end: real ccxt over real HTTP to the local venue, with its faults.

Each test starts the `venue:sim` subtree against an in-process venue and judges by the replies,
the actors' statistics and the venue's `/_sim` ground truth.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from actors import call, submit
from gateway.cache import MarketDataCache, MarketDataKind
from messages.exchange import (
    Category,
    CircuitOpen,
    DeadlineExceeded,
    ExchangeFailed,
    ExchangeRejected,
    ExchangeRequest,
    ExchangeResult,
    Overloaded,
)
from simulator.server import RunningVenue
from tests.helpers_gateway import (
    NAMES,
    VENUE,
    balance,
    breaker_state,
    gateway_config,
    order,
    start_gateway,
    statistics,
    ticker,
)
from tests.helpers_venue import admin, install_faults, running_venue
from tests.waiting import wait_until


@pytest.fixture
def venue() -> Iterator[RunningVenue]:
    with running_venue(seed=1) as handle:
        yield handle


def clear_faults(url: str) -> None:
    admin(url, "/_sim/faults", "DELETE")


def test_ticker_balance_and_order_reach_the_venue(venue: RunningVenue, tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path))
    try:
        tick = call(ticker())
        assert isinstance(tick, ExchangeResult) and not tick.stale
        assert tick.value["symbol"] == "BTC/USDT"
        funds = call(balance())
        assert isinstance(funds, ExchangeResult)
        assert Decimal(funds.value["USDT"]["free"]) > 0
        placed = call(order("gw-order-1"))
        assert isinstance(placed, ExchangeResult)
        truth = admin(venue.url, "/_sim/orders?account=demo-key")
        assert [o["client_order_id"] for o in truth] == ["gw-order-1"]
        stats = statistics(NAMES.dispatcher)
        assert {"fetch_ticker", "fetch_balance", "create_order"} <= set(stats.latency)
        assert stats.known_workers == 4
    finally:
        assert tree.stop(10)


def test_definitive_refusals_are_returned_and_do_not_trip(venue: RunningVenue,
                                                          tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path))
    try:
        for i in range(6):
            reply = call(order(f"too-big-{i}", side="sell", amount="1000000"))
            assert isinstance(reply, ExchangeRejected), reply
            assert reply.error_class == "InsufficientFunds"
        assert breaker_state(Category.TRADING) == "closed"
        unknown = call(ExchangeRequest.new(VENUE, "no_such_method", category=Category.TRADING,
                                           idempotent=True, timeout=1))
        assert isinstance(unknown, ExchangeRejected) and unknown.error_class == "NotSupported"
        raw_http = call(ExchangeRequest.new(VENUE, "fetch", ["http://example.com"],
                                            category=Category.MARKET_DATA, idempotent=True,
                                            timeout=1))
        assert isinstance(raw_http, ExchangeRejected) and raw_http.error_class == "NotSupported"
        write_as_read = call(ExchangeRequest.new(VENUE, "create_order",
                                                 ["BTC/USDT", "market", "buy", "0.001"],
                                                 category=Category.MARKET_DATA,
                                                 idempotent=False, timeout=1))
        assert isinstance(write_as_read, ExchangeRejected)
        assert write_as_read.error_class == "BadRequest"
        assert admin(venue.url, "/_sim/orders?account=demo-key") == []
    finally:
        assert tree.stop(10)


def test_breaker_opens_under_503s_fails_fast_and_closes_after_recovery(
        venue: RunningVenue, tmp_path: Path) -> None:
    # open long enough that the order below cannot become a half-open probe on a slow machine
    config = gateway_config(venue.url, tmp_path, breaker={"open_base": 1.0, "open_cap": 1.0})
    tree = start_gateway(config)
    try:
        install_faults(venue.url, [{"endpoint": "fetch_balance", "fault": "error_503"}])
        replies = [call(balance()) for _ in range(4)]
        assert all(isinstance(r, ExchangeFailed) for r in replies), replies
        wait_until(lambda: breaker_state(Category.TRADING) == "open")  # reported after replies
        refused = call(order("while-open"))
        assert isinstance(refused, CircuitOpen) and refused.next_probe_in > 0
        assert admin(venue.url, "/_sim/orders?account=demo-key") == []
        # market data has its own breaker: unaffected
        assert isinstance(call(ticker()), ExchangeResult)
        clear_faults(venue.url)
        recovered = wait_until(lambda: isinstance(r := call(balance()), ExchangeResult) and r)
        assert isinstance(recovered, ExchangeResult)
        wait_until(lambda: breaker_state(Category.TRADING) == "closed")  # outcome reported after
    finally:
        assert tree.stop(10)


def test_per_method_breakers_open_alone_for_their_method(venue: RunningVenue,
                                                        tmp_path: Path) -> None:
    config = gateway_config(venue.url, tmp_path, breaker={
        "per_method": True, "minimum_calls": 8, "window_size": 8.0,
        "failure_rate_threshold": 0.9})
    tree = start_gateway(config)
    try:
        install_faults(venue.url, [{"endpoint": "fetch_order_book", "fault": "error_503"}])
        book = ExchangeRequest.new(VENUE, "fetch_order_book", ["BTC/USDT"],
                                   category=Category.MARKET_DATA, idempotent=True, timeout=2)
        # Market data as a whole fails about half its calls (outcomes are reported after the
        # replies, so a window may hold a few more failures, never 90 %); the book fails all.
        for i in range(8):
            assert isinstance(call(ticker()), ExchangeResult)
            assert isinstance(call(attrs.evolve(book, id=f"book-{i}")), ExchangeFailed)
        wait_until(lambda: statistics(NAMES.gatekeeper).breakers[
            "sim/market_data/fetch_order_book"].state.value == "open")
        assert isinstance(call(attrs.evolve(book, id="book-refused")), CircuitOpen)
        assert isinstance(call(ticker()), ExchangeResult)
        assert breaker_state(Category.MARKET_DATA) == "closed"
    finally:
        clear_faults(venue.url)
        assert tree.stop(10)


def test_breaker_opens_under_timeouts(venue: RunningVenue, tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path))
    try:
        install_faults(venue.url, [{"endpoint": "fetch_balance", "fault": "hang", "hang_s": 5}])
        started = time.monotonic()
        replies = [call(balance(timeout=0.3)) for _ in range(4)]
        assert all(isinstance(r, DeadlineExceeded) and r.sent for r in replies), replies
        assert time.monotonic() - started < 4 * 0.3 + 1.0
        wait_until(lambda: breaker_state(Category.TRADING) == "open")
    finally:
        clear_faults(venue.url)
        assert tree.stop(10)


def test_retry_after_429_pauses_the_account(venue: RunningVenue, tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path))
    try:
        install_faults(venue.url, [{"endpoint": "fetch_balance", "fault": "rate_limit",
                                    "retry_after_s": 1, "count": 1}])
        limited = call(balance())
        assert isinstance(limited, ExchangeFailed) and limited.retry_after == 1.0
        paused = wait_until(lambda: statistics(NAMES.rate_limiter).bucket.paused_until)
        assert statistics(NAMES.rate_limiter).bucket.pause_reason.value == "rate_limit"
        sent_at = time.monotonic()
        assert isinstance(call(ticker()), ExchangeResult)  # held back, not refused
        assert time.monotonic() >= paused - 0.01
        assert time.monotonic() - sent_at > 0.5
    finally:
        assert tree.stop(10)


def test_a_ban_opens_every_breaker_until_it_ends(venue: RunningVenue, tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path))
    try:
        install_faults(venue.url, [{"endpoint": "fetch_order_book", "fault": "ban", "ban_s": 2,
                                    "count": 1}])
        banned = call(ExchangeRequest.new(VENUE, "fetch_order_book", ["BTC/USDT"],
                                          category=Category.MARKET_DATA, idempotent=True,
                                          timeout=3))
        assert isinstance(banned, ExchangeFailed) and banned.error_class == "DDoSProtection"
        wait_until(lambda: breaker_state(Category.TRADING) == "open")
        assert breaker_state(Category.MARKET_DATA) == "open"
        refused = call(order("during-ban"))
        assert isinstance(refused, CircuitOpen) and 0.5 < refused.next_probe_in <= 2.5
        assert admin(venue.url, "/_sim/orders?account=demo-key") == []
    finally:
        assert tree.stop(10)


def test_stale_reads_are_served_while_the_breaker_is_open(venue: RunningVenue,
                                                          tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path))
    try:
        fresh = call(ticker())
        assert isinstance(fresh, ExchangeResult)
        with MarketDataCache(tmp_path / "cache", VENUE) as cache:
            wait_until(lambda: cache.get(MarketDataKind.TICKER, '[["BTC/USDT"], {}]',
                                         time.time()))
        install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "error_503"}])
        stale = call(ticker())
        while not (isinstance(stale, ExchangeResult) and stale.stale):
            assert isinstance(stale, ExchangeFailed), stale  # until the breaker opens
            stale = call(ticker())
        assert stale.value == fresh.value
        never_cached = call(ticker("ETH/USDT"))
        assert isinstance(never_cached, CircuitOpen)
        assert statistics(NAMES.gatekeeper).stale_served == 1
    finally:
        clear_faults(venue.url)
        assert tree.stop(10)


def test_a_burst_of_reads_does_not_delay_an_order(venue: RunningVenue, tmp_path: Path) -> None:
    config = gateway_config(venue.url, tmp_path, pool={"workers": 4, "market_data_queue": 64})
    tree = start_gateway(config)
    try:
        install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "latency",
                                    "latency_ms": 200}])
        reads = [submit(ticker(timeout=1.0)) for _ in range(80)]
        sent = time.monotonic()
        placed = call(order("through-the-flood", timeout=0.5))
        assert isinstance(placed, ExchangeResult), placed
        assert time.monotonic() - sent < 0.5  # within its deadline, behind 80 slow reads
        replies = [slot.future.get(timeout=3.0) for slot in reads]
        kinds = {type(r).__name__ for r in replies}
        assert kinds <= {"ExchangeResult", "DeadlineExceeded", "Overloaded"}, replies
        assert any(isinstance(r, Overloaded) for r in replies)  # 80 reads > 64 queued
        assert statistics(NAMES.dispatcher).max_queued["market_data"] <= 64
    finally:
        clear_faults(venue.url)
        assert tree.stop(10)


def test_nobitex_through_the_same_path(venue: RunningVenue, tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path, exchange="nobitex"))
    try:
        tick = call(ticker())
        assert isinstance(tick, ExchangeResult), tick
        funds = call(balance())
        assert isinstance(funds, ExchangeResult), funds
        placed = call(order("nbx-1", id_param="clientOrderId"))
        assert isinstance(placed, ExchangeResult), placed
        truth = admin(venue.url, "/_sim/orders?account=demo-token")
        assert [o["client_order_id"] for o in truth] == ["nbx-1"]
        refused = call(order("nbx-2", side="sell", amount="1000000", id_param="clientOrderId"))
        assert isinstance(refused, ExchangeRejected), refused
    finally:
        assert tree.stop(10)
