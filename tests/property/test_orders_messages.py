"""The orders and ledger conversations survive JSON unchanged; bad HTTP bodies are typed errors."""

from __future__ import annotations

import typing
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import messages.ledger
import messages.orders
from messages import from_json, to_json
from messages.ledger import LedgerReply
from messages.orders import (
    CancelOrder,
    GetOrder,
    InvalidOrder,
    OrderError,
    OrderReply,
    OrderState,
    PlaceOrder,
)
from tests.property.test_messages_roundtrip import BY_FIELD_NAME, strategy_for
from trading import protocol

MODULES = (messages.orders, messages.ledger)
CLASSES = sorted(
    (obj for module in MODULES for obj in vars(module).values()
     if attrs.has(obj) and obj.__module__ == module.__name__),
    key=lambda cls: cls.__qualname__,
)
LIMITS = {"limit": st.integers(min_value=1, max_value=10_000)}


def message(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    special = {**BY_FIELD_NAME, **LIMITS}
    fields = {f.name: special[f.name] if f.name in special else strategy_for(hints[f.name])
              for f in attrs.fields(cls)}
    if cls in (CancelOrder, GetOrder):  # exactly one of id / client_id
        key = st.text(min_size=1, max_size=8).filter(str.strip)
        return st.one_of(key.map(lambda k: cls(id=k)), key.map(lambda k: cls(client_id=k)))
    if "limit" in fields and cls is messages.ledger.ListLedgerEntries:
        fields["limit"] = st.integers(min_value=1, max_value=100_000)
    return st.builds(cls, **fields)


def test_states_match_the_protocol() -> None:
    assert {s.value for s in OrderState} == {s.value for s in protocol.OrderState}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_round_trip_is_identity(cls: type, data: st.DataObject) -> None:
    value = data.draw(message(cls))
    text = to_json(value)
    assert from_json(cls, text) == value
    assert to_json(from_json(cls, text)) == text


@given(reply=st.one_of([message(c) for c in typing.get_args(OrderReply)]))
def test_order_replies_round_trip_through_their_union(reply: Any) -> None:
    decoded = from_json(OrderReply, to_json(reply, OrderReply))
    assert type(decoded) is type(reply) and decoded == reply
    assert isinstance(decoded, OrderError) == (type(reply) in typing.get_args(OrderError))


@given(reply=st.one_of([message(c) for c in typing.get_args(LedgerReply)]))
def test_ledger_replies_round_trip_through_their_union(reply: Any) -> None:
    assert from_json(LedgerReply, to_json(reply, LedgerReply)) == reply


def test_place_order_from_a_good_body() -> None:
    body = {"client_id": "c1", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
            "amount": "0.010", "price": "30000"}
    placed = PlaceOrder.from_body(body)
    assert placed == PlaceOrder(client_id="c1", symbol="BTC/USDT", side="buy", type="limit",
                                amount=Decimal("0.010"), price=Decimal("30000"))


@pytest.mark.parametrize(("body", "field", "code"), [
    ([], "$", "not_an_object"),
    ({"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "1"}, "client_id",
     "required"),
    ({"client_id": "c", "symbol": "BTC/USDT", "side": "buy", "type": "limit"}, "amount",
     "required"),
    ({"client_id": "c", "symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": 1.5},
     "amount", "not_a_decimal"),
    ({"client_id": "c", "symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "NaN"},
     "amount", "not_a_decimal"),
    ({"client_id": "c", "symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "1",
      "price": "x"}, "price", "not_a_decimal"),
    ({"client_id": "c", "symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "1",
      "colour": "red"}, "colour", "unknown_field"),
])
def test_bad_bodies_name_the_field(body: Any, field: str, code: str) -> None:
    error = PlaceOrder.from_body(body)
    assert isinstance(error, InvalidOrder)
    assert (error.field, error.code) == (field, code)


def test_cancel_needs_exactly_one_key() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        CancelOrder()
    with pytest.raises(ValueError, match="exactly one"):
        CancelOrder(id="a", client_id="b")
