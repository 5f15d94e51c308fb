"""Specs are validated as data before anything starts; errors name the culprit."""

from __future__ import annotations

import math

import pykka
import pytest

import supervisors
from supervisors import (
    BackoffPolicy,
    ChildSpec,
    InvalidChildSpec,
    Restart,
    Strategy,
    SupervisorSpec,
    check_child_specs,
    start_tree,
)


def never_started() -> pykka.ActorRef:
    raise AssertionError("validation must not start anything")


def test_public_surface_is_exported() -> None:
    for name in supervisors.__all__:
        assert hasattr(supervisors, name), name
    for name in ("Restart", "Strategy", "BackoffPolicy", "ChildSpec", "SupervisorSpec",
                 "SupervisedActor", "start_tree", "Tree", "resolve", "ask", "tell", "subscribe"):
        assert name in supervisors.__all__


def test_defaults_match_the_contract() -> None:
    policy = BackoffPolicy()
    assert (policy.initial, policy.factor, policy.max, policy.jitter, policy.reset_after) == (
        0.05, 2.0, 5.0, 0.2, 30.0)
    spec = SupervisorSpec("node", Strategy.ONE_FOR_ONE, [ChildSpec("w", never_started)])
    assert (spec.intensity, spec.period, spec.restart, spec.shutdown_timeout) == (
        3, 5.0, Restart.PERMANENT, 10.0)
    assert spec.children == (ChildSpec("w", never_started),)
    assert ChildSpec("w", never_started).shutdown_timeout == 5.0


def test_check_returns_every_name_in_start_order() -> None:
    spec = SupervisorSpec("node", Strategy.ONE_FOR_ONE, (
        SupervisorSpec("venue:sim", Strategy.REST_FOR_ONE, (
            ChildSpec("rate-limiter", never_started),
            SupervisorSpec("pool", Strategy.ONE_FOR_ONE, (ChildSpec("worker-1", never_started),)),
            ChildSpec("gatekeeper", never_started),
        )),
        ChildSpec("health", never_started),
    ))
    assert check_child_specs(spec) == (
        "venue:sim", "venue:sim/rate-limiter", "venue:sim/pool", "venue:sim/pool/worker-1",
        "venue:sim/gatekeeper", "health",
    )


@pytest.mark.parametrize("bad_id", ["", "  ", "a/b", 7, None])
def test_bad_ids_are_rejected(bad_id: object) -> None:
    with pytest.raises(InvalidChildSpec, match="id"):
        ChildSpec(bad_id, never_started)  # type: ignore[arg-type]


def test_slash_in_a_supervisor_id_is_rejected_by_name() -> None:
    with pytest.raises(InvalidChildSpec, match="'venue/sim'.*must not contain '/'"):
        SupervisorSpec("venue/sim", Strategy.ONE_FOR_ONE, ())


@pytest.mark.parametrize("timeout", [0, -1.0, math.nan, math.inf, True, "5"])
def test_bad_shutdown_timeouts_name_the_child(timeout: object) -> None:
    with pytest.raises(InvalidChildSpec, match="ChildSpec 'gatekeeper': shutdown_timeout"):
        ChildSpec("gatekeeper", never_started, shutdown_timeout=timeout)  # type: ignore[arg-type]


def test_start_must_be_callable() -> None:
    with pytest.raises(InvalidChildSpec, match="'w': start must be callable"):
        ChildSpec("w", "Worker.start")  # type: ignore[arg-type]


def test_restart_must_be_the_enum() -> None:
    with pytest.raises(InvalidChildSpec, match="restart must be a Restart"):
        ChildSpec("w", never_started, restart="permanent")  # type: ignore[arg-type]


@pytest.mark.parametrize("intensity", [-1, 1.5, True])
def test_bad_intensity(intensity: object) -> None:
    with pytest.raises(InvalidChildSpec, match="'node': intensity"):
        SupervisorSpec("node", Strategy.ONE_FOR_ONE, (), intensity=intensity)  # type: ignore[arg-type]


def test_bad_period_and_strategy() -> None:
    with pytest.raises(InvalidChildSpec, match="period"):
        SupervisorSpec("node", Strategy.ONE_FOR_ONE, (), period=0)
    with pytest.raises(InvalidChildSpec, match="strategy must be a Strategy"):
        SupervisorSpec("node", "one_for_one", ())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"initial": -0.1}, "initial"), ({"factor": 0.5}, "factor"), ({"jitter": 1.0}, "jitter"),
     ({"initial": 2.0, "max": 1.0}, "max"), ({"reset_after": 0}, "reset_after")],
)
def test_bad_backoff(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidChildSpec, match=field):
        BackoffPolicy(**kwargs)


def test_duplicate_ids_name_supervisor_and_child() -> None:
    spec = SupervisorSpec("node", Strategy.ONE_FOR_ONE, (
        SupervisorSpec("pool", Strategy.ONE_FOR_ONE, (
            ChildSpec("worker-1", never_started), ChildSpec("worker-1", never_started))),
    ))
    with pytest.raises(InvalidChildSpec, match="supervisor 'pool': duplicate child id 'worker-1'"):
        check_child_specs(spec)


def test_non_spec_child_is_rejected() -> None:
    spec = SupervisorSpec("node", Strategy.ONE_FOR_ONE, (never_started,))  # type: ignore[arg-type]
    with pytest.raises(InvalidChildSpec, match="must be a ChildSpec or SupervisorSpec"):
        check_child_specs(spec)


def test_start_tree_rejects_a_bad_spec_before_starting_anything() -> None:
    spec = SupervisorSpec("node", Strategy.ONE_FOR_ONE, (
        ChildSpec("a", never_started), ChildSpec("a", never_started)))
    with pytest.raises(InvalidChildSpec):
        start_tree(spec)
    assert pykka.ActorRegistry.get_all() == []


def test_specs_are_comparable_values() -> None:
    assert ChildSpec("w", never_started) == ChildSpec("w", never_started)
    with pytest.raises(AttributeError):
        ChildSpec("w", never_started).id = "x"  # type: ignore[misc]


def test_children_must_be_a_sequence() -> None:
    with pytest.raises(InvalidChildSpec, match="children must be a sequence"):
        SupervisorSpec("node", Strategy.ONE_FOR_ONE, ChildSpec("w", never_started))  # type: ignore[arg-type]
