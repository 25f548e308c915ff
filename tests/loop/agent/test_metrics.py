"""Round metrics (`loop/agent/metrics.py`) on a real SQLite campaign with labels of several
fidelities written through the store: the label that counts per pair, the best one, the pairs
that used the label budget, and what a round closes with (batch error and coverage against
the right fidelity, cost, timings); a hand-edited infinite label is refused."""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from alloop.loop.agent.labels import LabelError
from alloop.loop.agent.metrics import (
    TIMED_STEPS,
    best_label,
    close_metrics,
    counted_labels,
    labels_used,
)
from alloop.loop.bridges.surrogate import PoolView
from alloop.loop.config import AlloopConfig, parse_config
from alloop.store import CampaignStore, RoundState
from alloop.store.records import NewAcquisition, NewJob, NewLabel

# the tiny pool of tests/conftest.py: Pt(111), Cu(111) x CO, H2O, ethanol
A, B, C, D, E = "Pt(111)|CO", "Pt(111)|H2O", "Pt(111)|ethanol", "Cu(111)|CO", "Cu(111)|H2O"


def config(mode: str) -> AlloopConfig:
    return parse_config(
        {
            "campaign": {"name": "metrics", "seed": 1},
            "pool": {"surfaces": [{"bulk": "Pt"}], "adsorbates": [{"name": "*H"}]},  # not read
            "surrogate": {"fidelity_mode": mode},
            "cost": {"mlip": 1, "dft": 10},
        }
    )


def add(store: CampaignStore, key: str, ev: float | None, status: str, fidelity: str) -> None:
    store.add_label(key, NewLabel(ev, status, fidelity))


@pytest.fixture
def store(make_store: Callable[..., CampaignStore]) -> CampaignStore:
    """Labels in insertion order (later is newer):

    A: MLIP -1.0, then DFT -0.5        -> the DFT one counts
    B: MLIP -2.0, then a failed DFT    -> the MLIP one (a failure never counts)
    C: failed MLIP only                -> nothing counts, but the pair used the budget
    D: DFT -0.3, then MLIP -0.9        -> the DFT one (a newer MLIP label does not supersede it)
    E: MLIP -1.1, then MLIP -1.3       -> the newer
    """
    opened = make_store()
    add(opened, A, -1.0, "ok", "mlip")
    add(opened, A, -0.5, "ok", "dft_relax")
    add(opened, B, -2.0, "ok", "mlip")
    add(opened, B, None, "failed", "dft_single_point")
    add(opened, C, None, "failed", "mlip")
    add(opened, D, -0.3, "ok", "dft_relax")
    add(opened, D, -0.9, "ok", "mlip")
    add(opened, E, -1.1, "ok", "mlip")
    add(opened, E, -1.3, "ok", "mlip")
    return opened


def test_counted_labels_best_label_and_labels_used(store: CampaignStore) -> None:
    assert counted_labels(store) == {A: -0.5, B: -2.0, D: -0.3, E: -1.3}
    assert best_label(store) == -2.0
    assert labels_used(store) == 5  # C's failed label used the budget too


def test_an_empty_campaign_has_no_labels_and_no_best(
    make_store: Callable[..., CampaignStore],
) -> None:
    store = make_store()
    assert counted_labels(store) == {} and best_label(store) is None and labels_used(store) == 0


def round_zero(store: CampaignStore, timing: dict[str, float]) -> None:
    """Round 0 acquired A, B, C, D, E with these μ, σ and ran their jobs (plus A's DFT job);
    round 1 ran one more MLIP job."""
    store.begin_round(0, RoundState.STARTED.value)
    store.set_round_state(0, RoundState.LABELLED.value, metrics={"timing": timing})
    picks = [(A, -0.4, 0.1), (B, -1.0, 0.2), (C, -1.0, 0.2), (D, -0.3, 0.05), (E, -1.3, None)]
    store.record_acquisitions(
        0, [NewAcquisition(k, i, 0.0, mu, sd, "lcb") for i, (k, mu, sd) in enumerate(picks)]
    )
    store.propose_jobs(0, [NewJob.for_round(0, k, "mlip") for k in (A, B, C, D, E)])
    store.propose_jobs(0, [NewJob.for_round(0, A, "dft_relax")])
    store.begin_round(1, RoundState.STARTED.value)
    store.propose_jobs(1, [NewJob.for_round(1, E, "mlip")])


def test_close_metrics_scores_the_batch_against_the_counted_label(store: CampaignStore) -> None:
    round_zero(store, {"train_s": 1.5, "label_s": 2.0})
    rnd = store.rounds()[0]
    metrics = close_metrics(store, config("supersede"), PoolView.load(store), rnd)
    # A: |-0.4 - -0.5| = 0.1 <= 1.96 x 0.1; B: 1.0 > 1.96 x 0.2; D: 0; C has no label, E no σ
    assert metrics["n_batch_scored"] == 3
    assert metrics["batch_mae_ev"] == pytest.approx((0.1 + 1.0 + 0.0) / 3)
    assert metrics["batch_coverage_95"] == pytest.approx(2 / 3)
    assert metrics["n_labels"] == 5 and metrics["best_gmae_ev"] == -2.0
    assert metrics["n_target_labels"] == 2 and metrics["best_target_ev"] == -0.5
    assert metrics["cost_round"] == 5 * 1 + 10  # five MLIP jobs and one DFT job
    assert metrics["cost_total"] == 16
    assert metrics["cost_by_fidelity"] == {"mlip": 6, "dft_relax": 10}
    timing = metrics["timing"]
    assert timing["train_s"] == 1.5 and timing["label_s"] == 2.0
    assert timing["overhead_s"] == 0.0  # the round started just now: less than 3.5 s ago


def test_at_the_target_fidelity_the_batch_is_scored_against_dft_labels_only(
    store: CampaignStore,
) -> None:
    round_zero(store, {})
    rnd = store.rounds()[0]
    pool = PoolView.load(store)
    for cfg in (config("delta"), config("token")):
        metrics = close_metrics(store, cfg, pool, rnd)
        # A against its DFT -0.5, D against -0.3; B's only usable label is MLIP: not scored
        assert metrics["n_batch_scored"] == 2
        assert metrics["batch_mae_ev"] == pytest.approx(0.05)
        assert metrics["batch_coverage_95"] == 1.0


def test_overhead_is_the_wall_time_the_timed_steps_do_not_cover(store: CampaignStore) -> None:
    timing = {step: 10.0 for step in TIMED_STEPS} | {"acquire_s": 99.0}  # not a timed step
    round_zero(store, timing)
    rnd = store.rounds()[0]
    earlier = replace(rnd, started_at=rnd.started_at - timedelta(seconds=100))
    metrics = close_metrics(store, config("supersede"), PoolView.load(store), earlier)
    assert metrics["timing"]["acquire_s"] == 99.0
    assert metrics["timing"]["overhead_s"] == pytest.approx(100 - 10 * len(TIMED_STEPS), abs=5)


def test_a_round_with_nothing_to_score_reports_no_batch_error(
    make_store: Callable[..., CampaignStore],
) -> None:
    store = make_store()
    store.begin_round(0, RoundState.STARTED.value)
    store.record_acquisitions(0, [NewAcquisition(A, 0, 0.0, -1.0, 0.1, "lcb")])
    metrics = close_metrics(store, config("supersede"), PoolView.load(store), store.rounds()[0])
    assert metrics["n_batch_scored"] == 0
    assert "batch_mae_ev" not in metrics and "batch_coverage_95" not in metrics
    assert metrics["best_gmae_ev"] is None and metrics["best_target_ev"] is None
    assert metrics["cost_round"] == 0 and metrics["cost_by_fidelity"] == {}


def test_an_infinite_label_edited_into_the_file_is_refused(store: CampaignStore) -> None:
    # the store refuses a non-finite value and its CHECK a NULL one, but a hand-edited file
    # can hold an infinite energy: the metrics name the pair instead of reporting -inf
    path = store.target.path
    assert path is not None
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE label SET gmae_ev = ? WHERE gmae_ev = -1.3", (-math.inf,))
    conn.close()
    refused = re.escape(f"pair {E}: status 'ok' with gmae_ev -inf")
    with pytest.raises(LabelError, match=refused):
        counted_labels(store)
    with pytest.raises(LabelError, match=refused):
        best_label(store)
