"""Node configuration: a TOML file read into frozen attrs sections, secrets from the environment.

The attrs defaults below ARE the defaults; ``config/default.toml`` documents them and a test
keeps the two equal. Loading is strict: an unknown key, a wrong type or an out-of-range value
raises :class:`ConfigError` naming the key (``supervision.intensity``) and what was expected,
before anything starts. API keys are never read from the file: the file names environment
variables, and their values are wrapped in :class:`Secret` so they never show in a repr or log.
"""

from __future__ import annotations

import hmac
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "ConfigError",
    "Secret",
    "Credentials",
    "NodeConfig",
    "LoggingConfig",
    "BackoffConfig",
    "SupervisionConfig",
    "VenueConfig",
    "PoolConfig",
    "BreakerSettings",
    "RateLimitConfig",
    "CacheConfig",
    "HttpConfig",
    "TradingConfig",
    "AlertRulesConfig",
    "AlertsConfig",
    "HealthConfig",
    "Config",
    "LOG_LEVELS",
    "load_config",
]

LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")

#: Field metadata key: False for fields that are not read from the file.
_FROM_FILE = "ironclad.config.from_file"
#: Field metadata key: False when a rejected value must not be echoed in the error (someone
#: may have pasted the secret itself where the variable's *name* belongs).
_ECHO = "ironclad.config.echo"
#: Keys people write when they try to put a secret in the file.
_SECRET_KEYS = frozenset({"api_key", "apikey", "api_secret", "secret", "token", "password"})


class ConfigError(ValueError):
    """Raised when the configuration is unusable: names the key and what was expected."""

    def __init__(self, key: str, expected: str, got: Any = None, *, source: str = "") -> None:
        self.key = key
        self.expected = expected
        self.got = got
        self.source = source
        where = f" in {source}" if source else ""
        got_text = "" if got is None else f", got {got!r} ({type(got).__name__})"
        super().__init__(f"config key {key!r}{where}: expected {expected}{got_text}")


class Secret:
    """A secret string that never shows itself in ``repr``/``str``; ``reveal()`` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("Secret: expected a non-empty str")
        self._value = value

    def reveal(self) -> str:
        """The secret itself: pass it to the client that needs it, never to a log."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


# -- field validators: raise ValueError("expected ..."); the loader adds the key -------------

_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,15}\Z")
_EXCHANGE_ID = re.compile(r"[a-z][a-z0-9_]*\Z")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*\Z")


def _matches(pattern: re.Pattern[str], expected: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if not pattern.match(value):
            raise ValueError(expected)

    return check


def _at_least(minimum: float, *, strict: bool = False) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise ValueError(f"a finite number {'>' if strict else '>='} {minimum}")

    return check


def _between(low: float, high: float) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if not low <= value <= high:
            raise ValueError(f"a number between {low} and {high}")

    return check


def _one_of(choices: tuple[str, ...]) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if value not in choices:
            raise ValueError(f"one of {', '.join(choices)}")

    return check


_env_name = _matches(_ENV_NAME, "an environment variable name (A-Z, 0-9, _), not a secret")


def _http_url(_instance: Any, _attribute: Any, value: Any) -> None:
    if value is not None and not re.match(r"https?://[^\s/]+", value):
        raise ValueError("an http:// or https:// URL")


# -- sections -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class NodeConfig:
    """Identity and storage of this node."""

    #: Node identity; later part of every client order id, so short and plain.
    name: str = attrs.field(
        default="ironclad",
        validator=_matches(_NODE_NAME, "1-16 characters: letters, digits, '-' or '_'"),
    )
    #: Where journal, ledger, alerts and cache live (relative paths: to the working dir).
    data_dir: Path = attrs.field(default=Path("data"))


@attrs.frozen(kw_only=True)
class LoggingConfig:
    """What is logged and how."""

    level: str = attrs.field(default="INFO", validator=_one_of(LOG_LEVELS))
    #: One JSON object per line (for log shippers) instead of human-readable text.
    json: bool = False


@attrs.frozen(kw_only=True)
class BackoffConfig:
    """Delay between restarts of the same child: initial * factor**n, capped, jittered."""

    initial: float = attrs.field(default=0.05, validator=_at_least(0))
    factor: float = attrs.field(default=2.0, validator=_at_least(1))
    max: float = attrs.field(default=5.0, validator=_at_least(0))
    jitter: float = attrs.field(default=0.2, validator=_between(0, 1))
    reset_after: float = attrs.field(default=30.0, validator=_at_least(0, strict=True))

    def __attrs_post_init__(self) -> None:
        if self.max < self.initial:
            raise ConfigError(
                "supervision.backoff.max", f"a number >= initial ({self.initial})", self.max
            )


@attrs.frozen(kw_only=True)
class SupervisionConfig:
    """Restart intensity of every supervisor: at most ``intensity`` restarts in ``period`` s."""

    intensity: int = attrs.field(default=3, validator=_at_least(0))
    period: float = attrs.field(default=5.0, validator=_at_least(0, strict=True))
    backoff: BackoffConfig = attrs.field(factory=BackoffConfig)


@attrs.frozen(kw_only=True)
class VenueConfig:
    """The exchange account this node trades on; credentials come from the environment."""

    #: ccxt exchange id (or "nobitex" for our adapter).
    exchange: str = attrs.field(
        default="binance",
        validator=_matches(_EXCHANGE_ID, "a lowercase exchange id such as 'binance'"),
    )
    #: Base URL of the venue; unset means the embedded local venue (simulator).
    url: str | None = attrs.field(default=None, validator=_http_url)
    api_key_env: str = attrs.field(
        default="IRONCLAD_API_KEY", validator=_env_name, metadata={_ECHO: False}
    )
    api_secret_env: str = attrs.field(
        default="IRONCLAD_API_SECRET", validator=_env_name, metadata={_ECHO: False}
    )
    token_env: str = attrs.field(
        default="IRONCLAD_API_TOKEN", validator=_env_name, metadata={_ECHO: False}
    )
    #: Short name of this account in actor names (``venue:<name>/gatekeeper``) and requests.
    name: str = attrs.field(
        default="sim",
        validator=_matches(_NODE_NAME, "1-16 characters: letters, digits, '-' or '_'"),
    )
    #: HTTP timeout of one exchange call in milliseconds (a request's deadline may cut it shorter).
    timeout_ms: int = attrs.field(default=10_000, validator=_at_least(1))
    #: Symbol for the workers' health check on venues without ``fetch_time``.
    health_symbol: str = "BTC/USDT"


@attrs.frozen(kw_only=True)
class PoolConfig:
    """The connection pool: worker count, bounded queues per bulkhead, worker upkeep."""

    #: Worker actors, each with its own ccxt client (one HTTP session): the concurrency.
    workers: int = attrs.field(default=4, validator=_at_least(1))
    #: Queued market-data requests beyond which new ones are answered Overloaded.
    market_data_queue: int = attrs.field(default=256, validator=_at_least(1))
    #: Queued trading requests beyond which new ones are answered Overloaded.
    trading_queue: int = attrs.field(default=64, validator=_at_least(1))
    #: Workers market data may never occupy (kept for orders); capped at workers - 1.
    reserved_for_trading: int = attrs.field(default=1, validator=_at_least(0))
    #: Seconds between a worker's health checks while idle.
    health_interval: float = attrs.field(default=30.0, validator=_at_least(0, strict=True))
    #: Consecutive network failures after which a worker rebuilds its ccxt client.
    rebuild_after: int = attrs.field(default=3, validator=_at_least(1))
    #: Times an idempotent request is retried on another worker after its worker crashed.
    crash_retries: int = attrs.field(default=1, validator=_at_least(0))


@attrs.frozen(kw_only=True)
class BreakerSettings:
    """Circuit breakers of the venue: one per category (and per method if ``per_method``)."""

    #: "count" (the last window_size calls) or "time" (the last window_size seconds).
    window_kind: str = attrs.field(default="count", validator=_one_of(("count", "time")))
    window_size: float = attrs.field(default=20.0, validator=_at_least(0, strict=True))
    minimum_calls: int = attrs.field(default=10, validator=_at_least(1))
    failure_rate_threshold: float = attrs.field(default=0.5, validator=_between(0, 1))
    slow_call_duration: float = attrs.field(default=5.0, validator=_at_least(0, strict=True))
    slow_call_rate_threshold: float = attrs.field(default=1.0, validator=_between(0, 1))
    half_open_probes: int = attrs.field(default=3, validator=_at_least(1))
    half_open_timeout: float = attrs.field(default=60.0, validator=_at_least(0, strict=True))
    #: Open time: open_base * open_growth^n seconds, at most open_cap, minus up to jitter.
    open_base: float = attrs.field(default=5.0, validator=_at_least(0, strict=True))
    open_growth: float = attrs.field(default=2.0, validator=_at_least(1))
    open_cap: float = attrs.field(default=300.0, validator=_at_least(0, strict=True))
    jitter: float = attrs.field(default=0.1, validator=_between(0, 0.99))
    #: Also keep one breaker per method (evicted after idle_ttl seconds unused).
    per_method: bool = False
    idle_ttl: float = attrs.field(default=600.0, validator=_at_least(0, strict=True))


@attrs.frozen(kw_only=True)
class RateLimitConfig:
    """The account's shared token bucket (ccxt's per-client limiter is off)."""

    #: Fraction of the venue's allowance ever used.
    safety_margin: float = attrs.field(default=0.8, validator=_between(0.01, 1))
    #: Seconds of allowance that may be spent in one burst.
    burst_seconds: float = attrs.field(default=1.0, validator=_at_least(0, strict=True))
    #: Cost units per second; 0 means derive it from ccxt's ``rateLimit``.
    units_per_second: float = attrs.field(default=0.0, validator=_at_least(0))


@attrs.frozen(kw_only=True)
class CacheConfig:
    """Market-data cache on disk (``<data_dir>/cache``), read while a breaker is open."""

    enabled: bool = True
    markets_ttl: float = attrs.field(default=3600.0, validator=_at_least(0, strict=True))
    ticker_ttl: float = attrs.field(default=2.0, validator=_at_least(0, strict=True))
    order_book_ttl: float = attrs.field(default=1.0, validator=_at_least(0, strict=True))
    trades_ttl: float = attrs.field(default=5.0, validator=_at_least(0, strict=True))
    #: How long past its TTL an entry may still be served stale.
    max_stale: float = attrs.field(default=3600.0, validator=_at_least(0))


_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@attrs.frozen(kw_only=True)
class HttpConfig:
    """The control API's HTTP server: loopback only (it places orders and has no auth)."""

    host: str = attrs.field(default="127.0.0.1", validator=_one_of(_LOOPBACK_HOSTS))
    #: TCP port; 0 picks a free port (the chosen one is logged in the "http: serving" line).
    port: int = attrs.field(default=8080, validator=_between(0, 65535))
    #: Seconds a request waits for the actor that answers it before 504.
    ask_timeout: float = attrs.field(default=10.0, validator=_at_least(0, strict=True))
    #: Seconds POST /reconcile waits for the reconciliation report before 504.
    reconcile_timeout: float = attrs.field(default=60.0, validator=_at_least(0, strict=True))


def _decimal_text(_instance: Any, _attribute: Any, value: Any) -> None:
    try:
        number = Decimal(value)
    except (ArithmeticError, ValueError):
        raise ValueError("a decimal number as a string, such as \"0.0001\"") from None
    if not number.is_finite() or number < 0:
        raise ValueError("a finite decimal >= 0 as a string")


@attrs.frozen(kw_only=True)
class TradingConfig:
    """The trading subtree: order protocol, in-flight checks, reconciliation (docs/orders.md)."""

    #: Start the trading subtree (ledger, transactions, reconciler).
    enabled: bool = True
    #: Seconds after a send before the venue's "no such order" is trusted (then resubmit).
    absence_grace: float = attrs.field(default=30.0, validator=_at_least(0, strict=True))
    #: Submissions of one order (the first and resubmissions after confirmed absence).
    max_submit_attempts: int = attrs.field(default=3, validator=_at_least(1))
    #: Deadline of one exchange call made by the trading actors, in seconds.
    call_timeout: float = attrs.field(default=10.0, validator=_at_least(0, strict=True))
    #: Seconds between in-flight cycles (orders without a definitive state are re-queried).
    inflight_tick: float = attrs.field(default=0.5, validator=_at_least(0, strict=True))
    #: Backoff between lookups of one order: initial seconds, times factor, at most max.
    inflight_initial: float = attrs.field(default=1.0, validator=_at_least(0, strict=True))
    inflight_factor: float = attrs.field(default=2.0, validator=_at_least(1))
    inflight_max: float = attrs.field(default=30.0, validator=_at_least(0, strict=True))
    #: Lookups per in-flight cycle at most (the venue's rate limits apply).
    inflight_cap: int = attrs.field(default=10, validator=_at_least(1))
    #: Balance differences adjusted rather than alerted: absolute amount, or relative to the
    #: larger total (decimal strings; "0" means an exact match only).
    tolerance_absolute: str = attrs.field(default="0", validator=_decimal_text)
    tolerance_relative: str = attrs.field(default="0", validator=_decimal_text)
    #: Freeze new orders in a currency whose difference is beyond tolerance (cancels still go).
    freeze_on_discrepancy: bool = True
    #: Seconds between periodic reconciliations; start-up retries every reconcile_retry s.
    reconcile_interval: float = attrs.field(default=60.0, validator=_at_least(0, strict=True))
    reconcile_retry: float = attrs.field(default=5.0, validator=_at_least(0, strict=True))
    #: How far back (seconds) reconciliation reads the account's trades.
    trades_lookback: float = attrs.field(default=86400.0, validator=_at_least(0, strict=True))

    def __attrs_post_init__(self) -> None:
        if self.inflight_max < self.inflight_initial:
            raise ConfigError("trading.inflight_max",
                              f"a number >= inflight_initial ({self.inflight_initial})",
                              self.inflight_max)


@attrs.frozen(kw_only=True)
class AlertRulesConfig:
    """Thresholds of the alert rules (docs/operations.md lists what each alert means)."""

    #: A breaker alert fires once the breaker stayed open this many seconds.
    breaker_open_seconds: float = attrs.field(default=30.0, validator=_at_least(0))
    #: Restart storm: more than restart_storm_count restarts under one supervisor within
    #: restart_storm_window seconds; over when the window holds restart_storm_clear or fewer.
    restart_storm_count: int = attrs.field(default=5, validator=_at_least(0))
    restart_storm_window: float = attrs.field(default=60.0, validator=_at_least(0, strict=True))
    restart_storm_clear: int = attrs.field(default=0, validator=_at_least(0))
    #: A ledger discrepancy beyond its tolerance fires; it clears at or below this fraction.
    ledger_clear_ratio: float = attrs.field(default=0.5, validator=_between(0, 1))
    #: An order whose outcome stays unknown longer than this many seconds fires.
    order_unknown_seconds: float = attrs.field(default=60.0, validator=_at_least(0))
    #: A rate-limit pause longer than this many seconds fires (it clears when the pause ends).
    rate_limit_pause_seconds: float = attrs.field(default=10.0, validator=_at_least(0))
    #: A component degraded or down for this many seconds fires. Keep it above
    #: breaker_open_seconds (plus a health poll), so a venue's breaker-open alert fires first
    #: and inhibits the venue's health alert instead of trailing it.
    health_for_seconds: float = attrs.field(default=40.0, validator=_at_least(0))

    def __attrs_post_init__(self) -> None:
        if self.restart_storm_clear > self.restart_storm_count:
            raise ConfigError("alerts.rules.restart_storm_clear",
                              f"a number <= restart_storm_count ({self.restart_storm_count})",
                              self.restart_storm_clear)


@attrs.frozen(kw_only=True)
class AlertsConfig:
    """The alerts subtree: channels, noise control, delivery (docs/operations.md)."""

    #: Start the alerts subtree (alert manager and one actor per channel).
    enabled: bool = True
    #: Channel URLs (apprise: json://, slack://, tgram://, discord://, mailto://...; plus
    #: log:// and jsonl:///path); "name=URL" names a channel. Not shown in logs (secrets).
    channels: tuple[str, ...] = attrs.field(default=("log://",), repr=False)
    #: Grouping: first notification of a group after group_wait s, then at most one per
    #: group_interval s; an unacknowledged firing alert is repeated every repeat_interval s.
    group_wait: float = attrs.field(default=30.0, validator=_at_least(0))
    group_interval: float = attrs.field(default=300.0, validator=_at_least(0, strict=True))
    repeat_interval: float = attrs.field(default=3600.0, validator=_at_least(0, strict=True))
    #: An alert changing state flap_changes times within flap_window s is flapping.
    flap_changes: int = attrs.field(default=4, validator=_at_least(2))
    flap_window: float = attrs.field(default=600.0, validator=_at_least(0, strict=True))
    #: Seconds between evaluations of the alert timers.
    evaluation_interval: float = attrs.field(default=1.0, validator=_at_least(0, strict=True))
    #: Per channel: at least throttle s between messages (queued notifications are merged).
    throttle: float = attrs.field(default=5.0, validator=_at_least(0))
    #: Per channel: send attempts per notification, backoff retry_initial * retry_factor^n
    #: seconds capped at retry_max.
    retry_attempts: int = attrs.field(default=5, validator=_at_least(1))
    retry_initial: float = attrs.field(default=2.0, validator=_at_least(0))
    retry_factor: float = attrs.field(default=2.0, validator=_at_least(1))
    retry_max: float = attrs.field(default=60.0, validator=_at_least(0))
    #: Per channel breaker: opens when half of the last breaker_window sends failed (at least
    #: 2), for breaker_open_seconds (doubling per reopening, at most 10x).
    breaker_window: int = attrs.field(default=4, validator=_at_least(2))
    breaker_open_seconds: float = attrs.field(default=30.0, validator=_at_least(0, strict=True))
    #: A notification without a final result on a channel is handed to it again after this
    #: many seconds without news (and at every start).
    redispatch_after: float = attrs.field(default=30.0, validator=_at_least(0, strict=True))
    rules: AlertRulesConfig = attrs.field(factory=AlertRulesConfig)


@attrs.frozen(kw_only=True)
class HealthConfig:
    """The health actor: how often it polls the components and where degraded begins."""

    #: Start the health actor (it also serves the metrics behind GET /metrics).
    enabled: bool = True
    #: Seconds between polls of every component.
    poll_interval: float = attrs.field(default=2.0, validator=_at_least(0, strict=True))
    #: Seconds one poll waits for the components' answers; a silent component is down.
    ask_timeout: float = attrs.field(default=1.0, validator=_at_least(0, strict=True))
    #: A bulkhead queue filled to this fraction of its bound degrades the pool.
    queue_degraded_ratio: float = attrs.field(default=0.8, validator=_between(0.01, 1))
    #: Restarts within a supervisor's intensity period from which its subtree is degraded
    #: (0: never for restarts alone).
    restarts_degraded: int = attrs.field(default=1, validator=_at_least(0))
    #: In-flight orders overdue for a lookup (journal lag) from which trading is degraded.
    journal_lag_degraded: int = attrs.field(default=1, validator=_at_least(0))
    #: A successful reconciliation older than this many seconds degrades the reconciler.
    reconciliation_max_age: float = attrs.field(default=300.0, validator=_at_least(0, strict=True))


@attrs.frozen(kw_only=True)
class Credentials:
    """Venue secrets read from the environment variables named in :class:`VenueConfig`."""

    api_key: Secret | None = attrs.field(default=None, repr=False)
    api_secret: Secret | None = attrs.field(default=None, repr=False)
    token: Secret | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_env(cls, venue: VenueConfig, env: Mapping[str, str]) -> Credentials:
        """Read the variables ``venue`` names; an unset or empty variable means no secret."""

        def read(name: str) -> Secret | None:
            value = env.get(name, "")
            return Secret(value) if value else None

        return cls(
            api_key=read(venue.api_key_env),
            api_secret=read(venue.api_secret_env),
            token=read(venue.token_env),
        )

    def values(self) -> tuple[str, ...]:
        """The revealed secrets, for the log redaction filter only."""
        return tuple(s.reveal() for s in (self.api_key, self.api_secret, self.token) if s)


@attrs.frozen(kw_only=True)
class Config:
    """The whole node configuration (every section has all its defaults)."""

    node: NodeConfig = attrs.field(factory=NodeConfig)
    logging: LoggingConfig = attrs.field(factory=LoggingConfig)
    supervision: SupervisionConfig = attrs.field(factory=SupervisionConfig)
    venue: VenueConfig = attrs.field(factory=VenueConfig)
    pool: PoolConfig = attrs.field(factory=PoolConfig)
    breaker: BreakerSettings = attrs.field(factory=BreakerSettings)
    ratelimit: RateLimitConfig = attrs.field(factory=RateLimitConfig)
    cache: CacheConfig = attrs.field(factory=CacheConfig)
    http: HttpConfig = attrs.field(factory=HttpConfig)
    trading: TradingConfig = attrs.field(factory=TradingConfig)
    alerts: AlertsConfig = attrs.field(factory=AlertsConfig)
    health: HealthConfig = attrs.field(factory=HealthConfig)
    credentials: Credentials = attrs.field(factory=Credentials, metadata={_FROM_FILE: False})

    def with_overrides(
        self,
        *,
        data_dir: Path | None = None,
        log_level: str | None = None,
        log_json: bool | None = None,
        exchange: str | None = None,
        venue_url: str | None = None,
        http_port: int | None = None,
    ) -> Config:
        """This config with the command-line overrides that were given (None = keep).

        Each value is checked as if it came from the file (ConfigError names the key).
        """
        node, logging, venue, http = self.node, self.logging, self.venue, self.http
        if exchange is not None:
            value = _check_field(VenueConfig, "exchange", exchange, "venue.exchange", "")
            venue = attrs.evolve(venue, exchange=value)
        if venue_url is not None:
            value = _check_field(VenueConfig, "url", venue_url, "venue.url", "")
            venue = attrs.evolve(venue, url=value)
        if http_port is not None:
            value = _check_field(HttpConfig, "port", http_port, "http.port", "")
            http = attrs.evolve(http, port=value)
        if data_dir is not None:
            node = attrs.evolve(node, data_dir=Path(data_dir))
        if log_level is not None:
            value = _check_field(LoggingConfig, "level", log_level.upper(), "logging.level", "")
            logging = attrs.evolve(logging, level=value)
        if log_json is not None:
            logging = attrs.evolve(logging, json=log_json)
        return attrs.evolve(self, node=node, logging=logging, venue=venue, http=http)


# -- loading --------------------------------------------------------------------------------


def _describe(kind: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    if kind in names:
        return names[kind]
    if kind is Path:
        return "a path string"
    if attrs.has(kind):
        return "a table"
    if typing.get_origin(kind) is tuple:
        return "a list of strings"
    options = [a for a in typing.get_args(kind) if a is not type(None)]
    if len(options) == 1:
        return f"{_describe(options[0])} (or the key left out)"
    return str(kind)


def _check_type(kind: Any, value: Any) -> Any:
    """``value`` converted to ``kind`` if it has that TOML type; raise TypeError otherwise."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return _check_type(options[0], value)
    if typing.get_origin(kind) is tuple:  # only tuple[str, ...] fields exist
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise TypeError(_describe(kind))
        return tuple(value)
    ok = {
        str: isinstance(value, str),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        bool: isinstance(value, bool),
        Path: isinstance(value, str) and bool(value),
    }.get(kind)
    if ok is None:
        raise AssertionError(f"config field type {kind!r} is not supported by the loader")
    if not ok:
        raise TypeError(_describe(kind))
    if kind is float:
        return float(value)
    if kind is Path:
        return Path(value)
    return value


def _check_field(cls: type, name: str, value: Any, key: str, source: str) -> Any:
    attrs.resolve_types(cls)
    field = attrs.fields_dict(cls)[name]
    shown = value if field.metadata.get(_ECHO, True) else None
    try:
        value = _check_type(field.type, value)
    except TypeError as error:
        raise ConfigError(key, str(error), shown, source=source) from None
    if field.validator is not None:
        try:
            field.validator(None, field, value)
        except ValueError as error:
            raise ConfigError(key, str(error), shown, source=source) from None
    return value


def _load_section(cls: type, table: Mapping[str, Any], prefix: str, source: str) -> Any:
    attrs.resolve_types(cls)
    fields = {f.name: f for f in attrs.fields(cls) if f.metadata.get(_FROM_FILE, True) is not False}
    for key in table:
        if key.lower() in _SECRET_KEYS:
            raise ConfigError(
                f"{prefix}{key}",
                "no secret in the config file: set it in the environment variable named by "
                "venue.api_key_env, venue.api_secret_env or venue.token_env",
                source=source,
            )
        if key not in fields:
            raise ConfigError(
                f"{prefix}{key}", f"one of the known keys: {', '.join(fields)}", source=source
            )
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in table:
            continue
        key = f"{prefix}{name}"
        if attrs.has(field.type):
            if not isinstance(table[name], dict):
                raise ConfigError(key, "a table", table[name], source=source)
            values[name] = _load_section(field.type, table[name], f"{key}.", source)
        else:
            values[name] = _check_field(cls, name, table[name], key, source)
    try:
        return attrs.evolve(cls(), **values)
    except ConfigError as error:  # a cross-field check: add where the value came from
        raise ConfigError(error.key, error.expected, error.got, source=source) from None


def load_config(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (None: defaults only) and the secrets from ``env`` (default: os.environ).

    Raises :class:`ConfigError` for an unreadable file, invalid TOML, an unknown key, a value
    of the wrong type or out of range; nothing is half-applied.
    """
    table: dict[str, Any] = {}
    source = ""
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as file:
                table = tomllib.load(file)
        except OSError as error:
            raise ConfigError("--config", "a readable TOML file", source=source) from error
        except tomllib.TOMLDecodeError as error:
            raise ConfigError("--config", f"valid TOML ({error})", source=source) from None
    config = _load_section(Config, table, "", source)
    credentials = Credentials.from_env(config.venue, os.environ if env is None else env)
    return attrs.evolve(config, credentials=credentials)
