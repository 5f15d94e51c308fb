"""The venue's matching engine: accounts, balances, order books, a house market maker.

Synchronous, single-threaded by contract and fast: the HTTP app calls it from one event loop.
Every public method takes the time as ``now`` (integer milliseconds); nothing here reads a
clock. A re-entrant lock guards each public call, so off-loop readers (tests, admin) are safe.

Guarantees:

* **Conservation**: for every currency the sum of ``free + locked`` over all accounts
  (including ``house``, ``fees`` and ``withdrawn``) never changes; ``audit()`` checks it.
* **No negative balances**, and ``locked`` equals what the account's open orders hold.
* **Refusals change nothing**: ``place_order`` validates completely (symbol, parameters,
  PRICE_FILTER, LOT_SIZE, NOTIONAL, duplicate client id, funds) before it mutates anything,
  raising a typed :mod:`simulator.errors` error.
* **Determinism**: the reference prices follow a random walk seeded by ``VenueConfig.seed``;
  the same calls with the same ``now`` values give the same state.

Public API (stable; extended only by adding):

* ``Engine(config: VenueConfig, now: int = 0)``; ``reset(now)`` returns to the start state.
* Accounts: ``account(id)``, ``account_by_api_key(key)``, ``account_by_token(token)``,
  ``resolve_account(id_or_key_or_token)``, ``account_ids()``.
* Markets: ``markets`` (symbol -> MarketSpec, config order), ``market(symbol)``,
  ``reference_price(symbol)``.
* Orders: ``place_order(account, symbol, side, type, amount, price, time_in_force,
  client_order_id, now) -> Placement``;
  ``cancel_order(account, now, order_id=..., client_order_id=...)``;
  ``get_order(account, order_id)``;
  ``get_order_by_client_id(account, client_order_id, open_only)``;
  ``open_orders(account, symbol)``; ``orders(account, symbol)``.
* Trades: ``fills(account, symbol, since, limit, order_id, from_id)`` (one account's side).
* Balances: ``balance(account, currency)``, ``balances(account)``, ``all_balances()``,
  ``totals()``, ``drift_balance(account, currency, amount, now)``.
* Market data: ``ticker(symbol, now)``, ``order_book(symbol, depth, now)``,
  ``recent_trades(symbol, limit, since, from_id)`` (the public tape, last 10 000 per market).
* Time: ``advance(now)`` steps the reference random walk and re-quotes the house book once
  per ``requote_interval_ms``; the app calls it before every request.
* ``audit() -> list[str]``: invariant violations (empty when healthy).
"""

from __future__ import annotations

import bisect
import enum
import random
import threading
from collections import deque
from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal, InvalidOperation
from typing import TypeVar

import attrs

from simulator.errors import (
    DuplicateClientOrderId,
    FilterFailure,
    InsufficientBalance,
    InvalidOrderRequest,
    OrderNotOpen,
    UnknownAccount,
    UnknownOrder,
    UnknownSymbol,
)
from simulator.model import (
    FEES,
    HOUSE,
    WITHDRAWN,
    AccountSpec,
    Balance,
    BookView,
    Fill,
    MarketSpec,
    Order,
    OrderStatus,
    OrderType,
    Side,
    Ticker,
    TimeInForce,
    Trade,
    VenueConfig,
)

__all__ = ["Engine", "Placement"]

_ZERO = Decimal(0)
_FEE_QUANTUM = Decimal("1e-8")
_MAX_WALK_STEPS = 100
_TAPE_LENGTH = 10_000


@attrs.frozen(slots=True)
class Placement:
    """Result of ``place_order``: the order (already matched) and the fills it took part in now."""

    order: Order
    fills: tuple[Fill, ...]


class _Wallet:
    __slots__ = ("free", "locked")

    def __init__(self, free: Decimal = _ZERO, locked: Decimal = _ZERO) -> None:
        self.free = free
        self.locked = locked


class _BookSide:
    """Price levels of one side; ``prices`` ascending, best is last for bids, first for asks."""

    __slots__ = ("is_bid", "prices", "levels")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.prices: list[Decimal] = []
        self.levels: dict[Decimal, list[Order]] = {}

    def best(self) -> Decimal | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.is_bid else self.prices[0]

    def add(self, order: Order) -> None:
        price = order.price
        assert price is not None, "market orders never rest"
        level = self.levels.get(price)
        if level is None:
            self.levels[price] = [order]
            bisect.insort(self.prices, price)
        else:
            level.append(order)

    def remove(self, order: Order) -> None:
        price = order.price
        assert price is not None, "market orders never rest"
        level = self.levels[price]
        level.remove(order)
        if not level:
            del self.levels[price]
            self.prices.pop(bisect.bisect_left(self.prices, price))

    def iter_best(self) -> Iterable[Decimal]:
        return reversed(self.prices) if self.is_bid else iter(self.prices)


class _Book:
    __slots__ = ("bids", "asks", "sequence")

    def __init__(self) -> None:
        self.bids = _BookSide(is_bid=True)
        self.asks = _BookSide(is_bid=False)
        self.sequence = 0


class _MarketState:
    __slots__ = ("spec", "book", "reference", "last", "high", "low", "volume", "quote_volume",
                 "trade_count", "next_requote", "tape")

    def __init__(self, spec: MarketSpec) -> None:
        self.spec = spec
        self.book = _Book()
        self.reference = spec.initial_price
        self.last = spec.initial_price
        self.high = spec.initial_price
        self.low = spec.initial_price
        self.volume = _ZERO
        self.quote_volume = _ZERO
        self.trade_count = 0
        self.next_requote = 0
        self.tape: deque[Trade] = deque(maxlen=_TAPE_LENGTH)


_E = TypeVar("_E", bound=enum.Enum)


def _enum(cls: type[_E], value: object, what: str) -> _E:
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        try:
            return cls(str(value).lower()) if cls is not TimeInForce else cls(str(value).upper())
        except ValueError:
            raise InvalidOrderRequest(f"invalid {what}: {value!r}") from None


def _is_multiple(value: Decimal, unit: Decimal) -> bool:
    try:
        return value % unit == 0
    except InvalidOperation:
        return False


class Engine:
    """Matching engine over all markets and accounts (see the module docstring for the API)."""

    def __init__(self, config: VenueConfig, now: int = 0) -> None:
        self.config = config
        self._lock = threading.RLock()
        self.reset(now)

    # ------------------------------------------------------------------ setup
    def reset(self, now: int = 0) -> None:
        """Return to the configured start state (balances, empty history, fresh house book)."""
        with self._lock:
            cfg = self.config
            self._rng = random.Random(cfg.seed)
            self._accounts: dict[str, AccountSpec] = {a.id: a for a in cfg.accounts}
            self._accounts[HOUSE] = AccountSpec(id=HOUSE, maker_fee=_ZERO, taker_fee=_ZERO)
            self._accounts[FEES] = AccountSpec(id=FEES, maker_fee=_ZERO, taker_fee=_ZERO)
            self._accounts[WITHDRAWN] = AccountSpec(id=WITHDRAWN, maker_fee=_ZERO, taker_fee=_ZERO)
            self._by_key = {a.api_key: a for a in cfg.accounts if a.api_key}
            self._by_token = {a.nobitex_token: a for a in cfg.accounts if a.nobitex_token}
            self._wallets: dict[str, dict[str, _Wallet]] = {aid: {} for aid in self._accounts}
            for spec in cfg.accounts:
                for currency, amount in spec.balances.items():
                    self._wallets[spec.id][currency] = _Wallet(amount)
            self._markets: dict[str, _MarketState] = {
                m.symbol: _MarketState(m) for m in cfg.markets}
            for currency, amount in self._house_funding().items():
                self._wallets[HOUSE][currency] = _Wallet(amount)
            for wallets in self._wallets.values():
                for m in cfg.markets:
                    wallets.setdefault(m.base, _Wallet())
                    wallets.setdefault(m.quote, _Wallet())
            self._orders: dict[int, Order] = {}
            self._account_orders: dict[str, list[int]] = {aid: [] for aid in self._accounts}
            self._open_cids: dict[str, dict[str, int]] = {aid: {} for aid in self._accounts}
            self._last_cids: dict[str, dict[str, int]] = {aid: {} for aid in self._accounts}
            self._fills: dict[str, list[Fill]] = {aid: [] for aid in self._accounts}
            self._fills_by_order: dict[int, list[Fill]] = {}
            self._open: dict[str, dict[int, Order]] = {aid: {} for aid in self._accounts}
            self._house_orders: dict[str, list[Order]] = {s: [] for s in self._markets}
            self._next_order_id = 1
            self._next_trade_id = 1
            self._initial_totals = self._totals_unlocked()
            for state in self._markets.values():
                self._requote(state, now)
                state.next_requote = now + cfg.requote_interval_ms

    def _house_funding(self) -> dict[str, Decimal]:
        need: dict[str, Decimal] = {}
        for m in self.config.markets:
            levels = m.house_levels
            base_need = m.house_level_qty * levels
            quote_need = m.initial_price * m.house_level_qty * levels * 2
            need[m.base] = need.get(m.base, _ZERO) + base_need
            need[m.quote] = need.get(m.quote, _ZERO) + quote_need
        multiple = self.config.house_balance_multiple
        return {c: v * multiple for c, v in need.items()}

    # ------------------------------------------------------------------ accounts
    def account(self, account_id: str) -> AccountSpec:
        """The account with this id; raises ``UnknownAccount``."""
        spec = self._accounts.get(account_id)
        if spec is None:
            raise UnknownAccount(f"unknown account {account_id!r}")
        return spec

    def account_by_api_key(self, api_key: str) -> AccountSpec | None:
        return self._by_key.get(api_key)

    def account_by_token(self, token: str) -> AccountSpec | None:
        return self._by_token.get(token)

    def resolve_account(self, ref: str) -> AccountSpec:
        """Account by id, Binance API key or Nobitex token; raises ``UnknownAccount``."""
        spec = self._accounts.get(ref) or self._by_key.get(ref) or self._by_token.get(ref)
        if spec is None:
            raise UnknownAccount(f"unknown account {ref!r}")
        return spec

    def account_ids(self) -> list[str]:
        return list(self._accounts)

    # ------------------------------------------------------------------ markets
    @property
    def markets(self) -> dict[str, MarketSpec]:
        return {s: st.spec for s, st in self._markets.items()}

    def market(self, symbol: str) -> MarketSpec:
        return self._market_state(symbol).spec

    def _market_state(self, symbol: str) -> _MarketState:
        state = self._markets.get(symbol)
        if state is None:
            raise UnknownSymbol(f"unknown symbol {symbol!r}")
        return state

    def reference_price(self, symbol: str) -> Decimal:
        return self._market_state(symbol).reference

    # ------------------------------------------------------------------ orders
    def place_order(
        self,
        account: str,
        symbol: str,
        side: Side | str,
        type: OrderType | str,
        amount: Decimal,
        price: Decimal | None = None,
        time_in_force: TimeInForce | str = TimeInForce.GTC,
        client_order_id: str | None = None,
        now: int = 0,
    ) -> Placement:
        """Validate, accept and match an order. Raises a typed ``VenueError`` and changes nothing
        if the order is refused. IOC/FOK/market remainders expire; a FOK that cannot fill
        completely is accepted and expires with no fill (as Binance answers)."""
        with self._lock:
            self.account(account)
            state = self._market_state(symbol)
            spec = state.spec
            order_side: Side = _enum(Side, side, "side")
            order_type: OrderType = _enum(OrderType, type, "order type")
            tif = _enum(TimeInForce, time_in_force, "time in force")
            if not isinstance(amount, Decimal) or not amount.is_finite():
                raise InvalidOrderRequest(f"amount must be a finite Decimal, got {amount!r}")
            if client_order_id is not None and (not isinstance(client_order_id, str)
                                                or not client_order_id):
                raise InvalidOrderRequest("client order id must be a non-empty string")
            if order_type is OrderType.LIMIT:
                if price is None:
                    raise InvalidOrderRequest("limit order needs a price")
                if not isinstance(price, Decimal) or not price.is_finite():
                    raise InvalidOrderRequest(f"price must be a finite Decimal, got {price!r}")
                if price <= 0 or not _is_multiple(price, spec.tick_size):
                    raise FilterFailure("PRICE_FILTER", f"tick size {spec.tick_size}")
            else:
                price = None
                tif = TimeInForce.IOC
            if amount < spec.min_qty or not _is_multiple(amount, spec.step_size):
                raise FilterFailure("LOT_SIZE", f"min {spec.min_qty}, step {spec.step_size}")
            book = state.book
            opposite = book.asks if order_side is Side.BUY else book.bids
            notional_price: Decimal
            if price is not None:
                notional_price = price
            else:
                notional_price = opposite.best() or state.last
            if notional_price * amount < spec.min_notional:
                raise FilterFailure("NOTIONAL", f"min notional {spec.min_notional}")
            if client_order_id is not None and client_order_id in self._open_cids[account]:
                raise DuplicateClientOrderId("Duplicate order sent.")
            # Funds: buys lock quote, sells lock base; a market buy locks its exact cost.
            fillable, cost = self._walk(opposite, order_side, price, amount)
            if order_side is Side.BUY:
                need_currency = spec.quote
                need = notional_price * amount if order_type is OrderType.LIMIT else cost
            else:
                need_currency = spec.base
                need = amount
            wallet = self._wallet(account, need_currency)
            if need > wallet.free:
                raise InsufficientBalance("Account has insufficient balance for requested action.")
            # Accepted: nothing below may refuse.
            order = Order(
                id=self._next_order_id, account=account, symbol=symbol, side=order_side,
                type=order_type, time_in_force=tif, price=price, amount=amount,
                client_order_id=client_order_id, created_at=now, updated_at=now,
            )
            self._next_order_id += 1
            self._orders[order.id] = order
            self._account_orders[account].append(order.id)
            if client_order_id is not None:
                self._last_cids[account][client_order_id] = order.id
            if tif is TimeInForce.FOK and fillable < amount:
                order.status = OrderStatus.EXPIRED
                return Placement(order, ())
            wallet.free -= need
            wallet.locked += need
            order.locked = need
            if client_order_id is not None:
                self._open_cids[account][client_order_id] = order.id
            fills = self._match(state, order, now)
            if order.remaining > 0 and tif is TimeInForce.GTC:
                (book.bids if order_side is Side.BUY else book.asks).add(order)
                self._open[account][order.id] = order
                book.sequence += 1
            elif order.status.is_open:
                self._close(order, OrderStatus.EXPIRED, now)
            return Placement(order, tuple(fills))

    def _walk(self, opposite: _BookSide, side: Side, limit: Decimal | None,
              amount: Decimal) -> tuple[Decimal, Decimal]:
        """How much of ``amount`` the book can fill within ``limit``, and its quote cost."""
        left = amount
        cost = _ZERO
        for level_price in opposite.iter_best():
            if limit is not None and (level_price > limit if side is Side.BUY
                                      else level_price < limit):
                break
            for resting in opposite.levels[level_price]:
                qty = min(left, resting.remaining)
                cost += qty * level_price
                left -= qty
                if left == 0:
                    return amount, cost
        return amount - left, cost

    def _match(self, state: _MarketState, taker: Order, now: int) -> list[Fill]:
        book = state.book
        opposite = book.asks if taker.side is Side.BUY else book.bids
        fills: list[Fill] = []
        while taker.remaining > 0:
            best = opposite.best()
            if best is None:
                break
            if taker.price is not None and (best > taker.price if taker.side is Side.BUY
                                            else best < taker.price):
                break
            maker = opposite.levels[best][0]
            qty = min(taker.remaining, maker.remaining)
            fills.extend(self._settle(state, taker, maker, qty, best, now))
            if maker.remaining == 0:
                opposite.remove(maker)
                self._close(maker, OrderStatus.FILLED, now)
            book.sequence += 1
        if taker.remaining == 0:
            self._close(taker, OrderStatus.FILLED, now)
        return [f for f in fills if f.order_id == taker.id]

    def _settle(self, state: _MarketState, taker: Order, maker: Order, qty: Decimal,
                price: Decimal, now: int) -> tuple[Fill, Fill]:
        spec = state.spec
        quote = qty * price
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        fills = []
        for order, is_maker in ((taker, False), (maker, True)):
            acct = self._accounts[order.account]
            rate = acct.maker_fee if is_maker else acct.taker_fee
            if order.side is Side.BUY:
                spent_currency, spent, got_currency, got = spec.quote, quote, spec.base, qty
            else:
                spent_currency, spent, got_currency, got = spec.base, qty, spec.quote, quote
            fee = (got * rate).quantize(_FEE_QUANTUM, rounding=ROUND_DOWN) if rate else _ZERO
            paid = self._wallet(order.account, spent_currency)
            paid.locked -= spent
            order.locked -= spent
            self._wallet(order.account, got_currency).free += got - fee
            if fee:
                self._wallet(FEES, got_currency).free += fee
            order.filled += qty
            order.cost += quote
            order.updated_at = now
            if order.remaining > 0:
                order.status = OrderStatus.PARTIALLY_FILLED
            fill = Fill(
                trade_id=trade_id, order_id=order.id, account=order.account, symbol=spec.symbol,
                side=order.side, price=price, amount=qty, quote_amount=quote, fee=fee,
                fee_currency=got_currency, is_maker=is_maker, time=now,
            )
            self._fills[order.account].append(fill)
            self._fills_by_order.setdefault(order.id, []).append(fill)
            fills.append(fill)
        state.tape.append(Trade(trade_id, spec.symbol, price, qty, quote, taker.side, now))
        state.last = price
        state.high = max(state.high, price)
        state.low = min(state.low, price)
        state.volume += qty
        state.quote_volume += quote
        state.trade_count += 1
        return fills[0], fills[1]

    def _close(self, order: Order, status: OrderStatus, now: int) -> None:
        """Move an order to a final state and release whatever it still locks."""
        order.status = status
        order.updated_at = now
        self._open[order.account].pop(order.id, None)
        if order.locked:
            spec = self._markets[order.symbol].spec
            currency = spec.quote if order.side is Side.BUY else spec.base
            wallet = self._wallet(order.account, currency)
            wallet.locked -= order.locked
            wallet.free += order.locked
            order.locked = _ZERO
        cid = order.client_order_id
        if cid is not None and self._open_cids[order.account].get(cid) == order.id:
            del self._open_cids[order.account][cid]

    def cancel_order(self, account: str, now: int = 0, order_id: int | None = None,
                     client_order_id: str | None = None) -> Order:
        """Cancel an open order by id or client order id. Raises ``UnknownOrder`` when the
        account has no such order and ``OrderNotOpen`` when it is already final."""
        with self._lock:
            if order_id is not None:
                order = self.get_order(account, order_id)
            elif client_order_id is not None:
                order = self.get_order_by_client_id(account, client_order_id)
            else:
                raise InvalidOrderRequest("cancel needs an order id or a client order id")
            if not order.status.is_open:
                raise OrderNotOpen(f"order {order.id} is {order.status.value}")
            state = self._markets[order.symbol]
            (state.book.bids if order.side is Side.BUY else state.book.asks).remove(order)
            state.book.sequence += 1
            self._close(order, OrderStatus.CANCELED, now)
            return order

    def get_order(self, account: str, order_id: int) -> Order:
        """This account's order with ``order_id``; raises ``UnknownOrder``."""
        with self._lock:
            order = self._orders.get(order_id)
            if order is None or order.account != account:
                raise UnknownOrder(f"order {order_id} does not exist for this account")
            return order

    def get_order_by_client_id(self, account: str, client_order_id: str,
                               open_only: bool = False) -> Order:
        """The open order with this client id, else (unless ``open_only``) the latest order that
        carried it. ``open_only`` keeps Nobitex's limitation. Raises ``UnknownOrder``."""
        with self._lock:
            self.account(account)
            order_id = self._open_cids[account].get(client_order_id)
            if order_id is None and not open_only:
                order_id = self._last_cids[account].get(client_order_id)
            if order_id is None:
                raise UnknownOrder(f"no order with client order id {client_order_id!r}")
            return self._orders[order_id]

    def open_orders(self, account: str, symbol: str | None = None) -> list[Order]:
        """This account's open orders, oldest first."""
        with self._lock:
            self.account(account)
            return [o for _, o in sorted(self._open[account].items())
                    if symbol is None or o.symbol == symbol]

    def orders(self, account: str | None = None, symbol: str | None = None) -> list[Order]:
        """Every order the venue accepted (for one account or all), oldest first. The house's
        cancelled-unfilled quotes are forgotten, the rest is kept."""
        with self._lock:
            if account is None:
                result = sorted(self._orders.values(), key=lambda o: o.id)
            else:
                self.account(account)
                result = [self._orders[i] for i in self._account_orders[account]
                          if i in self._orders]
            return [o for o in result if symbol is None or o.symbol == symbol]

    # ------------------------------------------------------------------ trades
    def fills(self, account: str, symbol: str | None = None, since: int | None = None,
              limit: int | None = None, order_id: int | None = None,
              from_id: int | None = None) -> list[Fill]:
        """This account's fills, oldest first, filtered; ``limit`` keeps the oldest matching."""
        with self._lock:
            self.account(account)
            out = []
            source = self._fills[account] if order_id is None else \
                self._fills_by_order.get(order_id, [])
            for f in source:
                if f.account != account:
                    continue
                if symbol is not None and f.symbol != symbol:
                    continue
                if since is not None and f.time < since:
                    continue
                if order_id is not None and f.order_id != order_id:
                    continue
                if from_id is not None and f.trade_id < from_id:
                    continue
                out.append(f)
                if limit is not None and len(out) >= limit:
                    break
            return out

    # ------------------------------------------------------------------ balances
    def _wallet(self, account: str, currency: str) -> _Wallet:
        wallets = self._wallets[account]
        wallet = wallets.get(currency)
        if wallet is None:
            wallet = wallets[currency] = _Wallet()
        return wallet

    def balance(self, account: str, currency: str) -> Balance:
        with self._lock:
            self.account(account)
            w = self._wallets[account].get(currency)
            return Balance(w.free, w.locked) if w else Balance(_ZERO, _ZERO)

    def balances(self, account: str) -> dict[str, Balance]:
        with self._lock:
            self.account(account)
            return {c: Balance(w.free, w.locked) for c, w in self._wallets[account].items()}

    def all_balances(self) -> dict[str, dict[str, Balance]]:
        with self._lock:
            return {a: self.balances(a) for a in self._accounts}

    def totals(self) -> dict[str, Decimal]:
        """Sum of free + locked per currency over every account (constant by construction)."""
        with self._lock:
            return self._totals_unlocked()

    def _totals_unlocked(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for wallets in self._wallets.values():
            for currency, w in wallets.items():
                totals[currency] = totals.get(currency, _ZERO) + w.free + w.locked
        return {c: v for c, v in totals.items() if v}

    def drift_balance(self, account: str, currency: str, amount: Decimal, now: int = 0) -> Decimal:
        """Move up to ``amount`` of free ``currency`` to the ``withdrawn`` account, as an
        unrecorded withdrawal would; returns the amount moved (never drives free below 0)."""
        with self._lock:
            self.account(account)
            if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
                raise InvalidOrderRequest("drift amount must be a finite Decimal >= 0")
            wallet = self._wallet(account, currency)
            moved = min(amount, wallet.free)
            wallet.free -= moved
            self._wallet(WITHDRAWN, currency).free += moved
            return moved

    # ------------------------------------------------------------------ market data
    def ticker(self, symbol: str, now: int = 0) -> Ticker:
        with self._lock:
            st = self._market_state(symbol)
            bid, ask = st.book.bids.best(), st.book.asks.best()
            bid_qty = sum((o.remaining for o in st.book.bids.levels[bid]), _ZERO) if bid else _ZERO
            ask_qty = sum((o.remaining for o in st.book.asks.levels[ask]), _ZERO) if ask else _ZERO
            return Ticker(
                symbol=symbol, time=now, last=st.last, bid=bid, bid_qty=bid_qty, ask=ask,
                ask_qty=ask_qty, open=st.spec.initial_price, high=st.high, low=st.low,
                volume=st.volume, quote_volume=st.quote_volume, trade_count=st.trade_count,
            )

    def order_book(self, symbol: str, depth: int = 100, now: int = 0) -> BookView:
        with self._lock:
            st = self._market_state(symbol)

            def levels(side: _BookSide) -> tuple[tuple[Decimal, Decimal], ...]:
                out: list[tuple[Decimal, Decimal]] = []
                for p in side.iter_best():
                    if len(out) >= depth:
                        break
                    out.append((p, sum((o.remaining for o in side.levels[p]), _ZERO)))
                return tuple(out)

            return BookView(symbol, now, st.book.sequence, levels(st.book.bids),
                            levels(st.book.asks))

    def recent_trades(self, symbol: str, limit: int = 500, since: int | None = None,
                      from_id: int | None = None) -> list[Trade]:
        """The market's public trades, oldest first: the ``limit`` newest, or with ``since`` /
        ``from_id`` the ``limit`` oldest from there."""
        with self._lock:
            tape = list(self._market_state(symbol).tape)
            if since is None and from_id is None:
                return tape[-limit:] if limit > 0 else []
            out = [t for t in tape if (since is None or t.time >= since)
                   and (from_id is None or t.trade_id >= from_id)]
            return out[:limit]

    # ------------------------------------------------------------------ time
    def advance(self, now: int) -> None:
        """Step the reference random walk and re-quote the house once per elapsed interval."""
        with self._lock:
            interval = self.config.requote_interval_ms
            for state in self._markets.values():
                if now < state.next_requote:
                    continue
                steps = min(_MAX_WALK_STEPS, (now - state.next_requote) // interval + 1)
                spec = state.spec
                for _ in range(steps):
                    move = Decimal(repr(round(self._rng.gauss(0.0, 1.0), 6))) * spec.volatility
                    candidate = (state.reference * (1 + move)).quantize(
                        spec.tick_size, rounding=ROUND_FLOOR)
                    if candidate > spec.tick_size * 10:
                        state.reference = candidate
                self._requote(state, now)
                state.next_requote = now + interval

    def _requote(self, state: _MarketState, now: int) -> None:
        """Replace the house ladder around the reference price; a ladder level that crosses a
        resting user order trades with it, so user limit orders fill as the price walks."""
        spec = state.spec
        book = state.book
        ladder = self._house_orders[spec.symbol]
        for order in ladder:
            if order.status.is_open:
                (book.bids if order.side is Side.BUY else book.asks).remove(order)
                self._close(order, OrderStatus.CANCELED, now)
            if order.filled == 0:
                self._orders.pop(order.id, None)
        if ladder:
            # The ladder's ids are this symbol's entries in the house history; keep the
            # traded ones only, so the history does not grow with every re-quote.
            gone = {o.id for o in ladder if o.filled == 0}
            self._account_orders[HOUSE] = [i for i in self._account_orders[HOUSE]
                                           if i not in gone]
        self._house_orders[spec.symbol] = []
        qty = (spec.house_level_qty // spec.step_size) * spec.step_size
        for i in range(spec.house_levels):
            offset = spec.house_spread * (i + 1)
            bid = (state.reference * (1 - offset)).quantize(spec.tick_size, rounding=ROUND_FLOOR)
            ask = (state.reference * (1 + offset)).quantize(spec.tick_size, rounding=ROUND_CEILING)
            if bid <= 0:
                continue
            for side, price in ((Side.BUY, bid), (Side.SELL, ask)):
                self._place_house(state, side, price, qty, now)
        book.sequence += 1

    def _place_house(self, state: _MarketState, side: Side, price: Decimal, qty: Decimal,
                     now: int) -> None:
        spec = state.spec
        currency, need = (spec.quote, price * qty) if side is Side.BUY else (spec.base, qty)
        wallet = self._wallet(HOUSE, currency)
        if need > wallet.free:
            return
        order = Order(
            id=self._next_order_id, account=HOUSE, symbol=spec.symbol, side=side,
            type=OrderType.LIMIT, time_in_force=TimeInForce.GTC, price=price, amount=qty,
            client_order_id=None, created_at=now, updated_at=now,
        )
        self._next_order_id += 1
        self._orders[order.id] = order
        wallet.free -= need
        wallet.locked += need
        order.locked = need
        self._house_orders[spec.symbol].append(order)
        self._account_orders[HOUSE].append(order.id)
        self._match(state, order, now)
        if order.remaining > 0:
            (state.book.bids if side is Side.BUY else state.book.asks).add(order)
            self._open[HOUSE][order.id] = order

    # ------------------------------------------------------------------ invariants
    def audit(self) -> list[str]:
        """Invariant violations: conservation, negative balances, locked vs open orders."""
        with self._lock:
            problems = []
            totals = self._totals_unlocked()
            if totals != self._initial_totals:
                problems.append(f"conservation broken: {self._initial_totals} -> {totals}")
            expected_locked: dict[tuple[str, str], Decimal] = {}
            for order in self._orders.values():
                if order.status.is_open:
                    spec = self._markets[order.symbol].spec
                    key = (order.account, spec.quote if order.side is Side.BUY else spec.base)
                    expected_locked[key] = expected_locked.get(key, _ZERO) + order.locked
                elif order.locked:
                    problems.append(f"closed order {order.id} still locks {order.locked}")
            open_ids = {o.id for o in self._orders.values() if o.status.is_open}
            indexed = {oid for orders in self._open.values() for oid in orders}
            if open_ids != indexed:
                problems.append(f"open-order index out of date: {open_ids ^ indexed}")
            for account, wallets in self._wallets.items():
                for currency, w in wallets.items():
                    if w.free < 0 or w.locked < 0:
                        problems.append(f"{account} {currency} negative: {w.free}/{w.locked}")
                    if w.locked != expected_locked.get((account, currency), _ZERO):
                        problems.append(
                            f"{account} {currency} locked {w.locked} != open orders "
                            f"{expected_locked.get((account, currency), _ZERO)}")
            return problems
