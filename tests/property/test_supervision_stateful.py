"""Stateful property test of supervision: random crash schedules across a tree of supervisors
with every strategy, checked against a reference model of OTP restart semantics."""

from __future__ import annotations

import functools
import threading

import attrs
import pykka
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from messages.supervision import ChildState, SupervisorGaveUp, SupervisorStatus
from supervisors import (
    BackoffPolicy,
    ChildSpec,
    Strategy,
    SupervisorSpec,
    Tree,
    ask,
    names,
    resolve,
    start_tree,
    tell,
)
from tests.helpers_supervision import Crash, EventLog, Ping, Worker, extra_threads

FAST = BackoffPolicy(initial=0.001, factor=2.0, max=0.004, jitter=0.2, seed=3)
PERIOD = 300.0  # longer than any run: every restart in a run counts against intensity

# supervisor id -> (strategy, child ids); "solo" is a worker directly under the root.
LAYOUT = {
    "all": (Strategy.ONE_FOR_ALL, ("a", "b", "c")),
    "rest": (Strategy.REST_FOR_ONE, ("a", "b", "c")),
    "one": (Strategy.ONE_FOR_ONE, ("a", "b")),
}
WORKERS = tuple(f"{sup}/{c}" for sup, (_, kids) in LAYOUT.items() for c in kids) + ("solo",)


def affected(strategy: Strategy, kids: tuple[str, ...], failed: str) -> tuple[str, ...]:
    if strategy is Strategy.ONE_FOR_ONE:
        return (failed,)
    if strategy is Strategy.ONE_FOR_ALL:
        return kids
    return kids[kids.index(failed):]


@attrs.define
class Model:
    """Reference model: restart counts per name and restarts per supervisor instance."""

    intensity: dict[str, int]
    restarts: dict[str, int] = attrs.field(factory=dict)
    sup_restarts: dict[str, int] = attrs.field(factory=dict)
    gave_up: list[str] = attrs.field(factory=list)
    failed: bool = False

    def crash(self, name: str) -> None:
        sup, _, kid = name.rpartition("/")
        if not sup:
            self._root_restart("solo")
            return
        self.sup_restarts[sup] = self.sup_restarts.get(sup, 0) + 1
        if self.sup_restarts[sup] > self.intensity[sup]:
            self.gave_up.append(sup)
            self.sup_restarts[sup] = 0
            for child in LAYOUT[sup][1]:
                self.restarts[f"{sup}/{child}"] = 0  # a fresh supervisor starts fresh children
            self._root_restart(sup)
            return
        strategy, kids = LAYOUT[sup]
        for child in affected(strategy, kids, kid):
            key = f"{sup}/{child}"
            self.restarts[key] = self.restarts.get(key, 0) + 1

    def _root_restart(self, child: str) -> None:
        self.sup_restarts["node"] = self.sup_restarts.get("node", 0) + 1
        if self.sup_restarts["node"] > self.intensity["node"]:
            self.gave_up.append("node")
            self.failed = True
            return
        self.restarts[child] = self.restarts.get(child, 0) + 1


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
    """Crash workers at random (tell, ask, BaseException); after each step the tree settles."""

    @initialize(
        root=st.integers(1, 3), all_=st.integers(0, 2), rest=st.integers(0, 2),
        one=st.integers(1, 3),
    )
    def start(self, root: int, all_: int, rest: int, one: int) -> None:
        self.baseline = set(threading.enumerate())
        self.log = EventLog()
        intensity = {"node": root, "all": all_, "rest": rest, "one": one}
        self.model = Model(intensity=intensity)
        subtrees = tuple(
            SupervisorSpec(
                sup, strategy,
                tuple(ChildSpec(c, functools.partial(Worker.start, f"{sup}/{c}")) for c in kids),
                intensity=intensity[sup], period=PERIOD, backoff=FAST)
            for sup, (strategy, kids) in LAYOUT.items())
        spec = SupervisorSpec(
            "node", Strategy.ONE_FOR_ONE,
            (*subtrees, ChildSpec("solo", functools.partial(Worker.start, "solo"))),
            intensity=root, period=PERIOD, backoff=FAST)
        self.tree: Tree = start_tree(spec)

    def _settled(self) -> bool:
        if self.model.failed:
            return self.tree.wait(0)
        try:
            seen = flatten(self.tree.status(timeout=1))
        except Exception:  # noqa: BLE001 - a supervisor mid-restart: not settled yet
            return False
        if seen is None:
            return False
        expected = {n: (ChildState.RUNNING, self.model.restarts.get(n, 0)) for n in seen}
        return seen == expected

    def _after(self, name: str) -> None:
        self.model.crash(name)
        assert self.log.wait_for(self._settled, timeout=5), (
            f"tree did not settle: model {self.model}, status {self.tree.status(timeout=1)}")

    @precondition(lambda self: not self.model.failed)
    @rule(name=st.sampled_from(WORKERS))
    def crash_in_tell(self, name: str) -> None:
        tell(name, Crash(RuntimeError("scheduled crash")), timeout=2)
        self._after(name)

    @precondition(lambda self: not self.model.failed)
    @rule(name=st.sampled_from(WORKERS))
    def crash_in_ask(self, name: str) -> None:
        try:
            ask(name, Crash(ValueError("scheduled crash")), timeout=2)
        except ValueError:
            pass
        else:
            raise AssertionError("the asker must get the handler's exception")
        self._after(name)

    @precondition(lambda self: not self.model.failed)
    @rule(name=st.sampled_from(WORKERS))
    def base_exception(self, name: str) -> None:
        tell(name, Crash(SystemExit(1)), timeout=2)
        self._after(name)

    @precondition(lambda self: self.model.failed)
    @rule()
    def failed_tree_has_stopped(self) -> None:
        assert self.tree.wait(5)
        assert self.tree.failed

    @invariant()
    def every_permanent_child_is_alive_exactly_once(self) -> None:
        live_workers = [r for r in pykka.ActorRegistry.get_all() if r.actor_class is Worker]
        if self.model.failed:
            assert live_workers == []
            return
        urns = [resolve(name, 2).actor_urn for name in WORKERS]
        assert sorted(urns) == sorted(r.actor_urn for r in live_workers)
        assert len(set(urns)) == len(WORKERS)
        assert all(ask(name, Ping(), timeout=2) for name in WORKERS)

    @invariant()
    def escalation_follows_intensity(self) -> None:
        gave_up = [e.supervisor for e in self.log.of(SupervisorGaveUp)]
        assert gave_up == self.model.gave_up
        assert self.tree.failed is self.model.failed

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
