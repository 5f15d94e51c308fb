"""The alert core on injected time: lifecycle, hysteresis, `for`, grouping, repeats, acks,
silences, inhibition, flapping, and an alert storm reduced to a handful of notifications."""

from __future__ import annotations

from decimal import Decimal

import pytest

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
from alerts.rules import RuleEngine, RuleThresholds, default_inhibit_rules, rule_specs
from messages.alerts import (
    AlertLevel,
    AlertState,
    BreakerClosed,
    BreakerOpened,
    LabelMatcher,
    MatchOp,
    Notification,
    NotifyReason,
    OrderUnknown,
    RateLimitPaused,
    Silence,
)
from messages.base import FrozenMap
from messages.supervision import ChildRestarted

POLICY = AlertPolicy(group_wait=10, group_interval=60, repeat_interval=600, flap_changes=4,
                     flap_window=300)
HOT = RuleSpec("hot", AlertLevel.ERROR, fire_above=Decimal(80), clear_at=Decimal(60))
SLOW = RuleSpec("slow", AlertLevel.WARNING, fire_above=Decimal(0), clear_at=Decimal(0),
                for_seconds=30)
DOWN = RuleSpec("down", AlertLevel.CRITICAL, fire_above=Decimal(0), clear_at=Decimal(0))


def obs(rule: str, value: int, **labels: str) -> Observation:
    return Observation(rule, FrozenMap(labels), Decimal(value), f"{rule}={value}")


class Clock:
    """Drives a core: observations at `now`, ticks every second, collects notifications."""

    def __init__(self, core: AlertCore) -> None:
        self.core = core
        self.now = 1000.0
        self.sent: list[Notification] = []

    def run(self, seconds: float, step: float = 1.0) -> list[Notification]:
        out: list[Notification] = []
        end = self.now + seconds
        while self.now < end:
            self.now += step
            out += self.core.tick(self.now)
        self.sent += out
        return out

    def observe(self, observation: Observation) -> None:
        self.core.observe(observation, self.now)


def reasons(notifications: list[Notification]) -> list[tuple[str, NotifyReason]]:
    return [(i.rule, i.reason) for n in notifications for i in n.items]


@pytest.fixture
def clock() -> Clock:
    return Clock(AlertCore(POLICY, [HOT, SLOW, DOWN], [
        InhibitRule(source=(LabelMatcher(RULE_LABEL, MatchOp.EQUAL, "down"),),
                    target=(LabelMatcher(RULE_LABEL, MatchOp.EQUAL, "hot"),),
                    equal=("venue",)),
    ]))


def test_fingerprint_is_stable_and_order_free() -> None:
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})


def test_fires_after_group_wait_then_resolves_with_a_resolved_notification(clock) -> None:
    clock.observe(obs("hot", 90, venue="v"))
    assert clock.run(9) == []
    first = clock.run(1)
    assert reasons(first) == [("hot", NotifyReason.NEW)]
    assert first[0].group == {RULE_LABEL: "hot", "venue": "v"}
    clock.observe(obs("hot", 50, venue="v"))
    resolved = clock.run(60)
    assert reasons(resolved) == [("hot", NotifyReason.RESOLVED)]
    assert clock.core.alerts(clock.now)[0].state is AlertState.RESOLVED


def test_hysteresis_between_thresholds_changes_nothing(clock) -> None:
    clock.observe(obs("hot", 70, venue="v"))
    assert clock.core.alerts(clock.now) == []  # below fire: not even remembered
    clock.observe(obs("hot", 81, venue="v"))
    clock.observe(obs("hot", 61, venue="v"))  # above clear: still firing
    assert clock.core.alerts(clock.now)[0].state is AlertState.FIRING
    clock.observe(obs("hot", 60, venue="v"))
    assert clock.core.alerts(clock.now)[0].state is AlertState.RESOLVED


def test_for_duration_keeps_it_pending_and_a_short_blip_never_fires(clock) -> None:
    clock.observe(obs("slow", 1, venue="v"))
    clock.run(20)
    assert clock.core.alerts(clock.now)[0].state is AlertState.PENDING
    clock.observe(obs("slow", 0, venue="v"))
    assert clock.core.alerts(clock.now) == []
    clock.observe(obs("slow", 1, venue="v"))
    assert clock.run(29) == []
    assert reasons(clock.run(12)) == [("slow", NotifyReason.NEW)]


def test_dedup_and_grouping_many_alerts_one_notification(clock) -> None:
    for i in range(50):
        clock.observe(obs("hot", 90, venue="v", sensor=str(i)))
        clock.observe(obs("hot", 95, venue="v", sensor=str(i)))  # dedup: same fingerprint
    notifications = clock.run(10)
    assert len(notifications) == 1 and len(notifications[0].items) == 50


def test_repeat_interval_and_group_interval(clock) -> None:
    clock.observe(obs("hot", 90, venue="v"))
    clock.run(10)
    assert clock.run(589) == []
    assert reasons(clock.run(60)) == [("hot", NotifyReason.REPEAT)]


def test_ack_stops_repeats_until_it_expires_then_escalates(clock) -> None:
    clock.observe(obs("hot", 90, venue="v"))
    clock.run(10)
    alert_id = clock.core.alerts(clock.now)[0].id
    acked = clock.core.ack(alert_id, "ops", 1000, clock.now)
    assert acked.state is AlertState.ACKNOWLEDGED and acked.acked_by == "ops"
    assert clock.run(999) == []
    assert reasons(clock.run(61)) == [("hot", NotifyReason.ESCALATED)]


def test_ack_without_limit_lasts_until_resolved_and_resolution_is_notified(clock) -> None:
    clock.observe(obs("hot", 90, venue="v"))
    clock.run(10)
    clock.core.ack(clock.core.alerts(clock.now)[0].id, "ops", None, clock.now)
    assert clock.run(5000) == []
    clock.observe(obs("hot", 0, venue="v"))
    assert reasons(clock.run(60)) == [("hot", NotifyReason.RESOLVED)]


def test_commands_on_unknown_or_resolved_alerts_are_refused(clock) -> None:
    with pytest.raises(CommandError):
        clock.core.ack("nope", "ops", None, clock.now)
    clock.observe(obs("hot", 90, venue="v"))
    clock.observe(obs("hot", 0, venue="v"))
    with pytest.raises(CommandError, match="resolved"):
        clock.core.ack(clock.core.alerts(clock.now)[0].id, "ops", None, clock.now)


def test_silence_mutes_and_its_expiry_notifies_a_still_firing_alert(clock) -> None:
    matcher = LabelMatcher("venue", MatchOp.REGEX, "v.*")
    clock.core.add_silence(Silence("s1", (matcher,), clock.now, clock.now + 100, "ops", ""))
    clock.observe(obs("hot", 90, venue="v1"))
    assert clock.run(99) == []
    assert clock.core.alerts(clock.now)[0].silenced_by == ("s1",)
    assert reasons(clock.run(2)) == [("hot", NotifyReason.NEW)]


def test_silence_without_matchers_is_refused(clock) -> None:
    with pytest.raises(CommandError):
        clock.core.add_silence(Silence("s", (), 0, 10, "ops", ""))


def test_inhibition_mutes_targets_while_the_source_fires(clock) -> None:
    clock.observe(obs("down", 1, venue="v"))
    clock.observe(obs("hot", 90, venue="v"))
    clock.observe(obs("hot", 90, venue="other"))
    notified = reasons(clock.run(10))
    assert sorted(notified) == [("down", NotifyReason.NEW), ("hot", NotifyReason.NEW)]
    by_venue = {a.labels["venue"]: a for a in clock.core.alerts(clock.now) if a.rule == "hot"}
    assert by_venue["v"].inhibited and not by_venue["other"].inhibited
    clock.observe(obs("down", 0, venue="v"))  # the cause is gone: the target is notified
    assert ("hot", NotifyReason.NEW) in reasons(clock.run(60))


def test_flapping_alert_is_notified_once_as_flapping_then_quiet(clock) -> None:
    for _ in range(20):
        clock.observe(obs("hot", 90, venue="v"))
        clock.run(3)
        clock.observe(obs("hot", 0, venue="v"))
        clock.run(3)
    got = reasons(clock.sent)
    assert got.count(("hot", NotifyReason.FLAPPING)) == 1
    assert len(got) <= 3
    clock.observe(obs("hot", 90, venue="v"))
    clock.run(400)  # stable: flapping over, the alert is notified as firing
    assert not clock.core.alerts(clock.now)[0].flapping
    assert reasons(clock.sent)[-1][1] in (NotifyReason.NEW, NotifyReason.REPEAT)


def test_alert_storm_of_ten_thousand_events_is_a_handful_of_notifications() -> None:
    engine = RuleEngine(RuleThresholds(breaker_open_seconds=5, order_unknown_seconds=10,
                                       restart_storm_count=5, restart_storm_window=60))
    core = AlertCore(AlertPolicy(group_wait=30, group_interval=300, repeat_interval=3600),
                     rule_specs(engine.thresholds), default_inhibit_rules())
    now, events, notifications = 0.0, 0, []
    while events < 10_000:
        now += 0.05
        kind = events % 5
        if kind == 0:
            event = BreakerOpened("sim", "trading", "503s", now) if (events // 5) % 2 == 0 \
                else BreakerClosed("sim", "trading", now)
        elif kind == 1:
            event = OrderUnknown("sim", f"order-{events % 400}", now)
        elif kind == 2:
            event = ChildRestarted("venue:sim/pool", "worker-1", "venue:sim/pool/worker-1",
                                   events, 0.01, now)
        elif kind == 3:
            event = RateLimitPaused("sim", 30.0, "429", now)
        else:
            event = BreakerOpened("sim", "market_data", "timeouts", now)
        for observation in engine.on_event(event, now):
            core.observe(observation, now)
        events += 1
        if events % 20 == 0:
            for observation in engine.on_tick(now):
                core.observe(observation, now)
            notifications += core.tick(now)
    for _ in range(600):
        now += 1
        notifications += core.tick(now)
    items = [(i.rule, i.reason) for n in notifications for i in n.items]
    assert 1 <= len(notifications) <= 6, items
    rules = {rule for rule, _ in items}
    assert "breaker-open" in rules and "restart-storm" in rules
    assert "order-stuck" not in rules and "rate-limit-paused" not in rules  # inhibited


def test_restored_alerts_resolve_with_a_notification_and_do_not_renotify_early(clock) -> None:
    clock.observe(obs("hot", 90, venue="v"))
    clock.run(10)
    recorded = clock.core.alerts(clock.now)
    fresh = Clock(AlertCore(POLICY, [HOT, SLOW, DOWN]))
    fresh.now = clock.now
    assert fresh.core.restore(recorded[0], fresh.now)
    assert not fresh.core.restore(recorded[0], fresh.now)  # already known
    assert fresh.run(300) == []  # notified before the restart: no new notification
    fresh.observe(obs("hot", 10, venue="v"))
    assert reasons(fresh.run(60)) == [("hot", NotifyReason.RESOLVED)]
