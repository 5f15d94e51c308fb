"""Deterministic fault injection: rules are data, decisions come from per-rule seeded RNGs.

A ``FaultPlan`` (seed + rules) is installed at a time ``now``; for each request the app asks
``FaultInjector.decide(endpoint, account, now)`` and gets a ``FaultDecision``. Every rule whose
endpoint (or ``*``) and account filter match the request advances its own RNG exactly once,
whether or not it fires, so **the same seed and the same request sequence give the same
faults**, independent of timing, other rules or other endpoints' traffic.

A rule fires when it is inside its window (``after_ms``/``until_ms`` after installation), past
its ``skip`` first matching requests, below its ``count`` of firings, and its RNG draw is below
``probability`` (default 1). Faults:

* ``latency``: delay ``latency_ms`` + uniform jitter in ``[0, jitter_ms]`` (from the rule's RNG).
* ``error_500`` / ``error_502`` / ``error_503`` / ``maintenance``: answer that error, do nothing.
* ``rate_limit``: 429 with ``Retry-After: retry_after_s`` (dialects render their own body).
* ``ban``: 418 now and for every request of any endpoint for ``ban_s`` seconds.
* ``hang``: hold the request, unexecuted, until the client disconnects (at most ``hang_s``).
* ``clock_skew``: the venue's clock reads ``skew_ms`` off for this request's timestamp check.
* ``balance_drift``: move ``amount`` of ``currency`` out of ``account`` (default: the caller)
  to the ``withdrawn`` account before the request runs.
* ``lose_response``: execute the request, then drop the connection without an answer.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs

from simulator.errors import ConfigError
from simulator.model import parse_decimal, show

__all__ = ["ENDPOINTS", "FAULTS", "MAX_DRIFT", "MAX_DURATION_MS", "FaultDecision",
           "FaultInjector", "FaultPlan", "FaultRule"]

ENDPOINTS = frozenset({
    "create_order", "cancel_order", "fetch_order", "fetch_open_orders", "fetch_orders",
    "fetch_my_trades", "fetch_balance", "fetch_ticker", "fetch_order_book", "load_markets",
    "fetch_time", "fetch_trades", "*",
})
"""Logical endpoints a rule can target; each dialect maps its routes onto these."""

ERROR_FAULTS = frozenset({"error_500", "error_502", "error_503", "maintenance", "rate_limit",
                          "ban"})
"""Faults answered by the dialect's ``render_fault`` instead of running the request."""

FAULTS = ERROR_FAULTS | {"latency", "hang", "clock_skew", "balance_drift", "lose_response"}

_PARAMS = {
    "latency": {"latency_ms", "jitter_ms"},
    "rate_limit": {"retry_after_s"},
    "ban": {"ban_s"},
    "hang": {"hang_s"},
    "clock_skew": {"skew_ms"},
    "balance_drift": {"currency", "amount", "target_account"},
}


MAX_DURATION_MS = 86_400_000
"""Longest delay, skew or hold a rule may ask for (one day): beyond it a test has hung."""
MAX_DRIFT = Decimal(10) ** 15
"""Largest ``balance_drift`` amount; with at most ``DRIFT_DECIMALS`` decimals the subtraction
stays exact in Decimal's default 28-digit context, so drifts conserve funds."""
DRIFT_DECIMALS = 12


def _int_in(low: int, high: int | None) -> Any:
    """attrs validator: an integer (``None`` allowed) within ``[low, high]``."""

    def check(instance: object, attribute: attrs.Attribute, value: object) -> None:
        if value is None and attribute.default is None:
            return
        if (not isinstance(value, int) or isinstance(value, bool) or value < low
                or (high is not None and value > high)):
            bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise ConfigError(f"must be an integer {bound}, got {show(value)}", attribute.name)

    return check


def _one_of(names: frozenset[str], what: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute, value: object) -> None:
        if not isinstance(value, str):
            raise ConfigError(f"must be a string, got {show(value)}", attribute.name)
        if value not in names:
            raise ConfigError(f"unknown {what} {show(value)}; one of {sorted(names)}",
                              attribute.name)

    return check


def _opt_name(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value or len(value) > 200):
        raise ConfigError(f"must be a non-empty string, got {show(value)}", attribute.name)


def _probability(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if value is None:
        return
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not 0 <= value <= 1):
        raise ConfigError(f"probability must be a number in [0, 1], got {show(value)}",
                          attribute.name)


def _drift_amount(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if value is None:
        return
    if (not isinstance(value, Decimal) or not value.is_finite() or not 0 < value <= MAX_DRIFT
            or value.as_tuple().exponent < -DRIFT_DECIMALS):  # type: ignore[operator]
        raise ConfigError(f"balance_drift amount must be a finite positive Decimal <= 1E+15 "
                          f"with at most {DRIFT_DECIMALS} decimals, got {show(value)}",
                          attribute.name)


_MS = _int_in(0, MAX_DURATION_MS)
_S = _int_in(0, MAX_DURATION_MS // 1000)
_COUNT = _int_in(0, None)


@attrs.frozen(slots=True)
class FaultRule:
    """One fault rule; every field is validated on construction (``ConfigError`` names it)."""

    endpoint: str = attrs.field(validator=_one_of(ENDPOINTS, "endpoint"))
    fault: str = attrs.field(validator=_one_of(FAULTS, "fault"))
    probability: float | None = attrs.field(default=None, validator=_probability)
    count: int | None = attrs.field(default=None, validator=_COUNT)
    skip: int = attrs.field(default=0, validator=_COUNT)
    after_ms: int | None = attrs.field(default=None, validator=_COUNT)
    until_ms: int | None = attrs.field(default=None, validator=_COUNT)
    account: str | None = attrs.field(default=None, validator=_opt_name)
    latency_ms: int = attrs.field(default=0, validator=_MS)
    jitter_ms: int = attrs.field(default=0, validator=_MS)
    retry_after_s: int = attrs.field(default=1, validator=_S)
    ban_s: int = attrs.field(default=60, validator=_S)
    hang_s: int = attrs.field(default=300, validator=_S)
    skew_ms: int = attrs.field(default=0, validator=_int_in(-MAX_DURATION_MS, MAX_DURATION_MS))
    currency: str | None = attrs.field(default=None, validator=_opt_name)
    amount: Decimal | None = attrs.field(default=None, validator=_drift_amount)
    target_account: str | None = attrs.field(default=None, validator=_opt_name)

    def __attrs_post_init__(self) -> None:
        if (self.after_ms is not None and self.until_ms is not None
                and self.until_ms <= self.after_ms):
            raise ConfigError("until_ms must be greater than after_ms", "until_ms")
        if self.fault == "balance_drift" and (self.currency is None or self.amount is None):
            raise ConfigError("balance_drift needs currency and amount",
                              "currency" if self.currency is None else "amount")

    @classmethod
    def from_json(cls, data: Any) -> FaultRule:
        """Build a rule from its JSON form; unknown or misplaced keys are rejected by name."""
        if not isinstance(data, dict):
            raise ConfigError(f"fault rule must be an object, got {type(data).__name__}")
        known = {f.name for f in attrs.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"fault rule: unknown keys {sorted(unknown)}")
        for key in ("endpoint", "fault"):
            if key not in data:
                raise ConfigError("is required", key)
        values = dict(data)
        if "amount" in values:
            values["amount"] = parse_decimal(values["amount"], "amount")
        rule = cls(**values)
        misplaced = set(data) - _GENERIC - _PARAMS.get(rule.fault, set())
        if misplaced:
            raise ConfigError(f"fault rule: keys {sorted(misplaced)} do not apply to "
                              f"{rule.fault}", sorted(misplaced)[0])
        return rule

    def to_json(self) -> dict[str, Any]:
        """JSON form: only the fields that differ from their defaults (plus endpoint/fault)."""
        out: dict[str, Any] = {"endpoint": self.endpoint, "fault": self.fault}
        for f in attrs.fields(type(self)):
            value = getattr(self, f.name)
            if f.name in out or value == f.default:
                continue
            out[f.name] = str(value) if isinstance(value, Decimal) else value
        return out


_GENERIC = frozenset({"endpoint", "fault", "probability", "count", "skip", "after_ms",
                      "until_ms", "account"})


def _as_rules(rules: Iterable[FaultRule]) -> tuple[FaultRule, ...]:
    return tuple(rules)


@attrs.frozen(slots=True)
class FaultPlan:
    """A seed and an ordered list of rules: what ``POST /_sim/faults`` installs."""

    seed: int = 0
    rules: tuple[FaultRule, ...] = attrs.field(default=(), converter=_as_rules)

    @classmethod
    def from_json(cls, data: Any) -> FaultPlan:
        if not isinstance(data, dict):
            raise ConfigError("fault plan must be an object {\"seed\": int, \"rules\": [...]}")
        unknown = set(data) - {"seed", "rules"}
        if unknown:
            raise ConfigError(f"fault plan: unknown keys {sorted(unknown)}")
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"fault plan: seed must be an integer, got {show(seed)}", "seed")
        rules = data.get("rules", [])
        if not isinstance(rules, list):
            raise ConfigError("fault plan: rules must be a list", "rules")
        parsed = []
        for i, r in enumerate(rules):
            try:
                parsed.append(FaultRule.from_json(r))
            except ConfigError as exc:
                raise exc.within(f"rules[{i}]") from None
        return cls(seed, tuple(parsed))

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [r.to_json() for r in self.rules]}


@attrs.frozen(slots=True)
class FaultDecision:
    """What to do with one request. ``error`` is the answering fault (or None) and its rule."""

    delay_ms: int = 0
    skew_ms: int = 0
    error: str | None = None
    error_rule: FaultRule | None = None
    retry_after_s: int | None = None
    hang_s: int | None = None
    lose_response: bool = False
    drifts: tuple[FaultRule, ...] = ()

    @property
    def is_clean(self) -> bool:
        return self == _CLEAN


_CLEAN = FaultDecision()


class _RuleState:
    __slots__ = ("rule", "rng", "seen", "fired")

    def __init__(self, rule: FaultRule, seed: int, index: int) -> None:
        self.rule = rule
        self.rng = random.Random(f"{seed}/{index}/{rule.endpoint}/{rule.fault}")
        self.seen = 0
        self.fired = 0


class FaultInjector:
    """Holds the installed plan and per-rule counters; pure given the ``now`` it is passed."""

    def __init__(self) -> None:
        self.install(FaultPlan(), now=0)

    def install(self, plan: FaultPlan, now: int) -> None:
        """Replace the rule set (and forget any ban): counters and RNGs restart from the seed."""
        self.plan = plan
        self.installed_at = now
        self.banned_until = 0
        self._states = [_RuleState(r, plan.seed, i) for i, r in enumerate(plan.rules)]

    def clear(self, now: int) -> None:
        self.install(FaultPlan(), now)

    def stats(self) -> list[dict[str, Any]]:
        """Per rule: matching requests seen and times fired (for ``GET /_sim/faults``)."""
        return [{"seen": s.seen, "fired": s.fired} for s in self._states]

    def decide(self, endpoint: str, account: str | None, now: int) -> FaultDecision:
        if not self._states and now >= self.banned_until:
            return _CLEAN
        delay = skew = 0
        error = error_rule = retry_after = hang = None
        lose = False
        drifts = []
        elapsed = now - self.installed_at
        for st in self._states:
            rule = st.rule
            if rule.endpoint != "*" and rule.endpoint != endpoint:
                continue
            if rule.account is not None and rule.account != account:
                continue
            draw = st.rng.random()
            jitter_draw = st.rng.random()
            st.seen += 1
            if st.seen <= rule.skip:
                continue
            if rule.after_ms is not None and elapsed < rule.after_ms:
                continue
            if rule.until_ms is not None and elapsed >= rule.until_ms:
                continue
            if rule.count is not None and st.fired >= rule.count:
                continue
            if rule.probability is not None and draw >= rule.probability:
                continue
            st.fired += 1
            fault = rule.fault
            if fault == "latency":
                delay += rule.latency_ms + int(jitter_draw * (rule.jitter_ms + 1))
            elif fault == "clock_skew":
                skew += rule.skew_ms
            elif fault == "balance_drift":
                drifts.append(rule)
            elif fault == "lose_response":
                lose = True
            elif fault == "hang":
                hang = rule.hang_s if hang is None else hang
            elif error is None:
                error, error_rule = fault, rule
                if fault == "rate_limit":
                    retry_after = rule.retry_after_s
                elif fault == "ban":
                    self.banned_until = max(self.banned_until, now + rule.ban_s * 1000)
        if error is None and now < self.banned_until:
            error = "ban"
        if error == "ban":
            retry_after = max(1, -(-(self.banned_until - now) // 1000))
        return FaultDecision(delay, skew, error, error_rule, retry_after, hang, lose,
                             tuple(drifts))
