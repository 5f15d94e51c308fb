"""Publish supervision events to subscribers; a failing listener is logged, never propagated."""

from __future__ import annotations

import threading
from collections.abc import Callable

from loguru import logger

from messages.supervision import SupervisionEvent

Listener = Callable[[SupervisionEvent], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call `listener` for every supervision event; return a function that unsubscribes it.

    Listeners run on the publishing supervisor's thread, so they must be quick (e.g. tell an
    actor); an exception in a listener is logged and does not reach the supervisor.
    """
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def publish(event: SupervisionEvent) -> None:
    """Deliver `event` to every current listener."""
    with _lock:
        listeners = tuple(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            logger.bind(context="listener_error", event=type(event).__name__).exception(
                "supervision event listener failed"
            )
