"""Venue back-off signals reach the alert manager: a 429 raises `rate-limit-paused`, a ban
`venue-banned` and (through the opened breakers) `breaker-open`; real venue, real alerts
subtree. Pauses are long (30 s): the alert rules ignore short ones."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from actors import call, venue_spec
from actors.alert_manager import ALERT_MANAGER
from ironclad.config import Credentials, Secret
from ironclad.node import alerts_part, supervisor_spec
from messages.alerts import ListAlerts
from messages.exchange import ExchangeFailed
from simulator.server import RunningVenue
from supervisors import Strategy, ask, start_tree
from tests.helpers_gateway import DEMO, balance, gateway_config, ticker
from tests.helpers_venue import install_faults, running_venue
from tests.waiting import wait_until


@pytest.fixture
def venue() -> Iterator[RunningVenue]:
    with running_venue(seed=4) as handle:
        yield handle


def firing_rules() -> set[str]:
    listed = ask(ALERT_MANAGER, ListAlerts(), timeout=5)
    return {view.alert.rule for view in listed.alerts if view.alert.labels.get("venue") == "sim"}


@pytest.mark.parametrize(("fault", "call_kind", "rules"), [
    ({"endpoint": "fetch_balance", "fault": "rate_limit", "retry_after_s": 30},
     "balance", {"rate-limit-paused"}),
    ({"endpoint": "fetch_ticker", "fault": "ban", "ban_s": 30}, "ticker",
     {"venue-banned", "breaker-open"}),
])
def test_venue_back_off_raises_alerts(venue: RunningVenue, tmp_path: Path,
                                      fault: dict[str, object], call_kind: str,
                                      rules: set[str]) -> None:
    config = attrs.evolve(gateway_config(venue.url, tmp_path), credentials=Credentials(
        **{key: Secret(value) for key, value in DEMO.items()}))
    alerts = alerts_part(config)
    assert alerts is not None
    subtree = venue_spec(config, functools.partial(supervisor_spec, config))
    tree = start_tree(supervisor_spec(config, "node", Strategy.ONE_FOR_ONE, [alerts, subtree]))
    try:
        install_faults(venue.url, [{**fault, "count": 1}])
        assert isinstance(call(balance() if call_kind == "balance" else ticker()),
                          ExchangeFailed)
        wait_until(lambda: rules <= firing_rules())
    finally:
        assert tree.stop(10)
