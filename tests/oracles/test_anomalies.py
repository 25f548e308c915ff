"""Each anomaly kind on a constructed case, plus a clean adsorption that raises none."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate, fcc111, molecule

from alloop.oracles.anomalies import AnomalySettings, detect_anomalies
from alloop.oracles.slabs import prepare_slab


@pytest.fixture()
def slab() -> Atoms:
    return prepare_slab(fcc111("Cu", size=(3, 3, 3), vacuum=8.0), n_fixed_layers=1)


def _adsorbed(slab: Atoms, ads: Atoms, height: float, site: str = "fcc") -> Atoms:
    system = slab.copy()
    add_adsorbate(system, ads, height, site)
    tags = system.get_tags()
    tags[len(slab) :] = 2
    system.set_tags(tags)
    return system


def test_clean_adsorption_has_no_flags(slab: Atoms) -> None:
    co = _adsorbed(slab, molecule("CO")[::-1], 1.9, "ontop")  # C down
    assert detect_anomalies(co, co.copy(), slab, molecule("CO")[::-1]) == []


def test_desorbed(slab: Atoms) -> None:
    initial = _adsorbed(slab, Atoms("O"), 1.2)
    final = initial.copy()
    final.positions[-1, 2] += 6.0
    assert detect_anomalies(initial, final, slab) == ["desorbed"]


def test_dissociated(slab: Atoms) -> None:
    co = molecule("CO")[::-1]
    initial = _adsorbed(slab, co, 1.9, "ontop")
    final = initial.copy()
    final.positions[-1, :2] += 2.5  # O pulled 2.5 Å sideways: C-O bond broken
    assert "dissociated" in detect_anomalies(initial, final, slab, co)


def test_dissociated_against_intact_molecule(slab: Atoms) -> None:
    # a placement built from an already broken molecule: initial == final, but not intact
    broken = Atoms("CO", positions=[[0, 0, 0], [2.6, 0, 0]])
    initial = _adsorbed(slab, broken, 1.9, "ontop")
    assert detect_anomalies(initial, initial.copy(), slab) == []
    assert detect_anomalies(initial, initial.copy(), slab, molecule("CO")) == ["dissociated"]


def test_reconstructed(slab: Atoms) -> None:
    initial = _adsorbed(slab, Atoms("O"), 1.2)
    final = initial.copy()
    top = np.flatnonzero(slab.get_tags() == 1)[0]
    final.positions[top, 2] += 3.0  # a surface atom pulled out of the surface
    assert "reconstructed" in detect_anomalies(initial, final, slab)


def test_intercalated_by_bond_to_subsurface(slab: Atoms) -> None:
    initial = _adsorbed(slab, Atoms("O"), 1.2)
    final = initial.copy()
    layer_gap = (
        slab.positions[:, 2].max() - np.sort(np.unique(np.round(slab.positions[:, 2], 3)))[-2]
    )
    final.positions[-1, 2] = slab.positions[:, 2].max() - layer_gap / 2  # between layers 1 and 2
    flags = detect_anomalies(initial, final, slab)
    assert "intercalated" in flags


def test_intercalated_in_the_surface_plane(slab: Atoms) -> None:
    # H sunk 0.4 Å below the top layer's plane in a hollow: beyond bond distance (+skin) of every
    # subsurface atom, so fairchem's bonded test misses it; it is below the local surface
    initial = _adsorbed(slab, Atoms("H"), 1.0)
    final = initial.copy()
    final.positions[-1, 2] = slab.positions[:, 2].max() - 0.4
    from fairchem.data.oc.utils.flag_anomaly import DetectTrajAnomaly

    fairchem_only = DetectTrajAnomaly(initial, final, final.get_tags(), final_slab_atoms=slab)
    assert not fairchem_only.is_adsorbate_intercalated()
    assert "intercalated" in detect_anomalies(initial, final, slab)
    lenient = AnomalySettings(intercalation_depth_ang=5.0)
    assert "intercalated" not in detect_anomalies(initial, final, slab, settings=lenient)
