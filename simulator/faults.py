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

import random
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from simulator.errors import ConfigError

__all__ = ["ENDPOINTS", "FAULTS", "FaultDecision", "FaultInjector", "FaultPlan", "FaultRule"]

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


def _opt_nonneg_int(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ConfigError(f"fault rule: {attribute.name} must be an integer >= 0, got {value!r}")


@attrs.frozen(slots=True)
class FaultRule:
    """One fault rule; validated on construction (``ConfigError`` names the bad field)."""

    endpoint: str
    fault: str
    probability: float | None = None
    count: int | None = attrs.field(default=None, validator=_opt_nonneg_int)
    skip: int = attrs.field(default=0, validator=_opt_nonneg_int)
    after_ms: int | None = attrs.field(default=None, validator=_opt_nonneg_int)
    until_ms: int | None = attrs.field(default=None, validator=_opt_nonneg_int)
    account: str | None = None
    latency_ms: int = attrs.field(default=0, validator=_opt_nonneg_int)
    jitter_ms: int = attrs.field(default=0, validator=_opt_nonneg_int)
    retry_after_s: int = attrs.field(default=1, validator=_opt_nonneg_int)
    ban_s: int = attrs.field(default=60, validator=_opt_nonneg_int)
    hang_s: int = attrs.field(default=300, validator=_opt_nonneg_int)
    skew_ms: int = 0
    currency: str | None = None
    amount: Decimal | None = None
    target_account: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise ConfigError(f"fault rule: unknown endpoint {self.endpoint!r}; "
                              f"one of {sorted(ENDPOINTS)}")
        if self.fault not in FAULTS:
            raise ConfigError(f"fault rule: unknown fault {self.fault!r}; one of {sorted(FAULTS)}")
        if self.probability is not None and (
                isinstance(self.probability, bool)
                or not isinstance(self.probability, int | float)
                or not 0 <= self.probability <= 1):
            raise ConfigError(
                f"fault rule: probability must be in [0, 1], got {self.probability!r}")
        if (self.after_ms is not None and self.until_ms is not None
                and self.until_ms <= self.after_ms):
            raise ConfigError("fault rule: until_ms must be greater than after_ms")
        if not isinstance(self.skew_ms, int) or isinstance(self.skew_ms, bool):
            raise ConfigError("fault rule: skew_ms must be an integer")
        if self.fault == "balance_drift":
            if not self.currency or self.amount is None:
                raise ConfigError("fault rule: balance_drift needs currency and amount")
            if not isinstance(self.amount, Decimal) or self.amount <= 0:
                raise ConfigError("fault rule: balance_drift amount must be a positive Decimal")

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
            if not isinstance(data.get(key), str):
                raise ConfigError(f"fault rule: {key!r} is required and must be a string")
        fault = data["fault"]
        generic = {"endpoint", "fault", "probability", "count", "skip", "after_ms", "until_ms",
                   "account"}
        misplaced = set(data) - generic - _PARAMS.get(fault, set())
        if misplaced:
            raise ConfigError(f"fault rule: keys {sorted(misplaced)} do not apply to {fault}")
        values = dict(data)
        if "amount" in values:
            try:
                values["amount"] = Decimal(str(values["amount"]))
            except InvalidOperation:
                raise ConfigError(f"fault rule: amount {values['amount']!r} is not a decimal") \
                    from None
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """JSON form: only the fields that differ from their defaults (plus endpoint/fault)."""
        out: dict[str, Any] = {"endpoint": self.endpoint, "fault": self.fault}
        for f in attrs.fields(type(self)):
            value = getattr(self, f.name)
            if f.name in out or value == f.default:
                continue
            out[f.name] = str(value) if isinstance(value, Decimal) else value
        return out


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
            raise ConfigError("fault plan: seed must be an integer")
        rules = data.get("rules", [])
        if not isinstance(rules, list):
            raise ConfigError("fault plan: rules must be a list")
        parsed = []
        for i, r in enumerate(rules):
            try:
                parsed.append(FaultRule.from_json(r))
            except (ConfigError, TypeError) as exc:
                raise ConfigError(f"rule {i}: {exc}") from None
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
