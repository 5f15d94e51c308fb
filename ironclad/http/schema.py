"""Declared inputs: one :class:`Field` both validates a value and describes it in OpenAPI.

Parsing is strict so that bad input changes nothing: JSON bodies must be objects with only
known fields; decimals are decimal *strings* (a JSON number is refused: floats lose money);
strings have bounded length; enums take only their listed values. A body problem answers 422
naming the field, an unreadable body 400, a bad query parameter 400 naming the parameter.
"""

from __future__ import annotations

import enum
import json
import re
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from ironclad.http.errors import ApiError

__all__ = ["Kind", "Field", "Body", "parse_query", "message_schemas", "DECIMAL_PATTERN"]

#: A plain decimal string: optional minus, digits, optional fraction (no exponent, no spaces).
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
_DECIMAL = re.compile(DECIMAL_PATTERN)
_MAX_DECIMAL_LENGTH = 40


class Kind(enum.Enum):
    """What a field holds, on the wire."""

    STRING = "string"
    DECIMAL = "decimal"
    CHOICE = "choice"
    DATETIME = "datetime"
    INTEGER = "integer"


@attrs.frozen(kw_only=True)
class Field:
    """One named input: its kind, whether it is required, and its limits."""

    name: str
    kind: Kind
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()
    max_length: int = 128
    minimum: int | None = None
    maximum: int | None = None

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of the value (what the OpenAPI document shows)."""
        if self.kind is Kind.DECIMAL:
            return {"type": "string", "pattern": DECIMAL_PATTERN,
                    "maxLength": _MAX_DECIMAL_LENGTH, "description": self.description,
                    "examples": ["0.01"]}
        if self.kind is Kind.CHOICE:
            return {"type": "string", "enum": list(self.choices), "description": self.description}
        if self.kind is Kind.DATETIME:
            return {"type": "string", "format": "date-time", "description": self.description}
        if self.kind is Kind.INTEGER:
            schema: dict[str, Any] = {"type": "integer", "description": self.description}
            if self.minimum is not None:
                schema["minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
            return schema
        return {"type": "string", "minLength": 1, "maxLength": self.max_length,
                "description": self.description}

    def parse(self, value: Any, *, status: int, from_text: bool = False) -> Any:
        """The value as Python (Decimal, datetime, str, int); ApiError(status) if invalid.

        ``from_text``: the value comes from a query string, so integers arrive as text.
        """

        def refuse(code: str, message: str) -> ApiError:
            return ApiError(status, code, f"{self.name}: {message}", self.name)

        if self.kind is Kind.INTEGER:
            if from_text and isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,12}", value):
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise refuse("not_an_integer", f"expected an integer, got {value!r}")
            if self.minimum is not None and value < self.minimum:
                raise refuse("out_of_range", f"must be >= {self.minimum}, got {value}")
            if self.maximum is not None and value > self.maximum:
                raise refuse("out_of_range", f"must be <= {self.maximum}, got {value}")
            return value
        if not isinstance(value, str):
            if self.kind is Kind.DECIMAL and isinstance(value, int | float):
                raise refuse("not_a_decimal_string",
                             f"expected a decimal string such as \"0.01\", got the JSON number "
                             f"{value!r} (numbers lose precision)")
            raise refuse("not_a_string", f"expected a string, got {value!r}")
        if self.kind is Kind.DECIMAL:
            if len(value) > _MAX_DECIMAL_LENGTH or not _DECIMAL.match(value):
                raise refuse("not_a_decimal_string",
                             f"expected a plain decimal string such as \"0.01\", got {value!r}")
            try:
                return Decimal(value)
            except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
                raise refuse("not_a_decimal_string", f"not a decimal: {value!r}") from None
        if self.kind is Kind.CHOICE:
            if value not in self.choices:
                raise refuse("invalid_choice",
                             f"expected one of {', '.join(self.choices)}, got {value!r}")
            return value
        if self.kind is Kind.DATETIME:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise refuse("not_a_datetime",
                             f"expected an ISO 8601 date-time, got {value!r}") from None
            if moment.utcoffset() is None:
                raise refuse("not_a_datetime",
                             f"expected a date-time with a UTC offset (Z or +00:00), got {value!r}")
            return moment
        if not value or len(value) > self.max_length:
            raise refuse("invalid_length",
                         f"expected 1 to {self.max_length} characters, got {len(value)}")
        return value


@attrs.frozen(kw_only=True)
class Body:
    """A JSON object request body: exactly these fields, nothing else."""

    schema_name: str
    description: str
    fields: tuple[Field, ...]

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "description": self.description,
            "additionalProperties": False,
            "required": [f.name for f in self.fields if f.required],
            "properties": {f.name: f.json_schema() for f in self.fields},
        }

    def parse(self, raw: bytes) -> dict[str, Any]:
        """The parsed fields (absent optional ones left out); ApiError 400 or 422 if invalid."""
        try:
            data = json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as error:
            raise ApiError(400, "malformed_json", f"the body is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "not_an_object", "the body must be a JSON object")
        known = {f.name: f for f in self.fields}
        for name in data:
            if name not in known:
                raise ApiError(422, "unknown_field",
                               f"{name}: not a field of {self.schema_name} "
                               f"(expected {', '.join(known)})", name)
        parsed: dict[str, Any] = {}
        for field in self.fields:
            if field.name not in data or data[field.name] is None:
                if field.required:
                    raise ApiError(422, "missing_field", f"{field.name}: required", field.name)
                continue
            parsed[field.name] = field.parse(data[field.name], status=422)
        return parsed


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not valid JSON")


def parse_query(query: Mapping[str, str], params: tuple[Field, ...],
                multi: Mapping[str, int]) -> dict[str, Any]:
    """Parse a query string against ``params``: unknown or repeated parameters answer 400.

    ``multi`` is how often each name occurs (Starlette's multi-dict counts), so a repeated
    parameter is refused rather than one of its values silently dropped.
    """
    known = {p.name: p for p in params}
    parsed: dict[str, Any] = {}
    for name, value in query.items():
        if name not in known:
            expected = ", ".join(known) or "none"
            raise ApiError(400, "unknown_parameter",
                           f"{name}: not a query parameter here (expected {expected})", name)
        if multi.get(name, 1) > 1:
            raise ApiError(400, "repeated_parameter", f"{name}: given more than once", name)
        parsed[name] = known[name].parse(value, status=400, from_text=True)
    for param in params:
        if param.required and param.name not in parsed:
            raise ApiError(400, "missing_parameter", f"{param.name}: required", param.name)
    return parsed


def message_schemas(cls: type) -> dict[str, dict[str, Any]]:
    """JSON schemas (OpenAPI components) of the attrs message ``cls`` and the classes it
    nests, as the codec writes them: Decimals as decimal strings, datetimes ISO 8601, enums by
    value, tuples as arrays; every field required (None shows as null).

    Derived from the message classes themselves, so the document follows the messages.
    """
    schemas: dict[str, dict[str, Any]] = {}

    def of(kind: Any) -> dict[str, Any]:
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(options) == 1:
            inner = of(options[0])
            if "$ref" in inner:
                return {"anyOf": [inner, {"type": "null"}]}
            if "enum" in inner:
                return {**inner, "type": [inner["type"], "null"], "enum": [*inner["enum"], None]}
            return {**inner, "type": [inner["type"], "null"]}
        if typing.get_origin(kind) is tuple:
            return {"type": "array", "items": of(typing.get_args(kind)[0])}
        if kind is str:
            return {"type": "string"}
        if kind is bool:
            return {"type": "boolean"}
        if kind is int:
            return {"type": "integer"}
        if kind is Decimal:
            return {"type": "string", "pattern": DECIMAL_PATTERN,
                    "description": "a plain decimal string (no exponent), as inputs take"}
        if kind is datetime:
            return {"type": "string", "format": "date-time"}
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return {"type": "string", "enum": [member.value for member in kind]}
        if attrs.has(kind):
            add(kind)
            return {"$ref": f"#/components/schemas/{kind.__name__}"}
        raise TypeError(f"no JSON schema for {kind!r}")

    def add(kind: type) -> None:
        if kind.__name__ in schemas:
            return
        schemas[kind.__name__] = {}  # reserve: nested self-references terminate
        hints = typing.get_type_hints(kind)
        fields = attrs.fields(kind)
        schemas[kind.__name__] = {
            "type": "object",
            "description": " ".join((kind.__doc__ or "").split("\n\n")[0].split()),
            "additionalProperties": False,
            "required": [f.name for f in fields],
            "properties": {f.name: of(hints[f.name]) for f in fields},
        }

    add(cls)
    return schemas
