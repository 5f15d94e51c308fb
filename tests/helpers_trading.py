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

from actors import Worker, venue_spec
from actors.ledger import GetAccountBalances, sums_by_currency
from actors.trading import LEDGER, TRANSACTIONS, TradingSettings, trading_spec
from actors.transactions import GetStatistics
from ironclad.config import Config, Credentials, Secret, TradingConfig
from ironclad.node import supervisor_spec
from messages.ledger import Balances, GetBalances
from messages.orders import CancelOrder, GetOrder, OrderPlaced, OrderView, PlaceOrder
from supervisors import Strategy, Tree, names, start_tree
from tests.helpers_gateway import DEMO, gateway_config
from tests.helpers_venue import admin
from tests.waiting import wait_until

FAST_TRADING = {"absence_grace": 1.0, "call_timeout": 3.0, "inflight_tick": 0.05,
                "inflight_initial": 0.1, "inflight_factor": 1.5, "inflight_max": 0.5,
                "inflight_cap": 20, "reconcile_interval": 3600.0, "reconcile_retry": 0.3}


def trading_config(url: str | None, tmp_path: Path, *, intensity: int = 50,
                   exchange: str = "binance", breaker: dict[str, Any] | None = None,
                   **trading: Any) -> Config:
    """Gateway test settings plus a fast [trading] section (``trading`` overrides it); the
    breakers hardly ever open unless ``breaker`` says otherwise."""
    config = gateway_config(url, tmp_path, intensity=intensity, exchange=exchange,
                            breaker=breaker or {"window_size": 50.0, "minimum_calls": 50})
    return attrs.evolve(config, trading=TradingConfig(**{**FAST_TRADING, **trading}))


def start_trading(config: Config, worker_class: type[Worker] = Worker) -> Tree:
    """The venue subtree and the trading subtree under a root ``node``; ``tree.stop()`` it.
    ``worker_class`` lets crash tests substitute a Worker subclass."""
    config = attrs.evolve(config, credentials=Credentials(
        **{key: Secret(value) for key, value in DEMO.items()}))
    supervisor = functools.partial(supervisor_spec, config)
    children = [venue_spec(config, supervisor, worker_class),
                trading_spec(TradingSettings.from_config(config), supervisor)]
    return start_tree(supervisor_spec(config, "node", Strategy.ONE_FOR_ONE, children))


class TradingNode:
    """Starts and restarts the venue + trading subtrees on one data directory."""

    def __init__(self, url: str, data_dir: Path, **trading: Any) -> None:
        self.config = trading_config(url, data_dir, **trading)
        self.data_dir = data_dir
        self.tree: Tree | None = None

    def start(self, *, accepting: bool = True) -> None:
        self.tree = start_trading(self.config)
        if accepting:
            wait_accepting()

    def stop(self) -> None:
        if self.tree is not None:
            assert self.tree.stop(timeout=20)
            self.tree = None


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


__all__ = ["FAST_TRADING", "ask", "cancel", "get", "ground_truth", "journal_transactions",
           "ledger_balances", "ledger_sums", "place", "placed", "start_trading", "trading_config",
           "wait_accepting", "wait_until"]


def journal_transactions(data_dir: Path, count: int, *, still_open: int = 0,
                         node_id: str = "ironclad", venue: str = "sim") -> None:
    """Write ``count`` journaled transactions as the coordinator records them (prepared,
    submitting, filled, settled: 4 records each), the last ``still_open`` left OPEN, into
    ``<data_dir>/journal`` — the start-up recovery benchmark's input. Written in one SQLite
    transaction for speed (what is measured is the recovery, not the appends)."""
    from datetime import UTC, datetime

    from actors.transactions import journal_order, new_transaction_id
    from trading import protocol as core
    from trading.client_ids import client_order_id, rule_for
    from trading.journal import Journal

    config = core.ProtocolConfig()
    market = core.MarketRules(symbol="BTC/USDT", base="BTC", quote="USDT")
    (data_dir / "journal").mkdir(parents=True, exist_ok=True)
    with Journal.open(data_dir / "journal") as journal, journal._cache.transact():
        for index in range(count):
            now = datetime.now(UTC)
            tx = new_transaction_id()
            intent = core.OrderIntent.parse(client_id=f"bench-{index}", symbol="BTC/USDT",
                                            side="buy", type="limit", amount="0.001",
                                            price="60000")
            step = core.prepare(transaction_id=tx, venue=venue, intent=intent, market=market,
                                client_order_id=client_order_id(rule_for("binance"), node_id, tx),
                                now=now)
            steps = [core.apply(step.order, core.FundsReserved(), now, config)]
            steps.append(core.apply(steps[-1].order, core.Submit(), now, config))
            filled = index < count - still_open
            snapshot = core.VenueSnapshot(
                status=core.VenueStatus.CLOSED if filled else core.VenueStatus.OPEN,
                filled=Decimal("0.001") if filled else Decimal(0), observed_at=now,
                venue_order_id=str(index + 1),
                trades=(core.Trade(str(index + 1), Decimal("0.001"), Decimal("60000")),)
                if filled else ())
            steps.append(core.apply(steps[-1].order, core.SubmitAcked(1, snapshot), now, config))
            if filled:
                steps.append(core.apply(steps[-1].order, core.Settled(), now, config))
            for done in steps:
                for effect in done.effects:
                    if isinstance(effect, core.Journal):
                        journal_order(journal, effect)
