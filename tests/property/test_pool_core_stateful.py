"""PoolCore as a state machine: any sequence of submits, worker starts/finishes/deaths,
retries, rate-limit waits and clock steps keeps every job in exactly one place, the bounds,
the bulkhead and the deadlines."""

from __future__ import annotations

import collections

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from actors.pool import Job, PoolCore
from actors.protocol import ReplySlot, Work
from messages.exchange import Category, ExchangeRequest

WORKERS = ("w1", "w2", "w3")
BOUND = 3
RESERVED = 1
RETRIES = 1


class PoolCoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = PoolCore(WORKERS, market_data_queue=BOUND, trading_queue=BOUND,
                             reserved_for_trading=RESERVED, crash_retries=RETRIES)
        self.now = 0.0
        self.submitted: set[str] = set()
        self.refused: set[str] = set()
        self.expired: set[str] = set()
        self.finished: set[str] = set()
        self.lost: set[str] = set()
        self.handed_out: list[tuple[str, Job]] = []

    @initialize()
    def workers_start(self) -> None:
        for worker in WORKERS:
            assert self.core.worker_idle(worker) is None

    @rule(category=st.sampled_from(list(Category)), idempotent=st.booleans(),
          timeout=st.sampled_from([0.2, 1.0, 5.0, 5.0]))
    def submit(self, category: Category, idempotent: bool, timeout: float) -> None:
        request = ExchangeRequest.new("sim", "fetch_ticker", category=category,
                                      idempotent=idempotent, timeout=timeout,
                                      clock=lambda: self.now)
        self.submitted.add(request.id)
        before = len(self.core.queues[category])
        if self.core.submit(Job(Work(request, ReplySlot()), category)):
            assert before < BOUND
        else:
            assert before == BOUND
            self.refused.add(request.id)

    @rule(category=st.sampled_from(list(Category)), idempotent=st.booleans(),
          timeout=st.sampled_from([0.2, 5.0]))
    def start_at_once(self, category: Category, idempotent: bool, timeout: float) -> None:
        """The dispatcher's fast path: a job that `can_start` goes straight to a worker, as a
        dispatch round would have handed it out had it been queued."""
        request = ExchangeRequest.new("sim", "fetch_ticker", category=category,
                                      idempotent=idempotent, timeout=timeout,
                                      clock=lambda: self.now)
        job = Job(Work(request, ReplySlot()), category)
        if not self.core.can_start(job, self.now):
            return  # the dispatcher queues it instead (the submit rule)
        twin = self._twin()
        assert twin.submit(job)
        assigned, _, _ = twin.assign(self.now, lambda _job: None)
        assert job in [j for _, j in assigned]
        idle_before = set(self.core.idle)
        worker = self.core.start(job)
        assert worker in idle_before and self.core.busy[worker] is job
        self.submitted.add(request.id)
        self.handed_out.append((worker, job))

    def _twin(self) -> PoolCore:
        twin = PoolCore(WORKERS, market_data_queue=BOUND, trading_queue=BOUND,
                        reserved_for_trading=RESERVED, crash_retries=RETRIES)
        twin.queues = {c: collections.deque(q) for c, q in self.core.queues.items()}
        twin.idle = collections.deque(self.core.idle)
        twin.busy = dict(self.core.busy)
        twin.in_flight = dict(self.core.in_flight)
        return twin

    @rule(category=st.sampled_from(list(Category)))
    def burst(self, category: Category) -> None:
        for _ in range(BOUND + 1):
            self.submit(category, True, 5.0)

    @rule(worker=st.sampled_from(WORKERS))
    def worker_ready(self, worker: str) -> None:
        orphan = self.core.worker_idle(worker)
        if orphan is not None:
            self._orphaned(orphan)

    @rule(worker=st.sampled_from(WORKERS))
    def worker_dies(self, worker: str) -> None:
        orphan = self.core.worker_down(worker)
        if orphan is not None:
            self._orphaned(orphan)

    @precondition(lambda self: self.core.busy)
    @rule(data=st.data())
    def worker_finishes(self, data: st.DataObject) -> None:
        worker = data.draw(st.sampled_from(sorted(self.core.busy)))
        job = self.core.busy[worker]
        self.core.worker_done(worker, job.work.request.id)
        self.finished.add(job.work.request.id)

    @rule(step=st.sampled_from([0.0, 0.0, 0.1, 0.7]), wait=st.sampled_from([None, None, 0.5]))
    def dispatch(self, step: float, wait: float | None) -> None:
        self.now += step
        idle_before = set(self.core.idle)
        assigned, expired, waited = self.core.assign(self.now, lambda _job: wait)
        for worker, job in assigned:
            assert worker in idle_before and not job.work.request.expired(self.now)
            self.handed_out.append((worker, job))
        for job in expired:
            assert job.work.request.expired(self.now)
            self.expired.add(job.work.request.id)
        if wait is not None:
            assert not assigned
        else:  # orders go first, and never wait while a worker idles
            trading_left = self.core.queues[Category.TRADING]
            assert not (trading_left and self.core.idle)
            if trading_left:
                assert all(job.category is Category.TRADING for _, job in assigned)
        assert waited in (None, wait)

    @rule(step=st.sampled_from([0.0, 0.5, 3.0]))
    def sweep(self, step: float) -> None:
        self.now += step
        for job in self.core.take_expired(self.now):
            self.expired.add(job.work.request.id)

    def _orphaned(self, job: Job) -> None:
        if not self.core.retry(job):
            self.lost.add(job.work.request.id)

    @invariant()
    def every_job_is_in_exactly_one_place(self) -> None:
        queued = [j.work.request.id for j in self.core.queued()]
        busy = [j.work.request.id for j in self.core.busy.values()]
        places = queued + busy + sorted(self.refused | self.expired | self.finished | self.lost)
        assert len(places) == len(set(places))
        assert set(places) == self.submitted

    @invariant()
    def bounds_bulkhead_and_counts_hold(self) -> None:
        for category, queue in self.core.queues.items():
            assert len(queue) <= BOUND
            held = sum(1 for j in self.core.busy.values() if j.category is category)
            assert self.core.in_flight[category] == held
        assert self.core.in_flight[Category.MARKET_DATA] <= len(WORKERS) - RESERVED
        assert not set(self.core.idle) & set(self.core.busy)
        assert len(self.core.idle) == len(set(self.core.idle))

    @invariant()
    def non_idempotent_jobs_are_handed_out_once(self) -> None:
        ids = [j.work.request.id for _, j in self.handed_out if not j.work.request.idempotent]
        assert len(ids) == len(set(ids))


TestPoolCore = PoolCoreMachine.TestCase
TestPoolCore.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
