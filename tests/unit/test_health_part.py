"""The health part of the node: in the tree between trading and the control API, configured
from ``[health]``, left out when disabled."""

from __future__ import annotations

from pathlib import Path

from actors.health import HEALTH, HealthSettings
from ironclad.config import Config, HealthConfig, NodeConfig, PoolConfig
from ironclad.node import NODE_PARTS, build_node_spec, health_part


def test_health_runs_after_trading_and_before_the_control_api(tmp_path: Path) -> None:
    spec = build_node_spec(Config(node=NodeConfig(data_dir=tmp_path)))
    ids = [c.id for c in spec.children]
    assert ids.index("trading") < ids.index(HEALTH) < ids.index("control-api")
    assert health_part in NODE_PARTS


def test_disabled_health_is_left_out(tmp_path: Path) -> None:
    config = Config(node=NodeConfig(data_dir=tmp_path), health=HealthConfig(enabled=False))
    assert HEALTH not in [c.id for c in build_node_spec(config).children]


def test_settings_follow_the_config() -> None:
    config = Config(health=HealthConfig(poll_interval=0.5, ask_timeout=0.3,
                                        queue_degraded_ratio=0.5, reconciliation_max_age=60.0),
                    pool=PoolConfig(workers=2, market_data_queue=8, trading_queue=4))
    settings = HealthSettings.from_config(config)
    assert (settings.poll_interval, settings.ask_timeout) == (0.5, 0.3)
    assert settings.thresholds.queue_degraded_ratio == 0.5
    assert settings.thresholds.reconciliation_max_age == 60.0
    assert settings.workers == 2
    assert dict(settings.queue_bounds) == {"market_data": 8, "trading": 4}
    assert settings.venue == "sim" and settings.trading and settings.alerts
