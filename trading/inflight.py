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
- :meth:`plan` may refresh plain OPEN orders (priority :data:`SWEEP_PRIORITY`) with one
  listing of the venue's open orders instead of one lookup each, when the due ones' lookups
  would cost more than the listing. It never drops an order: every due order is either in
  the sweep, handed out alone, or left due (cap reached, or a sweep still in flight). An order
  tracked ``immediately`` (an explicit lookup was asked for, e.g. it was missing from a
  listing) is handed out alone, never swept, until that lookup was handed out.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable
from datetime import datetime, timedelta

import attrs

__all__ = [
    "SWEEP_PRIORITY",
    "BackoffPolicy",
    "InflightEntry",
    "InflightPlan",
    "InflightSchedule",
    "InflightStatistics",
    "SweepCosts",
]

#: The priority of a plain OPEN order (``trading.protocol.lookup_priority``): only these may be
#: refreshed by a listing of open orders; UNKNOWN, cancel-pending and closed-with-trades-missing
#: orders need their own lookup.
SWEEP_PRIORITY = 2


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
    #: An explicit lookup was asked for (``track(immediately=True)``): query it alone.
    alone: bool = False

    @property
    def sweepable(self) -> bool:
        return self.priority == SWEEP_PRIORITY and not self.alone


@attrs.frozen(slots=True)
class SweepCosts:
    """Rate-limit units of one order lookup and of one listing of all open orders (None: the
    venue cannot list them all in one complete answer, so orders are looked up one by one)."""

    lookup: float
    sweep: float | None

    def __attrs_post_init__(self) -> None:
        for name in ("lookup", "sweep"):
            value = getattr(self, name)
            if value is None and name == "sweep":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name}: expected a number > 0, got {value!r}")

    def prefer_sweep(self, due_open: int) -> bool:
        """One listing is cheaper than ``due_open`` lookups."""
        return self.sweep is not None and due_open * self.lookup > self.sweep


@attrs.frozen(slots=True)
class InflightPlan:
    """What to ask the venue this cycle: ``alone`` keys one lookup each; ``sweep`` keys (empty:
    no sweep) refreshed by one listing of open orders, whose absentees must then be tracked
    ``immediately`` (they closed; only a lookup can say how)."""

    alone: tuple[Hashable, ...]
    sweep: tuple[Hashable, ...] = ()


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
                                  self._policy.initial, self._policy.initial, self._seq,
                                  alone=immediately)
        else:
            entry = attrs.evolve(entry, priority=priority)
            if immediately:
                entry = attrs.evolve(entry, next_at=min(entry.next_at, now),
                                     interval=self._policy.initial, alone=True)
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
        return self._hand_out(ready, now, max_queries)

    def plan(self, now: datetime, max_queries: int, costs: SweepCosts, *,
             sweep_in_flight: bool = False) -> InflightPlan:
        """The lookups of this cycle, at most ``max_queries`` requests (a sweep is one).

        A sweep is chosen when the due sweepable orders' lookups would cost more than one
        listing (``costs``); it then takes every sweepable order, due or not (the listing
        shows them all at no extra cost), and the other slots go to the due orders that need
        a lookup of their own. While ``sweep_in_flight``, due sweepable orders wait for its
        answer instead of being looked up one by one. Every key handed out counts as queried
        at ``now`` (see :meth:`due`).
        """
        _aware(now)
        if isinstance(max_queries, bool) or not isinstance(max_queries, int) or max_queries < 0:
            raise ValueError(f"max_queries: expected an int >= 0, got {max_queries!r}")
        ready = [e for e in self._entries.values() if e.next_at <= now]
        due_open = sum(1 for e in ready if e.sweepable)
        if max_queries > 0 and not sweep_in_flight and costs.prefer_sweep(due_open):
            swept = [e for e in self._entries.values() if e.sweepable]
            alone = self._hand_out((e for e in ready if not e.sweepable), now, max_queries - 1)
            return InflightPlan(tuple(alone), tuple(self._hand_out(swept, now, len(swept))))
        if sweep_in_flight:
            ready = [e for e in ready if not e.sweepable]
        return InflightPlan(tuple(self._hand_out(ready, now, max_queries)))

    def observed(self, key: Hashable, now: datetime) -> None:
        """A listing taken for other orders showed this plain OPEN order: it counts as looked
        up at ``now`` (its backoff goes on). Any other entry is left as it is."""
        _aware(now)
        entry = self._entries.get(key)
        if entry is not None and entry.sweepable:
            self._entries[key] = attrs.evolve(
                entry, next_at=now + entry.interval, interval=self._policy.after(entry.interval),
                queries=entry.queries + 1, last_query_at=now)

    def _hand_out(self, candidates: Iterable[InflightEntry], now: datetime,
                  limit: int) -> list[Hashable]:
        chosen = heapq.nsmallest(limit, candidates, key=lambda e: (e.next_at, e.priority, e.seq))
        for entry in chosen:
            self._entries[entry.key] = attrs.evolve(
                entry, next_at=now + entry.interval, interval=self._policy.after(entry.interval),
                queries=entry.queries + 1, last_query_at=now, alone=False)
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
