"""The local exchange venue: a matching engine behind real HTTP, with deterministic faults.

Offers the engine and its types now; the HTTP app, fault layer and in-process runner are
exported from here as they land.
"""

from simulator.engine import Engine, Placement
from simulator.errors import (
    ConfigError,
    DuplicateClientOrderId,
    FilterFailure,
    InsufficientBalance,
    InvalidOrderRequest,
    OrderNotOpen,
    UnknownAccount,
    UnknownOrder,
    UnknownSymbol,
    VenueError,
)
from simulator.model import (
    FEES,
    HOUSE,
    WITHDRAWN,
    AccountSpec,
    Balance,
    BookView,
    Fill,
    MarketSpec,
    Order,
    OrderStatus,
    OrderType,
    Side,
    Ticker,
    TimeInForce,
    VenueConfig,
)

__all__ = [
    "FEES", "HOUSE", "WITHDRAWN", "AccountSpec", "Balance", "BookView", "ConfigError",
    "DuplicateClientOrderId", "Engine", "FilterFailure", "Fill", "InsufficientBalance",
    "InvalidOrderRequest", "MarketSpec", "Order", "OrderNotOpen", "OrderStatus", "OrderType",
    "Placement", "Side", "Ticker", "TimeInForce", "UnknownAccount", "UnknownOrder",
    "UnknownSymbol", "VenueConfig", "VenueError",
]
