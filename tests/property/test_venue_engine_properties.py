"""Hypothesis state machine over the engine: any sequence of orders, cancels, clock steps and
balance drifts conserves every currency, never leaves a balance negative, keeps ``locked``
equal to what open orders hold, and a refused order changes nothing."""

from __future__ import annotations

from decimal import Decimal as D

import attrs
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from simulator import (
    AccountSpec,
    Engine,
    VenueConfig,
    VenueError,
    default_accounts,
    default_markets,
)

ACCOUNTS = ["demo-key", "poor"]
SYMBOLS = ["BTC/USDT", "ETH/USDT", "ETH/BTC"]
CIDS = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))


def config(seed: int) -> VenueConfig:
    poor = AccountSpec(id="poor", api_key="pk", secret="ps",
                       balances={"USDT": D("50"), "BTC": D("0.002"), "ETH": D("0.05")})
    # Few house levels and a thin house purse, so user orders exhaust levels and rest.
    markets = tuple(attrs.evolve(m, house_levels=3) for m in default_markets()[:3])
    return VenueConfig(markets=markets, accounts=(*default_accounts(), poor), seed=seed,
                       requote_interval_ms=1000, house_balance_multiple=3)


class EngineMachine(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**16))
    def start(self, seed: int) -> None:
        self.engine = Engine(config(seed), now=0)
        self.now = 0
        self.initial = self.engine.totals()
        self.order_ids: list[int] = []

    def _state(self):
        e = self.engine
        return (e.all_balances(), [(o.id, o.status, o.filled, o.locked) for o in e.orders()])

    @rule(account=st.sampled_from(ACCOUNTS), symbol=st.sampled_from(SYMBOLS),
          side=st.sampled_from(["buy", "sell"]), type=st.sampled_from(["limit", "market"]),
          tif=st.sampled_from(["GTC", "IOC", "FOK"]), steps=st.integers(1, 12000),
          ticks=st.integers(-400, 400), cid=CIDS)
    def place(self, account, symbol, side, type, tif, steps, ticks, cid) -> None:
        spec = self.engine.market(symbol)
        amount = spec.step_size * steps
        price = self.engine.reference_price(symbol) + spec.tick_size * ticks * 10
        before = self._state()
        try:
            placed = self.engine.place_order(account, symbol, side, type, amount,
                                             price if type == "limit" else None, tif, cid,
                                             self.now)
        except VenueError as exc:
            event(f"refused: {exc.kind}")
            assert self._state() == before, "a refused order changed the venue"
            return
        event(f"accepted: {placed.order.status.value}")
        self.order_ids.append(placed.order.id)
        assert placed.order.filled <= placed.order.amount
        assert sum((f.amount for f in placed.fills), D(0)) == placed.order.filled

    @rule(data=st.data(), account=st.sampled_from(ACCOUNTS))
    def cancel(self, data, account) -> None:
        if not self.order_ids:
            return
        order_id = data.draw(st.sampled_from(self.order_ids))
        before = self._state()
        try:
            self.engine.cancel_order(account, self.now, order_id=order_id)
        except VenueError:
            assert self._state() == before

    @rule(ms=st.integers(0, 5000))
    def advance(self, ms: int) -> None:
        self.now += ms
        self.engine.advance(self.now)

    @rule(account=st.sampled_from(ACCOUNTS), currency=st.sampled_from(["USDT", "BTC", "ETH"]),
          amount=st.decimals(min_value=0, max_value=1000, places=4))
    def drift(self, account, currency, amount) -> None:
        moved = self.engine.drift_balance(account, currency, amount, self.now)
        assert 0 <= moved <= amount

    @invariant()
    def conserved_and_consistent(self) -> None:
        assert self.engine.audit() == []
        assert self.engine.totals() == self.initial


TestEngineMachine = EngineMachine.TestCase
TestEngineMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
