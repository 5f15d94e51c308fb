"""Alert messages: JSON round trips through the tagged unions the HTTP API uses, and bad
values rejected with the field named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from messages.alerts import (
    AckAlert,
    Alert,
    AlertCommandRejected,
    AlertEvent,
    AlertLevel,
    AlertList,
    AlertReply,
    AlertState,
    AlertView,
    BreakerOpened,
    CreateSilence,
    DeliveryResult,
    DeliveryStatus,
    HealthChanged,
    LabelMatcher,
    LedgerDiscrepancy,
    ListAlerts,
    MatchOp,
    RateLimitPaused,
)
from messages.base import FrozenMap
from messages.codec import MessageDecodeError, from_json, to_json

LABELS = FrozenMap({"rule": "breaker-open", "venue": "sim"})
ALERT = Alert("f1", "breaker-open", AlertLevel.ERROR, LABELS, "open", AlertState.ACKNOWLEDGED,
              False, 1.0, 2.0, None, "ops", 30.0, ("s1",), False, 2)


@pytest.mark.parametrize("event", [
    BreakerOpened("sim", "trading", "503s", 1.0),
    LedgerDiscrepancy("sim", "USDT", Decimal("100.5"), Decimal("99"), Decimal("0.1"), 2.0),
    HealthChanged("venue:sim/pool", "degraded", "queue full", 3.0),
    RateLimitPaused("sim", 5.0, "429", 4.0),
])
def test_events_round_trip_through_the_union(event: object) -> None:
    assert from_json(AlertEvent, to_json(event, AlertEvent)) == event


@pytest.mark.parametrize("reply", [
    ALERT,
    AlertList((AlertView(ALERT, (DeliveryResult("n1", "json", DeliveryStatus.RETRYING, 2,
                                                 "HTTP 500", 3.0),)),)),
    AlertCommandRejected("AckAlert", "no alert 'x'"),
])
def test_replies_round_trip_through_the_union(reply: object) -> None:
    assert from_json(AlertReply, to_json(reply, AlertReply)) == reply


def test_commands_round_trip() -> None:
    silence = CreateSilence((LabelMatcher("venue", MatchOp.REGEX, "sim|other"),), 60.0, "ops",
                            "maintenance")
    assert from_json(CreateSilence, to_json(silence)) == silence
    assert from_json(AckAlert, '{"alert_id": "f1", "by": "ops", "duration": null}') == \
        AckAlert("f1", "ops")
    assert from_json(ListAlerts, "{}") == ListAlerts()


@pytest.mark.parametrize(("build", "field"), [
    (lambda: HealthChanged("c", "sick", "?", 1.0), "status"),
    (lambda: LabelMatcher("venue", MatchOp.REGEX, "("), "value"),
    (lambda: AckAlert("f1", "ops", -1.0), "duration"),
    (lambda: AckAlert("", "ops"), "alert_id"),
    (lambda: LedgerDiscrepancy("sim", "USDT", Decimal(1), Decimal(2), Decimal(-1), 1.0),
     "tolerance"),
    (lambda: ListAlerts(limit=0), "limit"),
])
def test_bad_values_are_rejected_naming_the_field(build, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build()


def test_bad_json_names_the_path() -> None:
    with pytest.raises(MessageDecodeError, match="duration"):
        from_json(AckAlert, '{"alert_id": "f1", "by": "ops", "duration": "soon"}')


def test_matchers_follow_alertmanager_semantics() -> None:
    labels = FrozenMap({"venue": "sim"})
    assert LabelMatcher("venue", MatchOp.REGEX, "si").matches(labels) is False  # anchored
    assert LabelMatcher("venue", MatchOp.NOT_EQUAL, "x").matches(labels)
    assert LabelMatcher("missing", MatchOp.EQUAL, "").matches(labels)
    assert LabelMatcher("venue", MatchOp.NOT_REGEX, "s.*").matches(labels) is False
