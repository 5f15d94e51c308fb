"""JSON for messages (journal, HTTP API), through one strict cattrs converter.

Encoding: Decimal as a string, enums by value, datetimes ISO 8601, tuples as lists,
:class:`~messages.base.FrozenMap` as objects; inside a dynamic :data:`~messages.base.Value`
a Decimal is ``{"$decimal": "1.5"}`` (a plain string there stays a string). A union of
message classes (e.g. :data:`~messages.exchange.ExchangeReply`) carries a ``"_type"`` tag.

Decoding is strict: no coercion (``"5"`` is not an int), unknown or missing keys are errors,
and every failure is a :class:`MessageDecodeError` naming the field path (``$.args[2]``).

:func:`to_api_dict` is the same encoding with every Decimal in plain fixed-point
(:func:`plain_decimal`: ``0E-8`` is ``"0"``), the form the control API also takes as input.
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import AttributeValidationNote, IterableValidationNote
from cattrs.strategies import configure_tagged_union

from messages.base import DECIMAL_TAG, FrozenMap, Value
from messages.exchange import ExchangeErrorReply, ExchangeReply
from messages.supervision import SupervisionEvent

__all__ = [
    "MessageDecodeError",
    "converter",
    "register_tagged_union",
    "to_dict",
    "to_api_dict",
    "plain_decimal",
    "from_dict",
    "to_json",
    "from_json",
]

T = TypeVar("T")


class MessageDecodeError(ValueError):
    """Raised when JSON text or data does not decode into the requested message type.

    ``path`` is where decoding failed (``$`` is the whole document, ``$.kwargs.price`` a
    field); ``reason`` says what was expected.
    """

    def __init__(self, target: Any, path: str, reason: str) -> None:
        self.target = target
        self.path = path
        self.reason = reason
        members = _union_members(target)
        name = " | ".join(getattr(member, "__name__", repr(member)) for member in members)
        super().__init__(f"cannot decode {name}: {reason} @ {path}")


def _union_members(kind: Any) -> tuple[Any, ...]:
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return typing.get_args(kind)
    return (kind,)


class _FieldError(ValueError):
    """Internal: a decode hook failure that already knows its path below the hook."""


def _expect(value: Any, kinds: type | tuple[type, ...], expected: str) -> Any:
    """``value`` if it is one of ``kinds`` (a bool is not an int here), else TypeError."""
    allowed = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise TypeError(f"expected {expected}, got {value!r}")
    return value


def _structure_decimal(value: Any, _type: Any) -> Decimal:
    _expect(value, str, "a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"expected a decimal string, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"expected a finite decimal, got {value!r}")
    return number


def _structure_float(value: Any, _type: Any) -> float:
    _expect(value, (int, float), "a number")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _structure_datetime(value: Any, _type: Any) -> datetime:
    _expect(value, str, "an ISO 8601 datetime string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 datetime string, got {value!r}") from None
    if moment.utcoffset() is None:
        raise ValueError(f"expected a datetime with a UTC offset, got {value!r}")
    return moment


def plain_decimal(value: Decimal) -> str:
    """``value`` in fixed-point without exponent or trailing fractional zeros, exactly
    (``0E-8`` → ``"0"``, ``1.50`` → ``"1.5"``, ``3E+4`` → ``"30000"``; never rounded)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _unstructure_value_with(decimal_text: Any) -> Any:
    def unstructure(value: Any) -> Any:
        if isinstance(value, Decimal):
            return {DECIMAL_TAG: decimal_text(value)}
        if isinstance(value, tuple):
            return [unstructure(item) for item in value]
        if isinstance(value, FrozenMap):
            return {key: unstructure(item) for key, item in value.items()}
        return value

    return unstructure


def _structure_value_at(data: Any, path: str) -> Value:
    if data is None or isinstance(data, bool | int | str):
        return data
    if isinstance(data, float):
        if not math.isfinite(data):
            raise _FieldError(f"non-finite number {data!r} @ {path}")
        return data
    if isinstance(data, list):
        return tuple(_structure_value_at(item, f"{path}[{i}]") for i, item in enumerate(data))
    if isinstance(data, dict):
        if set(data) == {DECIMAL_TAG}:
            try:
                return _structure_decimal(data[DECIMAL_TAG], Decimal)
            except (TypeError, ValueError) as error:
                raise _FieldError(f"{error} @ {path}.{DECIMAL_TAG}") from None
        return FrozenMap(
            {key: _structure_value_at(item, f"{path}.{key}") for key, item in data.items()}
        )
    raise _FieldError(f"expected a JSON value, got {data!r} @ {path}")


def _structure_frozen_map(data: Any, _type: Any) -> FrozenMap:
    _expect(data, dict, "an object")
    frozen = _structure_value_at(data, "$")
    assert isinstance(frozen, FrozenMap)
    return frozen


def _is_homogeneous_tuple(kind: Any) -> bool:
    args = typing.get_args(kind)
    return typing.get_origin(kind) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_hook(conv: cattrs.Converter) -> Any:
    """Strict ``tuple[X, ...]``: only a JSON list (cattrs would split a string into chars)."""

    def structure(value: Any, kind: Any) -> tuple:
        _expect(value, list, "a list")
        item_type = typing.get_args(kind)[0]
        items, errors = [], []
        for index, item in enumerate(value):
            try:
                items.append(conv.structure(item, item_type))
            except Exception as error:  # noqa: BLE001 - collected and re-raised with its index
                error.add_note(IterableValidationNote(f"@ index {index}", index, item_type))
                errors.append(error)
        if errors:
            raise cattrs.IterableValidationError(f"While structuring {kind!r}", errors, kind)
        return tuple(items)

    return structure


def _make_converter(decimal_text: Any = str) -> cattrs.Converter:
    """The converter; ``decimal_text`` writes a Decimal (``str`` keeps its exponent)."""
    unstructure_value = _unstructure_value_with(decimal_text)
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook_func(_is_homogeneous_tuple, _tuple_hook(conv))
    conv.register_structure_hook(str, lambda v, _t: _expect(v, str, "a string"))
    conv.register_structure_hook(int, lambda v, _t: _expect(v, int, "an integer"))
    conv.register_structure_hook(bool, lambda v, _t: _expect(v, bool, "a boolean"))
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(Decimal, _structure_decimal)
    conv.register_unstructure_hook(Decimal, decimal_text)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(FrozenMap, _structure_frozen_map)
    conv.register_unstructure_hook(FrozenMap, unstructure_value)
    conv.register_structure_hook_func(
        lambda t: t == Value, lambda v, _t: _structure_value_at(v, "$")
    )
    conv.register_unstructure_hook_func(lambda t: t == Value, unstructure_value)
    return conv


#: The one converter for every message type.
converter = _make_converter()
#: The same encoding for the control API's answers: Decimals in plain fixed-point.
_api_converter = _make_converter(plain_decimal)


def register_tagged_union(union: Any) -> None:
    """Let ``union`` (of message classes) be decoded: its members carry a ``"_type"`` tag.

    A message module whose conversation has several reply or event types calls this once,
    at import, for its union (as done below for the exchange replies and supervision events).
    """
    configure_tagged_union(union, converter)
    configure_tagged_union(union, _api_converter)


register_tagged_union(ExchangeErrorReply)
register_tagged_union(ExchangeReply)
register_tagged_union(SupervisionEvent)


def to_dict(message: Any, as_type: Any = None) -> Any:
    """The JSON-ready form (dicts, lists, strings, numbers) of a message.

    Pass the union as ``as_type`` (e.g. ``ExchangeReply``) to include its ``"_type"`` tag,
    so that ``from_dict(ExchangeReply, ...)`` can tell the members apart.
    """
    return converter.unstructure(message, unstructure_as=as_type or type(message))


def to_api_dict(message: Any, as_type: Any = None) -> Any:
    """As :func:`to_dict`, with every Decimal as :func:`plain_decimal` text (for the
    control API, whose inputs refuse exponents)."""
    return _api_converter.unstructure(message, unstructure_as=as_type or type(message))


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


# A validator's "field: reason" message, the field possibly followed by a path inside it
# ("args[3]", "kwargs.params.price").
_FIELD_PATH = re.compile(r"[A-Za-z_]\w*(?:\[\d+\]|\.[^\s.\[\]]+)*\Z")


def _first_failure(error: BaseException, path: str) -> tuple[str, str]:
    """Walk cattrs' exception groups down to the first leaf: (path, reason)."""
    if isinstance(error, cattrs.ClassValidationError | cattrs.IterableValidationError):
        leaves = error.exceptions
        if leaves:
            leaf = leaves[0]
            step = ""
            for note in getattr(leaf, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    step = f".{note.name}"
                    break
                if isinstance(note, IterableValidationNote):
                    step = f"[{note.index}]"
                    break
            return _first_failure(leaf, path + step)
        return path, _describe(error)
    if isinstance(error, cattrs.ForbiddenExtraKeysError):
        keys = ", ".join(sorted(error.extra_fields))
        return path, f"unknown key(s): {keys}"
    if isinstance(error, KeyError):
        key = f".{error.args[0]}"
        return (path if path.endswith(key) else path + key), "missing required key"
    if isinstance(error, _FieldError):
        reason, _, below = str(error).rpartition(" @ ")
        return path + below[1:], reason
    if (
        isinstance(error, TypeError)
        and len(error.args) == 4
        and isinstance(error.args[1], attrs.Attribute)
    ):
        # attrs' instance_of validator: (message, attribute, expected, value)
        return f"{path}.{error.args[1].name}", _describe(error)
    if isinstance(error, ValueError) and not isinstance(error, MessageDecodeError):
        field, sep, reason = str(error).partition(": ")
        if sep and _FIELD_PATH.match(field):
            return f"{path}.{field}", reason
    return path, _describe(error)


def from_dict(cls: type[T] | Any, data: Any) -> T:
    """Build a ``cls`` (a message class or union) from its JSON-ready form.

    Raises :class:`MessageDecodeError` naming the failing field; nothing is coerced.
    """
    members = _union_members(cls)
    if all(attrs.has(member) for member in members) and not isinstance(data, dict):
        raise MessageDecodeError(cls, "$", f"expected an object, got {data!r}")
    try:
        return converter.structure(data, cls)
    except Exception as error:  # noqa: BLE001 - every decode failure becomes one typed error
        path, reason = _first_failure(error, "$")
        raise MessageDecodeError(cls, path, reason) from error


def to_json(message: Any, as_type: Any = None) -> str:
    """Encode a message as compact JSON text (``as_type`` as in :func:`to_dict`)."""
    return json.dumps(to_dict(message, as_type), separators=(",", ":"), allow_nan=False)


def from_json(cls: type[T] | Any, text: str | bytes) -> T:
    """Decode JSON text into a ``cls``; :class:`MessageDecodeError` names what is wrong."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, TypeError) as error:
        raise MessageDecodeError(cls, "$", f"invalid JSON: {error}") from None
    return from_dict(cls, data)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
