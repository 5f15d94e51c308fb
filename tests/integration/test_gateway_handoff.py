"""A blocking `call()` runs its worker's handler on the caller's own thread (`run_handoff`).

What must hold: only a thread that blocks on the call anyway does the I/O (never an actor's
thread, never `submit`); the breaker and the pool see the call exactly as if the worker's thread
had made it; a worker that fails on the caller's thread is replaced and its call settled once by
the pool (idempotent: retried elsewhere; an order: OutcomeUnknown, never resent); work handed
to a worker that is gone before it starts is requeued (nothing was sent).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors import ReplySlot, Worker, call, submit
from actors.api import DEFAULT_GRACE, _send
from actors.entrance import entrance
from actors.worker import abandon_handoff, run_handoff
from messages.exchange import DeadlineExceeded, ExchangeRequest, ExchangeResult, OutcomeUnknown
from simulator.server import RunningVenue
from supervisors import names
from tests.helpers_gateway import NAMES, gateway_config, order, start_gateway, statistics, ticker
from tests.helpers_venue import admin, install_faults, running_venue
from tests.waiting import wait_until

#: request id -> the thread that made its ccxt call
CALLED_ON: dict[str, int] = {}
#: request ids whose worker fails with a bug right after the venue answered
FAIL_AFTER: set[str] = set()


class RecordingWorker(Worker):
    """A real worker that notes which thread made each call, and fails where told to."""

    def invoke(self, request: ExchangeRequest) -> Any:
        CALLED_ON[request.id] = threading.get_ident()
        value = super().invoke(request)
        if request.id in FAIL_AFTER:
            FAIL_AFTER.discard(request.id)
            raise RuntimeError(f"injected bug after {request.id} reached the venue")
        return value


@pytest.fixture
def venue() -> Iterator[RunningVenue]:
    with running_venue(seed=1) as handle:
        yield handle


def _handed_over(request: ExchangeRequest) -> ReplySlot:
    """What `call()` does up to running the work: the pool hands it to this thread."""
    slot = ReplySlot(runner=threading.get_ident())
    _send(request, slot)
    assert slot.handoff is not None
    return slot


def _settled() -> bool:
    pool = statistics(NAMES.dispatcher)
    return statistics(NAMES.gatekeeper).pending == 0 and pool.idle_workers == pool.known_workers


class _Caller(pykka.ThreadingActor):
    """An actor that (wrongly) blocks on `call()`: it must still not do the I/O itself."""

    def on_receive(self, message: Any) -> Any:
        return threading.get_ident(), call(message)


def test_a_blocking_call_runs_on_the_callers_thread_and_nothing_else_does(
        venue: RunningVenue, tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path), RecordingWorker)
    try:
        me = threading.get_ident()
        called = ticker()
        assert isinstance(call(called), ExchangeResult)
        assert CALLED_ON[called.id] == me
        submitted = ticker()
        assert isinstance(submit(submitted).future.get(timeout=5), ExchangeResult)
        assert CALLED_ON[submitted.id] != me
        from_actor = ticker()
        caller = _Caller.start()
        try:
            actor_thread, reply = caller.ask(from_actor, timeout=10)
        finally:
            caller.stop()
        assert isinstance(reply, ExchangeResult)
        assert CALLED_ON[from_actor.id] not in (actor_thread, me)
        wait_until(_settled, 5, "every call reported to the breaker and the pool")
        breaker = statistics(NAMES.gatekeeper).breakers["sim/market_data"]
        assert breaker.calls == 3 and breaker.failures == 0
        assert sum(statistics(NAMES.dispatcher).latency["fetch_ticker"]) == 3
    finally:
        assert tree.stop(10)


@pytest.mark.parametrize("kind", ["ticker", "order"])
def test_a_worker_failing_on_the_callers_thread_is_replaced_and_its_call_settled_once(
        venue: RunningVenue, tmp_path: Path, kind: str) -> None:
    admin(venue.url, "/_sim/reset", "POST")
    tree = start_gateway(gateway_config(venue.url, tmp_path, pool={"workers": 2}),
                         RecordingWorker)
    try:
        assert isinstance(call(ticker()), ExchangeResult)
        client_id = "h" + uuid.uuid4().hex[:16]
        request = ticker() if kind == "ticker" else order(client_id)
        FAIL_AFTER.add(request.id)
        reply = call(request)
        assert CALLED_ON[request.id] == threading.get_ident() or kind == "ticker"
        if kind == "ticker":  # idempotent: retried on the other worker
            assert isinstance(reply, ExchangeResult), reply
        else:  # it reached the venue, then the worker died: unknown, and never resent
            assert isinstance(reply, OutcomeUnknown), reply
        wait_until(lambda: statistics(NAMES.dispatcher).worker_restarts == 1, 10,
                   "the failed worker replaced")
        wait_until(_settled, 10, "the pool and the breaker settled")
        pool = statistics(NAMES.dispatcher)
        assert (pool.retried, pool.lost) == ((1, 0) if kind == "ticker" else (0, 1))
        for _ in range(3):
            assert isinstance(call(ticker()), ExchangeResult)
    finally:
        assert tree.stop(10)
        FAIL_AFTER.clear()
    orders = [o for o in admin(venue.url, "/_sim/orders") if o["client_order_id"] == client_id]
    assert len(orders) == (0 if kind == "ticker" else 1)


def test_work_handed_to_a_worker_that_is_gone_is_requeued_unsent(
        venue: RunningVenue, tmp_path: Path) -> None:
    admin(venue.url, "/_sim/reset", "POST")
    tree = start_gateway(gateway_config(venue.url, tmp_path, pool={"workers": 2}),
                         RecordingWorker)
    try:
        assert isinstance(call(ticker()), ExchangeResult)
        client_id = "g" + uuid.uuid4().hex[:16]
        request = order(client_id)
        slot = ReplySlot(runner=threading.get_ident())
        dispatcher = entrance(NAMES.dispatcher)
        assert dispatcher is not None
        # Hold the pool while the chosen worker stops, so the pool hears "undelivered"
        # before it hears that the worker died (the other order is covered by the pool's
        # orphan handling, tested elsewhere).
        with dispatcher._lock:
            _send(request, slot)
            assert slot.handoff is not None
            worker, _, _ = slot.handoff
            names.resolve(worker, 1.0).stop()
            run_handoff(slot)
        reply = slot.future.get(timeout=5)
        assert isinstance(reply, ExchangeResult), reply
        assert CALLED_ON[request.id] == threading.get_ident()  # on the other worker, here
        wait_until(lambda: statistics(NAMES.dispatcher).known_workers == 2, 10,
                   "the stopped worker replaced")
        wait_until(_settled, 10, "the pool and the breaker settled")
        assert statistics(NAMES.dispatcher).lost == 0
    finally:
        assert tree.stop(10)
    orders = [o for o in admin(venue.url, "/_sim/orders") if o["client_order_id"] == client_id]
    assert len(orders) == 1


# ----- regressions found in review -----------------------------------------------------------

#: request ids whose ccxt call is interrupted on the caller's thread (Ctrl-C)
INTERRUPT: set[str] = set()


class InterruptibleWorker(RecordingWorker):
    def invoke(self, request: ExchangeRequest) -> Any:
        if request.id in INTERRUPT:
            INTERRUPT.discard(request.id)
            raise KeyboardInterrupt
        return super().invoke(request)


def test_a_caller_handed_a_worker_busy_on_its_own_thread_still_returns_by_its_deadline(
        venue: RunningVenue, tmp_path: Path) -> None:
    """The pool counts a worker idle while its own thread runs a health check; a caller handed
    that worker must not wait on it past its deadline (it hands the worker the work instead)."""
    admin(venue.url, "/_sim/reset", "POST")
    install_faults(venue.url, [{"endpoint": "fetch_time", "fault": "hang", "hang_s": 4}])
    config = gateway_config(venue.url, tmp_path, pool={"workers": 1, "health_interval": 0.2})
    tree = start_gateway(config, RecordingWorker)
    try:
        worker = entrance(NAMES.worker(1))
        assert worker is not None
        wait_until(lambda: worker._health_checks >= 1, 5, "a health check hanging at the venue")
        request = ticker(timeout=1.0)
        started = time.monotonic()
        reply = call(request)
        assert time.monotonic() - started < 1.0 + DEFAULT_GRACE + 0.5, reply
        assert isinstance(reply, DeadlineExceeded), reply
    finally:
        admin(venue.url, "/_sim/faults", "DELETE")
        assert tree.stop(10)


def test_an_interrupted_caller_frees_the_worker_and_the_breaker_permit(
        venue: RunningVenue, tmp_path: Path) -> None:
    tree = start_gateway(gateway_config(venue.url, tmp_path, pool={"workers": 1}),
                         InterruptibleWorker)
    try:
        assert isinstance(call(ticker()), ExchangeResult)
        request = ticker()
        INTERRUPT.add(request.id)
        with pytest.raises(KeyboardInterrupt):
            call(request)
        wait_until(_settled, 5, "the worker idle again and the permit released")
        assert isinstance(call(ticker()), ExchangeResult)  # the only worker takes calls again
    finally:
        INTERRUPT.clear()
        assert tree.stop(10)


def test_work_handed_over_but_never_started_is_given_back(
        venue: RunningVenue, tmp_path: Path) -> None:
    """A caller interrupted after the pool handed it the work, before it entered the worker."""
    tree = start_gateway(gateway_config(venue.url, tmp_path, pool={"workers": 1}),
                         RecordingWorker)
    try:
        assert isinstance(call(ticker()), ExchangeResult)
        request = ticker()
        slot = _handed_over(request)
        abandon_handoff(slot)
        assert slot.handoff is None and slot.answered and request.id not in CALLED_ON
        wait_until(_settled, 5, "the worker idle again and the permit released")
        assert isinstance(call(ticker()), ExchangeResult)
    finally:
        assert tree.stop(10)


def test_a_call_settled_before_its_worker_starts_is_not_sent(
        venue: RunningVenue, tmp_path: Path) -> None:
    """If the pool settled the call meanwhile (as orphaned), the worker must not send it."""
    admin(venue.url, "/_sim/reset", "POST")
    tree = start_gateway(gateway_config(venue.url, tmp_path, pool={"workers": 1}),
                         RecordingWorker)
    try:
        client_id = "s" + uuid.uuid4().hex[:16]
        request = order(client_id)
        slot = _handed_over(request)
        assert slot.answer(OutcomeUnknown(request_id=request.id, reason="settled by the pool"))
        run_handoff(slot)
        assert request.id not in CALLED_ON
        wait_until(_settled, 5, "the worker idle again and the permit released")
    finally:
        assert tree.stop(10)
    assert [o for o in admin(venue.url, "/_sim/orders") if o["client_order_id"] == client_id] == []


def test_undelivered_work_reaching_a_new_dispatcher_is_requeued(
        venue: RunningVenue, tmp_path: Path) -> None:
    """The pool restarted (its bookkeeping lost) and the worker too, before the caller ran the
    work handed to it: the new pool must take the work rather than leave the caller waiting."""
    tree = start_gateway(gateway_config(venue.url, tmp_path, pool={"workers": 2}),
                         RecordingWorker)
    try:
        assert isinstance(call(ticker()), ExchangeResult)
        request = ticker(timeout=5.0)
        slot = _handed_over(request)
        assert slot.handoff is not None
        worker, _, _ = slot.handoff
        old_dispatcher = names.registered()[NAMES.dispatcher]
        old_dispatcher.stop()
        wait_until(lambda: _replaced(NAMES.dispatcher, old_dispatcher), 10, "new dispatcher")
        old_worker = names.registered()[worker]
        old_worker.stop()
        wait_until(lambda: _replaced(worker, old_worker), 10, "new worker")
        wait_until(lambda: statistics(NAMES.dispatcher).known_workers == 2, 10, "workers known")
        run_handoff(slot)
        reply = slot.future.get(timeout=5)
        assert isinstance(reply, ExchangeResult), reply
        assert request.id in CALLED_ON
    finally:
        assert tree.stop(10)


def _replaced(name: str, before: object) -> bool:
    current = names.registered().get(name)
    return current is not None and current is not before and entrance(name) is not None
