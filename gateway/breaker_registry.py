"""All breakers of a node, keyed by venue and category (and optionally method).

Per-method breakers are created on demand, so the registry evicts those idle longer than a TTL;
a breaker is only evicted while CLOSED (after due time transitions) with no probes in flight, so
eviction never forgets that an endpoint is failing. Venue+category breakers are never evicted.
Not thread-safe: one owner (the gatekeeper actor) calls it.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable

import attrs

from gateway.breaker import (
    Breaker,
    BreakerConfig,
    BreakerMetrics,
    BreakerState,
    Permit,
    Transition,
)
from gateway.classify import Outcome
from gateway.errors import InvalidConfigError


@attrs.frozen(cache_hash=True)
class BreakerKey:
    """Which calls a breaker guards; `method` None means the whole venue+category."""

    venue: str
    category: str
    method: str | None = None

    def __str__(self) -> str:
        parts = [self.venue, self.category] + ([self.method] if self.method else [])
        return "/".join(parts)


RegistryListener = Callable[[BreakerKey, Transition], None]
ConfigSource = BreakerConfig | Callable[[BreakerKey], BreakerConfig]


class BreakerRegistry:
    """Creates, finds, lists and evicts breakers; forwards every transition to its listeners."""

    def __init__(
        self,
        config: ConfigSource,
        *,
        idle_ttl: float = 600.0,
        rng: random.Random | None = None,
    ) -> None:
        if not idle_ttl > 0:
            raise InvalidConfigError("BreakerRegistry", "idle_ttl", f"must be > 0: {idle_ttl!r}")
        self._config = config
        self._idle_ttl = idle_ttl
        self._rng = rng if rng is not None else random.Random()
        self._breakers: dict[BreakerKey, Breaker] = {}
        self._last_used: dict[BreakerKey, float] = {}
        self._listeners: list[RegistryListener] = []

    def add_listener(self, listener: RegistryListener) -> None:
        """Call `listener(key, transition)` on every transition of every breaker."""
        self._listeners.append(listener)

    def get(self, key: BreakerKey, now: float) -> Breaker:
        """The breaker for `key`, created on first use; marks it used at `now`."""
        breaker = self._breakers.get(key)
        if breaker is None:
            config = self._config if isinstance(self._config, BreakerConfig) else self._config(key)
            # Each breaker draws jitter from its own stream, seeded from the registry's RNG.
            breaker = Breaker(str(key), config, random.Random(self._rng.getrandbits(64)))
            breaker.add_listener(functools.partial(self._publish, key))
            self._breakers[key] = breaker
        self._last_used[key] = max(now, self._last_used.get(key, now))
        return breaker

    def record(
        self, key: BreakerKey, permit: Permit, outcome: Outcome, latency: float, now: float
    ) -> bool:
        """Report an outcome to `key`'s breaker and mark it used; False (nothing recorded) if
        that breaker was evicted meanwhile, since the permit's accounting went with it."""
        breaker = self._breakers.get(key)
        if breaker is None:
            return False
        self._last_used[key] = max(now, self._last_used[key])
        breaker.record(permit, outcome, latency, now)
        return True

    def find(self, key: BreakerKey) -> Breaker | None:
        """The breaker for `key` if it exists; does not create or touch it."""
        return self._breakers.get(key)

    def __len__(self) -> int:
        return len(self._breakers)

    def snapshot(self, now: float) -> dict[BreakerKey, BreakerMetrics]:
        """State and metrics of every breaker as of `now`."""
        return {key: breaker.metrics(now) for key, breaker in self._breakers.items()}

    def evict_idle(self, now: float) -> list[BreakerKey]:
        """Drop per-method breakers unused for longer than the TTL and healthy; returns them."""
        evicted = []
        for key, breaker in list(self._breakers.items()):
            if key.method is None or now - self._last_used[key] <= self._idle_ttl:
                continue
            if breaker.advance(now) is BreakerState.CLOSED and breaker.probes_in_flight == 0:
                del self._breakers[key]
                del self._last_used[key]
                evicted.append(key)
        return evicted

    def _publish(self, key: BreakerKey, transition: Transition) -> None:
        for listener in list(self._listeners):
            listener(key, transition)
