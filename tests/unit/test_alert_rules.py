"""Rules as data: each event type becomes the right observation; windows and pauses expire."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alerts.core import AlertCore, AlertPolicy
from alerts.rules import (
    BREAKER_OPEN,
    CHANNEL_FAILING,
    HEALTH_DEGRADED,
    HEALTH_DOWN,
    LEDGER_DISCREPANCY,
    RATE_LIMIT_PAUSED,
    RESTART_STORM,
    SUPERVISOR_GAVE_UP,
    TRADING_FROZEN,
    VENUE_BANNED,
    RuleEngine,
    RuleThresholds,
    breaker_event,
    default_inhibit_rules,
    rule_specs,
)
from gateway.breaker import BreakerState, Transition
from messages.alerts import (
    AlertState,
    BreakerClosed,
    BreakerOpened,
    ChannelDeliveryFailed,
    ChannelDeliveryRecovered,
    HealthChanged,
    JournalIntegrityFailed,
    LedgerDiscrepancy,
    OrderUnknown,
    OrderUnknownResolved,
    RateLimitPaused,
    TradingHalted,
    TradingResumed,
    VenueBanned,
)
from messages.supervision import ChildRestarted, SupervisorGaveUp

T = RuleThresholds(restart_storm_count=3, restart_storm_window=10, order_unknown_seconds=5,
                   rate_limit_pause_seconds=2, health_for_seconds=0, breaker_open_seconds=0)


def run(events_at: list[tuple[float, object]], until: float) -> tuple[AlertCore, RuleEngine]:
    engine = RuleEngine(T)
    core = AlertCore(AlertPolicy(group_wait=0), rule_specs(T), default_inhibit_rules())
    now = 0.0
    queue = sorted(events_at, key=lambda pair: pair[0])
    while now <= until:
        while queue and queue[0][0] <= now:
            for observation in engine.on_event(queue.pop(0)[1], now):
                core.observe(observation, now)
        for observation in engine.on_tick(now):
            core.observe(observation, now)
        core.tick(now)
        now += 0.5
    return core, engine


def states(core: AlertCore, now: float = 1e9) -> dict[str, AlertState]:
    return {a.rule: a.state for a in core.alerts(now)}


def restart(at: float) -> ChildRestarted:
    return ChildRestarted("venue:sim/pool", "w1", "venue:sim/pool/w1", 1, 0.1, at)


def test_every_rule_has_a_distinct_name_and_a_description() -> None:
    specs = rule_specs(RuleThresholds())
    assert len({s.name for s in specs}) == len(specs) == 12
    assert all(s.description for s in specs)


def test_restart_storm_fires_above_the_count_and_clears_when_the_window_empties() -> None:
    core, _ = run([(t, restart(t)) for t in (1, 2, 3)], until=4)
    assert RESTART_STORM not in states(core)  # 3 restarts: not more than 3
    core, _ = run([(t, restart(t)) for t in (1, 2, 3, 4)], until=5)
    assert states(core)[RESTART_STORM] is AlertState.FIRING
    core, _ = run([(t, restart(t)) for t in (1, 2, 3, 4)], until=20)
    assert states(core)[RESTART_STORM] is AlertState.RESOLVED


def test_order_stuck_fires_only_after_the_configured_time() -> None:
    stuck = OrderUnknown("sim", "c1", 0)
    core, _ = run([(0, stuck), (3, OrderUnknownResolved("sim", "c1", 3))], until=10)
    assert states(core) == {}
    core, _ = run([(0, stuck)], until=6)
    assert states(core)["order-stuck"] is AlertState.FIRING


def test_rate_limit_pause_fires_above_threshold_and_clears_when_it_ends() -> None:
    core, _ = run([(0, RateLimitPaused("sim", 1.0, "429", 0))], until=3)
    assert states(core) == {}
    core, _ = run([(0, RateLimitPaused("sim", 5.0, "429", 0))], until=3)
    assert states(core)[RATE_LIMIT_PAUSED] is AlertState.FIRING
    core, _ = run([(0, RateLimitPaused("sim", 5.0, "429", 0))], until=6)
    assert states(core)[RATE_LIMIT_PAUSED] is AlertState.RESOLVED


def test_ledger_discrepancy_has_hysteresis_around_its_tolerance() -> None:
    def report(at: float, diff: str) -> LedgerDiscrepancy:
        return LedgerDiscrepancy("sim", "USDT", Decimal("100"), Decimal("100") + Decimal(diff),
                                 Decimal("1"), at)

    core, _ = run([(0, report(0, "1"))], until=1)
    assert states(core) == {}  # at the tolerance: not beyond it
    core, _ = run([(0, report(0, "1.5")), (1, report(1, "0.8"))], until=2)
    assert states(core)[LEDGER_DISCREPANCY] is AlertState.FIRING  # 0.8 > half the tolerance
    core, _ = run([(0, report(0, "1.5")), (1, report(1, "0.4"))], until=2)
    assert states(core)[LEDGER_DISCREPANCY] is AlertState.RESOLVED


def test_with_a_zero_tolerance_any_difference_fires_and_only_a_match_clears() -> None:
    def report(at: float, diff: str) -> LedgerDiscrepancy:
        return LedgerDiscrepancy("sim", "USDT", Decimal("100"), Decimal("100") + Decimal(diff),
                                 Decimal(0), at)

    core, _ = run([(0, report(0, "0"))], until=1)
    assert states(core) == {}
    core, _ = run([(0, report(0, "0.00000001")), (1, report(1, "0.000000005"))], until=2)
    assert states(core)[LEDGER_DISCREPANCY] is AlertState.FIRING
    core, _ = run([(0, report(0, "-25")), (1, report(1, "0"))], until=2)
    assert states(core)[LEDGER_DISCREPANCY] is AlertState.RESOLVED


def test_one_shot_rules_and_their_clearing_events() -> None:
    core, _ = run([
        (0, SupervisorGaveUp("venue:sim", 4, 5.0, "boom", 0)),
        (0, JournalIntegrityFailed("journal", "hash chain broken", 0)),
        (0, TradingHalted("sim", "BTC", "discrepancy", 0)),
        (1, TradingResumed("sim", "BTC", 1)),
        (0, ChannelDeliveryFailed("slack", "breaker opened", 0)),
        (1, ChannelDeliveryRecovered("slack", 1)),
    ], until=2)
    got = states(core)
    assert got[SUPERVISOR_GAVE_UP] is AlertState.FIRING
    assert got["journal-integrity"] is AlertState.FIRING
    assert got[TRADING_FROZEN] is AlertState.RESOLVED
    assert got[CHANNEL_FAILING] is AlertState.RESOLVED


def test_health_down_inhibits_degraded_and_a_banned_venue_inhibits_its_breaker() -> None:
    core, _ = run([
        (0, HealthChanged("venue:sim/pool", "down", "no worker", 0)),
        (0, VenueBanned("sim", 60, "418", 0)),
        (0, BreakerOpened("sim", "trading", "418", 0)),
    ], until=1)
    alerts = {a.rule: a for a in core.alerts(1)}
    assert alerts[HEALTH_DOWN].state is AlertState.FIRING
    assert alerts[HEALTH_DOWN].labels["venue"] == "sim"
    assert alerts[HEALTH_DEGRADED].inhibited
    assert alerts[BREAKER_OPEN].inhibited and not alerts[VENUE_BANNED].inhibited


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="restart_storm_clear"):
        RuleThresholds(restart_storm_count=2, restart_storm_clear=3)
    with pytest.raises(ValueError):
        RuleThresholds(breaker_open_seconds=-1)


def test_breaker_transitions_become_alert_events() -> None:
    def event(to_state: BreakerState):
        return breaker_event("sim", "sim/trading",
                             Transition("b", BreakerState.CLOSED, to_state, "why", 1.0), 5.0)

    assert event(BreakerState.OPEN) == BreakerOpened("sim", "sim/trading", "why", 5.0)
    assert event(BreakerState.FORCED_OPEN) == BreakerOpened("sim", "sim/trading", "why", 5.0)
    assert event(BreakerState.CLOSED) == BreakerClosed("sim", "sim/trading", 5.0)
    assert event(BreakerState.HALF_OPEN) is None


def test_with_the_default_thresholds_a_venue_down_mutes_its_health_alert_from_the_start() -> None:
    """A breaker that stays open degrades its venue's health at the next poll; the health
    alert must not fire before the breaker-open alert that inhibits it (defaults: health's
    `for` is longer than the breaker's), or operators get a warning the inhibition was
    meant to spare them."""
    defaults = RuleThresholds()
    engine = RuleEngine(defaults)
    core = AlertCore(AlertPolicy(group_wait=0), rule_specs(defaults), default_inhibit_rules())
    events = [(0.0, BreakerOpened("sim", "sim/trading", "failure rate 100%", 0)),
              (2.0, HealthChanged("venue:sim/pool", "degraded", "breaker open", 2))]
    notified: list[str] = []
    now = 0.0
    while now <= 120:
        while events and events[0][0] <= now:
            for observation in engine.on_event(events.pop(0)[1], now):
                core.observe(observation, now)
        for notification in core.tick(now):
            notified += [item.rule for item in notification.items]
        now += 0.5
    assert notified == [BREAKER_OPEN]
    assert states(core)[HEALTH_DEGRADED] is AlertState.FIRING
    assert next(a for a in core.alerts(now) if a.rule == HEALTH_DEGRADED).inhibited


def test_the_shipped_config_keeps_health_alerts_slower_than_breaker_alerts() -> None:
    import tomllib
    from pathlib import Path

    from ironclad.config import AlertRulesConfig

    shipped = tomllib.loads((Path(__file__).resolve().parents[2] / "config" / "default.toml")
                            .read_text())["alerts"]["rules"]
    for rules in (RuleThresholds(), AlertRulesConfig(), shipped):
        get = rules.get if isinstance(rules, dict) else lambda k, r=rules: getattr(r, k)
        assert get("health_for_seconds") > get("breaker_open_seconds")
