"""Errors raised by the gateway cores; each is raised for misuse or a refused request, never for
an outcome the protocol expects (those are values: `Rejected`, `Wait`, `Cached`)."""

from __future__ import annotations


class GatewayError(Exception):
    """Raised when a gateway core refuses a call; the core's state is unchanged."""


class InvalidConfigError(GatewayError, ValueError):
    """Raised when a config value is invalid; `field` names the culprit."""

    def __init__(self, owner: str, field: str, message: str) -> None:
        super().__init__(f"{owner}.{field}: {message}")
        self.owner = owner
        self.field = field


class ForeignPermitError(GatewayError, ValueError):
    """Raised when an outcome is reported with a permit issued by another breaker."""


class InvalidOutcomeError(GatewayError, ValueError):
    """Raised when a report or command to a core carries an impossible value (negative latency
    or seconds, a non-finite time, something that is not an Outcome)."""


class CircuitOpenError(GatewayError):
    """Raised by the guard when the breaker refuses a call; `next_probe_at` is the monotonic
    time the next probe is due, or None while the state is operator-forced or probes are busy."""

    def __init__(self, breaker: str, state: str, next_probe_at: float | None) -> None:
        when = "unknown" if next_probe_at is None else f"{next_probe_at:.3f}"
        super().__init__(f"circuit {breaker!r} is {state}; next probe at {when}")
        self.breaker = breaker
        self.state = state
        self.next_probe_at = next_probe_at


class CostExceedsCapacityError(GatewayError, ValueError):
    """Raised when a request costs more than the limiter can ever grant (it would wait forever)."""


class UncacheableKindError(GatewayError, ValueError):
    """Raised when asked to cache something that is not public market data (balances, orders)."""


class NotJsonableError(GatewayError, TypeError):
    """Raised when a value offered to the cache does not survive a JSON round trip."""
