"""The search's patience rule (`StopRule`), placement by placement."""

from __future__ import annotations

from alloop.oracles.search import StopRule


def walk(rule: StopRule, energies: list[float | None]) -> int | None:
    """Feed placements (None = invalid) until the rule stops; the count walked, or None."""
    for i, e in enumerate(energies):
        rule.observe(e)
        if rule.done:
            return i + 1
    return None


def test_invalid_placements_count_toward_patience() -> None:
    assert walk(StopRule(2, 0.05), [-1.0, None, None, -5.0]) == 3


def test_improvement_within_tolerance_becomes_best_without_resetting_patience() -> None:
    rule = StopRule(2, 0.05)
    assert rule.observe(-1.0)
    assert rule.observe(-1.02)  # lower: the new best ...
    assert not rule.done
    assert not rule.observe(-0.5)
    assert rule.done  # ... but not by the tolerance: patience ran on from -1.0
    assert rule.best_ev == -1.02


def test_improvement_beyond_tolerance_resets_patience() -> None:
    assert walk(StopRule(2, 0.05), [-1.0, None, -1.2, None, None]) == 5


def test_without_a_valid_minimum_the_bar_is_twice_the_patience() -> None:
    assert walk(StopRule(2, 0.05), [None, None, None, None, None]) == 4


def test_min_valid_holds_the_stop_until_enough_valid_placements() -> None:
    energies: list[float | None] = [-1.0, None, None, None, -0.9, None, -0.8]
    assert walk(StopRule(2, 0.05), energies) == 3
    assert walk(StopRule(2, 0.05, min_valid=3), energies) == 7
