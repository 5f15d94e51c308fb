"""The local exchange venue: a matching engine behind real HTTP, with deterministic faults.

Offers the engine and its types, the fault rules, the ASGI app builder, the dialect plug-in
interface and the runners (``serve_in_thread`` in-process, ``main`` for ``python -m simulator``).
"""

from simulator.app import build_app, default_dialects
from simulator.config import config_from_dict, load_config
from simulator.dialect import Call, Dialect, Route
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
from simulator.faults import ENDPOINTS, FAULTS, FaultDecision, FaultInjector, FaultPlan, FaultRule
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
    Trade,
    VenueConfig,
    default_accounts,
    default_markets,
)
from simulator.server import RunningVenue, main, serve_in_thread
from simulator.venue import Venue

__all__ = [
    "ENDPOINTS", "FAULTS", "Call", "Dialect", "FaultDecision", "FaultInjector", "FaultPlan",
    "FaultRule", "Route", "RunningVenue", "Venue", "build_app", "config_from_dict",
    "default_accounts", "default_dialects", "default_markets", "load_config", "main",
    "serve_in_thread",
    "FEES", "HOUSE", "WITHDRAWN", "AccountSpec", "Balance", "BookView", "ConfigError",
    "DuplicateClientOrderId", "Engine", "FilterFailure", "Fill", "InsufficientBalance",
    "InvalidOrderRequest", "MarketSpec", "Order", "OrderNotOpen", "OrderStatus", "OrderType",
    "Placement", "Side", "Ticker", "TimeInForce", "Trade", "UnknownAccount", "UnknownOrder",
    "UnknownSymbol", "VenueConfig", "VenueError",
]
