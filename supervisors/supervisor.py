"""The Supervisor actor: starts children in order, restarts them, stops them in reverse order.

It never blocks its mailbox waiting for a backoff: a restart is a message it sends itself after
the delay (OTP try_again_restart). It blocks only while a child starts (bounded by the child's
start timeout, as OTP start_link does) and while children stop (bounded by shutdown timeouts).
"""

from __future__ import annotations

import random
import time
from typing import Any

import attrs
import pykka
from loguru import logger

from messages.supervision import (
    ChildCrashed,
    ChildKind,
    ChildRestarted,
    ChildStarted,
    ChildState,
    ChildStatus,
    ChildStopped,
    DeadLetter,
    SupervisorGaveUp,
    SupervisorStatus,
)
from supervisors import names
from supervisors.actor import Link, SupervisedActor, linked
from supervisors.core import GiveUp, NoRestart, RestartPlan, SupervisorCore
from supervisors.errors import (
    ChildStartFailed,
    ChildStartTimeout,
    SupervisorGaveUpError,
    UnrecoverableError,
    unrecoverable_cause,
)
from supervisors.events import publish
from supervisors.specs import ChildSpec, SupervisorSpec


@attrs.frozen(slots=True)
class _ChildExited:
    child_id: str
    link: Link


@attrs.frozen(slots=True)
class _RestartDue:
    child_ids: tuple[str, ...]
    token: int
    delay: float


@attrs.frozen(slots=True)
class StatusRequest:
    """Ask a supervisor for its SupervisorStatus."""


class _Child:
    """The supervisor's mutable record of one child slot."""

    def __init__(self, spec: ChildSpec | SupervisorSpec, name: str) -> None:
        self.spec = spec
        self.name = name
        self.kind = ChildKind.SUPERVISOR if isinstance(spec, SupervisorSpec) else ChildKind.WORKER
        self.state = ChildState.STARTING
        self.ref: Any = None
        self.link: Link | None = None
        self.restarts = 0
        self.last_failure: str | None = None
        self.pending_token: int | None = None
        self.ever_started = False


_FAILURE_TEXT_LIMIT = 300


def _describe_failure(failure: BaseException) -> str:
    """One line for status and events; capped, since exception texts can be long (or leak)."""
    text = " ".join(str(failure).split())[:_FAILURE_TEXT_LIMIT]
    return f"{type(failure).__name__}: {text}" if text else type(failure).__name__


class Supervisor(SupervisedActor):
    """An OTP supervisor for `spec`; children are named `<prefix>/<child id>` (or the bare id)."""

    def __init__(self, spec: SupervisorSpec, prefix: str = "") -> None:
        super().__init__()
        self.spec = spec
        self.prefix = prefix
        self.label = prefix or spec.id
        self.children = [
            _Child(c, f"{prefix}/{c.id}" if prefix else c.id) for c in spec.children
        ]
        self.by_id = {c.spec.id: c for c in self.children}
        rng = random.Random(spec.backoff.seed)
        self.core = SupervisorCore(
            strategy=spec.strategy,
            restarts={c.id: c.restart for c in spec.children},
            intensity=spec.intensity,
            period=spec.period,
            backoff=spec.backoff,
            rng=rng,
        )
        self._tokens = 0
        self._log = logger.bind(supervisor=self.label)

    # -- lifecycle -------------------------------------------------------------------------

    def on_start(self) -> None:
        for child in self.children:
            if not self._start_child(child) and child.link is not None and unrecoverable_cause(
                    child.link.failure) is not None:
                break  # this supervisor gives up at once: starting the rest would be in vain

    def on_stop(self) -> None:
        self._stop_all("shutdown")
        names.release([c.name for c in self.children])

    def on_failure(self, *exc_info: Any) -> None:
        # Giving up already stopped the children; a bug in the supervisor must not orphan them.
        self._stop_all("shutdown")

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _ChildExited):
            return self._on_child_exited(message)
        if isinstance(message, _RestartDue):
            return self._on_restart_due(message)
        if isinstance(message, StatusRequest):
            return self.status()
        return super().on_receive(message)

    def status(self) -> SupervisorStatus:
        """This supervisor's children as it sees them now (nested supervisors not expanded)."""
        return SupervisorStatus(
            id=self.spec.id,
            name=self.label,
            strategy=self.spec.strategy.value,
            restarts_in_period=self.core.restarts_in_period(time.monotonic()),
            children=tuple(
                ChildStatus(
                    id=c.spec.id,
                    name=c.name,
                    kind=c.kind,
                    state=c.state,
                    restarts=c.restarts,
                    last_failure=c.last_failure,
                )
                for c in self.children
            ),
        )

    # -- starting --------------------------------------------------------------------------

    def _start_function(self, child: _Child) -> Any:
        spec = child.spec
        if isinstance(spec, SupervisorSpec):
            return Supervisor.start(spec, child.name)
        return spec.start()

    def _start_child(self, child: _Child, *, delay: float = 0.0) -> bool:
        """Start one child and wait for its on_start; False if it failed (a crash is queued)."""
        link = Link(child.name, self._exit_notifier(child.spec.id))
        child.link = link
        child.pending_token = None
        if child.state is ChildState.RESTARTING:
            child.restarts += 1
        try:
            with linked(link):
                ref = self._start_function(child)
            if link.urn is None or link.urn != getattr(ref, "actor_urn", None):
                if isinstance(ref, pykka.ActorRef):
                    ref.stop(block=False)
                raise ChildStartFailed(
                    f"start of child {child.name!r} returned {ref!r}, not a started SupervisedActor"
                )
        except BaseException as exc:  # noqa: BLE001 - a start that raises is that child's crash
            self._log.bind(context="start_error", child=child.name).opt(exception=exc).error(
                "child {} failed to start", child.name
            )
            link.failure = exc
            link.exited.set()
            child.state = ChildState.STARTING
            self.actor_ref.tell(_ChildExited(child.spec.id, link))
            return False
        timeout = child.spec.start_timeout
        if not link.started.wait(timeout) and link.abandon():
            # A crash now; the late actor stops itself if on_start ever returns (Link.abandon).
            self._log.bind(context="start_error", child=child.name).error(
                "child {} did not finish on_start within {}s", child.name, timeout
            )
            link.failure = ChildStartTimeout(
                f"{child.name!r} did not finish on_start within {timeout}s (start_timeout)"
            )
            child.state = ChildState.STARTING
            self.actor_ref.tell(_ChildExited(child.spec.id, link))
            return False
        child.ref = ref
        child.state = ChildState.RUNNING
        if not link.start_ok:
            return False  # on_start crashed: its exit is queued and handled as a crash
        names.register(child.name, ref)
        self._log.bind(context="child_started", child=child.name).debug(
            "child {} started (restarts {})", child.name, child.restarts
        )
        if child.ever_started:
            publish(ChildRestarted(self.label, child.spec.id, child.name, child.restarts, delay,
                                   time.time()))
        else:
            child.ever_started = True
            publish(ChildStarted(self.label, child.spec.id, child.name, time.time()))
        return True

    def _exit_notifier(self, child_id: str) -> Any:
        supervisor = self.actor_ref

        def notify(link: Link) -> None:
            try:
                supervisor.tell(_ChildExited(child_id, link))
            except Exception:  # noqa: BLE001 - supervisor already stopping: it waits on `exited`
                pass

        return notify

    # -- crashes and restarts --------------------------------------------------------------

    def _on_child_exited(self, message: _ChildExited) -> None:
        child = self.by_id[message.child_id]
        link = message.link
        self._publish_dead_letters(child, link)
        if child.link is not link or link.expected_exit:
            return
        if link.thread is not None and not link.abandoned:
            link.thread.join(child.spec.shutdown_timeout)
        failure = link.failure
        child.ref = None
        child.link = None
        now = time.monotonic()
        if failure is not None:
            child.last_failure = _describe_failure(failure)
            publish(ChildCrashed(self.label, child.spec.id, child.name, type(failure).__name__,
                                 child.last_failure, time.time()))
        active = {
            c.spec.id
            for c in self.children
            if c is not child and c.state in (ChildState.RUNNING, ChildState.RESTARTING)
        }
        unrecoverable = unrecoverable_cause(failure)
        decision = self.core.child_exited(
            child.spec.id, abnormal=failure is not None, active=active, now=now,
            unrecoverable=unrecoverable is not None,
        )
        if isinstance(decision, NoRestart):
            child.state = ChildState.STOPPED
            self._forget(child)
            publish(ChildStopped(self.label, child.spec.id, child.name,
                                 "normal" if failure is None else "not_restarted", time.time()))
            return
        if isinstance(decision, GiveUp):
            self._give_up(decision, child, unrecoverable)
            return
        self._apply_plan(decision)

    def _apply_plan(self, plan: RestartPlan) -> None:
        for child_id in plan.stop:
            self._stop_child(self.by_id[child_id], "restart")
        for child_id in plan.dropped:
            child = self.by_id[child_id]
            child.state = ChildState.STOPPED
            self._forget(child)
        self._tokens += 1
        for child_id in plan.start:
            child = self.by_id[child_id]
            child.state = ChildState.RESTARTING
            child.pending_token = self._tokens
            names.mark_down(child.name)
        self._log.bind(context="restart_scheduled").info(
            "restarting {} in {:.3f}s", ", ".join(plan.start), plan.delay
        )
        self.send_after(plan.delay, _RestartDue(plan.start, self._tokens, plan.delay))

    def _on_restart_due(self, message: _RestartDue) -> None:
        for child_id in message.child_ids:
            child = self.by_id[child_id]
            if child.state is not ChildState.RESTARTING or child.pending_token != message.token:
                continue
            if not self._start_child(child, delay=message.delay):
                return

    def _give_up(self, decision: GiveUp, culprit: _Child,
                 unrecoverable: UnrecoverableError | None) -> None:
        reason = culprit.last_failure or "exited"
        if decision.unrecoverable:
            self._log.bind(context="max_restart_intensity", child=culprit.name).error(
                "child {} failed unrecoverably; giving up without restarting", culprit.name
            )
            message = (f"supervisor {self.label!r} gave up at once: {culprit.name!r} failed "
                       f"unrecoverably: {reason}")
        else:
            self._log.bind(context="max_restart_intensity", child=culprit.name).error(
                "restart intensity exceeded ({} restarts in {}s); giving up",
                decision.restarts_in_period, self.spec.period,
            )
            message = (f"supervisor {self.label!r} exceeded {self.spec.intensity} restarts in "
                       f"{self.spec.period}s; last failure of {culprit.name!r}: {reason}")
        publish(SupervisorGaveUp(self.label, decision.restarts_in_period, self.spec.period,
                                 reason, time.time()))
        self._stop_all("shutdown")
        for child in self.children:
            names.mark_down(child.name)
        raise SupervisorGaveUpError(message, unrecoverable)

    # -- stopping --------------------------------------------------------------------------

    def _stop_all(self, reason: str) -> None:
        for child in reversed(self.children):
            self._stop_child(child, reason)
            if child.state is not ChildState.STOPPED:
                child.state = ChildState.STOPPED

    def _stop_child(self, child: _Child, reason: str) -> None:
        """Stop request, wait up to the shutdown timeout, join the thread; record a timeout."""
        link, ref = child.link, child.ref
        child.pending_token = None
        if link is None or ref is None:
            child.state = ChildState.STOPPED
            return
        link.expected_exit = True
        try:
            ref.stop(block=False)
        except pykka.ActorDeadError:
            pass  # already dead: its exit is recorded on the link

        timeout = child.spec.shutdown_timeout
        deadline = time.monotonic() + timeout
        stopped = link.exited.wait(timeout)
        if stopped and link.thread is not None:
            link.thread.join(max(0.0, deadline - time.monotonic()))
            stopped = not link.thread.is_alive()
        child.ref = None
        child.link = None
        child.state = ChildState.STOPPED
        self._publish_dead_letters(child, link)
        if not stopped:
            self._log.bind(context="shutdown_error", child=child.name).error(
                "child {} did not stop within {}s; abandoning it", child.name, timeout
            )
        if child.kind is ChildKind.SUPERVISOR:
            names.release_under(child.name)
        publish(ChildStopped(self.label, child.spec.id, child.name,
                             reason if stopped else "shutdown_timeout", time.time()))

    def _forget(self, child: _Child) -> None:
        names.release([child.name])
        if child.kind is ChildKind.SUPERVISOR:
            names.release_under(child.name)

    def _publish_dead_letters(self, child: _Child, link: Link) -> None:
        letters, link.dead_letters = link.dead_letters, ()
        for letter in letters:
            self._log.bind(context="dead_letter", child=child.name).warning(
                "dead letter to {}: {} from {}", child.name, letter.message_type, letter.sender
            )
            publish(DeadLetter(child.name, letter.message_type, letter.sender, letter.was_ask,
                               time.time()))
