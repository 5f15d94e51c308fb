"""Start a whole supervision tree from its spec, and stop, wait for or inspect it."""

from __future__ import annotations

import threading
import time

import attrs
import pykka
from loguru import logger

from messages.supervision import ChildKind, DeadLetter, SupervisorStatus
from supervisors import names
from supervisors.actor import Link, linked
from supervisors.errors import TreeFailed, UnrecoverableError, unrecoverable_cause
from supervisors.events import publish
from supervisors.specs import SupervisorSpec, check_child_specs
from supervisors.supervisor import StatusRequest, Supervisor


class Tree:
    """A running supervision tree; `failed` turns True when the root gave up or crashed."""

    def __init__(self, spec: SupervisorSpec, names_owned: tuple[str, ...]) -> None:
        self.spec = spec
        self._names = names_owned
        self._link = Link(None, self._root_exited)
        self._ref: pykka.ActorRef | None = None
        self._failed = False
        self._done = threading.Event()

    @property
    def failed(self) -> bool:
        """True once the root exited abnormally (restart intensity exceeded at the top)."""
        return self._failed

    @property
    def unrecoverable(self) -> UnrecoverableError | None:
        """The UnrecoverableError that stopped the tree at once, if that is why it failed."""
        return unrecoverable_cause(self._link.failure)

    @property
    def root(self) -> pykka.ActorRef:
        """The root supervisor's ref (for asks such as StatusRequest)."""
        assert self._ref is not None
        return self._ref

    def _root_exited(self, link: Link) -> None:
        self._failed = link.failure is not None
        for letter in link.dead_letters:
            publish(DeadLetter(self.spec.id, letter.message_type, letter.sender, letter.was_ask,
                               time.time()))
        names.release(self._names)
        if self._failed:
            logger.bind(context="max_restart_intensity", supervisor=self.spec.id).error(
                "supervision tree {} failed: {}", self.spec.id, link.failure
            )
        self._done.set()

    def _start(self) -> None:
        with linked(self._link):
            self._ref = Supervisor.start(self.spec)
        if not self._link.started.wait(self.spec.start_timeout):
            self.stop()
            raise TreeFailed(
                f"tree {self.spec.id!r} did not start within {self.spec.start_timeout}s"
            )
        if not self._link.start_ok:
            self.wait(self.spec.shutdown_timeout)
            raise TreeFailed(f"root supervisor {self.spec.id!r} crashed while starting: "
                             f"{self._link.failure!r}")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the tree has stopped (by stop() or failure); True if it has."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._done.wait(timeout):
            return False
        thread = self._link.thread
        if thread is not None:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            return not thread.is_alive()
        return True

    def stop(self, timeout: float | None = None) -> bool:
        """Stop children in reverse start order, each within its shutdown timeout; True if done."""
        if self._ref is not None:
            try:
                self._ref.stop(block=False)
            except pykka.ActorDeadError:
                pass  # the root already exited (gave up or stopped)
        return self.wait(self.spec.shutdown_timeout if timeout is None else timeout)

    def status(self, timeout: float = 5.0) -> SupervisorStatus:
        """The whole tree's status: each nested supervisor's status is filled in, recursively."""
        deadline = time.monotonic() + timeout
        status: SupervisorStatus = self.root.ask(StatusRequest(), block=True, timeout=timeout)
        return _expand(status, deadline)


def supervisor_status(name: str, timeout: float = 5.0) -> SupervisorStatus:
    """Status of the nested supervisor registered as `name`, with its own subtree expanded."""
    deadline = time.monotonic() + timeout
    return _expand(names.ask(name, StatusRequest(), timeout=timeout), deadline)


def _expand(status: SupervisorStatus, deadline: float) -> SupervisorStatus:
    children = []
    for child in status.children:
        if child.kind is ChildKind.SUPERVISOR:
            try:
                nested = supervisor_status(child.name, max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - a restarting subtree is shown without its children
                nested = None
            child = attrs.evolve(child, supervisor=nested)
        children.append(child)
    return attrs.evolve(status, children=tuple(children))


def start_tree(spec: SupervisorSpec) -> Tree:
    """Validate `spec`, then start the root supervisor and all children in order; return the tree.

    Returns once every child has finished on_start (or crashed and been handed to its supervisor).
    Raises InvalidChildSpec before starting anything, NameTaken if another running tree owns a
    name, TreeFailed if the root supervisor itself crashed while starting.
    """
    owned = check_child_specs(spec)
    names.claim(owned)
    tree = Tree(spec, owned)
    try:
        tree._start()
    except BaseException:
        names.release(owned)
        raise
    return tree
