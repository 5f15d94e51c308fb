"""Actor shells of the exchange path (DESIGN §3): gatekeeper → pool (dispatcher + workers) →
ccxt, with the account's shared rate limiter, the `venue:<name>` subtree spec and the call API
(`call`, `submit`) for code outside the actor system."""

from actors.api import call, gatekeeper_name, submit
from actors.gatekeeper import Gatekeeper, GatekeeperStatistics
from actors.names import GatewayNames
from actors.pool import Dispatcher, LatencyHistogram, PoolCore, PoolStatistics
from actors.protocol import (
    ApplyBackoff,
    Call,
    CallOutcome,
    GetBucket,
    GetStatistics,
    PoolStarted,
    ReplySlot,
    Work,
    WorkerDown,
    WorkerReady,
    WorkFinished,
)
from actors.rate_limiter import RateLimiter, RateLimiterStatistics, SharedBucket
from actors.venue import DEMO_CREDENTIALS, EmbeddedVenue, GetVenueUrl, venue_spec
from actors.worker import CacheSettings, ClientSettings, Worker, WorkerStatistics

__all__ = [
    "DEMO_CREDENTIALS",
    "ApplyBackoff",
    "CacheSettings",
    "Call",
    "CallOutcome",
    "ClientSettings",
    "Dispatcher",
    "EmbeddedVenue",
    "Gatekeeper",
    "GatekeeperStatistics",
    "GatewayNames",
    "GetBucket",
    "GetStatistics",
    "GetVenueUrl",
    "LatencyHistogram",
    "PoolCore",
    "PoolStarted",
    "PoolStatistics",
    "RateLimiter",
    "RateLimiterStatistics",
    "ReplySlot",
    "SharedBucket",
    "Work",
    "WorkFinished",
    "Worker",
    "WorkerDown",
    "WorkerReady",
    "WorkerStatistics",
    "call",
    "gatekeeper_name",
    "submit",
    "venue_spec",
]
