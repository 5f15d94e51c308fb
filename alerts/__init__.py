"""The alert system's pure parts: the alert core (dedup, grouping, repeats, silences,
inhibition, hysteresis, flapping, acks), the rules that turn node events into alerts, the
durable outbox and history, and the notification channels. The actors live in ``actors/``
(``alert_manager``, ``alert_channel``, ``alerts_tree``); the messages in ``messages.alerts``."""

from alerts.channels import (
    Channel,
    ChannelSpec,
    DeliveryError,
    DeliveryPolicy,
    InvalidChannelUrl,
    open_channel,
    parse_channel_urls,
    render,
)
from alerts.core import (
    RULE_LABEL,
    AlertCore,
    AlertPolicy,
    CommandError,
    InhibitRule,
    Observation,
    RuleSpec,
    fingerprint,
)
from alerts.outbox import AlertStore
from alerts.rules import (
    RuleEngine,
    RuleThresholds,
    breaker_event,
    default_inhibit_rules,
    rule_specs,
)

__all__ = [
    "RULE_LABEL",
    "AlertCore",
    "AlertPolicy",
    "AlertStore",
    "Channel",
    "ChannelSpec",
    "CommandError",
    "DeliveryError",
    "DeliveryPolicy",
    "InhibitRule",
    "InvalidChannelUrl",
    "Observation",
    "RuleEngine",
    "RuleSpec",
    "RuleThresholds",
    "breaker_event",
    "default_inhibit_rules",
    "fingerprint",
    "open_channel",
    "parse_channel_urls",
    "render",
    "rule_specs",
]
