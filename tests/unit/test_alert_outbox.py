"""The alert store on disk: pending until final, late reports ignored, history kept across
reopening, SQLite synchronous=FULL."""

from __future__ import annotations

from pathlib import Path

from alerts.outbox import AlertStore
from messages.alerts import (
    Alert,
    AlertLevel,
    AlertState,
    DeliveryResult,
    DeliveryStatus,
    LabelMatcher,
    MatchOp,
    Notification,
    NotificationItem,
    NotifyReason,
    Silence,
)
from messages.base import FrozenMap

LABELS = FrozenMap({"rule": "breaker-open", "venue": "sim"})


def notification(nid: str, alert_id: str = "a1") -> Notification:
    item = NotificationItem(alert_id, "breaker-open", AlertLevel.ERROR, LABELS, "open",
                            NotifyReason.NEW, 1.0, None)
    return Notification(nid, LABELS, 2.0, (item,))


def alert(state: AlertState) -> Alert:
    return Alert("a1", "breaker-open", AlertLevel.ERROR, LABELS, "open", state, False, 1.0, 2.0,
                 None, None, None, (), False, 0)


def result(nid: str, channel: str, status: DeliveryStatus, reason: str | None = None):
    return DeliveryResult(nid, channel, status, 1, reason, 3.0)


def test_a_notification_stays_pending_per_channel_until_final_and_survives_reopening(
    tmp_path: Path,
) -> None:
    store = AlertStore(tmp_path)
    assert store.sqlite_synchronous() == 2
    store.add_notification(notification("n1"), ("json", "mailto"), 2.0)
    store.add_notification(notification("n2"), ("json", "mailto"), 2.5)
    assert store.record(result("n1", "json", DeliveryStatus.DELIVERED))
    assert store.record(result("n1", "mailto", DeliveryStatus.RETRYING, "500"))
    store.close()

    reopened = AlertStore(tmp_path)
    pending = [(n.id, r.channel, r.status) for n, r in reopened.pending()]
    assert pending == [("n1", "mailto", DeliveryStatus.RETRYING),
                       ("n2", "json", DeliveryStatus.PENDING),
                       ("n2", "mailto", DeliveryStatus.PENDING)]
    assert reopened.record(result("n1", "mailto", DeliveryStatus.FAILED, "gave up"))
    assert not reopened.record(result("n1", "mailto", DeliveryStatus.RETRYING, "late"))
    assert not reopened.record(result("nope", "json", DeliveryStatus.DELIVERED))
    views = reopened.notifications(10)
    assert [v.notification.id for v in views] == ["n2", "n1"]
    n1 = {d.channel: (d.status, d.reason) for d in views[1].deliveries}
    assert n1 == {"json": (DeliveryStatus.DELIVERED, None),
                  "mailto": (DeliveryStatus.FAILED, "gave up")}
    assert len(reopened.alert_deliveries("a1")) == 4
    reopened.close()


def test_alert_history_and_silences_are_kept(tmp_path: Path) -> None:
    store = AlertStore(tmp_path)
    store.record_alert(alert(AlertState.FIRING))
    store.record_alert(alert(AlertState.RESOLVED))
    silence = Silence("s1", (LabelMatcher("venue", MatchOp.EQUAL, "sim"),), 0.0, 10.0, "ops", "")
    store.save_silence(silence)
    store.close()
    reopened = AlertStore(tmp_path)
    assert [a.state for a in reopened.history(10)] == [AlertState.RESOLVED, AlertState.FIRING]
    assert [a.state for a in reopened.latest_alerts()] == [AlertState.RESOLVED]
    assert reopened.silences() == [silence]
    reopened.close()
