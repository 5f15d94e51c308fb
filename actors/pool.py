"""The connection pool: a pure scheduling core (`PoolCore`) and its actor shell (`Dispatcher`).

Workers pull: a worker announces itself idle (`WorkerReady`, `WorkFinished`) and the dispatcher
hands it the next job, so load balances itself and a full queue is the backpressure signal.
Guarantees of the core:
- Each category (bulkhead) has its own bounded queue; a job that does not fit is refused
  (the shell answers `Overloaded`). Retries after a crash obey the same bound.
- Trading jobs go first, and market data never occupies more than `workers - reserved` workers,
  so a flood of reads cannot keep an order from finding a worker.
- A job whose deadline has passed is never handed out (it is returned as expired instead); the
  worker checks the deadline again before calling ccxt.
- A job orphaned by a crashed worker comes back exactly once: retried (idempotent, under the
  retry budget) or returned as lost (the shell answers `OutcomeUnknown` / `ExchangeFailed`).
The dispatcher also takes rate-limit tokens from the account's shared bucket before handing out
a job (no actor round-trip on the hot path, see `actors.rate_limiter`).

Hot path (`actors.entrance`): the gatekeeper enters the dispatcher with `Work`, and workers
with `WorkFinished`, on their own threads under the dispatcher's lock — the same handlers as
the messages, without waking the dispatcher. Everything else (worker announcements, crashes,
timers) arrives as messages; a timer an entered handler needs is requested by message, since
only the dispatcher's own thread may schedule them.
"""

from __future__ import annotations

import bisect
import collections
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import pykka
from loguru import logger

from actors.entrance import EnterableActor
from actors.names import GatewayNames, tell_if_up
from actors.protocol import (
    CallOutcome,
    GetBucket,
    GetStatistics,
    PoolStarted,
    Work,
    WorkerDown,
    WorkerReady,
    WorkFinished,
    WorkUndelivered,
    crashed_reply,
)
from actors.rate_limiter import SharedBucket
from gateway.classify import Outcome
from messages.exchange import (
    Category,
    DeadlineExceeded,
    ExchangeFailed,
    OutcomeUnknown,
    Overloaded,
)
from messages.supervision import ChildCrashed, ChildStopped, SupervisionEvent
from supervisors import ActorUnavailable, NameNotFound, names, subscribe

__all__ = ["Dispatcher", "LatencyHistogram", "PoolCore", "PoolStatistics"]

#: Upper bounds (seconds) of the latency histogram buckets; the last bucket is unbounded.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class LatencyHistogram:
    """Counts of call latencies per bucket of `LATENCY_BUCKETS` (+inf last)."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds

    def snapshot(self) -> tuple[int, ...]:
        return tuple(self.counts)


@attrs.frozen(slots=True)
class PoolStatistics:
    """The pool's metrics: queue depth (and its high-water mark) per bulkhead, in-flight,
    latency histograms per method (bucket bounds in `LATENCY_BUCKETS`) with their sums in
    seconds, errors by class and worker restarts."""

    queued: dict[str, int]
    max_queued: dict[str, int]
    in_flight: dict[str, int]
    idle_workers: int
    known_workers: int
    submitted: int
    overloaded: int
    expired: int
    retried: int
    lost: int
    latency: dict[str, tuple[int, ...]]
    errors: dict[str, int]
    worker_restarts: int
    latency_sum: dict[str, float] = attrs.field(factory=dict)


@attrs.define(slots=True)
class Job:
    """A call waiting for or held by a worker."""

    work: Work
    category: Category

    @property
    def deadline(self) -> float:
        return self.work.request.deadline


class PoolCore:
    """Queues, bulkheads and worker bookkeeping; pure (callers pass `now`), not thread-safe."""

    def __init__(self, workers: Sequence[str], *, market_data_queue: int, trading_queue: int,
                 reserved_for_trading: int, crash_retries: int) -> None:
        self.workers = tuple(workers)
        self.bounds = {Category.MARKET_DATA: market_data_queue, Category.TRADING: trading_queue}
        self.market_data_slots = max(1, len(self.workers) - reserved_for_trading)
        self.crash_retries = crash_retries
        self.queues: dict[Category, collections.deque[Job]] = {
            c: collections.deque() for c in Category}
        self.idle: collections.deque[str] = collections.deque()
        self.busy: dict[str, Job] = {}
        self.in_flight = dict.fromkeys(Category, 0)
        self.high_water = dict.fromkeys(Category, 0)

    def submit(self, job: Job, *, front: bool = False) -> bool:
        """Queue `job`; False if its bulkhead's queue is full (nothing changes then)."""
        queue = self.queues[job.category]
        if len(queue) >= self.bounds[job.category]:
            return False
        if front:
            queue.appendleft(job)
        else:
            queue.append(job)
        self.high_water[job.category] = max(self.high_water[job.category], len(queue))
        return True

    def worker_idle(self, worker: str) -> Job | None:
        """`worker` is (again) ready. Returns a job it still held if it restarted mid-call."""
        orphan = self._release(worker)
        if worker not in self.idle:
            self.idle.append(worker)
        return orphan

    def worker_done(self, worker: str, request_id: str) -> None:
        """`worker` finished `request_id` and is idle (a stale report changes nothing)."""
        job = self.busy.get(worker)
        if job is None or job.work.request.id != request_id:
            return
        self._release(worker)
        if worker not in self.idle:
            self.idle.append(worker)

    def worker_down(self, worker: str) -> Job | None:
        """`worker` died: it is not idle, and the job it held (if any) is returned."""
        if worker in self.idle:
            self.idle.remove(worker)
        return self._release(worker)

    def _release(self, worker: str) -> Job | None:
        job = self.busy.pop(worker, None)
        if job is not None:
            self.in_flight[job.category] -= 1
        return job

    def retry(self, job: Job) -> bool:
        """Requeue an orphaned idempotent job at the front, within the retry budget and bound."""
        if not job.work.request.idempotent or job.work.attempt >= self.crash_retries:
            return False
        again = Job(attrs.evolve(job.work, attempt=job.work.attempt + 1), job.category)
        return self.submit(again, front=True)

    def assign(self, now: float, admit: Callable[[Job], float | None]
               ) -> tuple[list[tuple[str, Job]], list[Job], float | None]:
        """Hand queued jobs to idle workers: trading first, market data within its slots.

        `admit(job)` takes the job's rate-limit cost and returns None, or the seconds to wait;
        a wait stops dispatch for now. Returns (assignments, expired jobs, wait or None).
        """
        assigned: list[tuple[str, Job]] = []
        expired: list[Job] = []
        wait: float | None = None
        for category in (Category.TRADING, Category.MARKET_DATA):
            queue = self.queues[category]
            while queue and self.idle and wait is None:
                if (category is Category.MARKET_DATA
                        and self.in_flight[category] >= self.market_data_slots):
                    break
                job = queue[0]
                if job.work.request.expired(now):
                    queue.popleft()
                    expired.append(job)
                    continue
                wait = admit(job)
                if wait is not None:
                    break
                queue.popleft()
                assigned.append((self.start(job), job))
        return assigned, expired, wait

    def can_start(self, job: Job, now: float) -> bool:
        """Whether `job` may go to an idle worker at once, as `assign` would hand it out were
        it queued: a worker is idle, no job waits ahead of it (trading goes first), its
        bulkhead has a free slot, its deadline has not passed. Rate limits are the caller's."""
        if not self.idle or now >= job.deadline or self.queues[Category.TRADING]:
            return False
        if job.category is Category.MARKET_DATA:
            return (not self.queues[Category.MARKET_DATA]
                    and self.in_flight[Category.MARKET_DATA] < self.market_data_slots)
        return True

    def start(self, job: Job) -> str:
        """Give `job` to the most recently idle worker (LIFO: the warmest thread and
        connection) and return its name; a worker must be idle."""
        worker = self.idle.pop()
        self.busy[worker] = job
        self.in_flight[job.category] += 1
        return worker

    def take_expired(self, now: float) -> list[Job]:
        """Remove and return every queued job whose deadline has passed."""
        expired: list[Job] = []
        for category, queue in self.queues.items():
            keep = collections.deque(j for j in queue if not j.work.request.expired(now))
            if len(keep) != len(queue):
                expired.extend(j for j in queue if j.work.request.expired(now))
                self.queues[category] = keep
        return expired

    def has_queued(self) -> bool:
        queues = self.queues
        return bool(queues[Category.TRADING] or queues[Category.MARKET_DATA])

    def earliest_deadline(self) -> float | None:
        deadlines = [j.deadline for q in self.queues.values() for j in q]
        return min(deadlines) if deadlines else None

    def queued(self) -> Iterator[Job]:
        for queue in self.queues.values():
            yield from queue


@attrs.frozen(slots=True)
class _Dispatch:
    """Timer: try to hand out work again (a rate-limit wait or a deadline is due)."""


@attrs.frozen(slots=True)
class _WakeAt:
    """From a foreign thread: schedule a `_Dispatch` at monotonic time `at`."""

    at: float


class Dispatcher(EnterableActor):
    """The pool's queue actor (`venue:<name>/pool/dispatcher`); see the module docstring.

    Learns of worker crashes from supervision events and from a restarted worker announcing
    itself, whichever comes first; either settles the orphaned call exactly once.
    """

    def __init__(self, names_: GatewayNames, workers: int, *, market_data_queue: int,
                 trading_queue: int, reserved_for_trading: int, crash_retries: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._names = names_
        self._worker_names = tuple(names_.worker(i) for i in range(1, workers + 1))
        self._core = PoolCore(self._worker_names, market_data_queue=market_data_queue,
                              trading_queue=trading_queue,
                              reserved_for_trading=reserved_for_trading,
                              crash_retries=crash_retries)
        self._clock = clock
        self._bucket: SharedBucket | None = None
        self._refs: dict[str, pykka.ActorRef] = {}
        self._wake_at: float | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._urns: dict[str, str] = {}
        self._submitted = self._overloaded = self._expired = self._retried = self._lost = 0
        self._restarts = 0
        self._latency: dict[str, LatencyHistogram] = {}
        self._errors: collections.Counter[str] = collections.Counter()

    def on_start(self) -> None:
        self._bucket = names.ask(self._names.rate_limiter, GetBucket(), timeout=5.0)
        me = self.actor_ref
        prefix = self._names.pool + "/worker-"

        def forward(event: SupervisionEvent) -> None:
            if isinstance(event, ChildCrashed | ChildStopped) and event.name.startswith(prefix):
                try:
                    me.tell(WorkerDown(event.name))
                except pykka.ActorDeadError:
                    pass  # this dispatcher is gone; its successor asks the workers afresh

        self._unsubscribe = subscribe(forward)
        # After a dispatcher restart the workers are alive but unknown: ask them to announce.
        for worker in self._worker_names:
            tell_if_up(worker, PoolStarted())  # one restarting announces itself when back
        self.publish(self._names.dispatcher)

    def on_stop(self) -> None:
        super().on_stop()
        if self._unsubscribe is not None:
            self._unsubscribe()

    def entered_failed(self, message: Any, error: Exception) -> None:
        work = message.work if isinstance(message, WorkUndelivered) else message
        if isinstance(work, Work):
            work.reply.answer(crashed_reply(work.request, "pool dispatcher", error))
            tell_if_up(self._names.gatekeeper, CallOutcome(work.request.id, Outcome.IGNORED, 0.0))

    def handle(self, message: Any) -> Any:
        if isinstance(message, Work):
            if self._submit(message):
                return None  # handed out or timed at once: no dispatch round needed
        elif isinstance(message, WorkFinished):
            self._finished(message)
        elif isinstance(message, _WakeAt):
            self._schedule(message.at)
            return None
        elif isinstance(message, WorkerReady):
            self._ready(message)
        elif isinstance(message, WorkerDown):
            self._down(message.worker)
        elif isinstance(message, WorkUndelivered):
            self._given_back(message)
        elif isinstance(message, _Dispatch):
            self._wake_at = None
            self._expire(self._core.take_expired(self._clock()))
        elif isinstance(message, GetStatistics):
            return self.pool_statistics()
        else:
            raise TypeError(f"Dispatcher: unexpected message {type(message).__name__}")
        self._dispatch()
        return None

    # ----- handlers -------------------------------------------------------------------------

    def _submit(self, work: Work) -> bool:
        """Queue the call (full: `Overloaded`), or, when nothing waits ahead of it, hand it
        straight to an idle worker — the common case — or time it by the rate limit's wait.
        True when that settled everything a dispatch round would."""
        self._submitted += 1
        job = Job(work, work.request.category)
        core = self._core
        now = self._clock()
        if core.can_start(job, now):
            wait = self._admit(job)
            if wait is None:
                self._send(core.start(job), job)
                return True
            if core.submit(job):
                self._watch(now, wait)
                return True
        if not core.submit(job):
            self._overloaded += 1
            bound = self._core.bounds[job.category]
            self._settle(job, Overloaded(
                request_id=work.request.id,
                reason=f"{job.category.value} queue full ({bound} waiting)"))
        return False

    def _finished(self, done: WorkFinished) -> None:
        self._core.worker_done(done.worker, done.request_id)
        histogram = self._latency.get(done.method)
        if histogram is None:
            histogram = self._latency[done.method] = LatencyHistogram()
        histogram.add(done.latency)
        if done.error:
            self._errors[done.error] += 1

    def _ready(self, ready: WorkerReady) -> None:
        self._refs.pop(ready.worker, None)
        previous = self._urns.get(ready.worker)
        if previous is not None and previous != ready.urn:
            self._restarts += 1
        self._urns[ready.worker] = ready.urn
        orphan = self._core.worker_idle(ready.worker)
        if orphan is not None:
            self._orphaned(ready.worker, orphan)

    def _down(self, worker: str) -> None:
        self._refs.pop(worker, None)
        orphan = self._core.worker_down(worker)
        if orphan is not None:
            self._orphaned(worker, orphan)

    def _orphaned(self, worker: str, job: Job) -> None:
        request = job.work.request
        if job.work.reply.answered:
            return  # the worker answered before it died; its report was lost with it
        if self._core.retry(job):
            self._retried += 1
            logger.bind(context="worker_crash", actor=worker).warning(
                "worker died during {} {}: retrying it on another worker",
                request.method, request.id)
            return
        self._lost += 1
        if request.idempotent:
            reply: Any = ExchangeFailed(request_id=request.id, error_class="WorkerCrashed",
                                        message=f"{worker} died during the call")
        else:
            reply = OutcomeUnknown(request_id=request.id,
                                   reason=f"{worker} died during the call; not resent")
        logger.bind(context="worker_crash", actor=worker).warning(
            "worker died during {} {}: answered {}", request.method, request.id,
            type(reply).__name__)
        self._settle(job, reply)

    def _expire(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._expired += 1
            request = job.work.request
            self._settle(job, DeadlineExceeded(request_id=request.id, deadline=request.deadline))

    def _settle(self, job: Job, reply: Any) -> None:
        """Answer a job the pool ends itself; its breaker permit is released as ignored."""
        job.work.reply.answer(reply)
        tell_if_up(self._names.gatekeeper, CallOutcome(job.work.request.id, Outcome.IGNORED, 0.0))

    # ----- dispatch -------------------------------------------------------------------------

    def _admit(self, job: Job) -> float | None:
        assert self._bucket is not None
        return self._bucket.take(job.work.request.method)

    def _dispatch(self) -> None:
        if not self._core.has_queued():
            return  # nothing to hand out, no deadline to watch
        now = self._clock()
        assigned, expired, wait = self._core.assign(now, self._admit)
        self._expire(expired)
        for worker, job in assigned:
            self._send(worker, job)
        self._watch(now, wait)

    def _watch(self, now: float, wait: float | None) -> None:
        """Be woken at the earliest queued deadline, or when the rate limit's `wait` ends."""
        wake = self._core.earliest_deadline()
        if wait is not None:
            wake = now + wait if wake is None else min(wake, now + wait)
        if wake is not None and (self._wake_at is None or wake < self._wake_at):
            self._wake_at = wake
            if self.on_own_thread():
                self._schedule(wake)
            else:
                self.actor_ref.tell(_WakeAt(wake))

    def _schedule(self, at: float) -> None:
        self.send_after(max(0.0, at - self._clock()), _Dispatch())

    def _send(self, worker: str, job: Job) -> None:
        slot = job.work.reply
        if slot.runner == threading.get_ident() and slot.handoff is None:
            # Entered by the thread that will block on this call: it runs the worker's handler
            # itself once out of the locks (actors.worker.run_handoff), saving two hand-offs.
            slot.handoff = (worker, self._urns.get(worker), job.work)
            return
        ref = self._refs.get(worker)
        try:
            if ref is None:
                ref = names.resolve(worker, 0.0)
            ref.tell(job.work)
            self._refs[worker] = ref
        except (pykka.ActorDeadError, ActorUnavailable, NameNotFound):
            self._undelivered(worker, job)

    def _given_back(self, message: WorkUndelivered) -> None:
        """Work a caller could not start on the worker it was handed to: requeue it, unless it
        was settled meanwhile or is already queued or held again (retried after a crash)."""
        held = self._core.busy.get(message.worker)
        if held is not None and held.work is message.work:
            self._undelivered(message.worker, held)
            return
        request = message.work.request
        known = [job for job in (*self._core.queued(), *self._core.busy.values())
                 if job.work.request.id == request.id]
        if message.work.reply.answered or known:
            return
        # Handed out by a dispatcher that has died since: this one never knew it.
        job = Job(message.work, request.category)
        if not self._core.submit(job, front=True):
            self._settle(job, Overloaded(request_id=request.id,
                                         reason="worker died before taking the job"))

    def _undelivered(self, worker: str, job: Job) -> None:
        # The worker died between announcing itself and now; the job never reached it.
        self._refs.pop(worker, None)
        self._core.worker_down(worker)
        if not self._core.submit(job, front=True):
            self._settle(job, Overloaded(request_id=job.work.request.id,
                                         reason="worker died before taking the job"))

    def pool_statistics(self) -> PoolStatistics:
        return PoolStatistics(
            queued={c.value: len(q) for c, q in self._core.queues.items()},
            max_queued={c.value: n for c, n in self._core.high_water.items()},
            in_flight={c.value: n for c, n in self._core.in_flight.items()},
            idle_workers=len(self._core.idle),
            known_workers=len(self._urns),
            submitted=self._submitted, overloaded=self._overloaded, expired=self._expired,
            retried=self._retried, lost=self._lost,
            latency={m: h.snapshot() for m, h in self._latency.items()},
            errors=dict(self._errors), worker_restarts=self._restarts,
            latency_sum={m: h.total for m, h in self._latency.items()},
        )
