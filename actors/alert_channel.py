"""One notification channel as an actor: its own queue, throttle, retries and circuit breaker.

A dead webhook only ever fills this actor's queue: the alert manager tells and moves on.
Guarantees: every notification handed over gets reported back to the manager as delivered,
retrying (with the reason) or finally failed (after ``retry_attempts`` failed sends); while the
breaker is open nothing is sent and queued notifications wait for its probe; a breaker opening
or a notification failing for good raises :class:`ChannelDeliveryFailed`, the next success
:class:`ChannelDeliveryRecovered`. A notification seen again (redispatch after a restart) is
not queued twice.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import attrs
from loguru import logger

from alerts.channels import Channel, ChannelSpec, DeliveryError, DeliveryPolicy, open_channel
from gateway.breaker import Breaker, BreakerState, Rejected
from messages.alerts import (
    ChannelDeliveryFailed,
    ChannelDeliveryRecovered,
    DeliverNotification,
    DeliveryResult,
    DeliveryStatus,
    Notification,
)
from supervisors import SupervisedActor, SupervisionError, tell

__all__ = ["AlertChannel"]

_REMEMBER_DELIVERED = 1000


@attrs.frozen
class _Pump:
    """Timer message: try to send what is due."""


@attrs.define
class _Queued:
    notification: Notification
    failures: int = 0
    not_before: float = 0.0
    last_status: DeliveryStatus = DeliveryStatus.PENDING


class AlertChannel(SupervisedActor):
    """Delivers the manager's notifications on one channel (``alerts/channel:<name>``)."""

    def __init__(
        self,
        spec: ChannelSpec,
        policy: DeliveryPolicy,
        manager: str,
        channel_factory: Callable[[ChannelSpec], Channel] = open_channel,
    ) -> None:
        super().__init__()
        self._spec = spec
        self._policy = policy
        self._manager = manager
        self._factory = channel_factory
        self._queue: OrderedDict[str, _Queued] = OrderedDict()
        self._delivered: deque[str] = deque(maxlen=_REMEMBER_DELIVERED)
        self._next_send_at = 0.0
        self._pump_at: float | None = None
        self._failing = False

    def on_start(self) -> None:
        self._channel = self._factory(self._spec)
        self._breaker = Breaker(f"alert-channel:{self._spec.name}", self._policy.breaker)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, DeliverNotification):
            self._accept(message.notification)
        elif isinstance(message, _Pump):
            self._pump_at = None
        else:
            raise TypeError(f"AlertChannel: unexpected message {type(message).__name__}")
        self._pump()
        return None

    def _accept(self, notification: Notification) -> None:
        if notification.id in self._delivered:
            self._report(notification.id, DeliveryStatus.DELIVERED, 0, None)
        elif notification.id not in self._queue:
            self._queue[notification.id] = _Queued(notification)

    def _schedule(self, at: float) -> None:
        if self._pump_at is None or at < self._pump_at:
            self._pump_at = at
            self.send_after(max(0.0, at - time.monotonic()), _Pump())

    def _pump(self) -> None:
        now = time.monotonic()
        if not self._queue:
            return
        if now < self._next_send_at:
            self._schedule(self._next_send_at)
            return
        ready = [q for q in self._queue.values() if q.not_before <= now]
        if not ready:
            self._schedule(min(q.not_before for q in self._queue.values()))
            return
        permit = self._breaker.acquire(now)
        if isinstance(permit, Rejected):
            for queued in ready:
                self._set_status(queued, DeliveryStatus.RETRYING, "circuit open")
            self._schedule(now + permit.next_probe_in(now, unknown=self._policy.retry_initial or 1))
            return
        batch = ready[: self._policy.max_batch]
        was_open = self._breaker.state
        started = time.monotonic()
        try:
            self._channel.send([q.notification for q in batch])
        except DeliveryError as error:
            self._breaker.on_failure(permit, time.monotonic() - started, time.monotonic())
            self._failed(batch, str(error), was_open)
        except Exception as error:  # noqa: BLE001 - a library bug in one send fails this send
            self._breaker.on_failure(permit, time.monotonic() - started, time.monotonic())
            logger.bind(context="alert_channel", channel=self._spec.name).opt(
                exception=error).warning("channel {} send raised", self._spec.name)
            self._failed(batch, f"{type(error).__name__}: {error}", was_open)
        else:
            self._breaker.on_success(permit, time.monotonic() - started, time.monotonic())
            for queued in batch:
                del self._queue[queued.notification.id]
                self._delivered.append(queued.notification.id)
                self._report(queued.notification.id, DeliveryStatus.DELIVERED,
                             queued.failures + 1, None)
            if self._failing:
                self._failing = False
                self._tell_manager(ChannelDeliveryRecovered(self._spec.name, time.time()))
        self._next_send_at = time.monotonic() + self._policy.throttle
        if self._queue:
            self._schedule(self._next_send_at)

    def _failed(self, batch: list[_Queued], reason: str, state_before: BreakerState) -> None:
        gave_up = False
        for queued in batch:
            queued.failures += 1
            if queued.failures >= self._policy.retry_attempts:
                del self._queue[queued.notification.id]
                self._report(queued.notification.id, DeliveryStatus.FAILED, queued.failures,
                             reason)
                gave_up = True
            else:
                queued.not_before = time.monotonic() + self._policy.retry_delay(queued.failures)
                queued.last_status = DeliveryStatus.RETRYING
                self._report(queued.notification.id, DeliveryStatus.RETRYING, queued.failures,
                             reason)
        opened = state_before is not BreakerState.OPEN and self._breaker.state is BreakerState.OPEN
        if gave_up or opened:
            self._failing = True
            what = "breaker opened" if opened else "a notification failed for good"
            logger.bind(context="alert_channel", channel=self._spec.name).warning(
                "alert channel {} failing ({}): {}", self._spec.name, what, reason)
            self._tell_manager(ChannelDeliveryFailed(self._spec.name, f"{what}: {reason}",
                                                     time.time()))

    def _set_status(self, queued: _Queued, status: DeliveryStatus, reason: str) -> None:
        if queued.last_status is not status:
            queued.last_status = status
            self._report(queued.notification.id, status, queued.failures, reason)

    def _report(self, notification_id: str, status: DeliveryStatus, attempts: int,
                reason: str | None) -> None:
        self._tell_manager(DeliveryResult(notification_id, self._spec.name, status, attempts,
                                          reason, time.time()))

    def _tell_manager(self, message: object) -> None:
        try:
            tell(self._manager, message, timeout=1.0)
        except SupervisionError as error:
            # The manager redispatches what it has no final result for: at least once.
            logger.bind(context="alert_channel", channel=self._spec.name).warning(
                "could not report to {}: {}", self._manager, error)
