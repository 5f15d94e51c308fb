"""Calling the exchange from outside the actors: `call(request)` blocks for exactly one reply.

The reply slot travels with the request through gatekeeper, pool and worker, and whichever of
them settles the call answers it directly, so the caller waits on one future and no actor waits
on another. The gatekeeper's `Call` handling runs on the caller's thread when the gatekeeper is
up (`actors.entrance`), else the call is sent to its stable name. A blocking `call` from a
thread that is no actor's also runs its worker's ccxt call itself when the pool hands it to an
idle worker at once (`actors.worker.run_handoff`): no thread hand-off at all.

`call` returns within the request's deadline plus `grace`: a ccxt call it runs itself has its
HTTP timeout cut to the time left (only a venue that keeps a response trickling in byte by
byte can stretch that, as it would stall a worker's thread); if nothing came back by then (an
actor died holding the call), it settles the slot itself — `OutcomeUnknown` for a
non-idempotent request, since it may have reached the venue, `DeadlineExceeded` otherwise —
and any later answer is dropped. Actors must not block: they use `submit` and the future.
"""

from __future__ import annotations

import functools
import threading
import time

import pykka

from actors.entrance import entrance
from actors.names import GatewayNames
from actors.protocol import Call, ReplySlot
from actors.worker import abandon_handoff, run_handoff
from messages.exchange import (
    DeadlineExceeded,
    ExchangeReply,
    ExchangeRequest,
    OutcomeUnknown,
    Overloaded,
)
from supervisors import ActorUnavailable, NameNotFound, names, on_actor_thread

__all__ = ["call", "gatekeeper_name", "submit"]

#: Seconds a caller waits past the deadline for the system's own answer.
DEFAULT_GRACE = 0.5


@functools.lru_cache(maxsize=64)
def gatekeeper_name(venue: str) -> str:
    """The stable name of `venue`'s gatekeeper, e.g. ``venue:sim/gatekeeper``."""
    return GatewayNames(venue).gatekeeper


def submit(request: ExchangeRequest) -> ReplySlot:
    """Send `request` to its venue's gatekeeper; the slot's `future` yields the one reply.

    Never blocks longer than the time left before the deadline (while the gatekeeper restarts).
    A venue without a running gatekeeper is answered `Overloaded` in the slot at once.
    """
    slot = ReplySlot()
    _send(request, slot)
    return slot


def _send(request: ExchangeRequest, slot: ReplySlot) -> None:
    call = Call(request, slot)
    name = gatekeeper_name(request.venue)
    running = entrance(name)
    if running is not None and running.enter(call):
        return
    wait = max(0.0, request.remaining(time.monotonic()))
    try:
        names.tell(name, call, timeout=wait)
    except (ActorUnavailable, NameNotFound) as error:
        slot.answer(Overloaded(request_id=request.id, reason=f"gatekeeper unavailable: {error}"))


def call(request: ExchangeRequest, *, grace: float = DEFAULT_GRACE) -> ExchangeReply:
    """Run `request` through the gateway and return its one reply (see the module docstring)."""
    slot = ReplySlot(runner=None if on_actor_thread() else threading.get_ident())
    try:
        _send(request, slot)
        run_handoff(slot)
    except BaseException:  # interrupted (Ctrl-C): work handed over but not started goes back
        abandon_handoff(slot)
        raise
    if slot.reply is not None:
        return slot.reply
    timeout = max(0.0, request.remaining(time.monotonic())) + grace
    try:
        return slot.future.get(timeout=timeout)
    except pykka.Timeout:
        pass
    if request.idempotent:
        fallback: ExchangeReply = DeadlineExceeded(
            request_id=request.id, deadline=request.deadline, sent=True)
    else:
        fallback = OutcomeUnknown(request_id=request.id,
                                  reason="no answer within the deadline; it may have executed")
    if slot.answer(fallback):
        return fallback
    return slot.future.get(timeout=1.0)  # an answer raced in just now
