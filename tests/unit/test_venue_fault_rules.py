"""Fault rules and venue configs are validated field by field: every bad value is refused with
a ``ConfigError`` naming the field, never a bare Python exception and never silently kept."""

from __future__ import annotations

from decimal import Decimal

import pytest

from simulator import ConfigError, FaultPlan, FaultRule, config_from_dict


def drift(**extra) -> dict:
    return {"endpoint": "*", "fault": "balance_drift", "currency": "BTC", "amount": "1", **extra}


@pytest.mark.parametrize("rule, field", [
    (drift(amount="NaN"), "amount"),
    (drift(amount="sNaN"), "amount"),
    (drift(amount="Infinity"), "amount"),
    (drift(amount="-Infinity"), "amount"),
    (drift(amount=float("inf")), "amount"),
    (drift(amount="1e400"), "amount"),
    (drift(amount="0"), "amount"),
    (drift(amount="-1"), "amount"),
    (drift(amount="0.1234567890123456789"), "amount"),
    (drift(amount=0.5), "amount"),
    (drift(amount=True), "amount"),
    (drift(amount=["1"]), "amount"),
    (drift(currency=7), "currency"),
    (drift(currency=""), "currency"),
    (drift(currency=["BTC"]), "currency"),
    (drift(target_account=["x"]), "target_account"),
    ({"endpoint": "*", "fault": "error_503", "account": ["x"]}, "account"),
    ({"endpoint": "*", "fault": "error_503", "account": {"a": 1}}, "account"),
    ({"endpoint": "*", "fault": "error_503", "account": 3}, "account"),
    ({"endpoint": ["*"], "fault": "error_503"}, "endpoint"),
    ({"endpoint": "*", "fault": {"x": 1}}, "fault"),
    ({"endpoint": "nope", "fault": "error_503"}, "endpoint"),
    ({"endpoint": "*", "fault": "explode"}, "fault"),
    ({"endpoint": "*", "fault": "error_503", "probability": float("nan")}, "probability"),
    ({"endpoint": "*", "fault": "error_503", "probability": float("inf")}, "probability"),
    ({"endpoint": "*", "fault": "error_503", "probability": -0.1}, "probability"),
    ({"endpoint": "*", "fault": "error_503", "probability": "0.5"}, "probability"),
    ({"endpoint": "*", "fault": "error_503", "probability": True}, "probability"),
    ({"endpoint": "*", "fault": "error_503", "count": -1}, "count"),
    ({"endpoint": "*", "fault": "error_503", "count": 1.5}, "count"),
    ({"endpoint": "*", "fault": "error_503", "skip": "2"}, "skip"),
    ({"endpoint": "*", "fault": "error_503", "after_ms": True}, "after_ms"),
    ({"endpoint": "*", "fault": "latency", "latency_ms": 10**12}, "latency_ms"),
    ({"endpoint": "*", "fault": "latency", "jitter_ms": -5}, "jitter_ms"),
    ({"endpoint": "*", "fault": "hang", "hang_s": 10**9}, "hang_s"),
    ({"endpoint": "*", "fault": "ban", "ban_s": 10**9}, "ban_s"),
    ({"endpoint": "*", "fault": "rate_limit", "retry_after_s": -1}, "retry_after_s"),
    ({"endpoint": "*", "fault": "clock_skew", "skew_ms": 10**12}, "skew_ms"),
    ({"endpoint": "*", "fault": "clock_skew", "skew_ms": "5"}, "skew_ms"),
])
def test_bad_rule_fields_are_refused_by_name(rule, field):
    with pytest.raises(ConfigError) as caught:
        FaultPlan.from_json({"seed": 1, "rules": [rule]})
    assert caught.value.field == f"rules[0].{field}"
    assert str(caught.value).startswith(f"rules[0].{field}: ")


def test_good_rules_are_kept_exactly():
    plan = FaultPlan.from_json({"seed": 3, "rules": [
        drift(amount="0.5", target_account="demo-key"),
        drift(amount=2),
        {"endpoint": "create_order", "fault": "clock_skew", "skew_ms": -30_000},
        {"endpoint": "*", "fault": "error_503", "probability": 1, "count": 0, "account": "a"},
    ]})
    assert plan.rules[0].amount == Decimal("0.5") and plan.rules[1].amount == Decimal(2)
    assert FaultPlan.from_json(plan.to_json()) == plan


def test_rules_built_in_python_are_checked_too():
    with pytest.raises(ConfigError, match="amount"):
        FaultRule("*", "balance_drift", currency="BTC", amount=Decimal("NaN"))
    with pytest.raises(ConfigError, match="account"):
        FaultRule("*", "error_503", account=["x"])  # type: ignore[arg-type]


@pytest.mark.parametrize("data, field", [
    ({"faults": {"rules": [drift(amount="NaN")]}}, "faults.rules[0].amount"),
    ({"faults": {"rules": [drift(currency=7)]}}, "faults.rules[0].currency"),
    ({"faults": []}, "faults"),
    ({"markets": [{"symbol": "BTC/USDT", "tick_size": "NaN", "step_size": "1", "min_qty": "1",
                   "min_notional": "1", "initial_price": "1", "house_level_qty": "1"}]},
     "markets[0].tick_size"),
    ({"markets": [{"symbol": "BTC/USDT", "tick_size": "1", "step_size": "1", "min_qty": "1",
                   "min_notional": "Infinity", "initial_price": "1", "house_level_qty": "1"}]},
     "markets[0].min_notional"),
    ({"markets": 5}, "markets"),
    ({"accounts": {"id": "x"}}, "accounts"),
    ({"accounts": [{"id": "x", "balances": {"BTC": "NaN"}}]}, "accounts[0].balances.BTC"),
    ({"requote_interval_ms": "fast"}, "requote_interval_ms"),
    ({"house_balance_multiple": 0}, "house_balance_multiple"),
    ({"keep_demo_account": "yes"}, "keep_demo_account"),
])
def test_bad_config_values_are_config_errors(data, field):
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data)
    assert caught.value.field == field
