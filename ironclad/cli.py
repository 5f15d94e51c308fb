"""Command line: ``python run.py`` / ``ironclad`` parse flags, load config, run the node.

Exit status: 0 after a clean stop (SIGINT/SIGTERM), 1 when the node failed (root supervisor
gave up, start or shutdown failed), 2 for a bad command line or configuration.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from loguru import logger

from ironclad.config import LOG_LEVELS, ConfigError, load_config
from ironclad.logs import configure_logging
from ironclad.node import run_node

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (flags override the config file)."""
    parser = argparse.ArgumentParser(
        prog="ironclad",
        description="Run an Ironclad node: a supervised, fault-tolerant exchange gateway.",
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML config file (default: built-in defaults)"
    )
    parser.add_argument("--data-dir", type=Path, metavar="DIR", help="data directory")
    parser.add_argument(
        "--log-level", type=str.upper, choices=LOG_LEVELS, help="minimum level logged"
    )
    parser.add_argument(
        "--log-json", action="store_true", default=None, help="log JSON lines instead of text"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config).with_overrides(
            data_dir=args.data_dir, log_level=args.log_level, log_json=args.log_json
        )
    except ConfigError as error:
        configure_logging()
        logger.error("{}", error)
        return 2
    configure_logging(
        level=config.logging.level,
        json_lines=config.logging.json,
        secrets=config.credentials.values(),
    )
    logger.debug("configuration: {}", config)  # credentials are not in the repr
    try:
        config.node.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        logger.error("cannot create data dir {}: {}", config.node.data_dir, error)
        return 2
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        # No logging here: the signal may interrupt a log call holding loguru's lock.
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run_node(config, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
