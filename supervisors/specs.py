"""Child and supervisor specs as plain data, validated without starting anything.

As OTP's check_childspec: one validator per field, errors name the culprit.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pykka

from supervisors.errors import InvalidChildSpec


class Restart(enum.Enum):
    """When a child is restarted: always, only after a crash, or never."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Strategy(enum.Enum):
    """Which siblings are restarted with a crashed child."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


def _owner(inst: Any) -> str:
    ident = getattr(inst, "id", None)
    return f"{type(inst).__name__} {ident!r}" if isinstance(ident, str) else type(inst).__name__


def _valid_id(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidChildSpec(
            f"{type(inst).__name__}: id must be a non-empty string, got {value!r}"
        )
    if "/" in value:
        raise InvalidChildSpec(f"{_owner(inst)}: id must not contain '/' (it separates names)")


def _positive_finite(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidChildSpec(f"{_owner(inst)}: {attribute.name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidChildSpec(
            f"{_owner(inst)}: {attribute.name} must be a positive finite number, got {value!r}"
        )


def _non_negative_finite(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidChildSpec(f"{_owner(inst)}: {attribute.name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise InvalidChildSpec(
            f"{_owner(inst)}: {attribute.name} must be a finite number >= 0, got {value!r}"
        )


def _instance_of(kind: type) -> Callable[[Any, attrs.Attribute, Any], None]:
    def check(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, kind):
            raise InvalidChildSpec(
                f"{_owner(inst)}: {attribute.name} must be a {kind.__name__}, got {value!r}"
            )

    return check


def _callable(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not callable(value):
        raise InvalidChildSpec(f"{_owner(inst)}: {attribute.name} must be callable, got {value!r}")


def _jitter(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    _non_negative_finite(inst, attribute, value)
    if value >= 1:
        raise InvalidChildSpec(f"BackoffPolicy: jitter must be in [0, 1), got {value!r}")


def _as_tuple(children: Any) -> tuple[Any, ...]:
    if isinstance(children, ChildSpec | SupervisorSpec) or not isinstance(children, Iterable):
        raise InvalidChildSpec(f"children must be a sequence of specs, got {children!r}")
    return tuple(children)


@attrs.frozen(slots=True)
class BackoffPolicy:
    """Delay before restarting a child: initial * factor**n, +/- jitter, capped at max.

    The exponent resets once the child has gone `reset_after` seconds without crashing.
    `seed` makes the jitter reproducible (None: seeded from the OS).
    """

    initial: float = attrs.field(default=0.05, validator=_non_negative_finite)
    factor: float = attrs.field(default=2.0, validator=_positive_finite)
    max: float = attrs.field(default=5.0, validator=_non_negative_finite)
    jitter: float = attrs.field(default=0.2, validator=_jitter)
    reset_after: float = attrs.field(default=30.0, validator=_positive_finite)
    seed: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.factor < 1:
            raise InvalidChildSpec(f"BackoffPolicy: factor must be >= 1, got {self.factor!r}")
        if self.max < self.initial:
            raise InvalidChildSpec(
                f"BackoffPolicy: max ({self.max!r}) must be >= initial ({self.initial!r})"
            )


@attrs.frozen(slots=True)
class ChildSpec:
    """A worker child: `start()` must return a started ref of a SupervisedActor subclass."""

    id: str = attrs.field(validator=_valid_id)
    start: Callable[[], pykka.ActorRef] = attrs.field(validator=_callable)
    restart: Restart = attrs.field(default=Restart.PERMANENT, validator=_instance_of(Restart))
    shutdown_timeout: float = attrs.field(default=5.0, validator=_positive_finite)
    start_timeout: float = attrs.field(default=5.0, validator=_positive_finite)


@attrs.frozen(slots=True)
class SupervisorSpec:
    """A supervisor and its children (workers or nested supervisors), in start order."""

    id: str = attrs.field(validator=_valid_id)
    strategy: Strategy = attrs.field(validator=_instance_of(Strategy))
    children: tuple[ChildSpec | SupervisorSpec, ...] = attrs.field(converter=_as_tuple)
    intensity: int = attrs.field(default=3)
    period: float = attrs.field(default=5.0, validator=_positive_finite)
    backoff: BackoffPolicy = attrs.field(
        factory=BackoffPolicy, validator=_instance_of(BackoffPolicy)
    )
    restart: Restart = attrs.field(default=Restart.PERMANENT, validator=_instance_of(Restart))
    shutdown_timeout: float = attrs.field(default=10.0, validator=_positive_finite)
    start_timeout: float = attrs.field(default=30.0, validator=_positive_finite)

    @intensity.validator
    def _check_intensity(self, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidChildSpec(f"{_owner(self)}: intensity must be an int >= 0, got {value!r}")


def check_child_specs(spec: SupervisorSpec, *, path: str = "") -> tuple[str, ...]:
    """Validate a whole tree without starting anything; return every registered name in order.

    Raises InvalidChildSpec naming the supervisor and child at fault (duplicate ids, wrong types).
    """
    if not isinstance(spec, SupervisorSpec):
        raise InvalidChildSpec(f"expected a SupervisorSpec, got {spec!r}")
    where = f"supervisor {path or spec.id!r}"
    names: list[str] = []
    seen: set[str] = set()
    for child in spec.children:
        if not isinstance(child, ChildSpec | SupervisorSpec):
            raise InvalidChildSpec(
                f"{where}: child must be a ChildSpec or SupervisorSpec, got {child!r}"
            )
        if child.id in seen:
            raise InvalidChildSpec(f"{where}: duplicate child id {child.id!r}")
        seen.add(child.id)
        name = f"{path}/{child.id}" if path else child.id
        names.append(name)
        if isinstance(child, SupervisorSpec):
            names.extend(check_child_specs(child, path=name))
    return tuple(names)
