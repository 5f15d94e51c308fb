"""Stateful hypothesis test through stock ccxt.binance over HTTP with faults installed: the
venue's ground truth always agrees with what the client was told, funds are conserved and
no balance goes negative, whatever mix of orders, cancels and faults ran."""

from __future__ import annotations

import ccxt
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.helpers_venue import (
    admin,
    assert_funds_conserved,
    binance_client,
    currency_totals,
    install_faults,
    running_venue,
)

SYMBOL = "ETH/USDT"
FAULTS = ["error_500", "error_503", "rate_limit", "lose_response", "latency", "clock_skew"]

fault_rules = st.lists(st.fixed_dictionaries({
    "endpoint": st.sampled_from(["create_order", "cancel_order", "fetch_order", "*"]),
    "fault": st.sampled_from(FAULTS),
    "probability": st.sampled_from([0.1, 0.3]),
}), max_size=3)


class VenueOverHttp(RuleBasedStateMachine):
    url: str = ""

    @initialize(seed=st.integers(0, 10_000), rules=fault_rules)
    def start(self, seed, rules) -> None:
        admin(self.url, "/_sim/reset", "POST")
        self.start_totals = currency_totals(admin(self.url, "/_sim/balances"))
        self.exchange = binance_client(self.url, timeout_ms=3000)
        self.exchange.load_markets()
        for rule_ in rules:
            if rule_["fault"] == "latency":
                rule_["latency_ms"] = 5
            if rule_["fault"] == "clock_skew":
                rule_["skew_ms"] = 30_000
        install_faults(self.url, rules, seed=seed)
        self.acked: dict[str, str] = {}      # order id -> client order id, as ccxt was told
        self.attempted: set[str] = set()      # every client order id we sent
        self.canceled: set[str] = set()       # ids whose cancel was acknowledged
        self.counter = 0

    def _truth(self) -> dict[str, dict]:
        return {str(o["id"]): o for o in admin(self.url, "/_sim/orders?account=demo-key")}

    @rule(side=st.sampled_from(["buy", "sell"]), market=st.booleans(),
          offset=st.integers(-30, 30), amount=st.sampled_from([0.01, 0.05, 0.5]))
    def create(self, side, market, offset, amount) -> None:
        self.counter += 1
        cid = f"sm-{self.counter}"
        self.attempted.add(cid)
        price = None if market else 3000 + offset
        try:
            order = self.exchange.create_order(SYMBOL, "market" if market else "limit", side,
                                               amount, price, {"newClientOrderId": cid})
        except ccxt.BaseError:
            return
        assert order["clientOrderId"] == cid
        self.acked[order["id"]] = cid

    @rule(data=st.data())
    def cancel(self, data) -> None:
        if not self.acked:
            return
        order_id = data.draw(st.sampled_from(sorted(self.acked)))
        try:
            result = self.exchange.cancel_order(order_id, SYMBOL)
        except ccxt.BaseError:
            return
        assert result["status"] == "canceled"
        self.canceled.add(order_id)

    @rule(data=st.data())
    def fetch(self, data) -> None:
        if not self.acked:
            return
        order_id = data.draw(st.sampled_from(sorted(self.acked)))
        try:
            order = self.exchange.fetch_order(order_id, SYMBOL)
        except ccxt.BaseError:
            return
        truth = self._truth()[order_id]
        assert order["clientOrderId"] == truth["client_order_id"] == self.acked[order_id]
        assert order["filled"] == pytest.approx(float(truth["filled"]))

    @invariant()
    def ground_truth_agrees(self) -> None:
        if not hasattr(self, "acked"):
            return
        truth = self._truth()
        for order_id, cid in self.acked.items():
            assert truth[order_id]["client_order_id"] == cid, "acknowledged order missing"
        for order_id in self.canceled:
            assert truth[order_id]["status"] == "canceled"
        # nothing the client did not send exists; lost responses may have executed
        assert {o["client_order_id"] for o in truth.values()} <= self.attempted
        assert_funds_conserved(self.url, self.start_totals)
        assert admin(self.url, "/_sim/audit")["problems"] == []


@pytest.fixture(scope="module")
def venue():
    with running_venue(seed=3) as handle:
        yield handle


def test_venue_over_http_state_machine(venue):
    VenueOverHttp.url = venue.url
    run_state_machine_as_test(VenueOverHttp, settings=settings(
        max_examples=8, stateful_step_count=15, deadline=None))
