"""The venue's state holder: engine + fault injector + clock, shared by every dialect and admin."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs

from simulator.engine import Engine
from simulator.errors import ConfigError, UnknownAccount
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
        now = clock()
        self.engine = Engine(self.config, now=now)
        self.initial_faults = self.resolve_faults(initial_faults or FaultPlan())
        self.faults = FaultInjector()
        self.faults.install(self.initial_faults, now)
        self._sequences: dict[str, int] = {}

    def now(self) -> int:
        return self.clock()

    def resolve_faults(self, plan: FaultPlan) -> FaultPlan:
        """``plan`` checked against this venue: accounts (by id, API key or token) become
        engine ids, currencies must be the venue's; raises ``ConfigError`` naming the field."""
        currencies = {c for m in self.config.markets for c in (m.base, m.quote)}
        currencies |= {c for a in self.config.accounts for c in a.balances}
        rules = []
        for i, rule in enumerate(plan.rules):
            changes: dict[str, Any] = {}
            for field in ("account", "target_account"):
                ref = getattr(rule, field)
                if ref is not None:
                    try:
                        changes[field] = self.engine.resolve_account(ref).id
                    except UnknownAccount as exc:
                        raise ConfigError(str(exc), f"rules[{i}].{field}") from None
            if rule.currency is not None and rule.currency not in currencies:
                raise ConfigError(f"unknown currency {rule.currency!r}; one of "
                                  f"{sorted(currencies)}", f"rules[{i}].currency")
            rules.append(attrs.evolve(rule, **changes) if changes else rule)
        return FaultPlan(plan.seed, tuple(rules))

    def install_faults(self, plan: FaultPlan) -> FaultPlan:
        """Resolve and install ``plan`` (all or nothing); returns what was installed."""
        resolved = self.resolve_faults(plan)
        self.faults.install(resolved, self.clock())
        return resolved

    def next_in_sequence(self, name: str) -> int:
        """1, 2, 3, ... per ``name``: numbering a dialect keeps (Binance's generated client
        order ids) lives here, so ``reset`` restarts it with everything else."""
        number = self._sequences.get(name, 0) + 1
        self._sequences[name] = number
        return number

    def reset(self) -> None:
        """Back to the start state: engine, history, the initial fault profile (no ban) and
        every dialect sequence; afterwards nothing tells this venue from a fresh one."""
        now = self.clock()
        self.engine.reset(now)
        self.faults.install(self.initial_faults, now)
        self._sequences.clear()
