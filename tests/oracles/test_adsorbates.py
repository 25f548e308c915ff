from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule
from ase.io import write

from alloop.oracles.adsorbates import (
    adsorbate_from_database,
    adsorbate_from_file,
    adsorbate_from_smiles,
    database_names,
    default_binding_atoms,
    resolve_adsorbate,
)
from alloop.oracles.errors import StructureError
from alloop.oracles.types import AdsorbateSpec


def test_database_adsorbates_carry_binding_atoms() -> None:
    names = database_names()
    assert {"*O", "*OH", "*CO", "*H", "*N"} <= set(names)
    oh = adsorbate_from_database("*OH")
    assert oh.atoms is not None and oh.atoms.get_chemical_symbols()[oh.binding_atoms[0]] == "O"
    bidentate = adsorbate_from_database("*CH2*O")
    assert len(bidentate.binding_atoms) == 2
    with pytest.raises(StructureError, match=r"Did you mean '\*CO'"):
        adsorbate_from_database("CO")


def test_smiles_embedding_and_binding_rule() -> None:
    spec = adsorbate_from_smiles("CCO", seed=3)
    assert spec.atoms is not None
    assert spec.atoms.get_chemical_formula() == "C2H6O"
    atoms, binding = resolve_adsorbate(spec)
    assert binding == (0, 1, 2)  # every heavy atom, SMILES order
    d_co = atoms.get_distance(1, 2)
    assert 1.3 < d_co < 1.5  # a real C-O bond from the embedding
    assert np.allclose(atoms.positions.mean(axis=0), 0.0, atol=1e-9)
    # same seed, same geometry: no hidden global random state
    again = adsorbate_from_smiles("CCO", seed=3)
    assert again.atoms is not None and np.allclose(again.atoms.positions, spec.atoms.positions)
    assert default_binding_atoms(molecule("H2")) == (0, 1)
    with pytest.raises(StructureError, match="cannot parse SMILES 'C1CC'"):
        adsorbate_from_smiles("C1CC")


def test_smiles_only_spec_is_embedded_on_resolve() -> None:
    atoms, binding = resolve_adsorbate(AdsorbateSpec("water", "O", None, ()), seed=1)
    assert atoms.get_chemical_formula() == "H2O" and binding == (0,)


def test_adsorbate_from_file(tmp_path: Path) -> None:
    path = tmp_path / "co.xyz"
    write(path, molecule("CO"))
    spec = adsorbate_from_file(path, binding_atoms=(1,))
    assert spec.name == "co" and spec.binding_atoms == (1,)
    with pytest.raises(StructureError, match="adsorbate file not found"):
        adsorbate_from_file(tmp_path / "nope.xyz")
