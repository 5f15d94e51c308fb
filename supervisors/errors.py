"""The few errors supervision raises; each says when it is raised."""

from __future__ import annotations

import pykka


class SupervisionError(Exception):
    """Raised when supervision itself fails; base of every error in this module."""


class InvalidChildSpec(SupervisionError, ValueError):
    """Raised when a child or supervisor spec is invalid; the message names the culprit."""


class NameNotFound(SupervisionError, LookupError):
    """Raised when a name is not registered by any running supervision tree."""


class NameTaken(SupervisionError):
    """Raised when a tree would register a name another running tree already owns."""


class ActorUnavailable(SupervisionError):
    """Raised when a named actor is down (restarting) for longer than the caller's deadline."""


class ChildStartFailed(SupervisionError):
    """Raised when a child's start function misbehaves (not a SupervisedActor, too slow)."""


class ChildStartTimeout(ChildStartFailed):
    """Recorded as a child's crash when its on_start does not return within its start timeout."""


class ActorCrashed(pykka.ActorDeadError):
    """Raised to an asker whose message was still queued when the actor died (a dead letter)."""


class UnrecoverableError(SupervisionError):
    """Raised by a child (typically from its on_start) when a restart cannot help: its persisted
    state failed verification, say. Its supervisor does not restart it but gives up at once, and
    so does every supervisor above it: the tree stops once, naming this error."""


class SupervisorGaveUpError(SupervisionError):
    """Raised in a supervisor whose restart intensity is exceeded, or at once when a child
    failed with an UnrecoverableError (kept as ``unrecoverable``), to escalate to its parent."""

    def __init__(self, message: str, unrecoverable: UnrecoverableError | None = None) -> None:
        super().__init__(message)
        self.unrecoverable = unrecoverable


class TreeFailed(SupervisionError):
    """Raised when a tree cannot start because its root supervisor crashed while starting."""


def unrecoverable_cause(failure: BaseException | None) -> UnrecoverableError | None:
    """The UnrecoverableError behind `failure`: itself, or what a supervisor gave up on."""
    if isinstance(failure, UnrecoverableError):
        return failure
    if isinstance(failure, SupervisorGaveUpError):
        return failure.unrecoverable
    return None
