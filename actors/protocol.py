"""Messages between the gateway's actors, and the caller's reply slot that travels with a call.

The public conversation (ExchangeRequest → one ExchangeReply) lives in `messages.exchange`; these
records are the internal hops of DESIGN §3. They carry the caller's `ReplySlot`, so whichever
actor settles a call answers the caller directly and no actor waits on another.
"""

from __future__ import annotations

import threading

import attrs
import pykka

from gateway.classify import BackoffSignal, Outcome
from messages.exchange import ExchangeFailed, ExchangeReply, ExchangeRequest, OutcomeUnknown

__all__ = [
    "ApplyBackoff",
    "Call",
    "CallOutcome",
    "GetBucket",
    "GetStatistics",
    "PoolStarted",
    "ReplySlot",
    "Work",
    "WorkFinished",
    "WorkUndelivered",
    "WorkerDown",
    "WorkerReady",
    "crashed_reply",
]


#: Guards every ReplySlot's settling; held for a few instructions, so one lock for all costs
#: less than making one per call.
_SLOTS = threading.Lock()


class ReplySlot:
    """The caller's future, settled at most once: the first `answer` wins, later ones are refused.

    This is what makes "exactly one reply" hold when two parties may answer the same call (a
    worker that replied just before it crashed, and the pool that learns of the crash; a caller
    that gave up at its deadline). `answer` never blocks. The pykka future is made only when
    somebody asks for it: a caller that ran its call itself (`handoff`) reads `reply` directly.
    """

    __slots__ = ("_future", "handoff", "reply", "runner")

    def __init__(self, *, runner: int | None = None,
                 future: pykka.ThreadingFuture[ExchangeReply] | None = None) -> None:
        #: Made on first use, unless the caller brings its own (one that notifies, say).
        self._future = future
        #: The answer, once there is one.
        self.reply: ExchangeReply | None = None
        #: The thread (ident) that will block on this slot, if it may run the call itself:
        #: `actors.api.call` from a thread that is no actor's.
        self.runner = runner
        #: Set by the dispatcher, on the runner's thread, when it gave the call to an idle worker:
        #: (worker name, the urn of that worker instance, work); the runner then runs that
        #: worker's handler itself (`actors.worker.run_handoff`).
        self.handoff: tuple[str, str | None, Work] | None = None

    @property
    def answered(self) -> bool:
        return self.reply is not None

    @property
    def future(self) -> pykka.ThreadingFuture[ExchangeReply]:
        """A pykka future that yields the answer (already set if the call is answered)."""
        with _SLOTS:
            if self._future is None:
                self._future = pykka.ThreadingFuture()
                if self.reply is not None:
                    self._future.set(self.reply)
            return self._future

    def answer(self, reply: ExchangeReply) -> bool:
        """Settle the call with `reply`; False (and nothing happens) if it was already settled."""
        with _SLOTS:
            if self.reply is not None:
                return False
            self.reply = reply
            future = self._future
        if future is not None:
            future.set(reply)
        return True


def crashed_reply(request: ExchangeRequest, actor: str, error: BaseException) -> ExchangeReply:
    """The answer to a call whose handler failed in `actor`: it may have been sent on already,
    so a non-idempotent call is `OutcomeUnknown` (the transaction layer resolves it)."""
    reason = f"{actor} failed: {type(error).__name__}: {error}"[:500]
    if request.idempotent:
        return ExchangeFailed(request_id=request.id, error_class="ActorCrashed", message=reason)
    return OutcomeUnknown(request_id=request.id, reason=reason)


@attrs.frozen(slots=True)
class Call:
    """Caller → gatekeeper: run `request` and answer `reply` exactly once."""

    request: ExchangeRequest
    reply: ReplySlot = attrs.field(eq=False)


@attrs.frozen(slots=True)
class Work:
    """Pool → worker: make this call now. `attempt` counts starts after worker crashes."""

    request: ExchangeRequest
    reply: ReplySlot = attrs.field(eq=False)
    attempt: int = 0


@attrs.frozen(slots=True)
class WorkUndelivered:
    """Caller → pool: `worker` was gone before it could start the `work` handed over to the
    caller's thread (`ReplySlot.handoff`); requeue it, nothing was sent."""

    worker: str
    work: Work = attrs.field(eq=False)


@attrs.frozen(slots=True)
class WorkerReady:
    """Worker → pool: idle and ready for work (sent on start and when a new pool asks)."""

    worker: str
    urn: str


@attrs.frozen(slots=True)
class WorkerDown:
    """Supervision listener → pool: the worker crashed or stopped; its call is orphaned."""

    worker: str


@attrs.frozen(slots=True)
class WorkFinished:
    """Worker → pool: the call was answered; the worker is idle again. Feeds the pool's metrics."""

    worker: str
    request_id: str
    method: str
    latency: float
    error: str


@attrs.frozen(slots=True)
class CallOutcome:
    """Worker or pool → gatekeeper: how a call ended, for its breaker (and back-off signals)."""

    request_id: str
    outcome: Outcome
    latency: float
    signal: BackoffSignal | None = None


@attrs.frozen(slots=True)
class ApplyBackoff:
    """→ rate limiter: the venue asked this account to stop sending for a while."""

    signal: BackoffSignal


@attrs.frozen(slots=True)
class PoolStarted:
    """Pool → workers, after a pool restart: announce yourselves again with WorkerReady."""


@attrs.frozen(slots=True)
class GetBucket:
    """Ask the rate limiter for the account's shared bucket (once, at pool start)."""


@attrs.frozen(slots=True)
class GetStatistics:
    """Ask any gateway actor for its statistics record."""

