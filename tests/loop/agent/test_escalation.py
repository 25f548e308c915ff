"""Escalation reason codes, budgets and ordering (label supersession: test_labels.py beside it)."""

from __future__ import annotations

import math
import random

import pytest

from alloop.loop.agent.acquisition import AcquisitionError
from alloop.loop.agent.escalation import (
    EscalationCandidate,
    EscalationPolicy,
    EscalationReason,
    plan_escalations,
)

R = EscalationReason
WINDOW = (-1.0, -0.5)


def cand(
    pair_id: int,
    *,
    label: float | None = 0.0,
    status: str = "ok",
    mu: float | None = 0.0,
    sigma: float | None = 0.5,
    spread: float | None = None,
    done: bool = False,
) -> EscalationCandidate:
    return EscalationCandidate(pair_id, label, status, mu, sigma, spread, done)


def policy(**kwargs: object) -> EscalationPolicy:
    defaults: dict[str, object] = {
        "dft_budget": 100,
        "per_round": 100,
        "target_window_ev": WINDOW,
        "strong_binder_k": 1,
    }
    return EscalationPolicy(**{**defaults, **kwargs})  # type: ignore[arg-type]


def codes(decisions: list) -> list[tuple[int, str]]:
    return [(d.pair_id, d.reason_code.value) for d in decisions]


def test_each_reason_fires_for_its_pair() -> None:
    pool = [
        cand(1, label=0.3, mu=-0.7, sigma=0.05),  # in window, confident
        cand(2, label=-2.0),  # strongest label
        cand(3, label=0.4, spread=0.8),  # oracle disagreement
        cand(4, label=None, status="anomalous"),  # anomalous
        cand(5, label=0.5, mu=-0.7, sigma=0.4),  # in window but not confident: nothing
        cand(6, label=0.6, spread=0.1),  # agreeing committee: nothing
    ]
    got = plan_escalations(pool, policy(), dft_spent=0)
    assert codes(got) == [
        (1, "IN_WINDOW_CONFIDENT"),
        (2, "STRONG_BINDER"),
        (3, "ORACLE_DISAGREEMENT"),
        (4, "ANOMALOUS"),
    ]
    assert got[0].detail == "mu=-0.700 eV in [-1, -0.5], sigma=0.050 <= 0.15 eV"
    assert got[1].detail == "label -2.000 eV ranks 1 of the 1 strongest"
    assert got[2].detail == "oracle disagreement 0.800 > 0.3 eV"
    assert got[3].detail == "MLIP label flagged anomalous"


def test_first_reason_in_priority_order_wins() -> None:
    both = [cand(1, label=-3.0, spread=1.0)]
    assert codes(plan_escalations(both, policy(), dft_spent=0)) == [(1, "STRONG_BINDER")]
    reordered = policy(reasons=(R.ORACLE_DISAGREEMENT, R.STRONG_BINDER))
    assert codes(plan_escalations(both, reordered, dft_spent=0)) == [(1, "ORACLE_DISAGREEMENT")]


def test_unlisted_reasons_never_fire() -> None:
    pool = [cand(1, status="anomalous", label=None), cand(2, spread=2.0)]
    got = plan_escalations(pool, policy(reasons=(R.ANOMALOUS,)), dft_spent=0)
    assert codes(got) == [(1, "ANOMALOUS")]


def test_ordering_within_reasons_and_determinism() -> None:
    pool = [
        cand(10, mu=-0.6, sigma=0.10),
        cand(11, mu=-0.6, sigma=0.02),
        cand(12, spread=0.5),
        cand(13, spread=0.9),
        cand(14, spread=0.5),
    ]
    expected = [
        (11, "IN_WINDOW_CONFIDENT"),
        (10, "IN_WINDOW_CONFIDENT"),
        (13, "ORACLE_DISAGREEMENT"),
        (12, "ORACLE_DISAGREEMENT"),
        (14, "ORACLE_DISAGREEMENT"),
    ]
    rules = policy(reasons=(R.IN_WINDOW_CONFIDENT, R.ORACLE_DISAGREEMENT))
    for seed in range(5):
        shuffled = pool[:]
        random.Random(seed).shuffle(shuffled)
        assert codes(plan_escalations(shuffled, rules, dft_spent=0)) == expected


def test_per_round_and_total_budgets() -> None:
    pool = [cand(i, spread=1.0 + i / 10) for i in range(6)]
    rules = policy(reasons=(R.ORACLE_DISAGREEMENT,), dft_budget=5, per_round=3)
    assert [d.pair_id for d in plan_escalations(pool, rules, dft_spent=0)] == [5, 4, 3]
    assert [d.pair_id for d in plan_escalations(pool, rules, dft_spent=3)] == [5, 4]
    assert plan_escalations(pool, rules, dft_spent=5) == []
    assert plan_escalations(pool, rules, dft_spent=9) == []
    assert plan_escalations(pool, policy(dft_budget=0), dft_spent=0) == []


def test_already_escalated_pairs_are_skipped_but_still_rank() -> None:
    pool = [cand(1, label=-3.0, done=True), cand(2, label=-2.0), cand(3, label=-1.0)]
    got = plan_escalations(pool, policy(reasons=(R.STRONG_BINDER,), strong_binder_k=2), dft_spent=1)
    assert codes(got) == [(2, "STRONG_BINDER")]  # pair 3 is third strongest, outside k=2


def test_strong_binders_use_usable_labels_only() -> None:
    pool = [
        cand(1, label=-5.0, status="anomalous"),
        cand(2, label=None, status="failed"),
        cand(3, label=-1.0),
        cand(4, label=-1.0),
    ]
    got = plan_escalations(pool, policy(reasons=(R.STRONG_BINDER,)), dft_spent=0)
    assert codes(got) == [(3, "STRONG_BINDER")]  # tie at -1.0 broken by pair id


def test_missing_prediction_never_counts_as_in_window() -> None:
    pool = [cand(1, mu=None, sigma=0.01), cand(2, mu=-0.7, sigma=None)]
    assert plan_escalations(pool, policy(reasons=(R.IN_WINDOW_CONFIDENT,)), dft_spent=0) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dft_budget": -1}, "dft_budget must be an integer >= 0, got -1"),
        ({"per_round": True}, "per_round must be an integer >= 0, got True"),
        ({"reasons": ("STRONG",)}, r"unknown escalation reason .*valid: \['IN_WINDOW_CONFIDENT'"),
        ({"reasons": (R.ANOMALOUS, "ANOMALOUS")}, "reasons repeat"),
        ({"sigma_max_ev": -0.1}, "sigma_max_ev must be finite and >= 0"),
        ({"disagreement_ev": math.nan}, "disagreement_ev must be finite and >= 0"),
        ({"target_window_ev": (0.0, -1.0)}, r"lo < hi; got \(0.0, -1.0\)"),
        ({"target_window_ev": None}, "IN_WINDOW_CONFIDENT needs target_window_ev"),
        ({"strong_binder_k": 0}, "STRONG_BINDER needs strong_binder_k >= 1"),
    ],
)
def test_policy_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AcquisitionError, match=message):
        policy(**kwargs)


def test_reasons_given_as_strings_become_codes() -> None:
    rules = policy(reasons=("ANOMALOUS", "STRONG_BINDER"))
    assert rules.reasons == (R.ANOMALOUS, R.STRONG_BINDER)


def test_candidate_validation() -> None:
    rules = policy()
    with pytest.raises(AcquisitionError, match=r"unknown status 'weird'; valid: \['ok'"):
        plan_escalations([cand(1, status="weird")], rules, dft_spent=0)
    with pytest.raises(AcquisitionError, match="pair 1 appears twice"):
        plan_escalations([cand(1), cand(1)], rules, dft_spent=0)
    with pytest.raises(AcquisitionError, match="pair 2: sigma_ev is nan"):
        plan_escalations([cand(2, sigma=math.nan)], rules, dft_spent=0)
    with pytest.raises(AcquisitionError, match="dft_spent must be an integer >= 0, got -1"):
        plan_escalations([], rules, dft_spent=-1)
