"""Shared helpers for the supervision tests: a scriptable worker actor and an event recorder."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from messages.supervision import SupervisionEvent
from supervisors import SupervisedActor, subscribe


@attrs.frozen
class Crash:
    """Make the worker raise `error` from its handler (tell or ask)."""

    error: BaseException = attrs.field(factory=lambda: RuntimeError("injected crash"))


@attrs.frozen
class Ping:
    """Reply with the worker's urn (identifies the incarnation)."""


@attrs.frozen
class Hold:
    """Block the worker's thread until `release` is set (to queue messages behind it)."""

    entered: threading.Event
    release: threading.Event
    then_crash: bool = False


@attrs.frozen
class StopSelf:
    """Stop normally (a clean exit, not a crash)."""


@attrs.frozen
class Note:
    """A tell with a known sender, to check dead-letter reports."""

    sender: str


class Worker(SupervisedActor):
    """A child whose behaviour the test scripts; records its stop in `journal` if given."""

    def __init__(self, label: str = "", journal: list[str] | None = None,
                 stop_gate: threading.Event | None = None) -> None:
        super().__init__()
        self.label = label
        self.journal = journal
        self.stop_gate = stop_gate

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Crash):
            raise message.error
        if isinstance(message, Ping):
            return self.actor_urn
        if isinstance(message, Hold):
            message.entered.set()
            message.release.wait(10)
            if message.then_crash:
                raise RuntimeError("crashed while messages were queued")
            return None
        if isinstance(message, StopSelf):
            self.stop()
            return None
        return None

    def on_stop(self) -> None:
        if self.journal is not None:
            self.journal.append(self.label)
        if self.stop_gate is not None:
            self.stop_gate.wait(10)


class FailingStart(SupervisedActor):
    """Crashes in on_start while `failures_left[0] > 0` (shared counter across restarts)."""

    def __init__(self, failures_left: list[int]) -> None:
        super().__init__()
        self.failures_left = failures_left

    def on_start(self) -> None:
        if self.failures_left[0] > 0:
            self.failures_left[0] -= 1
            raise RuntimeError("on_start failed")

    def on_receive(self, message: Any) -> Any:
        return self.actor_urn if isinstance(message, Ping) else None


class SlowStart(SupervisedActor):
    """Blocks in on_start on the next gate of `gates` (shared across restarts) while any are left.

    `stopped` records the urn of every incarnation whose on_stop ran.
    """

    def __init__(self, gates: list[threading.Event], stopped: list[str]) -> None:
        super().__init__()
        self.gate = gates.pop(0) if gates else None
        self.stopped = stopped

    def on_start(self) -> None:
        if self.gate is not None:
            self.gate.wait(10)

    def on_receive(self, message: Any) -> Any:
        return self.actor_urn if isinstance(message, Ping) else None

    def on_stop(self) -> None:
        self.stopped.append(self.actor_urn)


class EventLog:
    """Records supervision events; `wait_for` blocks on a condition until a predicate holds."""

    def __init__(self) -> None:
        self.events: list[SupervisionEvent] = []
        self._changed = threading.Condition()
        self._unsubscribe = subscribe(self._record)

    def _record(self, event: SupervisionEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def of(self, kind: type) -> list[Any]:
        with self._changed:
            return [e for e in self.events if isinstance(e, kind)]

    def since(self, index: int) -> list[Any]:
        """Every event recorded after the first `index` ones, in publication order."""
        with self._changed:
            return self.events[index:]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until `predicate()` holds, re-checking after every event (at least every 20ms).

        The predicate runs outside the lock, so it may ask supervisors (which publish events).
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                seen = len(self.events)
            if predicate():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                if len(self.events) == seen:
                    self._changed.wait(min(remaining, 0.02))

    def close(self) -> None:
        self._unsubscribe()


def extra_threads(baseline: set[threading.Thread], timeout: float = 2.0) -> list[threading.Thread]:
    """Threads alive now that were not in `baseline`, after letting exiting ones finish."""
    deadline = time.monotonic() + timeout
    extra = [t for t in threading.enumerate() if t not in baseline]
    for thread in extra:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in threading.enumerate() if t not in baseline]
