from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from rdkit import Chem

from alloop.surrogate.errors import FeaturisationError, SurrogateError
from alloop.surrogate.smiles import formula_from_smiles, hill_formula, smiles_from_atoms


def _boxed(atoms: Atoms, box_ang: float = 12.0) -> Atoms:
    atoms = atoms.copy()
    atoms.set_cell([box_ang] * 3)
    atoms.pbc = True
    atoms.center()
    return atoms


def test_simple_molecules() -> None:
    assert smiles_from_atoms(_boxed(molecule("CH3CH2OH"))) == "CCO"
    assert smiles_from_atoms(_boxed(molecule("CH3CHO"))) == "CC=O"
    assert smiles_from_atoms(_boxed(molecule("C6H6"))) == "c1ccccc1"


def test_molecule_split_by_periodic_boundary() -> None:
    atoms = _boxed(molecule("CH3CH2OH"))
    atoms.translate([-atoms.positions[1, 0], 0.0, 0.0])  # C atom onto the x = 0 face
    atoms.wrap()
    span = np.ptp(atoms.positions[:, 0])
    assert span > 6.0  # really split across the box face
    assert smiles_from_atoms(atoms) == "CCO"


def test_ez_stereo_from_3d() -> None:
    # trans- and cis-2-butene from rotated methyl positions around a planar C=C.
    def butene(cis: bool) -> Atoms:
        sign = 1.0 if cis else -1.0
        pos = [
            [0.0, 0.0, 0.0],
            [1.34, 0.0, 0.0],
            [-0.75, 1.30, 0.0],
            [2.09, sign * 1.30, 0.0],
            [-0.55, -0.95, 0.0],
            [1.89, -sign * 0.95, 0.0],
            [-1.83, 1.10, 0.0],
            [-0.50, 1.88, 0.89],
            [-0.50, 1.88, -0.89],
            [3.17, sign * 1.10, 0.0],
            [1.84, sign * 1.88, 0.89],
            [1.84, sign * 1.88, -0.89],
        ]
        return _boxed(Atoms("C4H2H6", positions=pos))

    cis, trans = smiles_from_atoms(butene(True)), smiles_from_atoms(butene(False))
    assert cis == r"C/C=C\C"
    assert trans == "C/C=C/C"
    assert smiles_from_atoms(butene(True), stereo=False) == "CC=CC"


def test_every_fg_molecule_gets_a_consistent_smiles(fg_molecules) -> None:  # noqa: ANN001
    assert len(fg_molecules) == 207
    for mol in fg_molecules:
        parsed = Chem.MolFromSmiles(mol.smiles)
        assert parsed is not None, mol.key
        assert formula_from_smiles(mol.smiles) == hill_formula(mol.gas), mol.key
        assert Chem.GetFormalCharge(parsed) == 0, mol.key
        assert len(Chem.GetMolFrags(parsed)) == 1, mol.key
    smiles = [m.smiles for m in fg_molecules]
    # Stereo from 3D separates the E/Z and R/S partners: every molecule is distinct ...
    assert len(set(smiles)) == 207
    # ... although 2D graphs alone collapse some of them (24 stereo groups in the data README).
    flat = {Chem.MolToSmiles(Chem.MolFromSmiles(s), isomericSmiles=False) for s in smiles}
    assert len(flat) < 207


def test_formula_helpers() -> None:
    assert formula_from_smiles("OCC") == "C2H6O"
    assert formula_from_smiles("O") == "H2O"
    assert hill_formula(Atoms("OH2")) == "H2O"
    with pytest.raises(FeaturisationError, match="cannot parse SMILES 'C1CC'"):
        formula_from_smiles("C1CC")


def test_empty_structure_is_refused() -> None:
    with pytest.raises(FeaturisationError, match="empty structure"):
        smiles_from_atoms(Atoms())


def test_impossible_bonding_is_refused() -> None:
    two_far_carbons = Atoms("C2", positions=[[0, 0, 0], [5, 0, 0]])
    with pytest.raises(SurrogateError, match="bond perception failed for C2 with charge=0"):
        smiles_from_atoms(two_far_carbons)


def test_wrong_charge_is_refused() -> None:
    with pytest.raises(FeaturisationError, match="charge=1"):
        smiles_from_atoms(_boxed(molecule("CH4")), charge=1)


def test_lone_atom_formula_mismatch_is_refused() -> None:
    with pytest.raises(FeaturisationError, match="formula H2, structure has H"):
        smiles_from_atoms(Atoms("H"))


def test_every_oc20_adsorbate_gets_a_distinct_formula_preserving_smiles():
    """Open-shell fragments (*OH, *CCH, ...) defeat closed-shell bond perception; the fallback
    names them by connectivity and unpaired electrons."""
    from alloop.oracles.adsorbates import adsorbate_from_database, database_names
    from alloop.surrogate.smiles import adsorbate_smiles, formula_from_smiles, hill_formula

    names = database_names()
    found = {n: adsorbate_smiles(adsorbate_from_database(n).atoms) for n in names}
    for name, smiles in found.items():
        atoms = adsorbate_from_database(name).atoms
        assert formula_from_smiles(smiles) == hill_formula(atoms), (name, smiles)
    assert len(set(found.values())) == len(names) == 86
    assert found["*OH"] == "[OH]" and found["*C"] == "[C]" and found["*OHCH3"] == "CO"


def test_fragment_smiles_refuses_empty_structure():
    from ase import Atoms

    from alloop.surrogate.smiles import fragment_smiles_from_atoms

    with pytest.raises(SurrogateError, match="empty structure"):
        fragment_smiles_from_atoms(Atoms())
