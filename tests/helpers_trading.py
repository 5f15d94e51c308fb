"""Start the venue and trading subtrees against a running local venue, for trading tests.

``trading_config(url, tmp_path, **trading)`` is a node Config with fast settings (short grace
window and in-flight backoff); ``start_trading(config)`` starts ``venue:sim`` then ``trading``
under a root and returns the Tree; ``place``/``get``/``cancel`` ask the coordinator;
``ground_truth`` reads the venue's ``/_sim`` answers.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from actors import venue_spec
from actors.ledger import GetAccountBalances, sums_by_currency
from actors.trading import LEDGER, TRANSACTIONS, TradingSettings, trading_spec
from actors.transactions import GetStatistics
from ironclad.config import Config, Credentials, Secret, TradingConfig
from ironclad.node import supervisor_spec
from messages.ledger import Balances, GetBalances
from messages.orders import CancelOrder, GetOrder, OrderPlaced, OrderView, PlaceOrder
from supervisors import Strategy, Tree, names, start_tree
from tests.helpers_gateway import DEMO, gateway_config, wait_until
from tests.helpers_venue import admin

FAST_TRADING = {"absence_grace": 1.0, "call_timeout": 3.0, "inflight_tick": 0.05,
                "inflight_initial": 0.1, "inflight_factor": 1.5, "inflight_max": 0.5,
                "inflight_cap": 20, "reconcile_interval": 3600.0, "reconcile_retry": 0.3}


def trading_config(url: str | None, tmp_path: Path, *, intensity: int = 50,
                   **trading: Any) -> Config:
    """Gateway test settings plus a fast [trading] section (``trading`` overrides it)."""
    config = gateway_config(url, tmp_path, breaker={"window_size": 50.0, "minimum_calls": 50},
                            intensity=intensity)
    return attrs.evolve(config, trading=TradingConfig(**{**FAST_TRADING, **trading}))


def start_trading(config: Config) -> Tree:
    """The venue subtree and the trading subtree under a root ``node``; ``tree.stop()`` it."""
    config = attrs.evolve(config, credentials=Credentials(
        **{key: Secret(value) for key, value in DEMO.items()}))
    supervisor = functools.partial(supervisor_spec, config)
    children = [venue_spec(config, supervisor),
                trading_spec(TradingSettings.from_config(config), supervisor)]
    return start_tree(supervisor_spec(config, "node", Strategy.ONE_FOR_ONE, children))


def ask(name: str, message: Any, timeout: float = 10.0) -> Any:
    return names.ask(name, message, timeout=timeout)


def wait_accepting(timeout: float = 15.0) -> None:
    wait_until(lambda: ask(TRANSACTIONS, GetStatistics()).accepting, timeout=timeout)


def place(client_id: str, side: str = "buy", amount: str = "0.001", price: str | None = "30000",
          type: str = "limit", symbol: str = "BTC/USDT") -> Any:
    return ask(TRANSACTIONS, PlaceOrder(
        client_id=client_id, symbol=symbol, side=side, type=type, amount=Decimal(amount),
        price=None if price is None else Decimal(price)))


def placed(reply: Any) -> OrderView:
    assert isinstance(reply, OrderPlaced), reply
    return reply.order


def get(order_id: str) -> OrderView:
    view = ask(TRANSACTIONS, GetOrder(id=order_id))
    assert isinstance(view, OrderView), view
    return view


def cancel(order_id: str) -> Any:
    return ask(TRANSACTIONS, CancelOrder(id=order_id))


def ground_truth(url: str, what: str, account: str = "demo-key") -> Any:
    return admin(url, f"/_sim/{what}?account={account}")


def ledger_balances() -> Balances:
    return ask(LEDGER, GetBalances())


def ledger_sums() -> dict[str, Decimal]:
    return sums_by_currency(ask(LEDGER, GetAccountBalances()))


__all__ = ["FAST_TRADING", "ask", "cancel", "get", "ground_truth", "ledger_balances",
           "ledger_sums", "place", "placed", "start_trading", "trading_config", "wait_accepting",
           "wait_until"]
