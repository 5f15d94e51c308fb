"""Every message survives the JSON round trip unchanged; bad JSON fails naming the field."""

from __future__ import annotations

import enum
import json
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

import messages.event_log
import messages.exchange
import messages.supervision
from messages import (
    DECIMAL_TAG,
    Category,
    ExchangeReply,
    ExchangeRequest,
    ExchangeResult,
    FrozenMap,
    MessageDecodeError,
    Value,
    from_dict,
    from_json,
    to_dict,
    to_json,
)
from messages.base import FloatNotAllowed
from messages.supervision import SupervisionEvent

MESSAGE_MODULES = (messages.exchange, messages.supervision, messages.event_log)
MESSAGE_CLASSES = sorted(
    (
        obj
        for module in MESSAGE_MODULES
        for obj in vars(module).values()
        if attrs.has(obj) and obj.__module__ == module.__name__
    ),
    key=lambda cls: cls.__qualname__,
)

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
decimals = st.decimals(allow_nan=False, allow_infinity=False)
names = st.text(min_size=1, max_size=20).filter(str.strip)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
aware_datetimes = st.datetimes(timezones=st.just(UTC) | offsets)



def value_strategies(
    scalars: st.SearchStrategy[Any],
) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[FrozenMap]]:
    """(any Value, any FrozenMap of Values) built from `scalars`."""
    values = st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4).map(tuple)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
            .filter(lambda d: set(d) != {DECIMAL_TAG})
            .map(FrozenMap)
        ),
        max_leaves=12,
    )
    maps = (
        st.dictionaries(st.text(max_size=8), values, max_size=4)
        .filter(lambda d: set(d) != {DECIMAL_TAG})
        .map(FrozenMap)
    )
    return values, maps


exact_scalars = st.none() | st.booleans() | st.integers() | st.text() | decimals
values, value_maps = value_strategies(exact_scalars | finite_floats)
#: Values as exchange results and trading requests must carry them: money never as a float.
float_free_values, float_free_maps = value_strategies(exact_scalars)


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, tuple):
        return any(_has_float(item) for item in value)
    if isinstance(value, FrozenMap):
        return any(_has_float(item) for item in value.values())
    return False


#: Fields whose validators need more than their type says.
BY_FIELD_NAME: dict[str, st.SearchStrategy[Any]] = {
    "method": st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,24}", fullmatch=True),
    "limit": st.integers(min_value=1, max_value=10_000),
    "latency": finite_floats.map(abs),
    "next_probe_in": finite_floats.map(abs),
    "retry_after": st.none() | finite_floats.map(abs),
}


def strategy_for(kind: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """A strategy for any type used in a message field."""
    if kind == Value:
        return values
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        options = [a for a in typing.get_args(kind) if a is not type(None) or depth < 2]
        if depth >= 2:  # cut recursive structures (a status of a status of ...)
            options = [a for a in options if not attrs.has(a)] or [type(None)]
        return st.one_of([strategy_for(a, depth) for a in options])
    if kind is type(None):
        return st.none()
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        return st.lists(strategy_for(item, depth + 1), max_size=3).map(tuple)
    if attrs.has(kind):
        return message_strategy(kind, depth + 1)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return st.sampled_from(kind)
    simple = {
        str: names,
        int: st.integers(),
        bool: st.booleans(),
        float: finite_floats,
        Decimal: decimals,
        datetime: aware_datetimes,
        FrozenMap: value_maps,
    }
    return simple[kind]


#: Fields of one class whose validators forbid floats (given the rest of the message).
BY_CLASS_FIELD: dict[tuple[type, str], st.SearchStrategy[Any]] = {
    (ExchangeResult, "value"): float_free_values,
}


def message_strategy(cls: type, depth: int = 0) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    def field_strategy(name: str) -> st.SearchStrategy[Any]:
        # Strategies must not be tested for truth (hypothesis warns): look up by key.
        if (cls, name) in BY_CLASS_FIELD:
            return BY_CLASS_FIELD[(cls, name)]
        if name in BY_FIELD_NAME:
            return BY_FIELD_NAME[name]
        return strategy_for(hints[name], depth)

    fields = {f.name: field_strategy(f.name) for f in attrs.fields(cls)}
    if cls is ExchangeRequest:  # trading requests carry no floats; market data ones may
        trading = fields | {
            "category": st.just(Category.TRADING),
            "args": st.lists(float_free_values, max_size=3).map(tuple),
            "kwargs": float_free_maps,
        }
        return st.builds(cls, **fields | {"category": st.just(Category.MARKET_DATA)}) | st.builds(
            cls, **trading)
    return st.builds(cls, **fields)


def test_every_message_module_is_covered() -> None:
    assert {ExchangeRequest, messages.event_log.RecentEvents} <= set(MESSAGE_CLASSES)
    assert len(MESSAGE_CLASSES) >= 15


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_round_trip_is_identity(cls: type, data: st.DataObject) -> None:
    message = data.draw(message_strategy(cls))
    text = to_json(message)
    decoded = from_json(cls, text)
    assert decoded == message
    assert to_json(decoded) == text  # also catches True/1 or 1/1.0 confusions


@given(reply=st.one_of([message_strategy(c) for c in typing.get_args(ExchangeReply)]))
def test_replies_round_trip_through_their_union(reply: Any) -> None:
    text = to_json(reply, ExchangeReply)
    decoded = from_json(ExchangeReply, text)
    assert type(decoded) is type(reply)
    assert decoded == reply


@given(event=st.one_of([message_strategy(c) for c in typing.get_args(SupervisionEvent)]))
def test_supervision_events_round_trip_through_their_union(event: Any) -> None:
    assert from_json(SupervisionEvent, to_json(event, SupervisionEvent)) == event


def _wrong_value(current: Any) -> Any:
    """A JSON value whose type differs from ``current``'s and is never valid in its place."""
    if isinstance(current, str):
        return 12345 if not current.isdigit() else ["x"]
    if isinstance(current, bool | int | float):
        return "not-a-number"
    if isinstance(current, list):
        return "not-a-list"
    if isinstance(current, dict):
        return ["not", "an", "object"]
    return True  # a None slot (optional field): any bool is wrong for these fields


@given(request=message_strategy(ExchangeRequest), data=st.data())
def test_a_wrong_field_type_is_named(request: ExchangeRequest, data: st.DataObject) -> None:
    encoded = to_dict(request)
    field = data.draw(st.sampled_from(sorted(encoded)))
    encoded[field] = _wrong_value(encoded[field])
    with pytest.raises(MessageDecodeError) as caught:
        from_dict(ExchangeRequest, encoded)
    assert caught.value.path == f"$.{field}"
    assert field in str(caught.value)


@given(request=message_strategy(ExchangeRequest), data=st.data())
def test_a_missing_field_is_named(request: ExchangeRequest, data: st.DataObject) -> None:
    encoded = to_dict(request)
    field = data.draw(st.sampled_from(sorted(a.name for a in attrs.fields(ExchangeRequest))))
    if attrs.fields_dict(ExchangeRequest)[field].default is not attrs.NOTHING:
        return  # optional fields may be left out
    del encoded[field]
    with pytest.raises(MessageDecodeError, match="missing required key") as caught:
        from_dict(ExchangeRequest, encoded)
    assert caught.value.path == f"$.{field}"


def test_unknown_keys_are_rejected() -> None:
    request = ExchangeRequest.new(
        "sim",
        "fetch_ticker",
        ["BTC/USDT"],
        category=Category.MARKET_DATA,
        idempotent=True,
        timeout=1.0,
    )
    encoded = to_dict(request) | {"price": "1"}
    with pytest.raises(MessageDecodeError, match="unknown key"):
        from_dict(ExchangeRequest, encoded)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("{", "$"),
        ("[]", "$"),
        ("NaN", "$"),
        ('{"limit": NaN}', "$"),
        ('{"limit": "5"}', "$.limit"),
        ('{"limit": true}', "$.limit"),
        ('{"limit": 0}', "$.limit"),
    ],
)
def test_invalid_json_is_a_typed_error(text: str, path: str) -> None:
    with pytest.raises(MessageDecodeError) as caught:
        from_json(messages.event_log.RecentEvents, text)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ([1, {DECIMAL_TAG: "x"}], "$.args[1].$decimal"),
        ([1, {DECIMAL_TAG: 1.5}], "$.args[1].$decimal"),
        ([1, {DECIMAL_TAG: "NaN"}], "$.args[1].$decimal"),
        ("BTC/USDT", "$.args"),
    ],
)
def test_bad_nested_values_name_their_path(value: Any, path: str) -> None:
    request = ExchangeRequest.new(
        "sim", "fetch_ticker", category=Category.MARKET_DATA, idempotent=True, timeout=1.0
    )
    encoded = to_dict(request) | {"args": value}
    with pytest.raises(MessageDecodeError) as caught:
        from_dict(ExchangeRequest, encoded)
    assert caught.value.path == path


def test_decimals_are_strings_and_tagged_inside_values() -> None:
    request = ExchangeRequest.new(
        "sim",
        "create_order",
        ["BTC/USDT", "limit", "buy", Decimal("0.10"), Decimal("30000")],
        {"params": {"clientOrderId": "abc"}},
        category=Category.TRADING,
        idempotent=False,
        timeout=5.0,
    )
    data = json.loads(to_json(request))
    assert data["args"][3] == {DECIMAL_TAG: "0.10"}
    assert data["category"] == "trading"
    assert data["kwargs"] == {"params": {"clientOrderId": "abc"}}
    assert from_json(ExchangeRequest, to_json(request)).args[3] == Decimal("0.10")


@attrs.frozen
class _Opened:
    order_id: str


@attrs.frozen
class _Closed:
    order_id: str
    amount: Decimal


def test_a_union_registered_later_decodes_by_tag() -> None:
    from messages import register_tagged_union

    union = _Opened | _Closed
    register_tagged_union(union)
    closed = _Closed(order_id="o1", amount=Decimal("1.50"))
    text = to_json(closed, union)
    assert json.loads(text)["_type"] == "_Closed"
    assert from_json(union, text) == closed
    with pytest.raises(MessageDecodeError):
        from_json(union, '{"order_id": "o1", "_type": "Nope"}')


# -- floats never carry money ------------------------------------------------------------------


def test_from_ccxt_turns_a_binance_order_book_into_decimals() -> None:
    book = ccxt.binance().parse_order_book(
        {"lastUpdateId": 1, "bids": [["30000.10", "0.50000000"]], "asks": [["30001.00", "1.2"]]},
        "BTC/USDT",
    )
    assert isinstance(book["bids"][0][0], float)  # what ccxt hands the gateway
    result = ExchangeResult.from_ccxt("r1", book, 0.01)
    assert result.value["bids"] == ((Decimal("30000.1"), Decimal("0.5")),)
    assert result.value["asks"] == ((Decimal("30001.0"), Decimal("1.2")),)
    assert result.value["symbol"] == "BTC/USDT" and result.value["timestamp"] is None
    assert not _has_float(result.value)
    assert from_json(ExchangeResult, to_json(result)) == result


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | finite_floats | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3).filter(
        lambda d: set(d) != {DECIMAL_TAG}),
    max_leaves=10,
)


def _expected_exact(raw: Any) -> Any:
    if isinstance(raw, float):
        return Decimal(repr(raw))
    if isinstance(raw, list):
        return tuple(_expected_exact(item) for item in raw)
    if isinstance(raw, dict):
        return FrozenMap({k: _expected_exact(v) for k, v in raw.items()})
    return raw


@given(raw=json_like)
def test_from_ccxt_holds_no_floats_and_keeps_each_printed_value(raw: Any) -> None:
    result = ExchangeResult.from_ccxt("r1", raw, 0.0)
    assert not _has_float(result.value)
    assert result.value == _expected_exact(raw)
    assert from_json(ExchangeResult, to_json(result)) == result


def test_from_ccxt_rejects_a_non_finite_float_naming_its_path() -> None:
    with pytest.raises(ValueError, match=r"value\.bids\[0\]\[1\]"):
        ExchangeResult.from_ccxt("r1", {"bids": [[1.0, float("nan")]]}, 0.0)


def test_a_result_built_directly_with_a_float_is_refused() -> None:
    with pytest.raises(FloatNotAllowed, match=r"value\.last"):
        ExchangeResult(request_id="r1", value=FrozenMap({"last": 30000.1}), latency=0.0)


@pytest.mark.parametrize(
    ("args", "kwargs", "path"),
    [
        (["BTC/USDT", "limit", "buy", 0.1, "30000"], None, "args[3]"),
        (["BTC/USDT", "limit", "buy", "0.1", "30000"], {"params": {"stopPrice": 29000.5}},
         "kwargs.params.stopPrice"),
    ],
)
def test_a_trading_request_with_a_float_is_a_typed_error(
    args: list[Any], kwargs: dict[str, Any] | None, path: str
) -> None:
    with pytest.raises(FloatNotAllowed) as caught:
        ExchangeRequest.new("sim", "create_order", args, kwargs, category=Category.TRADING,
                            idempotent=False, timeout=1.0)
    assert path in str(caught.value)
    market = ExchangeRequest.new("sim", "fetch_ohlcv", ["BTC/USDT"], {"params": {"x": 0.5}},
                                 category=Category.MARKET_DATA, idempotent=True, timeout=1.0)
    assert market.kwargs["params"]["x"] == 0.5  # not money: reads keep their floats


def test_a_trading_request_decoded_with_a_float_names_the_field() -> None:
    request = ExchangeRequest.new("sim", "create_order", ["BTC/USDT", "market", "buy", "0.1"],
                                  category=Category.TRADING, idempotent=False, timeout=1.0)
    encoded = to_dict(request)
    encoded["args"][3] = 0.1
    with pytest.raises(MessageDecodeError) as caught:
        from_dict(ExchangeRequest, encoded)
    assert caught.value.path == "$.args[3]"
    assert "float" in caught.value.reason
