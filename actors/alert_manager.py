"""The alert manager actor: events → rules → core; notifications → durable outbox → channels.

It never waits for a channel: a notification is written to the outbox (durably) and told to
every channel actor; channels report results back as :class:`DeliveryResult` messages. What
has no final result is told again every ``redispatch_after`` seconds and after a restart, so a
notification survives a crash until each channel accepted it (at least once). Supervision
events (restarts, a supervisor giving up) are subscribed to directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pykka
from loguru import logger

from alerts.core import AlertCore, AlertPolicy, CommandError, Observation
from alerts.outbox import AlertStore
from alerts.rules import RuleEngine, RuleThresholds, default_inhibit_rules, rule_specs
from messages.alerts import (
    AckAlert,
    AlertCommandRejected,
    AlertEvent,
    AlertList,
    AlertState,
    AlertView,
    CreateSilence,
    DeliverNotification,
    DeliveryResult,
    ExpireSilence,
    ListAlerts,
    ListNotifications,
    ListSilences,
    Notification,
    NotificationList,
    ResolveAlert,
    Silence,
    SilenceList,
)
from messages.base import new_id
from messages.supervision import ChildRestarted, SupervisionEvent, SupervisorGaveUp
from supervisors import SupervisedActor, SupervisionError, subscribe, tell

__all__ = ["ALERT_MANAGER", "AlertManager", "ManagerSettings", "publish_alert_event"]

#: The stable name of the alert manager in the node tree.
ALERT_MANAGER = "alerts/alert-manager"


def publish_alert_event(event: AlertEvent, manager: str = ALERT_MANAGER) -> bool:
    """Tell the alert manager about ``event`` without ever waiting (safe from any actor, e.g.
    a breaker listener). False, with a warning logged, when no alert manager is running or it
    is restarting at this instant (the event is then dropped, loudly)."""
    try:
        tell(manager, event, timeout=0.0)
        return True
    except SupervisionError as error:
        logger.bind(context="alert_event_dropped", event=type(event).__name__).warning(
            "alert event {} not delivered: {}", event, error)
        return False


@attrs.frozen(kw_only=True)
class ManagerSettings:
    """What the manager needs besides its store: noise policy, rule thresholds, timers."""

    policy: AlertPolicy = attrs.field(factory=AlertPolicy)
    thresholds: RuleThresholds = attrs.field(factory=RuleThresholds)
    #: Seconds between evaluations of timers (group wait, repeat, `for`, expiries).
    evaluation_interval: float = 1.0
    #: A delivery with no final result and no news for this long is told to its channel again.
    redispatch_after: float = 30.0


@attrs.frozen
class _Tick:
    """Timer message: evaluate time-driven rules and group timers."""


@attrs.frozen
class _Redispatch:
    """Timer message: tell channels again about deliveries without a final result (all of
    them at start: the channels lost their queues with the previous run)."""

    everything: bool = False


class AlertManager(SupervisedActor):
    """Owns the alert core and the alert store (``<data_dir>/alerts``)."""

    def __init__(
        self,
        settings: ManagerSettings,
        store_dir: Path,
        channels: dict[str, str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``channels`` maps a channel's name to its actor's stable name."""
        super().__init__()
        self._settings = settings
        self._store_dir = store_dir
        self._channels = dict(channels)
        self._clock = clock
        self._unsubscribe: Callable[[], None] | None = None

    def on_start(self) -> None:
        self._store = AlertStore(self._store_dir)
        self._engine = RuleEngine(self._settings.thresholds)
        self._core = AlertCore(
            self._settings.policy, rule_specs(self._settings.thresholds), default_inhibit_rules()
        )
        now = self._clock()
        for silence in self._store.silences():
            if silence.ends_at > now:
                self._core.add_silence(silence)
        restored = sum(self._core.restore(alert, now) for alert in self._store.latest_alerts())
        if restored:
            logger.bind(context="alert_manager").info("restored {} active alerts", restored)
        ref = self.actor_ref

        def forward(event: SupervisionEvent) -> None:
            if isinstance(event, ChildRestarted | SupervisorGaveUp):
                try:
                    ref.tell(event)
                except pykka.ActorDeadError:
                    pass  # stopping or restarting; supervision events are also in the log

        self._unsubscribe = subscribe(forward)
        self.send_after(0.0, _Redispatch(everything=True))
        self.send_after(self._settings.evaluation_interval, _Tick())

    def on_stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._store.close()

    def on_receive(self, message: Any) -> Any:
        now = self._clock()
        if isinstance(message, _Tick):
            self._observe(self._engine.on_tick(now), now)
            for notification in self._core.tick(now):
                self._dispatch(notification, now)
            self._record_changes(now)
            self.send_after(self._settings.evaluation_interval, _Tick())
            return None
        if isinstance(message, DeliveryResult):
            self._store.record(message)
            return None
        if isinstance(message, _Redispatch):
            self._redispatch(now, message.everything)
            self.send_after(self._settings.redispatch_after, _Redispatch())
            return None
        if isinstance(message, AlertEvent | ChildRestarted | SupervisorGaveUp):
            self._observe(self._engine.on_event(message, now), now)
            self._record_changes(now)
            return None
        return self._command(message, now)

    def _observe(self, observations: list[Observation], now: float) -> None:
        for observation in observations:
            self._core.observe(observation, now)

    def _record_changes(self, now: float) -> None:
        for alert in self._core.take_changes(now):
            self._store.record_alert(alert)

    def _dispatch(self, notification: Notification, now: float) -> None:
        self._store.add_notification(notification, tuple(self._channels), now)
        logger.bind(context="alert_notification", notification=notification.id).info(
            "alert notification {}", notification.title)
        for channel in self._channels:
            self._tell_channel(channel, notification)

    def _tell_channel(self, channel: str, notification: Notification) -> None:
        try:
            tell(self._channels[channel], DeliverNotification(notification), timeout=0.5)
        except SupervisionError as error:
            logger.bind(context="alert_manager", channel=channel).warning(
                "channel {} unreachable ({}); will redispatch", channel, error)

    def _redispatch(self, now: float, everything: bool) -> None:
        for notification, result in self._store.pending():
            if result.channel not in self._channels:
                continue  # a channel removed from the config: stays pending in the history
            if everything or now - result.at >= self._settings.redispatch_after:
                self._tell_channel(result.channel, notification)

    # -- commands -----------------------------------------------------------------------------

    def _command(self, message: Any, now: float) -> Any:
        name = type(message).__name__
        try:
            if isinstance(message, ListAlerts):
                return self._list_alerts(message, now)
            if isinstance(message, ListSilences):
                silences = self._store.silences() if message.include_expired else [
                    s for s in self._core.silences() if s.ends_at > now]
                return SilenceList(tuple(sorted(silences, key=lambda s: s.starts_at)))
            if isinstance(message, ListNotifications):
                return NotificationList(tuple(self._store.notifications(message.limit)))
            if isinstance(message, AckAlert):
                alert = self._core.ack(message.alert_id, message.by, message.duration, now)
                self._record_changes(now)
                return alert
            if isinstance(message, ResolveAlert):
                alert = self._core.resolve(message.alert_id, message.by, now)
                self._record_changes(now)
                return alert
            if isinstance(message, CreateSilence):
                silence = Silence(new_id(), message.matchers, now, now + message.duration,
                                  message.created_by, message.comment)
                self._core.add_silence(silence)
                self._store.save_silence(silence)
                return silence
            if isinstance(message, ExpireSilence):
                silence = self._core.expire_silence(message.silence_id, now)
                self._store.save_silence(silence)
                return silence
        except CommandError as error:
            return AlertCommandRejected(name, str(error))
        raise TypeError(f"AlertManager: unexpected message {name}")

    def _list_alerts(self, message: ListAlerts, now: float) -> AlertList:
        alerts = [a for a in self._core.alerts(now)
                  if message.include_resolved or a.state is not AlertState.RESOLVED]
        if message.include_resolved:
            known = {a.id for a in alerts}
            alerts += [a for a in self._store.latest_alerts() if a.id not in known]
        alerts.sort(key=lambda a: a.updated_at, reverse=True)
        return AlertList(tuple(
            AlertView(a, self._store.alert_deliveries(a.id)) for a in alerts[: message.limit]
        ))
