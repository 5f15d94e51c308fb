"""Supervision on real pykka actors: every silent death becomes a supervised crash; names,
shutdown order, escalation, introspection. Waits are on events, never sleeps."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator

import pykka
import pytest

from messages.supervision import (
    ChildCrashed,
    ChildKind,
    ChildRestarted,
    ChildStarted,
    ChildState,
    ChildStopped,
    DeadLetter,
    SupervisorGaveUp,
)
from supervisors import (
    ActorCrashed,
    ActorUnavailable,
    BackoffPolicy,
    ChildSpec,
    NameNotFound,
    NameTaken,
    Restart,
    Strategy,
    SupervisedActor,
    SupervisorSpec,
    Tree,
    UnrecoverableError,
    ask,
    resolve,
    start_tree,
    subscribe,
    tell,
)
from tests.helpers_supervision import (
    Crash,
    EventLog,
    FailingStart,
    Hold,
    Note,
    Ping,
    SlowStart,
    StopSelf,
    Worker,
    extra_threads,
)

FAST = BackoffPolicy(initial=0.001, factor=2.0, max=0.01, jitter=0.1, seed=7)


@pytest.fixture
def log() -> Iterator[EventLog]:
    baseline = set(threading.enumerate())
    events = EventLog()
    trees: list[Tree] = []
    events.trees = trees  # type: ignore[attr-defined]
    yield events
    events.close()
    for tree in trees:
        tree.stop(timeout=5)
    pykka.ActorRegistry.stop_all()
    assert extra_threads(baseline) == []


def run(log: EventLog, spec: SupervisorSpec) -> Tree:
    tree = start_tree(spec)
    log.trees.append(tree)  # type: ignore[attr-defined]
    return tree


def worker(child_id: str, **kwargs: object) -> ChildSpec:
    return ChildSpec(child_id, functools.partial(Worker.start, child_id), **kwargs)


def restarted(log: EventLog, name: str, times: int = 1) -> bool:
    return log.wait_for(lambda: sum(e.name == name for e in log.of(ChildRestarted)) >= times)


def test_crash_in_on_start_is_restarted(log: EventLog) -> None:
    failures = [2]
    spec = SupervisorSpec(
        "node",
        Strategy.ONE_FOR_ONE,
        (ChildSpec("flaky", functools.partial(FailingStart.start, failures)),),
        backoff=FAST,
    )
    run(log, spec)
    assert ask("flaky", Ping(), timeout=5)
    crashes = [e for e in log.of(ChildCrashed) if e.name == "flaky"]
    assert len(crashes) == 2 and crashes[0].reason == "RuntimeError: on_start failed"
    assert failures == [0]


def test_unhandled_exception_in_a_tell_is_a_crash(log: EventLog) -> None:
    run(log, SupervisorSpec("node", Strategy.ONE_FOR_ONE, (worker("w"),), backoff=FAST))
    before = ask("w", Ping(), timeout=2)
    tell("w", Crash(ValueError("bad state")))
    assert restarted(log, "w")
    assert ask("w", Ping(), timeout=2) != before
    assert log.of(ChildCrashed)[0].error_type == "ValueError"


def test_asker_gets_the_error_then_the_child_is_restarted(log: EventLog) -> None:
    run(log, SupervisorSpec("node", Strategy.ONE_FOR_ONE, (worker("w"),), backoff=FAST))
    before = ask("w", Ping(), timeout=2)
    with pytest.raises(KeyError, match="bug"):
        ask("w", Crash(KeyError("bug")), timeout=2)
    # The next ask resolves to the new incarnation: it waits for the restart.
    assert ask("w", Ping(), timeout=2) != before
    assert [e.name for e in log.of(ChildCrashed)] == ["w"]


def test_base_exception_stops_only_that_actor(log: EventLog) -> None:
    run(log, SupervisorSpec("node", Strategy.ONE_FOR_ONE, (worker("a"), worker("b")), backoff=FAST))
    other = resolve("b", 1)
    tell("a", Crash(SystemExit(3)))
    assert restarted(log, "a")
    assert other.is_alive() and resolve("b", 1) is other
    assert ask("a", Ping(), timeout=2)
    assert log.of(ChildCrashed)[0].error_type == "SystemExit"


def test_base_exception_in_an_ask_fails_the_asker_cleanly(log: EventLog) -> None:
    run(log, SupervisorSpec("node", Strategy.ONE_FOR_ONE, (worker("a"),), backoff=FAST))
    with pytest.raises(ActorCrashed, match="KeyboardInterrupt"):
        ask("a", Crash(KeyboardInterrupt()), timeout=2)
    assert restarted(log, "a")


def test_queued_messages_of_a_dead_actor_become_dead_letters(log: EventLog) -> None:
    run(log, SupervisorSpec("node", Strategy.ONE_FOR_ONE, (worker("w"),), backoff=FAST))
    ref = resolve("w", 1)
    entered, release = threading.Event(), threading.Event()
    ref.tell(Hold(entered, release, then_crash=True))
    assert entered.wait(2)
    ref.tell(Note(sender="trading/ledger"))
    pending = ref.ask(Ping(), block=False)
    release.set()
    with pytest.raises(ActorCrashed, match="died before handling Ping"):
        pending.get(timeout=2)
    assert log.wait_for(lambda: len(log.of(DeadLetter)) == 2)
    letters = {(d.message_type, d.sender, d.was_ask) for d in log.of(DeadLetter)}
    assert letters == {("Note", "trading/ledger", False), ("Ping", None, True)}
    assert all(d.recipient == "w" for d in log.of(DeadLetter))
    assert restarted(log, "w")


def test_resolve_waits_for_a_restarting_actor_then_fails_clearly(log: EventLog) -> None:
    slow = BackoffPolicy(initial=0.4, max=0.4, jitter=0.0)
    run(log, SupervisorSpec("node", Strategy.ONE_FOR_ONE, (worker("w"),), backoff=slow))
    before = resolve("w", 1)
    tell("w", Crash())
    assert log.wait_for(lambda: len(log.of(ChildCrashed)) == 1)
    with pytest.raises(ActorUnavailable, match="'w' is restarting"):
        resolve("w", 0.05)
    fresh = resolve("w", 3)
    assert fresh is not before and fresh.is_alive()
    with pytest.raises(NameNotFound, match="'nobody'"):
        resolve("nobody", 1)


def test_names_are_paths_and_unique_across_running_trees(log: EventLog) -> None:
    spec = SupervisorSpec(
        "node",
        Strategy.ONE_FOR_ONE,
        (
            SupervisorSpec(
                "venue:sim", Strategy.REST_FOR_ONE, (worker("gatekeeper"),), backoff=FAST
            ),
            worker("health"),
        ),
        backoff=FAST,
    )
    tree = run(log, spec)
    assert ask("venue:sim/gatekeeper", Ping(), timeout=2)
    assert ask("health", Ping(), timeout=2)
    with pytest.raises(NameTaken, match="health"):
        start_tree(spec)
    tree.stop(5)
    with pytest.raises(NameNotFound):
        resolve("venue:sim/gatekeeper", 0.1)


def test_children_stop_in_reverse_start_order(log: EventLog) -> None:
    journal: list[str] = []
    spec = SupervisorSpec(
        "node",
        Strategy.ONE_FOR_ONE,
        (
            ChildSpec("first", functools.partial(Worker.start, "first", journal)),
            SupervisorSpec(
                "sub",
                Strategy.ONE_FOR_ALL,
                (
                    ChildSpec("inner-1", functools.partial(Worker.start, "inner-1", journal)),
                    ChildSpec("inner-2", functools.partial(Worker.start, "inner-2", journal)),
                ),
            ),
            ChildSpec("last", functools.partial(Worker.start, "last", journal)),
        ),
    )
    tree = run(log, spec)
    assert tree.stop(5)
    assert journal == ["last", "inner-2", "inner-1", "first"]
    assert not tree.failed


def test_a_child_that_overruns_its_shutdown_timeout_is_recorded(log: EventLog) -> None:
    gate = threading.Event()
    spec = SupervisorSpec(
        "node",
        Strategy.ONE_FOR_ONE,
        (
            ChildSpec(
                "stuck", functools.partial(Worker.start, "stuck", None, gate), shutdown_timeout=0.1
            ),
        ),
    )
    tree = run(log, spec)
    assert tree.stop(5)
    stopped = [e for e in log.of(ChildStopped) if e.name == "stuck"]
    assert [e.reason for e in stopped] == ["shutdown_timeout"]
    gate.set()  # let the abandoned thread finish so the fixture sees no thread left behind


def test_one_for_all_and_rest_for_one_restart_the_right_siblings(log: EventLog) -> None:
    spec = SupervisorSpec(
        "node",
        Strategy.ONE_FOR_ONE,
        (
            SupervisorSpec(
                "all", Strategy.ONE_FOR_ALL, (worker("a"), worker("b"), worker("c")), backoff=FAST
            ),
            SupervisorSpec(
                "rest", Strategy.REST_FOR_ONE, (worker("a"), worker("b"), worker("c")), backoff=FAST
            ),
        ),
        backoff=FAST,
    )
    tree = run(log, spec)
    urns = {
        n: ask(n, Ping(), timeout=2)
        for n in ("all/a", "all/b", "all/c", "rest/a", "rest/b", "rest/c")
    }
    tell("all/b", Crash())
    tell("rest/b", Crash())
    assert log.wait_for(lambda: len(log.of(ChildRestarted)) == 5)
    after = {n: ask(n, Ping(), timeout=2) for n in urns}
    changed = {n for n in urns if urns[n] != after[n]}
    assert changed == {"all/a", "all/b", "all/c", "rest/b", "rest/c"}
    restarts = {c.name: c.restarts for s in tree.status().children for c in s.supervisor.children}  # type: ignore[union-attr]
    assert restarts == {"all/a": 1, "all/b": 1, "all/c": 1, "rest/a": 0, "rest/b": 1, "rest/c": 1}


def test_transient_normal_exit_and_temporary_crash_are_not_restarted(log: EventLog) -> None:
    spec = SupervisorSpec(
        "node",
        Strategy.ONE_FOR_ONE,
        (
            worker("transient", restart=Restart.TRANSIENT),
            worker("temporary", restart=Restart.TEMPORARY),
        ),
        backoff=FAST,
    )
    tree = run(log, spec)
    tell("transient", StopSelf())
    tell("temporary", Crash())
    assert log.wait_for(lambda: len(log.of(ChildStopped)) == 2)
    assert {(e.name, e.reason) for e in log.of(ChildStopped)} == {
        ("transient", "normal"),
        ("temporary", "not_restarted"),
    }
    assert {c.state for c in tree.status().children} == {ChildState.STOPPED}
    assert log.of(ChildRestarted) == []
    with pytest.raises(NameNotFound):
        resolve("temporary", 0.1)


def test_intensity_overflow_escalates_to_the_parent(log: EventLog) -> None:
    spec = SupervisorSpec(
        "node",
        Strategy.ONE_FOR_ONE,
        (
            SupervisorSpec(
                "sub", Strategy.ONE_FOR_ONE, (worker("w"),), intensity=1, period=60, backoff=FAST
            ),
            worker("sibling"),
        ),
        intensity=5,
        period=60,
        backoff=FAST,
    )
    tree = run(log, spec)
    sibling = resolve("sibling", 1)
    tell("sub/w", Crash())
    assert restarted(log, "sub/w")
    tell("sub/w", Crash())
    assert log.wait_for(lambda: len(log.of(SupervisorGaveUp)) == 1)
    assert restarted(log, "sub")
    assert ask("sub/w", Ping(), timeout=2)
    status = tree.status()
    assert [c.restarts for c in status.children] == [1, 0]
    assert status.children[0].supervisor.children[0].restarts == 0  # type: ignore[union-attr]
    assert resolve("sibling", 1) is sibling
    assert not tree.failed


def test_root_overflow_stops_the_tree_and_marks_it_failed(log: EventLog) -> None:
    journal: list[str] = []
    spec = SupervisorSpec(
        "node",
        Strategy.ONE_FOR_ONE,
        (
            ChildSpec("keeper", functools.partial(Worker.start, "keeper", journal)),
            ChildSpec("w", functools.partial(Worker.start, "w", journal)),
        ),
        intensity=0,
        backoff=FAST,
    )
    tree = run(log, spec)
    tell("w", Crash())
    assert tree.wait(5)
    assert tree.failed
    assert journal == ["keeper"]  # the crashed one had nothing left to stop
    assert [e.supervisor for e in log.of(SupervisorGaveUp)] == ["node"]
    with pytest.raises(NameNotFound):
        resolve("keeper", 0.1)


def test_status_describes_the_whole_tree(log: EventLog) -> None:
    spec = SupervisorSpec(
        "node",
        Strategy.ONE_FOR_ONE,
        (
            SupervisorSpec(
                "venue:sim", Strategy.REST_FOR_ONE, (worker("gatekeeper"),), backoff=FAST
            ),
            worker("health"),
        ),
        backoff=FAST,
    )
    tree = run(log, spec)
    tell("venue:sim/gatekeeper", Crash(RuntimeError("lost connection")))
    assert restarted(log, "venue:sim/gatekeeper")
    status = tree.status()
    venue, health = status.children
    assert (venue.kind, health.kind) == (ChildKind.SUPERVISOR, ChildKind.WORKER)
    gatekeeper = venue.supervisor.children[0]  # type: ignore[union-attr]
    assert gatekeeper.name == "venue:sim/gatekeeper"
    assert gatekeeper.state is ChildState.RUNNING and gatekeeper.restarts == 1
    assert gatekeeper.last_failure == "RuntimeError: lost connection"
    stats = resolve("health", 1).proxy().statistics().get(timeout=2)
    assert stats.name == "health" and stats.messages_handled >= 0


def test_a_failing_listener_never_reaches_the_supervisor(log: EventLog) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    unsubscribe = subscribe(broken)
    try:
        run(log, SupervisorSpec("node", Strategy.ONE_FOR_ONE, (worker("w"),), backoff=FAST))
        tell("w", Crash())
        assert restarted(log, "w")
        assert ask("w", Ping(), timeout=2)
    finally:
        unsubscribe()


def test_start_returning_an_unsupervised_actor_is_a_crash(log: EventLog) -> None:
    spec = SupervisorSpec(
        "node",
        Strategy.ONE_FOR_ONE,
        (ChildSpec("plain", pykka.ThreadingActor.start),),
        intensity=0,
        backoff=FAST,
    )
    tree = run(log, spec)
    assert tree.wait(5) and tree.failed
    assert log.of(ChildCrashed)[0].error_type == "ChildStartFailed"


def test_a_message_racing_with_the_death_is_refused_not_lost(log: EventLog) -> None:
    run(log, SupervisorSpec("node", Strategy.ONE_FOR_ONE, (worker("w"),), backoff=FAST))
    ref = resolve("w", 1)
    tell("w", Crash())
    assert log.wait_for(lambda: len(log.of(ChildCrashed)) == 1)
    # As if the sender had passed pykka's is_alive() check just before the death:
    with pytest.raises(pykka.ActorDeadError):
        ref.actor_inbox.put(Ping())
    assert restarted(log, "w")


def test_a_start_function_that_raises_is_a_crash_of_that_child(log: EventLog) -> None:
    attempts: list[int] = []

    def start() -> pykka.ActorRef:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("venue not reachable yet")
        return Worker.start("late")

    run(log, SupervisorSpec("node", Strategy.ONE_FOR_ONE, (ChildSpec("late", start),),
                            backoff=FAST))
    assert ask("late", Ping(), timeout=5)
    assert [e.error_type for e in log.of(ChildCrashed)] == ["ConnectionError"] * 2
    assert len(attempts) == 3


def test_an_on_start_past_its_start_timeout_is_a_crash_and_the_late_actor_stops(
    log: EventLog,
) -> None:
    gate, stopped = threading.Event(), []
    spec = SupervisorSpec("node", Strategy.ONE_FOR_ONE, (ChildSpec(
        "slow", functools.partial(SlowStart.start, [gate], stopped), start_timeout=0.2),),
        backoff=FAST)
    try:
        tree = run(log, spec)
        # The crash is recorded and the child restarted while the first on_start still hangs.
        current = ask("slow", Ping(), timeout=5)
        crashes = log.of(ChildCrashed)
        assert [(e.name, e.error_type) for e in crashes] == [("slow", "ChildStartTimeout")]
        assert "start_timeout" in crashes[0].reason
        assert [e.name for e in log.of(ChildStarted)] == ["slow"]  # its first start that worked
        (child,) = tree.status().children
        assert (child.state, child.restarts) == (ChildState.RUNNING, 1)
        assert child.last_failure == crashes[0].reason
    finally:
        gate.set()
    # The late incarnation stops itself (its on_stop runs) and never takes the name.
    assert log.wait_for(lambda: len(stopped) == 1 and sum(
        t.name == "SlowStart[slow]" for t in threading.enumerate()) == 1)
    assert stopped != [current]
    assert ask("slow", Ping(), timeout=1) == current
    assert resolve("slow", 0).actor_urn == current
    assert len(log.of(ChildCrashed)) == 1


def test_a_start_timeout_counts_against_restart_intensity(log: EventLog) -> None:
    gate = threading.Event()
    spec = SupervisorSpec("node", Strategy.ONE_FOR_ONE, (ChildSpec(
        "slow", functools.partial(SlowStart.start, [gate], []), start_timeout=0.1),),
        intensity=0, backoff=FAST)
    try:
        tree = run(log, spec)
        assert tree.wait(5) and tree.failed
        assert [e.error_type for e in log.of(ChildCrashed)] == ["ChildStartTimeout"]
        assert [e.supervisor for e in log.of(SupervisorGaveUp)] == ["node"]
        with pytest.raises(NameNotFound):
            resolve("slow", 0)
    finally:
        gate.set()


class Ticker(SupervisedActor):
    """Counts ticks it schedules for itself with send_after (no timer thread)."""

    def __init__(self, ticks: int) -> None:
        super().__init__()
        self.remaining, self.done = ticks, threading.Event()

    def on_start(self) -> None:
        self.send_after(0.001, "tick")

    def on_receive(self, message: object) -> object:
        if message == "tick":
            self.remaining -= 1
            if self.remaining:
                self.send_after(0.001, "tick")
            else:
                self.done.set()
        return self.done.is_set()


def test_send_after_delivers_messages_to_self_without_threads(log: EventLog) -> None:
    run(log, SupervisorSpec("node", Strategy.ONE_FOR_ONE, (
        ChildSpec("ticker", functools.partial(Ticker.start, 5)),)))
    assert log.wait_for(lambda: ask("ticker", "poll", timeout=1) is True, timeout=5)
    stats = resolve("ticker", 1).proxy().statistics().get(timeout=2)
    assert stats.messages_handled >= 5 and stats.timers_pending == 0


class BrokenState(SupervisedActor):
    """Finds its persisted state damaged at start: no restart can help."""

    def on_start(self) -> None:
        raise UnrecoverableError("state in /tmp/x failed verification")


def test_an_unrecoverable_start_failure_stops_the_tree_once_without_restarts(
        log: EventLog) -> None:
    journal: list[str] = []
    spec = SupervisorSpec(
        "node",
        Strategy.ONE_FOR_ONE,
        (
            ChildSpec("keeper", functools.partial(Worker.start, "keeper", journal)),
            SupervisorSpec("sub", Strategy.REST_FOR_ONE, (
                ChildSpec("broken", BrokenState.start),
                ChildSpec("after", functools.partial(Worker.start, "after", journal)),
            ), intensity=50, period=60, backoff=FAST),
        ),
        intensity=50,
        period=60,
        backoff=FAST,
    )
    tree = run(log, spec)
    assert tree.wait(5)
    assert tree.failed
    assert isinstance(tree.unrecoverable, UnrecoverableError)
    assert "failed verification" in str(tree.unrecoverable)
    assert log.of(ChildRestarted) == []
    assert [e.supervisor for e in log.of(SupervisorGaveUp)] == ["sub", "node"]
    assert not any(e.name == "sub/after" for e in log.of(ChildStarted))  # never started
    assert journal == ["keeper"]
