"""The matching engine alone: validation refuses without side effects, matching, fees,
locks, client-id rules, drift, determinism of the house walk, and config validation."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from simulator import (
    FEES,
    HOUSE,
    WITHDRAWN,
    AccountSpec,
    ConfigError,
    DuplicateClientOrderId,
    Engine,
    FilterFailure,
    InsufficientBalance,
    InvalidOrderRequest,
    MarketSpec,
    OrderNotOpen,
    OrderStatus,
    UnknownAccount,
    UnknownOrder,
    UnknownSymbol,
    VenueConfig,
)

ME = "demo-key"


@pytest.fixture
def engine() -> Engine:
    return Engine(VenueConfig(seed=1), now=0)


def snapshot(engine: Engine) -> tuple:
    return (engine.all_balances(), [(o.id, o.status, o.filled) for o in engine.orders()])


@pytest.mark.parametrize("kwargs, error, filter_name", [
    ({"symbol": "DOGE/USDT"}, UnknownSymbol, None),
    ({"side": "up"}, InvalidOrderRequest, None),
    ({"type": "stop"}, InvalidOrderRequest, None),
    ({"time_in_force": "GTX"}, InvalidOrderRequest, None),
    ({"price": None}, InvalidOrderRequest, None),
    ({"amount": 0.01}, InvalidOrderRequest, None),
    ({"price": D("50000.001")}, FilterFailure, "PRICE_FILTER"),
    ({"price": D("-1")}, FilterFailure, "PRICE_FILTER"),
    ({"amount": D("0.000001")}, FilterFailure, "LOT_SIZE"),
    ({"amount": D("0.000015")}, FilterFailure, "LOT_SIZE"),
    ({"amount": D("0.00001")}, FilterFailure, "NOTIONAL"),
    ({"amount": D("1000")}, InsufficientBalance, None),
])
def test_refused_orders_change_nothing(engine, kwargs, error, filter_name):
    order = {"account": ME, "symbol": "BTC/USDT", "side": "buy", "type": "limit",
             "amount": D("0.01"), "price": D("50000"), "now": 1}
    order.update(kwargs)
    before = snapshot(engine)
    with pytest.raises(error) as info:
        engine.place_order(**order)
    assert snapshot(engine) == before
    if filter_name:
        assert info.value.filter == filter_name
    assert engine.audit() == []


def test_unknown_account_is_refused(engine):
    with pytest.raises(UnknownAccount):
        engine.place_order("nobody", "BTC/USDT", "buy", "limit", D("0.01"), D("50000"))


def test_resting_limit_order_locks_quote_and_cancel_releases_it(engine):
    placed = engine.place_order(ME, "BTC/USDT", "buy", "limit", D("0.01"), D("50000"), now=5)
    assert placed.order.status is OrderStatus.NEW and placed.fills == ()
    assert engine.balance(ME, "USDT").locked == D("500")
    assert engine.open_orders(ME) == [placed.order]
    engine.cancel_order(ME, now=6, order_id=placed.order.id)
    assert placed.order.status is OrderStatus.CANCELED
    assert engine.balance(ME, "USDT").locked == 0
    assert engine.balance(ME, "USDT").free == D("1000000")
    with pytest.raises(OrderNotOpen):
        engine.cancel_order(ME, now=7, order_id=placed.order.id)
    assert engine.audit() == []


def test_market_buy_fills_against_house_with_taker_fee_in_base(engine):
    ask = engine.ticker("BTC/USDT").ask
    placed = engine.place_order(ME, "BTC/USDT", "buy", "market", D("0.01"), now=9)
    assert placed.order.status is OrderStatus.FILLED
    [fill] = placed.fills
    assert (fill.price, fill.amount, fill.is_maker) == (ask, D("0.01"), False)
    assert fill.fee == D("0.00001") and fill.fee_currency == "BTC"
    assert engine.balance(ME, "BTC").free == D("100") + D("0.01") - D("0.00001")
    assert engine.balance(ME, "USDT").free == D("1000000") - ask * D("0.01")
    assert engine.balance(FEES, "BTC").free == D("0.00001")
    assert engine.fills(HOUSE)[0].trade_id == fill.trade_id
    assert engine.ticker("BTC/USDT").last == ask
    assert engine.audit() == []


def test_market_order_walks_levels_and_partially_fills_a_maker(engine):
    level = engine.market("BTC/USDT").house_level_qty
    placed = engine.place_order(ME, "BTC/USDT", "sell", "market", level + D("0.1"), now=3)
    assert placed.order.filled == level + D("0.1")
    assert len({f.price for f in placed.fills}) == 2
    house_partial = engine.get_order(HOUSE, engine.fills(HOUSE)[-1].order_id)
    assert house_partial.status is OrderStatus.PARTIALLY_FILLED
    assert house_partial.filled == D("0.1")
    assert house_partial in engine.orders(HOUSE)
    assert engine.audit() == []


def test_limit_buy_at_better_price_refunds_the_excess_lock(engine):
    ask = engine.ticker("BTC/USDT").ask
    placed = engine.place_order(ME, "BTC/USDT", "buy", "limit", D("0.01"), ask + 100, now=1)
    assert placed.order.status is OrderStatus.FILLED
    assert engine.balance(ME, "USDT").locked == 0
    assert engine.balance(ME, "USDT").free == D("1000000") - ask * D("0.01")
    assert engine.audit() == []


def test_ioc_remainder_expires_and_fok_all_or_nothing(engine):
    spec = engine.market("BTC/USDT")
    ask = engine.ticker("BTC/USDT").ask
    ioc = engine.place_order(ME, "BTC/USDT", "buy", "limit", spec.house_level_qty * 2, ask,
                             "IOC", now=1).order
    assert ioc.status is OrderStatus.EXPIRED and ioc.filled == spec.house_level_qty
    ask = engine.ticker("BTC/USDT").ask
    fok = engine.place_order(ME, "BTC/USDT", "buy", "limit", spec.house_level_qty * 2, ask,
                             "FOK", now=2)
    assert fok.order.status is OrderStatus.EXPIRED and fok.order.filled == 0 and not fok.fills
    assert engine.balance(ME, "USDT").locked == 0
    assert engine.audit() == []


def test_self_trade_between_two_accounts_of_the_venue():
    other = AccountSpec(id="other", api_key="k2", secret="s2", balances={"BTC": D("1")})
    engine = Engine(VenueConfig(accounts=(*VenueConfig().accounts, other)))
    bid = engine.ticker("BTC/USDT").bid
    price = bid + 1
    maker = engine.place_order("other", "BTC/USDT", "sell", "limit", D("0.5"), price).order
    taker = engine.place_order(ME, "BTC/USDT", "buy", "limit", D("0.2"), price)
    assert taker.fills[0].order_id == taker.order.id
    assert maker.status is OrderStatus.PARTIALLY_FILLED and maker.filled == D("0.2")
    assert engine.fills("other")[0].is_maker
    assert engine.balance("other", "USDT").free == price * D("0.2") * (1 - D("0.001"))
    assert engine.audit() == []


def test_client_order_id_unique_among_open_orders_only(engine):
    first = engine.place_order(ME, "BTC/USDT", "buy", "limit", D("0.01"), D("50000"),
                               client_order_id="c1").order
    with pytest.raises(DuplicateClientOrderId):
        engine.place_order(ME, "ETH/USDT", "buy", "limit", D("1"), D("2000"),
                           client_order_id="c1")
    assert engine.get_order_by_client_id(ME, "c1") is first
    engine.cancel_order(ME, order_id=first.id)
    assert engine.get_order_by_client_id(ME, "c1") is first
    with pytest.raises(UnknownOrder):
        engine.get_order_by_client_id(ME, "c1", open_only=True)
    second = engine.place_order(ME, "BTC/USDT", "buy", "limit", D("0.01"), D("50000"),
                                client_order_id="c1").order
    assert engine.get_order_by_client_id(ME, "c1", open_only=True) is second
    assert engine.cancel_order(ME, client_order_id="c1") is second


def test_orders_are_private_to_their_account(engine):
    order = engine.place_order(ME, "BTC/USDT", "buy", "limit", D("0.01"), D("50000")).order
    with pytest.raises(UnknownOrder):
        engine.get_order(HOUSE, order.id)
    with pytest.raises(UnknownOrder):
        engine.get_order(ME, 10**9)


def test_fills_filters(engine):
    a = engine.place_order(ME, "BTC/USDT", "buy", "market", D("0.01"), now=10).order
    b = engine.place_order(ME, "ETH/USDT", "buy", "market", D("0.1"), now=20).order
    assert [f.order_id for f in engine.fills(ME)] == [a.id, b.id]
    assert [f.order_id for f in engine.fills(ME, symbol="ETH/USDT")] == [b.id]
    assert [f.order_id for f in engine.fills(ME, since=15)] == [b.id]
    assert [f.order_id for f in engine.fills(ME, order_id=a.id)] == [a.id]
    assert len(engine.fills(ME, limit=1)) == 1


def test_balance_drift_moves_free_funds_to_withdrawn_and_never_below_zero(engine):
    assert engine.drift_balance(ME, "BTC", D("1")) == D("1")
    assert engine.balance(ME, "BTC").free == D("99")
    assert engine.balance(WITHDRAWN, "BTC").free == D("1")
    assert engine.drift_balance(ME, "BTC", D("1000")) == D("99")
    assert engine.balance(ME, "BTC").free == 0
    assert engine.audit() == []


def test_requote_follows_a_seeded_walk_and_crosses_resting_orders():
    def run(seed):
        e = Engine(VenueConfig(seed=seed, requote_interval_ms=100), now=0)
        prices = []
        for t in range(100, 3000, 100):
            e.advance(t)
            prices.append(e.reference_price("BTC/USDT"))
        return prices

    assert run(5) == run(5)
    assert run(5) != run(6)
    engine = Engine(VenueConfig(seed=3, requote_interval_ms=100), now=0)
    bid = engine.ticker("BTC/USDT").bid
    resting = engine.place_order(ME, "BTC/USDT", "sell", "limit", D("0.01"), bid + D("5")).order
    t = 0
    while resting.status is OrderStatus.NEW and t < 10**6:
        t += 100
        engine.advance(t)
    assert resting.status is OrderStatus.FILLED, "the walk never reached the resting order"
    assert engine.fills(ME)[0].is_maker
    assert engine.audit() == []


def test_reset_returns_to_the_start_state(engine):
    start = engine.all_balances()
    engine.place_order(ME, "BTC/USDT", "buy", "market", D("0.01"))
    engine.advance(5000)
    engine.reset(0)
    assert engine.all_balances() == start
    assert engine.orders(ME) == [] and engine.fills(ME) == []


def test_order_book_is_sorted_and_aggregated(engine):
    book = engine.order_book("BTC/USDT", depth=5)
    assert len(book.bids) == 5 and len(book.asks) == 5
    assert [p for p, _ in book.bids] == sorted((p for p, _ in book.bids), reverse=True)
    assert [p for p, _ in book.asks] == sorted(p for p, _ in book.asks)
    assert book.bids[0][0] < book.asks[0][0]


@pytest.mark.parametrize("make", [
    lambda: MarketSpec("BTCUSDT", D("0.01"), D("1"), D("1"), D("1"), D("1"), D("1")),
    lambda: MarketSpec("BTC/USDT", D("0"), D("1"), D("1"), D("1"), D("1"), D("1")),
    lambda: AccountSpec(id="a", api_key="k"),
    lambda: AccountSpec(id="a", balances={"BTC": D("-1")}),
    lambda: AccountSpec(id="a", maker_fee=D("1")),
    lambda: VenueConfig(accounts=(AccountSpec(id="house"),)),
    lambda: VenueConfig(accounts=(AccountSpec(id="a", api_key="k", secret="s"),
                                  AccountSpec(id="b", api_key="k", secret="t"))),
])
def test_invalid_specs_are_rejected_at_definition(make):
    with pytest.raises(ConfigError):
        make()


# ---------------------------------------------------------------- configuration (TOML data)

def test_config_from_dict_builds_accounts_markets_and_faults():
    from simulator import config_from_dict

    config, plan = config_from_dict({
        "seed": 9,
        "markets": [{"symbol": "BTC/USDT", "tick_size": "0.1", "step_size": "0.001",
                     "min_qty": "0.001", "min_notional": 10, "initial_price": "50000",
                     "house_level_qty": "1", "house_levels": 3}],
        "accounts": [{"api_key": "alice", "secret": "s", "balances": {"USDT": "100"},
                      "taker_fee": "0.002"}],
        "faults": {"seed": 4, "rules": [{"endpoint": "*", "fault": "error_503",
                                         "probability": 0.1}]},
    }, seed=11)
    assert config.seed == 11
    assert [a.id for a in config.accounts] == ["demo-key", "alice"]
    assert config.accounts[1].balances == {"USDT": D("100")}
    assert config.accounts[1].taker_fee == D("0.002")
    assert config.markets[0].min_notional == D("10") and config.markets[0].house_levels == 3
    assert plan.seed == 4 and plan.rules[0].fault == "error_503"
    engine = Engine(config)
    assert engine.balance("alice", "USDT").free == D("100")


@pytest.mark.parametrize("data, fragment", [
    ({"markets": [{"symbol": "BTC/USDT", "tick_size": 0.01}]}, "decimals as strings"),
    ({"markets": [{"symbol": "BTC/USDT", "tick": "1"}]}, "unknown keys"),
    ({"accounts": [{"api_key": "a", "secret": "s", "balances": {"BTC": "x"}}]},
     "not a decimal"),
    ({"accounts": [{"api_key": "demo-key", "secret": "s"}]}, "duplicate"),
    ({"accounts": ["alice"]}, "must be a table"),
    ({"seed": "one"}, "seed"),
    ({"colour": "red"}, "unknown keys"),
    ({"faults": {"rules": [{"endpoint": "*", "fault": "nope"}]}}, "unknown fault"),
])
def test_config_errors_name_the_culprit(data, fragment):
    from simulator import config_from_dict

    with pytest.raises(ConfigError, match=fragment):
        config_from_dict(data)
