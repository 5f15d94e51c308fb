"""OTP-style supervision trees on pykka: specs as data, restart strategies and intensity,
backoff, stable names resolved at send time, orderly shutdown and supervision events."""

from messages.supervision import ActorStatistics, ChildStatus, SupervisorStatus
from supervisors.actor import SupervisedActor, on_actor_thread
from supervisors.errors import (
    ActorCrashed,
    ActorUnavailable,
    ChildStartFailed,
    ChildStartTimeout,
    InvalidChildSpec,
    NameNotFound,
    NameTaken,
    SupervisionError,
    SupervisorGaveUpError,
    TreeFailed,
    UnrecoverableError,
)
from supervisors.events import subscribe
from supervisors.names import ask, resolve, tell
from supervisors.specs import (
    BackoffPolicy,
    ChildSpec,
    Restart,
    Strategy,
    SupervisorSpec,
    check_child_specs,
)
from supervisors.supervisor import StatusRequest, Supervisor
from supervisors.tree import Tree, start_tree, supervisor_status

__all__ = [
    "ActorCrashed",
    "ActorStatistics",
    "ActorUnavailable",
    "BackoffPolicy",
    "ChildSpec",
    "ChildStartFailed",
    "ChildStartTimeout",
    "ChildStatus",
    "InvalidChildSpec",
    "NameNotFound",
    "NameTaken",
    "Restart",
    "StatusRequest",
    "Strategy",
    "SupervisedActor",
    "SupervisionError",
    "Supervisor",
    "SupervisorGaveUpError",
    "SupervisorSpec",
    "SupervisorStatus",
    "Tree",
    "TreeFailed",
    "UnrecoverableError",
    "ask",
    "check_child_specs",
    "on_actor_thread",
    "resolve",
    "start_tree",
    "subscribe",
    "supervisor_status",
    "tell",
]
