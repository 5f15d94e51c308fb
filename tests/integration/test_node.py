"""The node tree in-process: parts, the event log, and the root giving up."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import pytest

from ironclad.config import BackoffConfig, Config, HttpConfig, NodeConfig, SupervisionConfig
from ironclad.node import (
    EVENT_LOG_FILE,
    NODE_PARTS,
    build_node_spec,
    event_log_part,
    run_node,
    supervisor_spec,
)
from messages import from_json
from messages.event_log import RecentEvents
from messages.supervision import ChildCrashed, ChildStarted, SupervisionEvent
from supervisors import ChildSpec, Strategy, SupervisedActor, ask, start_tree, tell
from tests.waiting import wait_until


class CrashOnStart(SupervisedActor):
    """Crashes every time it starts: drives the root over its restart intensity."""

    def on_start(self) -> None:
        raise RuntimeError("cannot start")


class Crashes(SupervisedActor):
    """Crashes on any message."""

    def on_receive(self, message: object) -> None:
        raise RuntimeError(f"crashed on {message!r}")


def make_config(tmp_path: Path, intensity: int = 3) -> Config:
    """A node config whose control API takes a free port (never the fixed 8080: parallel
    runs would collide)."""
    return Config(
        node=NodeConfig(data_dir=tmp_path),
        http=HttpConfig(port=0),
        supervision=SupervisionConfig(
            intensity=intensity, period=5.0, backoff=BackoffConfig(initial=0.01, max=0.05)
        ),
    )


def test_node_spec_is_built_from_config_and_parts(tmp_path: Path) -> None:
    config = make_config(tmp_path, intensity=7)
    spec = build_node_spec(config)
    assert spec.id == "node" and spec.strategy is Strategy.ONE_FOR_ONE
    # The top level of DESIGN.md section 1, in start order (stopped in reverse).
    assert [c.id for c in spec.children] == [
        "events", "alerts", "venue:sim", "trading", "health", "control-api",
    ]
    assert spec.intensity == 7 and spec.period == 5.0
    assert spec.backoff.initial == 0.01 and spec.backoff.max == 0.05
    assert NODE_PARTS[0] is event_log_part


def test_a_part_may_leave_itself_out(tmp_path: Path) -> None:
    spec = build_node_spec(make_config(tmp_path), (lambda _cfg: None, event_log_part))
    assert [c.id for c in spec.children] == ["events"]


def test_event_log_records_crashes_in_memory_and_on_disk(tmp_path: Path) -> None:
    config = make_config(tmp_path)

    def crashy_subtree(cfg: Config):
        child = ChildSpec(id="crashy", start=Crashes.start)
        return supervisor_spec(cfg, "work", Strategy.ONE_FOR_ONE, [child])

    tree = start_tree(build_node_spec(config, (event_log_part, crashy_subtree)))
    try:
        tell("work/crashy", "boom")

        def crash_recorded() -> bool:
            events = ask("events", RecentEvents(limit=50), timeout=5)
            return any(isinstance(e, ChildCrashed) and e.name == "work/crashy" for e in events)

        wait_until(crash_recorded)
    finally:
        assert tree.stop(timeout=10)
    lines = (tmp_path / EVENT_LOG_FILE).read_text().splitlines()
    events = [from_json(SupervisionEvent, line) for line in lines]
    assert any(isinstance(e, ChildStarted) and e.name == "work/crashy" for e in events)
    crash = next(e for e in events if isinstance(e, ChildCrashed))
    assert "crashed on 'boom'" in crash.reason


def test_recent_events_limit(tmp_path: Path) -> None:
    tree = start_tree(build_node_spec(make_config(tmp_path)))
    try:
        wait_until(lambda: len(ask("events", RecentEvents(limit=10), timeout=5)) >= 1)
        assert len(ask("events", RecentEvents(limit=1), timeout=5)) == 1
    finally:
        assert tree.stop(timeout=10)


def test_run_node_stops_cleanly_when_asked(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()  # stop as soon as the node is ready
    assert run_node(make_config(tmp_path), stop.wait) == 0
    assert (tmp_path / EVENT_LOG_FILE).exists()


def test_run_node_exits_non_zero_when_the_root_gives_up(tmp_path: Path) -> None:
    config = make_config(tmp_path, intensity=1)
    crasher = functools.partial(ChildSpec, id="crasher", start=CrashOnStart.start)
    stop = threading.Event()  # never set: the node must end by itself
    status = run_node(config, stop.wait, parts=(event_log_part, lambda _cfg: crasher()))
    assert status == 1
    events = [
        from_json(SupervisionEvent, line)
        for line in (tmp_path / EVENT_LOG_FILE).read_text().splitlines()
    ]
    assert any(isinstance(e, ChildCrashed) and e.name == "crasher" for e in events)


@pytest.mark.parametrize("bad", [0, -1])
def test_recent_events_validates_limit(bad: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        RecentEvents(limit=bad)
