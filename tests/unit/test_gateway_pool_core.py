"""The pool's pure scheduling core, the worker's reply mapping and the one-answer reply slot."""

from __future__ import annotations

import threading
from decimal import Decimal

import ccxt
import pytest

from actors.pool import Job, LatencyHistogram, PoolCore
from actors.protocol import ReplySlot, Work
from actors.worker import reply_for, thaw
from gateway.classify import classify_exception
from messages.base import freeze
from messages.exchange import (
    Category,
    DeadlineExceeded,
    ExchangeFailed,
    ExchangeRejected,
    ExchangeRequest,
    OutcomeUnknown,
)

NOW = 100.0


def job(category: Category = Category.MARKET_DATA, *, timeout: float = 5.0,
        idempotent: bool = True, attempt: int = 0) -> Job:
    request = ExchangeRequest.new("sim", "fetch_ticker", ["BTC/USDT"], category=category,
                                  idempotent=idempotent, timeout=timeout, clock=lambda: NOW)
    return Job(Work(request, ReplySlot(), attempt), category)


def core(workers: int = 3, queue: int = 2, reserved: int = 1, retries: int = 1) -> PoolCore:
    return PoolCore([f"w{i}" for i in range(1, workers + 1)], market_data_queue=queue,
                    trading_queue=queue, reserved_for_trading=reserved, crash_retries=retries)


def admit_all(_job: Job) -> float | None:
    return None


def test_a_full_bulkhead_refuses_without_touching_the_other() -> None:
    pool = core(queue=2)
    assert pool.submit(job()) and pool.submit(job())
    assert not pool.submit(job())
    assert pool.submit(job(Category.TRADING))
    assert pool.high_water == {Category.MARKET_DATA: 2, Category.TRADING: 1}


def test_market_data_never_takes_the_reserved_worker() -> None:
    pool = core(workers=3, queue=10, reserved=1)
    for worker in pool.workers:
        pool.worker_idle(worker)
    for _ in range(5):
        pool.submit(job())
    assigned, _, _ = pool.assign(NOW, admit_all)
    assert len(assigned) == 2 and len(pool.idle) == 1
    pool.submit(job(Category.TRADING))
    assigned, _, _ = pool.assign(NOW, admit_all)
    assert [j.category for _, j in assigned] == [Category.TRADING]


def test_trading_goes_first() -> None:
    pool = core(workers=1, queue=10, reserved=0)
    pool.submit(job())
    pool.submit(job(Category.TRADING))
    pool.worker_idle("w1")
    assigned, _, _ = pool.assign(NOW, admit_all)
    assert assigned[0][1].category is Category.TRADING


def test_expired_jobs_are_never_handed_out() -> None:
    pool = core()
    late = job(timeout=1.0)
    pool.submit(late)
    pool.submit(job(timeout=10.0))
    pool.worker_idle("w1")
    assigned, expired, _ = pool.assign(NOW + 2.0, admit_all)
    assert expired == [late]
    assert [j.deadline for _, j in assigned] == [NOW + 10.0]


def test_a_rate_limit_wait_stops_dispatch_and_keeps_the_job() -> None:
    pool = core()
    pool.submit(job())
    pool.worker_idle("w1")
    assigned, expired, wait = pool.assign(NOW, lambda _job: 0.25)
    assert (assigned, expired, wait) == ([], [], 0.25)
    assert len(pool.queues[Category.MARKET_DATA]) == 1 and list(pool.idle) == ["w1"]


def test_an_orphan_comes_back_once_and_is_retried_within_budget() -> None:
    pool = core(retries=1)
    pool.submit(job())
    pool.worker_idle("w1")
    (worker, held), = pool.assign(NOW, admit_all)[0]
    orphan = pool.worker_down(worker)
    assert orphan is held and pool.worker_down(worker) is None
    assert pool.in_flight[Category.MARKET_DATA] == 0
    assert pool.retry(orphan)
    again = pool.queues[Category.MARKET_DATA][0]
    assert again.work.attempt == 1 and not pool.retry(again)


def test_a_non_idempotent_orphan_is_never_retried() -> None:
    pool = core()
    assert not pool.retry(job(Category.TRADING, idempotent=False))


def test_a_restarted_worker_announcing_itself_returns_its_orphan() -> None:
    pool = core()
    pool.submit(job())
    pool.worker_idle("w1")
    (_, held), = pool.assign(NOW, admit_all)[0]
    assert pool.worker_idle("w1") is held
    assert list(pool.idle) == ["w1"]


def test_a_stale_finish_report_changes_nothing() -> None:
    pool = core()
    pool.submit(job())
    pool.worker_idle("w1")
    pool.assign(NOW, admit_all)
    pool.worker_done("w1", "some-other-request")
    assert "w1" in pool.busy and not pool.idle


def request(idempotent: bool, timeout: float = 5.0) -> ExchangeRequest:
    return ExchangeRequest.new("sim", "create_order", category=Category.TRADING,
                               idempotent=idempotent, timeout=timeout, clock=lambda: NOW)


@pytest.mark.parametrize(("error", "idempotent", "expected"), [
    (ccxt.InsufficientFunds("no"), False, ExchangeRejected),
    (ccxt.InvalidOrder("no"), True, ExchangeRejected),
    (ccxt.ExchangeNotAvailable("503"), False, OutcomeUnknown),
    (ccxt.ExchangeNotAvailable("503"), True, ExchangeFailed),
    (ccxt.RateLimitExceeded("429"), False, ExchangeFailed),  # refused before execution
    (ccxt.NetworkError("reset"), False, OutcomeUnknown),
])
def test_reply_for_maps_classifications(error: Exception, idempotent: bool,
                                        expected: type) -> None:
    verdict = classify_exception(error)
    assert isinstance(reply_for(request(idempotent), error, verdict, None, NOW), expected)


def test_a_timeout_cut_by_the_deadline_is_deadline_exceeded_only_when_idempotent() -> None:
    error = ccxt.RequestTimeout("timed out")
    verdict = classify_exception(error)
    reply = reply_for(request(True), error, verdict, None, NOW, cut_by_deadline=True)
    assert isinstance(reply, DeadlineExceeded) and reply.sent
    reply = reply_for(request(False), error, verdict, None, NOW, cut_by_deadline=True)
    assert isinstance(reply, OutcomeUnknown)


def test_thaw_gives_ccxt_plain_values_and_exact_decimals() -> None:
    frozen = freeze({"params": {"a": [1, "x"]}, "amount": Decimal("0.10")})
    assert thaw(frozen) == {"params": {"a": [1, "x"]}, "amount": "0.10"}


def test_a_reply_slot_takes_exactly_one_answer_under_races() -> None:
    slot = ReplySlot()
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda i=i: wins.append(slot.answer(
        ExchangeFailed(request_id=str(i), error_class="X", message="")))) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 1 and slot.answered
    assert slot.future.get(timeout=1).request_id in {str(i) for i in range(8)}


def test_latency_histogram_buckets() -> None:
    histogram = LatencyHistogram()
    for seconds in (0.0005, 0.001, 0.003, 10.0):
        histogram.add(seconds)
    counts = histogram.snapshot()
    assert counts[0] == 2 and counts[2] == 1 and counts[-1] == 1 and sum(counts) == 4
