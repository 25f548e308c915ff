"""Stopping rules: each code, their priority, disabled rules and validation."""

from __future__ import annotations

import math

import pytest

from alloop.loop.agent.acquisition import AcquisitionError
from alloop.loop.agent.stopping import StopReason, StopRules, StopState, check_stop, labels_left


def state(
    rounds: int = 1, labels: int = 10, remaining: int = 100, history: tuple = ()
) -> StopState:
    return StopState(rounds, labels, remaining, history)


def test_continues_when_no_rule_holds() -> None:
    decision = check_stop(state(), StopRules(max_labels=50, max_rounds=5))
    assert (decision.stop, decision.reason) == (False, None)


def test_no_rules_never_stop_while_pool_remains() -> None:
    decision = check_stop(state(rounds=1000, labels=10**6, history=(0.0,) * 50), StopRules())
    assert not decision.stop


def test_pool_exhausted() -> None:
    decision = check_stop(state(remaining=0), StopRules())
    assert (decision.stop, decision.reason) == (True, StopReason.POOL_EXHAUSTED)
    assert decision.reason == "POOL_EXHAUSTED"


def test_label_budget() -> None:
    rules = StopRules(max_labels=40)
    assert not check_stop(state(labels=39), rules).stop
    decision = check_stop(state(labels=40), rules)
    assert (decision.reason, decision.detail) == (
        StopReason.LABEL_BUDGET,
        "40 labels used of a budget of 40",
    )


def test_max_rounds() -> None:
    rules = StopRules(max_rounds=3)
    assert not check_stop(state(rounds=2), rules).stop
    assert check_stop(state(rounds=3), rules).reason == StopReason.MAX_ROUNDS


def test_priority_when_several_rules_hold() -> None:
    rules = StopRules(max_labels=1, max_rounds=1, no_improvement_rounds=1)
    flat = (0.0, 0.0)
    assert check_stop(state(remaining=0, history=flat), rules).reason == "POOL_EXHAUSTED"
    assert check_stop(state(history=flat), rules).reason == "LABEL_BUDGET"
    assert check_stop(state(labels=0, history=flat), rules).reason == "MAX_ROUNDS"
    only_stall = StopRules(max_labels=100, max_rounds=100, no_improvement_rounds=1)
    assert check_stop(state(history=flat), only_stall).reason == "NO_IMPROVEMENT"


def test_no_improvement_over_the_last_n_rounds() -> None:
    rules = StopRules(no_improvement_rounds=2)
    assert not check_stop(state(history=(-1.0, -1.0)), rules).stop  # too few rounds to judge
    assert not check_stop(state(history=(-1.0, -1.0, -1.2)), rules).stop
    decision = check_stop(state(history=(-1.2, -1.2, -1.2)), rules)
    assert decision.reason == StopReason.NO_IMPROVEMENT
    assert decision.detail.startswith("best label -1.200 eV vs -1.200 eV 2 rounds ago")
    # only the last n rounds count: an early improvement does not keep the campaign going
    assert check_stop(state(history=(0.0, -1.0, -1.0, -1.0)), rules).stop


def test_min_improvement_threshold() -> None:
    rules = StopRules(no_improvement_rounds=1, min_improvement_ev=0.05)
    assert check_stop(state(history=(-1.0, -1.03)), rules).stop
    assert not check_stop(state(history=(-1.0, -1.06)), rules).stop


def test_rounds_without_any_label_are_no_improvement() -> None:
    rules = StopRules(no_improvement_rounds=2)
    assert check_stop(state(history=(None, None, None)), rules).stop
    assert not check_stop(state(history=(None, None, -0.3)), rules).stop


def test_labels_left() -> None:
    assert labels_left(state(labels=30), StopRules(max_labels=50)) == 20
    assert labels_left(state(labels=70), StopRules(max_labels=50)) == 0
    assert labels_left(state(), StopRules()) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_labels": 0}, "max_labels must be an integer >= 1 or None, got 0"),
        ({"max_rounds": 2.5}, "max_rounds must be an integer >= 1 or None, got 2.5"),
        ({"no_improvement_rounds": True}, "no_improvement_rounds must be an integer >= 1"),
        ({"min_improvement_ev": -0.1}, "min_improvement_ev must be finite and >= 0"),
        ({"min_improvement_ev": math.inf}, "min_improvement_ev must be finite and >= 0"),
    ],
)
def test_rule_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AcquisitionError, match=message):
        StopRules(**kwargs)  # type: ignore[arg-type]


def test_state_validation() -> None:
    with pytest.raises(AcquisitionError, match="labels_used must be an integer >= 0, got -1"):
        StopState(0, -1, 5)
    with pytest.raises(AcquisitionError, match="pool_remaining must be an integer >= 0, got None"):
        StopState(0, 0, None)  # type: ignore[arg-type]
    with pytest.raises(AcquisitionError, match=r"best_label_history_ev\[1\] is NaN"):
        StopState(2, 5, 5, (0.0, math.nan))


def test_an_empty_last_batch_stops_the_campaign() -> None:
    state = StopState(rounds_completed=4, labels_used=10, pool_remaining=5, last_batch_empty=True)
    decision = check_stop(state, StopRules(max_rounds=None))
    assert decision.stop and decision.reason == StopReason.POOL_EXHAUSTED
    assert "nothing it could acquire" in decision.detail
