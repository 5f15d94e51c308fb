"""Stateful property test of the alert core against a reference of what the operator did.

For any stream of observations, acks, silences and time: no alert is notified as firing more
often than the repeat interval allows (unless it resolved in between); a silenced or inhibited
alert is never notified; an acknowledged alert is never notified as firing while the ack lasts;
and, once time passes quietly, every firing alert that is not muted or acknowledged has been
notified at least once in its current episode.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from alerts.core import RULE_LABEL, AlertCore, AlertPolicy, InhibitRule, Observation, RuleSpec
from messages.alerts import (
    AlertLevel,
    AlertState,
    LabelMatcher,
    MatchOp,
    Notification,
    NotifyReason,
    Silence,
)
from messages.base import FrozenMap

POLICY = AlertPolicy(group_wait=5, group_interval=10, repeat_interval=30, flap_changes=4,
                     flap_window=40, retention=10_000)
RULES = [
    RuleSpec("hot", AlertLevel.ERROR, fire_above=Decimal(2), clear_at=Decimal(1)),
    RuleSpec("slow", AlertLevel.WARNING, fire_above=Decimal(0), clear_at=Decimal(0),
             for_seconds=5),
    RuleSpec("down", AlertLevel.CRITICAL, fire_above=Decimal(0), clear_at=Decimal(0)),
]
INHIBIT = InhibitRule(source=(LabelMatcher(RULE_LABEL, MatchOp.EQUAL, "down"),),
                      target=(LabelMatcher(RULE_LABEL, MatchOp.REGEX, "hot|slow"),),
                      equal=("venue",))
VENUES = ("a", "b")
HOSTS = ("1", "2")
QUIET = 200  # longer than group_wait + group_interval + repeat + flap_window + for
FIRING_KINDS = {NotifyReason.NEW, NotifyReason.REPEAT, NotifyReason.ESCALATED,
                NotifyReason.FLAPPING}


class AlertCoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = AlertCore(POLICY, RULES, [INHIBIT])
        self.now = 0.0
        self.silences: list[Silence] = []
        self.acked_until: dict[str, float] = {}  # alert id -> ack end (inf: until resolved)
        self.last_firing_notice: dict[str, float] = {}
        self.resolved_since_notice: dict[str, bool] = {}
        self.notified_since: dict[str, float] = {}  # alert id -> last firing notice time
        self.silence_seq = 0

    # -- operations -------------------------------------------------------------------------

    @rule(rule_name=st.sampled_from([r.name for r in RULES]), venue=st.sampled_from(VENUES),
          host=st.sampled_from(HOSTS), value=st.integers(0, 3))
    def observe(self, rule_name: str, venue: str, host: str, value: int) -> None:
        labels = FrozenMap({"venue": venue, "host": host})
        self.core.observe(Observation(rule_name, labels, Decimal(value), "x"), self.now)
        self._note_states()

    @rule(seconds=st.integers(1, 60))
    def advance(self, seconds: int) -> None:
        for _ in range(seconds):
            self._tick(1.0)

    @precondition(lambda self: any(a.state is AlertState.FIRING
                                   for a in self.core.alerts(self.now)))
    @rule(data=st.data(), duration=st.one_of(st.none(), st.integers(1, 100)))
    def ack(self, data: st.DataObject, duration: int | None) -> None:
        firing = [a for a in self.core.alerts(self.now) if a.state is AlertState.FIRING]
        alert = data.draw(st.sampled_from(firing))
        self.core.ack(alert.id, "ops", duration, self.now)
        self.acked_until[alert.id] = float("inf") if duration is None else self.now + duration

    @rule(label=st.sampled_from(["venue", "host", RULE_LABEL]),
          value=st.sampled_from(["a", "1", "hot", "slow", "down"]),
          duration=st.integers(1, 120))
    def silence(self, label: str, value: str, duration: int) -> None:
        self.silence_seq += 1
        silence = Silence(f"s{self.silence_seq}", (LabelMatcher(label, MatchOp.EQUAL, value),),
                          self.now, self.now + duration, "ops", "")
        self.core.add_silence(silence)
        self.silences.append(silence)

    @precondition(lambda self: any(s.active(self.now) for s in self.silences))
    @rule(data=st.data())
    def expire_silence(self, data: st.DataObject) -> None:
        silence = data.draw(st.sampled_from([s for s in self.silences if s.active(self.now)]))
        expired = self.core.expire_silence(silence.id, self.now)
        self.silences = [expired if s.id == silence.id else s for s in self.silences]

    @rule()
    def quiet_time_notifies_every_unmuted_firing_alert(self) -> None:
        for _ in range(QUIET):
            self._tick(1.0)
        for alert in self.core.alerts(self.now):
            if alert.state is not AlertState.FIRING or alert.silenced_by or alert.inhibited:
                continue
            notice = self.notified_since.get(alert.id)
            assert notice is not None and notice >= alert.started_at, (
                f"{alert.labels} fires since {alert.started_at} but was never notified")

    # -- checks -----------------------------------------------------------------------------

    def _tick(self, step: float) -> None:
        self.now += step
        notifications = self.core.tick(self.now)
        self._check(notifications)
        self._note_states()

    def _note_states(self) -> None:
        present = {a.id: a for a in self.core.alerts(self.now)}
        for alert_id in list(self.last_firing_notice):
            alert = present.get(alert_id)
            if alert is None or alert.state is AlertState.RESOLVED:
                self.resolved_since_notice[alert_id] = True
        for alert_id in list(self.acked_until):
            alert = present.get(alert_id)
            if alert is None or alert.state is not AlertState.ACKNOWLEDGED:
                if alert is None or alert.state is AlertState.RESOLVED \
                        or self.now >= self.acked_until[alert_id]:
                    del self.acked_until[alert_id]

    def _muted_by_silence(self, labels: FrozenMap) -> bool:
        return any(s.active(self.now) and s.matches(labels) for s in self.silences)

    def _inhibited(self, labels: FrozenMap, alert_id: str) -> bool:
        if not all(m.matches(labels) for m in INHIBIT.target):
            return False
        return any(
            a.id != alert_id
            and a.state in (AlertState.FIRING, AlertState.ACKNOWLEDGED)
            and all(m.matches(a.labels) for m in INHIBIT.source)
            and all(a.labels.get(k, "") == labels.get(k, "") for k in INHIBIT.equal)
            for a in self.core.alerts(self.now)
        )

    def _check(self, notifications: list[Notification]) -> None:
        for notification in notifications:
            for item in notification.items:
                assert not self._muted_by_silence(item.labels), f"silenced but notified: {item}"
                assert not self._inhibited(item.labels, item.alert_id), \
                    f"inhibited but notified: {item}"
                if item.reason not in FIRING_KINDS:
                    continue
                acked_until = self.acked_until.get(item.alert_id, float("-inf"))
                assert self.now >= acked_until, f"acknowledged but notified: {item}"
                last = self.last_firing_notice.get(item.alert_id)
                if last is not None and not self.resolved_since_notice.get(item.alert_id):
                    assert self.now - last >= POLICY.repeat_interval, (
                        f"{item.alert_id} notified at {last} and again at {self.now}")
                self.last_firing_notice[item.alert_id] = self.now
                self.resolved_since_notice[item.alert_id] = False
                self.notified_since[item.alert_id] = self.now

    @invariant()
    def time_never_runs_back(self) -> None:
        assert self.now >= 0


AlertCoreMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40,
                                              deadline=None)
test_alert_core_stateful = AlertCoreMachine.TestCase
