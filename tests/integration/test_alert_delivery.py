"""Real delivery: apprise's json:// to a local HTTP receiver and mailto:// to a local SMTP
server, a JSON-lines file, the log; a failing receiver trips only its own channel's breaker
and catches up after it recovers; the outbox survives a restart of the alerts subtree."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from actors.alerts_tree import ALERT_MANAGER
from ironclad.node import build_node_spec
from messages.alerts import (
    AlertList,
    BreakerClosed,
    BreakerOpened,
    DeliveryStatus,
    ListAlerts,
    ListNotifications,
    Notification,
    NotificationList,
)
from messages.codec import from_json
from supervisors import Tree, ask, start_tree, tell
from tests.helpers_alerts import ALERT_PARTS, SmtpReceiver, WebhookReceiver, alerts_config
from tests.waiting import wait_until

#: apprise imports the deprecated imghdr module.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def webhook():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp():
    receiver = SmtpReceiver().start()
    yield receiver
    receiver.stop()


def start(tmp_path: Path, channels: tuple[str, ...], **overrides) -> Tree:
    return start_tree(build_node_spec(alerts_config(tmp_path, channels, **overrides),
                                      ALERT_PARTS))


def notifications() -> NotificationList:
    return ask(ALERT_MANAGER, ListNotifications(), timeout=5)


def results(channel: str) -> list:
    return [d for view in notifications().notifications for d in view.deliveries
            if d.channel == channel]


def test_every_channel_gets_the_alert_and_its_resolution(tmp_path, webhook, smtp) -> None:
    jsonl = tmp_path / "out" / "alerts.jsonl"
    tree = start(tmp_path, (webhook.url, smtp.url, f"jsonl://{jsonl}", "log://"))
    try:
        tell(ALERT_MANAGER, BreakerOpened("sim", "trading", "5 of 10 calls failed", time.time()))
        wait_until(lambda: webhook.bodies, what="webhook notified")
        body = webhook.bodies[0]
        assert "breaker-open" in body["title"] and body["type"] == "failure"
        assert "breaker trading of venue sim is open" in body["message"]
        wait_until(lambda: smtp.subjects(), what="e-mail received")
        assert smtp.subjects()[0] == body["title"]
        assert smtp.messages[0].rcpt_tos == ["ops@example.com"]
        line = wait_until(lambda: jsonl.exists() and jsonl.read_text().splitlines())[0]
        assert from_json(Notification, line).items[0].rule == "breaker-open"
        views = wait_until(lambda: [v for v in notifications().notifications if len(
            [d for d in v.deliveries if d.status is DeliveryStatus.DELIVERED]) == 4])
        assert {d.channel for d in views[0].deliveries} == {"json", "mailto", "jsonl", "log"}
        listed: AlertList = ask(ALERT_MANAGER, ListAlerts(), timeout=5)
        assert [v.alert.rule for v in listed.alerts] == ["breaker-open"]
        assert {d.channel for d in listed.alerts[0].deliveries} >= {"json", "mailto"}

        tell(ALERT_MANAGER, BreakerClosed("sim", "trading", time.time()))
        wait_until(lambda: len(webhook.bodies) == 2, what="resolved notification")
        assert webhook.bodies[1]["type"] == "success" and "resolved" in webhook.bodies[1]["title"]
        wait_until(lambda: len(smtp.subjects()) == 2)
        assert len(webhook.bodies) == 2  # exactly one firing and one resolved notification
    finally:
        tree.stop()


def test_a_failing_receiver_trips_its_breaker_others_deliver_and_it_catches_up(
    tmp_path, webhook
) -> None:
    failing = WebhookReceiver().start()
    failing.status = 500
    failing_name = "broken"
    tree = start(tmp_path, (webhook.url, f"{failing_name}={failing.url}"))
    try:
        tell(ALERT_MANAGER, BreakerOpened("sim", "trading", "503s", time.time()))
        wait_until(lambda: webhook.bodies, what="the healthy channel delivers")
        # the broken channel's breaker opens: a channel-failing alert reaches the healthy one
        wait_until(lambda: any("channel-failing" in t for t in webhook.titles()), timeout=15,
                   what="channel-failing alert delivered by the healthy channel")
        retrying = wait_until(lambda: [r for r in results(failing_name)
                                       if r.status is DeliveryStatus.RETRYING])
        assert any("500" in (r.reason or "") or "circuit open" in (r.reason or "")
                   for r in retrying)
        attempts_while_open = failing.attempts
        assert attempts_while_open >= 2  # tried, failed, then the breaker held further sends

        failing.status = 200  # the receiver recovers: the queued notifications go through
        wait_until(lambda: any("breaker-open" in t for t in failing.texts()), timeout=15,
                   what="the recovered channel catches up")
        wait_until(lambda: all(r.status is DeliveryStatus.DELIVERED
                               for r in results(failing_name)), timeout=15)
        # its recovery resolves the channel-failing alert, notified on the healthy channel
        wait_until(lambda: any("channel-failing" in t and "resolved" in t
                               for t in webhook.titles()), timeout=15)
    finally:
        tree.stop()
        failing.stop()


def test_a_receiver_that_is_down_fails_for_good_after_the_retries(tmp_path, webhook) -> None:
    down = WebhookReceiver()  # never started: connection refused
    tree = start(tmp_path, (webhook.url, f"down={down.url}"), retry_attempts=2,
                 breaker_window=4, breaker_open_seconds=0.1)
    try:
        tell(ALERT_MANAGER, BreakerOpened("sim", "trading", "503s", time.time()))
        wait_until(lambda: webhook.bodies)
        failed = wait_until(lambda: [r for r in results("down")
                                     if r.status is DeliveryStatus.FAILED], timeout=15)
        assert failed[0].attempts == 2 and "json://" in failed[0].reason
        wait_until(lambda: any("channel-failing" in t for t in webhook.titles()), timeout=15)
    finally:
        tree.stop()


def test_outbox_survives_a_restart_and_delivers_what_was_pending(tmp_path) -> None:
    receiver = WebhookReceiver()  # down during the first run
    tree = start(tmp_path, (receiver.url,), retry_attempts=1000)
    try:
        tell(ALERT_MANAGER, BreakerOpened("sim", "trading", "503s", time.time()))
        wait_until(lambda: [r for r in results("json") if r.status is DeliveryStatus.RETRYING],
                   what="delivery retrying while the receiver is down")
    finally:
        assert tree.stop(timeout=10)
    receiver.start()
    try:
        tree = start(tmp_path, (receiver.url,))
        try:
            wait_until(lambda: any("breaker-open" in t for t in receiver.texts()), timeout=15,
                       what="pending notification delivered after the restart")
            wait_until(lambda: results("json") and all(
                r.status is DeliveryStatus.DELIVERED for r in results("json")))
            history: AlertList = ask(ALERT_MANAGER, ListAlerts(include_resolved=True), timeout=5)
            assert [v.alert.rule for v in history.alerts] == ["breaker-open"]
        finally:
            tree.stop()
    finally:
        receiver.stop()


def test_throttle_merges_notifications_on_a_channel(tmp_path, webhook) -> None:
    tree = start(tmp_path, (webhook.url,), throttle=1.0)
    try:
        for venue in ("a", "b", "c", "d", "e"):  # five groups: five notifications at once
            tell(ALERT_MANAGER, BreakerOpened(venue, "trading", "503s", time.time()))
        wait_until(lambda: sum(t.count("breaker-open") for t in webhook.texts()) == 5,
                   what="all five delivered")
        assert len(webhook.bodies) <= 2  # at most one message, then one merged after 1 s
        wait_until(lambda: [r.status for r in results("json")] == [DeliveryStatus.DELIVERED] * 5,
                   what="five delivered results recorded")
    finally:
        tree.stop()


def test_a_hanging_receiver_blocks_neither_the_manager_nor_other_channels(
    tmp_path, webhook
) -> None:
    with socket.socket() as hanging:  # accepts connections (backlog), never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(16)
        port = hanging.getsockname()[1]
        tree = start(tmp_path, (webhook.url, f"hang=json://127.0.0.1:{port}/x?rto=4&cto=4"))
        try:
            tell(ALERT_MANAGER, BreakerOpened("sim", "trading", "503s", time.time()))
            started = time.monotonic()
            wait_until(lambda: webhook.bodies, timeout=5, what="healthy channel delivers")
            assert time.monotonic() - started < 3.0  # not held behind the 4 s read timeout
            asked = time.monotonic()
            assert ask(ALERT_MANAGER, ListAlerts(), timeout=1).alerts  # the manager answers
            assert time.monotonic() - asked < 1.0
            wait_until(lambda: [r for r in results("hang")
                                if r.status is DeliveryStatus.RETRYING], timeout=15)
        finally:
            tree.stop()
