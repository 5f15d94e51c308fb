"""``python run.py --demo`` runs its whole scripted tour against the local venue, every check
passing against the venue's ground truth, in under two minutes (a real subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

STEPS = ("Normal trading", "The venue starts failing", "The venue recovers", "A worker crashes",
         "An ambiguous order", "The node restarts", "A balance drift")


def test_demo_passes_every_check_in_under_two_minutes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120", "TMPDIR": str(tmp_path)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(REPO / "run.py"), "--demo"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert elapsed < 120, f"the demo took {elapsed:.0f}s"
    assert "all checks passed" in done.stdout, output
    assert "✗" not in done.stdout, output
    for step in STEPS:  # each step ran and is in the summary table, passed
        assert step in done.stdout, f"step {step!r} missing:\n{output}"
    assert done.stdout.count("passed") >= len(STEPS) + 1, output
    assert not list(tmp_path.glob("ironclad-demo-*")), "a passing demo leaves no data behind"


def test_a_failed_check_makes_the_demo_exit_1_and_keep_its_data(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    """The exit status follows the checks: one false claim → 1, named in the summary."""
    import io

    from rich.console import Console

    from ironclad import demo

    def one_step_with_a_false_claim(tour: demo._Tour) -> None:
        with tour.step("A claim that does not hold", "The venue is asked for its health."):
            healthy = tour.sim("GET", "/_sim/health")["ok"]
            tour.check("the venue says it is unhealthy", not healthy, f"ok={healthy}")

    monkeypatch.setattr(demo._Tour, "run", one_step_with_a_false_claim)
    monkeypatch.setattr(demo.tempfile, "tempdir", str(tmp_path))
    out = io.StringIO()
    assert demo.run_demo(Console(file=out, width=120)) == 1
    text = out.getvalue()
    assert "✗ the venue says it is unhealthy" in text
    assert "some checks failed" in text
    kept = list(tmp_path.glob("ironclad-demo-*"))
    assert len(kept) == 1 and (kept[0] / "node.log").exists() and str(kept[0]) in text
