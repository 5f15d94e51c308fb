"""Suite-wide test set-up: hypothesis profiles, actor clean-up, loguru routed to pytest.

Profiles: "default" (modest, fast on a laptop) and "ci" (chosen when the CI environment
variable is set): derandomized so a CI run is reproducible, no per-example deadline (the
shared 2-core runner is slow and noisy), and the reproduction blob printed on failure.
Select another with HYPOTHESIS_PROFILE=<name>.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pykka
import pytest
from hypothesis import HealthCheck, settings
from loguru import logger

settings.register_profile(
    "default",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=50,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default")
)

logger.remove()  # loguru's default DEBUG sink on the real stderr; tests get the fixture's sink


@pytest.fixture(autouse=True)
def _loguru_to_stderr() -> Iterator[None]:
    """Show WARNING and above from loguru in pytest's captured stderr for each test."""
    handler_id = logger.add(sys.stderr, level="WARNING", backtrace=False, diagnose=False)
    yield
    try:
        logger.remove(handler_id)
    except ValueError:
        pass  # the test replaced every sink itself (configure_logging does)


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    """Every test leaves no actor running, whatever it did."""
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=10)
