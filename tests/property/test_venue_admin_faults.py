"""Random JSON bodies to ``POST /_sim/faults``: the venue answers 200 (installed) or 400 (refused,
the installed rule set unchanged), never a 500 or a dropped connection."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.faults import ENDPOINTS, FAULTS, FaultRule
from tests.helpers_venue import admin, install_faults, running_venue

FIELDS = [f.name for f in FaultRule.__attrs_attrs__]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from(["NaN", "Infinity", "-1", "0", "0.5", "1e400", "1E-30", "BTC", "demo-key",
                     "ghost", *sorted(ENDPOINTS), *sorted(FAULTS)]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8)
odd_values = st.one_of(scalars, st.lists(scalars, max_size=2),
                       st.dictionaries(st.text(max_size=3), scalars, max_size=2), json_values)
VALID = {
    "probability": st.floats(0, 1), "count": st.integers(0, 5), "skip": st.integers(0, 3),
    "after_ms": st.integers(0, 10), "until_ms": st.integers(11, 100),
    "account": st.sampled_from(["demo-key", "demo-token"]),
    "latency_ms": st.integers(0, 5), "jitter_ms": st.integers(0, 5),
    "retry_after_s": st.integers(0, 5), "ban_s": st.integers(0, 5), "hang_s": st.integers(0, 5),
    "skew_ms": st.integers(-5, 5), "currency": st.sampled_from(["BTC", "USDT"]),
    "amount": st.sampled_from(["0.5", "1", 2]), "target_account": st.just("demo-key"),
}
PARAMS = {"latency": ["latency_ms", "jitter_ms"], "rate_limit": ["retry_after_s"],
          "ban": ["ban_s"], "hang": ["hang_s"], "clock_skew": ["skew_ms"],
          "balance_drift": ["currency", "amount", "target_account"]}
GENERIC = ["probability", "count", "skip", "after_ms", "until_ms", "account"]


@st.composite
def rule_bodies(draw) -> dict:
    """A valid rule, then (usually) one field replaced by an arbitrary JSON value."""
    fault = draw(st.sampled_from(sorted(FAULTS)))
    rule = {"endpoint": draw(st.sampled_from(sorted(ENDPOINTS))), "fault": fault}
    for name in draw(st.lists(st.sampled_from(GENERIC + PARAMS.get(fault, [])), unique=True)):
        rule[name] = draw(VALID[name])
    if fault == "balance_drift":
        rule.setdefault("currency", "BTC")
        rule.setdefault("amount", "1")
    if draw(st.integers(0, 4)):
        field = draw(st.one_of(st.sampled_from(sorted(rule)), st.sampled_from(FIELDS)))
        rule[field] = draw(odd_values)
    return rule


plan_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"seed": st.integers(0, 9), "rules": st.lists(rule_bodies(),
                                                                        min_size=1, max_size=3)}),
    st.fixed_dictionaries({}, optional={"seed": st.one_of(st.integers(), json_values),
                                        "rules": st.lists(rule_bodies(), max_size=3)}),
)

BASELINE = [{"endpoint": "fetch_ticker", "fault": "latency", "latency_ms": 1}]


@pytest.fixture(scope="module")
def venue():
    with running_venue(seed=6) as handle:
        yield handle


def post_raw(url: str, raw: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url + "/_sim/faults", data=raw, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=plan_bodies)
def test_random_fault_plans_are_installed_or_refused_cleanly(venue, body):
    installed = install_faults(venue.url, BASELINE, seed=4)
    status, answer = post_raw(venue.url, json.dumps(body).encode())
    assert status in (200, 400), answer
    if status == 400:
        assert isinstance(answer["error"], str) and answer["error"]
        assert admin(venue.url, "/_sim/faults") == installed
    else:
        assert admin(venue.url, "/_sim/faults")["rules"] == answer["rules"]
