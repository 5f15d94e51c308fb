"""Every decimal the control API writes is in the form its own inputs accept: plain
fixed-point (``DECIMAL_PATTERN``: no exponent), without trailing fractional zeros, and equal
to the Decimal it stands for. Checked on the answers of the trading routes (the codec's API
form), on the JSON writer's Decimals and on the operator routes' records."""

from __future__ import annotations

import enum
import json
import re
import types
import typing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from ironclad.http.app import json_response
from ironclad.http.observability import to_json
from ironclad.http.schema import DECIMAL_PATTERN, message_schemas
from messages.codec import from_dict, to_api_dict
from messages.ledger import Balances, LedgerEntries, Unfrozen
from messages.orders import OrderList, OrderView, ReconciliationView

_PLAIN = re.compile(DECIMAL_PATTERN)

#: Decimals as the ledger and the venue produce them: any sign, exponent and trailing zeros
#: (``0E-8``, ``100.00000000``, ``3E+4``...).
decimals = st.builds(lambda digits, exponent: Decimal(digits).scaleb(exponent),
                     st.integers(-10**24, 10**24), st.integers(-18, 12))
moments = st.datetimes(timezones=st.just(UTC))

RESPONSES = (Balances, ReconciliationView, LedgerEntries, OrderView, OrderList, Unfrozen)


def _of(kind: Any) -> st.SearchStrategy[Any]:
    """Values of a message field's type (no global hypothesis registration)."""
    options = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(options) == 1:
        return st.none() | _of(options[0])
    if typing.get_origin(kind) is tuple:
        return st.lists(_of(typing.get_args(kind)[0]), max_size=3).map(tuple)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        Decimal: decimals, datetime: moments, bool: st.booleans(),
        int: st.integers(0, 10**6), str: st.text("abcXYZ/-:1", min_size=1, max_size=8)}
    if kind in simple:
        return simple[kind]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return st.sampled_from(list(kind))
    assert attrs.has(kind), kind
    return _message(kind)


def _message(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: _of(hints[f.name]) for f in attrs.fields(cls)})


def _plain(text: Any) -> None:
    assert isinstance(text, str) and _PLAIN.match(text), text
    assert text != "-0" and not re.search(r"\.[0-9]*0$", text), text  # one form per value


def _check(value: Any, schema: dict[str, Any], schemas: dict[str, Any]) -> int:
    """Check every decimal field of ``value`` (JSON) against ``schema``; how many."""
    if "$ref" in schema:
        return _check(value, schemas[schema["$ref"].rsplit("/", 1)[1]], schemas)
    if "anyOf" in schema:
        return 0 if value is None else _check(value, schema["anyOf"][0], schemas)
    if schema.get("pattern") == DECIMAL_PATTERN:
        if value is not None:
            _plain(value)
            return 1
        return 0
    if schema.get("type") == "array":
        return sum(_check(item, schema["items"], schemas) for item in value)
    if schema.get("type") == "object" and "properties" in schema:
        return sum(_check(value[name], sub, schemas)
                   for name, sub in schema["properties"].items())
    return 0


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_every_decimal_in_a_trading_answer_is_plain_and_exact(data: st.DataObject) -> None:
    for cls in RESPONSES:
        message = data.draw(_message(cls), label=cls.__name__)
        response = json_response(200, to_api_dict(message, cls))
        payload = json.loads(response.body)
        schemas = message_schemas(cls)
        _check(payload, schemas[cls.__name__], schemas)
        assert from_dict(cls, payload) == message  # the same amounts, exactly


@settings(max_examples=200, deadline=None)
@given(decimals)
def test_the_json_writer_and_the_operator_records_write_plain_decimals(value: Decimal) -> None:
    payload = json.loads(json_response(200, {"amount": value, "list": [value]}).body)
    for text in (payload["amount"], payload["list"][0], to_json({"x": value})["x"]):
        _plain(text)
        assert Decimal(text) == value


def test_the_reported_forms_are_plain() -> None:
    """The forms seen in answers before: a zero delta of 8 places, mixed zeros."""
    payload = json.loads(json_response(200, to_api_dict(Unfrozen(venue="sim", currency="X"))
                                       | {"d": Decimal("0E-8"), "z": Decimal("0.00")}).body)
    assert (payload["d"], payload["z"]) == ("0", "0")
