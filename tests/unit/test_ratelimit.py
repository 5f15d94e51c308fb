"""The account bucket and the cost tables derived from real ccxt exchange descriptions."""

from __future__ import annotations

import ccxt
import pytest

from exchanges.nobitex import Nobitex
from gateway.classify import BackoffKind, BackoffSignal
from gateway.errors import CostExceedsCapacityError, InvalidConfigError
from gateway.ratelimit import (
    BINANCE_SPOT_ENDPOINTS,
    AccountLimiter,
    CostTable,
    Granted,
    LimiterConfig,
    PauseReason,
    Wait,
    cost_table,
    endpoint_costs,
    limiter_config_from_ccxt,
)


@pytest.mark.parametrize(("field", "value"), [
    ("capacity", 0), ("refill_per_second", -1), ("safety_margin", 0),
    ("safety_margin", 1.5), ("capacity", float("inf")),
])
def test_invalid_config_names_the_field(field: str, value: float) -> None:
    fields = {"capacity": 10.0, "refill_per_second": 10.0, "safety_margin": 0.8, field: value}
    with pytest.raises(InvalidConfigError) as info:
        LimiterConfig(**fields)
    assert info.value.field == field


def test_uses_only_the_safety_margin_of_capacity_and_rate() -> None:
    limiter = AccountLimiter(LimiterConfig(10.0, 10.0, safety_margin=0.8), now=0.0)
    assert limiter.try_acquire(5.0, 0.0) == Granted(5.0, 3.0)
    assert limiter.try_acquire(3.0, 0.0) == Granted(3.0, 0.0)
    got = limiter.try_acquire(4.0, 0.0)
    assert got == Wait(pytest.approx(0.5), None)  # 4 units at 8 usable units a second
    assert isinstance(limiter.try_acquire(4.0, 0.5), Granted)


def test_bucket_never_refills_beyond_usable_capacity() -> None:
    limiter = AccountLimiter(LimiterConfig(10.0, 10.0, safety_margin=0.5), now=0.0)
    assert limiter.statistics(1000.0).tokens == 5.0


def test_cost_beyond_capacity_raises_and_changes_nothing() -> None:
    limiter = AccountLimiter(LimiterConfig(10.0, 10.0), now=0.0)
    before = limiter.statistics(0.0)
    for bad in (8.5, -1.0, float("nan")):
        with pytest.raises(CostExceedsCapacityError):
            limiter.try_acquire(bad, 0.0)
    assert limiter.statistics(0.0) == before


def test_pause_blocks_until_its_end_and_never_shortens() -> None:
    limiter = AccountLimiter(LimiterConfig(10.0, 10.0), now=0.0)
    limiter.pause_until(10.0, PauseReason.RATE_LIMIT, now=1.0)
    limiter.pause_until(5.0, PauseReason.RATE_LIMIT, now=1.0)
    assert limiter.try_acquire(0.1, 4.0) == Wait(6.0, PauseReason.RATE_LIMIT)
    assert isinstance(limiter.try_acquire(0.1, 10.0), Granted)
    stats = limiter.statistics(10.0)
    assert stats.paused_until is None and stats.waits == 1 and stats.granted_count == 1


def test_ban_signal_outranks_rate_limit_and_empties_bucket() -> None:
    limiter = AccountLimiter(LimiterConfig(10.0, 1.0), now=0.0)
    limiter.on_signal(BackoffSignal(BackoffKind.RATE_LIMIT, 2.0, "Retry-After"), now=0.0)
    limiter.on_signal(BackoffSignal(BackoffKind.BAN, 120.0, "banned until"), now=1.0)
    assert limiter.statistics(1.0).tokens == 0.0  # the venue's counter is evidently full
    assert limiter.try_acquire(1.0, 50.0) == Wait(71.0, PauseReason.BAN)
    assert limiter.statistics(50.0).pause_reason is PauseReason.BAN
    assert isinstance(limiter.try_acquire(1.0, 121.0), Granted)


def test_endpoint_costs_from_real_ccxt_binance() -> None:
    binance = ccxt.binance()
    costs = endpoint_costs(binance.describe()["api"])
    assert costs["public GET ticker/24hr"] == 0.4
    assert costs["private POST order"] == 0.2
    assert costs["private GET account"] == 4.0
    table = cost_table(binance.describe()["api"], BINANCE_SPOT_ENDPOINTS)
    assert table.cost_of("fetch_ticker") == 0.4
    assert table.cost_of("create_order") == 0.2
    assert table.cost_of("some_unmapped_method") == 1.0
    # The reconciler reads open orders without a symbol: priced at that (dearer) variant.
    assert costs["private GET openOrders"] == 1.2
    assert table.cost_of("fetch_open_orders") == costs["private GET openOrders noSymbol"] == 16
    config = limiter_config_from_ccxt(binance, table)
    assert config.refill_per_second == 1000 / binance.rateLimit


def test_endpoint_costs_from_our_nobitex_adapter_and_list_shaped_apis() -> None:
    nobitex = Nobitex()
    costs = endpoint_costs(nobitex.describe()["api"])
    assert costs["private POST market/orders/add"] == 10.0
    table = CostTable({"fetch_balance": costs["private GET users/wallets/list"]})
    config = limiter_config_from_ccxt(nobitex, table, safety_margin=0.8)
    assert config.usable_capacity >= 30.0  # the dearest call must fit in the usable bucket
    assert endpoint_costs({"v1": {"public": {"get": ["ping", "time"]}}}) == {
        "v1/public GET ping": 1.0, "v1/public GET time": 1.0}


def test_cost_table_rejects_unknown_endpoint_and_bad_override() -> None:
    api = ccxt.binance().describe()["api"]
    with pytest.raises(InvalidConfigError) as info:
        cost_table(api, {"fetch_ticker": "public GET no/such/path"})
    assert info.value.field == "fetch_ticker"
    with pytest.raises(InvalidConfigError):
        cost_table(api, {}, overrides={"create_order": 0})
    assert cost_table(api, BINANCE_SPOT_ENDPOINTS, overrides={"create_order": 2}).cost_of(
        "create_order") == 2.0


def test_the_account_bucket_charges_each_exchange_its_own_endpoint_costs() -> None:
    """Regression: the shared bucket charged every Nobitex call one unit, so a balance read
    (30 units: 10 a minute) or an orders-list page (10 units: 30 a minute) could go out five
    times a second; ccxt's per-client limiter, which the gateway turns off, knew better."""
    from actors.rate_limiter import bucket_for_exchange
    from exchanges import create_client

    charged = {}
    for exchange in ("binance", "nobitex"):
        bucket = bucket_for_exchange(create_client(exchange), units_per_second=1000.0,
                                     safety_margin=1.0, burst_seconds=1.0)
        for method in ("fetch_balance", "fetch_order", "create_order", "fetch_open_orders",
                       "fetch_ticker", "load_markets"):
            granted = bucket.try_acquire(method)
            assert isinstance(granted, Granted)
            charged[exchange, method] = granted.cost
    assert charged["nobitex", "fetch_balance"] == 30.0
    assert charged["nobitex", "create_order"] == charged["nobitex", "fetch_open_orders"] == 10.0
    assert charged["nobitex", "fetch_order"] == 1.0
    assert charged["nobitex", "fetch_ticker"] == 15.0
    assert charged["binance", "fetch_open_orders"] == 16.0
