"""The rial/toman factor, both sides of the wire: adapter and venue dialect agree exactly."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges.nobitex import Nobitex
from simulator import nobitex as dialect

amounts = st.decimals(min_value=Decimal(0), max_value=Decimal("1e15"), places=8,
                      allow_nan=False, allow_infinity=False)
ADAPTER = Nobitex({"token": "t"})


@settings(max_examples=200, deadline=None)
@given(amounts)
def test_round_trip_is_exact(tomans: Decimal) -> None:
    wire = ADAPTER.to_wire(str(tomans), "rls")
    assert Decimal(wire) == tomans * 10
    assert Decimal(ADAPTER.from_wire(wire, "rls")) == tomans


@settings(max_examples=200, deadline=None)
@given(amounts)
def test_adapter_reads_what_the_dialect_writes(tomans: Decimal) -> None:
    wire_text = dialect._text(dialect.to_wire(tomans, "IRT"))
    assert "E" not in wire_text
    assert Decimal(ADAPTER.from_wire(wire_text, "rls")) == tomans
    assert dialect.from_wire(Decimal(ADAPTER.to_wire(str(tomans), "rls")), "IRT") == tomans


@given(amounts)
def test_other_currencies_pass_unchanged(value: Decimal) -> None:
    assert ADAPTER.to_wire(str(value), "usdt") == str(value)
    assert ADAPTER.from_wire(str(value), "btc") == str(value)
    assert dialect.to_wire(value, "USDT") == value


def test_currency_ids() -> None:
    assert dialect.currency_id("IRT") == "rls"
    assert dialect.currency_code("rls") == "IRT"
    assert dialect.currency_id("BTC") == "btc"
    assert ADAPTER.split_market_id("BTCIRT") == ("btc", "rls")
    assert ADAPTER.split_market_id("USDTIRT") == ("usdt", "rls")
    assert ADAPTER.split_market_id("BTCUSDT") == ("btc", "usdt")
    assert ADAPTER.split_market_id("IRT") is None
    assert ADAPTER.market_id_of_pair("BTC", "RLS") == "BTCIRT"
