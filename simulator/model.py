"""Core value types of the venue: specs (data, validated) and the records the engine keeps.

Specs (``MarketSpec``, ``AccountSpec``, ``VenueConfig``) are frozen attrs values; ``Order`` is
the engine's mutable record of one order (read it, never mutate it outside the engine);
``Fill`` is one side of a trade as one account sees it; ``Ticker`` and ``BookView`` are
snapshots. All money and quantities are ``Decimal``; times are integer milliseconds.
"""

from __future__ import annotations

import enum
from decimal import Decimal, InvalidOperation

import attrs

from simulator.errors import ConfigError

HOUSE = "house"
"""Account id of the house market maker, which quotes around the reference price."""
FEES = "fees"
"""Account id that receives every trading fee."""
WITHDRAWN = "withdrawn"
"""Account id that receives funds a ``balance_drift`` fault removes (an unrecorded withdrawal)."""


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(enum.StrEnum):
    """Engine order states; dialects rename them (Binance uses the upper-case names)."""

    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


def show(value: object, limit: int = 60) -> str:
    """``repr`` of a rejected value, cut short so an error message stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_decimal(value: object, field: str) -> Decimal:
    """A finite ``Decimal`` from a config/JSON value written as a string or an integer (a float
    is refused: it is not exact); raises ``ConfigError`` naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"write decimals as strings or integers, got {show(value)}", field)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{show(value)} is not a decimal", field) from None
    if not number.is_finite():
        raise ConfigError(f"must be a finite decimal, got {show(value)}", field)
    return number


def _is_finite_decimal(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


def _positive(instance: object, attribute: attrs.Attribute, value: Decimal) -> None:
    if not _is_finite_decimal(value) or not value > 0:
        raise ConfigError(f"must be a finite positive Decimal, got {show(value)}", attribute.name)


def _non_negative(instance: object, attribute: attrs.Attribute, value: Decimal) -> None:
    if not _is_finite_decimal(value) or value < 0:
        raise ConfigError(f"must be a finite Decimal >= 0, got {show(value)}", attribute.name)


@attrs.frozen(slots=True)
class MarketSpec:
    """One spot market, keyed by unified symbol (``BTC/USDT``).

    ``initial_price`` seeds the reference random walk; the house quotes ``house_levels``
    levels per side, ``house_spread`` (fraction) apart, each ``house_level_qty`` large.
    """

    symbol: str
    tick_size: Decimal = attrs.field(validator=_positive)
    step_size: Decimal = attrs.field(validator=_positive)
    min_qty: Decimal = attrs.field(validator=_positive)
    min_notional: Decimal = attrs.field(validator=_non_negative)
    initial_price: Decimal = attrs.field(validator=_positive)
    house_level_qty: Decimal = attrs.field(validator=_positive)
    house_levels: int = 10
    house_spread: Decimal = attrs.field(default=Decimal("0.0005"), validator=_non_negative)
    volatility: Decimal = attrs.field(default=Decimal("0.001"), validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        parts = self.symbol.split("/") if isinstance(self.symbol, str) else []
        if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
            raise ConfigError(f"market symbol {show(self.symbol)} is not BASE/QUOTE", "symbol")
        if (not isinstance(self.house_levels, int) or isinstance(self.house_levels, bool)
                or self.house_levels < 1):
            raise ConfigError(f"market {self.symbol}: must be an integer >= 1", "house_levels")

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]

    @property
    def binance_id(self) -> str:
        """Exchange id in the Binance dialect: ``BTCUSDT``."""
        return self.base + self.quote


@attrs.frozen(slots=True)
class AccountSpec:
    """A trading account. ``id`` is what the admin API shows; it defaults to the API key.

    ``api_key``/``secret`` serve the Binance dialect, ``nobitex_token`` the Nobitex dialect;
    an account may have both. Fees are fractions of the received amount.
    """

    id: str
    api_key: str | None = None
    secret: str | None = None
    nobitex_token: str | None = None
    balances: dict[str, Decimal] = attrs.field(factory=dict)
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ConfigError(f"account id must be a non-empty string, got {show(self.id)}",
                              "id")
        for name in ("api_key", "secret", "nobitex_token"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"account {self.id}: must be a non-empty string", name)
        if not isinstance(self.balances, dict):
            raise ConfigError(f"account {self.id}: must be a table", "balances")
        if (self.api_key is None) != (self.secret is None):
            raise ConfigError(f"account {self.id}: api_key and secret go together")
        for currency, amount in self.balances.items():
            if not _is_finite_decimal(amount) or amount < 0:
                raise ConfigError(f"account {self.id}: must be a finite Decimal >= 0, got "
                                  f"{show(amount)}", f"balances.{currency}")
        for name in ("maker_fee", "taker_fee"):
            fee = getattr(self, name)
            if not _is_finite_decimal(fee) or not Decimal(0) <= fee < Decimal(1):
                raise ConfigError(f"account {self.id}: fees must be Decimals in [0, 1)", name)


def default_markets() -> tuple[MarketSpec, ...]:
    """BTC/USDT, ETH/USDT, ETH/BTC (Binance) and BTC/IRT, USDT/IRT (Nobitex's rial markets).

    The engine's ``IRT`` is the toman and the Nobitex dialect shows rials (x 10), so the rial
    markets use Nobitex's published rules divided by ten (``nobitex/docs-api``: /v2/options
    ``pricePrecisions`` BTCIRT "10" rials, ``minOrders`` rls "3000000" rials, and the
    SmallOrder error's "3 million rials"): tick 1 toman, minimum order 300 000 tomans.
    """
    d = Decimal
    return (
        MarketSpec("BTC/USDT", d("0.01"), d("0.00001"), d("0.00001"), d("5"), d("60000"), d("0.5")),
        MarketSpec("ETH/USDT", d("0.01"), d("0.0001"), d("0.0001"), d("5"), d("3000"), d("5")),
        MarketSpec("ETH/BTC", d("0.00001"), d("0.0001"), d("0.0001"), d("0.0001"), d("0.05"),
                   d("5")),
        MarketSpec("BTC/IRT", d("1"), d("0.000001"), d("0.000001"), d("300000"),
                   d("6000000000"), d("0.5")),
        MarketSpec("USDT/IRT", d("1"), d("0.01"), d("0.01"), d("300000"), d("100000"),
                   d("5000")),
    )


def default_accounts() -> tuple[AccountSpec, ...]:
    """The demo account (``demo-key``/``demo-secret``, Nobitex token ``demo-token``)."""
    d = Decimal
    return (
        AccountSpec(
            id="demo-key", api_key="demo-key", secret="demo-secret", nobitex_token="demo-token",
            balances={"USDT": d("1000000"), "BTC": d("100"), "ETH": d("1000"),
                      "IRT": d("100000000000")},
        ),
    )


@attrs.frozen(slots=True)
class VenueConfig:
    """Everything that defines the venue's start state; ``reset`` returns to it."""

    markets: tuple[MarketSpec, ...] = attrs.field(factory=default_markets, converter=tuple)
    accounts: tuple[AccountSpec, ...] = attrs.field(factory=default_accounts, converter=tuple)
    seed: int = 1
    requote_interval_ms: int = 1000
    house_balance_multiple: int = 1000

    def __attrs_post_init__(self) -> None:
        symbols = [m.symbol for m in self.markets]
        if len(set(symbols)) != len(symbols):
            raise ConfigError("duplicate market symbol in config")
        ids = [a.id for a in self.accounts]
        if len(set(ids)) != len(ids):
            raise ConfigError("duplicate account id in config")
        reserved = {HOUSE, FEES, WITHDRAWN} & set(ids)
        if reserved:
            raise ConfigError(f"account ids {sorted(reserved)} are reserved")
        keys = [a.api_key for a in self.accounts if a.api_key] + [
            a.nobitex_token for a in self.accounts if a.nobitex_token]
        if len(set(keys)) != len(keys):
            raise ConfigError("duplicate api key or token in config")
        for name in ("seed", "requote_interval_ms", "house_balance_multiple"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"must be an integer, got {show(value)}", name)
        if self.requote_interval_ms < 1:
            raise ConfigError("must be >= 1", "requote_interval_ms")
        if self.house_balance_multiple < 1:
            raise ConfigError("must be >= 1", "house_balance_multiple")


@attrs.define(slots=True, eq=False)
class Order:
    """The engine's record of one accepted order. ``cost`` is the cumulative quote amount filled."""

    id: int
    account: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    price: Decimal | None
    amount: Decimal
    client_order_id: str | None
    created_at: int
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    status: OrderStatus = OrderStatus.NEW
    updated_at: int = 0
    locked: Decimal = Decimal(0)
    """Funds still locked for this order (quote for buys, base for sells)."""

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled


@attrs.frozen(slots=True)
class Fill:
    """One account's side of a trade. ``fee`` is in ``fee_currency`` (the asset received)."""

    trade_id: int
    order_id: int
    account: str
    symbol: str
    side: Side
    price: Decimal
    amount: Decimal
    quote_amount: Decimal
    fee: Decimal
    fee_currency: str
    is_maker: bool
    time: int


@attrs.frozen(slots=True)
class Trade:
    """A public trade (the market's tape). ``taker_side`` is the aggressor's side."""

    trade_id: int
    symbol: str
    price: Decimal
    amount: Decimal
    quote_amount: Decimal
    taker_side: Side
    time: int


@attrs.frozen(slots=True)
class Balance:
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@attrs.frozen(slots=True)
class Ticker:
    """Snapshot of a market. ``bid``/``ask`` are the best resting prices (None on an empty side)."""

    symbol: str
    time: int
    last: Decimal
    bid: Decimal | None
    bid_qty: Decimal
    ask: Decimal | None
    ask_qty: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    quote_volume: Decimal
    trade_count: int


@attrs.frozen(slots=True)
class BookView:
    """Aggregated order book: ``bids`` descending, ``asks`` ascending, as (price, qty) pairs."""

    symbol: str
    time: int
    sequence: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
