"""Supervision events and status records: what the supervisors tell the alert system and the API.

Every value here is a frozen, slotted attrs record so it can be logged, compared and sent as JSON.
Timestamps `at` are wall-clock seconds (time.time()) for humans; restart timing itself uses a
monotonic clock inside the supervisors.
"""

from __future__ import annotations

import enum

import attrs


class ChildState(enum.Enum):
    """Lifecycle of one child slot in a supervisor."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"


class ChildKind(enum.Enum):
    """Whether a child is a worker actor or a nested supervisor."""

    WORKER = "worker"
    SUPERVISOR = "supervisor"


@attrs.frozen(slots=True)
class ChildStarted:
    """A child was started for the first time by its supervisor."""

    supervisor: str
    child: str
    name: str
    at: float


@attrs.frozen(slots=True)
class ChildCrashed:
    """A child exited abnormally (unhandled exception anywhere in its life)."""

    supervisor: str
    child: str
    name: str
    error_type: str
    reason: str
    at: float


@attrs.frozen(slots=True)
class ChildRestarted:
    """A child was started again after a crash (its own or a sibling's, per the strategy)."""

    supervisor: str
    child: str
    name: str
    restarts: int
    delay: float
    at: float


@attrs.frozen(slots=True)
class ChildStopped:
    """A child stopped for good or on request; `reason` is normal, shutdown or shutdown_timeout."""

    supervisor: str
    child: str
    name: str
    reason: str
    at: float


@attrs.frozen(slots=True)
class SupervisorGaveUp:
    """A supervisor exceeded its restart intensity and stopped, escalating to its parent."""

    supervisor: str
    restarts: int
    period: float
    last_failure: str
    at: float


@attrs.frozen(slots=True)
class DeadLetter:
    """A message was still queued when its recipient died; asks were failed, tells are lost."""

    recipient: str
    message_type: str
    sender: str | None
    was_ask: bool
    at: float


SupervisionEvent = (
    ChildStarted | ChildCrashed | ChildRestarted | ChildStopped | SupervisorGaveUp | DeadLetter
)


@attrs.frozen(slots=True)
class ChildStatus:
    """One child as its supervisor sees it; `supervisor` is filled for nested supervisors."""

    id: str
    name: str
    kind: ChildKind
    state: ChildState
    restarts: int
    last_failure: str | None
    supervisor: SupervisorStatus | None = None


@attrs.frozen(slots=True)
class SupervisorStatus:
    """A supervisor's view of its children, in start order."""

    id: str
    name: str
    strategy: str
    restarts_in_period: int
    children: tuple[ChildStatus, ...]


@attrs.frozen(slots=True)
class ActorStatistics:
    """Cheap counters every supervised actor reports (STYLE.md #22)."""

    name: str | None
    messages_handled: int
    inbox_size: int
    timers_pending: int
