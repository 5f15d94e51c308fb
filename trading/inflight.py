"""When to look up orders that have no definitive state yet: backoff per order, a cap per cycle.

A plain class with no clock and no I/O: the transaction actor calls :meth:`track` /
:meth:`forget` as orders change (``trading.protocol.lookup_priority`` gives the priority)
and, once per cycle, :meth:`due` for the orders to query now. Guarantees:

- ``due(now, cap)`` returns at most ``cap`` keys, most overdue first (ties: lower priority
  number, then the order they were first tracked in), so a backlog is served oldest first
  and the venue's rate limit is respected however many orders are in flight.
- Each order's interval grows by ``factor`` after every query it is handed out for, up to
  ``maximum``; :meth:`track` with ``immediately=True`` (a fresh ambiguity) or :meth:`reset`
  (the last query brought news) starts it over.
- No jitter: the schedule is deterministic; spread comes from orders' different start times.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from datetime import datetime, timedelta

import attrs

__all__ = ["BackoffPolicy", "InflightEntry", "InflightSchedule", "InflightStatistics"]


def _positive(_instance: object, attribute: attrs.Attribute, value: timedelta) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValueError(f"{attribute.name}: expected a positive timedelta, got {value!r}")


def _aware(now: object) -> datetime:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ValueError(f"now: expected a timezone-aware datetime, got {now!r}")
    return now


@attrs.frozen(slots=True)
class BackoffPolicy:
    """Exponential backoff between lookups of one order: initial, × factor, capped."""

    initial: timedelta = attrs.field(default=timedelta(seconds=1), validator=_positive)
    factor: float = 2.0
    maximum: timedelta = attrs.field(default=timedelta(seconds=60), validator=_positive)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.factor, bool) or not isinstance(self.factor, int | float) or not (
                self.factor >= 1):
            raise ValueError(f"factor: expected a number >= 1, got {self.factor!r}")
        if self.maximum < self.initial:
            raise ValueError(f"maximum: {self.maximum} is below initial {self.initial}")

    def after(self, interval: timedelta) -> timedelta:
        """The interval that follows ``interval``."""
        return min(interval * self.factor, self.maximum)


@attrs.frozen(slots=True)
class InflightEntry:
    """One tracked order: when it is next due and how far its backoff has grown."""

    key: Hashable
    priority: int
    next_at: datetime
    interval: timedelta
    seq: int
    queries: int = 0
    last_query_at: datetime | None = None


@attrs.frozen(slots=True)
class InflightStatistics:
    """A snapshot for health and /status: how many orders are followed, overdue, queried."""

    tracked: int
    overdue: int
    queries_handed_out: int
    oldest_overdue_since: datetime | None


class InflightSchedule:
    """The set of orders to re-query and when; see the module docstring for the guarantees."""

    def __init__(self, policy: BackoffPolicy | None = None) -> None:
        self._policy = policy or BackoffPolicy()
        self._entries: dict[Hashable, InflightEntry] = {}
        self._seq = 0
        self._handed_out = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, key: Hashable) -> InflightEntry | None:
        return self._entries.get(key)

    def track(self, key: Hashable, priority: int, now: datetime, *,
              immediately: bool = False) -> InflightEntry:
        """Follow ``key`` (or update its priority). ``immediately``: due now, backoff reset;
        otherwise a new key is first due one initial interval from ``now``."""
        _aware(now)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ValueError(f"priority: expected an int, got {priority!r}")
        entry = self._entries.get(key)
        if entry is None:
            self._seq += 1
            entry = InflightEntry(key, priority, now if immediately else now +
                                  self._policy.initial, self._policy.initial, self._seq)
        else:
            entry = attrs.evolve(entry, priority=priority)
            if immediately:
                entry = attrs.evolve(entry, next_at=min(entry.next_at, now),
                                     interval=self._policy.initial)
        self._entries[key] = entry
        return entry

    def reset(self, key: Hashable, now: datetime) -> None:
        """The last lookup of ``key`` brought news: start its backoff over from ``now``."""
        _aware(now)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = attrs.evolve(entry, interval=self._policy.initial,
                                              next_at=now + self._policy.initial)

    def forget(self, key: Hashable) -> None:
        """Stop following ``key`` (it reached a definitive state); unknown keys are fine."""
        self._entries.pop(key, None)

    def due(self, now: datetime, max_queries: int) -> list[Hashable]:
        """The keys to query now, at most ``max_queries``, most overdue first.

        Each returned key counts as queried at ``now``: its next time is pushed back by its
        interval, and the interval grows.
        """
        _aware(now)
        if isinstance(max_queries, bool) or not isinstance(max_queries, int) or max_queries < 0:
            raise ValueError(f"max_queries: expected an int >= 0, got {max_queries!r}")
        ready = (e for e in self._entries.values() if e.next_at <= now)
        chosen = heapq.nsmallest(max_queries, ready, key=lambda e: (e.next_at, e.priority, e.seq))
        for entry in chosen:
            self._entries[entry.key] = attrs.evolve(
                entry, next_at=now + entry.interval, interval=self._policy.after(entry.interval),
                queries=entry.queries + 1, last_query_at=now)
        self._handed_out += len(chosen)
        return [entry.key for entry in chosen]

    def next_due_at(self) -> datetime | None:
        """When the earliest tracked order falls due (for the actor's next tick), or None."""
        return min((e.next_at for e in self._entries.values()), default=None)

    def statistics(self, now: datetime) -> InflightStatistics:
        _aware(now)
        overdue = [e.next_at for e in self._entries.values() if e.next_at <= now]
        return InflightStatistics(len(self._entries), len(overdue), self._handed_out,
                                  min(overdue, default=None))
