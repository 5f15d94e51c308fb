"""The coordinator refreshes many resting orders with one listing of open orders instead of a
lookup each (real ccxt over HTTP to the local venue through the real gateway); a fill or a
cancel made at the venue is still found and booked, Nobitex keeps its per-order lookups."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import attrs
import pykka
import pytest

from actors.transactions import sweep_costs
from messages.orders import OrderState, OrderView
from simulator.model import HOUSE
from simulator.server import RunningVenue
from tests.helpers_trading import (
    TradingNode,
    get,
    ground_truth,
    ledger_balances,
    ledger_sums,
    place,
    placed,
)
from tests.helpers_venue import admin, install_faults, running_venue
from tests.waiting import wait_until

RESTING = 30  # due together, their lookups (24 units on Binance) outweigh one listing (16)
COUNTED = ["fetch_open_orders", "fetch_order", "fetch_my_trades"]


@pytest.fixture
def venue() -> Iterator[RunningVenue]:
    with running_venue(seed=5) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


def count_requests(url: str) -> None:
    """From now on the venue counts these endpoints' requests (a rule that never delays)."""
    install_faults(url, [{"endpoint": e, "fault": "latency", "latency_ms": 0} for e in COUNTED])


def requests(url: str) -> dict[str, int]:
    return {e: s["seen"] for e, s in zip(COUNTED, admin(url, "/_sim/faults")["stats"],
                                         strict=True)}


def rest(prices: list[str], symbol: str = "BTC/USDT") -> list[OrderView]:
    orders = [placed(place(f"rest-{i}", price=price, symbol=symbol))
              for i, price in enumerate(prices)]
    for order in orders:
        wait_until(lambda o=order: get(o.id).state is OrderState.OPEN, timeout=30)
    return [get(order.id) for order in orders]


_VENUE_STATES = {"new": OrderState.OPEN, "partially_filled": OrderState.OPEN,
                 "filled": OrderState.FILLED, "canceled": OrderState.CANCELED}


def node_matches_venue(url: str, orders: list[OrderView]) -> bool:
    """Each order's state and filled amount as the venue has them, its trades booked."""
    truth = {o["client_order_id"]: o for o in ground_truth(url, "orders")}
    for order in orders:
        venue_order, view = truth[order.client_order_id], get(order.id)
        if (view.state, view.filled) != (_VENUE_STATES[venue_order["status"]],
                                         Decimal(venue_order["filled"])):
            return False
        if sum((f.amount for f in view.fills), Decimal(0)) != view.filled:
            return False
    return True


def books_match_venue(url: str) -> bool:
    truth = ground_truth(url, "balances")["demo-key"]
    ours = {b.currency: b for b in ledger_balances().balances}
    return all(total == 0 for total in ledger_sums().values()) and all(
        ours[c].total == Decimal(f["free"]) + Decimal(f["locked"])
        and ours[c].reserved == Decimal(f["locked"]) for c, f in truth.items())


def test_the_costs_come_from_the_rate_limiters_table() -> None:
    binance = sweep_costs("binance")
    assert (binance.lookup, binance.sweep) == (0.8, 16.0)
    assert sweep_costs("nobitex").sweep is None  # a paged listing cannot show an order closed


def realistic_budget(node: TradingNode) -> TradingNode:
    """Binance's allowance (20 units/s, 16 usable) instead of the tests' generous one: the
    lookups of resting orders fall behind, as in a node, and a listing is cheaper."""
    node.config = attrs.evolve(node.config, ratelimit=attrs.evolve(
        node.config.ratelimit, units_per_second=20.0))
    return node


def test_resting_orders_are_refreshed_by_listings_and_venue_fills_and_cancels_are_found(
        venue: RunningVenue, tmp_path: Path) -> None:
    node = realistic_budget(TradingNode(venue.url, tmp_path))
    node.start()
    try:
        engine, now = venue.venue.engine, venue.venue.now
        tick = engine.market("BTC/USDT").tick_size
        top = engine.order_book("BTC/USDT").bids[0][0]
        orders = rest([str(top + 2 * tick), str(top + tick)] + ["30000"] * (RESTING - 2))
        count_requests(venue.url)
        first = wait_until(lambda: (seen := requests(venue.url))["fetch_open_orders"] and seen,
                           timeout=30)  # the lookups queued before it are let through
        wait_until(lambda: requests(venue.url)["fetch_open_orders"] >= first[
            "fetch_open_orders"] + 4, timeout=30)
        seen = requests(venue.url)
        # FAST_TRADING wants each order looked up every 0.5 s: one by one, 30 lookups for
        # each listing's worth of budget. Now all of them ride on the listings.
        assert seen["fetch_order"] - first["fetch_order"] <= 2, (first, seen)

        full, partial, canceled = orders[0], orders[1], orders[2]
        for order, amount in ((full, Decimal("0.001")), (partial, Decimal("0.0004"))):
            engine.place_order(HOUSE, "BTC/USDT", "sell", "limit", amount, order.price,
                               time_in_force="IOC", now=now())
        engine.cancel_order("demo-key", now=now(), order_id=int(canceled.venue_order_id or 0))
        truth = {o["client_order_id"]: o for o in ground_truth(venue.url, "orders")}
        assert Decimal(truth[full.client_order_id]["filled"]) > 0  # the house met our bid
        assert truth[canceled.client_order_id]["status"] == "canceled"

        wait_until(lambda: node_matches_venue(venue.url, orders), timeout=30)
        wait_until(lambda: books_match_venue(venue.url), timeout=30)
        assert get(canceled.id).settled and get(full.id).state is OrderState.FILLED
    finally:
        node.stop()


def test_nobitex_keeps_looking_orders_up_one_by_one(venue: RunningVenue,
                                                    tmp_path: Path) -> None:
    node = TradingNode(venue.url, tmp_path, exchange="nobitex")
    node.start()
    try:
        rest([str(30000 + i) for i in range(RESTING)])  # Nobitex refuses identical orders
        count_requests(venue.url)
        wait_until(lambda: requests(venue.url)["fetch_order"] >= 3 * RESTING, timeout=30)
        assert requests(venue.url)["fetch_open_orders"] == 0
    finally:
        node.stop()
