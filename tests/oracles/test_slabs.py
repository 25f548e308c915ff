from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk, fcc100, fcc111
from ase.io import write

from alloop.oracles.errors import StructureError
from alloop.oracles.hashing import atoms_hash
from alloop.oracles.slabs import (
    find_layers,
    fixed_mask,
    prepare_slab,
    slab_from_bulk,
    slab_from_file,
)


def test_prepare_slab_tags_top_layer_and_fixes_bottom() -> None:
    slab = prepare_slab(fcc111("Pt", size=(2, 2, 4), vacuum=6.0), n_fixed_layers=2)
    layers = find_layers(slab)
    assert layers.max() == 3
    tags = slab.get_tags()
    assert set(np.flatnonzero(tags == 1)) == set(np.flatnonzero(layers == 3))
    assert set(np.flatnonzero(fixed_mask(slab))) == set(np.flatnonzero(layers < 2))
    # default: bottom half fixed
    default = prepare_slab(fcc111("Pt", size=(2, 2, 4), vacuum=6.0))
    assert fixed_mask(default).sum() == 8


def test_prepare_slab_errors() -> None:
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=6.0)
    with pytest.raises(StructureError, match=r"n_fixed_layers=3 must be in 0..2"):
        prepare_slab(slab, n_fixed_layers=3)
    nonperiodic = slab.copy()
    nonperiodic.pbc = False
    with pytest.raises(StructureError, match="periodic in x and y"):
        prepare_slab(nonperiodic)


def test_slab_from_file_keeps_selective_dynamics(tmp_path: Path) -> None:
    slab = prepare_slab(fcc111("Ag", size=(2, 2, 4), vacuum=6.0), n_fixed_layers=1)
    path = tmp_path / "slab.contcar"
    write(path, slab, format="vasp")
    read_back = slab_from_file(path)
    assert fixed_mask(read_back).sum() == 4  # VASP selective dynamics kept
    assert (read_back.get_tags() == 1).sum() == 4
    with pytest.raises(StructureError, match="slab file not found"):
        slab_from_file(tmp_path / "missing.contcar")


def test_slab_from_bulk_with_fairchem_data_oc() -> None:
    slab = slab_from_bulk(bulk("Cu", "fcc", a=3.6), (1, 0, 0), min_ab_ang=5.0, n_fixed_layers=2)
    assert slab.get_chemical_formula().startswith("Cu")
    assert np.linalg.norm(slab.cell[0]) >= 5.0
    assert (slab.get_tags() == 1).any() and fixed_mask(slab).any()
    assert not (fixed_mask(slab) & (slab.get_tags() == 1)).any()
    with pytest.raises(StructureError, match="shift_index=7 out of range"):
        slab_from_bulk(bulk("Cu", "fcc", a=3.6), (1, 0, 0), min_ab_ang=5.0, shift_index=7)


def test_atoms_hash_is_content_based() -> None:
    a = prepare_slab(fcc100("Cu", size=(2, 2, 3), vacuum=5.0))
    b = a.copy()
    assert atoms_hash(a) == atoms_hash(b)
    b.positions[0, 0] += 1e-7  # below the rounding
    assert atoms_hash(a) == atoms_hash(b)
    b.positions[-1, 2] += 0.01
    assert atoms_hash(a) != atoms_hash(b)
    c = prepare_slab(a, n_fixed_layers=0)
    assert atoms_hash(a) != atoms_hash(c)  # constraints are part of the content
