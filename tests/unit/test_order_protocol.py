"""The order protocol core: every transition, every refusal, the effects and their order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import attrs
import pytest

from trading.protocol import (
    CLOSED_STATES,
    TRANSITIONS,
    CancelAcked,
    CancelNotFound,
    CancelRequested,
    ConflictingVenueReport,
    Fill,
    FillExceedsAmount,
    FundsReserved,
    InvalidTransition,
    Journal,
    MalformedVenueReport,
    MarketRules,
    Order,
    OrderAbsent,
    OrderIntent,
    OrderObserved,
    OrderState,
    OrderValidationError,
    PostFill,
    ProtocolConfig,
    QueryOrder,
    ReservationRefused,
    ReserveFunds,
    Resume,
    SendCancel,
    SendCreate,
    Settled,
    SettleReservation,
    Side,
    Step,
    Submit,
    SubmitAcked,
    SubmitAmbiguous,
    SubmitRejected,
    Trade,
    VenueSnapshot,
    VenueStatus,
    _trigger,
    apply,
    lookup_priority,
    prepare,
    validate_for_market,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SEC = timedelta(seconds=1)
CONFIG = ProtocolConfig(absence_grace=30 * SEC, max_submit_attempts=3)
MARKET = MarketRules(
    symbol="BTC/USDT", base="BTC", quote="USDT", amount_step=D("0.001"), price_tick=D("0.01"),
    min_amount=D("0.001"), max_amount=D("100"), min_price=D("1"), max_price=D("1000000"),
    min_cost=D("10"), max_cost=None,
)
WRITES = (SendCreate, SendCancel)
LEDGER = (ReserveFunds, PostFill, SettleReservation)


def intent(side: str = "buy", amount: str = "1", price: str | None = "100", **kw) -> OrderIntent:
    return OrderIntent.parse(client_id="c1", symbol="BTC/USDT", side=side,
                             type=kw.pop("type", "limit"), amount=amount, price=price, **kw)


def check_journal_first(step: Step) -> Step:
    """The protocol's promise: anything written (ledger or wire) follows a Journal effect."""
    kinds = [type(e) for e in step.effects]
    if any(k in WRITES or k in LEDGER for k in kinds):
        assert kinds[0] is Journal, kinds
        assert step.effects[0].order == step.order
    return step


def go(order: Order, event, at: datetime = T0, config: ProtocolConfig = CONFIG) -> Step:
    return check_journal_first(apply(order, event, at, config))


def prepared(**kw) -> Order:
    return prepare(transaction_id="tx1", venue="binance", client_order_id="cid1",
                   intent=intent(**kw), market=MARKET, now=T0).order


def submitting(**kw) -> Order:
    order = go(prepared(**kw), FundsReserved()).order
    return go(order, Submit()).order


def snap(status: str = "open", filled: str = "0", trades=(), vid: str | None = "v1",
         at: datetime = T0) -> VenueSnapshot:
    return VenueSnapshot(VenueStatus(status), D(filled), at, vid, None, tuple(trades))


def trade(tid: str, qty: str, price: str = "100") -> Trade:
    return Trade(tid, D(qty), D(price), D("0.1"), "USDT")


def open_order(**kw) -> Order:
    return go(submitting(**kw), SubmitAcked(1, snap())).order


def unknown_order(**kw) -> Order:
    return go(submitting(**kw), SubmitAmbiguous(1, "timeout")).order


def effect_types(step: Step) -> list[type]:
    return [type(e) for e in step.effects]


# --------------------------------------------------------------------------- intent, market


@pytest.mark.parametrize(
    ("kwargs", "field", "code"),
    [
        ({"side": "hold"}, "side", "invalid_choice"),
        ({"amount": 0.5}, "amount", "not_a_decimal"),
        ({"amount": "NaN"}, "amount", "not_a_decimal"),
        ({"amount": "-1"}, "amount", "not_positive"),
        ({"price": "0"}, "price", "not_positive"),
        ({"price": None}, "price", "required"),
        ({"type": "stop"}, "type", "invalid_choice"),
        ({"type": "market", "time_in_force": "GTC"}, "time_in_force", "not_allowed"),
        ({"type": "market", "price": None}, "price", "required"),
        ({"time_in_force": "GTD"}, "time_in_force", "invalid_choice"),
    ],
)
def test_intent_parse_names_the_bad_field(kwargs: dict, field: str, code: str) -> None:
    with pytest.raises(OrderValidationError) as err:
        intent(**kwargs)
    assert (err.value.field, err.value.code) == (field, code)


def test_intent_parse_defaults_and_market_sell_without_price() -> None:
    assert intent().time_in_force.value == "GTC"
    sell = intent(side="sell", type="market", price=None)
    assert sell.price is None and sell.time_in_force is None


@pytest.mark.parametrize(
    ("kwargs", "field", "code"),
    [
        ({"amount": "1.0005"}, "amount", "amount_precision"),
        ({"price": "100.001"}, "price", "price_precision"),
        ({"amount": "101"}, "amount", "amount_max"),
        ({"price": "0.5", "amount": "50"}, "price", "price_min"),
        ({"amount": "0.05", "price": "100"}, "amount", "min_notional"),
    ],
)
def test_market_rules_refuse_by_field(kwargs: dict, field: str, code: str) -> None:
    with pytest.raises(OrderValidationError) as err:
        validate_for_market(intent(**kwargs), MARKET)
    assert (err.value.field, err.value.code) == (field, code)


def test_wrong_symbol_is_refused_and_prepare_creates_nothing() -> None:
    other = OrderIntent.parse(client_id="c", symbol="ETH/USDT", side="buy", type="limit",
                              amount="1", price="100")
    with pytest.raises(OrderValidationError, match="symbol"):
        prepare(transaction_id="t", venue="binance", client_order_id="c", intent=other,
                market=MARKET, now=T0)


def test_market_rules_from_ccxt_tick_size_and_decimal_places() -> None:
    market = {"symbol": "BTC/USDT", "base": "BTC", "quote": "USDT",
              "precision": {"amount": 1e-05, "price": 0.01},
              "limits": {"amount": {"min": 1e-05, "max": 9000.0}, "cost": {"min": 5.0},
                         "price": {"min": None, "max": None}}}
    rules = MarketRules.from_ccxt(market)
    assert rules.amount_step == D("0.00001") and rules.price_tick == D("0.01")
    assert rules.min_cost == D("5.0") and rules.min_price is None
    places = MarketRules.from_ccxt({**market, "precision": {"amount": 3, "price": 2}}, 2)
    assert places.amount_step == D("0.001") and places.price_tick == D("0.01")
    with pytest.raises(MalformedVenueReport, match="precisionMode"):
        MarketRules.from_ccxt(market, 3)


def test_snapshot_and_trade_from_ccxt() -> None:
    s = VenueSnapshot.from_ccxt(
        {"id": 42, "status": "closed", "filled": 0.5, "average": 100.5,
         "trades": [{"id": 7, "amount": 0.5, "price": 100.5,
                     "fee": {"cost": 0.0005, "currency": "BTC"}}]}, T0)
    assert s.status is VenueStatus.CLOSED and s.filled == D("0.5")
    assert s.venue_order_id == "42" and s.trades[0] == Trade("7", D("0.5"), D("100.5"),
                                                             D("0.0005"), "BTC")
    with pytest.raises(MalformedVenueReport, match="status"):
        VenueSnapshot.from_ccxt({"status": None}, T0)
    with pytest.raises(MalformedVenueReport, match="id"):
        Trade.from_ccxt({"amount": 1, "price": 1})


# --------------------------------------------------------------------------- the table


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(OrderState, OrderState)))
def test_trigger_allows_exactly_the_table(src: OrderState, dst: OrderState) -> None:
    order = attrs_evolve(prepared(), state=src)
    if dst in TRANSITIONS[src]:
        new, change = _trigger(order, dst, "test", T0 + SEC, {})
        assert new.state is dst and change.from_state is src and change.to_state is dst
        assert new.updated_at == T0 + SEC
        assert (new.closed_at is not None) == (dst in CLOSED_STATES)
    else:
        with pytest.raises(InvalidTransition) as err:
            _trigger(order, dst, "test", T0, {})
        assert err.value.from_state is src and err.value.to_state is dst


def test_closed_states_only_have_self_edges_and_final_refuses_all() -> None:
    for state in CLOSED_STATES:
        assert TRANSITIONS[state] == {state}
    final = attrs_evolve(prepared(), state=OrderState.FILLED, settled_at=T0)
    with pytest.raises(InvalidTransition, match="settled"):
        _trigger(final, OrderState.FILLED, "late", T0, {})


def attrs_evolve(order: Order, **changes) -> Order:
    return attrs.evolve(order, **changes)


# --------------------------------------------------------------------------- prepare, submit


def test_prepare_journals_then_reserves_quote_for_a_buy() -> None:
    step = prepare(transaction_id="tx1", venue="binance", client_order_id="cid1",
                   intent=intent(amount="2", price="150.5"), market=MARKET, now=T0)
    assert effect_types(step) == [Journal, ReserveFunds]
    assert step.effects[1] == ReserveFunds("tx1", "USDT", D("301.0"))
    assert step.order.state is OrderState.PREPARED and not step.order.reserved


def test_prepare_reserves_base_for_a_sell() -> None:
    order = prepared(side="sell", amount="0.5")
    assert (order.reserve_currency, order.reserve_amount) == ("BTC", D("0.5"))


def test_submit_needs_the_reservation_first() -> None:
    with pytest.raises(InvalidTransition, match="not reserved"):
        go(prepared(), Submit())


def test_reservation_and_duplicate_acknowledgment() -> None:
    step = go(prepared(), FundsReserved())
    assert step.order.reserved and effect_types(step) == [Journal]
    assert go(step.order, FundsReserved()).ignored is not None


def test_reservation_refused_aborts_and_is_final() -> None:
    step = go(prepared(), ReservationRefused("insufficient USDT"))
    assert step.order.state is OrderState.ABORTED and step.order.is_final
    assert effect_types(step) == [Journal]
    with pytest.raises(InvalidTransition):
        go(step.order, FundsReserved())


def test_submit_journals_then_sends_once() -> None:
    order = go(prepared(), FundsReserved()).order
    step = go(order, Submit(), T0 + SEC)
    assert effect_types(step) == [Journal, SendCreate]
    create = step.effects[1]
    assert (create.client_order_id, create.attempt, create.amount) == ("cid1", 1, D("1"))
    assert step.order.state is OrderState.SUBMITTING and step.order.last_sent_at == T0 + SEC
    again = go(step.order, Submit())
    assert again.ignored is not None and again.effects == () and again.order == step.order


# --------------------------------------------------------------------------- submit outcomes


def test_ack_opens_with_the_venue_id() -> None:
    step = go(submitting(), SubmitAcked(1, snap(vid="v9")))
    assert step.order.state is OrderState.OPEN and step.order.venue_order_id == "v9"
    assert step.order.acknowledged_at == T0


def test_ack_with_trades_posts_fills_and_settles_when_complete() -> None:
    step = go(submitting(), SubmitAcked(1, snap("closed", "1", [trade("t1", "0.4"),
                                                                trade("t2", "0.6")])))
    assert step.order.state is OrderState.FILLED
    assert effect_types(step) == [Journal, PostFill, PostFill, SettleReservation]
    assert step.effects[3] == SettleReservation("tx1", Side.BUY, D("1.0"), D("100.0"))
    final = go(step.order, Settled()).order
    assert final.is_final
    with pytest.raises(FillExceedsAmount):
        go(final, Fill(trade("t3", "0.1")))


def test_final_order_refuses_a_late_trade() -> None:
    closed = go(open_order(), OrderObserved(snap("canceled", "0.5", [trade("a", "0.5")]))).order
    final = go(closed, Settled()).order
    with pytest.raises(InvalidTransition, match="settled"):
        go(final, Fill(trade("late", "0.1")))
    assert go(final, Fill(trade("a", "0.5"))).ignored is not None


def test_definitive_rejection_voids_the_reservation() -> None:
    step = go(submitting(), SubmitRejected(1, "insufficient balance"))
    assert step.order.state is OrderState.REJECTED and step.order.reason == "insufficient balance"
    assert step.effects[-1] == SettleReservation("tx1", Side.BUY, D(0), D(0))


def test_duplicate_client_id_rejection_means_the_order_may_exist() -> None:
    step = go(submitting(), SubmitRejected(1, "Duplicate order sent.", True))
    assert step.order.state is OrderState.UNKNOWN
    assert effect_types(step) == [Journal, QueryOrder]


def test_ambiguous_submit_goes_unknown_and_asks_for_a_lookup() -> None:
    step = go(submitting(), SubmitAmbiguous(1, "RequestTimeout"))
    assert step.order.state is OrderState.UNKNOWN
    query = step.effects[-1]
    assert isinstance(query, QueryOrder) and query.client_order_id == "cid1"
    assert query.with_trades and not query.via_history


def test_late_answers_for_an_attempt_are_ignored() -> None:
    order = unknown_order()
    for event in (SubmitRejected(1, "late"), SubmitAmbiguous(1, "late")):
        step = go(order, event)
        assert step.ignored is not None and step.order == order and step.effects == ()


def test_ack_for_an_attempt_never_sent_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        go(submitting(), SubmitAcked(2, snap()))


# --------------------------------------------------------------------------- absence, resubmit


def test_absence_within_the_grace_window_changes_nothing() -> None:
    order = unknown_order()
    step = go(order, OrderAbsent(T0 + 29 * SEC), T0 + 29 * SEC)
    assert step.ignored is not None and "grace" in step.ignored.reason and step.order == order


def test_absence_past_grace_resubmits_with_the_same_client_order_id() -> None:
    order = unknown_order()
    now = T0 + 30 * SEC
    step = go(order, OrderAbsent(now), now)
    assert step.order.state is OrderState.SUBMITTING and step.order.attempts == 2
    create = step.effects[-1]
    assert isinstance(create, SendCreate) and create.attempt == 2
    assert create.client_order_id == "cid1" and step.order.last_sent_at == now
    # The grace window restarts from the resubmission.
    again = go(go(step.order, SubmitAmbiguous(2, "timeout"), now).order,
               OrderAbsent(now + 10 * SEC), now + 10 * SEC)
    assert again.ignored is not None


def test_attempts_are_capped_then_aborted_and_voided() -> None:
    order = unknown_order()
    now = T0
    for attempt in (2, 3):
        now += 31 * SEC
        order = go(order, OrderAbsent(now), now).order
        assert order.attempts == attempt
        order = go(order, SubmitAmbiguous(attempt, "timeout"), now).order
    now += 31 * SEC
    step = go(order, OrderAbsent(now), now)
    assert step.order.state is OrderState.ABORTED
    assert isinstance(step.effects[-1], SettleReservation)


def test_open_only_lookup_needs_the_history_before_absence_counts() -> None:
    config = ProtocolConfig(absence_grace=30 * SEC, lookup_sees_closed_orders=False)
    order = unknown_order()
    now = T0 + 60 * SEC
    step = go(order, OrderAbsent(now), now, config)
    assert step.order == order and effect_types(step) == [QueryOrder]
    assert step.effects[0].via_history
    resubmit = go(order, OrderAbsent(now, searched_history=True), now, config)
    assert resubmit.order.state is OrderState.SUBMITTING


def test_absence_with_a_cancel_pending_aborts_instead_of_resubmitting() -> None:
    order = go(unknown_order(), CancelRequested("user")).order
    now = T0 + 31 * SEC
    step = go(order, OrderAbsent(now), now)
    assert step.order.state is OrderState.ABORTED
    assert not any(isinstance(e, SendCreate) for e in step.effects)


def test_absence_dated_in_the_future_is_refused() -> None:
    with pytest.raises(MalformedVenueReport):
        go(unknown_order(), OrderAbsent(T0 + 60 * SEC), T0)


def test_absence_of_an_open_order_asks_the_history() -> None:
    order = open_order()
    step = go(order, OrderAbsent(T0 + SEC), T0 + SEC)
    assert step.order == order and step.effects[0].via_history and step.effects[0].with_trades


def test_absence_is_consistent_with_submitting_and_closed() -> None:
    assert go(submitting(), OrderAbsent(T0)).ignored is not None


# --------------------------------------------------------------------------- venue reports


def test_unknown_resolves_to_open_filled_canceled_or_rejected() -> None:
    for status, state in (("open", OrderState.OPEN), ("canceled", OrderState.CANCELED),
                          ("expired", OrderState.CANCELED), ("rejected", OrderState.REJECTED)):
        assert go(unknown_order(), OrderObserved(snap(status))).order.state is state
    filled = go(unknown_order(), OrderObserved(snap("closed", "1", [trade("a", "1")])))
    assert filled.order.state is OrderState.FILLED


def test_stale_open_report_after_fill_is_ignored() -> None:
    order = go(open_order(), OrderObserved(snap("closed", "1", [trade("a", "1")]))).order
    step = go(order, OrderObserved(snap("open", "0.2")))
    assert step.ignored is not None and step.order == order


def test_contradicting_closed_outcome_is_refused() -> None:
    order = go(open_order(), OrderObserved(snap("closed", "1", [trade("a", "1")]))).order
    with pytest.raises(InvalidTransition):
        go(order, OrderObserved(snap("canceled", "1")))


def test_second_venue_order_id_is_refused() -> None:
    with pytest.raises(ConflictingVenueReport, match="two venue orders"):
        go(open_order(), OrderObserved(snap(vid="v2")))


def test_rejected_with_fills_is_refused() -> None:
    with pytest.raises(ConflictingVenueReport):
        go(unknown_order(), OrderObserved(snap("rejected", "0.1")))


def test_open_report_for_a_never_opened_rejection_is_refused() -> None:
    order = go(submitting(), SubmitRejected(1, "no")).order
    with pytest.raises(InvalidTransition):
        go(order, OrderObserved(snap("open")))


def test_venue_filled_above_amount_is_refused() -> None:
    with pytest.raises(FillExceedsAmount):
        go(open_order(), OrderObserved(snap("open", "1.5")))


def test_closed_with_missing_trades_waits_and_asks_for_them() -> None:
    step = go(open_order(), OrderObserved(snap("canceled", "0.5", [trade("a", "0.2")])))
    assert step.order.state is OrderState.CANCELED
    assert not any(isinstance(e, SettleReservation) for e in step.effects)
    assert isinstance(step.effects[-1], QueryOrder) and step.effects[-1].with_trades
    with pytest.raises(InvalidTransition, match="settlement before"):
        go(step.order, Settled())
    assert lookup_priority(step.order) == 1
    done = go(step.order, Fill(trade("b", "0.3")))
    assert effect_types(done) == [Journal, PostFill, SettleReservation]
    assert done.effects[-1].filled == D("0.5")


def test_observation_without_news_is_ignored() -> None:
    order = open_order()
    step = go(order, OrderObserved(snap()))
    assert step.ignored is not None and step.effects == ()


def test_prepared_order_cannot_be_observed() -> None:
    with pytest.raises(InvalidTransition):
        go(prepared(), OrderObserved(snap()))


# --------------------------------------------------------------------------- fills


def test_fill_dedup_by_trade_id() -> None:
    order = go(open_order(), Fill(trade("t1", "0.3"))).order
    step = go(order, Fill(trade("t1", "0.3")))
    assert step.ignored is not None and step.order == order


def test_reused_trade_id_with_other_figures_is_refused() -> None:
    order = go(open_order(), Fill(trade("t1", "0.3"))).order
    with pytest.raises(ConflictingVenueReport):
        go(order, Fill(trade("t1", "0.4")))


def test_overfill_is_refused_and_changes_nothing() -> None:
    order = go(open_order(), Fill(trade("t1", "0.8"))).order
    with pytest.raises(FillExceedsAmount):
        go(order, Fill(trade("t2", "0.3")))
    assert order.fills_total == D("0.8")


def test_partial_fills_stay_open_then_fill() -> None:
    step = go(open_order(), Fill(trade("t1", "0.4")))
    assert step.order.state is OrderState.OPEN and step.order.filled == D("0.4")
    assert effect_types(step) == [Journal, PostFill]
    done = go(step.order, Fill(trade("t2", "0.6")))
    assert done.order.state is OrderState.FILLED
    assert effect_types(done) == [Journal, PostFill, SettleReservation]


def test_a_trade_proves_an_unknown_order_exists() -> None:
    step = go(unknown_order(), Fill(trade("t1", "0.1")))
    assert step.order.state is OrderState.OPEN


def test_a_trade_for_an_order_never_sent_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        go(go(prepared(), FundsReserved()).order, Fill(trade("t1", "0.1")))


# --------------------------------------------------------------------------- cancels


def test_cancel_before_submit_aborts_and_voids() -> None:
    order = go(prepared(), FundsReserved()).order
    step = go(order, CancelRequested("user"))
    assert step.order.state is OrderState.ABORTED and not step.order.is_final
    assert effect_types(step) == [Journal, SettleReservation]


def test_cancel_of_open_order_is_sent_and_retried() -> None:
    step = go(open_order(), CancelRequested("user"))
    assert effect_types(step) == [Journal, SendCancel]
    assert step.effects[1].venue_order_id == "v1" and step.effects[1].attempt == 1
    again = go(step.order, CancelRequested("user"), T0 + SEC)
    assert again.effects[1].attempt == 2
    assert again.order.cancel_requested_at == T0


def test_cancel_while_unknown_waits_then_cancels_once_seen() -> None:
    step = go(unknown_order(), CancelRequested("user"))
    assert effect_types(step) == [Journal, QueryOrder]
    seen = go(step.order, OrderObserved(snap()))
    assert seen.order.state is OrderState.OPEN and isinstance(seen.effects[-1], SendCancel)


def test_cancel_while_submitting_waits_for_the_ack() -> None:
    step = go(submitting(), CancelRequested("user"))
    assert effect_types(step) == [Journal]
    acked = go(step.order, SubmitAcked(1, snap()))
    assert isinstance(acked.effects[-1], SendCancel)


def test_cancel_acked_closes_and_settles() -> None:
    order = go(open_order(), CancelRequested("user")).order
    step = go(order, CancelAcked(snap("canceled")))
    assert step.order.state is OrderState.CANCELED
    assert isinstance(step.effects[-1], SettleReservation)


def test_cancel_ack_without_details_and_not_found_are_looked_up() -> None:
    order = go(open_order(), CancelRequested("user")).order
    for event in (CancelAcked(), CancelNotFound()):
        step = go(order, event)
        assert step.order == order and effect_types(step) == [QueryOrder]
    assert go(order, CancelNotFound()).effects[0].with_trades


def test_cancel_of_closed_order_is_ignored() -> None:
    order = go(open_order(), OrderObserved(snap("closed", "1", [trade("a", "1")]))).order
    assert go(order, CancelRequested()).ignored is not None
    assert go(order, CancelNotFound()).ignored is not None


# --------------------------------------------------------------------------- resume


def test_resume_while_submitting_goes_unknown_never_resends() -> None:
    step = go(submitting(), Resume())
    assert step.order.state is OrderState.UNKNOWN
    assert effect_types(step) == [Journal, QueryOrder]


def test_resume_prepared_reserves_again_idempotently() -> None:
    step = go(prepared(), Resume())
    assert effect_types(step) == [Journal, ReserveFunds]
    reserved = go(prepared(), FundsReserved()).order
    assert go(reserved, Resume()).ignored is not None


def test_resume_unknown_open_closed_final() -> None:
    assert effect_types(go(unknown_order(), Resume())) == [QueryOrder]
    assert go(open_order(), Resume()).ignored is not None
    canceling = go(open_order(), CancelRequested()).order
    assert effect_types(go(canceling, Resume())) == [Journal, SendCancel]
    closed = go(open_order(), OrderObserved(snap("canceled"))).order
    assert effect_types(go(closed, Resume())) == [Journal, SettleReservation]
    missing = go(open_order(), OrderObserved(snap("canceled", "0.5"))).order
    assert effect_types(go(missing, Resume())) == [QueryOrder]
    final = go(closed, Settled()).order
    assert go(final, Resume()).ignored is not None


def test_lookup_priorities() -> None:
    assert lookup_priority(prepared()) is None
    assert lookup_priority(submitting()) is None
    assert lookup_priority(unknown_order()) == 0
    assert lookup_priority(go(open_order(), CancelRequested()).order) == 1
    assert lookup_priority(open_order()) == 2


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="now"):
        apply(prepared(), FundsReserved(), datetime(2026, 1, 1), CONFIG)


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="absence_grace"):
        ProtocolConfig(absence_grace=timedelta(0))
    with pytest.raises(ValueError, match="max_submit_attempts"):
        ProtocolConfig(max_submit_attempts=0)


def test_venue_report_after_settlement_via_trades_is_not_news() -> None:
    """Regression (found by the stateful test): trades filled the order before any venue
    report did; the venue's later "closed, filled 1" must not be refused as a change."""
    order = go(open_order(), Fill(trade("T1", "1"))).order
    final = go(order, Settled()).order
    step = go(final, OrderObserved(snap("closed", "1")))
    assert step.ignored is not None and step.order == final


def test_final_order_drops_late_details_but_refuses_contradictions() -> None:
    order = go(unknown_order(), Fill(trade("T1", "1"))).order
    assert order.venue_order_id is None and order.state is OrderState.FILLED
    final = go(order, Settled()).order
    assert go(final, OrderObserved(snap("closed", "1", vid="v7"))).ignored is not None
    with pytest.raises(InvalidTransition):
        go(final, OrderObserved(snap("canceled", "1", vid="v7")))


def test_order_and_effects_round_trip_through_the_message_codec() -> None:
    from messages.codec import from_json, to_json

    step = go(go(open_order(), OrderObserved(snap("canceled", "0.5", [trade("a", "0.2")]))).order,
              Fill(trade("b", "0.3")))
    assert from_json(Order, to_json(step.order)) == step.order
    for effect in step.effects:
        assert from_json(type(effect), to_json(effect)) == effect


@pytest.mark.parametrize(("field", "value"), [("client_id", ""), ("client_id", "x" * 65),
                                              ("symbol", None), ("symbol", "  ")])
def test_intent_parse_refuses_bad_labels(field: str, value: object) -> None:
    raw = {"client_id": "c1", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
           "amount": "1", "price": "100", field: value}
    with pytest.raises(OrderValidationError) as err:
        OrderIntent.parse(**raw)
    assert err.value.field == field
