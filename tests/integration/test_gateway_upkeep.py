"""Worker upkeep and recovery of the exchange path: health checks, client rebuilds after
network failures, and calls flowing again after the dispatcher or gatekeeper crashed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from actors import GetStatistics, call
from ironclad.config import BackoffConfig
from messages.exchange import Category, ExchangeFailed, ExchangeResult, Overloaded
from simulator.server import RunningVenue
from supervisors import names
from tests.helpers_gateway import (
    NAMES,
    balance,
    breaker_state,
    gateway_config,
    start_gateway,
    statistics,
    ticker,
)
from tests.helpers_venue import admin, install_faults, running_venue
from tests.waiting import wait_until


@pytest.fixture
def venue() -> Iterator[RunningVenue]:
    with running_venue(seed=2) as handle:
        yield handle


class Bogus:
    """A message no gateway actor understands: receiving it is a bug, so the actor crashes."""


def test_idle_workers_check_the_venue(venue: RunningVenue, tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path,
                                        pool={"workers": 1, "health_interval": 0.05}))
    try:
        wait_until(lambda: statistics(NAMES.worker(1)).health_checks >= 2)
        assert isinstance(call(ticker()), ExchangeResult)  # checks never block real work
    finally:
        assert tree.stop(10)


def test_a_worker_rebuilds_its_client_after_repeated_network_failures(
        venue: RunningVenue, tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path, pool={"workers": 1,
                                                                   "rebuild_after": 2},
                                        breaker={"minimum_calls": 10, "window_size": 10.0}))
    try:
        install_faults(venue.url, [{"endpoint": "fetch_balance", "fault": "error_503",
                                    "count": 2}])
        assert isinstance(call(balance()), ExchangeFailed)
        assert statistics(NAMES.worker(1)).rebuilds == 0
        assert isinstance(call(balance()), ExchangeFailed)
        wait_until(lambda: statistics(NAMES.worker(1)).rebuilds == 1)
        assert isinstance(call(balance()), ExchangeResult)  # the new client works
    finally:
        admin(venue.url, "/_sim/faults", "DELETE")
        assert tree.stop(10)


@pytest.mark.parametrize("victim", [NAMES.dispatcher, NAMES.gatekeeper])
def test_calls_flow_again_after_a_gateway_actor_crashed(venue: RunningVenue, tmp_path: Path,
                                                        victim: str) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path, pool={"workers": 2}))
    try:
        assert isinstance(call(ticker()), ExchangeResult)
        before = names.resolve(victim, 1.0)
        before.tell(Bogus())
        wait_until(lambda: names.registered().get(victim) not in (None, before))
        assert isinstance(call(ticker()), ExchangeResult)
        assert isinstance(call(balance()), ExchangeResult)
        pool = names.ask(NAMES.dispatcher, GetStatistics(), timeout=5)
        assert pool.known_workers == 2
    finally:
        assert tree.stop(10)


def test_a_restarting_dispatcher_never_stalls_the_gatekeeper(venue: RunningVenue,
                                                             tmp_path: Path) -> None:
    """While the dispatcher is down (a slow restart: 1.5 s backoff) every call is answered at
    once with Overloaded, nothing sent, instead of the gatekeeper waiting for the new pool;
    once it is back, calls flow again and the breakers never counted the refusals."""
    config = gateway_config(venue.url, tmp_path, pool={"workers": 2})
    config = attrs.evolve(config, supervision=attrs.evolve(config.supervision, backoff=(
        BackoffConfig(initial=1.5, factor=1.0, max=1.5, jitter=0.0))))
    tree = start_gateway(config)
    try:
        assert isinstance(call(ticker()), ExchangeResult)
        before = names.resolve(NAMES.dispatcher, 1.0)
        before.tell(Bogus())
        wait_until(lambda: names.registered().get(NAMES.dispatcher) is None)

        replies: list[tuple[float, object]] = []

        def timed_call() -> None:
            started = time.monotonic()
            reply = call(ticker())
            replies.append((time.monotonic() - started, reply))

        callers = [threading.Thread(target=timed_call) for _ in range(3)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(10)
        assert len(replies) == 3
        for elapsed, reply in replies:
            assert isinstance(reply, Overloaded) and "restarting" in reply.reason, reply
            assert elapsed < 0.3, f"a caller waited {elapsed:.2f}s for the restarting pool"
        gatekeeper = statistics(NAMES.gatekeeper)
        assert gatekeeper.pending == 0  # the refused calls' permits were released
        assert breaker_state(Category.MARKET_DATA) == "closed"

        wait_until(lambda: names.registered().get(NAMES.dispatcher) not in (None, before), 10)
        assert isinstance(call(ticker()), ExchangeResult)
        assert isinstance(call(balance()), ExchangeResult)
        wait_until(lambda: names.ask(NAMES.dispatcher, GetStatistics(),
                                     timeout=5).known_workers == 2)
    finally:
        assert tree.stop(10)
