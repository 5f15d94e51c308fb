"""Typed venue errors: the engine raises these, each dialect renders them in its own words.

Every error means "nothing changed": the engine validates fully before it mutates state.
"""

from __future__ import annotations


class VenueError(Exception):
    """Raised when the venue refuses a request; base of every typed venue error."""

    kind = "venue_error"


class UnknownAccount(VenueError):
    """Raised when no account matches the given id, API key or token."""

    kind = "unknown_account"


class UnknownSymbol(VenueError):
    """Raised when the symbol is not a market of this venue."""

    kind = "unknown_symbol"


class InvalidOrderRequest(VenueError):
    """Raised when an order parameter is malformed (side, type, time in force, missing price)."""

    kind = "invalid_order_request"


class FilterFailure(VenueError):
    """Raised when an order breaks a market filter; ``filter`` names it.

    Filters: ``PRICE_FILTER`` (price not a positive multiple of the tick size),
    ``LOT_SIZE`` (amount below the minimum or not a multiple of the step size),
    ``NOTIONAL`` (price times amount below the minimum notional).
    """

    kind = "filter_failure"

    def __init__(self, filter_name: str, detail: str = "") -> None:
        super().__init__(f"Filter failure: {filter_name}" + (f" ({detail})" if detail else ""))
        self.filter = filter_name


class DuplicateClientOrderId(VenueError):
    """Raised when the account already has an open order with this client order id."""

    kind = "duplicate_client_order_id"


class InsufficientBalance(VenueError):
    """Raised when the account's free balance cannot cover the order (or the withdrawal)."""

    kind = "insufficient_balance"


class UnknownOrder(VenueError):
    """Raised when no order of this account matches the id / client order id."""

    kind = "unknown_order"


class OrderNotOpen(VenueError):
    """Raised when cancelling an order that is already filled, cancelled or expired."""

    kind = "order_not_open"


class ConfigError(VenueError):
    """Raised when a venue configuration (accounts, markets, faults) is invalid.

    ``field`` is the path of the bad value (``rules[0].amount``) when one value is to blame;
    the message then starts with it.
    """

    kind = "config_error"

    def __init__(self, problem: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.problem = problem
        self.field = field

    def within(self, prefix: str) -> ConfigError:
        """The same error seen from the enclosing document: ``field`` gains ``prefix``."""
        return ConfigError(self.problem, f"{prefix}.{self.field}" if self.field else prefix)
