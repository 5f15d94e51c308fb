"""attrs validators shared by message modules; each error names the field it rejects."""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from messages.base import FrozenMap, check_value

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def _fail(attribute: attrs.Attribute, expected: str, value: Any) -> None:
    raise ValueError(f"{attribute.name}: expected {expected}, got {value!r}")


def non_empty_str(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        _fail(attribute, "a non-empty str", value)


def public_method_name(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    """Only public method names: the gateway must never be asked to call ``_private`` code."""
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        _fail(attribute, "a public method name (letter first, then letters, digits, _)", value)


def strict_bool(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(attribute, "a bool", value)


def finite_float(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, float | int) or not math.isfinite(value):
        _fail(attribute, "a finite number", value)


def non_negative_float(instance: object, attribute: attrs.Attribute, value: Any) -> None:
    finite_float(instance, attribute, value)
    if value < 0:
        _fail(attribute, "a number >= 0", value)


def optional_non_negative_float(instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None:
        non_negative_float(instance, attribute, value)


def finite_decimal(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        _fail(attribute, "a finite Decimal", value)


def aware_datetime(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        _fail(attribute, "a timezone-aware datetime", value)


def value_tuple(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, tuple):
        _fail(attribute, "a tuple", value)
    check_value(value, attribute.name)


def value_map(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, FrozenMap):
        _fail(attribute, "a FrozenMap", value)
    check_value(value, attribute.name)
