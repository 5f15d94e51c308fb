"""How ExchangeRequest.new builds requests cheaply without letting anything through the
validators would refuse, and request ids that stay unique whatever else uses `random`."""

from __future__ import annotations

import random
import uuid

import pytest

from messages.base import FloatNotAllowed, FrozenMap, new_id
from messages.exchange import Category, ExchangeRequest


def _new(**overrides: object) -> ExchangeRequest:
    fields: dict = {"venue": "sim", "method": "fetch_ticker", "args": ["BTC/USDT"],
                    "category": Category.MARKET_DATA, "idempotent": True, "timeout": 1.0}
    fields.update(overrides)
    return ExchangeRequest.new(**fields)


def test_a_built_request_equals_one_built_by_the_validating_constructor() -> None:
    request = _new(kwargs={"params": {"limit": 5}})
    fields = {name: getattr(request, name) for name in ("id", "venue", "method", "args",
              "kwargs", "category", "idempotent", "deadline", "created")}
    assert ExchangeRequest(**fields) == request
    assert request.args == ("BTC/USDT",) and request.kwargs == {"params": {"limit": 5}}


@pytest.mark.parametrize("kwargs", [None, {}, [], ()])
def test_empty_kwargs_of_any_kind_mean_none(kwargs: object) -> None:
    assert _new(kwargs=kwargs).kwargs == FrozenMap()


@pytest.mark.parametrize(("overrides", "field"), [
    ({"venue": ""}, "venue"), ({"venue": 3}, "venue"), ({"method": "_private"}, "method"),
    ({"method": "fétch"}, "method"), ({"method": "fetch ticker"}, "method"),
    ({"idempotent": 1}, "idempotent"),
    ({"clock": lambda: float("nan")}, "deadline"),
])
def test_bad_fields_are_refused_naming_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        _new(**overrides)


def test_a_category_that_is_not_a_category_is_refused() -> None:
    with pytest.raises(TypeError, match="'category' must be"):
        _new(category="trading")


def test_a_float_in_a_trading_request_is_refused() -> None:
    with pytest.raises(FloatNotAllowed, match=r"^args\[3\]"):
        _new(method="create_order", args=["BTC/USDT", "limit", "buy", 0.5],
             category=Category.TRADING, idempotent=False)


def test_ids_are_uuid4_and_unique_even_when_random_is_reseeded() -> None:
    random.seed(7)
    first = new_id()
    random.seed(7)
    second = new_id()
    assert first != second
    assert uuid.UUID(first).version == 4 and uuid.UUID(first).hex == first
