"""SMILES from 3D structures by RDKit bond perception.

The FG gas-phase molecules come as VASP CONTCARs without connectivity. Bonds and bond orders
are perceived with :func:`rdkit.Chem.rdDetermineBonds.DetermineBonds` (xyz2mol), and stereo
(E/Z double bonds, R/S centres) is read from the 3D coordinates, so that stereoisomers, which
share a 2D graph but not a GMAE, get distinct SMILES.
"""

from __future__ import annotations

import logging

import numpy as np
from ase import Atoms
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds
from rdkit.Geometry import Point3D
from rdkit.rdBase import BlockLogs

from alloop.surrogate.errors import FeaturisationError

__all__ = ["formula_from_smiles", "hill_formula", "mol_from_atoms", "smiles_from_atoms"]

logger = logging.getLogger(__name__)


def _unwrapped_positions(atoms: Atoms) -> np.ndarray:
    """Cartesian positions (`n x 3`, Å) with periodic images folded next to atom 0.

    A gas-phase molecule sits in a large periodic box; if it straddles a face, its atoms are
    brought back by the minimum-image convention relative to the first atom. Valid while the
    molecule is smaller than half the box, which holds for any sensible gas-phase cell.
    """
    pos = atoms.get_positions()
    if not atoms.pbc.any() or len(atoms) < 2:
        return pos
    cell = np.asarray(atoms.cell.array)
    if abs(np.linalg.det(cell)) < 1e-8:
        return pos
    frac = np.linalg.solve(cell.T, (pos - pos[0]).T).T
    frac[:, atoms.pbc] -= np.round(frac[:, atoms.pbc])
    return pos[0] + frac @ cell


def mol_from_atoms(atoms: Atoms, charge: int = 0) -> Chem.Mol:
    """RDKit molecule with perceived bonds, bond orders, 3D conformer and 3D stereo.

    Args:
        atoms: one molecule, `n` atoms, positions in Å (periodic images are unwrapped).
        charge: total charge in e.

    Raises:
        FeaturisationError: empty structure or bond-order perception failed.
    """
    if len(atoms) == 0:
        raise FeaturisationError("cannot perceive bonds of an empty structure (0 atoms)")
    pos = _unwrapped_positions(atoms)
    rw = Chem.RWMol()
    for z in atoms.numbers:
        rw.AddAtom(Chem.Atom(int(z)))
    conf = Chem.Conformer(len(atoms))
    for i, (x, y, z) in enumerate(pos):
        conf.SetAtomPosition(i, Point3D(float(x), float(y), float(z)))
    rw.AddConformer(conf, assignId=True)
    mol = rw.GetMol()
    blocker = BlockLogs()  # RDKit writes perception failures to stderr
    try:
        rdDetermineBonds.DetermineBonds(mol, charge=charge)
        Chem.SanitizeMol(mol)
    except (ValueError, RuntimeError, Chem.rdchem.MolSanitizeException) as exc:
        raise FeaturisationError(
            f"bond perception failed for {atoms.get_chemical_formula()} with charge={charge}: {exc}"
        ) from exc
    finally:
        del blocker
    Chem.AssignStereochemistryFrom3D(mol)
    return mol


def smiles_from_atoms(atoms: Atoms, charge: int = 0, stereo: bool = True) -> str:
    """Canonical SMILES of a 3D molecule by RDKit bond perception.

    Args:
        atoms: one molecule, `n` atoms, positions in Å.
        charge: total charge in e.
        stereo: keep E/Z and R/S assigned from the 3D coordinates (isomeric SMILES).

    Returns:
        Canonical SMILES with implicit hydrogens.

    Raises:
        FeaturisationError: perception failed, or the SMILES does not round-trip to the
            structure's formula.
    """
    mol = mol_from_atoms(atoms, charge=charge)
    blocker = BlockLogs()  # RemoveHs warns about lone H atoms; the formula check reports them
    smiles = Chem.MolToSmiles(Chem.RemoveHs(mol), isomericSmiles=stereo)
    del blocker
    expected = hill_formula(atoms)
    got = formula_from_smiles(smiles)
    if got != expected:
        raise FeaturisationError(
            f"perceived SMILES {smiles!r} has formula {got}, structure has {expected}"
        )
    return smiles


def fragment_smiles_from_atoms(atoms: Atoms) -> str:
    """SMILES of an open-shell fragment (an OC20 adsorbate such as ``*OH`` or ``*CCH``).

    Closed-shell bond-order perception fails on radicals, so this keeps connectivity only
    (bonds by covalent radii, all single) and gives each atom its unpaired electrons: default
    valence minus bonds. The result is a deterministic, formula-preserving name of the fragment
    for the descriptor vector, not a claim about its electronic structure.

    Raises:
        FeaturisationError: empty structure, or the SMILES does not round-trip to the formula.
    """
    if len(atoms) == 0:
        raise FeaturisationError("cannot perceive bonds of an empty structure (0 atoms)")
    rw = Chem.RWMol()
    for z in atoms.numbers:
        rw.AddAtom(Chem.Atom(int(z)))
    conf = Chem.Conformer(len(atoms))
    for i, (x, y, z) in enumerate(_unwrapped_positions(atoms)):
        conf.SetAtomPosition(i, Point3D(float(x), float(y), float(z)))
    rw.AddConformer(conf, assignId=True)
    blocker = BlockLogs()
    try:
        rdDetermineBonds.DetermineConnectivity(rw)
        table = Chem.GetPeriodicTable()
        for atom in rw.GetAtoms():
            atom.SetNoImplicit(True)
            free = table.GetDefaultValence(atom.GetAtomicNum()) - atom.GetDegree()
            atom.SetNumRadicalElectrons(max(0, free))
        mol = rw.GetMol()
        Chem.SanitizeMol(mol)
        smiles = Chem.MolToSmiles(Chem.RemoveHs(mol))
    except (ValueError, RuntimeError, Chem.rdchem.MolSanitizeException) as exc:
        raise FeaturisationError(
            f"connectivity perception failed for {atoms.get_chemical_formula()}: {exc}"
        ) from exc
    finally:
        del blocker
    if formula_from_smiles(smiles) != hill_formula(atoms):
        raise FeaturisationError(
            f"fragment SMILES {smiles!r} does not match the structure's formula "
            f"{hill_formula(atoms)}"
        )
    return smiles


def adsorbate_smiles(atoms: Atoms) -> str:
    """Closed-shell SMILES where bond perception succeeds, the fragment SMILES otherwise."""
    try:
        return smiles_from_atoms(atoms)
    except FeaturisationError:
        return fragment_smiles_from_atoms(atoms)


def hill_formula(atoms: Atoms) -> str:
    """Hill-order formula of a structure (`C`, `H`, then alphabetical), e.g. ``C2H6O``."""
    return atoms.get_chemical_formula(mode="hill")


def formula_from_smiles(smiles: str) -> str:
    """Hill-order formula of a SMILES with implicit hydrogens counted and charges ignored.

    Raises:
        FeaturisationError: RDKit cannot parse the SMILES.
    """
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise FeaturisationError(f"RDKit cannot parse SMILES {smiles!r}")
    counts: dict[str, int] = {}
    for atom in Chem.AddHs(mol).GetAtoms():
        counts[atom.GetSymbol()] = counts.get(atom.GetSymbol(), 0) + 1
    order: list[str] = [s for s in ("C", "H") if s in counts] if "C" in counts else []
    order += sorted(s for s in counts if s not in order)
    return "".join(s + (str(counts[s]) if counts[s] > 1 else "") for s in order)
