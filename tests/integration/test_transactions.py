"""The transaction coordinator against the local venue through the real gateway (stock ccxt
over HTTP): the three-phase protocol, idempotency, refusals that change nothing, ambiguous
creates resolved by client order id, restarts on the same data directory."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pykka
import pytest

from actors.ledger import Reserve
from actors.reconciler import reconcile_now
from actors.trading import LEDGER, TRANSACTIONS
from actors.transactions import GetStatistics
from messages.ledger import ExportFormat, ExportLedger, ListLedgerEntries
from messages.orders import (
    ExportJournal,
    GetOrderHistory,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidOrder,
    ListOrders,
    NotAcceptingOrders,
    NotAcceptingReason,
    OrderNotFound,
    OrderState,
    ReconciliationView,
)
from simulator.server import RunningVenue
from supervisors import names, supervisor_status
from tests.helpers_gateway import NAMES, statistics
from tests.helpers_trading import (
    TradingNode,
    ask,
    cancel,
    get,
    ground_truth,
    ledger_balances,
    ledger_sums,
    place,
    placed,
    trading_config,
    wait_accepting,
)
from tests.helpers_venue import install_faults, running_venue
from tests.waiting import wait_until
from trading.journal import Journal


@pytest.fixture
def venue() -> Iterator[RunningVenue]:
    with running_venue(seed=7) as handle:
        yield handle


@pytest.fixture
def node(venue: RunningVenue, tmp_path: Path) -> Iterator[TradingNode]:
    handle = TradingNode(venue.url, tmp_path)
    handle.start()
    yield handle
    handle.stop()
    pykka.ActorRegistry.stop_all()


def settled(order_id: str, timeout: float = 15.0) -> Any:
    return wait_until(lambda: (view := get(order_id)).settled and view, timeout=timeout)


def venue_orders(url: str) -> list[dict[str, Any]]:
    return ground_truth(url, "orders")


def assert_books_equal_venue(url: str) -> None:
    """Ledger per-currency sums are zero and every ledger total equals the venue's total."""
    assert all(total == 0 for total in ledger_sums().values())
    truth = ground_truth(url, "balances")["demo-key"]
    ours = {b.currency: b for b in ledger_balances().balances}
    for currency, figures in truth.items():
        venue_total = Decimal(figures["free"]) + Decimal(figures["locked"])
        assert ours[currency].total == venue_total, currency
        assert ours[currency].reserved == Decimal(figures["locked"]), currency


def test_a_resting_order_opens_and_cancels_and_the_books_match(node: TradingNode,
                                                               venue: RunningVenue) -> None:
    order = placed(place("rest-1", price="50000"))
    assert order.state in (OrderState.SUBMITTING, OrderState.OPEN)
    assert order.client_order_id.startswith("i")
    open_view = wait_until(lambda: (v := get(order.id)).state is OrderState.OPEN and v)
    assert open_view.venue_order_id is not None
    reserved = {b.currency: b.reserved for b in ledger_balances().balances}
    assert reserved["USDT"] == Decimal("50")  # 0.001 * 50000 held for the order
    assert_books_equal_venue(venue.url)
    cancel(order.id)
    done = settled(order.id)
    assert done.state is OrderState.CANCELED and done.filled == 0
    assert_books_equal_venue(venue.url)


def test_a_marketable_order_fills_and_the_ledger_books_the_trade(node: TradingNode,
                                                                 venue: RunningVenue) -> None:
    order = placed(place("take-1", side="buy", price="70000", amount="0.002"))
    done = settled(order.id)
    assert done.state is OrderState.FILLED and done.filled == Decimal("0.002")
    assert done.fills and sum(f.amount for f in done.fills) == Decimal("0.002")
    sell = placed(place("take-2", side="sell", price="50000", amount="0.002"))
    assert settled(sell.id).state is OrderState.FILLED
    assert_books_equal_venue(venue.url)


def test_market_orders_fill_their_amount_and_reserve_against_the_given_price(
        node: TradingNode, venue: RunningVenue) -> None:
    buy = placed(place("mkt-1", side="buy", type="market", price="61000", amount="0.003"))
    sell = placed(place("mkt-2", side="sell", type="market", price=None, amount="0.001"))
    assert settled(buy.id).filled == Decimal("0.003")
    assert settled(sell.id).filled == Decimal("0.001")
    assert isinstance(place("mkt-3", side="buy", type="market", price=None), InvalidOrder)
    assert_books_equal_venue(venue.url)


def test_the_same_client_id_answers_the_existing_order_even_after_a_restart(
        node: TradingNode, venue: RunningVenue) -> None:
    first = place("idem-1", price="50000")
    assert first.created is True
    again = place("idem-1", price="50000.00")  # the same decimal, spelled differently
    assert again.created is False and again.order.id == first.order.id
    conflict = place("idem-1", price="51000")
    assert isinstance(conflict, IdempotencyConflict) and conflict.order_id == first.order.id
    node.stop()
    node.start()
    after = place("idem-1", price="50000")
    assert after.created is False and after.order.id == first.order.id
    assert isinstance(place("idem-1", side="sell", price="50000"), IdempotencyConflict)
    ours = [o for o in venue_orders(venue.url)
            if o["client_order_id"] == first.order.client_order_id]
    assert len(ours) == 1


@pytest.mark.parametrize(("kwargs", "field", "code"), [
    ({"side": "hold"}, "side", "invalid_choice"),
    ({"amount": "0.0000001"}, "amount", "amount_precision"),
    ({"price": "50000.001"}, "price", "price_precision"),
    ({"amount": "0.00001", "price": "100"}, "amount", "min_notional"),
    ({"symbol": "DOGE/USDT"}, "symbol", "unknown_symbol"),
    ({"type": "limit", "price": None}, "price", "required"),
])
def test_invalid_orders_name_the_field_and_change_nothing(
        node: TradingNode, venue: RunningVenue, kwargs: dict[str, Any], field: str,
        code: str) -> None:
    before = ledger_balances()
    reply = place("bad-1", **kwargs)
    assert isinstance(reply, InvalidOrder) and (reply.field, reply.code) == (field, code)
    assert ledger_balances() == before
    assert ask(TRANSACTIONS, ListOrders()).orders == ()
    assert placed(place("bad-1", price="50000")).client_id == "bad-1"  # the key is still free


def test_insufficient_funds_is_refused_in_prepare_and_nothing_is_sent(
        node: TradingNode, venue: RunningVenue) -> None:
    reply = place("rich-1", side="buy", amount="100", price="60000")
    assert isinstance(reply, InsufficientFunds)
    assert reply.currency == "USDT" and reply.needed == Decimal("6000000")
    assert ask(TRANSACTIONS, ListOrders()).orders == ()
    assert venue_orders(venue.url) == [] or all(
        o["account"] != "demo-key" for o in venue_orders(venue.url))


def test_an_executed_create_whose_answer_was_lost_is_found_not_duplicated(
        node: TradingNode, venue: RunningVenue) -> None:
    install_faults(venue.url, [{"endpoint": "create_order", "fault": "lose_response",
                                "count": 1}])
    order = placed(place("lost-1", side="buy", price="70000"))
    done = settled(order.id, timeout=20)
    assert done.state is OrderState.FILLED
    ours = [o for o in venue_orders(venue.url) if o["client_order_id"] == order.client_order_id]
    assert len(ours) == 1
    assert_books_equal_venue(venue.url)


def test_a_create_that_never_reached_the_venue_is_resubmitted_after_the_grace_window(
        node: TradingNode, venue: RunningVenue) -> None:
    install_faults(venue.url, [{"endpoint": "create_order", "fault": "error_502", "count": 1}])
    order = placed(place("retry-1", price="50000"))
    view = wait_until(lambda: (v := get(order.id)).state is OrderState.OPEN and v, timeout=20)
    assert view.venue_order_id is not None
    ours = [o for o in venue_orders(venue.url) if o["client_order_id"] == order.client_order_id]
    assert len(ours) == 1
    cancel(order.id)
    assert settled(order.id).state is OrderState.CANCELED
    assert_books_equal_venue(venue.url)


def test_cancels_are_idempotent_and_unknown_ids_are_not_found(node: TradingNode,
                                                              venue: RunningVenue) -> None:
    order = placed(place("cx-1", price="50000"))
    wait_until(lambda: get(order.id).state is OrderState.OPEN)
    first, second = cancel(order.id), cancel(order.id)
    assert first.cancel_requested and second.cancel_requested
    assert settled(order.id).state is OrderState.CANCELED
    assert cancel(order.id).state is OrderState.CANCELED
    assert isinstance(cancel("nope"), OrderNotFound)
    cancels = [o for o in venue_orders(venue.url) if o["client_order_id"] == order.client_order_id]
    assert len(cancels) == 1 and cancels[0]["status"] == "canceled"


def test_orders_are_listed_by_state_and_symbol(node: TradingNode, venue: RunningVenue) -> None:
    resting = placed(place("ls-1", price="50000"))
    taken = placed(place("ls-2", price="70000"))
    settled(taken.id)
    wait_until(lambda: get(resting.id).state is OrderState.OPEN)
    listed = ask(TRANSACTIONS, ListOrders(state=OrderState.OPEN)).orders
    assert [o.id for o in listed] == [resting.id]
    assert {o.id for o in ask(TRANSACTIONS, ListOrders(symbol="BTC/USDT")).orders} == {
        resting.id, taken.id}
    assert ask(TRANSACTIONS, ListOrders(symbol="ETH/USDT")).orders == ()


def test_an_order_in_flight_at_a_restart_is_resumed_from_the_journal(
        node: TradingNode, venue: RunningVenue) -> None:
    install_faults(venue.url, [{"endpoint": "create_order", "fault": "lose_response",
                                "count": 1}])
    order = placed(place("crash-1", side="buy", price="70000"))
    node.stop()  # the create's answer was lost: the order is submitting or unknown here
    node.start()
    done = settled(order.id, timeout=20)
    assert done.state is OrderState.FILLED
    ours = [o for o in venue_orders(venue.url) if o["client_order_id"] == order.client_order_id]
    assert len(ours) == 1
    assert_books_equal_venue(venue.url)


def test_new_orders_are_refused_until_startup_reconciliation_succeeds(
        venue: RunningVenue, tmp_path: Path) -> None:
    install_faults(venue.url, [{"endpoint": "fetch_balance", "fault": "error_503"}])
    handle = TradingNode(venue.url, tmp_path)
    handle.start(accepting=False)
    try:
        refusal = wait_until(lambda: isinstance(r := place("early-1", price="50000"),
                                                NotAcceptingOrders) and r)
        assert refusal.reason in (NotAcceptingReason.RECONCILIATION_PENDING,
                                  NotAcceptingReason.RECONCILIATION_FAILED)
        failed = wait_until(lambda: "balance" in (ask(TRANSACTIONS, GetStatistics())
                                                  .not_accepting_reason or ""))
        assert failed
        assert ask(TRANSACTIONS, ListOrders()).orders == ()  # reads are served
        install_faults(venue.url, [])
        wait_accepting()
        assert placed(place("early-1", price="50000")).client_id == "early-1"
    finally:
        handle.stop()
        pykka.ActorRegistry.stop_all()


def test_every_venue_order_has_one_client_order_id(node: TradingNode, venue: RunningVenue) -> None:
    for index in range(5):
        placed(place(f"many-{index}", price=str(50000 + index)))
    wait_until(lambda: len(venue_orders(venue.url)) >= 5)
    counts = Counter(o["client_order_id"] for o in venue_orders(venue.url)
                     if o["account"] == "demo-key")
    assert set(counts.values()) == {1}


def test_the_nobitex_adapter_path_resolves_a_lost_create_through_the_order_list(
        venue: RunningVenue, tmp_path: Path) -> None:
    """Nobitex's client-id lookup sees only open orders: a filled order whose create answer
    was lost is found through the order list, never placed twice."""
    handle = TradingNode(venue.url, tmp_path, exchange="nobitex")
    handle.start()
    try:
        install_faults(venue.url, [{"endpoint": "create_order", "fault": "lose_response",
                                    "count": 1}])
        taken = placed(place("nbx-1", price="70000"))
        assert settled(taken.id, timeout=20).state is OrderState.FILLED
        resting = placed(place("nbx-2", price="50000"))
        wait_until(lambda: get(resting.id).state is OrderState.OPEN)
        cancel(resting.id)
        assert settled(resting.id).state is OrderState.CANCELED
        for view in (get(taken.id), get(resting.id)):
            ours = [o for o in venue_orders(venue.url)
                    if o["client_order_id"] == view.client_order_id]
            assert len(ours) == 1
        assert_books_equal_venue(venue.url)
    finally:
        handle.stop()
        pykka.ActorRegistry.stop_all()


def test_the_audit_trail_is_queryable_by_order_and_exported(node: TradingNode,
                                                            venue: RunningVenue) -> None:
    order = placed(place("audit-1", price="70000"))
    settled(order.id)
    history = ask(TRANSACTIONS, GetOrderHistory(id=order.id))
    assert [e.to_state for e in history.events][:2] == [OrderState.PREPARED,
                                                        OrderState.SUBMITTING]
    assert history.events[0].cause == "prepared: intent validated, funds reserved"
    assert history.events[-1].cause == "reservation settled"
    assert [e.seq for e in history.events] == sorted(e.seq for e in history.events)
    assert isinstance(ask(TRANSACTIONS, GetOrderHistory(id="nope")), OrderNotFound)
    journal_csv = ask(TRANSACTIONS, ExportJournal()).text
    rows = list(csv.DictReader(io.StringIO(journal_csv)))
    assert sum(r["stream"] == order.id for r in rows) == len(history.events)
    ledger_csv = ask(LEDGER, ExportLedger(format=ExportFormat.CSV)).text
    assert order.id in ledger_csv
    beancount = ask(LEDGER, ExportLedger(format=ExportFormat.BEANCOUNT)).text
    assert "balance" in beancount and "Equity:Opening" in beancount


def test_a_reservation_without_a_journaled_transaction_is_voided_at_start(
        node: TradingNode, venue: RunningVenue) -> None:
    """A crash between the reservation and the journal record leaves a reservation that no
    transaction owns: the next start releases it."""
    reply = ask(LEDGER, Reserve("orphan00000000000000", "USDT", Decimal("123")))
    assert not isinstance(reply, InsufficientFunds)
    assert {b.currency: b.reserved for b in ledger_balances().balances}["USDT"] == 123
    node.stop()
    node.start()
    assert {b.currency: b.reserved for b in ledger_balances().balances}["USDT"] == 0
    assert_books_equal_venue(venue.url)


@pytest.mark.parametrize("victim", [TRANSACTIONS, LEDGER])
def test_a_crashed_trading_actor_is_restarted_and_resumes_from_its_stores(
        node: TradingNode, venue: RunningVenue, victim: str) -> None:
    resting = placed(place("crash-a", price="50000"))
    wait_until(lambda: get(resting.id).state is OrderState.OPEN)
    names.tell(victim, _Unknown())  # an unexpected message is a bug: the actor crashes
    wait_until(lambda: _restarted(victim))
    wait_accepting()
    assert get(resting.id).state is OrderState.OPEN
    assert place("crash-a", price="50000").created is False
    taken = placed(place("crash-b", price="70000"))
    assert settled(taken.id).state is OrderState.FILLED
    cancel(resting.id)
    assert settled(resting.id).state is OrderState.CANCELED
    assert_books_equal_venue(venue.url)


class _Unknown:
    """A message no trading actor understands."""


def _restarted(name: str) -> bool:
    status = supervisor_status("trading")
    child = next(c for c in status.children if c.name == name)
    return child.restarts >= 1 and child.state.value == "running"



def _copy_journal(source: Path, target: Path, keep: Any) -> None:
    """A fresh hash chain with the records of ``source`` that ``keep(record)`` accepts."""
    with Journal.open(source) as journal:
        records = list(journal.replay())
    with Journal.open(target) as copy:
        for record in records:
            if keep(record):
                copy.append(record.stream, record.kind, record.cause, record.data, record.time)


def test_a_crash_between_the_journal_and_the_ledger_rebooks_the_trades_on_resume(
        venue: RunningVenue, tmp_path: Path) -> None:
    """The journal says the order filled (with its trade) but the process died before the
    ledger booked the trade: on resume the trade is booked before the order settles."""
    first = TradingNode(venue.url, tmp_path / "before")
    first.start()
    try:
        order = placed(place("gap-1", price="70000"))
        assert settled(order.id).state is OrderState.FILLED
    finally:
        first.stop()
    seen_fills = False

    def until_the_fill(record: Any) -> bool:
        nonlocal seen_fills
        if record.stream != order.id:
            return True
        keep = not seen_fills
        seen_fills = seen_fills or bool(record.data["order"]["fills"])
        return keep

    crashed = tmp_path / "crashed"
    _copy_journal(tmp_path / "before" / "journal", crashed / "journal", until_the_fill)
    _copy_journal(tmp_path / "before" / "ledger", crashed / "ledger",
                  lambda r: not (r.stream == order.id and r.kind in ("ledger.fill",
                                                                       "ledger.void")))
    second = TradingNode(venue.url, crashed)
    second.start()
    try:
        assert settled(order.id).state is OrderState.FILLED
        kinds = [e.kind for e in ask(LEDGER, ListLedgerEntries(order_id=order.id)).entries]
        assert kinds == ["reserve", "fill", "void"]
        assert_books_equal_venue(venue.url)
    finally:
        second.stop()


def test_a_self_trade_is_booked_once_on_each_side(node: TradingNode, venue: RunningVenue) -> None:
    """Our buy meets our resting sell: one venue trade id, two orders, two bookings."""
    book = venue.venue.engine.order_book("BTC/USDT")
    bid, ask_price = book.bids[0][0], book.asks[0][0]
    inside = ((bid + ask_price) / 2).quantize(Decimal("0.01"))
    assert bid < inside < ask_price
    sell = placed(place("self-1", side="sell", price=str(inside)))
    wait_until(lambda: get(sell.id).state is OrderState.OPEN)
    buy = placed(place("self-2", side="buy", price=str(inside)))
    sold, bought = settled(sell.id), settled(buy.id)
    assert sold.state is bought.state is OrderState.FILLED
    assert sold.fills[0].trade_id == bought.fills[0].trade_id
    assert_books_equal_venue(venue.url)


def test_orders_refused_by_an_open_circuit_are_placed_once_it_closes(
        venue: RunningVenue, tmp_path: Path) -> None:
    """CircuitOpen proves nothing was sent: the same attempt is sent again once the breaker lets
    calls through; every order ends up placed exactly once."""
    handle = TradingNode(venue.url, tmp_path)
    handle.config = trading_config(venue.url, tmp_path, breaker={
        "window_size": 4.0, "minimum_calls": 4, "failure_rate_threshold": 0.5,
        "half_open_probes": 1, "open_base": 0.3, "open_cap": 1.0, "jitter": 0.0})
    handle.start()
    try:
        install_faults(venue.url, [{"endpoint": "create_order", "fault": "error_503",
                                    "count": 4}])
        orders = [placed(place(f"cb-{i}", price=str(50000 + i))) for i in range(6)]
        wait_until(lambda: statistics(NAMES.gatekeeper).circuit_open > 0, timeout=10)
        for order in orders:
            wait_until(lambda o=order: get(o.id).state is OrderState.OPEN, timeout=30)
        truth = Counter(o["client_order_id"] for o in venue_orders(venue.url))
        assert all(truth[o.client_order_id] == 1 for o in orders)
    finally:
        handle.stop()
        pykka.ActorRegistry.stop_all()


def test_a_burst_beyond_the_trading_queue_is_placed_once_each_never_rejected_as_overloaded(
        venue: RunningVenue, tmp_path: Path) -> None:
    """Overloaded proves nothing was sent: an order accepted (journaled, reserved) while the
    pool's trading queue is full is sent again later, not closed ``rejected``; every order of
    the burst is placed exactly once (the bench saw 20 % end "not sent: Overloaded"). One
    submit attempt per order: a refusal that sent nothing must not use it up."""
    handle = TradingNode(venue.url, tmp_path, max_submit_attempts=1)
    handle.config = attrs.evolve(handle.config, pool=attrs.evolve(
        handle.config.pool, workers=2, trading_queue=2))
    handle.start()
    try:
        # Slow creates keep both workers busy long enough for the burst to overfill the queue
        # of two even when the coordinator submits slowly (a loaded CI machine once did not).
        install_faults(venue.url, [{"endpoint": "create_order", "fault": "latency",
                                    "latency_ms": 60}])
        burst = 40
        with ThreadPoolExecutor(8) as callers:
            orders = list(callers.map(
                lambda i: placed(place(f"ov-{i}", side="buy" if i % 2 else "sell",
                                       price="70000" if i % 2 else "20000")), range(burst)))
        assert statistics(NAMES.dispatcher).overloaded > 0, "the burst never filled the queue"
        finals = [settled(o.id, timeout=60) for o in orders]
        assert Counter(v.state for v in finals) == {OrderState.FILLED: burst}, \
            [(v.client_id, v.state, v.reason) for v in finals if v.state is not OrderState.FILLED]
        truth = Counter(o["client_order_id"] for o in venue_orders(venue.url))
        assert [truth[v.client_order_id] for v in finals] == [1] * burst
        assert_books_equal_venue(venue.url)
    finally:
        handle.stop()
        pykka.ActorRegistry.stop_all()


def test_lookups_of_many_open_orders_never_queue_more_than_the_cap_ahead_of_other_reads(
        venue: RunningVenue, tmp_path: Path) -> None:
    """Open orders are looked up on the in-flight schedule; when the rate limit cannot keep up,
    at most ``inflight_cap`` lookups are outstanding at once, so the reconciler's reads wait
    behind a few of them, not behind a queue full of them (reconciling 1 000 open orders
    missed every deadline)."""
    handle = TradingNode(venue.url, tmp_path, inflight_cap=3)
    handle.config = attrs.evolve(handle.config, ratelimit=attrs.evolve(
        handle.config.ratelimit, units_per_second=20.0))
    handle.start()
    try:
        # 20: their lookups (16 units) never outweigh one listing of open orders, so they
        # stay one by one (tests/integration/test_inflight_sweep.py covers the listings).
        orders = [placed(place(f"rest-{i}", price=str(40000 + i))) for i in range(20)]
        for order in orders:
            wait_until(lambda o=order: get(o.id).state is OrderState.OPEN, timeout=30)
        wait_until(lambda: statistics(NAMES.dispatcher).submitted > 150, timeout=30)
        queued = statistics(NAMES.dispatcher).max_queued
        assert queued["market_data"] <= 3 + 2, queued  # + the reconciler's reads
        report = reconcile_now(20)
        assert isinstance(report, ReconciliationView) and report.open_orders_seen == 20
    finally:
        handle.stop()
        pykka.ActorRegistry.stop_all()
