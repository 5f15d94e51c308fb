"""A damaged journal (transactions or ledger) stops run.py at once: exit 1 with one clear
line, no restart storm, and the journal-integrity alert recorded by the alert manager."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import diskcache
import pykka
import pytest

from alerts.outbox import AlertStore
from alerts.rules import JOURNAL_INTEGRITY
from messages.alerts import AlertState
from simulator.server import RunningVenue
from tests.helpers_trading import place, placed, start_trading, trading_config, wait_accepting
from tests.helpers_venue import running_venue

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def venue() -> Iterator[RunningVenue]:
    with running_venue(seed=5) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


def _edit_first_record(directory: Path) -> None:
    with diskcache.Cache(str(directory)) as cache:
        first = min(k for k in cache.iterkeys() if isinstance(k, int))
        text = cache.get(first)
        assert '"cause":"' in text
        cache.set(first, text.replace('"cause":"', '"cause":"X', 1))


@pytest.mark.parametrize("journal", ["journal", "ledger"])
def test_a_damaged_journal_fails_once_with_one_line_and_one_alert(
        venue: RunningVenue, tmp_path: Path, journal: str) -> None:
    tree = start_trading(trading_config(venue.url, tmp_path))
    wait_accepting()
    placed(place("integrity-1", price="50000"))
    tree.stop()
    pykka.ActorRegistry.stop_all()
    _edit_first_record(tmp_path / journal)

    env = {**os.environ, "IRONCLAD_API_KEY": "demo-key", "IRONCLAD_API_SECRET": "demo-secret"}
    result = subprocess.run(
        [sys.executable, "run.py", "--data-dir", str(tmp_path), "--venue-url", venue.url,
         "--http-port", "0", "--no-console"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr

    assert result.returncode == 1, output[-3000:]
    failed = [line for line in output.splitlines()
              if "journal integrity check failed: " in line]
    assert failed, output[-3000:]
    assert str(tmp_path / journal) in failed[-1]
    # Failed once: never restarted, and one traceback at most (the start error's).
    assert "restarting " not in output, output[-3000:]
    assert output.count("Traceback") <= 1, output[-3000:]
    assert len(output.splitlines()) < 150, output[-3000:]

    store = AlertStore(tmp_path / "alerts")
    try:
        alerts = [a for a in store.latest_alerts() if a.rule == JOURNAL_INTEGRITY]
    finally:
        store.close()
    assert len(alerts) == 1, alerts
    assert alerts[0].state is AlertState.FIRING
    assert alerts[0].labels["journal"] == str(tmp_path / journal)
