"""The order protocol against a reference venue, under random faults and report orderings.

The venue model is the ground truth: it holds at most the orders really created for the
client order id, executes fills, processes creates and cancels that were sent, and answers
lookups truthfully *at the time of the lookup*. Its answers reach the core in any order,
late, twice, or not at all; creates time out and land later (always within the grace
window, as the protocol assumes); the node restarts from its journal.

Invariants: the venue never holds two orders for one client order id; every create uses the
same client order id and a further create follows a trusted absence past the grace window;
filled never exceeds the amount and never exceeds the venue's; the core's outcome agrees
with the venue; a final order never changes; writes are journaled first; refused events
change nothing. At teardown every order is driven to a final, settled state that matches
the venue exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import attrs
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from trading.protocol import (
    CancelAcked,
    CancelNotFound,
    CancelRequested,
    Fill,
    FundsReserved,
    InvalidTransition,
    Journal,
    MarketRules,
    OrderAbsent,
    OrderIntent,
    OrderObserved,
    OrderState,
    PostFill,
    ProtocolConfig,
    ReservationRefused,
    ReserveFunds,
    Resume,
    SendCancel,
    SendCreate,
    Settled,
    SettleReservation,
    Submit,
    SubmitAcked,
    SubmitAmbiguous,
    SubmitRejected,
    Trade,
    VenueSnapshot,
    VenueStatus,
    apply,
    prepare,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GRACE = timedelta(seconds=30)
#: Creates land at the venue (or are lost) strictly within this bound after their send.
LANDING_BOUND = GRACE - timedelta(seconds=1)
AMOUNT = D("1")
MARKET = MarketRules(symbol="BTC/USDT", base="BTC", quote="USDT", amount_step=D("0.001"),
                     price_tick=D("0.01"), min_cost=D("1"))
WRITES = (SendCreate, SendCancel)
LEDGER = (ReserveFunds, PostFill, SettleReservation)


@attrs.define
class VenueOrder:
    venue_order_id: str
    status: VenueStatus
    filled: D = D(0)
    trades: list[Trade] = attrs.Factory(list)


@attrs.define
class PendingCreate:
    attempt: int
    sent_at: datetime
    answered: bool = False  # the core already got an answer (e.g. its ask timed out)


class VenueModel:
    """The truth about one client order id at a venue (Binance semantics: a client order id
    is unique among *open* orders only, so a blind resubmit after a fill makes a 2nd order)."""

    def __init__(self, lookup_sees_closed: bool) -> None:
        self.lookup_sees_closed = lookup_sees_closed
        self.orders: list[VenueOrder] = []
        self.in_flight: list[PendingCreate] = []
        self.trade_seq = 0

    @property
    def order(self) -> VenueOrder | None:
        return self.orders[-1] if self.orders else None

    def snapshot(self, now: datetime, with_trades: bool) -> VenueSnapshot:
        o = self.order
        assert o is not None
        return VenueSnapshot(o.status, o.filled, now, o.venue_order_id, None,
                             tuple(o.trades) if with_trades else ())

    def create(self, now: datetime) -> VenueOrder:
        order = VenueOrder(f"v{len(self.orders) + 1}", VenueStatus.OPEN)
        self.orders.append(order)
        return order


class OrderProtocolMachine(RuleBasedStateMachine):
    lookup_sees_closed = True

    def __init__(self) -> None:
        super().__init__()
        self.config = ProtocolConfig(absence_grace=GRACE, max_submit_attempts=3,
                                     lookup_sees_closed_orders=self.lookup_sees_closed)
        self.venue = VenueModel(self.lookup_sees_closed)
        self.now = T0
        self.inbox: list[object] = []  # venue answers not yet delivered to the core
        self.delivered: list[object] = []  # for duplicate / late replays
        self.cancels: list[SendCancel] = []
        self.creates: list[tuple[SendCreate, datetime]] = []
        self.posted: set[str] = set()
        self.settle_due = False
        self.journal: list = []
        self.final_copy = None

    # ------------------------------------------------------------------ plumbing

    def step(self, event: object) -> None:
        before = self.order
        try:
            result = apply(before, event, self.now, self.config)
        except InvalidTransition:
            # Only commands may be refused; a truthful venue report never is.
            assert isinstance(event, Submit | Settled), event
            assert self.order is before
            return
        self.check_step(before, event, result)
        self.order = result.order
        for effect in result.effects:
            self.perform(effect, event)

    def check_step(self, before, event, result) -> None:
        effects = result.effects
        if result.change is None:
            assert result.order is before, "a step without a change record changed the order"
            assert not any(isinstance(e, WRITES + LEDGER + (Journal,)) for e in effects)
        else:
            assert isinstance(effects[0], Journal) and effects[0].order == result.order
            assert not any(isinstance(e, Journal) for e in effects[1:])
        if self.final_copy is not None:
            assert result.order == self.final_copy, "a final order changed"

    def perform(self, effect: object, event: object) -> None:
        if isinstance(effect, Journal):
            self.journal.append(effect.order)
        elif isinstance(effect, SendCreate):
            self.check_create(effect, event)
            self.creates.append((effect, self.now))
            self.venue.in_flight.append(PendingCreate(effect.attempt, self.now))
        elif isinstance(effect, SendCancel):
            self.cancels.append(effect)
        elif isinstance(effect, PostFill):
            assert effect.trade.trade_id not in self.posted, "a trade was posted twice"
            self.posted.add(effect.trade.trade_id)
        elif isinstance(effect, SettleReservation):
            assert self.order.is_closed and self.order.trades_complete
            assert effect.filled == self.order.fills_total
            self.settle_due = True

    def check_create(self, create: SendCreate, event: object) -> None:
        assert create.client_order_id == self.order.client_order_id
        assert create.attempt == len(self.creates) + 1
        if self.creates:
            previous_sent = self.creates[-1][1]
            assert isinstance(event, OrderAbsent), event
            assert event.confirmed_at >= previous_sent + GRACE
            assert self.lookup_sees_closed or event.searched_history
            assert not self.venue.in_flight, "resubmitted while a create could still land"
            assert self.venue.order is None, "resubmitted although the order exists"

    # ------------------------------------------------------------------ rules

    @initialize(side=st.sampled_from(["buy", "sell"]),
                phase=st.sampled_from(["prepared", "reserved", "submitted", "submitted"]))
    def prepare_order(self, side: str, phase: str) -> None:
        intent = OrderIntent.parse(client_id="c1", symbol="BTC/USDT", side=side, type="limit",
                                   amount=str(AMOUNT), price="100")
        result = prepare(transaction_id="tx1", venue="binance", client_order_id="cid-tx1",
                         intent=intent, market=MARKET, now=self.now)
        self.order = result.order
        self.journal.append(result.order)
        if phase != "prepared":
            self.step(FundsReserved())
        if phase == "submitted":
            self.step(Submit())

    @precondition(lambda self: self.order.state is OrderState.PREPARED
                  and not self.order.reserved)
    @rule(ok=st.sampled_from([True, True, True, False]))
    def ledger_answers_reservation(self, ok: bool) -> None:
        self.step(FundsReserved() if ok else ReservationRefused("insufficient"))

    @rule()
    def submit(self) -> None:
        self.step(Submit())

    @rule(reason=st.sampled_from(["user", "shutdown"]), now=st.integers(0, 3))
    def cancel(self, reason: str, now: int) -> None:
        if now == 0:  # cancels end most stories early: keep them rarer than the rest
            self.step(CancelRequested(reason))

    @precondition(lambda self: self.order.state is OrderState.SUBMITTING)
    @rule()
    def ask_times_out(self) -> None:
        """The gateway gives up on the current create: ambiguous, while it may still land."""
        for pending in self.venue.in_flight:
            if pending.attempt == self.order.attempts:
                pending.answered = True
        self.step(SubmitAmbiguous(self.order.attempts, "RequestTimeout"))

    @precondition(lambda self: self.venue.in_flight)
    @rule(data=st.data(),
          outcome=st.sampled_from(["accept", "accept_reply_lost", "reject", "lost"]))
    def venue_processes_create(self, data, outcome: str) -> None:
        pending = data.draw(st.sampled_from(self.venue.in_flight))
        self.venue.in_flight.remove(pending)
        self.land(pending, outcome)

    def land(self, pending: PendingCreate, outcome: str) -> None:
        venue = self.venue
        if outcome in ("accept", "accept_reply_lost"):
            if venue.order is not None and venue.order.status is VenueStatus.OPEN:
                answer = SubmitRejected(pending.attempt, "Duplicate order sent.", True)
            else:
                venue.create(self.now)
                answer = (SubmitAcked(pending.attempt, venue.snapshot(self.now, True))
                          if outcome == "accept" else
                          SubmitAmbiguous(pending.attempt, "connection reset"))
        elif outcome == "reject":
            answer = SubmitRejected(pending.attempt, "Filter failure: PRICE_FILTER")
        else:
            answer = SubmitAmbiguous(pending.attempt, "lost before the venue")
        self.inbox.append(answer)

    @precondition(lambda self: self.venue.order is not None
                  and self.venue.order.status is VenueStatus.OPEN)
    @rule(qty=st.sampled_from([D("0.25"), D("0.5"), D("1")]))
    def venue_fills(self, qty: D) -> None:
        o = self.venue.order
        qty = min(qty, AMOUNT - o.filled)
        self.venue.trade_seq += 1
        o.trades.append(Trade(f"T{self.venue.trade_seq}", qty, D("100"), D("0.01"), "USDT"))
        o.filled += qty
        if o.filled == AMOUNT:
            o.status = VenueStatus.CLOSED

    @precondition(lambda self: self.venue.order is not None
                  and self.venue.order.status is VenueStatus.OPEN)
    @rule()
    def venue_expires_order(self) -> None:
        self.venue.order.status = VenueStatus.EXPIRED

    @precondition(lambda self: self.cancels)
    @rule(data=st.data(), outcome=st.sampled_from(["ok", "ok_no_details", "applied_reply_lost",
                                                   "lost"]))
    def venue_processes_cancel(self, data, outcome: str) -> None:
        cancel = data.draw(st.sampled_from(self.cancels))
        self.cancels.remove(cancel)
        o = self.venue.order
        if outcome == "lost":
            return
        if o is None or o.status is not VenueStatus.OPEN:
            if outcome != "applied_reply_lost":
                self.inbox.append(CancelNotFound())
            return
        o.status = VenueStatus.CANCELED
        if outcome == "ok":
            self.inbox.append(CancelAcked(self.venue.snapshot(self.now, False)))
        elif outcome == "ok_no_details":
            self.inbox.append(CancelAcked())

    @rule(history=st.booleans(), with_trades=st.booleans())
    def venue_answers_lookup(self, history: bool, with_trades: bool) -> None:
        """A lookup answered truthfully now; the answer may reach the core much later."""
        o = self.venue.order
        visible = o is not None and (history or self.lookup_sees_closed
                                     or o.status is VenueStatus.OPEN)
        if visible:
            self.inbox.append(OrderObserved(self.venue.snapshot(self.now, with_trades)))
        else:
            self.inbox.append(OrderAbsent(self.now, searched_history=history))

    @precondition(lambda self: self.venue.order is not None and self.venue.order.trades)
    @rule(data=st.data())
    def venue_reports_trade(self, data) -> None:
        self.inbox.append(Fill(data.draw(st.sampled_from(self.venue.order.trades))))

    @precondition(lambda self: self.inbox)
    @rule(data=st.data())
    def deliver(self, data) -> None:
        """Deliver any pending answer: out of order, possibly long after it was made."""
        message = data.draw(st.sampled_from(self.inbox))
        self.inbox.remove(message)
        self.delivered.append(message)
        self.step(message)

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def redeliver(self, data) -> None:
        """A duplicate or stale replay of something already delivered."""
        self.step(data.draw(st.sampled_from(self.delivered)))

    @precondition(lambda self: self.settle_due)
    @rule()
    def ledger_settles(self) -> None:
        self.settle_due = False
        self.step(Settled())

    @rule()
    def node_restarts(self) -> None:
        """kill -9: in-memory state is lost; the order comes back from its journal."""
        self.order = self.journal[-1]
        self.cancels.clear()  # unanswered asks die with the node
        self.settle_due = False
        self.step(Resume())

    @rule(seconds=st.sampled_from([1, 5, 15, 29, 31, 60]))
    def time_passes(self, seconds: int) -> None:
        target = self.now + timedelta(seconds=seconds)
        # A create lands (or is lost) within LANDING_BOUND of its send: the grace window's
        # premise. Hypothesis chooses how; here, the ones reaching their bound are lost.
        for pending in list(self.venue.in_flight):
            if pending.sent_at + LANDING_BOUND <= target:
                self.venue.in_flight.remove(pending)
                self.land(pending, "lost")
        self.now = target

    # ------------------------------------------------------------------ invariants

    @invariant()
    def one_venue_order_per_client_order_id(self) -> None:
        assert len(self.venue.orders) <= 1

    @invariant()
    def filled_is_bounded_by_amount_and_venue(self) -> None:
        o = self.order
        assert o.fills_total <= o.intent.amount and o.filled <= o.intent.amount
        truth = self.venue.order.filled if self.venue.order else D(0)
        assert o.filled <= truth

    @invariant()
    def journal_holds_the_current_order(self) -> None:
        assert self.journal[-1] == self.order

    @invariant()
    def outcome_agrees_with_the_venue(self) -> None:
        o, v = self.order, self.venue.order
        if o.venue_order_id is not None:
            assert v is not None and o.venue_order_id == v.venue_order_id
        if o.state in (OrderState.OPEN, OrderState.FILLED, OrderState.CANCELED):
            assert v is not None
        if o.state is OrderState.FILLED:
            assert v.status is VenueStatus.CLOSED
        if o.state is OrderState.CANCELED:
            assert v.status in (VenueStatus.CANCELED, VenueStatus.EXPIRED)
        if o.state in (OrderState.REJECTED, OrderState.ABORTED):
            assert v is None
        if o.state is OrderState.ABORTED:
            assert not self.venue.in_flight, "aborted while a create could still land"

    @invariant()
    def final_never_changes(self) -> None:
        if self.order.is_final:
            if self.final_copy is None:
                self.final_copy = self.order
            assert self.order == self.final_copy

    # ------------------------------------------------------------------ settling

    def teardown(self) -> None:
        """Drive the order to a final state as the actor would, then compare with the venue."""
        for pending in list(self.venue.in_flight):
            self.venue.in_flight.remove(pending)
            self.land(pending, "accept_reply_lost")
        for message in list(self.inbox):
            self.step(message)
        self.inbox.clear()
        for _ in range(40):
            o = self.order
            if o.is_final:
                break
            if o.state is OrderState.PREPARED:
                self.step(CancelRequested("teardown"))
            elif o.state is OrderState.SUBMITTING:
                pending = self.venue.in_flight.pop()
                self.land(pending, "accept")
                self.step(self.inbox.pop())
            elif o.state is OrderState.UNKNOWN:
                self.now += GRACE
                self.venue_answers_lookup(history=True, with_trades=True)
                self.step(self.inbox.pop())
            elif o.state is OrderState.OPEN:
                self.step(CancelRequested("teardown"))
                self.cancels.clear()
                if self.venue.order.status is VenueStatus.OPEN:
                    self.venue.order.status = VenueStatus.CANCELED
                self.step(OrderObserved(self.venue.snapshot(self.now, True)))
            elif not o.trades_complete:
                self.step(OrderObserved(self.venue.snapshot(self.now, True)))
            else:
                self.step(Settled())
        o, v = self.order, self.venue.order
        event(f"final {o.state.value}, {len(self.creates)} creates, "
              f"filled {'part' if 0 < o.fills_total < AMOUNT else o.fills_total}")
        assert o.is_final, o
        assert len(self.venue.orders) <= 1
        if v is None:
            assert o.state in (OrderState.REJECTED, OrderState.ABORTED)
            assert o.fills == ()
        else:
            expected = {VenueStatus.CLOSED: OrderState.FILLED,
                        VenueStatus.CANCELED: OrderState.CANCELED,
                        VenueStatus.EXPIRED: OrderState.CANCELED}[v.status]
            assert o.state is expected
            assert sorted(t.trade_id for t in o.fills) == sorted(t.trade_id for t in v.trades)
            assert o.fills_total == v.filled == o.filled
        assert self.posted == {t.trade_id for t in o.fills}


class OpenOnlyLookupMachine(OrderProtocolMachine):
    """Nobitex semantics: the client-id lookup only sees open orders."""

    lookup_sees_closed = False


_settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestOrderProtocol = OrderProtocolMachine.TestCase
TestOrderProtocol.settings = _settings
TestOrderProtocolOpenOnlyLookup = OpenOnlyLookupMachine.TestCase
TestOrderProtocolOpenOnlyLookup.settings = _settings
