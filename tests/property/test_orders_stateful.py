"""Hypothesis stateful test of the whole order path against the venue (stock ccxt over HTTP,
real gateway, real journal and ledger): random orders (resting, marketable, market), fills and
partial fills (the venue's house account crosses our resting orders), cancels, faults (the
executed-but-answer-lost create, 5xx on creates and lookups), worker crashes (between calls,
and right after a create reached the venue) and node restarts on the same data directory.
After settling, judged against the venue's ``/_sim`` ground truth: at most one venue order
per client order id, every venue order known to the node, no order
left prepared/submitting/unknown, ledger sums zero per currency, ledger balances equal to the
venue's exactly.
"""

from __future__ import annotations

import tempfile
import threading
from collections import Counter
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import attrs
import pykka
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors import Worker
from actors.names import GatewayNames
from actors.trading import TRANSACTIONS
from messages.exchange import ExchangeRequest
from messages.orders import (
    IdempotencyConflict,
    InsufficientFunds,
    ListOrders,
    OrderPlaced,
    OrderState,
)
from supervisors import names
from tests.helpers_trading import (
    ask,
    cancel,
    get,
    ground_truth,
    ledger_balances,
    ledger_sums,
    place,
    start_trading,
    trading_config,
    wait_accepting,
)
from tests.helpers_venue import install_faults, running_venue
from tests.waiting import wait_until

SYMBOL = "BTC/USDT"
STEP = Decimal("0.00001")
PENDING = {OrderState.PREPARED, OrderState.SUBMITTING, OrderState.UNKNOWN}


@attrs.frozen
class _CrashNow:
    """Nobody understands this message: the worker that receives it crashes."""


#: Set by a rule: the next create_order reaches the venue, then its worker dies (a bug-crash).
CRASH_AFTER_NEXT_CREATE = threading.Event()


class DyingWorker(Worker):
    """A real worker that, when told to, crashes right after its create reached the venue."""

    def invoke(self, request: ExchangeRequest) -> Any:
        result = super().invoke(request)
        if request.method == "create_order" and CRASH_AFTER_NEXT_CREATE.is_set():
            CRASH_AFTER_NEXT_CREATE.clear()
            raise RuntimeError("worker died after sending the create")
        return result


ORDERS = st.fixed_dictionaries({
    "side": st.sampled_from(["buy", "sell"]),
    "kind": st.sampled_from(["resting", "marketable", "market"]),
    "amount": st.sampled_from(["0.001", "0.002", "0.005"]),
})


class OrdersAgainstTheVenue(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._venue_cm = running_venue(seed=3)
        self.venue = self._venue_cm.__enter__()
        self.data_dir = Path(tempfile.mkdtemp(prefix="orders-stateful-"))
        self.config = trading_config(self.venue.url, self.data_dir, absence_grace=0.5)
        CRASH_AFTER_NEXT_CREATE.clear()
        self.tree = start_trading(self.config, DyingWorker)
        wait_accepting()
        self.placed: dict[str, tuple[dict[str, Any], str]] = {}  # client id -> content, order
        self.counter = 0

    # ------------------------------------------------------------------ rules

    def _price(self, side: str, marketable: bool) -> str:
        up = (side == "buy") == marketable
        return "66000" if up else "54000"

    @rule(order=ORDERS)
    def place_new(self, order: dict[str, Any]) -> None:
        self.counter += 1
        client_id = f"c{self.counter}"
        content = {"side": order["side"], "amount": order["amount"],
                   "price": self._price(order["side"], order["kind"] != "resting")}
        if order["kind"] == "market":  # a market buy's price caps what it reserves
            content.update(type="market", price="66000" if order["side"] == "buy" else None)
        reply = place(client_id, **content)
        assert isinstance(reply, OrderPlaced | InsufficientFunds), reply
        if isinstance(reply, OrderPlaced):
            assert reply.created
            self.placed[client_id] = (content, reply.order.id)

    @precondition(lambda self: self.placed)
    @rule(data=st.data(), same=st.booleans())
    def place_again(self, data: st.DataObject, same: bool) -> None:
        client_id = data.draw(st.sampled_from(sorted(self.placed)))
        content, order_id = self.placed[client_id]
        if same:
            reply = place(client_id, **content)
            assert isinstance(reply, OrderPlaced) and not reply.created
            assert reply.order.id == order_id
        else:
            other = {**content, "amount": "0.003"}
            reply = place(client_id, **other)
            assert isinstance(reply, IdempotencyConflict) and reply.order_id == order_id

    @precondition(lambda self: self.placed)
    @rule(data=st.data())
    def cancel_one(self, data: st.DataObject) -> None:
        _, order_id = self.placed[data.draw(st.sampled_from(sorted(self.placed)))]
        cancel(order_id)

    @precondition(lambda self: self.placed)
    @rule(data=st.data(), fraction=st.sampled_from([Decimal("0.4"), Decimal("1")]))
    def house_crosses_a_resting_order(self, data: st.DataObject, fraction: Decimal) -> None:
        """The venue's market maker trades against one of our open orders (partial or full)."""
        _, order_id = self.placed[data.draw(st.sampled_from(sorted(self.placed)))]
        view = get(order_id)
        if view.state is not OrderState.OPEN or view.price is None:
            return
        amount = ((view.amount - view.filled) * fraction).quantize(STEP, rounding=ROUND_DOWN)
        if amount <= 0:
            return
        engine = self.venue.venue.engine
        engine.place_order("house", SYMBOL, "sell" if view.side == "buy" else "buy", "limit",
                           amount, view.price, time_in_force="IOC", now=self.venue.venue.now())

    @rule(fault=st.sampled_from([
        {"endpoint": "create_order", "fault": "lose_response", "count": 1},
        {"endpoint": "create_order", "fault": "error_503", "count": 1},
        {"endpoint": "fetch_order", "fault": "error_500", "count": 2},
        {"endpoint": "cancel_order", "fault": "lose_response", "count": 1},
    ]))
    def inject_fault(self, fault: dict[str, Any]) -> None:
        install_faults(self.venue.url, [fault], seed=self.counter)

    @rule(worker=st.integers(min_value=1, max_value=4))
    def crash_a_worker(self, worker: int) -> None:
        names.tell(GatewayNames("sim").worker(worker), _CrashNow(), timeout=5.0)

    @rule()
    def a_worker_dies_after_its_next_create(self) -> None:
        CRASH_AFTER_NEXT_CREATE.set()

    @rule()
    def restart_the_node(self) -> None:
        assert self.tree.stop(timeout=20)
        self.tree = start_trading(self.config, DyingWorker)
        wait_accepting()

    @invariant()
    def reads_are_always_served(self) -> None:
        orders = ask(TRANSACTIONS, ListOrders()).orders
        assert {o.id for o in orders} >= {order_id for _, order_id in self.placed.values()}

    # ------------------------------------------------------------------ settle and judge

    def teardown(self) -> None:
        try:
            self._settle_and_judge()
        finally:
            self.tree.stop(timeout=20)
            pykka.ActorRegistry.stop_all()
            self._venue_cm.__exit__(None, None, None)

    def _settle_and_judge(self) -> None:
        install_faults(self.venue.url, [])
        CRASH_AFTER_NEXT_CREATE.clear()
        for _, order_id in self.placed.values():
            cancel(order_id)

        def settled() -> bool:
            views = ask(TRANSACTIONS, ListOrders()).orders
            return all(v.settled for v in views)

        wait_until(settled, timeout=30, interval=0.05)
        views = ask(TRANSACTIONS, ListOrders()).orders
        assert not [v for v in views if v.state in PENDING]
        truth = [o for o in ground_truth(self.venue.url, "orders")
                 if o["account"] == "demo-key"]
        per_client_order_id = Counter(o["client_order_id"] for o in truth)
        assert all(count == 1 for count in per_client_order_id.values()), per_client_order_id
        known = {v.client_order_id for v in views}
        assert set(per_client_order_id) <= known
        for view in views:
            venue_order = [o for o in truth if o["client_order_id"] == view.client_order_id]
            if view.state in (OrderState.FILLED, OrderState.CANCELED):
                assert len(venue_order) == 1
                assert Decimal(venue_order[0]["filled"]) == view.filled
            if view.state in (OrderState.REJECTED, OrderState.ABORTED):
                assert not venue_order or Decimal(venue_order[0]["filled"]) == 0
        assert all(total == 0 for total in ledger_sums().values())
        balances = ground_truth(self.venue.url, "balances")["demo-key"]
        ours = {b.currency: b for b in ledger_balances().balances}
        for currency, figures in balances.items():
            total = Decimal(figures["free"]) + Decimal(figures["locked"])
            assert ours[currency].total == total, (currency, ours[currency], figures)
            assert ours[currency].reserved == Decimal(figures["locked"]), currency


OrdersAgainstTheVenue.TestCase.settings = settings(
    max_examples=6, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestOrdersAgainstTheVenue = OrdersAgainstTheVenue.TestCase
