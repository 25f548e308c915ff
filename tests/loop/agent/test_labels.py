"""The label vocabulary and the one rule for which label of a pair counts."""

from __future__ import annotations

import math
import typing
from typing import NamedTuple

import pytest

from alloop.loop.agent.labels import (
    DFT_FIDELITIES,
    FIDELITY_RANK,
    LABEL_STATUSES,
    LOW_FIDELITIES,
    TARGET_FIDELITIES,
    LabelError,
    counted_energies,
    dft_fidelity,
    is_dft_job,
    is_low_fidelity,
    labels_that_count,
)
from alloop.loop.agent.training import binding_sites, chosen_labels
from alloop.loop.bridges.surrogate import ChosenLabel
from alloop.loop.config import EscalationSection
from alloop.oracles import types as oracle_types
from alloop.oracles.dft_settings import DFTOracleSettings
from alloop.store.enums import Fidelity, LabelStatus


class Lab(NamedTuple):
    pair_key: str
    status: str
    fidelity: str
    gmae_ev: float | None
    pair_id: int = 0
    binding_atoms: tuple[int, ...] | None = None


def lab(
    pair_id: int,
    fidelity: str,
    gmae_ev: float | None,
    status: str = "ok",
    binding_atoms: tuple[int, ...] | None = None,
) -> Lab:
    return Lab(str(pair_id), status, fidelity, gmae_ev, pair_id, binding_atoms)


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
    assert set(labels_that_count(labels, usable=True)) == {"a", "b", "c"}  # what trains


def test_ranks_replay_with_dft_relax_and_the_later_equal_wins() -> None:
    rows = [
        lab(1, "mlip", -1.0),
        lab(1, "dft_relax", -0.7),
        lab(1, "dft_single_point", -0.8),  # lower rank than dft_relax: does not supersede
        lab(4, "dft_relax", -0.5),
        lab(4, "replay", -0.6),  # equal rank, later: counts
    ]
    counted = labels_that_count(rows, usable=True)
    assert (counted["1"].fidelity, counted["1"].gmae_ev) == ("dft_relax", -0.7)
    assert (counted["4"].fidelity, counted["4"].gmae_ev) == ("replay", -0.6)


def test_within_a_fidelity_class_and_in_pair_id_order() -> None:
    rows = [
        lab(3, "mlip", -0.3),
        lab(3, "dft_relax", -0.9),
        lab(1, "mlip", -1.1),
        lab(1, "mlip", -1.2),
        lab(2, "dft_single_point", None, "failed"),
    ]
    assert counted_energies(rows) == {1: -1.2, 3: -0.9}
    assert list(counted_energies(rows)) == [1, 3]
    assert counted_energies(rows, fidelities=LOW_FIDELITIES) == {1: -1.2, 3: -0.3}
    assert counted_energies(rows, fidelities=TARGET_FIDELITIES) == {3: -0.9}


def test_what_trains_by_fidelity_mode() -> None:
    rows = [lab(3, "mlip", -0.3), lab(3, "dft_relax", -0.9), lab(1, "mlip", -1.1)]
    assert chosen_labels(rows, "supersede") == [  # type: ignore[arg-type]
        ChosenLabel(1, -1.1, low_fidelity=True),
        ChosenLabel(3, -0.9, low_fidelity=False),
    ]
    assert chosen_labels(rows, "delta") == [  # type: ignore[arg-type]
        ChosenLabel(1, -1.1, low_fidelity=True),
        ChosenLabel(3, -0.9, low_fidelity=False),
        ChosenLabel(3, -0.3, low_fidelity=True),
    ]


def test_every_sample_of_a_pair_trains_toward_the_site_of_its_counting_named_label() -> None:
    """A DFT label names no binding atoms: the pair keeps its MLIP label's site; among labels
    that name one, the rule that picks the value picks the site (newest MLIP here)."""
    rows = [
        lab(3, "mlip", -0.3, binding_atoms=(4,)),
        lab(3, "dft_relax", -0.9),
        lab(1, "mlip", -1.1, binding_atoms=(0, 1)),
        lab(1, "mlip", -1.2, binding_atoms=(2,)),
        lab(2, "mlip", None, "failed", binding_atoms=(5,)),  # not usable: no site either
        lab(2, "replay", -0.4),
    ]
    assert binding_sites(rows) == {1: (2,), 3: (4,)}  # type: ignore[arg-type]
    assert chosen_labels(rows, "supersede") == [  # type: ignore[arg-type]
        ChosenLabel(1, -1.2, True, (2,)),
        ChosenLabel(2, -0.4, False, None),
        ChosenLabel(3, -0.9, False, (4,)),
    ]
    assert chosen_labels(rows, "delta")[-2:] == [  # type: ignore[arg-type]
        ChosenLabel(3, -0.9, False, (4,)),
        ChosenLabel(3, -0.3, True, (4,)),
    ]


def test_labels_the_rule_cannot_place() -> None:
    with pytest.raises(LabelError, match=r"pair 1: unknown fidelity 'dft'; valid: \['dft_relax'"):
        labels_that_count([lab(1, "dft", -1.0)])
    with pytest.raises(LabelError, match=r"pair 1: unknown status 'done'; valid: \['ok'"):
        labels_that_count([lab(1, "mlip", -1.0, "done")])
    with pytest.raises(LabelError, match="pair 7: status 'ok' with gmae_ev None"):
        counted_energies([lab(7, "mlip", None)])
    with pytest.raises(LabelError, match="pair 7: status 'ok' with gmae_ev nan"):
        labels_that_count([lab(7, "mlip", math.nan)])


def test_fidelity_classes_cover_the_store_vocabulary() -> None:
    every = {f.value for f in Fidelity}
    assert set(FIDELITY_RANK) == every == LOW_FIDELITIES | TARGET_FIDELITIES
    assert DFT_FIDELITIES <= TARGET_FIDELITIES and not LOW_FIDELITIES & TARGET_FIDELITIES
    assert is_low_fidelity("mlip")
    assert not any(is_low_fidelity(f) for f in ("dft_relax", "dft_single_point", "replay"))


def test_oracle_and_store_spell_the_same_names() -> None:
    """The oracles package may not import the store, so it spells the names itself."""
    assert set(oracle_types.FIDELITIES) == {f.value for f in Fidelity}
    assert set(typing.get_args(oracle_types.Fidelity)) == {f.value for f in Fidelity}
    assert oracle_types.STATUSES == LABEL_STATUSES == tuple(s.value for s in LabelStatus)
    assert set(typing.get_args(oracle_types.Status)) == set(LABEL_STATUSES)


def test_dft_fidelity_is_the_dft_oracles_own() -> None:
    for mode in ("single_point", "relax"):
        section = EscalationSection(mode=mode)
        assert dft_fidelity(section) == DFTOracleSettings(mode=mode).fidelity
        assert dft_fidelity(section) in DFT_FIDELITIES

    class Job(NamedTuple):
        kind: str

    assert is_dft_job(Job("dft_relax")) and not is_dft_job(Job("mlip"))  # type: ignore[arg-type]
    assert not is_dft_job(Job("replay"))  # type: ignore[arg-type]
