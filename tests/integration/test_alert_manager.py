"""The alert manager actor in a real node tree: supervision events become alerts, operator
commands (ack, resolve, silences, lists) are answered as typed replies, and a crash of the
manager loses neither history nor pending notifications."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import attrs
import pytest

from actors.alert_manager import ALERT_MANAGER, publish_alert_event
from ironclad.config import AlertRulesConfig, SupervisionConfig
from ironclad.node import build_node_spec
from messages.alerts import (
    AckAlert,
    Alert,
    AlertCommandRejected,
    AlertList,
    AlertState,
    BreakerClosed,
    BreakerOpened,
    CreateSilence,
    ExpireSilence,
    LabelMatcher,
    ListAlerts,
    ListNotifications,
    ListSilences,
    MatchOp,
    Notification,
    ResolveAlert,
    Silence,
    SilenceList,
)
from messages.codec import from_json
from supervisors import (
    ChildSpec,
    Strategy,
    SupervisedActor,
    SupervisorSpec,
    Tree,
    ask,
    start_tree,
    tell,
)
from tests.helpers_alerts import ALERT_PARTS, alerts_config
from tests.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # apprise: imghdr


class Crashes(SupervisedActor):
    """Crashes on any message: drives restarts."""

    def on_receive(self, message: object) -> None:
        raise RuntimeError(f"crashed on {message!r}")


def crashy_part(_config, intensity: int = 50) -> SupervisorSpec:
    return SupervisorSpec(id="crashy", strategy=Strategy.ONE_FOR_ONE, intensity=intensity,
                          period=60.0, children=(ChildSpec(id="worker", start=Crashes.start),))


def start(tmp_path: Path, *extra_parts, **alert_overrides) -> tuple[Tree, Path]:
    jsonl = tmp_path / "alerts.jsonl"
    config = attrs.evolve(alerts_config(tmp_path, (f"jsonl://{jsonl}",), **alert_overrides),
                          supervision=SupervisionConfig(intensity=20, period=60.0))
    return start_tree(build_node_spec(config, (*ALERT_PARTS, *extra_parts))), jsonl


def notified(jsonl: Path) -> list[Notification]:
    if not jsonl.exists():
        return []
    return [from_json(Notification, line) for line in jsonl.read_text().splitlines()]


def rules_notified(jsonl: Path) -> list[tuple[str, str]]:
    return [(i.rule, i.reason.value) for n in notified(jsonl) for i in n.items]


def alerts(include_resolved: bool = False) -> list[Alert]:
    listed: AlertList = ask(ALERT_MANAGER, ListAlerts(include_resolved), timeout=5)
    return [view.alert for view in listed.alerts]


def test_a_restart_storm_of_real_crashes_raises_one_alert(tmp_path: Path) -> None:
    tree, jsonl = start(tmp_path, crashy_part,
                        rules=AlertRulesConfig(restart_storm_count=2, restart_storm_window=60))
    try:
        for _ in range(6):
            wait_until(lambda: _crash("crashy/worker"))
        wait_until(lambda: ("restart-storm", "new") in rules_notified(jsonl), what="storm")
        assert rules_notified(jsonl).count(("restart-storm", "new")) == 1
        storm = [a for a in alerts() if a.rule == "restart-storm"]
        assert storm[0].labels["supervisor"] == "crashy" and storm[0].state is AlertState.FIRING
    finally:
        tree.stop()


def _crash(name: str) -> bool:
    try:
        ask(name, "boom", timeout=5)
    except RuntimeError:
        return True
    except Exception:  # noqa: BLE001 - restarting: try again
        return False
    return False


def test_a_supervisor_giving_up_raises_a_critical_alert(tmp_path: Path) -> None:
    fragile = functools.partial(crashy_part, intensity=0)
    tree, jsonl = start(tmp_path, fragile)
    try:
        wait_until(lambda: _crash("crashy/worker"))
        wait_until(lambda: ("supervisor-gave-up", "new") in rules_notified(jsonl))
        gave_up = [a for a in alerts() if a.rule == "supervisor-gave-up"][0]
        assert gave_up.level.value == "critical"
        resolved = ask(ALERT_MANAGER, ResolveAlert(gave_up.id, "ops"), timeout=5)
        assert isinstance(resolved, Alert) and resolved.state is AlertState.RESOLVED
        wait_until(lambda: ("supervisor-gave-up", "resolved") in rules_notified(jsonl))
    finally:
        tree.stop()


def test_ack_silence_and_lists_are_typed_replies(tmp_path: Path) -> None:
    tree, jsonl = start(tmp_path)
    try:
        tell(ALERT_MANAGER, BreakerOpened("sim", "trading", "503s", time.time()))
        alert = wait_until(lambda: [a for a in alerts() if a.state is AlertState.FIRING])[0]
        wait_until(lambda: rules_notified(jsonl), what="first notification")
        acked = ask(ALERT_MANAGER, AckAlert(alert.id, "ops", 30.0), timeout=5)
        assert acked.state is AlertState.ACKNOWLEDGED and acked.acked_by == "ops"
        assert acked.acked_until is not None
        again = ask(ALERT_MANAGER, AckAlert("no-such-alert", "ops"), timeout=5)
        assert isinstance(again, AlertCommandRejected) and "no alert" in again.reason

        silence = ask(ALERT_MANAGER, CreateSilence(
            (LabelMatcher("venue", MatchOp.EQUAL, "other"),), 60.0, "ops", "maintenance"),
            timeout=5)
        assert isinstance(silence, Silence)
        tell(ALERT_MANAGER, BreakerOpened("other", "trading", "503s", time.time()))
        muted = wait_until(lambda: [a for a in alerts() if a.labels.get("venue") == "other"])[0]
        assert muted.silenced_by == (silence.id,)
        listed: SilenceList = ask(ALERT_MANAGER, ListSilences(), timeout=5)
        assert [s.id for s in listed.silences] == [silence.id]
        empty = ask(ALERT_MANAGER, CreateSilence((), 60.0, "ops"), timeout=5)
        assert isinstance(empty, AlertCommandRejected)

        ask(ALERT_MANAGER, ExpireSilence(silence.id), timeout=5)  # the silenced alert is due
        wait_until(lambda: any(i.labels.get("venue") == "other"
                               for n in notified(jsonl) for i in n.items), what="unsilenced")
        assert ask(ALERT_MANAGER, ListSilences(), timeout=5).silences == ()
        def delivered() -> list[str]:
            views = ask(ALERT_MANAGER, ListNotifications(limit=10), timeout=5).notifications
            return [d.status.value for v in views for d in v.deliveries]

        wait_until(lambda: delivered() == ["delivered", "delivered"], what="both delivered")
    finally:
        tree.stop()


def test_the_manager_crashing_keeps_history_and_notifications(tmp_path: Path) -> None:
    tree, jsonl = start(tmp_path)
    try:
        tell(ALERT_MANAGER, BreakerOpened("sim", "trading", "503s", time.time()))
        wait_until(lambda: rules_notified(jsonl))
        with pytest.raises(TypeError):
            ask(ALERT_MANAGER, "not a message", timeout=5)  # a bug: the manager crashes
        active = wait_until(lambda: alerts(), what="restarted manager restores the alert")
        assert [a.rule for a in active] == ["breaker-open"]
        assert active[0].state is AlertState.FIRING
        assert ask(ALERT_MANAGER, ListNotifications(), timeout=5).notifications
        tell(ALERT_MANAGER, BreakerClosed("sim", "trading", time.time()))
        wait_until(lambda: ("breaker-open", "resolved") in rules_notified(jsonl),
                   what="the restored alert's resolution is notified")
        assert rules_notified(jsonl).count(("breaker-open", "new")) == 1
    finally:
        tree.stop()


def test_publishing_never_waits_and_reports_a_missing_manager(tmp_path: Path) -> None:
    event = BreakerOpened("sim", "trading", "503s", time.time())
    assert publish_alert_event(event) is False  # no node running: dropped, loudly
    tree, jsonl = start(tmp_path)
    try:
        assert publish_alert_event(event) is True
        wait_until(lambda: ("breaker-open", "new") in rules_notified(jsonl))
    finally:
        tree.stop()
