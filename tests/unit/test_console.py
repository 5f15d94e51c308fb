"""The console's status table: what the operator sees for a given poll (pure rendering)."""

from __future__ import annotations

from rich.console import Console

from actors.health import NodeStatusView
from ironclad.console import render_status
from ironclad.health_rules import (
    AlertsReading,
    BreakerReading,
    HealthThresholds,
    NodeReadings,
    PoolReading,
    RateLimitReading,
    ReconciliationReading,
    TradingReading,
    Unreadable,
    VenueReadings,
    derive_health,
)


def _text(renderable: object) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(renderable)
    return console.export_text()


def _view(*, breaker: str = "closed", accepting: bool = True, runs: int = 1) -> NodeStatusView:
    readings = NodeReadings(
        tree=Unreadable(reason="not read in this test"),
        venues=(VenueReadings(
            venue="sim",
            breakers=(BreakerReading(breaker="sim/market_data", category="market_data",
                                     state=breaker, open_for=4.0 if breaker == "open" else None),),
            pool=PoolReading(queued={"market_data": 0, "trading": 3}, bounds={},
                             in_flight={}, idle_workers=1, known_workers=4, expected_workers=4),
            rate_limit=RateLimitReading(paused_for=None, pause_reason=None)),),
        trading=TradingReading(
            accepting=accepting,
            not_accepting_reason=None if accepting else "start-up reconciliation has not "
                                                        "finished"),
        reconciliation=ReconciliationReading(
            last_success_age=12.0 if runs else None, last_failure=None, runs=runs,
            currency_differences={"match": 4} if runs else {}),
        alerts=AlertsReading(active={("error", "firing"): 1}),
    )
    return NodeStatusView(readings=readings, report=derive_health(readings, HealthThresholds()),
                          at=0.0)


def test_running_node_shows_breakers_pool_trading_and_alerts() -> None:
    text = _text(render_status(_view(), "http://127.0.0.1:8080/"))
    assert "http://127.0.0.1:8080/" in text
    assert "sim/market_data closed" in text
    assert "1/4 workers idle, queued md 0 tr 3" in text
    assert "accepting orders" in text
    assert "12s ago (match 4)" in text
    assert "1 firing (1 error firing)" in text


def test_open_breaker_is_shown_with_its_time() -> None:
    text = _text(render_status(_view(breaker="open"), None))
    assert "sim/market_data open (4s)" in text
    assert "degraded" in text.split("\n")[0] or "down" in text.split("\n")[0]


def test_start_up_reconciliation_shows_progress() -> None:
    text = _text(render_status(_view(accepting=False, runs=0), None, waited=3.2))
    assert "start-up reconciliation with the venue: 3s, 0 run(s)" in text
    assert "reconciled  never" in text


def test_before_the_first_poll_it_says_so() -> None:
    assert "waiting for the first health poll" in _text(render_status(None, None, waited=1.0))


def test_live_display_only_on_a_terminal_and_not_when_disabled() -> None:
    from ironclad.console import StatusConsole

    assert StatusConsole.wanted(disabled=True) is False
    assert StatusConsole.wanted(disabled=False) is False  # pytest captures stdout: no terminal
