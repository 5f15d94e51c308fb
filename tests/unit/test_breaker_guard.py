"""The breaker around plain function calls, from many threads at once."""

from __future__ import annotations

import random
import threading
from decimal import Decimal

import ccxt
import pytest

from exchanges.errors import RateLimitBackOff
from gateway.breaker import Breaker, BreakerConfig, BreakerState
from gateway.classify import backoff_signal
from gateway.errors import CircuitOpenError
from gateway.guard import GuardedBreaker, guard
from tests.helpers_venue import admin, binance_client, install_faults, running_venue


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def guarded(probes: int = 3) -> tuple[GuardedBreaker, ManualClock]:
    clock = ManualClock()
    config = BreakerConfig(window_size=4, minimum_calls=2, half_open_probes=probes,
                           open_base=10.0, open_cap=10.0, jitter=0.0)
    return GuardedBreaker(Breaker("ext", config, random.Random(0)), clock=clock), clock


def raise_(exc: BaseException) -> None:
    raise exc


def test_failures_open_and_open_circuit_raises_with_next_probe() -> None:
    gb, clock = guarded()

    @gb.protect
    def fetch_ticker(symbol: str) -> str:
        """Docstring kept."""
        raise ccxt.RequestTimeout(f"timeout {symbol}")

    assert fetch_ticker.__doc__ == "Docstring kept."
    for _ in range(2):
        with pytest.raises(ccxt.RequestTimeout):
            fetch_ticker("BTC/USDT")
    calls = []
    with pytest.raises(CircuitOpenError) as info:
        gb.call(calls.append, 1)
    assert calls == []  # the function never ran
    assert info.value.next_probe_at == 10.0
    assert info.value.state == "open"


def test_definitive_errors_do_not_trip() -> None:
    gb, _ = guarded()
    for exc in (ccxt.InvalidOrder("x"), ccxt.InsufficientFunds("x"), ccxt.OrderNotFound("x"),
                ccxt.AuthenticationError("x"), ccxt.InvalidNonce("x")):
        with pytest.raises(type(exc)):
            gb.call(raise_, exc)
    m = gb.metrics()
    assert m.state is BreakerState.CLOSED
    assert (m.ignored, m.failures) == (5, 0)


def test_context_manager_reports_success_and_failure() -> None:
    gb, clock = guarded()
    with guard(gb):
        clock.now = 0.5
    with pytest.raises(ccxt.ExchangeNotAvailable), gb.attempt():
        raise ccxt.ExchangeNotAvailable("503")
    m = gb.metrics()
    assert (m.calls, m.failures) == (2, 1)


def test_venue_backoff_carried_by_the_exception_opens_the_breaker() -> None:
    gb, clock = guarded()
    with pytest.raises(RateLimitBackOff):
        gb.call(raise_, RateLimitBackOff("nobitex 429", Decimal("12")))
    with pytest.raises(CircuitOpenError) as info:
        gb.call(lambda: None)
    assert info.value.next_probe_at == 12.0


def test_operator_commands_through_the_guard() -> None:
    gb, clock = guarded()
    gb.open_for(30.0, "Retry-After")
    with pytest.raises(CircuitOpenError) as info:
        gb.call(lambda: None)
    assert info.value.next_probe_at == 30.0
    gb.reset()
    gb.force_open()
    with pytest.raises(CircuitOpenError):
        gb.call(lambda: None)
    gb.disable()
    assert gb.call(lambda: 42) == 42


@pytest.mark.parametrize("probes", [1, 3])
def test_half_open_admits_exactly_the_probes_under_concurrency(probes: int) -> None:
    gb, clock = guarded(probes)
    for _ in range(2):
        with pytest.raises(ccxt.NetworkError):
            gb.call(raise_, ccxt.NetworkError("reset"))
    clock.now = 10.0  # open time over: the next callers race for the probe slots

    callers = 24
    release = threading.Event()
    done = threading.Condition()
    admitted: list[int] = []
    refused: list[int] = []
    start = threading.Barrier(callers)

    def probe(i: int) -> None:
        with done:
            admitted.append(i)
            done.notify_all()
        assert release.wait(timeout=10)
        return None

    def caller(i: int) -> None:
        start.wait(timeout=10)
        try:
            gb.call(probe, i)
        except CircuitOpenError:
            with done:
                refused.append(i)
                done.notify_all()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    with done:
        assert done.wait_for(lambda: len(admitted) + len(refused) == callers, timeout=10)
    assert len(admitted) == probes  # all probes are still running: no more were let in
    assert gb.breaker.probes_in_flight == probes
    release.set()
    for t in threads:
        t.join(timeout=10)
        assert not t.is_alive()
    assert gb.metrics().state is BreakerState.CLOSED


def test_guard_around_real_ccxt_opens_on_503s_fails_fast_and_recovers() -> None:
    """Stock ccxt.binance over real HTTP to the local venue; the venue's own counters show
    that an open breaker sends nothing."""
    gb, clock = guarded(probes=1)
    with running_venue(seed=1) as venue:
        exchange = binance_client(venue.url)
        exchange.load_markets()
        fetch_ticker = gb.protect(exchange.fetch_ticker)
        install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "error_503"}])
        for _ in range(2):
            with pytest.raises(ccxt.ExchangeNotAvailable):
                fetch_ticker("BTC/USDT")
        for _ in range(5):
            with pytest.raises(CircuitOpenError):
                fetch_ticker("BTC/USDT")
        assert admin(venue.url, "/_sim/faults")["stats"] == [{"seen": 2, "fired": 2}]
        admin(venue.url, "/_sim/faults", "DELETE")
        clock.now = 10.0
        assert fetch_ticker("BTC/USDT")["symbol"] == "BTC/USDT"  # the probe
    m = gb.metrics()
    assert (m.state, m.failures, m.rejected) == (BreakerState.CLOSED, 2, 5)


def test_retry_after_header_read_through_signal_of() -> None:
    with running_venue(seed=1) as venue:
        exchange = binance_client(venue.url)
        exchange.load_markets()
        clock = ManualClock()
        config = BreakerConfig(window_size=10, minimum_calls=10, jitter=0.0)
        gb = GuardedBreaker(
            Breaker("binance/market_data", config), clock=clock,
            signal_of=lambda e: backoff_signal(e, exchange.last_response_headers,
                                               exchange.last_http_response),
        )
        install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "rate_limit",
                                    "retry_after_s": 7, "count": 1}])
        with pytest.raises(ccxt.DDoSProtection):
            gb.call(exchange.fetch_ticker, "BTC/USDT")
    with pytest.raises(CircuitOpenError) as info:
        gb.call(lambda: None)
    assert info.value.next_probe_at == 7.0
