"""One weighted token bucket per exchange account, shared by every worker of that account.

ccxt's own limiter lives in each client instance, so N workers with N clients would spend the
venue's allowance N times; the pool asks this limiter instead (with `enableRateLimit` off).

Why not a library: `limits` reads `time.time()` inside its storage and counts integer hits;
`pyrate-limiter` accepts a clock but keeps a log of every item per window, takes integer weights
and implements waiting by sleeping. Neither models a venue's pause or ban. An actor needs a pure
answer — "granted" or "wait this long" — for a given `now`, with fractional ccxt costs, so the
bucket stays this small pure module.

Guarantee: over any interval of length w, the cost granted is at most
`capacity * margin + refill_per_second * margin * w` (standard token bucket at the safety margin),
and nothing is granted while paused or banned.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any

import attrs

from gateway.classify import BackoffKind, BackoffSignal
from gateway.errors import CostExceedsCapacityError, InvalidConfigError


def _positive(owner: str, field: str, value: object) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise InvalidConfigError(owner, field, f"must be a finite number > 0, got {value!r}")


@attrs.frozen
class LimiterConfig:
    """Venue allowance in ccxt cost units: `refill_per_second` units a second, bursts of up to
    `capacity`; only `safety_margin` of both is ever used."""

    capacity: float
    refill_per_second: float
    safety_margin: float = 0.8

    def __attrs_post_init__(self) -> None:
        _positive("LimiterConfig", "capacity", self.capacity)
        _positive("LimiterConfig", "refill_per_second", self.refill_per_second)
        _positive("LimiterConfig", "safety_margin", self.safety_margin)
        if self.safety_margin > 1:
            raise InvalidConfigError("LimiterConfig", "safety_margin", "must be <= 1")

    @property
    def usable_capacity(self) -> float:
        return self.capacity * self.safety_margin

    @property
    def usable_rate(self) -> float:
        return self.refill_per_second * self.safety_margin


class PauseReason(enum.Enum):
    """Why the account may not send: the venue asked to slow down, or banned it."""

    RATE_LIMIT = "rate_limit"
    BAN = "ban"


@attrs.frozen
class Granted:
    """The cost was taken; `remaining` usable units are left."""

    cost: float
    remaining: float


@attrs.frozen
class Wait:
    """Not now: ask again after `seconds`. `reason` is None for an empty bucket."""

    seconds: float
    reason: PauseReason | None


@attrs.frozen
class LimiterStatistics:
    """A snapshot for the health monitor and `/status`."""

    tokens: float
    usable_capacity: float
    granted_cost: float
    granted_count: int
    waits: int
    paused_until: float | None
    pause_reason: PauseReason | None


class AccountLimiter:
    """The bucket of one account. Pure: callers pass monotonic `now`; not thread-safe."""

    def __init__(self, config: LimiterConfig, now: float) -> None:
        self.config = config
        self._tokens = config.usable_capacity
        self._updated = now
        self._paused_until: float | None = None
        self._pause_reason: PauseReason | None = None
        self._granted_cost = 0.0
        self._granted_count = 0
        self._waits = 0

    def _refill(self, now: float) -> None:
        if now > self._updated:
            config = self.config  # the properties' arithmetic inline: this runs every call
            gained = (now - self._updated) * (config.refill_per_second * config.safety_margin)
            self._tokens = min(config.capacity * config.safety_margin, self._tokens + gained)
            self._updated = now
        if self._paused_until is not None and now >= self._paused_until:
            self._paused_until = None
            self._pause_reason = None

    def try_acquire(self, cost: float, now: float) -> Granted | Wait:
        """Take `cost` units now, or say how long to wait. A cost above the usable capacity
        raises CostExceedsCapacityError (it could never be granted); nothing changes then."""
        wait = self.take(cost, now)
        if wait is None:
            return Granted(cost, self._tokens)
        return Wait(wait, self._pause_reason if self._paused_until is not None else None)

    def take(self, cost: float, now: float) -> float | None:
        """`try_acquire` without the verdict object (the pool asks once per call): None when
        `cost` was taken, else the seconds to wait."""
        if not (type(cost) is float or isinstance(cost, int | float)) or not 0 <= cost < math.inf:
            raise CostExceedsCapacityError(f"cost must be finite and >= 0, got {cost!r}")
        config = self.config
        if cost > config.capacity * config.safety_margin:
            raise CostExceedsCapacityError(
                f"cost {cost} exceeds usable capacity {config.usable_capacity}"
            )
        self._refill(now)
        if self._paused_until is not None:
            self._waits += 1
            return self._paused_until - now
        if self._tokens >= cost:
            self._tokens -= cost
            self._granted_cost += cost
            self._granted_count += 1
            return None
        self._waits += 1
        return (cost - self._tokens) / config.usable_rate

    def pause_until(self, until: float, reason: PauseReason, now: float) -> None:
        """Send nothing before `until`; a later pause extends, an earlier one never shortens.
        The bucket is also emptied: the venue's counter is evidently full."""
        self._refill(now)
        if until <= now:
            return
        if self._paused_until is None or until > self._paused_until:
            self._paused_until = until
        if reason is PauseReason.BAN or self._pause_reason is None:
            self._pause_reason = reason
        self._tokens = 0.0
        self._updated = max(self._updated, now)

    def on_signal(self, signal: BackoffSignal, now: float) -> None:
        """Apply a venue back-off signal read at `now` (see classify.backoff_signal)."""
        reason = PauseReason.BAN if signal.kind is BackoffKind.BAN else PauseReason.RATE_LIMIT
        self.pause_until(now + signal.seconds, reason, now)

    def statistics(self, now: float) -> LimiterStatistics:
        self._refill(now)
        return LimiterStatistics(
            tokens=self._tokens, usable_capacity=self.config.usable_capacity,
            granted_cost=self._granted_cost, granted_count=self._granted_count,
            waits=self._waits, paused_until=self._paused_until, pause_reason=self._pause_reason,
        )


# ----- costs -------------------------------------------------------------------------------------

_HTTP_METHODS = frozenset({"get", "post", "put", "delete", "patch"})


def _cost_of(entry: Any, default: float) -> float:
    if isinstance(entry, int | float) and not isinstance(entry, bool):
        return float(entry)
    if isinstance(entry, Mapping) and isinstance(entry.get("cost"), int | float):
        return float(entry["cost"])
    return default


def endpoint_costs(api: Mapping[str, Any], default: float = 1.0) -> dict[str, float]:
    """Flatten a ccxt `describe()['api']` tree into {"<group> <METHOD> <path>": cost}.

    Handles the shapes ccxt uses: nested groups, {path: cost}, {path: {'cost': c, ...}} and
    lists of paths (cost `default`). Groups are joined with '/', e.g. "public GET ticker/24hr".
    A cost variant ({'cost': 1.2, 'noSymbol': 16}) is also listed under "<endpoint> <variant>".
    """
    costs: dict[str, float] = {}

    def walk(node: Any, groups: list[str]) -> None:
        if not isinstance(node, Mapping):
            return
        for key, value in node.items():
            if str(key).lower() in _HTTP_METHODS and groups:
                prefix = f"{'/'.join(groups)} {str(key).upper()} "
                if isinstance(value, Mapping):
                    for path, entry in value.items():
                        costs[prefix + str(path)] = _cost_of(entry, default)
                        if isinstance(entry, Mapping):
                            for variant, weight in entry.items():
                                if variant != "cost" and isinstance(weight, int | float) \
                                        and not isinstance(weight, bool):
                                    costs[f"{prefix}{path} {variant}"] = float(weight)
                elif isinstance(value, list | tuple):
                    for path in value:
                        costs[prefix + str(path)] = default
            else:
                walk(value, groups + [str(key)])

    walk(api, [])
    return costs


# Unified ccxt methods of stock ccxt.binance (spot) and the endpoint each one calls
# (observed against the venue, see /work/shared/exchanges.md). Costs with a 'byLimit' variant
# use the base cost (default limits). fetch_open_orders is priced as the reconciler calls it:
# without a symbol (one all-markets query), the dearer 'noSymbol' variant; a per-market call
# is then over-counted, the safe side.
BINANCE_SPOT_ENDPOINTS: Mapping[str, str] = {
    "load_markets": "public GET exchangeInfo",
    "fetch_markets": "public GET exchangeInfo",
    "fetch_ticker": "public GET ticker/24hr",
    "fetch_order_book": "public GET depth",
    "fetch_trades": "public GET trades",
    "fetch_balance": "private GET account",
    "create_order": "private POST order",
    "fetch_order": "private GET order",
    "cancel_order": "private DELETE order",
    "fetch_open_orders": "private GET openOrders noSymbol",
    "fetch_my_trades": "private GET myTrades",
}


# The same for Ironclad's Nobitex adapter (exchanges/nobitex.py, whose api tree carries costs
# from the per-endpoint limits Nobitex documents). A call that reads several pages of the order
# list (fetch_open_orders past 1000 orders, fetch_order's client-id search) is charged one page.
NOBITEX_ENDPOINTS: Mapping[str, str] = {
    "load_markets": "public GET v2/options",
    "fetch_markets": "public GET v2/options",
    "fetch_ticker": "public GET market/stats",
    "fetch_order_book": "public GET v3/orderbook/{symbol}",
    "fetch_trades": "public GET v2/trades/{symbol}",
    "fetch_balance": "private GET users/wallets/list",
    "create_order": "private POST market/orders/add",
    "fetch_order": "private POST market/orders/status",
    "cancel_order": "private POST market/orders/update-status",
    "fetch_open_orders": "private GET market/orders/list",
    "fetch_my_trades": "private GET market/trades/list",
}

#: The method → endpoint maps by exchange id; other exchanges are charged one unit a call.
EXCHANGE_ENDPOINTS: Mapping[str, Mapping[str, str]] = {
    "binance": BINANCE_SPOT_ENDPOINTS,
    "nobitex": NOBITEX_ENDPOINTS,
}

@attrs.frozen
class CostTable:
    """Cost of each unified method in bucket units; unknown methods cost `default`."""

    costs: Mapping[str, float]
    default: float = 1.0

    def cost_of(self, method: str) -> float:
        return self.costs.get(method, self.default)


def cost_table(
    api: Mapping[str, Any],
    method_endpoints: Mapping[str, str],
    *,
    overrides: Mapping[str, float] | None = None,
    default: float = 1.0,
) -> CostTable:
    """Costs for unified methods from a ccxt api tree and a method→endpoint map.

    An endpoint missing from the tree raises InvalidConfigError naming the method, so a renamed
    endpoint in a ccxt upgrade is caught at start-up, not by a ban. `overrides` (from config) win.
    """
    flat = endpoint_costs(api, default)
    costs: dict[str, float] = {}
    for method, endpoint in method_endpoints.items():
        if endpoint not in flat:
            raise InvalidConfigError(
                "CostTable", method, f"endpoint {endpoint!r} is not in the exchange's api"
            )
        costs[method] = flat[endpoint]
    for method, weight in (overrides or {}).items():  # request weights, not money
        _positive("CostTable", method, weight)
        costs[method] = float(weight)
    _positive("CostTable", "default", default)
    return CostTable(costs, default)


def limiter_config_from_ccxt(
    exchange: Any,
    costs: CostTable | None = None,
    *,
    safety_margin: float = 0.8,
    burst_seconds: float = 1.0,
) -> LimiterConfig:
    """The account's allowance from a ccxt exchange: one cost unit per `rateLimit` ms, i.e.
    `1000 / rateLimit` units a second. The burst is `burst_seconds` worth of units, raised if
    needed so that the dearest method in `costs` fits within the usable capacity."""
    rate_limit_ms: Any = getattr(exchange, "rateLimit", None)
    _positive("LimiterConfig", "rateLimit", rate_limit_ms)
    _positive("LimiterConfig", "burst_seconds", burst_seconds)
    _positive("LimiterConfig", "safety_margin", safety_margin)
    refill = 1000.0 / float(rate_limit_ms)
    dearest = max([costs.default, *costs.costs.values()]) if costs is not None else 1.0
    return LimiterConfig(
        capacity=max(1.0, refill * burst_seconds, dearest / safety_margin),
        refill_per_second=refill,
        safety_margin=safety_margin,
    )
