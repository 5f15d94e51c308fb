"""The gatekeeper: every exchange call of a venue enters here (`venue:<name>/gatekeeper`).

It applies the circuit breakers and never waits on the exchange: an admitted `Call` is forwarded
to the pool with the caller's reply slot, and its outcome comes back later as a `CallOutcome`
that feeds the breaker. An open breaker answers at once — writes with `CircuitOpen` carrying
when the next probe is due, reads from the market-data cache marked stale when there is an entry.
A venue ban (418, Nobitex token block) opens every breaker of the venue until the ban ends.
Permits whose outcome never came back (a pool that died with the call) are released as ignored
once the request is well past its deadline, so half-open probe slots cannot leak.

Hot path (`actors.entrance`): `actors.api.submit` enters the gatekeeper with the `Call` on the
caller's thread, the gatekeeper enters the dispatcher with the `Work`, and workers enter both
with their reports, each under the actor's lock and falling back to a message. Stale reads
from the cache touch disk, so an entered call that needs one is handed to the gatekeeper's own
thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs
import pykka
from loguru import logger

from actors.entrance import EnterableActor, entrance
from actors.health import report_breaker_transition
from actors.names import GatewayNames
from actors.protocol import Call, CallOutcome, GetStatistics, Work, crashed_reply
from actors.worker import CacheSettings, cache_key
from gateway.breaker import (
    Breaker,
    BreakerConfig,
    BreakerMetrics,
    Permit,
    Rejected,
    Transition,
)
from gateway.breaker_registry import BreakerKey, BreakerRegistry
from gateway.cache import MarketDataCache, kind_for_method
from gateway.classify import BackoffKind, Outcome
from messages.exchange import (
    Category,
    CircuitOpen,
    DeadlineExceeded,
    ExchangeRejected,
    ExchangeRequest,
    ExchangeResult,
    Overloaded,
)
from supervisors import ActorUnavailable, NameNotFound, names

__all__ = ["Gatekeeper", "GatekeeperStatistics"]

#: Seconds past a request's deadline after which its unreported permit is released.
PERMIT_GRACE = 5.0
#: Method prefixes that change the account: never in the market-data bulkhead or cache.
_WRITES = ("create_", "cancel_", "edit_", "withdraw", "transfer")
#: Seconds between sweeps of forgotten permits and idle per-method breakers.
SWEEP_INTERVAL = 1.0


@attrs.frozen(slots=True)
class GatekeeperStatistics:
    """Breakers with their metrics, and what the gatekeeper answered by itself."""

    breakers: dict[str, BreakerMetrics]
    admitted: int
    circuit_open: int
    stale_served: int
    refused: int
    pending: int


@attrs.frozen(slots=True)
class _Sweep:
    """Timer: release forgotten permits, evict idle per-method breakers."""


@attrs.frozen(slots=True)
class _ServeStale:
    """To itself from an outside thread: answer a refused read from the cache (disk I/O
    stays on the gatekeeper's thread), or `CircuitOpen` with the probe due at `next_probe_at`."""

    call: Call = attrs.field(eq=False)
    next_probe_at: float


class Gatekeeper(EnterableActor):
    """Breakers per venue+category (and per method when configured); see the module docstring."""

    def __init__(self, names_: GatewayNames, breaker: BreakerConfig, *, per_method: bool,
                 idle_ttl: float, methods: frozenset[str], cache: CacheSettings | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._names = names_
        self._registry = BreakerRegistry(breaker, idle_ttl=idle_ttl)
        self._per_method = per_method
        self._methods = methods
        self._cache_settings = cache
        self._cache: MarketDataCache | None = None
        self._clock = clock
        self._pending: dict[
            str, tuple[float, list[tuple[BreakerKey, Breaker | None, Permit]]]] = {}
        self._admitted = self._open = self._stale = self._refused = 0
        self._category_keys = {c: BreakerKey(names_.venue, c.value) for c in Category}
        self._category_only: dict[Category, tuple[tuple[BreakerKey, Breaker | None], ...]] = {}

    def on_start(self) -> None:
        if self._cache_settings is not None:
            self._cache = self._cache_settings.open(self._names.venue)
        self._registry.add_listener(self._on_transition)
        for category, key in self._category_keys.items():  # they exist from the start
            self._category_only[category] = ((key, self._registry.get(key, self._clock())),)
        self.send_after(SWEEP_INTERVAL, _Sweep())
        self.publish(self._names.gatekeeper)

    def on_stop(self) -> None:
        super().on_stop()
        if self._cache is not None:
            self._cache.close()

    def handle(self, message: Any) -> Any:
        if isinstance(message, Call):
            self._call(message)
        elif isinstance(message, CallOutcome):
            self._outcome(message)
        elif isinstance(message, _ServeStale):
            self._serve_stale(message.call, message.next_probe_at)
        elif isinstance(message, _Sweep):
            self._sweep()
        elif isinstance(message, GetStatistics):
            return self.gatekeeper_statistics()
        else:
            raise TypeError(f"Gatekeeper: unexpected message {type(message).__name__}")
        return None

    def entered_failed(self, message: Any, error: Exception) -> None:
        if isinstance(message, Call):
            message.reply.answer(crashed_reply(message.request, "gatekeeper", error))

    # ----- calls ----------------------------------------------------------------------------

    def _keys(self, request: ExchangeRequest
              ) -> tuple[tuple[BreakerKey, Breaker | None], ...]:
        """The breakers a call passes: its category's (held here, never evicted), and its
        method's when configured (None: looked up in the registry, which may evict it)."""
        category = self._category_only[request.category]
        if self._per_method:
            return (*category, (BreakerKey(self._names.venue, request.category.value,
                                           request.method), None))
        return category

    def _call(self, call: Call) -> None:
        request = call.request
        now = self._clock()
        refusal = self._refusal(request, now)
        if refusal is not None:
            self._refused += 1
            call.reply.answer(refusal)
            return
        permits: list[tuple[BreakerKey, Breaker | None, Permit]] = []
        for key, breaker in self._keys(request):
            verdict = (breaker or self._registry.get(key, now)).acquire(now)
            if isinstance(verdict, Rejected):
                for taken in permits:
                    self._record(taken, Outcome.IGNORED, 0.0, now)
                self._answer_open(call, verdict, now)
                return
            permits.append((key, breaker, verdict))
        self._pending[request.id] = (request.deadline, permits)
        self._admitted += 1
        work = Work(request, call.reply)
        dispatcher = entrance(self._names.dispatcher)
        if dispatcher is not None and dispatcher.enter(work):
            return
        # The dispatcher is restarting. Never wait for its successor here (every caller would
        # stall behind this one): send the call as a message if the new one is up, else
        # refuse it, nothing sent.
        try:
            names.resolve(self._names.dispatcher, 0.0).tell(work)
        except (ActorUnavailable, NameNotFound, pykka.ActorDeadError):
            self._release(request.id, Outcome.IGNORED, 0.0, now)
            call.reply.answer(Overloaded(request_id=request.id,
                                         reason="the pool is restarting; nothing was sent"))

    def _refusal(self, request: ExchangeRequest, now: float) -> Any:
        if request.venue != self._names.venue:
            return ExchangeRejected(request_id=request.id, error_class="BadRequest",
                                    message=f"request for venue {request.venue!r} sent to "
                                            f"{self._names.gatekeeper!r}")
        if request.method not in self._methods:
            return ExchangeRejected(request_id=request.id, error_class="NotSupported",
                                    message=f"the exchange client has no method "
                                            f"{request.method!r}")
        if request.category is Category.MARKET_DATA and request.method.startswith(_WRITES):
            return ExchangeRejected(request_id=request.id, error_class="BadRequest",
                                    message=f"{request.method} changes the account: it must be "
                                            f"sent in the trading category")
        if request.expired(now):
            return DeadlineExceeded(request_id=request.id, deadline=request.deadline)
        return None

    def _answer_open(self, call: Call, rejected: Rejected, now: float) -> None:
        request = call.request
        next_probe_at = now + rejected.next_probe_in(now)
        if (request.category is Category.MARKET_DATA and self._cache is not None
                and kind_for_method(request.method) is not None
                and not self.on_own_thread()):
            self.actor_ref.tell(_ServeStale(call, next_probe_at))
            return
        self._serve_stale(call, next_probe_at)

    def _serve_stale(self, call: Call, next_probe_at: float) -> None:
        request = call.request
        kind = kind_for_method(request.method)
        if (request.category is Category.MARKET_DATA and self._cache is not None
                and kind is not None):
            cached = None
            try:
                cached = self._cache.get(kind, cache_key(request), time.time())
            except Exception:  # noqa: BLE001 - an unreadable cache only loses the stale answer
                logger.bind(actor=self._names.gatekeeper).opt(exception=True).warning(
                    "market-data cache read failed")
            if cached is not None:
                self._stale += 1
                call.reply.answer(ExchangeResult.from_ccxt(request.id, cached.value, 0.0,
                                                           stale=True))
                return
        self._open += 1
        call.reply.answer(CircuitOpen(request_id=request.id, venue=request.venue,
                                      category=request.category,
                                      next_probe_in=max(0.0, next_probe_at - self._clock())))

    # ----- outcomes -------------------------------------------------------------------------

    def _outcome(self, outcome: CallOutcome) -> None:
        now = self._clock()
        self._release(outcome.request_id, outcome.outcome, outcome.latency, now)
        signal = outcome.signal
        if signal is not None and signal.kind is BackoffKind.BAN:
            for category in Category:
                key = BreakerKey(self._names.venue, category.value)
                self._registry.get(key, now).open_for(
                    signal.seconds, now, f"venue ban for {signal.seconds:.0f}s ({signal.source})")

    def _release(self, request_id: str, outcome: Outcome, latency: float, now: float) -> None:
        entry = self._pending.pop(request_id, None)
        if entry is None:
            return  # already released (a retried call reports once; a late sweep won)
        for taken in entry[1]:
            self._record(taken, outcome, latency, now)

    def _record(self, taken: tuple[BreakerKey, Breaker | None, Permit], outcome: Outcome,
                latency: float, now: float) -> None:
        key, breaker, permit = taken
        if breaker is not None:
            breaker.record(permit, outcome, latency, now)
        else:  # per-method: nothing is recorded if it was evicted meanwhile
            self._registry.record(key, permit, outcome, latency, now)

    def _sweep(self) -> None:
        self.send_after(SWEEP_INTERVAL, _Sweep())
        now = self._clock()
        forgotten = [rid for rid, (deadline, _) in self._pending.items()
                     if now > deadline + PERMIT_GRACE]
        for request_id in forgotten:
            self._release(request_id, Outcome.IGNORED, 0.0, now)
        self._registry.evict_idle(now)

    def _on_transition(self, key: BreakerKey, transition: Transition) -> None:
        logger.bind(context="breaker_transition", breaker=str(key)).warning(
            "breaker {}: {} -> {} ({})", key, transition.from_state.value,
            transition.to_state.value, transition.reason)
        report_breaker_transition(self._names.venue, str(key), transition)

    def gatekeeper_statistics(self) -> GatekeeperStatistics:
        now = self._clock()
        return GatekeeperStatistics(
            breakers={str(k): m for k, m in self._registry.snapshot(now).items()},
            admitted=self._admitted, circuit_open=self._open, stale_served=self._stale,
            refused=self._refused, pending=len(self._pending))
