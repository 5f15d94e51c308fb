"""The durable alert store: outbox of notifications per channel, delivery results, history.

One diskcache directory (``<data_dir>/alerts``) with SQLite ``synchronous=FULL`` and every value
kept inside SQLite, as the journal does: a notification written here survives a crash or
restart until each of its channels has a final result (delivered, or failed with a reason).
Every alert state change and every notification is kept, newest readable first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import diskcache

from messages.alerts import (
    Alert,
    DeliveryResult,
    DeliveryStatus,
    Notification,
    NotificationView,
    Silence,
)
from messages.codec import from_json, to_json

__all__ = ["AlertStore"]

_CACHE_SETTINGS: dict[str, Any] = {
    "eviction_policy": "none",
    "cull_limit": 0,
    "size_limit": 1 << 62,
    "statistics": 0,
    "sqlite_journal_mode": "wal",
    "sqlite_synchronous": 2,  # FULL
    "disk_min_file_size": 1 << 30,
}
#: How many recent notification ids are kept per alert for the alert view.
_PER_ALERT = 10


class AlertStore:
    """Outbox and history. Not thread-safe: the alert manager actor owns it."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(directory), **_CACHE_SETTINGS)

    def close(self) -> None:
        self._cache.close()

    # -- outbox -------------------------------------------------------------------------------

    def add_notification(
        self, notification: Notification, channels: tuple[str, ...], now: float
    ) -> None:
        """Store ``notification`` as pending on every channel, in one durable transaction."""
        c = self._cache
        with c.transact():
            seq = c.incr("seq:n")
            c.set(f"n:{seq:012d}", to_json(notification))
            c.set(f"nid:{notification.id}", seq)
            for channel in channels:
                result = DeliveryResult(notification.id, channel, DeliveryStatus.PENDING, 0,
                                        None, now)
                c.set(f"d:{notification.id}:{channel}", to_json(result))
                c.set(f"p:{notification.id}:{channel}", seq)
            for item in notification.items:
                key = f"an:{item.alert_id}"
                recent = json.loads(c.get(key, "[]"))
                recent = [notification.id, *[i for i in recent if i != notification.id]]
                c.set(key, json.dumps(recent[:_PER_ALERT]))

    def record(self, result: DeliveryResult) -> bool:
        """Record a channel's result; False (ignored) for an unknown notification or a result
        arriving after a final one (a late retry report must not undo 'delivered')."""
        c = self._cache
        key = f"d:{result.notification_id}:{result.channel}"
        with c.transact():
            current = c.get(key)
            if current is None:
                return False
            if from_json(DeliveryResult, current).status.final:
                return False
            c.set(key, to_json(result))
            if result.status.final:
                c.delete(f"p:{result.notification_id}:{result.channel}")
        return True

    def pending(self) -> list[tuple[Notification, DeliveryResult]]:
        """Every (notification, its latest result on a channel) not final yet, oldest first."""
        c = self._cache
        out: list[tuple[int, Notification, DeliveryResult]] = []
        for key in c.iterkeys():
            if not isinstance(key, str) or not key.startswith("p:"):
                continue
            _, notification_id, channel = key.split(":", 2)
            notification = self.notification(notification_id)
            result = c.get(f"d:{notification_id}:{channel}")
            if notification is not None and result is not None:
                out.append((c.get(key), notification, from_json(DeliveryResult, result)))
        out.sort(key=lambda row: row[0])
        return [(n, r) for _, n, r in out]

    # -- reads --------------------------------------------------------------------------------

    def notification(self, notification_id: str) -> Notification | None:
        seq = self._cache.get(f"nid:{notification_id}")
        if seq is None:
            return None
        return from_json(Notification, self._cache[f"n:{seq:012d}"])

    def deliveries(self, notification_id: str) -> tuple[DeliveryResult, ...]:
        """Per-channel results of one notification (sorted by channel)."""
        c = self._cache
        prefix = f"d:{notification_id}:"
        keys = sorted(k for k in c.iterkeys() if isinstance(k, str) and k.startswith(prefix))
        return tuple(from_json(DeliveryResult, c[k]) for k in keys)

    def notifications(self, limit: int) -> list[NotificationView]:
        """The latest ``limit`` notifications, newest first, with their delivery results."""
        c = self._cache
        last = int(c.get("seq:n", 0))
        out = []
        for seq in range(last, max(0, last - limit), -1):
            text = c.get(f"n:{seq:012d}")
            if text is not None:
                notification: Notification = from_json(Notification, text)
                out.append(NotificationView(notification, self.deliveries(notification.id)))
        return out

    def alert_deliveries(self, alert_id: str) -> tuple[DeliveryResult, ...]:
        """Per-channel results of the alert's recent notifications, newest first."""
        ids = json.loads(self._cache.get(f"an:{alert_id}", "[]"))
        return tuple(r for i in ids for r in self.deliveries(i))

    # -- history ------------------------------------------------------------------------------

    def record_alert(self, alert: Alert) -> None:
        """Append an alert state change to the history and keep it as the alert's latest."""
        c = self._cache
        with c.transact():
            seq = c.incr("seq:h")
            text = to_json(alert)
            c.set(f"h:{seq:012d}", text)
            c.set(f"a:{alert.id}", text)

    def history(self, limit: int) -> list[Alert]:
        """The latest ``limit`` alert state changes, newest first."""
        c = self._cache
        last = int(c.get("seq:h", 0))
        texts = (c.get(f"h:{seq:012d}") for seq in range(last, max(0, last - limit), -1))
        return [from_json(Alert, t) for t in texts if t is not None]

    def latest_alerts(self) -> list[Alert]:
        """The last recorded state of every alert ever seen."""
        c = self._cache
        return [from_json(Alert, c[k]) for k in c.iterkeys()
                if isinstance(k, str) and k.startswith("a:")]

    # -- silences -----------------------------------------------------------------------------

    def save_silence(self, silence: Silence) -> None:
        self._cache.set(f"s:{silence.id}", to_json(silence))

    def silences(self) -> list[Silence]:
        c = self._cache
        return [from_json(Silence, c[k]) for k in c.iterkeys()
                if isinstance(k, str) and k.startswith("s:")]

    def sqlite_synchronous(self) -> int:
        """The live ``PRAGMA synchronous`` (2 = FULL), for tests."""
        return int(self._cache._sql("PRAGMA synchronous").fetchone()[0])
