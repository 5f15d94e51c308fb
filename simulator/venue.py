"""The venue's state holder: engine + fault injector + clock, shared by every dialect and admin."""

from __future__ import annotations

import time
from collections.abc import Callable

from simulator.engine import Engine
from simulator.faults import FaultInjector, FaultPlan
from simulator.model import VenueConfig

__all__ = ["Venue", "wall_clock_ms"]


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class Venue:
    """One venue instance. ``clock`` returns epoch milliseconds (injectable for tests);
    ``initial_faults`` is the fault profile that ``reset`` reinstalls."""

    def __init__(self, config: VenueConfig | None = None,
                 initial_faults: FaultPlan | None = None,
                 clock: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config or VenueConfig()
        self.clock = clock
        self.initial_faults = initial_faults or FaultPlan()
        now = clock()
        self.engine = Engine(self.config, now=now)
        self.faults = FaultInjector()
        self.faults.install(self.initial_faults, now)

    def now(self) -> int:
        return self.clock()

    def reset(self) -> None:
        """Back to the start state: engine, history and the initial fault profile."""
        now = self.clock()
        self.engine.reset(now)
        self.faults.install(self.initial_faults, now)
