"""The shadow ledger against a reference model, under random operations.

Random deposits, reservations, fills, posts, voids, adjustments, freezes, duplicates,
conflicting ids, invalid entries and restarts (rebuild from serialised entries). A
simple model predicts every outcome; invariants check that every entry balances per
currency, cached balances equal recomputation, nothing goes negative, reservations
add up, and a refused operation changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from trading.errors import (
    CurrencyFrozen,
    IdempotencyConflict,
    InsufficientAvailable,
    InvalidAccount,
    InvalidInput,
    LedgerError,
    Overfill,
    ReservationClosed,
    UnbalancedEntry,
    UnknownReservation,
)
from trading.ledger import Entry, EntryKind, Fill, Ledger, Posting

VENUES = st.sampled_from(["binance", "nobitex"])
CURRENCIES = st.sampled_from(["BTC", "USDT"])
TRANSFERS = st.sampled_from([f"t{i}" for i in range(3)])
PERCENT = st.sampled_from([50, 100, 101, 150]) | st.integers(1, 150)
AMOUNTS = st.integers(1, 200_000).map(lambda n: Decimal(n).scaleb(-2))  # 0.01 .. 2000.00
SMALL = st.integers(1, 5_000).map(lambda n: Decimal(n).scaleb(-4))  # 0.0001 .. 0.5
PRICES = st.integers(1, 4_000).map(Decimal)
STEP = Decimal("0.00000001")
T0 = datetime(2026, 11, 24, tzinfo=UTC)


def snapshot(ledger: Ledger) -> tuple:
    return (ledger.entries, ledger.account_balances(), ledger.reservations(), ledger.frozen())


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger()
        self.clock = T0
        self.avail: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.resv: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.res: dict[str, dict] = {}
        self.requests: dict[str, object] = {}
        self.frozen: set[tuple[str, str]] = set()
        self.counter = 0
        self.done: list[tuple[str, object, Callable[[], Entry]]] = []

    def now(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def transfer(self, data: st.DataObject) -> str:
        """Mostly a known reservation, sometimes an unknown or never-reserved id."""
        known = st.sampled_from(sorted(self.res)) if self.res else TRANSFERS
        return data.draw(st.one_of(known, known, known, TRANSFERS, st.just("t-unknown")))

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def attempt(
        self,
        op_id: str,
        request: object,
        predict: Callable[[], tuple[type[LedgerError], ...] | None],
        call: Callable[[], Entry],
        apply: Callable[[], None],
    ) -> None:
        """Run one operation and check it against the model's prediction."""
        before = snapshot(self.ledger)
        if op_id in self.requests:
            if self.requests[op_id] == request:
                assert call() is self.ledger.entry(op_id)
            else:
                with pytest.raises(IdempotencyConflict):
                    call()
            assert snapshot(self.ledger) == before
            return
        errors = predict()
        if errors:
            with pytest.raises(errors):
                call()
            assert snapshot(self.ledger) == before
            return
        entry = call()
        assert entry.id == op_id
        self.requests[op_id] = request
        self.done.append((op_id, request, call))
        apply()

    # ----------------------------------------------------------------- rules

    @initialize()
    def fund_both_venues(self) -> None:
        for venue in ("binance", "nobitex"):
            for cur, amount in (("USDT", Decimal("5000")), ("BTC", Decimal("2"))):
                self.deposit(f"init-{venue}-{cur}", venue, cur, amount)
        self._reserve("t-init-buy", "binance", "USDT", Decimal("3000"))
        self._reserve("t-init-sell", "nobitex", "BTC", Decimal("1.5"))

    @rule(data=st.data())
    def repeat_a_done_operation(self, data: st.DataObject) -> None:
        """The same operation again, as a retry after a crash would send it: a no-op."""
        if self.done:
            op_id, request, call = data.draw(st.sampled_from(self.done))
            self.attempt(op_id, request, lambda: None, call, lambda: None)

    @rule(key=st.sampled_from(["d0", "d1", "d2"]), venue=VENUES, cur=CURRENCIES, amount=AMOUNTS)
    def deposit(self, key: str, venue: str, cur: str, amount: Decimal) -> None:
        def apply() -> None:
            self.avail[(venue, cur)] += amount

        self.attempt(f"open:{key}", (venue, cur, amount), lambda: None,
                     lambda: self.ledger.deposit(key, venue, cur, amount, self.now()), apply)

    @rule(data=st.data(), venue=VENUES, cur=CURRENCIES, amount=AMOUNTS)
    def reserve(self, data: st.DataObject, venue: str, cur: str, amount: Decimal) -> None:
        if cur == "BTC":
            amount = amount.scaleb(-3)
        self._reserve(data.draw(TRANSFERS | st.just(self.fresh("t"))), venue, cur, amount)

    def _reserve(self, tid: str, venue: str, cur: str, amount: Decimal) -> None:
        def predict() -> tuple[type[LedgerError], ...] | None:
            errors: tuple[type[LedgerError], ...] = ()
            if self.avail[(venue, cur)] < amount:
                errors += (InsufficientAvailable,)
            if (venue, cur) in self.frozen:
                errors += (CurrencyFrozen,)
            return errors or None

        def apply() -> None:
            self.avail[(venue, cur)] -= amount
            self.resv[(venue, cur)] += amount
            self.res[tid] = {"key": (venue, cur), "amount": amount, "left": amount,
                             "voided": False}

        self.attempt(f"reserve:{tid}", (venue, cur, amount), predict,
                     lambda: self.ledger.reserve(tid, venue, cur, amount, self.now()), apply)

    @rule(
        data=st.data(),
        price=PRICES,
        fee=st.none() | SMALL,
        fee_in=st.sampled_from(["spent", "received"]),
        percent=PERCENT,
    )
    def fill(self, data: st.DataObject, price: Decimal, fee: Decimal | None, fee_in: str,
             percent: int) -> None:
        """A trade sized around what its reservation (or available) can pay; some overfill."""
        tid = data.draw(st.none() | st.just(self.transfer(data)))
        res = self.res.get(tid) if tid is not None else None
        if res is not None and not data.draw(st.integers(0, 9)) == 0:
            venue = res["key"][0]
            side = "buy" if res["key"][1] == "USDT" else "sell"
        else:
            venue = data.draw(VENUES)
            side = data.draw(st.sampled_from(["buy", "sell"]))
        spent_cur = "USDT" if side == "buy" else "BTC"
        budget = res["left"] if res is not None else self.avail[(venue, spent_cur)]
        target = (budget or Decimal(1)) * percent / 100
        amount = (target / price if side == "buy" else target).quantize(STEP, ROUND_DOWN)
        amount = max(amount, STEP)
        trade = self.fresh("x")
        cost = amount * price
        spent, spent_amt, got, got_amt = (
            ("USDT", cost, "BTC", amount) if side == "buy" else ("BTC", amount, "USDT", cost)
        )
        fee_cur = None if fee is None else (spent if fee_in == "spent" else got)
        fill = Fill(trade, venue, "BTC/USDT", side, amount, price,
                    fee=fee or Decimal(0), fee_currency=fee_cur, transfer_id=tid)
        from_res = from_avail = Decimal(0)
        fee_res = Decimal(0)

        def predict() -> tuple[type[LedgerError], ...] | None:
            nonlocal from_res, from_avail, fee_res
            if tid is not None:
                res = self.res.get(tid)
                if res is None:
                    return (UnknownReservation,)
                if res["voided"]:
                    return (ReservationClosed,)
                if res["key"] != (venue, spent):
                    return (InvalidInput,)
                if spent_amt > res["left"]:
                    return (Overfill,)
                from_res = spent_amt
                if fee and fee_cur == spent:
                    fee_res = min(fee, res["left"] - spent_amt)
            else:
                from_avail = spent_amt
            deltas = {spent: -from_avail, got: got_amt}
            if fee:
                deltas[fee_cur] = deltas[fee_cur] - (fee - fee_res)  # type: ignore[index]
            if any(self.avail[(venue, c)] + d < 0 for c, d in deltas.items()):
                return (InsufficientAvailable,)
            return None

        def apply() -> None:
            self.avail[(venue, spent)] -= from_avail
            self.avail[(venue, got)] += got_amt
            if fee:
                self.avail[(venue, fee_cur)] -= fee - fee_res  # type: ignore[index]
            if tid is not None:
                self.resv[(venue, spent)] -= from_res + fee_res
                self.res[tid]["left"] -= from_res + fee_res

        self.attempt(f"fill:{venue}:BTC/USDT:{trade}", fill, predict,
                     lambda: self.ledger.fill(fill, self.now()), apply)

    @rule(data=st.data(), post_id=st.sampled_from(["p0", "p1"]), percent=PERCENT)
    def post(self, data: st.DataObject, post_id: str, percent: int) -> None:
        tid = self.transfer(data)
        res = self.res.get(tid)
        amount = max(((res["left"] if res else Decimal(1)) * percent / 100).quantize(
            STEP, ROUND_DOWN), STEP)
        venue, cur = res["key"] if res else ("binance", "USDT")
        destination = f"expenses:fees:{venue}:{cur}"

        def predict() -> tuple[type[LedgerError], ...] | None:
            if res is None:
                return (UnknownReservation,)
            if res["voided"]:
                return (ReservationClosed,)
            if amount > res["left"]:
                return (Overfill,)
            return None

        def apply() -> None:
            assert res is not None
            res["left"] -= amount
            self.resv[(venue, cur)] -= amount

        self.attempt(f"post:{tid}:{post_id}", (amount, destination), predict,
                     lambda: self.ledger.post(tid, post_id, amount, destination, self.now()),
                     apply)

    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        tid = self.transfer(data)
        res = self.res.get(tid)

        def predict() -> tuple[type[LedgerError], ...] | None:
            return (UnknownReservation,) if res is None else None

        def apply() -> None:
            assert res is not None
            self.avail[res["key"]] += res["left"]
            self.resv[res["key"]] -= res["left"]
            res["left"] = Decimal(0)
            res["voided"] = True

        self.attempt(f"void:{tid}", (), predict, lambda: self.ledger.void(tid, self.now()), apply)

    @rule(key=st.sampled_from(["a0", "a1"]), venue=VENUES, cur=CURRENCIES,
          delta=AMOUNTS, negative=st.booleans())
    def adjust(self, key: str, venue: str, cur: str, delta: Decimal, negative: bool) -> None:
        delta = -delta if negative else delta

        def predict() -> tuple[type[LedgerError], ...] | None:
            return (InsufficientAvailable,) if self.avail[(venue, cur)] + delta < 0 else None

        def apply() -> None:
            self.avail[(venue, cur)] += delta

        self.attempt(
            f"adjust:{key}", (venue, cur, delta), predict,
            lambda: self.ledger.adjust(key, venue, cur, delta, self.now(), reason="model",
                                       ledger_total=Decimal(0), exchange_total=delta),
            apply,
        )

    @rule(venue=VENUES, cur=CURRENCIES, frozen=st.booleans())
    def freeze_or_unfreeze(self, venue: str, cur: str, frozen: bool) -> None:
        key = self.fresh("f")
        kind = "freeze" if frozen else "unfreeze"

        def apply() -> None:
            (self.frozen.add if frozen else self.frozen.discard)((venue, cur))

        self.attempt(f"{kind}:{key}", (), lambda: None,
                     lambda: getattr(self.ledger, kind)(key, venue, cur, self.now(),
                                                        reason="model"),
                     apply)

    @rule(venue=VENUES, amount=AMOUNTS, skew=AMOUNTS)
    def unbalanced_entry_is_refused(self, venue: str, amount: Decimal, skew: Decimal) -> None:
        entry = Entry(self.fresh("open:bad"), EntryKind.OPEN, self.now(), "bad", (
            Posting(f"assets:{venue}:USDT:available", "USDT", amount + skew),
            Posting(f"equity:opening:{venue}:USDT", "USDT", -amount),
        ), ())
        self.attempt(entry.id, entry, lambda: (UnbalancedEntry,),
                     lambda: self.ledger.record(entry), lambda: None)

    @rule(amount=AMOUNTS, account=st.sampled_from([
        "assets:binance:USDT:free", "income:binance:USDT", "assets:binance:BTC:available",
    ]))
    def bad_account_is_refused(self, amount: Decimal, account: str) -> None:
        entry = Entry(self.fresh("open:bad"), EntryKind.OPEN, self.now(), "bad", (
            Posting(account, "USDT", amount),
            Posting("equity:opening:binance:USDT", "USDT", -amount),
        ), ())
        self.attempt(entry.id, entry, lambda: (InvalidAccount,),
                     lambda: self.ledger.record(entry), lambda: None)

    @rule()
    def restart(self) -> None:
        before = snapshot(self.ledger)
        self.ledger = Ledger.from_entries(Entry.from_json(e.to_json()) for e in before[0])
        assert snapshot(self.ledger) == before

    # ------------------------------------------------------------ invariants

    @invariant()
    def every_entry_balances_per_currency(self) -> None:
        for entry in self.ledger.entries:
            sums: dict[str, Decimal] = defaultdict(Decimal)
            for p in entry.postings:
                sums[p.currency] += p.amount
            assert all(v == 0 for v in sums.values()), entry

    @invariant()
    def cached_balances_equal_recomputation(self) -> None:
        assert self.ledger.account_balances() == self.ledger.recompute_balances()

    @invariant()
    def balances_equal_the_model_and_never_go_negative(self) -> None:
        for (venue, cur), bal in self.ledger.balances().items():
            assert bal.available >= 0 and bal.reserved >= 0
            assert (bal.available, bal.reserved) == (self.avail[(venue, cur)],
                                                     self.resv[(venue, cur)])

    @invariant()
    def reserved_is_the_sum_of_open_reservations(self) -> None:
        held: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for res in self.ledger.reservations():
            assert res.remaining >= 0
            assert res.remaining == self.res[res.transfer_id]["left"]
            if not res.voided:
                held[(res.venue, res.currency)] += res.remaining
        for key, bal in self.ledger.balances().items():
            assert bal.reserved == held[key]

    @invariant()
    def freezes_match(self) -> None:
        assert set(self.ledger.frozen()) == self.frozen


LedgerMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
TestLedgerStateful = LedgerMachine.TestCase
