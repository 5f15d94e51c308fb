"""Node assembly: the root supervision tree built from config, and the node's run loop.

The tree is assembled from *node parts*: a part is a function ``(Config) -> ChildSpec |
SupervisorSpec | None`` giving one top-level child of the root supervisor ``node``
(one_for_one), or None when the config disables that part.
Later issues add theirs to :data:`NODE_PARTS` (venue, trading, health, control API), in start
order; a part that builds a subtree uses :func:`supervisor_spec` so it gets the configured
restart intensity and backoff.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import pykka
from loguru import logger

from ironclad.config import Config, SupervisionConfig
from messages.codec import to_json
from messages.event_log import RecentEvents
from messages.supervision import SupervisionEvent
from supervisors import (
    BackoffPolicy,
    ChildSpec,
    Strategy,
    SupervisedActor,
    SupervisorSpec,
    TreeFailed,
    start_tree,
    subscribe,
)

__all__ = [
    "EVENT_LOG_FILE",
    "EventLog",
    "NodePart",
    "NODE_PARTS",
    "event_log_part",
    "alerts_part",
    "venue_part",
    "trading_part",
    "health_part",
    "control_api_part",
    "supervisor_spec",
    "build_node_spec",
    "run_node",
]

#: Name of the JSON-lines file, in the data directory, that the event log appends to.
EVENT_LOG_FILE = "events.jsonl"

#: A function giving one top-level child of the ``node`` supervisor from the config (None: the
#: config leaves this part out).
NodePart = Callable[[Config], ChildSpec | SupervisorSpec | None]


class EventLog(SupervisedActor):
    """Records every supervision event: logs it, keeps the latest in memory, appends it to a file.

    The file (``events.jsonl``, one tagged JSON event per line, flushed per event) is the
    history the alert system will consume. Events published while this actor itself is
    restarting are not seen by it (they are still logged by the supervisors).
    """

    def __init__(self, path: Path, capacity: int = 1000) -> None:
        super().__init__()
        self._path = path
        self._recent: collections.deque[SupervisionEvent] = collections.deque(maxlen=capacity)
        self._file: TextIO | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def on_start(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115 - closed in on_stop
        ref = self.actor_ref

        def forward(event: SupervisionEvent) -> None:
            try:
                ref.tell(event)
            except pykka.ActorDeadError:
                pass  # this log is stopping or restarting; its successor subscribes anew

        self._unsubscribe = subscribe(forward)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, SupervisionEvent):
            self._record(message)
            return None
        if isinstance(message, RecentEvents):
            return tuple(self._recent)[-message.limit :]
        raise TypeError(f"EventLog: unexpected message {type(message).__name__}")

    def _record(self, event: SupervisionEvent) -> None:
        self._recent.append(event)
        assert self._file is not None
        self._file.write(to_json(event, SupervisionEvent) + "\n")
        self._file.flush()
        logger.bind(context="supervision_event", event=type(event).__name__).info(
            "supervision event {}", event
        )

    def on_stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._file is not None:
            self._file.close()


def event_log_part(config: Config) -> ChildSpec:
    """The ``events`` child: the :class:`EventLog` writing to ``<data_dir>/events.jsonl``."""
    path = config.node.data_dir / EVENT_LOG_FILE
    return ChildSpec(id="events", start=functools.partial(EventLog.start, path))


def alerts_part(config: Config) -> SupervisorSpec | None:
    """The ``alerts`` subtree (one_for_one): the alert manager, which also subscribes to the
    supervision events, and one actor per channel; None when ``[alerts] enabled = false``."""
    if not config.alerts.enabled:
        return None
    from actors.alerts_tree import ALERTS, alerts_children  # actors import ironclad: late

    children = alerts_children(config.alerts, config.node.data_dir)
    return supervisor_spec(config, ALERTS, Strategy.ONE_FOR_ONE, children)


def venue_part(config: Config) -> SupervisorSpec:
    """The ``venue:<name>`` subtree: rate limiter, connection pool and gatekeeper (issue 4),
    plus the embedded local venue when no ``venue.url`` is configured."""
    from actors.venue import venue_spec  # actors build on ironclad's config: import late

    return venue_spec(config, functools.partial(supervisor_spec, config))


def trading_part(config: Config) -> SupervisorSpec | None:
    """The ``trading`` subtree (rest_for_one): ledger, transactions, reconciler (issue 5);
    None when ``[trading] enabled = false``. Started after the venue it trades on."""
    if not config.trading.enabled:
        return None
    from actors.trading import TradingSettings, trading_spec  # actors import ironclad: late

    settings = TradingSettings.from_config(config)
    return trading_spec(settings, functools.partial(supervisor_spec, config))


def health_part(config: Config) -> ChildSpec | None:
    """The ``health`` child: polls every component, derives ok/degraded/down, feeds the alert
    rules and owns the metrics; None when ``[health] enabled = false``."""
    from actors.health import health_part as part  # actors import ironclad: late

    return part(config)


def control_api_part(config: Config) -> ChildSpec:
    """The ``control-api`` child: the HTTP API on ``[http]`` host and port. Started last, so
    every actor it asks is already up (and stopped first)."""
    from actors.control_api import control_api_part as part  # actors import ironclad: late

    return part(config)


#: The node's top-level children, in start order (stopped in reverse).
NODE_PARTS: tuple[NodePart, ...] = (
    event_log_part, alerts_part, venue_part, trading_part, health_part, control_api_part,
)


def _backoff(supervision: SupervisionConfig) -> BackoffPolicy:
    b = supervision.backoff
    return BackoffPolicy(
        initial=b.initial, factor=b.factor, max=b.max, jitter=b.jitter, reset_after=b.reset_after
    )


def supervisor_spec(
    config: Config,
    id: str,
    strategy: Strategy,
    children: Sequence[ChildSpec | SupervisorSpec],
) -> SupervisorSpec:
    """A supervisor spec with the restart intensity, period and backoff from ``config``."""
    return SupervisorSpec(
        id=id,
        strategy=strategy,
        children=tuple(children),
        intensity=config.supervision.intensity,
        period=config.supervision.period,
        backoff=_backoff(config.supervision),
    )


def build_node_spec(config: Config, parts: Sequence[NodePart] = NODE_PARTS) -> SupervisorSpec:
    """The root ``node`` supervisor (one_for_one) with one child per part, in order."""
    children = [child for child in (part(config) for part in parts) if child is not None]
    return supervisor_spec(config, "node", Strategy.ONE_FOR_ONE, children)


def run_node(
    config: Config,
    wait_for_stop: Callable[[float], bool],
    parts: Sequence[NodePart] = NODE_PARTS,
    poll_interval: float = 0.1,
) -> int:
    """Start the node, run until a stop is requested or the root gives up, then shut down.

    ``wait_for_stop(timeout)`` blocks up to ``timeout`` seconds and returns True once a stop
    was requested (``threading.Event().wait`` fits; the CLI waits for SIGINT/SIGTERM).
    Returns the process exit status: 0 after a clean stop, 1 if the tree failed to start,
    the root supervisor gave up (at once, naming the error, when a child failed with an
    UnrecoverableError), or the shutdown did not finish in time.
    """
    spec = build_node_spec(config, parts)
    try:
        tree = start_tree(spec)
    except TreeFailed as error:
        logger.bind(context="start_error").error("node failed to start: {}", error)
        return 1
    logger.info(
        "ready: node {} running (data dir {}, children: {})",
        config.node.name,
        config.node.data_dir,
        ", ".join(child.id for child in spec.children),
    )
    while not wait_for_stop(poll_interval):
        if tree.wait(0):
            break
    if tree.failed:
        tree.wait(spec.shutdown_timeout)
        if tree.unrecoverable is not None:
            logger.bind(context="start_error").error(
                "node {} stopped: {}", config.node.name, tree.unrecoverable
            )
            return 1
        logger.bind(context="max_restart_intensity").error(
            "node {} stopping: the root supervisor gave up", config.node.name
        )
        return 1
    logger.info("stop requested: node {} shutting down", config.node.name)
    if not tree.stop(timeout=spec.shutdown_timeout):
        logger.bind(context="shutdown_error").error(
            "node {} did not stop within {}s", config.node.name, spec.shutdown_timeout
        )
        return 1
    logger.info("node {} stopped", config.node.name)
    return 0
