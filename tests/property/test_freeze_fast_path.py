"""The one-pass fast paths of `freeze` and `check_value` decide exactly as the explaining paths.

Every exchange reply is frozen on the worker's hot path, so `freeze` first tries a one-pass
version without path strings; anything it does not decide falls back to the original code.
These properties hold the two to the same answers, including which inputs are refused.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messages.base import (
    DECIMAL_TAG,
    FloatNotAllowed,
    FrozenMap,
    _check_explained,
    _checked_fast,
    _freeze_explained,
    _frozen_fast,
    _Unusual,
    check_value,
    freeze,
)


class _Level(enum.IntEnum):
    ONE = 1


class _Text(str):
    pass


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.just(_Level.ONE), st.builds(_Text, st.text(max_size=3)), st.just(object()),
)
keys = st.one_of(st.text(max_size=4), st.just(DECIMAL_TAG), st.integers(0, 3))
raw = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
                            st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except ValueError as error:
        return type(error).__name__, str(error)


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (Decimal('1') is not 1 here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, FrozenMap):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, Decimal):
        return a.is_nan() and b.is_nan() or str(a) == str(b)
    return a == b or a is b


@given(raw, st.booleans())
def test_freeze_answers_as_the_explaining_path(value: Any, to_decimal: bool) -> None:
    fast = _outcome(freeze, value, "value", floats_to_decimal=to_decimal)
    slow = _outcome(_freeze_explained, value, "value", to_decimal)
    assert fast[0] == slow[0]
    if fast[0] == "ok":
        assert _same(fast[1], slow[1])
    else:
        assert fast[1] == slow[1]


@given(raw, st.booleans())
def test_the_fast_freeze_only_decides_valid_plain_values(value: Any, to_decimal: bool) -> None:
    try:
        frozen = _frozen_fast(value, to_decimal)
    except _Unusual:
        return
    assert _same(frozen, _freeze_explained(value, "$", to_decimal))


@given(raw, st.booleans())
def test_check_value_answers_as_the_explaining_path(value: Any, floats: bool) -> None:
    try:
        frozen = _freeze_explained(value, "$", False)
    except ValueError:
        return
    fast = _outcome(check_value, frozen, "v", floats=floats)
    slow = _outcome(_check_explained, frozen, "v", floats=floats)
    assert fast == slow
    try:
        _checked_fast(frozen, floats)
    except _Unusual:
        assert slow[0] != "ok" or not all(type(x) in (str, int, bool, type(None), float, Decimal)
                                          for x in _leaves(frozen))
    else:
        assert slow[0] == "ok"


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, FrozenMap):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, tuple):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def test_errors_still_name_the_path() -> None:
    with pytest.raises(ValueError, match=r"^value\.a\[1\]: non-finite float"):
        freeze({"a": [1, float("nan")]}, "value")
    with pytest.raises(FloatNotAllowed, match=r"^args\.p\.q: float"):
        check_value(freeze({"p": {"q": 1.5}}), "args", floats=False)
    with pytest.raises(ValueError, match=r"reserved"):
        freeze({"x": {DECIMAL_TAG: "1"}})
    with pytest.raises(ValueError, match=r"key 1 is not a str"):
        freeze({1: "x"})


@given(raw)
def test_a_map_marked_float_free_holds_no_float(value: Any) -> None:
    """`check_value` stops at a map `freeze` marked float-free; the mark must be true."""
    try:
        frozen = freeze(value, floats_to_decimal=True)
    except ValueError:
        return
    _check_explained(frozen, "$", floats=False)  # walks everything, trusting no mark
