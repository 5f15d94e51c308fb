"""Pure pieces of the trading shells: settings from config, transaction ids, balance parsing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from actors.ledger import sums_by_currency
from actors.reconciler import parse_balances
from actors.trading import TradingSettings
from actors.transactions import new_transaction_id
from ironclad.config import Config, ConfigError, TradingConfig, VenueConfig, load_config
from trading.client_ids import client_order_id, parse_client_order_id, rule_for
from trading.reconcile import ExchangeBalance


def test_settings_follow_the_trading_section(tmp_path: Path) -> None:
    config = Config(trading=TradingConfig(absence_grace=2.5, tolerance_absolute="0.01",
                                          freeze_on_discrepancy=False, inflight_cap=3))
    settings = TradingSettings.from_config(config)
    assert settings.protocol.absence_grace == timedelta(seconds=2.5)
    assert settings.protocol.lookup_sees_closed_orders is True
    assert settings.reconcile_policy.default.absolute == Decimal("0.01")
    assert settings.reconcile_policy.default.relative is None
    assert settings.reconcile_policy.default.freeze_on_discrepancy is False
    assert settings.inflight_cap == 3
    assert settings.gatekeeper == "venue:sim/gatekeeper"
    assert settings.journal_dir == Path("data") / "journal"


def test_nobitex_lookups_need_the_history() -> None:
    settings = TradingSettings.from_config(Config(venue=VenueConfig(exchange="nobitex")))
    assert settings.protocol.lookup_sees_closed_orders is False
    assert settings.id_rule == rule_for("nobitex")


@pytest.mark.parametrize("exchange", ["binance", "nobitex"])
def test_transaction_ids_are_embedded_verbatim_in_client_order_ids(exchange: str) -> None:
    rule = rule_for(exchange)
    ids = {new_transaction_id() for _ in range(200)}
    assert len(ids) == 200
    for tx in ids:
        coid = client_order_id(rule, "ironclad", tx)
        parts = parse_client_order_id(coid)
        assert parts is not None and parts.mode == "v" and parts.transaction_id == tx


def test_balances_are_parsed_exactly_from_ccxt_strings() -> None:
    parsed = parse_balances({"free": {"BTC": "0.10000001", "USDT": "5"},
                             "used": {"BTC": "0.2"}, "total": {}})
    assert parsed == {"BTC": ExchangeBalance(Decimal("0.10000001"), Decimal("0.2")),
                      "USDT": ExchangeBalance(Decimal("5"), Decimal("0"))}


def test_sums_by_currency_add_every_account() -> None:
    balances = {("assets:sim:BTC:available", "BTC"): Decimal("1"),
                ("equity:opening:sim:BTC", "BTC"): Decimal("-1"),
                ("trading:sim:BTC/USDT", "USDT"): Decimal("3")}
    assert sums_by_currency(balances) == {"BTC": Decimal(0), "USDT": Decimal(3)}


@pytest.mark.parametrize(("text", "key"), [
    ('[trading]\ntolerance_absolute = "abc"', "trading.tolerance_absolute"),
    ('[trading]\ntolerance_relative = "-1"', "trading.tolerance_relative"),
    ("[trading]\nabsence_grace = 0", "trading.absence_grace"),
    ("[trading]\ninflight_initial = 5.0\ninflight_max = 1.0", "trading.inflight_max"),
    ("[trading]\nfreeze = true", "trading.freeze"),
])
def test_bad_trading_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "node.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.key == key
