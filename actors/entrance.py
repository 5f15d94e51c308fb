"""Actors whose hot-path messages may also be handled on the sender's thread.

A thread hand-off costs 20–60 µs in CPython; an exchange call through gatekeeper → pool →
worker and back would pay four of them (caller → gatekeeper → dispatcher → worker → caller),
plus two more for the worker's reports, against a 0.5–2 ms call. An `EnterableActor` keeps its
state behind a lock and publishes itself under its stable name while it runs, so a sender can
`enter` a message — the same handler, the same state, on the sender's thread — instead of
waking the actor. Everything else still arrives as messages (timers, statistics, supervision),
and a message sent to the actor's ref is handled exactly as an entered one.

Rules that keep this an actor and not a shared object:
- an entered handler never blocks on I/O the sender does not own: the gatekeeper and the
  dispatcher hand disk work to their own thread with a message (`on_own_thread` tells where a
  handler runs); a worker, whose handler is an exchange call, is entered only by the thread
  that blocks on that very call (`actors.worker.run_handoff`);
- a failure in an entered handler crashes the actor on its own thread (the supervisor restarts
  it from clean state) and the instance refuses further entry; `enter` answers False then, and
  the sender falls back to the stable name, which waits for the successor;
- lock order is worker → gatekeeper → dispatcher: an entered handler may enter actors after it
  in that order, never before (the dispatcher reports to the gatekeeper by message).
"""

from __future__ import annotations

import threading
from typing import Any

import attrs
import pykka
from loguru import logger

from actors.names import tell_if_up
from supervisors import SupervisedActor

__all__ = ["EnterableActor", "enter_or_tell", "entrance"]

#: Running enterable actors by stable name; read without a lock (a dict lookup is atomic).
_running: dict[str, EnterableActor] = {}


def entrance(name: str) -> EnterableActor | None:
    """The running actor named `name` that can be entered, if there is one right now."""
    return _running.get(name)


def enter_or_tell(name: str, message: Any) -> bool:
    """Enter the actor named `name` with `message`, else send it if the actor is up; False
    (nothing done) if it is down or restarting — for reports a successor does without."""
    actor = _running.get(name)
    if actor is not None and actor.enter(message):
        return True
    return tell_if_up(name, message)


@attrs.frozen(slots=True)
class _Crash:
    """To itself: an entered handler failed; fail here so the supervisor restarts the actor."""

    error: BaseException


class EnterableActor(SupervisedActor):
    """Subclasses implement `handle(message)` and call `publish(name)` at the end of on_start."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Serialises the actor's own thread with the threads that enter it.
        self._lock = threading.RLock()
        self._own_thread: threading.Thread | None = None
        self._published: str | None = None
        #: A handler failed: refuse entry until the supervisor has replaced this instance.
        self._broken = False

    def handle(self, message: Any) -> Any:
        raise NotImplementedError

    def entered_failed(self, message: Any, error: Exception) -> None:
        """Answer whoever waits on `message` after its entered handler failed (default: none)."""

    def publish(self, name: str) -> None:
        """From on_start, last: senders may now enter this instance under `name`."""
        self._own_thread = threading.current_thread()
        self._published = name
        _running[name] = self

    def on_own_thread(self) -> bool:
        return threading.current_thread() is self._own_thread

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Crash):
            raise message.error
        with self._lock:
            try:
                return self.handle(message)
            except BaseException:
                self._broken = True
                raise

    def enter(self, message: Any) -> bool:
        """Handle `message` now, on the calling thread; False (nothing done) when this instance
        is stopping or broken — send the message to the stable name instead."""
        with self._lock:
            return self._handle_entered(message)

    def try_enter(self, message: Any, wait: float = 0.0) -> bool | None:
        """`enter` if the actor is free within `wait` seconds; None (nothing done) if its own
        thread or another sender holds it longer — for a sender that must not wait behind the
        actor's own I/O."""
        acquired = (self._lock.acquire(timeout=wait) if wait > 0
                    else self._lock.acquire(blocking=False))
        if not acquired:
            return None
        try:
            return self._handle_entered(message)
        finally:
            self._lock.release()

    def _handle_entered(self, message: Any) -> bool:
        if self._broken or self.actor_stopped.is_set():
            return False
        try:
            self.handle(message)
        except Exception as error:  # noqa: BLE001 - a bug: answer, then crash the actor
            self._broken = True
            logger.bind(actor=self._published).opt(exception=True).error(
                "{} failed on a sender's thread: crashing it", type(message).__name__)
            self.entered_failed(message, error)
            try:
                self.actor_ref.tell(_Crash(error))
            except pykka.ActorDeadError:
                pass  # stopped meanwhile: nothing left to crash
        return True

    def withdraw(self) -> None:
        """From on_stop / on_failure: senders go through messages from now on."""
        with self._lock:
            self._broken = True
        if self._published is not None and _running.get(self._published) is self:
            del _running[self._published]

    def on_stop(self) -> None:
        self.withdraw()

    def on_failure(self, *_: Any) -> None:
        self.withdraw()
