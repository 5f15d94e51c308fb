"""The ``alerts`` subtree (one_for_one): ``alert-manager`` and one ``channel:<name>`` per URL.

A crashing channel is restarted alone; the manager keeps the outbox and hands the channel
what it had not delivered yet. Names: ``alerts/alert-manager``, ``alerts/channel:<name>``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from actors.alert_channel import AlertChannel
from actors.alert_manager import ALERT_MANAGER, AlertManager, ManagerSettings
from alerts.channels import DeliveryPolicy, parse_channel_urls
from alerts.core import AlertPolicy
from alerts.rules import RuleThresholds
from gateway.breaker import BreakerConfig
from ironclad.config import AlertsConfig
from supervisors import ChildSpec

__all__ = [
    "ALERTS",
    "ALERT_MANAGER",
    "ALERTS_DIR",
    "channel_name",
    "manager_settings",
    "delivery_policy",
    "alerts_children",
]

#: Id of the subtree under the node (its manager is ``ALERT_MANAGER``).
ALERTS = "alerts"
#: The store's directory inside the data directory.
ALERTS_DIR = "alerts"


def channel_name(channel: str) -> str:
    """Stable name of a channel's actor."""
    return f"{ALERTS}/channel:{channel}"


def manager_settings(config: AlertsConfig) -> ManagerSettings:
    r = config.rules
    return ManagerSettings(
        policy=AlertPolicy(
            group_wait=config.group_wait, group_interval=config.group_interval,
            repeat_interval=config.repeat_interval, flap_changes=config.flap_changes,
            flap_window=config.flap_window,
        ),
        thresholds=RuleThresholds(
            breaker_open_seconds=r.breaker_open_seconds,
            restart_storm_count=r.restart_storm_count,
            restart_storm_window=r.restart_storm_window,
            restart_storm_clear=r.restart_storm_clear,
            ledger_clear_ratio=r.ledger_clear_ratio,
            order_unknown_seconds=r.order_unknown_seconds,
            rate_limit_pause_seconds=r.rate_limit_pause_seconds,
            health_for_seconds=r.health_for_seconds,
        ),
        evaluation_interval=config.evaluation_interval,
        redispatch_after=config.redispatch_after,
    )


def delivery_policy(config: AlertsConfig) -> DeliveryPolicy:
    return DeliveryPolicy(
        throttle=config.throttle,
        retry_attempts=config.retry_attempts,
        retry_initial=config.retry_initial,
        retry_factor=config.retry_factor,
        retry_max=config.retry_max,
        breaker=BreakerConfig(
            window_size=config.breaker_window, minimum_calls=2, failure_rate_threshold=0.5,
            half_open_probes=1, half_open_timeout=max(60.0, config.breaker_open_seconds),
            open_base=config.breaker_open_seconds, open_cap=10 * config.breaker_open_seconds,
            jitter=0.1,
        ),
    )


def alerts_children(config: AlertsConfig, data_dir: Path) -> list[ChildSpec]:
    """The subtree's children, manager first; raises InvalidChannelUrl for a bad URL."""
    specs = parse_channel_urls(config.channels)
    policy = delivery_policy(config)
    manager = ChildSpec(
        id="alert-manager",
        start=functools.partial(
            AlertManager.start,
            manager_settings(config),
            data_dir / ALERTS_DIR,
            {spec.name: channel_name(spec.name) for spec in specs},
        ),
    )
    channels = [
        ChildSpec(
            id=f"channel:{spec.name}",
            start=functools.partial(AlertChannel.start, spec, policy, ALERT_MANAGER),
        )
        for spec in specs
    ]
    return [manager, *channels]
