"""Adsorbates: by fairchem adsorbate-database name, by SMILES, or from a structure file.

Binding-atom rule (used when an ``AdsorbateSpec`` has no ``binding_atoms``): every heavy
(non-hydrogen) atom is tried in turn; a molecule of hydrogen only (H2) tries each atom. This is
the closed-shell rule: an intact molecule has no designated radical centre, so the search must
let each heavy atom face the surface. Database adsorbates (``*O``, ``*OH``, ``*CO``, ...) carry
their own binding atoms (the atoms marked ``*``).
"""

from __future__ import annotations

import logging
import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from alloop.oracles.errors import StructureError
from alloop.oracles.slabs import read_single
from alloop.oracles.types import AdsorbateSpec

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _adsorbate_database() -> dict[str, tuple[Atoms, tuple[int, ...]]]:
    """fairchem-data-oc's 86 OC20 adsorbates, keyed by their ``*``-SMILES name."""
    from fairchem.data.oc.databases.pkls import ADSORBATE_PKL_PATH

    with open(ADSORBATE_PKL_PATH, "rb") as handle:
        raw: dict[int, tuple[Any, ...]] = pickle.load(handle)
    return {
        entry[1]: (entry[0].copy(), tuple(int(i) for i in np.atleast_1d(entry[2])))
        for entry in raw.values()
    }


def database_names() -> list[str]:
    """Names accepted by :func:`adsorbate_from_database` (``"*O"``, ``"*OH"``, ``"*CO"``, ...)."""
    return sorted(_adsorbate_database())


def adsorbate_from_database(name: str) -> AdsorbateSpec:
    """The OC20 adsorbate ``name`` (e.g. ``"*CO"``) with its database binding atoms."""
    db = _adsorbate_database()
    if name not in db:
        close = [n for n in db if n.replace("*", "") == name.replace("*", "")]
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise StructureError(
            f"adsorbate {name!r} is not in the fairchem adsorbate database.{hint} Valid names "
            f"include {', '.join(sorted(db)[:12])}, ... ({len(db)} in all)"
        )
    atoms, binding = db[name]
    return AdsorbateSpec(name=name, smiles=None, atoms=atoms, binding_atoms=binding)


def adsorbate_from_smiles(
    smiles: str, name: str | None = None, binding_atoms: tuple[int, ...] = (), seed: int = 0
) -> AdsorbateSpec:
    """An adsorbate from SMILES, embedded in 3D now (RDKit ETKDG + MMFF, seeded).

    Atom order: the SMILES heavy atoms in order, then the hydrogens RDKit adds, so
    ``binding_atoms`` may be given as SMILES atom indices.
    """
    atoms = embed_smiles(smiles, seed=seed)
    return AdsorbateSpec(
        name=name or smiles, smiles=smiles, atoms=atoms, binding_atoms=binding_atoms
    )


def adsorbate_from_file(
    path: Path | str, name: str | None = None, binding_atoms: tuple[int, ...] = ()
) -> AdsorbateSpec:
    """An adsorbate from any ASE-readable molecule file (xyz, CONTCAR, ...)."""
    path = Path(path)
    if not path.is_file():
        raise StructureError(f"adsorbate file not found: {path}")
    atoms = read_single(path)
    atoms.set_constraint()
    atoms.pbc = False
    atoms.cell = None
    return AdsorbateSpec(
        name=name or path.stem, smiles=None, atoms=atoms, binding_atoms=binding_atoms
    )


def embed_smiles(smiles: str, seed: int = 0) -> Atoms:
    """3D geometry of a closed-shell or radical SMILES (Å), hydrogens made explicit."""
    from rdkit import Chem
    from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise StructureError(f"RDKit cannot parse SMILES {smiles!r}")
    mol = Chem.AddHs(mol)
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = int(seed)  # type: ignore[assignment]  # rdkit stubs call it EmbedParameters
    if rdDistGeom.EmbedMolecule(mol, params) != 0:
        raise StructureError(f"RDKit could not embed SMILES {smiles!r} in 3D")
    if mol.GetNumAtoms() > 1 and rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol):
        rdForceFieldHelpers.MMFFOptimizeMolecule(mol)
    positions = mol.GetConformer().GetPositions()
    symbols = [atom.GetSymbol() for atom in mol.GetAtoms()]
    return Atoms(symbols=symbols, positions=positions)


def resolve_adsorbate(spec: AdsorbateSpec, seed: int = 0) -> tuple[Atoms, tuple[int, ...]]:
    """The adsorbate's 3D atoms (centred at the origin) and the binding atoms to try, in order.

    Atoms come from ``spec.atoms`` or, failing that, from embedding ``spec.smiles``; binding
    atoms from ``spec.binding_atoms`` or, when empty, from the module's binding-atom rule.
    """
    atoms = spec.atoms.copy() if spec.atoms is not None else embed_smiles(str(spec.smiles), seed)
    atoms.set_constraint()
    atoms.set_tags(0)
    atoms.positions -= atoms.positions.mean(axis=0)
    binding = spec.binding_atoms or default_binding_atoms(atoms)
    return atoms, binding


def default_binding_atoms(atoms: Atoms) -> tuple[int, ...]:
    """Heavy atoms in index order, or every atom when there is no heavy atom."""
    heavy = tuple(i for i, z in enumerate(atoms.numbers) if z != 1)
    return heavy or tuple(range(len(atoms)))
