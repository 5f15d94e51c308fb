"""The pure breaker, one behaviour at a time, on an injected clock."""

from __future__ import annotations

import random

import pytest

from gateway.breaker import (
    Breaker,
    BreakerConfig,
    BreakerState,
    Permit,
    Rejected,
    Transition,
    WindowKind,
)
from gateway.classify import Outcome
from gateway.errors import ForeignPermitError, InvalidConfigError, InvalidOutcomeError

S = BreakerState


def make(**overrides: object) -> tuple[Breaker, list[Transition]]:
    fields: dict[str, object] = dict(
        window_size=4, minimum_calls=2, failure_rate_threshold=0.5, half_open_probes=2,
        open_base=10.0, open_growth=2.0, open_cap=35.0, jitter=0.0, slow_call_duration=1.0,
    )
    fields.update(overrides)
    breaker = Breaker("venue/trading", BreakerConfig(**fields), random.Random(7))  # type: ignore[arg-type]
    events: list[Transition] = []
    breaker.add_listener(events.append)
    return breaker, events


def permit(breaker: Breaker, now: float) -> Permit:
    got = breaker.acquire(now)
    assert isinstance(got, Permit), got
    return got


def fail(breaker: Breaker, now: float, n: int = 1) -> None:
    for _ in range(n):
        breaker.on_failure(permit(breaker, now), 0.01, now)


def succeed(breaker: Breaker, now: float, n: int = 1, latency: float = 0.01) -> None:
    for _ in range(n):
        breaker.on_success(permit(breaker, now), latency, now)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window_size", 0), ("window_size", 2.5), ("minimum_calls", 0), ("minimum_calls", 5),
        ("failure_rate_threshold", 0), ("failure_rate_threshold", 1.5),
        ("slow_call_rate_threshold", -0.1), ("slow_call_duration", 0),
        ("half_open_probes", 0), ("half_open_timeout", float("inf")), ("open_base", -1),
        ("open_growth", 0.5), ("open_cap", 5.0), ("jitter", 1.0), ("window_kind", "count"),
    ],
)
def test_invalid_config_names_the_field(field: str, value: object) -> None:
    base = dict(window_size=4, minimum_calls=2, open_base=10.0, open_cap=35.0)
    base[field] = value
    with pytest.raises(InvalidConfigError) as info:
        BreakerConfig(**base)  # type: ignore[arg-type]
    assert info.value.field == field
    assert field in str(info.value)


def test_time_window_allows_minimum_calls_above_size() -> None:
    config = BreakerConfig(window_kind=WindowKind.TIME, window_size=2.5, minimum_calls=50)
    assert config.window_size == 2.5


def test_trips_at_failure_rate_after_minimum_calls() -> None:
    breaker, events = make()
    fail(breaker, 0.0)
    assert breaker.state is S.CLOSED  # one call is below minimum_calls
    succeed(breaker, 0.0)
    assert breaker.state is S.OPEN  # 1 of 2 = 0.5 >= 0.5
    assert events == [Transition("venue/trading", S.CLOSED, S.OPEN,
                                 "failure rate 1/2 >= 0.5", 0.0)]
    rejected = breaker.acquire(5.0)
    assert rejected == Rejected("venue/trading", S.OPEN, 10.0)
    assert isinstance(rejected, Rejected) and rejected.next_probe_in(5.0) == 5.0
    assert Rejected("x", S.FORCED_OPEN, None).next_probe_in(5.0, unknown=60.0) == 60.0


def test_count_window_forgets_old_calls() -> None:
    breaker, _ = make(window_size=4, minimum_calls=4, failure_rate_threshold=0.75)
    fail(breaker, 0, 2)
    succeed(breaker, 0, 4)  # window now holds 4 successes; the failures slid out
    fail(breaker, 0, 2)
    assert breaker.state is S.CLOSED  # 2/4 < 0.75
    fail(breaker, 0)
    assert breaker.state is S.OPEN  # 3/4


def test_time_window_forgets_calls_older_than_window() -> None:
    breaker, _ = make(window_kind=WindowKind.TIME, window_size=10.0, minimum_calls=3)
    fail(breaker, 0.0, 2)
    succeed(breaker, 10.5, 2)  # the failures at t=0 left the window at t=10
    assert breaker.metrics(10.5).window_calls == 2
    fail(breaker, 11.0)
    assert breaker.state is S.CLOSED  # 1/3 < 0.5
    fail(breaker, 11.0)
    assert breaker.state is S.OPEN


def test_slow_calls_trip_on_slow_rate() -> None:
    breaker, events = make(slow_call_rate_threshold=0.5, failure_rate_threshold=1.0)
    succeed(breaker, 0.0, latency=1.0)
    succeed(breaker, 0.0, latency=0.2)
    assert breaker.state is S.OPEN
    assert events[-1].reason.startswith("slow-call rate 1/2")
    assert breaker.metrics().slow == 1


def test_half_open_admits_only_the_configured_probes_and_closes_on_success() -> None:
    breaker, events = make()
    fail(breaker, 0.0, 2)
    first, second = permit(breaker, 10.0), permit(breaker, 10.0)
    assert breaker.state is S.HALF_OPEN
    assert breaker.acquire(10.0) == Rejected("venue/trading", S.HALF_OPEN, None)
    breaker.on_success(first, 0.1, 10.1)
    assert breaker.acquire(10.1) == Rejected("venue/trading", S.HALF_OPEN, None)  # counted slot
    breaker.on_success(second, 0.1, 10.2)
    assert breaker.state is S.CLOSED
    assert [e.to_state for e in events] == [S.OPEN, S.HALF_OPEN, S.CLOSED]


def test_ignored_outcome_frees_a_probe_slot_without_counting() -> None:
    breaker, _ = make(half_open_probes=1)
    fail(breaker, 0.0, 2)
    probe = permit(breaker, 10.0)
    breaker.on_ignored(probe, 10.1)  # e.g. InvalidOrder: says nothing about the venue
    assert breaker.state is S.HALF_OPEN
    breaker.on_success(permit(breaker, 10.2), 0.1, 10.3)
    assert breaker.state is S.CLOSED


def test_late_outcome_from_earlier_generation_is_ignored() -> None:
    breaker, _ = make(half_open_probes=1)
    slow_call = permit(breaker, 0.0)  # admitted while CLOSED
    fail(breaker, 0.0, 2)
    probe = permit(breaker, 10.0)
    breaker.on_failure(slow_call, 11.0, 11.0)  # returns while the probe is out
    assert breaker.state is S.HALF_OPEN
    assert breaker.probes_in_flight == 1
    assert breaker.metrics().late == 1
    breaker.on_success(probe, 0.1, 11.0)
    assert breaker.state is S.CLOSED


def test_duplicate_probe_report_counts_once() -> None:
    breaker, _ = make(half_open_probes=2)
    fail(breaker, 0.0, 2)
    probe = permit(breaker, 10.0)
    breaker.on_success(probe, 0.1, 10.0)
    breaker.on_success(probe, 0.1, 10.0)
    assert breaker.state is S.HALF_OPEN


def test_open_duration_grows_to_cap_and_resets_after_close() -> None:
    breaker, _ = make(half_open_probes=1)
    fail(breaker, 0.0, 2)
    assert breaker.open_until == 10.0
    breaker.on_failure(permit(breaker, 10.0), 0.1, 10.0)
    assert breaker.open_until == 30.0  # 10 * 2
    breaker.on_failure(permit(breaker, 30.0), 0.1, 30.0)
    assert breaker.open_until == 65.0  # 40 capped at 35
    breaker.on_success(permit(breaker, 65.0), 0.1, 65.0)
    assert breaker.state is S.CLOSED and breaker.level == 0
    fail(breaker, 70.0, 2)
    assert breaker.open_until == 80.0


def test_growth_kept_after_close_when_reset_is_off() -> None:
    breaker, _ = make(half_open_probes=1, reset_growth_on_close=False)
    fail(breaker, 0.0, 2)
    breaker.on_success(permit(breaker, 10.0), 0.1, 10.0)
    fail(breaker, 11.0, 2)
    assert breaker.open_until == 31.0


def test_jitter_only_shortens_and_is_reproducible() -> None:
    durations = []
    for _ in range(2):
        breaker, _ = make(jitter=0.5, open_cap=20.0)
        fail(breaker, 0.0, 2)
        durations.append(breaker.open_until)
    assert durations[0] == durations[1]
    assert 5.0 <= durations[0] <= 10.0
    config = BreakerConfig(open_base=1, open_growth=10, open_cap=20, jitter=0.25)
    assert all(15.0 <= config.open_duration(level, u) <= 20.0
               for level in (2, 50, 10**6) for u in (0.0, 0.5, 0.999))


def test_half_open_timeout_reopens_when_probes_never_report() -> None:
    breaker, events = make(half_open_timeout=5.0)
    fail(breaker, 0.0, 2)
    permit(breaker, 10.0)  # the worker holding it dies; no outcome ever arrives
    assert breaker.advance(15.0) is S.OPEN
    assert events[-1].reason == "half-open trial timed out"


def test_open_for_extends_but_never_shortens_and_keeps_level() -> None:
    breaker, events = make()
    breaker.open_for(30.0, 1.0, "Retry-After")
    assert breaker.state is S.OPEN and breaker.open_until == 31.0
    breaker.open_for(5.0, 2.0, "Retry-After")
    assert breaker.open_until == 31.0
    breaker.open_for(60.0, 2.0, "ban")
    assert breaker.open_until == 62.0
    assert breaker.level == 0
    assert [e.reason for e in events] == ["Retry-After"]
    with pytest.raises(InvalidOutcomeError):
        breaker.open_for(-1, 3.0, "bad")


def test_operator_states_override_and_reset() -> None:
    breaker, _ = make()
    breaker.force_open(0.0)
    assert breaker.acquire(1000.0) == Rejected("venue/trading", S.FORCED_OPEN, None)
    breaker.open_for(5.0, 1.0, "Retry-After")
    assert breaker.state is S.FORCED_OPEN
    breaker.disable(2.0)
    fail(breaker, 2.0, 10)
    assert breaker.state is S.DISABLED
    assert breaker.metrics().failures == 10
    breaker.reset(3.0)
    assert breaker.state is S.CLOSED
    assert breaker.metrics().window_calls == 0


def test_bad_reports_raise_and_change_nothing() -> None:
    breaker, _ = make()
    other, _ = make()
    foreign = Permit("elsewhere", 1, 0, S.CLOSED, 0.0)
    with pytest.raises(ForeignPermitError):
        breaker.on_failure(foreign, 0.1, 0.0)
    own = permit(breaker, 0.0)
    with pytest.raises(InvalidOutcomeError):
        breaker.on_success(own, -1.0, 0.0)
    with pytest.raises(InvalidOutcomeError):
        breaker.on_failure(own, float("nan"), 0.0)
    with pytest.raises(InvalidOutcomeError):
        breaker.acquire(float("nan"))
    assert breaker.metrics() == other.metrics()


def test_clock_running_back_is_treated_as_latest_seen() -> None:
    breaker, _ = make()
    fail(breaker, 100.0, 2)
    assert breaker.open_until == 110.0
    assert isinstance(breaker.acquire(50.0), Rejected)  # not "before" the opening


def test_metrics_snapshot() -> None:
    breaker, _ = make(minimum_calls=4)
    succeed(breaker, 0.0, 2)
    fail(breaker, 0.0)
    m = breaker.metrics(0.0)
    assert (m.state, m.calls, m.failures, m.window_calls) == (S.CLOSED, 3, 1, 3)
    assert m.failure_rate == pytest.approx(1 / 3)
    fail(breaker, 0.0)
    breaker.acquire(1.0)
    m = breaker.metrics(1.0)
    assert (m.state, m.rejected, m.opened_count, m.open_until) == (S.OPEN, 1, 1, 10.0)


def test_record_dispatches_classified_outcomes() -> None:
    breaker, _ = make()
    breaker.record(permit(breaker, 0.0), Outcome.SUCCESS, 0.1, 0.0)
    breaker.record(permit(breaker, 0.0), Outcome.IGNORED, 0.1, 0.0)
    with pytest.raises(InvalidOutcomeError):
        breaker.record(permit(breaker, 0.0), "failure", 0.1, 0.0)  # type: ignore[arg-type]
    breaker.record(permit(breaker, 0.0), Outcome.FAILURE, 0.1, 0.0)
    m = breaker.metrics()
    assert (m.calls, m.failures, m.ignored, m.state) == (2, 1, 1, S.OPEN)
