"""SupervisedActor: a pykka ThreadingActor whose every death is reported to its supervisor.

pykka loses some deaths silently: a failure in on_start (no on_failure, nobody told), an
exception while answering an ask (returned to the caller, actor lives on), a BaseException
(pykka stops *every* actor), and messages still queued when an actor dies. This class runs its
own receive loop so each of those becomes one ordinary crash of this actor, reported through the
link its supervisor attached when it started the actor.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pykka
from loguru import logger
from pykka import ActorRegistry
from pykka._envelope import Envelope
from pykka.messages import _ActorStop

from messages.supervision import ActorStatistics
from supervisors import names
from supervisors.errors import ActorCrashed, SupervisorGaveUpError, UnrecoverableError


class DeadLetterRecord:
    """A message found in a dead actor's inbox (before it is published as a DeadLetter event)."""

    __slots__ = ("message_type", "sender", "was_ask")

    def __init__(self, message_type: str, sender: str | None, was_ask: bool) -> None:
        self.message_type = message_type
        self.sender = sender
        self.was_ask = was_ask


class Link:
    """What a supervisor knows about one start of one child; filled in by the child's thread.

    `started` is set once on_start returned (or failed); `exited` once the thread is done with
    the actor. `expected_exit` is set by the supervisor before it stops the child on purpose.
    `abandoned` is set when the supervisor gave up waiting for on_start: exactly one of
    `confirm_start` and `abandon` wins, so a late on_start never yields a running child.
    """

    def __init__(self, name: str | None, on_exit: Callable[[Link], None]) -> None:
        self.name = name
        self.on_exit = on_exit
        self.urn: str | None = None
        self.thread: threading.Thread | None = None
        self.started = threading.Event()
        self.exited = threading.Event()
        self.failure: BaseException | None = None
        self.start_ok = False
        self.dead_letters: tuple[DeadLetterRecord, ...] = ()
        self.expected_exit = False
        self.abandoned = False
        self._start_lock = threading.Lock()

    def confirm_start(self, ok: bool) -> bool:
        """Called by the child when on_start returned; False if the supervisor abandoned it."""
        with self._start_lock:
            if self.abandoned:
                return False
            self.start_ok = ok
            self.started.set()
            return True

    def abandon(self) -> bool:
        """Called by the supervisor at the start timeout; False if on_start just finished."""
        with self._start_lock:
            if self.started.is_set():
                return False
            self.abandoned = True
            return True


class ClosableInbox(queue.Queue):  # type: ignore[type-arg]
    """An unbounded inbox that refuses messages once closed, so none is lost after the drain.

    pykka's tell/ask check `is_alive()` and then put; a put racing with the death lands here and
    raises ActorDeadError to the sender instead of vanishing into a dead queue.
    """

    def __init__(self) -> None:
        super().__init__()
        self._closed = False

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        with self.mutex:
            if self._closed:
                raise pykka.ActorDeadError("the actor died; its inbox is closed")
            self._put(item)
            self.unfinished_tasks += 1
            self.not_empty.notify()

    def close(self) -> list[Any]:
        """Refuse further messages and return those still queued."""
        with self.mutex:
            self._closed = True
            items = list(self.queue)
            self.queue.clear()
            return items


_pending = threading.local()


@contextmanager
def linked(link: Link) -> Iterator[None]:
    """Attach `link` to the first SupervisedActor constructed in this thread inside the block."""
    _pending.link = link
    try:
        yield
    finally:
        _pending.link = None


def _take_link() -> Link | None:
    link = getattr(_pending, "link", None)
    _pending.link = None
    return link


def _describe(message: Any) -> str:
    if isinstance(message, pykka.messages.ProxyCall):
        return f"ProxyCall({'.'.join(message.attr_path)})"
    return type(message).__name__


#: Set on each actor's own thread: which actor runs there (see `on_actor_thread`).
_thread_actor = threading.local()


def on_actor_thread() -> bool:
    """Whether the calling thread is an actor's own thread (actors must never block on I/O
    they do not own): a supervised actor's, or any pykka actor's (whose loop is the target)."""
    actor = getattr(_thread_actor, "actor", None)
    if actor is None:
        loop = getattr(threading.current_thread(), "_target", None)
        actor = _thread_actor.actor = isinstance(getattr(loop, "__self__", None), pykka.Actor)
    return actor is not False


class SupervisedActor(pykka.ThreadingActor):
    """Base class of every supervised actor; write on_start/on_receive/on_stop as with pykka.

    Guarantees: any unhandled exception (BaseException included) in on_start, a tell, an ask or
    on_stop stops only this actor and is reported to its supervisor as a crash; an asker whose
    handler raised gets that exception first; queued messages become dead letters and queued
    asks fail with ActorCrashed. `send_after` schedules a message to self without a thread.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._supervision_link = _take_link()
        if self._supervision_link is not None:
            self._supervision_link.urn = self.actor_urn
        self._timers: list[tuple[float, int, Any]] = []
        self._timer_seq = itertools.count()
        self._messages_handled = 0
        self._stop_failure: BaseException | None = None

    @property
    def supervised_name(self) -> str | None:
        """The stable name this actor is registered under, if it is supervised."""
        return self._supervision_link.name if self._supervision_link else None

    def send_after(self, delay: float, message: Any) -> None:
        """Deliver `message` to this actor after `delay` seconds; call from its own thread."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_seq), message))

    def statistics(self) -> ActorStatistics:
        """Cheap counters for health and /status; safe to call through a proxy or an ask."""
        return ActorStatistics(
            name=self.supervised_name,
            messages_handled=self._messages_handled,
            inbox_size=self.actor_inbox.qsize(),  # type: ignore[attr-defined]
            timers_pending=len(self._timers),
        )

    @staticmethod
    def _create_actor_inbox() -> ClosableInbox:
        return ClosableInbox()

    def _start_actor_loop(self) -> None:
        label = self.supervised_name or self.actor_urn.rsplit(":", 1)[-1][:8]
        thread = threading.Thread(
            target=self._actor_loop, name=f"{self.__class__.__name__}[{label}]"
        )
        thread.daemon = self.use_daemon_thread
        if self._supervision_link is not None:
            self._supervision_link.thread = thread
        thread.start()

    def _stop(self) -> None:
        ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        try:
            self.on_stop()
        except BaseException as exc:  # noqa: BLE001 - a failing on_stop is a crash, reported below
            self._stop_failure = exc

    def _actor_loop(self) -> None:
        _thread_actor.actor = self
        link = self._supervision_link
        failure: BaseException | None = None
        try:
            self.on_start()
        except BaseException as exc:  # noqa: BLE001 - pykka would lose this silently
            failure = exc
            self._mark_dead()
            if link is not None:
                link.failure = exc  # before the start is confirmed: the supervisor reads it
        if link is not None and not link.confirm_start(failure is None) and failure is None:
            self._stop()  # too late: its supervisor already counted this start as a crash
        elif failure is None:
            failure = self._receive_until_stopped()
        if failure is not None:
            self._log_crash(failure)
            try:
                self.on_failure(type(failure), failure, failure.__traceback__)
            except BaseException:  # noqa: BLE001
                logger.bind(actor=str(self)).exception("on_failure raised")
        else:
            failure = self._stop_failure
        self._mark_dead()
        dead = self._drain_inbox()
        if link is None:
            return
        if failure is not None:
            link.failure = failure
        link.dead_letters = dead
        link.exited.set()
        try:
            link.on_exit(link)
        except Exception:
            logger.bind(actor=str(self)).exception("supervisor exit notification failed")

    def _mark_dead(self) -> None:
        ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        if self._supervision_link is not None and self._supervision_link.name is not None:
            names.mark_down(self._supervision_link.name, only=self.actor_ref)

    def _next_envelope(self) -> Envelope[Any]:
        while self._timers:
            remaining = self._timers[0][0] - time.monotonic()
            if remaining <= 0:
                return Envelope(heapq.heappop(self._timers)[2])
            try:
                return self.actor_inbox.get(timeout=remaining)  # type: ignore[call-arg]
            except queue.Empty:
                continue
        return self.actor_inbox.get()

    def _receive_until_stopped(self) -> BaseException | None:
        while not self.actor_stopped.is_set():
            envelope = self._next_envelope()
            try:
                response = self._handle_receive(envelope.message)
            except BaseException as exc:  # noqa: BLE001 - every escape is this actor's crash
                self._mark_dead()  # before replying, so the asker's next send waits for the restart
                if envelope.reply_to is not None:
                    if isinstance(exc, Exception):
                        envelope.reply_to.set_exception((type(exc), exc, exc.__traceback__))
                    else:
                        error = ActorCrashed(f"{self} crashed with {exc!r} while answering")
                        envelope.reply_to.set_exception((ActorCrashed, error, None))
                return exc
            self._messages_handled += 1
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
        return None

    def _drain_inbox(self) -> tuple[DeadLetterRecord, ...]:
        letters: list[DeadLetterRecord] = []
        for envelope in self.actor_inbox.close():  # type: ignore[attr-defined]
            message = envelope.message
            if isinstance(message, _ActorStop):
                if envelope.reply_to is not None:
                    envelope.reply_to.set(None)
                continue
            sender = getattr(message, "sender", None)
            was_ask = envelope.reply_to is not None
            letters.append(DeadLetterRecord(
                _describe(message), None if sender is None else str(sender), was_ask))
            if envelope.reply_to is not None:
                error = ActorCrashed(
                    f"{self.supervised_name or self} died before handling {_describe(message)}"
                )
                envelope.reply_to.set_exception((ActorCrashed, error, None))
        return tuple(letters)

    def _log_crash(self, failure: BaseException) -> None:
        # A supervisor giving up, or an unrecoverable failure, is a verdict, not a bug: its
        # message says everything and a traceback per level of the tree would bury it.
        verdict = isinstance(failure, SupervisorGaveUpError | UnrecoverableError)
        logger.bind(context="child_terminated", actor=str(self), name=self.supervised_name).opt(
            exception=None if verdict else failure
        ).error("actor crashed: {!r}", failure)
