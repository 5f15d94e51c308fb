"""Entering the gatekeeper and the dispatcher on the sender's thread (`actors.entrance`).

The entered path and the message path share one actor's state; a failure in entered code is
answered and crashes the actor on its own thread, which its supervisor replaces; a stopped or
broken actor refuses entry and senders fall back to its stable name.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import ReplySlot, call
from actors.entrance import entrance
from actors.gatekeeper import Gatekeeper
from actors.pool import PoolCore
from actors.protocol import Call
from messages.exchange import ExchangeFailed, ExchangeResult, OutcomeUnknown
from simulator.server import RunningVenue
from supervisors import names
from tests.helpers_gateway import NAMES, gateway_config, order, start_gateway, statistics, ticker
from tests.helpers_venue import admin, running_venue
from tests.waiting import wait_until


@pytest.fixture
def venue() -> Iterator[RunningVenue]:
    with running_venue(seed=1) as handle:
        yield handle


def _replaced(name: str, before: object) -> bool:
    current = names.registered().get(name)
    return current is not None and current is not before and entrance(name) is not None


def test_entered_and_sent_calls_share_one_gatekeeper(venue: RunningVenue,
                                                     tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path))
    try:
        entered = [call(ticker()) for _ in range(5)]
        slots = [ReplySlot() for _ in range(5)]
        gatekeeper = names.resolve(NAMES.gatekeeper, 1.0)
        for slot in slots:
            gatekeeper.tell(Call(ticker(), slot))
        sent = [slot.future.get(timeout=5) for slot in slots]
        assert all(isinstance(reply, ExchangeResult) for reply in entered + sent)
        wait_until(lambda: statistics(NAMES.gatekeeper).pending == 0, 5, "outcomes recorded")
        stats = statistics(NAMES.gatekeeper)
        assert stats.admitted == 10
        breaker = stats.breakers["sim/market_data"]
        assert breaker.calls == 10 and breaker.failures == breaker.ignored == 0
        pool = statistics(NAMES.dispatcher)
        assert pool.submitted == 10 and sum(pool.latency["fetch_ticker"]) == 10
        assert pool.idle_workers == pool.known_workers == 4  # every worker reported back
    finally:
        assert tree.stop(10)


@pytest.mark.parametrize(("idempotent", "reply_type"), [(False, OutcomeUnknown),
                                                         (True, ExchangeFailed)])
def test_a_failure_on_the_callers_thread_crashes_the_gatekeeper(
        venue: RunningVenue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        idempotent: bool, reply_type: type) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path))
    try:
        assert isinstance(call(ticker()), ExchangeResult)
        before = names.registered()[NAMES.gatekeeper]
        original = Gatekeeper._keys
        poisoned = threading.Event()

        def keys_with_a_bug(self: Gatekeeper, request: object) -> object:
            if not poisoned.is_set():
                poisoned.set()
                raise RuntimeError("injected bug")
            return original(self, request)  # type: ignore[arg-type]

        monkeypatch.setattr(Gatekeeper, "_keys", keys_with_a_bug)
        request = order("entered-bug") if not idempotent else ticker()
        reply = call(request)
        assert isinstance(reply, reply_type), reply
        assert "gatekeeper failed: RuntimeError: injected bug" in str(reply)
        wait_until(lambda: _replaced(NAMES.gatekeeper, before), 10, "gatekeeper replaced")
        assert isinstance(call(ticker()), ExchangeResult)
        assert admin(venue.url, "/_sim/orders?account=demo-key") == []  # nothing was sent
    finally:
        assert tree.stop(10)


def test_a_failure_entered_in_the_pool_is_answered_and_released(
        venue: RunningVenue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path))
    try:
        assert isinstance(call(ticker()), ExchangeResult)
        before = names.registered()[NAMES.dispatcher]
        original = PoolCore.can_start
        poisoned = threading.Event()

        def can_start_with_a_bug(self: PoolCore, job: object, now: float) -> bool:
            if not poisoned.is_set():
                poisoned.set()
                raise RuntimeError("injected bug")
            return original(self, job, now)  # type: ignore[arg-type]

        monkeypatch.setattr(PoolCore, "can_start", can_start_with_a_bug)
        reply = call(order("pool-bug"))
        assert isinstance(reply, OutcomeUnknown), reply
        assert "pool dispatcher failed" in reply.reason
        wait_until(lambda: _replaced(NAMES.dispatcher, before), 10, "dispatcher replaced")
        wait_until(lambda: statistics(NAMES.gatekeeper).pending == 0, 5, "permit released")
        wait_until(lambda: isinstance(call(ticker()), ExchangeResult), 10, "calls flow again")
        assert admin(venue.url, "/_sim/orders?account=demo-key") == []
    finally:
        assert tree.stop(10)


def test_a_stopped_gatekeeper_is_no_longer_entered(venue: RunningVenue,
                                                   tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path))
    gatekeeper = entrance(NAMES.gatekeeper)
    assert gatekeeper is not None
    assert tree.stop(10)
    assert entrance(NAMES.gatekeeper) is None and entrance(NAMES.dispatcher) is None
    assert gatekeeper.enter(Call(ticker(), ReplySlot())) is False
