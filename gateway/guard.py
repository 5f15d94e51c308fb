"""The breaker for code outside the actor system: a decorator and a context manager.

`GuardedBreaker` wraps a pure `Breaker` in a lock, so any number of threads may call through it;
the lock is held only around the core's bookkeeping, never during the protected call. Exceptions
are classified with `classify_exception` and re-raised unchanged; a refused call raises
`CircuitOpenError` without running the function. Outside the actor system there is no shared
rate limiter, so a venue back-off signal (429/418, the adapter's `retry_after_seconds`) opens
the breaker for the time the venue asked. By default only the exception is read; pass
`signal_of` to read the answer's headers too, e.g. for a client used by one thread:
`lambda e: backoff_signal(e, ex.last_response_headers, ex.last_http_response, wall_now=...)`.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import ParamSpec, TypeVar

from gateway.breaker import Breaker, BreakerMetrics, Permit, Rejected
from gateway.classify import (
    BackoffSignal,
    Classification,
    Outcome,
    backoff_signal,
    classify_exception,
)
from gateway.errors import CircuitOpenError

P = ParamSpec("P")
R = TypeVar("R")


def _signal_from_exception(error: BaseException) -> BackoffSignal | None:
    return backoff_signal(error, wall_now=time.time())


class GuardedBreaker:
    """A thread-safe front for one breaker. `clock` must be monotonic seconds."""

    def __init__(
        self,
        breaker: Breaker,
        *,
        clock: Callable[[], float] = time.monotonic,
        classify: Callable[[BaseException], Classification] = classify_exception,
        signal_of: Callable[[BaseException], BackoffSignal | None] | None = None,
    ) -> None:
        self.breaker = breaker
        self._clock = clock
        self._classify = classify
        self._signal_of = signal_of or _signal_from_exception
        # Re-entrant: a transition listener may read metrics through this guard.
        self._lock = threading.RLock()

    def _acquire(self) -> tuple[Permit, float]:
        with self._lock:
            now = self._clock()
            decision = self.breaker.acquire(now)
        if isinstance(decision, Rejected):
            raise CircuitOpenError(decision.breaker, decision.state.value, decision.next_probe_at)
        return decision, now

    def _report(self, permit: Permit, started: float, error: BaseException | None) -> None:
        with self._lock:
            now = self._clock()
            latency = max(0.0, now - started)
            if error is None:
                self.breaker.on_success(permit, latency, now)
                return
            outcome = self._classify(error).outcome
            if outcome is Outcome.FAILURE:
                self.breaker.on_failure(permit, latency, now)
            else:
                self.breaker.on_ignored(permit, now)
            signal = self._signal_of(error)
            if signal is not None:
                self.breaker.open_for(signal.seconds, now, f"venue {signal.kind.value}")

    @contextmanager
    def attempt(self) -> Iterator[Permit]:
        """`with guarded.attempt(): call()` — raises CircuitOpenError before the body if refused."""
        permit, started = self._acquire()
        try:
            yield permit
        except BaseException as error:
            self._report(permit, started, error)
            raise
        self._report(permit, started, None)

    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(*args, **kwargs)` through the breaker."""
        with self.attempt():
            return fn(*args, **kwargs)

    def protect(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorator: every call of `fn` goes through the breaker."""

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.call(fn, *args, **kwargs)

        return guarded

    def metrics(self) -> BreakerMetrics:
        with self._lock:
            return self.breaker.metrics(self._clock())

    def open_for(self, seconds: float, reason: str) -> None:
        with self._lock:
            self.breaker.open_for(seconds, self._clock(), reason)

    def force_open(self, reason: str = "forced open by operator") -> None:
        with self._lock:
            self.breaker.force_open(self._clock(), reason)

    def disable(self, reason: str = "disabled by operator") -> None:
        with self._lock:
            self.breaker.disable(self._clock(), reason)

    def reset(self, reason: str = "reset by operator") -> None:
        with self._lock:
            self.breaker.reset(self._clock(), reason)


def guard(guarded: GuardedBreaker) -> AbstractContextManager[Permit]:
    """`with guard(guarded): ...` — the same as `guarded.attempt()`."""
    return guarded.attempt()
