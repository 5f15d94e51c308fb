"""The Ironclad node: configuration, logging, command line and assembly of the supervision tree."""

from ironclad.cli import build_parser, main
from ironclad.config import (
    LOG_LEVELS,
    AlertRulesConfig,
    AlertsConfig,
    BackoffConfig,
    BreakerSettings,
    CacheConfig,
    Config,
    ConfigError,
    Credentials,
    LoggingConfig,
    NodeConfig,
    PoolConfig,
    RateLimitConfig,
    Secret,
    SupervisionConfig,
    VenueConfig,
    load_config,
)
from ironclad.logs import (
    REDACTED,
    InterceptHandler,
    RedactingSink,
    configure_logging,
    redact,
    route_stdlib_logging,
)
from ironclad.node import (
    EVENT_LOG_FILE,
    NODE_PARTS,
    EventLog,
    NodePart,
    build_node_spec,
    alerts_part,
    event_log_part,
    run_node,
    supervisor_spec,
    venue_part,
)

__all__ = [
    # config
    "LOG_LEVELS",
    "AlertRulesConfig",
    "AlertsConfig",
    "BackoffConfig",
    "BreakerSettings",
    "CacheConfig",
    "Config",
    "ConfigError",
    "Credentials",
    "LoggingConfig",
    "NodeConfig",
    "PoolConfig",
    "RateLimitConfig",
    "Secret",
    "SupervisionConfig",
    "VenueConfig",
    "load_config",
    # logging
    "REDACTED",
    "InterceptHandler",
    "RedactingSink",
    "configure_logging",
    "redact",
    "route_stdlib_logging",
    # node
    "EVENT_LOG_FILE",
    "NODE_PARTS",
    "EventLog",
    "NodePart",
    "build_node_spec",
    "alerts_part",
    "event_log_part",
    "run_node",
    "supervisor_spec",
    "venue_part",
    # command line
    "build_parser",
    "main",
]
