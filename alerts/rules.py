"""Alert rules as data, and the pure engine that turns node events into rule observations.

Each rule is a :class:`~alerts.core.RuleSpec` whose thresholds come from config
(:class:`RuleThresholds`). The engine keeps what a rule needs across events (restart windows,
pauses that end by themselves) and is driven by ``on_event`` and ``on_tick`` with ``now``.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import attrs

from alerts.core import RULE_LABEL, InhibitRule, Observation, RuleSpec
from gateway.breaker import BreakerState, Transition
from messages.alerts import (
    AlertLevel,
    BreakerClosed,
    BreakerOpened,
    ChannelDeliveryFailed,
    ChannelDeliveryRecovered,
    HealthChanged,
    JournalIntegrityFailed,
    LabelMatcher,
    LedgerDiscrepancy,
    MatchOp,
    OrderUnknown,
    OrderUnknownResolved,
    RateLimitPaused,
    TradingHalted,
    TradingResumed,
    VenueBanned,
)
from messages.base import FrozenMap
from messages.supervision import ChildRestarted, SupervisorGaveUp

__all__ = [
    "BREAKER_OPEN",
    "RESTART_STORM",
    "SUPERVISOR_GAVE_UP",
    "LEDGER_DISCREPANCY",
    "TRADING_FROZEN",
    "RATE_LIMIT_PAUSED",
    "VENUE_BANNED",
    "ORDER_STUCK",
    "JOURNAL_INTEGRITY",
    "HEALTH_DEGRADED",
    "HEALTH_DOWN",
    "CHANNEL_FAILING",
    "RuleThresholds",
    "rule_specs",
    "default_inhibit_rules",
    "RuleEngine",
    "breaker_event",
]

BREAKER_OPEN = "breaker-open"
RESTART_STORM = "restart-storm"
SUPERVISOR_GAVE_UP = "supervisor-gave-up"
LEDGER_DISCREPANCY = "ledger-discrepancy"
TRADING_FROZEN = "trading-frozen"
RATE_LIMIT_PAUSED = "rate-limit-paused"
VENUE_BANNED = "venue-banned"
ORDER_STUCK = "order-stuck"
JOURNAL_INTEGRITY = "journal-integrity"
HEALTH_DEGRADED = "health-degraded"
HEALTH_DOWN = "health-down"
CHANNEL_FAILING = "channel-failing"

_ONE, _ZERO, _INFINITY = Decimal(1), Decimal(0), Decimal("Infinity")
_HEALTH_VALUE = {"ok": Decimal(0), "degraded": Decimal(1), "down": Decimal(2)}


def _non_negative(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{attribute.name}: expected a number >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class RuleThresholds:
    """The tunable part of the rules (config ``[alerts.rules]``)."""

    #: A breaker alert fires once the breaker has stayed open this long (seconds).
    breaker_open_seconds: float = attrs.field(default=30.0, validator=_non_negative)
    #: More than ``restart_storm_count`` restarts under one supervisor within the window...
    restart_storm_count: int = attrs.field(default=5, validator=_non_negative)
    restart_storm_window: float = attrs.field(default=60.0, validator=_non_negative)
    #: ...and the storm is over when the window holds this many restarts or fewer.
    restart_storm_clear: int = attrs.field(default=0, validator=_non_negative)
    #: A discrepancy beyond its tolerance fires; it clears at or below this fraction of it.
    ledger_clear_ratio: float = attrs.field(default=0.5, validator=_non_negative)
    #: An order unknown for longer than this fires (seconds).
    order_unknown_seconds: float = attrs.field(default=60.0, validator=_non_negative)
    #: A rate-limit pause longer than this fires (seconds); it clears when the pause ends.
    rate_limit_pause_seconds: float = attrs.field(default=10.0, validator=_non_negative)
    #: A component degraded or down for this long fires (seconds). Longer than
    #: ``breaker_open_seconds`` (plus a health poll): a venue whose breaker stays open degrades
    #: its health too, and the breaker alert must fire first to inhibit the health alert.
    health_for_seconds: float = attrs.field(default=40.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.restart_storm_clear > self.restart_storm_count:
            raise ValueError("restart_storm_clear: expected <= restart_storm_count")
        if self.ledger_clear_ratio > 1:
            raise ValueError("ledger_clear_ratio: expected <= 1 (a fraction of the tolerance)")


def _dec(value: float) -> Decimal:
    return Decimal(str(value))


def rule_specs(t: RuleThresholds) -> tuple[RuleSpec, ...]:
    """Every rule, with its level, thresholds and what it means (docs/operations.md)."""
    return (
        RuleSpec(BREAKER_OPEN, AlertLevel.ERROR, fire_above=_ZERO, clear_at=_ZERO,
                 for_seconds=t.breaker_open_seconds,
                 description="a venue circuit breaker stayed open: calls to it are refused"),
        RuleSpec(RESTART_STORM, AlertLevel.WARNING, fire_above=Decimal(t.restart_storm_count),
                 clear_at=Decimal(t.restart_storm_clear),
                 description="children of a supervisor keep crashing and being restarted"),
        RuleSpec(SUPERVISOR_GAVE_UP, AlertLevel.CRITICAL, fire_above=_ZERO, clear_at=_ZERO,
                 description="a supervisor exceeded its restart intensity and stopped; "
                             "resolve it by hand once handled"),
        RuleSpec(LEDGER_DISCREPANCY, AlertLevel.ERROR, fire_above=_ONE,
                 clear_at=_dec(t.ledger_clear_ratio),
                 description="ledger and venue balances differ beyond tolerance"),
        RuleSpec(TRADING_FROZEN, AlertLevel.CRITICAL, fire_above=_ZERO, clear_at=_ZERO,
                 description="trading in a currency is frozen"),
        RuleSpec(RATE_LIMIT_PAUSED, AlertLevel.WARNING, fire_above=_dec(t.rate_limit_pause_seconds),
                 clear_at=_ZERO, description="the venue made us pause (429)"),
        RuleSpec(VENUE_BANNED, AlertLevel.CRITICAL, fire_above=_ZERO, clear_at=_ZERO,
                 description="the venue banned us (418) for a while"),
        RuleSpec(ORDER_STUCK, AlertLevel.ERROR, fire_above=_ZERO, clear_at=_ZERO,
                 for_seconds=t.order_unknown_seconds,
                 description="an order's outcome stayed unknown"),
        RuleSpec(JOURNAL_INTEGRITY, AlertLevel.CRITICAL, fire_above=_ZERO, clear_at=_ZERO,
                 description="the journal failed verification; resolve it by hand"),
        RuleSpec(HEALTH_DEGRADED, AlertLevel.WARNING, fire_above=_ZERO, clear_at=_ZERO,
                 for_seconds=t.health_for_seconds, description="a component is degraded"),
        RuleSpec(HEALTH_DOWN, AlertLevel.CRITICAL, fire_above=_ONE, clear_at=_ONE,
                 for_seconds=t.health_for_seconds, description="a component is down"),
        RuleSpec(CHANNEL_FAILING, AlertLevel.WARNING, fire_above=_ZERO, clear_at=_ZERO,
                 description="a notification channel cannot deliver"),
    )


def _rules_matcher(*names: str) -> LabelMatcher:
    return LabelMatcher(RULE_LABEL, MatchOp.REGEX, "|".join(names))


def default_inhibit_rules() -> tuple[InhibitRule, ...]:
    """A venue that is down (breaker open, banned) mutes what it causes on that venue; a
    component that is down mutes its degraded alert."""
    return (
        InhibitRule(
            source=(_rules_matcher(BREAKER_OPEN, VENUE_BANNED),),
            target=(_rules_matcher(ORDER_STUCK, RATE_LIMIT_PAUSED, HEALTH_DEGRADED, HEALTH_DOWN),),
            equal=("venue",),
        ),
        InhibitRule(
            source=(_rules_matcher(VENUE_BANNED),),
            target=(_rules_matcher(BREAKER_OPEN),),
            equal=("venue",),
        ),
        InhibitRule(
            source=(_rules_matcher(HEALTH_DOWN),),
            target=(_rules_matcher(HEALTH_DEGRADED),),
            equal=("component",),
        ),
    )


def breaker_event(venue: str, breaker: str, transition: Transition,
                  at: float) -> BreakerOpened | BreakerClosed | None:
    """The alert event for a breaker transition (None for half-open: still not closed).
    ``at`` is wall-clock seconds (breakers run on monotonic time)."""
    if transition.to_state in (BreakerState.OPEN, BreakerState.FORCED_OPEN):
        return BreakerOpened(venue, breaker, transition.reason, at)
    if transition.to_state in (BreakerState.CLOSED, BreakerState.DISABLED):
        return BreakerClosed(venue, breaker, at)
    return None


def _labels(**labels: str) -> FrozenMap:
    return FrozenMap(labels)


def _venue_of(component: str) -> str | None:
    """``venue:sim/pool`` → ``sim``: health alerts of a venue carry its venue label."""
    if component.startswith("venue:"):
        return component[len("venue:"):].split("/", 1)[0] or None
    return None


class RuleEngine:
    """Turns events into observations; remembers restart windows and self-ending pauses."""

    def __init__(self, thresholds: RuleThresholds) -> None:
        self.thresholds = thresholds
        self._restarts: dict[str, deque[float]] = {}
        self._expiring: dict[tuple[str, FrozenMap], tuple[float, str]] = {}

    def on_event(self, event: object, now: float) -> list[Observation]:
        """Observations for one event (empty for events no rule consumes)."""
        match event:
            case BreakerOpened(venue=v, breaker=b, reason=r):
                return [Observation(BREAKER_OPEN, _labels(venue=v, breaker=b), _ONE,
                                    f"breaker {b} of venue {v} is open: {r}")]
            case BreakerClosed(venue=v, breaker=b):
                return [Observation(BREAKER_OPEN, _labels(venue=v, breaker=b), _ZERO,
                                    f"breaker {b} of venue {v} closed")]
            case ChildRestarted(supervisor=s, name=n):
                window = self._restarts.setdefault(s, deque())
                window.append(now)
                self._prune(window, now)
                return [self._storm(s, window, f"last restarted: {n}")]
            case SupervisorGaveUp(supervisor=s, restarts=n, period=p, last_failure=f):
                return [Observation(SUPERVISOR_GAVE_UP, _labels(supervisor=s), _ONE,
                                    f"supervisor {s} gave up after {n} restarts in {p}s: {f}")]
            case LedgerDiscrepancy(venue=v, currency=c, ledger=a, venue_balance=b, tolerance=t):
                # The difference in tolerances; with none allowed, any difference is beyond.
                ratio = abs(a - b) / t if t else (_ZERO if a == b else _INFINITY)
                return [Observation(LEDGER_DISCREPANCY, _labels(venue=v, currency=c), ratio,
                                    f"{c} on {v}: ledger {a} vs venue {b} "
                                    f"(difference {abs(a - b)}, tolerance {t})")]
            case TradingHalted(venue=v, currency=c, reason=r):
                return [Observation(TRADING_FROZEN, _labels(venue=v, currency=c), _ONE,
                                    f"trading in {c} on {v} frozen: {r}")]
            case TradingResumed(venue=v, currency=c):
                return [Observation(TRADING_FROZEN, _labels(venue=v, currency=c), _ZERO,
                                    f"trading in {c} on {v} resumed")]
            case RateLimitPaused(venue=v, seconds=s, reason=r):
                return [self._until(RATE_LIMIT_PAUSED, _labels(venue=v), _dec(s), now + s,
                                    f"venue {v} rate limit: paused {s}s ({r})")]
            case VenueBanned(venue=v, seconds=s, reason=r):
                return [self._until(VENUE_BANNED, _labels(venue=v), _ONE, now + s,
                                    f"venue {v} banned us for {s}s: {r}")]
            case OrderUnknown(venue=v, client_order_id=o):
                return [Observation(ORDER_STUCK, _labels(venue=v, client_order_id=o), _ONE,
                                    f"order {o} on {v} is in an unknown state")]
            case OrderUnknownResolved(venue=v, client_order_id=o):
                return [Observation(ORDER_STUCK, _labels(venue=v, client_order_id=o), _ZERO,
                                    f"order {o} on {v} is known again")]
            case JournalIntegrityFailed(journal=j, reason=r):
                return [Observation(JOURNAL_INTEGRITY, _labels(journal=j), _ONE,
                                    f"journal {j} failed verification: {r}")]
            case HealthChanged(component=c, status=s, reason=r):
                venue = _venue_of(c)
                labels = _labels(component=c, **({"venue": venue} if venue else {}))
                value = _HEALTH_VALUE[s]
                summary = f"component {c} is {s}: {r}"
                return [Observation(HEALTH_DEGRADED, labels, value, summary),
                        Observation(HEALTH_DOWN, labels, value, summary)]
            case ChannelDeliveryFailed(channel=c, reason=r):
                return [Observation(CHANNEL_FAILING, _labels(channel=c), _ONE,
                                    f"alert channel {c} cannot deliver: {r}")]
            case ChannelDeliveryRecovered(channel=c):
                return [Observation(CHANNEL_FAILING, _labels(channel=c), _ZERO,
                                    f"alert channel {c} delivers again")]
        return []

    def on_tick(self, now: float) -> list[Observation]:
        """Observations that time alone produces: storms dying down, pauses and bans ending."""
        out = []
        for supervisor, window in list(self._restarts.items()):
            before = len(window)
            self._prune(window, now)
            if len(window) != before:
                out.append(self._storm(supervisor, window, "restarts calmed down"))
            if not window:
                del self._restarts[supervisor]
        for key, (until, summary) in list(self._expiring.items()):
            if now >= until:
                del self._expiring[key]
                out.append(Observation(key[0], key[1], _ZERO, f"{summary} (over)"))
        return out

    def _prune(self, window: deque[float], now: float) -> None:
        while window and now - window[0] > self.thresholds.restart_storm_window:
            window.popleft()

    def _storm(self, supervisor: str, window: deque[float], detail: str) -> Observation:
        count = len(window)
        return Observation(
            RESTART_STORM, _labels(supervisor=supervisor), Decimal(count),
            f"{count} restarts under {supervisor} in the last "
            f"{self.thresholds.restart_storm_window}s ({detail})",
        )

    def _until(self, rule: str, labels: FrozenMap, value: Decimal, until: float,
               summary: str) -> Observation:
        self._expiring[(rule, labels)] = (until, summary)
        return Observation(rule, labels, value, summary)
