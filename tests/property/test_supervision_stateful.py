"""Stateful property test of supervision: random crash schedules across a tree of supervisors
with every strategy and restart type, checked against a reference model of OTP semantics.

Several children may crash in one step, and a child may crash while a sibling's restart is
still pending (backoff). Exits then race, so the model is driven by the order in which each
supervisor *processed* them (the order of its ChildCrashed/ChildStopped events, published from
its own thread): given that order, it predicts exactly which children restart, their restart
counts, which crash reports are absorbed, and when a supervisor gives up.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import attrs
import pykka
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from messages.supervision import (
    ChildCrashed,
    ChildRestarted,
    ChildStarted,
    ChildState,
    ChildStopped,
    SupervisorGaveUp,
    SupervisorStatus,
)
from supervisors import (
    BackoffPolicy,
    ChildSpec,
    NameNotFound,
    Restart,
    Strategy,
    SupervisorSpec,
    Tree,
    ask,
    names,
    resolve,
    start_tree,
    tell,
)
from tests.helpers_supervision import Crash, EventLog, Ping, StopSelf, Worker, extra_threads

FAST = BackoffPolicy(initial=0.001, factor=2.0, max=0.004, jitter=0.2, seed=3)
# "rest" restarts slowly, so a crash of an earlier sibling usually lands while one is pending.
SLOW = BackoffPolicy(initial=0.05, factor=1.0, max=0.05, jitter=0.0)
PERIOD = 300.0  # longer than any run: every restart in a run counts against intensity

# supervisor id -> (strategy, child ids); "solo" is a worker directly under the root "node".
LAYOUT = {
    "all": (Strategy.ONE_FOR_ALL, ("a", "b", "c")),
    "rest": (Strategy.REST_FOR_ONE, ("a", "b", "c")),
    "one": (Strategy.ONE_FOR_ONE, ("a", "b")),
    "mix": (Strategy.ONE_FOR_ALL, ("p", "t", "tmp")),
}
RESTART_TYPES = {"mix/t": Restart.TRANSIENT, "mix/tmp": Restart.TEMPORARY}
WORKERS = tuple(f"{sup}/{c}" for sup, (_, kids) in LAYOUT.items() for c in kids) + ("solo",)


def kids_of(sup: str) -> tuple[str, ...]:
    if sup == "node":
        return (*LAYOUT, "solo")
    return tuple(f"{sup}/{kid}" for kid in LAYOUT[sup][1])


def strategy_of(sup: str) -> Strategy:
    return Strategy.ONE_FOR_ONE if sup == "node" else LAYOUT[sup][0]


def restart_type(name: str) -> Restart:
    return RESTART_TYPES.get(name, Restart.PERMANENT)


def affected(strategy: Strategy, kids: tuple[str, ...], failed: str) -> tuple[str, ...]:
    if strategy is Strategy.ONE_FOR_ONE:
        return (failed,)
    if strategy is Strategy.ONE_FOR_ALL:
        return kids
    return kids[kids.index(failed):]


RUNNING, PENDING, STOPPED, FRESH = "running", "pending", "stopped", "fresh"


@attrs.define
class Model:
    """Reference model of the tree: per child its state and restart count, per supervisor the
    restarts counting against its intensity. `apply` consumes supervision events in order."""

    intensity: dict[str, int]
    state: dict[str, str] = attrs.field(factory=dict)
    restarts: dict[str, int] = attrs.field(factory=dict)
    counts: dict[str, int] = attrs.field(factory=dict)
    gave_up: list[str] = attrs.field(factory=list)
    expected_give_up: set[str] = attrs.field(factory=set)
    failed: bool = False
    # This step: children whose own exit was reported, and those a sibling's exit took down.
    reported: set[str] = attrs.field(factory=set)
    absorbed: set[str] = attrs.field(factory=set)

    def __attrs_post_init__(self) -> None:
        for name in (*LAYOUT, *WORKERS):
            self.state[name] = RUNNING
            self.restarts[name] = 0

    def running(self, names_: tuple[str, ...] = WORKERS) -> list[str]:
        return [n for n in names_ if self.state[n] == RUNNING]

    def begin_step(self) -> None:
        self.reported, self.absorbed = set(), set()

    def apply(self, event: Any) -> None:
        if self.failed:
            return  # the root gave up: what its shutdown reports is not a restart decision
        if isinstance(event, ChildCrashed):
            self._exit(event.supervisor, event.name, abnormal=True)
        elif isinstance(event, ChildStopped) and event.reason == "normal":
            self._exit(event.supervisor, event.name, abnormal=False)
        elif isinstance(event, ChildStopped) and event.reason == "not_restarted":
            assert self.state[event.name] == STOPPED, event
        elif isinstance(event, ChildRestarted):
            assert self.state[event.name] == PENDING, event
            self.state[event.name] = RUNNING
            self.restarts[event.name] += 1
            assert event.restarts == self.restarts[event.name], event
        elif isinstance(event, ChildStarted):
            assert self.state[event.name] == FRESH, event
            self.state[event.name] = RUNNING
        elif isinstance(event, SupervisorGaveUp):
            assert event.supervisor in self.expected_give_up, event
            self.expected_give_up.discard(event.supervisor)
            self.gave_up.append(event.supervisor)
            if event.supervisor == "node":
                self.failed = True
                return
            for kid in kids_of(event.supervisor):  # a fresh supervisor starts fresh children
                self.state[kid], self.restarts[kid] = FRESH, 0

    def _exit(self, sup: str, name: str, *, abnormal: bool) -> None:
        assert self.state[name] == RUNNING, f"{name} exited while {self.state[name]}"
        assert name not in self.absorbed, f"{name}'s exit was reported after a sibling took it down"
        self.reported.add(name)
        kind = restart_type(name)
        if kind is Restart.TEMPORARY or (kind is Restart.TRANSIENT and not abnormal):
            self.state[name] = STOPPED
            return
        self.counts[sup] = self.counts.get(sup, 0) + 1
        if self.counts[sup] > self.intensity[sup]:
            self.expected_give_up.add(sup)  # its SupervisorGaveUp resets the children
            self.counts[sup] = 0
            for kid in kids_of(sup):
                if kid != name and self.state[kid] == RUNNING:
                    self.absorbed.add(kid)
            return
        for kid in affected(strategy_of(sup), kids_of(sup), name):
            if self.state[kid] not in (RUNNING, PENDING):
                continue  # stopped for good: not active, not restarted
            if kid != name and self.state[kid] == RUNNING:
                self.absorbed.add(kid)
            if kid != name and restart_type(kid) is Restart.TEMPORARY:
                self.state[kid] = STOPPED  # dropped by the sibling's restart
            else:
                self.state[kid] = PENDING

    def settled(self, targets: set[str]) -> bool:
        """Every target's exit is accounted for and nothing is waiting to restart."""
        return (
            targets <= self.reported | self.absorbed
            and not self.expected_give_up
            and all(s in (RUNNING, STOPPED) for s in self.state.values())
        )

    def expected_status(self) -> dict[str, tuple[ChildState, int]]:
        return {
            name: (ChildState.RUNNING if state == RUNNING else ChildState.STOPPED,
                   self.restarts[name])
            for name, state in self.state.items()
        }


def flatten(status: SupervisorStatus) -> dict[str, tuple[ChildState, int]] | None:
    """name -> (state, restarts) for every child in the tree; None while a subtree is missing."""
    out: dict[str, tuple[ChildState, int]] = {}
    for child in status.children:
        out[child.name] = (child.state, child.restarts)
        if child.supervisor is None and child.name in LAYOUT:
            return None
        if child.supervisor is not None:
            nested = flatten(child.supervisor)
            if nested is None:
                return None
            out.update(nested)
    return out


class SupervisionMachine(RuleBasedStateMachine):
    """Crash workers at random (alone, several at once, during a pending restart; by tell, ask,
    BaseException) and stop transient/temporary ones normally; after each step the tree settles
    exactly as the model says."""

    @initialize(
        root=st.integers(1, 6), all_=st.integers(0, 2), rest=st.integers(0, 3),
        one=st.integers(1, 3), mix=st.integers(0, 2),
    )
    def start(self, root: int, all_: int, rest: int, one: int, mix: int) -> None:
        self.baseline = set(threading.enumerate())
        self.log = EventLog()
        intensity = {"node": root, "all": all_, "rest": rest, "one": one, "mix": mix}
        self.model = Model(intensity=intensity)
        subtrees = tuple(
            SupervisorSpec(
                sup, strategy,
                tuple(ChildSpec(c, functools.partial(Worker.start, f"{sup}/{c}"),
                                restart=restart_type(f"{sup}/{c}")) for c in kids),
                intensity=intensity[sup], period=PERIOD,
                backoff=SLOW if sup == "rest" else FAST)
            for sup, (strategy, kids) in LAYOUT.items())
        spec = SupervisorSpec(
            "node", Strategy.ONE_FOR_ONE,
            (*subtrees, ChildSpec("solo", functools.partial(Worker.start, "solo"))),
            intensity=root, period=PERIOD, backoff=FAST)
        self.tree: Tree = start_tree(spec)
        self.cursor = len(self.log.events)  # the initial starts are not the model's business

    # -- driving the model -----------------------------------------------------------------

    def _consume(self) -> None:
        for published in self.log.since(self.cursor):
            self.cursor += 1
            self.model.apply(published)

    def _settled(self, targets: set[str]) -> bool:
        self._consume()
        if self.model.failed:
            return self.tree.wait(0)
        if not self.model.settled(targets):
            return False
        try:
            seen = flatten(self.tree.status(timeout=1))
        except Exception:  # noqa: BLE001 - a supervisor mid-restart: not settled yet
            return False
        return seen == self.model.expected_status()

    def _settle(self, targets: set[str]) -> None:
        """Wait until the model (fed the step's events) and the tree's status agree."""
        assert self.log.wait_for(lambda: self._settled(targets), timeout=5), (
            f"tree did not settle: model {self.model}, status {self.tree.status(timeout=1)}")

    def _crash(self, targets: list[str], reason: str) -> None:
        """Crash the current incarnations, all resolved before any is hit (none is a restarted
        one); one a sibling's restart already stopped is simply gone (absorbed)."""
        for ref in [resolve(name, 2) for name in targets]:
            try:
                ref.tell(Crash(RuntimeError(reason)))
            except pykka.ActorDeadError:
                pass

    def _processed(self, name: str) -> bool:
        self._consume()
        return name in self.model.reported or self.model.failed

    # -- rules -----------------------------------------------------------------------------

    # Draws never depend on the model: exits race, so the tree's state after a step may differ
    # between runs of one example; a rule whose targets are not running does nothing instead.

    @rule(name=st.sampled_from(WORKERS), how=st.sampled_from(["tell", "ask", "base_exception"]))
    def crash_one(self, name: str, how: str) -> None:
        if self.model.failed or self.model.state[name] != RUNNING:
            return
        self.model.begin_step()
        if how == "tell":
            tell(name, Crash(RuntimeError("scheduled crash")), timeout=2)
        elif how == "base_exception":
            tell(name, Crash(SystemExit(1)), timeout=2)
        else:
            try:
                ask(name, Crash(ValueError("scheduled crash")), timeout=2)
            except ValueError:
                pass
            else:
                raise AssertionError("the asker must get the handler's exception")
        self._settle({name})

    @rule(picked=st.lists(st.sampled_from(WORKERS), min_size=2, max_size=4, unique=True))
    def crash_several_at_once(self, picked: list[str]) -> None:
        targets = [n for n in picked if self.model.state[n] == RUNNING]
        if self.model.failed or not targets:
            return
        self.model.begin_step()
        self._crash(targets, "one of several crashes")
        self._settle(set(targets))
        if self.model.absorbed & set(targets):
            event("a crash was absorbed by a sibling's restart")

    @rule(sup=st.sampled_from(["rest", "one", "mix"]), data=st.data())
    def crash_while_a_restart_is_pending(self, sup: str, data: st.DataObject) -> None:
        kids = kids_of(sup)
        first = data.draw(st.sampled_from(kids), label="first")
        second = data.draw(st.sampled_from([k for k in kids if k != first]), label="second")
        if self.model.failed or self.model.state[first] != RUNNING:
            return
        self.model.begin_step()
        gave_up = len(self.model.gave_up)
        self._crash([first], "first crash")
        # Once the supervisor processed the first exit, that restart is pending (backoff).
        assert self.log.wait_for(lambda: self._processed(first))
        if (self.model.expected_give_up or len(self.model.gave_up) > gave_up
                or self.model.state[second] != RUNNING):
            self._settle({first})  # nothing left to crash during the restart
            return
        pending = [n for n in kids if self.model.state[n] == PENDING]
        self._crash([second], "crash during a pending restart")
        self._settle({first, second})
        if set(pending) & set(affected(strategy_of(sup), kids, second)):
            event("a crash joined a pending restart")

    @rule(name=st.sampled_from(["mix/t", "mix/tmp"]))
    def stop_normally(self, name: str) -> None:
        if self.model.failed or self.model.state[name] != RUNNING:
            return
        self.model.begin_step()
        tell(name, StopSelf(), timeout=2)
        self._settle({name})

    @rule()
    def a_failed_tree_has_stopped(self) -> None:
        if self.model.failed:
            assert self.tree.wait(5)
            assert self.tree.failed

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def every_running_child_is_alive_exactly_once_and_stopped_ones_are_gone(self) -> None:
        live_workers = [r for r in pykka.ActorRegistry.get_all() if r.actor_class is Worker]
        if self.model.failed:
            assert live_workers == []
            return
        running = self.model.running()
        urns = [resolve(name, 2).actor_urn for name in running]
        assert sorted(urns) == sorted(r.actor_urn for r in live_workers)
        assert len(set(urns)) == len(running)
        assert all(ask(name, Ping(), timeout=2) for name in running)
        for name in set(WORKERS) - set(running):
            try:
                resolve(name, 0)
            except NameNotFound:
                continue
            raise AssertionError(f"{name} is stopped for good but its name still resolves")

    @invariant()
    def escalation_follows_intensity(self) -> None:
        gave_up = [e.supervisor for e in self.log.of(SupervisorGaveUp)]
        assert self.tree.failed is self.model.failed
        if self.model.failed:
            # Up to the root's; subtrees may still give up on exits queued while it shut down.
            assert gave_up[: gave_up.index("node") + 1] == self.model.gave_up
            return
        assert gave_up == self.model.gave_up
        assert not self.model.expected_give_up

    def teardown(self) -> None:
        tree = getattr(self, "tree", None)
        if tree is None:
            return
        assert tree.stop(timeout=10)
        self.log.close()
        assert pykka.ActorRegistry.get_all() == []
        assert not any(n.split("/")[0] in (*LAYOUT, "solo") for n in names.registered())
        assert extra_threads(self.baseline) == []


SupervisionMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=10, deadline=None)
test_supervision_stateful = SupervisionMachine.TestCase
