"""The alert manager's pure core: observations in, alerts and notifications out; time injected.

Guarantees (checked by tests/property/test_alert_core_stateful.py):
- Dedup: one alert per fingerprint (its rule plus labels); repeated observations update it.
- Hysteresis: an alert fires when its value goes above ``fire_above`` (after ``for_seconds``
  pending) and resolves only when the value falls to ``clear_at`` or below.
- Per alert, two firing notifications (new, repeat, escalated, flapping) are at least
  ``repeat_interval`` apart unless the alert resolved in between.
- A silenced or inhibited alert is never notified; an acknowledged alert is never notified
  as firing while its acknowledgment lasts; when a silence or acknowledgment ends, a
  still-firing alert is notified again (no earlier than the repeat interval allows).
- Every firing alert that is not muted is notified at least once (after ``group_wait``).
- A resolved notification is sent only for an alert whose firing was notified.
- An alert changing state ``flap_changes`` times within ``flap_window`` is marked flapping,
  notified once as such, and then quiet until it has been stable for ``flap_window``.
- Notifications are per group (``group_by`` labels): the first after ``group_wait``, then at
  most one per ``group_interval``; each carries only the alerts that are due.
"""

from __future__ import annotations

import enum
import hashlib
from collections import deque
from collections.abc import Iterable, Mapping
from decimal import Decimal

import attrs

from messages.alerts import (
    Alert,
    AlertLevel,
    AlertState,
    LabelMatcher,
    Notification,
    NotificationItem,
    NotifyReason,
    Silence,
)
from messages.base import FrozenMap, new_id

__all__ = [
    "RULE_LABEL",
    "RuleSpec",
    "InhibitRule",
    "AlertPolicy",
    "Observation",
    "AlertCore",
    "CommandError",
    "fingerprint",
]

#: The label every alert carries with its rule's name (Alertmanager's ``alertname``).
RULE_LABEL = "rule"


class CommandError(ValueError):
    """Raised when an operator command cannot apply (unknown alert, wrong state); nothing
    changed."""


def _positive(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{attribute.name}: expected a number > 0, got {value!r}")


def _non_negative(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{attribute.name}: expected a number >= 0, got {value!r}")


@attrs.frozen
class RuleSpec:
    """One alert rule as data: fires above ``fire_above`` (held ``for_seconds``), clears at or
    below ``clear_at`` (hysteresis: ``clear_at <= fire_above``)."""

    name: str
    level: AlertLevel
    fire_above: Decimal
    clear_at: Decimal
    for_seconds: float = attrs.field(default=0.0, validator=_non_negative)
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.fire_above, Decimal) or not isinstance(self.clear_at, Decimal):
            raise ValueError(f"rule {self.name}: thresholds must be Decimals")
        if self.clear_at > self.fire_above:
            raise ValueError(
                f"rule {self.name}: clear_at ({self.clear_at}) must be <= fire_above "
                f"({self.fire_above})"
            )


@attrs.frozen
class InhibitRule:
    """While an alert matching ``source`` fires, alerts matching ``target`` that have the same
    values for the ``equal`` labels are muted (an alert never inhibits itself)."""

    source: tuple[LabelMatcher, ...]
    target: tuple[LabelMatcher, ...]
    equal: tuple[str, ...]


@attrs.frozen
class AlertPolicy:
    """Noise control timings (seconds) and grouping."""

    group_by: tuple[str, ...] = (RULE_LABEL, "venue")
    group_wait: float = attrs.field(default=30.0, validator=_non_negative)
    group_interval: float = attrs.field(default=300.0, validator=_positive)
    repeat_interval: float = attrs.field(default=3600.0, validator=_positive)
    flap_changes: int = attrs.field(default=4, validator=_positive)
    flap_window: float = attrs.field(default=600.0, validator=_positive)
    #: Resolved alerts are forgotten by the core this long after resolution (history stays).
    retention: float = attrs.field(default=86400.0, validator=_positive)


@attrs.frozen
class Observation:
    """A rule's current value for one set of labels (the rules engine derives it from events)."""

    rule: str
    labels: FrozenMap
    value: Decimal
    summary: str


def fingerprint(labels: Mapping[str, str]) -> str:
    """Stable dedup key of an alert: a hash of its sorted labels (rule name included)."""
    text = "\x1f".join(f"{k}\x1e{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Phase(enum.Enum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class _Track:
    """Everything the core knows about one fingerprint."""

    def __init__(self, rule: RuleSpec, labels: FrozenMap, now: float) -> None:
        self.rule = rule
        self.labels = labels
        self.id = fingerprint(labels)
        self.summary = ""
        self.value = Decimal(0)
        self.phase = _Phase.INACTIVE
        self.phase_before_pending = _Phase.INACTIVE
        self.pending_since = now
        self.started_at = now
        self.updated_at = now
        self.resolved_at: float | None = None
        self.acked_by: str | None = None
        self.acked = False
        self.ack_until: float | None = None
        self.escalate = False
        self.last_firing_notice: float | None = None
        self.told_firing = False
        self.resolved_due = False
        self.changes: deque[float] = deque()
        self.flapping = False
        self.flap_due = False
        self.notifications = 0


class _Group:
    __slots__ = ("first_due_at", "last_flush_at")

    def __init__(self) -> None:
        self.first_due_at: float | None = None
        self.last_flush_at: float | None = None


class AlertCore:
    """Alert state for every fingerprint, silences, and group timers. Not thread-safe: its
    actor serialises calls. Every method takes the current wall-clock ``now`` (seconds)."""

    def __init__(
        self,
        policy: AlertPolicy,
        rules: Iterable[RuleSpec],
        inhibit_rules: Iterable[InhibitRule] = (),
    ) -> None:
        self.policy = policy
        self.rules = {rule.name: rule for rule in rules}
        self.inhibit_rules = tuple(inhibit_rules)
        self._tracks: dict[str, _Track] = {}
        self._groups: dict[tuple[str, ...], _Group] = {}
        self._silences: dict[str, Silence] = {}
        self._changed: set[str] = set()
        self._now = float("-inf")

    # -- inputs -----------------------------------------------------------------------------

    def observe(self, observation: Observation, now: float) -> None:
        """Apply a rule's value for one label set; ``ValueError`` for an unknown rule."""
        now = self._tick_clock(now)
        rule = self.rules.get(observation.rule)
        if rule is None:
            raise ValueError(f"observation for unknown rule {observation.rule!r}")
        labels = FrozenMap({**observation.labels, RULE_LABEL: rule.name})
        track = self._tracks.get(fingerprint(labels))
        fire = observation.value > rule.fire_above
        if track is None:
            if not fire:
                return  # nothing to remember about a healthy value of an unknown alert
            track = _Track(rule, labels, now)
            self._tracks[track.id] = track
        track.value = observation.value
        track.summary = observation.summary
        clear = observation.value <= rule.clear_at
        if track.phase in (_Phase.INACTIVE, _Phase.RESOLVED):
            if fire:
                if rule.for_seconds == 0:
                    self._fire(track, now)
                else:
                    track.phase_before_pending = track.phase
                    track.phase = _Phase.PENDING
                    track.pending_since = now
                    self._touch(track, now)
        elif track.phase is _Phase.PENDING:
            if clear:
                track.phase = track.phase_before_pending
                self._touch(track, now)
                if track.phase is _Phase.INACTIVE:
                    del self._tracks[track.id]
        elif track.phase is _Phase.FIRING and clear:
            self._resolve(track, now)

    def ack(self, alert_id: str, by: str, duration: float | None, now: float) -> Alert:
        """Acknowledge a firing alert: no firing notifications until ``now + duration``
        (None: until it resolves); then, if still firing, it escalates."""
        now = self._tick_clock(now)
        track = self._firing(alert_id, "acknowledge")
        track.acked, track.acked_by = True, by
        track.ack_until = None if duration is None else now + duration
        track.escalate = False
        self._touch(track, now)
        return self._view(track, now, self._inhibited_ids(now))

    def resolve(self, alert_id: str, by: str, now: float) -> Alert:
        """Resolve a firing alert by hand (it fires again on the next bad observation)."""
        now = self._tick_clock(now)
        track = self._firing(alert_id, "resolve")
        track.summary = f"{track.summary} (resolved by {by})"
        track.value = track.rule.clear_at
        self._resolve(track, now)
        return self._view(track, now, self._inhibited_ids(now))

    def restore(self, alert: Alert, now: float) -> bool:
        """Take back an active alert recorded before a restart (False: resolved, or its rule
        is gone). A notified alert repeats no sooner than a repeat interval from ``now``;
        one never notified is due as new."""
        rule = self.rules.get(alert.rule)
        if rule is None or alert.state is AlertState.RESOLVED or alert.id in self._tracks:
            return False
        track = _Track(rule, alert.labels, alert.started_at)
        track.summary, track.updated_at = alert.summary, alert.updated_at
        track.value = rule.fire_above + 1
        if alert.state is AlertState.PENDING:
            track.phase, track.pending_since = _Phase.PENDING, alert.updated_at
        else:
            track.phase = _Phase.FIRING
            track.changes.append(alert.started_at)
        if alert.state is AlertState.ACKNOWLEDGED:
            track.acked, track.acked_by, track.ack_until = True, alert.acked_by, alert.acked_until
        track.notifications = alert.notifications
        if alert.notifications:
            track.told_firing, track.last_firing_notice = True, now
        self._tracks[track.id] = track
        return True

    def add_silence(self, silence: Silence) -> None:
        """Add (or replace, by id) a silence; one without matchers is refused."""
        if not silence.matchers:
            raise CommandError("a silence needs at least one matcher")
        if silence.ends_at <= silence.starts_at:
            raise CommandError("a silence must end after it starts")
        self._silences[silence.id] = silence

    def expire_silence(self, silence_id: str, now: float) -> Silence:
        """End a silence now; its still-firing alerts become due again."""
        silence = self._silences.get(silence_id)
        if silence is None or silence.ends_at <= now:
            raise CommandError(f"no active silence {silence_id!r}")
        expired = attrs.evolve(silence, ends_at=max(now, silence.starts_at))
        self._silences[silence_id] = expired
        return expired

    # -- time -------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Notification]:
        """Apply what time alone changes (pending → firing, expiring acks and silences, end of
        flapping) and return the notifications of the groups whose timer is due."""
        now = self._tick_clock(now)
        for track in list(self._tracks.values()):
            pending_for = now - track.pending_since
            if track.phase is _Phase.PENDING and pending_for >= track.rule.for_seconds:
                self._fire(track, now)
            if track.acked and track.ack_until is not None and now >= track.ack_until:
                track.acked, track.ack_until = False, None
                track.escalate = track.phase is _Phase.FIRING
                self._touch(track, now)
            quiet = not track.changes or now - track.changes[-1] >= self.policy.flap_window
            if track.flapping and quiet:
                self._end_flapping(track, now)
            if (
                track.phase is _Phase.RESOLVED
                and track.resolved_at is not None
                and now - track.resolved_at >= self.policy.retention
                and not track.resolved_due
            ):
                del self._tracks[track.id]
        for silence_id in [s.id for s in self._silences.values()
                           if now - s.ends_at >= self.policy.retention]:
            del self._silences[silence_id]
        live = {self._group_key(t) for t in self._tracks.values()}
        for key in [k for k, g in self._groups.items() if k not in live and (
                g.last_flush_at is None or now - g.last_flush_at >= self.policy.retention)]:
            del self._groups[key]
        return self._flush(now)

    # -- queries ----------------------------------------------------------------------------

    def alerts(self, now: float) -> list[Alert]:
        """Every alert the core holds (pending, firing, acknowledged, recently resolved)."""
        inhibited = self._inhibited_ids(now)
        return [self._view(t, now, inhibited) for t in self._tracks.values()]

    def alert(self, alert_id: str, now: float) -> Alert | None:
        track = self._tracks.get(alert_id)
        return None if track is None else self._view(track, now, self._inhibited_ids(now))

    def silences(self) -> list[Silence]:
        return list(self._silences.values())

    def take_changes(self, now: float) -> list[Alert]:
        """Alerts whose state changed since the last call (for the history)."""
        inhibited = self._inhibited_ids(now)
        changed = [self._view(self._tracks[i], now, inhibited)
                   for i in sorted(self._changed) if i in self._tracks]
        self._changed.clear()
        return changed

    # -- internals --------------------------------------------------------------------------

    def _tick_clock(self, now: float) -> float:
        self._now = max(self._now, now)
        return self._now

    def _touch(self, track: _Track, now: float) -> None:
        track.updated_at = now
        self._changed.add(track.id)

    def _firing(self, alert_id: str, verb: str) -> _Track:
        track = self._tracks.get(alert_id)
        if track is None:
            raise CommandError(f"cannot {verb}: no alert {alert_id!r}")
        if track.phase is not _Phase.FIRING:
            raise CommandError(f"cannot {verb}: alert {alert_id!r} is {track.phase.value}")
        return track

    def _changed_state(self, track: _Track, now: float) -> None:
        track.changes.append(now)
        while track.changes and now - track.changes[0] > self.policy.flap_window:
            track.changes.popleft()
        if not track.flapping and len(track.changes) >= self.policy.flap_changes:
            track.flapping = True
            track.flap_due = True
            track.resolved_due = False

    def _fire(self, track: _Track, now: float) -> None:
        track.phase = _Phase.FIRING
        track.started_at = now
        track.resolved_at = None
        track.resolved_due = False
        self._changed_state(track, now)
        self._touch(track, now)

    def _resolve(self, track: _Track, now: float) -> None:
        track.phase = _Phase.RESOLVED
        track.resolved_at = now
        track.acked, track.ack_until, track.escalate = False, None, False
        track.last_firing_notice = None
        self._changed_state(track, now)
        track.resolved_due = track.told_firing and not track.flapping
        self._touch(track, now)

    def _end_flapping(self, track: _Track, now: float) -> None:
        track.flapping = False
        track.flap_due = False
        if track.phase is _Phase.RESOLVED and track.told_firing:
            track.resolved_due = True
        self._touch(track, now)

    def _silenced_by(self, track: _Track, now: float) -> tuple[str, ...]:
        return tuple(s.id for s in self._silences.values()
                     if s.active(now) and s.matches(track.labels))

    def _inhibited_ids(self, now: float) -> set[str]:
        """Alerts muted by an inhibition rule whose source alert is firing now."""
        if not self.inhibit_rules:
            return set()
        muted: set[str] = set()
        firing = [t for t in self._tracks.values() if t.phase is _Phase.FIRING]
        for rule in self.inhibit_rules:
            sources: dict[tuple[str, ...], set[str]] = {}
            for t in firing:
                if all(m.matches(t.labels) for m in rule.source):
                    key = tuple(t.labels.get(name, "") for name in rule.equal)
                    sources.setdefault(key, set()).add(t.id)
            if not sources:
                continue
            for t in self._tracks.values():
                if t.id in muted or not all(m.matches(t.labels) for m in rule.target):
                    continue
                key = tuple(t.labels.get(name, "") for name in rule.equal)
                if sources.get(key, set()) - {t.id}:
                    muted.add(t.id)
        return muted

    def _due(self, track: _Track, now: float) -> NotifyReason | None:
        """What this alert would be notified as now, ignoring muting and group timers."""
        if track.flapping:
            return NotifyReason.FLAPPING if track.flap_due else None
        if track.phase is _Phase.RESOLVED:
            return NotifyReason.RESOLVED if track.resolved_due else None
        if track.phase is not _Phase.FIRING or track.acked:
            return None
        last = track.last_firing_notice
        if last is not None and now - last < self.policy.repeat_interval:
            return None
        if track.escalate:
            return NotifyReason.ESCALATED
        return NotifyReason.NEW if last is None and not track.told_firing else NotifyReason.REPEAT

    def _group_key(self, track: _Track) -> tuple[str, ...]:
        return tuple(track.labels.get(name, "") for name in self.policy.group_by)

    def _flush(self, now: float) -> list[Notification]:
        inhibited = self._inhibited_ids(now)
        due: dict[tuple[str, ...], list[tuple[_Track, NotifyReason]]] = {}
        for track in self._tracks.values():
            reason = self._due(track, now)
            if reason is None or track.id in inhibited or self._silenced_by(track, now):
                continue
            due.setdefault(self._group_key(track), []).append((track, reason))
        for key, group in self._groups.items():
            if key not in due:
                group.first_due_at = None
        out: list[Notification] = []
        for key, items in due.items():
            group = self._groups.setdefault(key, _Group())
            if group.last_flush_at is None:
                # group_wait counts from when the group's first alert started firing
                since = min(t.started_at if r is NotifyReason.NEW else now for t, r in items)
                if group.first_due_at is None or since < group.first_due_at:
                    group.first_due_at = since
                ready = now - group.first_due_at >= self.policy.group_wait
            else:
                ready = now - group.last_flush_at >= self.policy.group_interval
            if not ready:
                continue
            group.last_flush_at = now
            group.first_due_at = None
            out.append(self._notify(key, items, now))
        return out

    def _notify(
        self, key: tuple[str, ...], items: list[tuple[_Track, NotifyReason]], now: float
    ) -> Notification:
        records = []
        for track, reason in sorted(items, key=lambda item: item[0].id):
            if reason is NotifyReason.RESOLVED:
                track.resolved_due = False
                track.told_firing = False
            else:
                track.last_firing_notice = now
                track.told_firing = True
                track.escalate = False
                track.flap_due = False
            track.notifications += 1
            self._touch(track, now)
            records.append(NotificationItem(
                alert_id=track.id, rule=track.rule.name, level=track.rule.level,
                labels=track.labels,
                summary=track.summary, reason=reason, started_at=track.started_at,
                resolved_at=track.resolved_at,
            ))
        group = FrozenMap({name: value for name, value in zip(self.policy.group_by, key,
                                                               strict=True) if value})
        return Notification(id=new_id(), group=group, created_at=now, items=tuple(records))

    def _view(self, track: _Track, now: float, inhibited: set[str]) -> Alert:
        if track.phase is _Phase.FIRING:
            state = AlertState.ACKNOWLEDGED if track.acked else AlertState.FIRING
        elif track.phase is _Phase.PENDING:
            state = AlertState.PENDING
        else:
            state = AlertState.RESOLVED
        return Alert(
            id=track.id, rule=track.rule.name, level=track.rule.level, labels=track.labels,
            summary=track.summary, state=state, flapping=track.flapping,
            started_at=track.started_at, updated_at=track.updated_at,
            resolved_at=track.resolved_at, acked_by=track.acked_by if track.acked else None,
            acked_until=track.ack_until if track.acked else None,
            silenced_by=self._silenced_by(track, now), inhibited=track.id in inhibited,
            notifications=track.notifications,
        )
