"""Stable names for supervised actors, resolved at send time.

A name maps to the live ref of its actor, or to "down" while its supervisor restarts it.
`resolve` is a dict lookup on the hot path; only a down name makes the caller wait.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pykka

from supervisors.errors import ActorCrashed, ActorUnavailable, NameNotFound, NameTaken

# name -> live ref, or None while the actor is down (restarting). Absent: unknown name.
_refs: dict[str, pykka.ActorRef | None] = {}
_changed = threading.Condition()


def claim(names: tuple[str, ...]) -> None:
    """Reserve `names` (all down) for a new tree; raise NameTaken if any is already in use."""
    with _changed:
        taken = [n for n in names if n in _refs]
        if taken:
            raise NameTaken(f"names already registered by a running tree: {', '.join(taken)}")
        for name in names:
            _refs[name] = None


def register(name: str, ref: pykka.ActorRef) -> None:
    """Point `name` at the freshly (re)started `ref` and wake waiting resolvers."""
    with _changed:
        _refs[name] = ref
        _changed.notify_all()


def mark_down(name: str, only: pykka.ActorRef | None = None) -> None:
    """Mark `name` as restarting: resolvers wait instead of failing.

    With `only`, the name is marked down only while it points at that ref, so a stale
    incarnation dying late never takes down the name of its successor.
    """
    with _changed:
        current = _refs.get(name)
        if name in _refs and (only is None or (current is not None
                                               and current.actor_urn == only.actor_urn)):
            _refs[name] = None
            _changed.notify_all()


def release(names: tuple[str, ...] | list[str]) -> None:
    """Forget `names` for good (their actors will not come back); waiters fail with NameNotFound."""
    with _changed:
        for name in names:
            _refs.pop(name, None)
        _changed.notify_all()


def release_under(prefix: str) -> None:
    """Forget every name inside the subtree whose supervisor is named `prefix`."""
    with _changed:
        for name in [n for n in _refs if n.startswith(prefix + "/")]:
            del _refs[name]
        _changed.notify_all()


def registered() -> dict[str, pykka.ActorRef | None]:
    """A snapshot of every name and its current ref (None while down)."""
    with _changed:
        return dict(_refs)


def resolve(name: str, timeout: float) -> pykka.ActorRef:
    """Return the live ref for `name`, waiting up to `timeout` seconds while it is restarting.

    Raises NameNotFound for a name no running tree owns, ActorUnavailable if it is still
    down at the deadline.
    """
    ref = _refs.get(name)
    if ref is not None and ref.is_alive():
        return ref
    deadline = time.monotonic() + timeout
    with _changed:
        while True:
            if name not in _refs:
                raise NameNotFound(f"no supervised actor is named {name!r}")
            ref = _refs[name]
            if ref is not None and ref.is_alive():
                return ref
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ActorUnavailable(
                    f"actor {name!r} is restarting and did not come back within {timeout:.3f}s"
                )
            # A ref that died without its supervisor noticing yet wakes us on the next change;
            # the short cap covers the window before the supervisor marks it down.
            _changed.wait(min(remaining, 0.05))


def ask(name: str, message: Any, *, timeout: float) -> Any:
    """Ask the actor named `name`, resolved now; the whole call is bounded by `timeout` seconds.

    Raises what the actor raised, NameNotFound / ActorUnavailable from resolution, ActorCrashed if
    it died with the message queued, and pykka.Timeout when no reply arrived in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        ref = resolve(name, timeout)
        try:
            return ref.ask(message, timeout=max(0.0, deadline - time.monotonic()))
        except ActorCrashed:
            raise
        except pykka.ActorDeadError:
            # Died between resolve and send: the message was never delivered, so resend.
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise ActorUnavailable(f"actor {name!r} died and was not back in time") from None


def tell(name: str, message: Any, *, timeout: float = 1.0) -> None:
    """Send `message` to the actor named `name`, waiting up to `timeout` while it restarts."""
    deadline = time.monotonic() + timeout
    while True:
        ref = resolve(name, timeout)
        try:
            ref.tell(message)
            return
        except pykka.ActorDeadError:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise ActorUnavailable(f"actor {name!r} died and was not back in time") from None
