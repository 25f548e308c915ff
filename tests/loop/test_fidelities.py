"""The one rule for which label of a pair counts, and the fidelity classes."""

from __future__ import annotations

from typing import NamedTuple

from alloop.loop.agent.escalation import DEFAULT_FIDELITY_RANK, training_labels
from alloop.loop.agent.fidelities import FIDELITY_RANK, is_low_fidelity, labels_that_count


class Lab(NamedTuple):
    pair_key: str
    status: str
    fidelity: str
    gmae_ev: float | None
    pair_id: int = 0


def test_highest_fidelity_then_newest_ok_label_counts() -> None:
    labels = [
        Lab("a", "ok", "dft_relax", -1.0),
        Lab("a", "ok", "mlip", -1.7),  # newer, but MLIP: DFT still counts
        Lab("b", "ok", "mlip", -0.5),
        Lab("b", "ok", "mlip", -0.6),  # same rank: the newest counts
        Lab("c", "ok", "mlip", -0.2),
        Lab("c", "failed", "dft_relax", None),  # a failed DFT run does not replace an ok label
        Lab("d", "anomalous", "mlip", None),
        Lab("d", "failed", "mlip", None),  # nothing ok: the newest shows
    ]
    counting = labels_that_count(labels)
    assert counting["a"].gmae_ev == -1.0
    assert counting["b"].gmae_ev == -0.6
    assert counting["c"].gmae_ev == -0.2
    assert counting["d"].status == "failed"


def test_training_labels_apply_the_same_rank() -> None:
    assert DEFAULT_FIDELITY_RANK is FIDELITY_RANK
    rows = [(1, "dft_relax", -1.0, "ok"), (1, "mlip", -1.7, "ok"), (2, "replay", -0.3, "ok")]
    chosen = training_labels(rows)
    assert chosen[1].gmae_ev == -1.0 and chosen[2].gmae_ev == -0.3
    mine = labels_that_count(Lab(str(i), st, f, e) for i, f, e, st in rows)
    assert {k: v.gmae_ev for k, v in mine.items()} == {"1": -1.0, "2": -0.3}


def test_only_mlip_is_low_fidelity() -> None:
    assert is_low_fidelity("mlip")
    assert not any(is_low_fidelity(f) for f in ("dft_relax", "dft_single_point", "replay"))
