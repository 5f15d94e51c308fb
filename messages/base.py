"""Building blocks shared by every message module: ids, timestamps, frozen values.

A message must be immutable all the way down (it crosses threads and goes into the
journal), so payloads that come from outside (ccxt results, HTTP bodies) are turned into
:data:`Value` trees by :func:`freeze` before they are put into a message.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar, Union

import attrs

__all__ = [
    "DECIMAL_TAG",
    "FloatNotAllowed",
    "FrozenMap",
    "Value",
    "freeze",
    "check_value",
    "new_id",
    "trusted",
    "utc_now",
]

T = TypeVar("T")

#: Key that marks a Decimal inside a dynamic :data:`Value` in JSON (``{"$decimal": "1.5"}``):
#: in a dynamic value a plain string must stay a string, so Decimals need a tag.
DECIMAL_TAG = "$decimal"


class FloatNotAllowed(ValueError):
    """Raised when a float appears where money or a quantity may travel (exchange data, trading
    requests); the message starts with the path of the float. Use Decimal or a decimal string."""


class FrozenMap(Mapping[str, Any]):
    """An immutable, hashable mapping with string keys (the frozen form of a JSON object).

    Equality is by content, with any other mapping, so a decoded message compares equal to
    the one that was encoded.
    """

    __slots__ = ("_data", "_float_free", "_hash")

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        data = dict(items or {})
        for key in data:
            if not isinstance(key, str):
                raise TypeError(f"FrozenMap keys must be str, got {key!r} ({type(key).__name__})")
        self._data = data
        self._hash: int | None = None
        #: Known to be a valid Value with no float inside (see `_adopt`).
        self._float_free = False

    @classmethod
    def _adopt(cls, data: dict[str, Any], *, float_free: bool) -> FrozenMap:
        """Wrap `data` without copying or re-checking it: only for a dict just built by
        `freeze`, with str keys and valid values, that nothing else holds. `float_free` says
        no float is inside (floats were turned into Decimals), so checks can stop here."""
        frozen = cls.__new__(cls)
        frozen._data = data
        frozen._hash = None
        frozen._float_free = float_free
        return frozen

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


#: A dynamic, immutable, JSON-compatible value: ``None``, ``bool``, ``int``, finite ``float``,
#: ``str``, finite ``Decimal``, ``tuple`` of values, or :class:`FrozenMap` of values (recursive).
#: Used where the shape is the exchange's (ccxt arguments and results), not ours. Values that
#: may carry money (exchange results, trading requests) hold no floats (``floats=False``).
Value = Union[None, bool, int, float, str, Decimal, tuple, FrozenMap]  # noqa: UP007


class _Unusual(Exception):
    """The fast paths below met something they do not decide; the explaining path will."""


def _checked_fast(value: object, floats: bool) -> None:
    """`check_value` for the shapes ccxt and JSON produce (exact built-in types), with no path
    strings built; raises `_Unusual` for anything else, including every invalid value."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return
    if kind is float:
        if not floats or not math.isfinite(value):  # type: ignore[arg-type]
            raise _Unusual
        return
    if kind is FrozenMap:
        if value._float_free:  # type: ignore[attr-defined]
            return  # checked when it was frozen: valid, and no float inside
        data = value._data  # type: ignore[attr-defined]
        if len(data) == 1 and DECIMAL_TAG in data:
            raise _Unusual
        for item in data.values():
            _checked_fast(item, floats)
        return
    if kind is tuple:
        for item in value:  # type: ignore[attr-defined]
            _checked_fast(item, floats)
        return
    if kind is Decimal and value.is_finite():  # type: ignore[attr-defined]
        return
    raise _Unusual


def check_value(value: object, path: str = "$", *, floats: bool = True) -> None:
    """Raise ``ValueError`` naming ``path`` unless ``value`` is a valid :data:`Value`.

    With ``floats=False`` a float anywhere inside raises :class:`FloatNotAllowed`.
    """
    try:
        _checked_fast(value, floats)
        return
    except (_Unusual, RecursionError):
        pass
    _check_explained(value, path, floats=floats)


def _check_explained(value: object, path: str, *, floats: bool) -> None:
    """`check_value` one element at a time, naming the path of what is wrong."""
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not floats:
            raise FloatNotAllowed(
                f"{path}: float {value!r} is not allowed here; "
                "money and quantities must be Decimal or a decimal string"
            )
        if not math.isfinite(value):
            raise ValueError(f"{path}: non-finite float {value!r} is not a valid value")
        return
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{path}: non-finite Decimal {value!r} is not a valid value")
        return
    if isinstance(value, tuple):
        for index, item in enumerate(value):
            _check_explained(item, f"{path}[{index}]", floats=floats)
        return
    if isinstance(value, FrozenMap):
        if len(value) == 1 and DECIMAL_TAG in value:
            raise ValueError(f"{path}: a map whose only key is {DECIMAL_TAG!r} is reserved")
        for key, item in value.items():
            _check_explained(item, f"{path}.{key}", floats=floats)
        return
    raise ValueError(
        f"{path}: {type(value).__name__} is not a valid value "
        "(expected None, bool, int, float, str, Decimal, tuple or FrozenMap)"
    )


def _frozen_fast(obj: object, floats_to_decimal: bool) -> Value:
    """`freeze` for exact built-in JSON shapes in one pass with no path strings built; raises
    `_Unusual` for anything else (subclasses, invalid values), which `freeze` then explains."""
    kind = type(obj)
    if kind is str or kind is int or kind is bool or obj is None:
        return obj  # type: ignore[return-value]
    if kind is float:
        if not math.isfinite(obj):  # type: ignore[arg-type]
            raise _Unusual
        return Decimal(repr(obj)) if floats_to_decimal else obj  # type: ignore[return-value]
    if kind is dict or kind is FrozenMap:
        data = {}
        for key, item in obj.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                raise _Unusual
            leaf = type(item)
            # The common leaves inline: a ccxt reply is mostly these.
            if leaf is str or item is None or leaf is int or leaf is bool:
                data[key] = item
            elif leaf is float and floats_to_decimal and item - item == 0:  # finite
                data[key] = Decimal(repr(item))
            else:
                data[key] = _frozen_fast(item, floats_to_decimal)
        if len(data) == 1 and DECIMAL_TAG in data:
            raise _Unusual
        return FrozenMap._adopt(data, float_free=floats_to_decimal)
    if kind is list or kind is tuple:
        return tuple([_frozen_fast(item, floats_to_decimal) for item in obj])  # type: ignore[attr-defined]
    if kind is Decimal and obj.is_finite():  # type: ignore[attr-defined]
        return obj  # type: ignore[return-value]
    raise _Unusual


def freeze(obj: object, path: str = "$", *, floats_to_decimal: bool = False) -> Value:
    """Return the immutable :data:`Value` form of a JSON-like payload (dicts, lists, scalars).

    Raises ``ValueError`` naming the offending path for anything that is not JSON-like
    (a non-string key, a NaN, an arbitrary object): nothing is dropped or coerced silently.
    With ``floats_to_decimal`` every finite float becomes ``Decimal(repr(x))``, the shortest
    decimal that prints as the float (what the venue sent, for ccxt's parsed numbers).
    Exact built-in shapes take a one-pass fast path (every exchange reply crosses here).
    """
    try:
        return _frozen_fast(obj, floats_to_decimal)
    except (_Unusual, RecursionError):
        pass
    return _freeze_explained(obj, path, floats_to_decimal)


def _freeze_explained(obj: object, path: str, floats_to_decimal: bool) -> Value:
    """`freeze` one element at a time, naming the path of what is wrong."""
    if isinstance(obj, Mapping):
        for key in obj:
            if not isinstance(key, str):
                raise ValueError(f"{path}: key {key!r} is not a str")
        frozen = FrozenMap({
            key: _freeze_explained(item, f"{path}.{key}", floats_to_decimal)
            for key, item in obj.items()
        })
        check_value(frozen, path)
        return frozen
    if isinstance(obj, list | tuple):
        return tuple(
            _freeze_explained(item, f"{path}[{index}]", floats_to_decimal)
            for index, item in enumerate(obj)
        )
    check_value(obj, path)
    if floats_to_decimal and isinstance(obj, float):
        return Decimal(repr(obj))
    return obj  # type: ignore[return-value]


#: uuid4's fixed bits: version 4 and the RFC 4122 variant (`new_id`).
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_id() -> str:
    """A fresh random id: a uuid4 as 32 lowercase hex characters, like ``uuid.uuid4().hex``.

    Drawn from a private `random.Random` (seeded from the OS, again in a forked child) rather
    than a system call per id, since every exchange call makes one: unique, not secret.
    """
    return "%032x" % (_ids.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)


#: The ids' own generator: seeding the shared `random` (tests, hypothesis) must not repeat ids.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


def trusted(cls: type[T]) -> Callable[..., T]:
    """A constructor of the slotted attrs class `cls` taking every field by keyword, that runs
    neither validators nor ``__attrs_post_init__``: only for fields the caller has just built or
    checked itself, on the exchange hot path (a validated attrs ``__init__`` costs several
    times more). Generated once per class, as attrs generates its own ``__init__``."""
    builder = _TRUSTED.get(cls)
    if builder is None:
        fields = [field.name for field in attrs.fields(cls)]  # type: ignore[arg-type]
        namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
        namespace.update({f"set_{name}": getattr(cls, name).__set__ for name in fields})
        source = (f"def build(*, {', '.join(fields)}):\n    instance = new(cls)\n"
                  + "".join(f"    set_{name}(instance, {name})\n" for name in fields)
                  + "    return instance\n")
        exec(source, namespace)  # noqa: S102 - code built from the class's own field names
        builder = _TRUSTED[cls] = namespace["build"]
    return builder


_TRUSTED: dict[type, Callable[..., Any]] = {}


def utc_now() -> datetime:
    """The current wall-clock time, timezone-aware UTC (for creation timestamps, not timing)."""
    return datetime.now(UTC)
