"""Command line: ``python run.py`` / ``ironclad`` parse flags, load config, run the node.

Exit status: 0 after a clean stop (SIGINT/SIGTERM), 1 when the node failed (root supervisor
gave up, start or shutdown failed), 2 for a bad command line or configuration.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
from collections.abc import Sequence
from pathlib import Path

import attrs
from loguru import logger

from alerts.channels import InvalidChannelUrl, parse_channel_urls
from ironclad.config import LOG_LEVELS, Config, ConfigError, load_config
from ironclad.console import StatusConsole
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
        "--exchange", metavar="ID", help="ccxt exchange id, or 'nobitex' (default: binance)"
    )
    parser.add_argument(
        "--venue-url",
        metavar="URL",
        help="base URL of the venue (default: start the embedded local venue)",
    )
    parser.add_argument(
        "--http-port", type=int, metavar="PORT", help="control API port on 127.0.0.1 (0: any)"
    )
    parser.add_argument(
        "--alert-url",
        action="append",
        metavar="URL",
        help="alert channel URL (json://, slack://, mailto://, log://, jsonl:///path...), "
        "added to the configured ones; repeatable",
    )
    parser.add_argument(
        "--log-level", type=str.upper, choices=LOG_LEVELS, help="minimum level logged"
    )
    parser.add_argument(
        "--log-json", action="store_true", default=None, help="log JSON lines instead of text"
    )
    parser.add_argument(
        "--no-console", action="store_true",
        help="no live status table on the terminal (it is off anyway when stdout is not one)",
    )
    parser.add_argument(
        "--demo", action="store_true",
        help="run the scripted demo against the local venue (other flags are ignored) and exit",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; return the exit status."""
    args = build_parser().parse_args(argv)
    if args.demo:
        from ironclad.demo import run_demo

        return run_demo()
    try:
        config = load_config(args.config).with_overrides(
            data_dir=args.data_dir,
            log_level=args.log_level,
            log_json=args.log_json,
            exchange=args.exchange,
            venue_url=args.venue_url,
            http_port=args.http_port,
        )
    except ConfigError as error:
        configure_logging(json_lines=bool(args.log_json))
        logger.error("{}", error)
        return 2
    try:
        config = _with_alert_urls(config, args.alert_url or ())
    except InvalidChannelUrl as error:
        configure_logging(json_lines=bool(args.log_json))
        logger.error("{}", error)
        return 2
    status_console = (StatusConsole() if StatusConsole.wanted(args.no_console)
                      and not config.logging.json else None)
    configure_logging(
        level=config.logging.level,
        json_lines=config.logging.json,
        secrets=config.credentials.values(),
        stream=status_console.write_log if status_console is not None else None,
    )
    logger.debug("configuration: {}", config)  # credentials are not in the repr
    try:
        config.node.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        logger.error("cannot create data dir {}: {}", config.node.data_dir, error)
        return 2
    with _StopSignals() as stop_signals:
        if status_console is None:
            return run_node(config, stop_signals.wait)
        try:
            return run_node(config, status_console.wrap(stop_signals.wait))
        finally:
            status_console.close()


def _with_alert_urls(config: Config, urls: Sequence[str]) -> Config:
    """``config`` with ``urls`` added to its alert channels (which turns alerts on), every
    channel URL checked."""
    channels = tuple(dict.fromkeys((*config.alerts.channels, *urls)))
    parse_channel_urls(channels)
    enabled = config.alerts.enabled or bool(urls)
    return attrs.evolve(config, alerts=attrs.evolve(config.alerts, channels=channels,
                                                    enabled=enabled))


class _StopSignals:
    """Turns SIGINT/SIGTERM into a stop request the main thread waits for.

    The handler only appends to a list (it may interrupt code holding a lock, loguru's or an
    Event's, so it takes none); the signal wakeup fd ends the wait at once. Signals are not
    blocked, so processes the node starts still receive theirs.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: list[int] = []

    def __enter__(self) -> _StopSignals:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd)
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in self.SIGNALS}
        return self

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.received.append(signum)

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True once a stop signal has arrived."""
        if not self.received:
            select.select([self._read_fd], [], [], timeout)
        return bool(self.received)

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_wakeup)
        os.close(self._read_fd)
        os.close(self._write_fd)
