"""Public market data kept on disk per venue, so reads can be answered (marked stale) while the
venue's breaker is open.

Only market data is accepted: balances, orders and trades of the account change under our feet
and must never feed a trading decision from a cache, so asking for them raises
UncacheableKindError. Values are stored as JSON text, which proves they are JSON-able and keeps
pickled objects out of the disk. `now` is wall-clock epoch seconds (entries outlive the
process, so a monotonic clock would not do); it is passed in, never read here. An entry whose
`stored_at` lies in the future (the wall clock stepped back) is reported stale, never fresh.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import diskcache

from gateway.errors import InvalidConfigError, NotJsonableError, UncacheableKindError


class MarketDataKind(enum.Enum):
    """The only kinds of data the cache holds."""

    MARKETS = "markets"
    TICKER = "ticker"
    ORDER_BOOK = "order_book"
    TRADES = "trades"

    # Singletons: identity hashing is exact, and Enum's own __hash__ is Python code run on
    # every market-data call (the worker's store throttle is keyed by kind).
    __hash__ = object.__hash__


DEFAULT_TTLS: Mapping[MarketDataKind, float] = {
    MarketDataKind.MARKETS: 3600.0,
    MarketDataKind.TICKER: 2.0,
    MarketDataKind.ORDER_BOOK: 1.0,
    MarketDataKind.TRADES: 5.0,
}

_KIND_OF_METHOD: Mapping[str, MarketDataKind] = {
    "load_markets": MarketDataKind.MARKETS,
    "fetch_markets": MarketDataKind.MARKETS,
    "fetch_ticker": MarketDataKind.TICKER,
    "fetch_order_book": MarketDataKind.ORDER_BOOK,
    "fetch_trades": MarketDataKind.TRADES,
}


def kind_for_method(method: str) -> MarketDataKind | None:
    """The cache kind of a unified ccxt method, or None if its answers must not be cached."""
    return _KIND_OF_METHOD.get(method)


def _kind(kind: MarketDataKind | str) -> MarketDataKind:
    if isinstance(kind, MarketDataKind):
        return kind
    try:
        return MarketDataKind(kind)
    except ValueError:
        raise UncacheableKindError(
            f"{kind!r} is not public market data; balances, orders and account trades are "
            f"never cached (cacheable: {[k.value for k in MarketDataKind]})"
        ) from None


def _key(key: str) -> str:
    if not isinstance(key, str):
        raise UncacheableKindError(f"cache keys are strings (a symbol or ''), got {key!r}")
    return key


def _finite(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value)):
        raise InvalidConfigError("MarketDataCache", name, f"must be a finite number: {value!r}")


@attrs.frozen
class Cached:
    """A cached answer; `fresh` is False once older than its kind's TTL."""

    value: Any
    fresh: bool
    stored_at: float
    age: float


class MarketDataCache:
    """The cache of one venue, in `directory/<venue>`. Safe to share between threads and
    processes (diskcache's guarantee). Entries older than TTL + `max_stale` are dropped."""

    def __init__(
        self,
        directory: str | Path,
        venue: str,
        *,
        ttls: Mapping[MarketDataKind, float] | None = None,
        max_stale: float = 3600.0,
        size_limit: int = 256 * 1024 * 1024,
    ) -> None:
        if not venue or "/" in venue or venue.startswith("."):
            raise InvalidConfigError("MarketDataCache", "venue", f"not a plain name: {venue!r}")
        merged = dict(DEFAULT_TTLS)
        for kind, ttl in (ttls or {}).items():
            field = f"ttls[{_kind(kind).value}]"
            _finite(field, ttl)
            if ttl <= 0:
                raise InvalidConfigError("MarketDataCache", field, "must be > 0")
            merged[_kind(kind)] = float(ttl)
        _finite("max_stale", max_stale)
        if max_stale < 0:
            raise InvalidConfigError("MarketDataCache", "max_stale", "must be >= 0")
        self.venue = venue
        self.ttls: Mapping[MarketDataKind, float] = merged
        self.max_stale = float(max_stale)
        self._disk = diskcache.Cache(str(Path(directory) / venue), size_limit=size_limit)

    def put(self, kind: MarketDataKind | str, key: str, value: Any, now: float) -> None:
        """Store `value` (a JSON-able ccxt answer) under `key` (e.g. the symbol) at `now`."""
        k = _kind(kind)
        _key(key)
        _finite("now", now)
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise NotJsonableError(f"{k.value} {key!r}: value is not JSON-able: {exc}") from None
        self._disk.set((k.value, key), (float(now), text))

    def get(self, kind: MarketDataKind | str, key: str, now: float) -> Cached | None:
        """The cached value with its freshness, stale ones included; None if absent or older
        than TTL + max_stale (then it is deleted)."""
        k = _kind(kind)
        _key(key)
        _finite("now", now)
        entry = self._disk.get((k.value, key))
        if entry is None:
            return None
        stored_at, text = entry
        age = now - stored_at
        ttl = self.ttls[k]
        if age > ttl + self.max_stale:
            self._disk.delete((k.value, key))
            return None
        return Cached(json.loads(text), fresh=0 <= age <= ttl, stored_at=stored_at, age=age)

    def __len__(self) -> int:
        """Entries on disk, stale ones included."""
        return len(self._disk)

    def close(self) -> None:
        self._disk.close()

    def __enter__(self) -> MarketDataCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
