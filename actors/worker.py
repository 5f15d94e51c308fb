"""A pool worker: owns one ccxt client (one HTTP session) and makes one exchange call at a time.

The workers are the only actors that block on exchange I/O, and they own it. For each `Work`
a worker: refuses to start once the request's deadline has passed (no work after the deadline),
cuts the HTTP timeout to the time left, calls ccxt, classifies the result with
`gateway.classify`, answers the caller's reply slot, and only then reports — the outcome and
any back-off signal to the gatekeeper and the rate limiter, `WorkFinished` to the pool (which
hands it the next job); the gatekeeper and the pool are entered (`actors.entrance`).
The `Work` arrives as a message, or is run by the caller of a blocking `call()` on its own
thread, entering this worker under its lock (`run_handoff`): the same handler, client and
state. A worker rebuilds its client after `rebuild_after` consecutive network failures, and
checks the venue while idle every `health_interval` seconds. An exception outside ccxt's and
the network's families is a bug: the worker crashes, and the pool answers the orphaned call.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
import ccxt
import pykka
from loguru import logger

from actors.entrance import EnterableActor, enter_or_tell, entrance
from actors.names import GatewayNames, tell_if_up
from actors.protocol import (
    ApplyBackoff,
    CallOutcome,
    GetStatistics,
    PoolStarted,
    ReplySlot,
    Work,
    WorkerReady,
    WorkFinished,
    WorkUndelivered,
    crashed_reply,
)
from gateway.cache import MarketDataCache, kind_for_method
from gateway.classify import (
    SUCCESS,
    BackoffSignal,
    Classification,
    Outcome,
    backoff_signal,
    classify_exception,
)
from messages.base import FrozenMap
from messages.exchange import (
    Category,
    DeadlineExceeded,
    ExchangeFailed,
    ExchangeRejected,
    ExchangeReply,
    ExchangeRequest,
    ExchangeResult,
    OutcomeUnknown,
    Overloaded,
)
from supervisors import ActorUnavailable, names

__all__ = ["ClientSettings", "Worker", "WorkerStatistics", "abandon_handoff", "run_handoff"]

#: What a worker catches and classifies; anything else escaping a ccxt call is a bug.
_EXPECTED = (ccxt.BaseError, OSError, TimeoutError)


@attrs.frozen(kw_only=True)
class ClientSettings:
    """How a worker builds its ccxt client. `url` None: ask the embedded venue for its URL."""

    exchange_id: str
    url: str | None
    api_key: str | None = attrs.field(default=None, repr=False)
    secret: str | None = attrs.field(default=None, repr=False)
    token: str | None = attrs.field(default=None, repr=False)
    timeout_ms: int = 10_000
    health_symbol: str = "BTC/USDT"


@attrs.frozen(kw_only=True)
class CacheSettings:
    """Where and how long workers keep market data for stale reads."""

    directory: str
    ttls: Mapping[Any, float] = attrs.field(factory=dict)
    max_stale: float = 3600.0

    def open(self, venue: str) -> MarketDataCache:
        return MarketDataCache(self.directory, venue, ttls=self.ttls, max_stale=self.max_stale)


@attrs.frozen(slots=True)
class WorkerStatistics:
    """One worker's counters for /status."""

    name: str | None
    calls: int
    network_failures: int
    consecutive_failures: int
    rebuilds: int
    health_checks: int
    busy: bool


def thaw(value: Any) -> Any:
    """A frozen request value as ccxt takes it: dicts, lists, Decimals as exact strings."""
    if isinstance(value, FrozenMap):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def cache_key(request: ExchangeRequest) -> str:
    """The cache key of a market-data request: its arguments, exactly."""
    return json.dumps([thaw(request.args), thaw(request.kwargs)], sort_keys=True)


def reply_for(request: ExchangeRequest, error: BaseException, verdict: Classification,
              signal: BackoffSignal | None, now: float, *, cut_by_deadline: bool = False
              ) -> ExchangeReply:
    """The typed reply for a failed call: a definitive refusal, an unknown outcome for a
    non-idempotent call that may have executed, or a failure. A timeout is DeadlineExceeded
    when the deadline had passed or had cut the HTTP timeout short (`cut_by_deadline`)."""
    if verdict.outcome is not Outcome.FAILURE and not verdict.ambiguous:
        return ExchangeRejected.from_exception(request.id, error)
    if verdict.ambiguous and not request.idempotent:
        return OutcomeUnknown(request_id=request.id,
                              reason=f"{verdict.error}: {verdict.reason}: {error}"[:500])
    timed_out = isinstance(error, ccxt.RequestTimeout | TimeoutError)
    if timed_out and (cut_by_deadline or request.expired(now)):
        return DeadlineExceeded(request_id=request.id, deadline=request.deadline, sent=True)
    return ExchangeFailed.from_exception(
        request.id, error, retry_after=None if signal is None else signal.seconds)


class Worker(EnterableActor):
    """Worker `index` of the pool of `names.venue`; see the module docstring for the contract."""

    def __init__(self, names_: GatewayNames, index: int, client: ClientSettings,
                 cache: CacheSettings | None, *, health_interval: float,
                 rebuild_after: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._names = names_
        self._me = names_.worker(index)
        self._settings = client
        self._cache_settings = cache
        self._health_interval = health_interval
        self._rebuild_after = rebuild_after
        self._clock = clock
        self._client: Any = None
        self._cache: MarketDataCache | None = None
        self._last_status: int | None = None
        self._last_active = clock()
        self._calls = 0
        self._network_failures = 0
        self._consecutive = 0
        self._rebuilds = 0
        self._health_checks = 0
        self._busy = False
        self._rebuild_asked = False
        self._cut_by_deadline = False
        self._stored_at: dict[tuple[Any, ...], float] = {}

    # ----- lifecycle ------------------------------------------------------------------------

    def on_start(self) -> None:
        self._client = self._build_client()
        if self._cache_settings is not None:
            self._cache = self._cache_settings.open(self._names.venue)
        self.send_after(self._health_interval, _HealthCheck())
        self.publish(self._me)
        self._announce()

    def on_stop(self) -> None:
        super().on_stop()
        self._close_client()
        if self._cache is not None:
            self._cache.close()

    def _announce(self) -> None:
        try:
            names.tell(self._names.dispatcher, WorkerReady(self._me, self.actor_urn), timeout=5.0)
        except ActorUnavailable:
            pass  # the dispatcher is restarting; when back it asks every worker to announce

    def _venue_url(self) -> str:
        if self._settings.url is not None:
            return self._settings.url
        from actors.venue import GetVenueUrl  # the embedded venue lives beside the pool

        url: str = names.ask(self._names.embedded_venue, GetVenueUrl(), timeout=10.0)
        return url

    def _build_client(self) -> Any:
        from exchanges import create_client

        s = self._settings
        client = create_client(s.exchange_id, url=self._venue_url(), api_key=s.api_key,
                               secret=s.secret, token=s.token, timeout_ms=s.timeout_ms)
        original = client.on_rest_response

        def remember_status(code: Any, *rest: Any) -> Any:
            # ccxt keeps the last headers and body but not the status; classify needs it.
            self._last_status = int(code) if code is not None else None
            return original(code, *rest)

        client.on_rest_response = remember_status
        return client

    def _close_client(self) -> None:
        session = getattr(self._client, "session", None)
        if session is not None:
            session.close()

    # ----- messages -------------------------------------------------------------------------

    def handle(self, message: Any) -> Any:
        if isinstance(message, Work):
            self._work(message)
            return None
        if isinstance(message, _Store):
            self._put(message.request, message.value)
            return None
        if isinstance(message, _Rebuild):
            if self._rebuild_asked:
                self._rebuild()
            return None
        if isinstance(message, _HealthCheck):
            self._health_check()
            return None
        if isinstance(message, PoolStarted):
            self._announce()
            return None
        if isinstance(message, GetStatistics):
            return WorkerStatistics(self._me, self._calls, self._network_failures,
                                    self._consecutive, self._rebuilds, self._health_checks,
                                    self._busy)
        raise TypeError(f"Worker: unexpected message {type(message).__name__}")

    def invoke(self, request: ExchangeRequest) -> Any:
        """The ccxt call itself (a seam for crash-injection tests, which subclass Worker)."""
        method = getattr(self._client, request.method)
        args = [item if type(item) is str else thaw(item) for item in request.args]
        return method(*args, **thaw(request.kwargs)) if request.kwargs else method(*args)

    def _work(self, work: Work) -> None:
        request = work.request
        work.reply.handoff = None  # started: a caller interrupted from now on is handled here
        started = self._clock()
        self._last_active = started
        if work.reply.answered:  # settled meanwhile (the pool took it for orphaned): never send
            self._finish(request, CallOutcome(request.id, Outcome.IGNORED, 0.0), "Settled")
            return
        if started >= request.deadline:
            work.reply.answer(DeadlineExceeded(request_id=request.id, deadline=request.deadline))
            self._finish(request, CallOutcome(request.id, Outcome.IGNORED, 0.0), "Deadline")
            return
        remaining_ms = (request.deadline - started) * 1000
        self._cut_by_deadline = remaining_ms < self._settings.timeout_ms
        self._client.timeout = max(1, int(min(self._settings.timeout_ms, remaining_ms)))
        self._last_status = None
        self._busy = True
        self._calls += 1
        try:
            value = self.invoke(request)
        except _EXPECTED as error:
            self._busy = False
            self._failed(work, error, started)
            return
        except BaseException as error:
            if not isinstance(error, Exception) and not self.on_own_thread():
                self._interrupted(work, error, started)
            raise  # a bug crashes the worker; an interrupt goes on to the caller
        self._busy = False
        latency = self._clock() - started
        try:
            reply: ExchangeReply = ExchangeResult.from_ccxt(request.id, value, latency)
        except ValueError as error:  # ccxt answered something that is not JSON-like
            reply = ExchangeFailed.from_exception(request.id, error)
        work.reply.answer(reply)
        self._consecutive = 0
        self._finish(request, CallOutcome(request.id, Outcome.SUCCESS, latency), "", value)

    def _interrupted(self, work: Work, error: BaseException, started: float) -> None:
        """The caller running this call was interrupted (KeyboardInterrupt, SystemExit) during
        it: the call may have reached the venue; settle it, free the worker and the permit."""
        self._busy = False
        request = work.request
        work.reply.answer(crashed_reply(request, "the calling thread", error))
        self._finish(request, CallOutcome(request.id, Outcome.IGNORED, self._clock() - started),
                     "Interrupted")

    def _failed(self, work: Work, error: BaseException, started: float) -> None:
        request = work.request
        now = self._clock()
        latency = now - started
        verdict = classify_exception(error, http_status=self._last_status)
        signal = backoff_signal(error, self._client.last_response_headers,
                                self._client.last_http_response, http_status=self._last_status,
                                wall_now=time.time())
        work.reply.answer(reply_for(request, error, verdict, signal, now,
                                    cut_by_deadline=self._cut_by_deadline))
        self._note_health(verdict)
        if signal is not None:
            tell_if_up(self._names.rate_limiter, ApplyBackoff(signal))
        self._finish(request, CallOutcome(request.id, verdict.outcome, latency, signal),
                     verdict.error)

    def _finish(self, request: ExchangeRequest, outcome: CallOutcome, error: str,
                value: Any = None) -> None:
        """After answering: the outcome to the breaker, the worker free again for the pool, the
        market data (`value`) to the cache. On a caller's thread too (`run_handoff`): handing
        this to the worker's own thread measured slower (a wake-up, and the GIL passed back)."""
        # Gatekeeper first: the lock order of entered actors (see actors.entrance).
        enter_or_tell(self._names.gatekeeper, outcome)
        enter_or_tell(self._names.dispatcher,
                      WorkFinished(self._me, request.id, request.method, outcome.latency, error))
        if value is not None:
            self._store(request, value)

    def _store(self, request: ExchangeRequest, value: Any) -> None:
        """Keep market data for stale reads; at most twice per TTL per key and worker, since
        a disk write per call would cost more than the call's whole gateway overhead."""
        if self._cache is None or request.category is not Category.MARKET_DATA:
            return
        kind = kind_for_method(request.method)
        if kind is None:
            return
        # Frozen, hence hashable; most market data has no kwargs, whose hash is not cached.
        arguments = (kind, request.args, request.kwargs) if request.kwargs else (kind, request.args)
        now = self._clock()
        if now - self._stored_at.get(arguments, -math.inf) < self._cache.ttls[kind] / 2:
            return
        if len(self._stored_at) > 10_000:
            self._stored_at.clear()
        self._stored_at[arguments] = now
        if self.on_own_thread():
            self._put(request, value)
        else:  # disk I/O stays on the worker's own thread, off the caller's
            try:
                self.actor_ref.tell(_Store(request, value))
            except pykka.ActorDeadError:
                pass  # stopping: the cache misses one refresh

    def _put(self, request: ExchangeRequest, value: Any) -> None:
        kind = kind_for_method(request.method)
        if self._cache is None or kind is None:
            return
        try:
            self._cache.put(kind, cache_key(request), value, time.time())
        except Exception:  # noqa: BLE001 - a cache that cannot store never fails a call
            logger.bind(actor=self._me).opt(exception=True).warning("market-data cache put failed")

    # ----- upkeep ---------------------------------------------------------------------------

    def _note_health(self, verdict: Classification) -> None:
        if verdict.outcome is not Outcome.FAILURE:
            self._consecutive = 0
            return
        self._network_failures += 1
        self._consecutive += 1
        if self._consecutive >= self._rebuild_after:
            if self.on_own_thread():
                self._rebuild()
            elif not self._rebuild_asked:  # not on a caller's thread: it may ask the venue
                self._rebuild_asked = True
                try:
                    self.actor_ref.tell(_Rebuild())
                except pykka.ActorDeadError:
                    pass  # stopping: its successor builds a fresh client

    def _rebuild(self) -> None:
        logger.bind(context="worker_reconnect", actor=self._me).warning(
            "{} consecutive network failures: rebuilding the ccxt client", self._consecutive)
        self._rebuild_asked = False
        self._close_client()
        self._client = self._build_client()
        self._rebuilds += 1
        self._consecutive = 0

    def _health_check(self) -> None:
        self.send_after(self._health_interval, _HealthCheck())
        if self._clock() - self._last_active < self._health_interval:
            return  # real traffic is the health check
        self._health_checks += 1
        self._client.timeout = self._settings.timeout_ms
        try:
            if self._client.has.get("fetchTime"):
                self._client.fetch_time()
            else:
                self._client.fetch_ticker(self._settings.health_symbol)
        except _EXPECTED as error:
            verdict = classify_exception(error, http_status=self._last_status)
            logger.bind(actor=self._me).warning("health check failed: {}", verdict.reason)
            self._note_health(verdict)
            return
        finally:
            self._last_active = self._clock()
        self._note_health(SUCCESS)


@attrs.frozen(slots=True)
class _HealthCheck:
    """Timer: check the venue if the worker has been idle a whole interval."""


@attrs.frozen(slots=True)
class _Rebuild:
    """To itself from a caller's thread: rebuild the ccxt client (consecutive failures)."""


@attrs.frozen(slots=True)
class _Store:
    """To itself from a caller's thread: write this market data to the disk cache."""

    request: ExchangeRequest
    value: Any = attrs.field(eq=False)


#: Seconds a caller waits for a worker it was handed that is still held (see run_handoff).
_FREED_WORKER_WAIT = 0.002


def run_handoff(slot: ReplySlot) -> None:
    """Run the work the dispatcher handed to this thread (`ReplySlot.handoff`) on its worker.

    Called by the thread that blocks on `slot` anyway, outside every other actor's lock: it
    enters the worker — the worker's handler, client and state, under the worker's lock — so
    the call crosses no thread. Only the very instance the work was given to is entered; one
    whose own thread is busy right now (a health check, a cache write) gets the work as a
    message instead, so the caller never waits on it past its deadline. If that instance is
    stopping, broken or already replaced, the dispatcher is told (`WorkUndelivered`) and
    requeues the work, unless it has already settled it as orphaned; nothing was sent.
    """
    while slot.handoff is not None:
        worker, urn, work = slot.handoff
        running = entrance(worker)
        if running is not None and running.actor_urn == urn:
            # The worker clears slot.handoff once started. A short wait lets a caller that
            # has just freed this worker leave it; its own thread's I/O is not waited for.
            entered = running.try_enter(work, wait=_FREED_WORKER_WAIT)
            if entered:
                slot.handoff = None
                return
            if entered is None:
                try:
                    running.actor_ref.tell(work)
                    slot.handoff = None
                    return
                except pykka.ActorDeadError:
                    pass
        slot.handoff = None
        names_ = GatewayNames(work.request.venue)
        if not enter_or_tell(names_.dispatcher, WorkUndelivered(worker, work)):
            work.reply.answer(Overloaded(request_id=work.request.id,
                                         reason="the pool is restarting; nothing was sent"))
            enter_or_tell(names_.gatekeeper, CallOutcome(work.request.id, Outcome.IGNORED, 0.0))
            return
        # Entered, the dispatcher may have handed the work to another idle worker: loop.


def abandon_handoff(slot: ReplySlot) -> None:
    """The caller was interrupted after the pool handed it work and before it started it:
    nothing was sent; settle the call, free the worker and release the breaker's permit."""
    handoff = slot.handoff
    if handoff is None:
        return
    slot.handoff = None
    worker, _, work = handoff
    request = work.request
    work.reply.answer(Overloaded(request_id=request.id,
                                 reason="the caller was interrupted; nothing was sent"))
    names_ = GatewayNames(request.venue)
    enter_or_tell(names_.gatekeeper, CallOutcome(request.id, Outcome.IGNORED, 0.0))
    enter_or_tell(names_.dispatcher,
                  WorkFinished(worker, request.id, request.method, 0.0, "Interrupted"))
