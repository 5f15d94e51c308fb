"""Venue configuration from TOML: accounts, balances, markets and a fault profile.

Format (every section optional; decimals as strings or integers, never floats)::

    seed = 1
    requote_interval_ms = 1000
    keep_demo_account = true          # keep demo-key/demo-secret/demo-token beside [[accounts]]

    [[markets]]                       # replaces the default markets when present
    symbol = "BTC/USDT"
    tick_size = "0.01"
    step_size = "0.00001"
    min_qty = "0.00001"
    min_notional = "5"
    initial_price = "60000"
    house_level_qty = "0.5"           # optional: house_levels, house_spread, volatility

    [[accounts]]
    id = "alice"                      # optional, defaults to api_key (or nobitex_token)
    api_key = "alice-key"
    secret = "alice-secret"
    nobitex_token = "alice-token"
    balances = { USDT = "100000", BTC = "2" }

    [faults]
    seed = 7
    rules = [{ endpoint = "create_order", fault = "lose_response", probability = 0.1 }]
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import attrs

from simulator.errors import ConfigError
from simulator.faults import FaultPlan
from simulator.model import (
    AccountSpec,
    MarketSpec,
    VenueConfig,
    default_accounts,
    parse_decimal,
    show,
)

__all__ = ["config_from_dict", "load_config"]

_MARKET_DECIMALS = {"tick_size", "step_size", "min_qty", "min_notional", "initial_price",
                    "house_level_qty", "house_spread", "volatility"}
_ACCOUNT_DECIMALS = {"maker_fee", "taker_fee"}


def _build(cls: type, where: str, data: Any, decimals: set[str]) -> Any:
    if not isinstance(data, dict):
        raise ConfigError("must be a table", where)
    known = {f.name for f in attrs.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}", where)
    values = {k: (parse_decimal(v, f"{where}.{k}") if k in decimals else v)
              for k, v in data.items()}
    try:
        return cls(**values)
    except ConfigError as exc:
        raise exc.within(where) from None
    except TypeError as exc:
        raise ConfigError(str(exc), where) from None


def _table_list(data: dict[str, Any], key: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise ConfigError(f"must be a list of tables ([[{key}]]), got {show(value)}", key)
    return value


def config_from_dict(data: dict[str, Any], seed: int | None = None
                     ) -> tuple[VenueConfig, FaultPlan]:
    """Parse a configuration mapping (the TOML document); ``seed`` overrides ``data['seed']``.
    A bad value raises ``ConfigError`` whose ``field`` is its path (``markets[0].tick_size``)."""
    known = {"seed", "requote_interval_ms", "keep_demo_account", "markets", "accounts",
             "faults", "house_balance_multiple"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"venue config: unknown keys {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    if "markets" in data:
        kwargs["markets"] = tuple(_build(MarketSpec, f"markets[{i}]", m, _MARKET_DECIMALS)
                                  for i, m in enumerate(_table_list(data, "markets")))
    keep_demo = data.get("keep_demo_account", True)
    if not isinstance(keep_demo, bool):
        raise ConfigError(f"must be true or false, got {show(keep_demo)}", "keep_demo_account")
    if "accounts" in data:
        accounts = []
        for i, raw in enumerate(_table_list(data, "accounts")):
            where = f"accounts[{i}]"
            if not isinstance(raw, dict):
                raise ConfigError("must be a table", where)
            raw = dict(raw)
            raw.setdefault("id", raw.get("api_key") or raw.get("nobitex_token") or "")
            balances = raw.pop("balances", {})
            if not isinstance(balances, dict):
                raise ConfigError("must be a table", f"{where}.balances")
            account = _build(AccountSpec, where, raw, _ACCOUNT_DECIMALS)
            accounts.append(attrs.evolve(account, balances={
                c: parse_decimal(v, f"{where}.balances.{c}") for c, v in balances.items()}))
        if keep_demo:
            accounts = [*default_accounts(), *accounts]
        kwargs["accounts"] = tuple(accounts)
    for key in ("requote_interval_ms", "house_balance_multiple"):
        if key in data:
            kwargs[key] = data[key]
    kwargs["seed"] = seed if seed is not None else data.get("seed", 1)
    try:
        config = VenueConfig(**kwargs)
    except ConfigError as exc:
        raise exc if exc.field else ConfigError(f"venue config: {exc.problem}") from None
    try:
        plan = FaultPlan.from_json(data["faults"]) if "faults" in data else FaultPlan()
    except ConfigError as exc:
        raise exc.within("faults") from None
    return config, plan


def load_config(path: str | Path, seed: int | None = None) -> tuple[VenueConfig, FaultPlan]:
    """Read a TOML venue configuration; raises ``ConfigError`` naming the bad entry."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read venue config {path}: {exc}") from None
    return config_from_dict(data, seed)
