"""Readers for the FG reference data (``shared/data/fg``): the FG-GMAE stand-in.

Three views of the same directory:

* :func:`read_fg_slabs` — metal symbol (``"Pt"``) → clean slab (48 atoms).
* :func:`read_fg_molecules` — the 207 gas-phase molecules with SMILES perceived from their
  CONTCARs (:func:`alloop.surrogate.smiles.smiles_from_atoms`, stereo from 3D).
* :func:`read_fg_table` — the 2,898 (slab, molecule, GMAE) records of ``fg_gmae_derived.csv``.

A molecule is keyed ``f"{family}/{mol_code}"`` because codes repeat across families. Nothing is
cached on disk; reading everything takes about a second.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import ase.io
from ase import Atoms

from alloop.surrogate.errors import DataError, FeaturisationError
from alloop.surrogate.smiles import hill_formula, smiles_from_atoms

__all__ = ["FGMolecule", "FGRecord", "read_fg_molecules", "read_fg_slabs", "read_fg_table"]

logger = logging.getLogger(__name__)

TABLE_NAME = "fg_gmae_derived.csv"
_TABLE_COLUMNS = ("metal", "family", "mol_code", "e_ads_min_eV", "structure_file", "n_configs")


@dataclass(frozen=True)
class FGMolecule:
    """One gas-phase molecule of the FG set.

    Attributes:
        family: FG family folder without the ``gas_`` prefix, e.g. ``"group2"``.
        mol_code: molecule code inside the family, e.g. ``"3611"``.
        formula: Hill formula of the structure, e.g. ``"C3H6O"``.
        gas: relaxed gas-phase structure (positions in Å, periodic box).
        smiles: canonical isomeric SMILES perceived from ``gas``.
    """

    family: str
    mol_code: str
    formula: str
    gas: Atoms
    smiles: str

    @property
    def key(self) -> str:
        """``"family/mol_code"``, the unique molecule key."""
        return f"{self.family}/{self.mol_code}"


@dataclass(frozen=True)
class FGRecord:
    """One (metal surface, molecule) pair of the FG-GMAE stand-in table.

    Attributes:
        metal: element symbol of the slab, e.g. ``"Pt"`` (the surface key).
        family, mol_code, formula, gas, smiles: as in :class:`FGMolecule`.
        gmae_ev: global minimum adsorption energy in eV (min over configurations).
        slab: the clean slab (a copy per record, safe to modify).
        structure_file: CONTCAR of the best adsorbed configuration, relative to the FG root.
        n_configs: number of adsorbed configurations the minimum was taken over.
    """

    metal: str
    family: str
    mol_code: str
    formula: str
    gmae_ev: float
    slab: Atoms
    gas: Atoms
    smiles: str
    structure_file: str
    n_configs: int

    @property
    def molecule_key(self) -> str:
        """``"family/mol_code"``, the unique molecule key."""
        return f"{self.family}/{self.mol_code}"


def _check_root(root: Path) -> Path:
    root = Path(root)
    if not (root / "metal_surfaces" / "structures").is_dir():
        raise DataError(
            f"not an FG data directory: {root} (expected metal_surfaces/structures/ inside)"
        )
    return root


def _read_contcar(path: Path) -> Atoms:
    try:
        atoms = ase.io.read(path, format="vasp")
    except (OSError, ValueError, IndexError) as exc:
        raise DataError(f"cannot read CONTCAR {path}: {exc}") from exc
    if not isinstance(atoms, Atoms):
        raise DataError(f"CONTCAR {path} holds {len(atoms)} images, expected one structure")
    return atoms


def read_fg_slabs(root: Path) -> dict[str, Atoms]:
    """Clean slabs by metal symbol (``"Ag"`` … ``"Zn"``), read from ``metal_surfaces``.

    Raises:
        DataError: ``root`` is not an FG directory or holds no slab.
    """
    root = _check_root(root)
    slabs: dict[str, Atoms] = {}
    for path in sorted((root / "metal_surfaces" / "structures").glob("*-0000.contcar")):
        metal = path.name.split("-")[0].capitalize()
        slabs[metal] = _read_contcar(path)
    if not slabs:
        raise DataError(f"no '<metal>-0000.contcar' slab in {root / 'metal_surfaces/structures'}")
    return slabs


def read_fg_molecules(root: Path) -> list[FGMolecule]:
    """All gas-phase molecules (``gas_<family>/structures/<code>.contcar``) with SMILES.

    Returned sorted by key. Takes well under a second for the 207 FG molecules.

    Raises:
        DataError: ``root`` is not an FG directory, holds no molecule, or the bonds of a
            molecule cannot be perceived (the message names the file).
    """
    root = _check_root(root)
    molecules: list[FGMolecule] = []
    for gas_dir in sorted(p for p in root.glob("gas_*") if p.is_dir()):
        family = gas_dir.name[len("gas_") :]
        for path in sorted((gas_dir / "structures").glob("*.contcar")):
            gas = _read_contcar(path)
            try:
                smiles = smiles_from_atoms(gas)
            except FeaturisationError as exc:
                raise DataError(f"no SMILES for {path}: {exc}") from exc
            molecules.append(
                FGMolecule(
                    family=family,
                    mol_code=path.stem,
                    formula=hill_formula(gas),
                    gas=gas,
                    smiles=smiles,
                )
            )
    if not molecules:
        raise DataError(f"no gas_<family>/structures/*.contcar under {root}")
    molecules.sort(key=lambda m: m.key)
    logger.debug("read %d FG molecules from %s", len(molecules), root)
    return molecules


def read_fg_table(root: Path) -> list[FGRecord]:
    """The (metal, molecule, GMAE) records of ``fg_gmae_derived.csv``, in file order.

    Raises:
        DataError: the table is missing, lacks a column, or names a metal or molecule for
            which no structure exists.
    """
    root = _check_root(root)
    table = root / TABLE_NAME
    if not table.is_file():
        raise DataError(f"FG table not found: {table}")
    slabs = read_fg_slabs(root)
    molecules = {m.key: m for m in read_fg_molecules(root)}
    records: list[FGRecord] = []
    with table.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _TABLE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{table} lacks columns {missing}; has {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            metal, key = row["metal"], f"{row['family']}/{row['mol_code']}"
            if metal not in slabs:
                raise DataError(
                    f"{table}:{line}: metal {metal!r} has no slab; have {sorted(slabs)}"
                )
            if key not in molecules:
                raise DataError(f"{table}:{line}: molecule {key!r} has no gas-phase structure")
            mol = molecules[key]
            try:
                gmae_ev = float(row["e_ads_min_eV"])
                n_configs = int(row["n_configs"])
            except ValueError as exc:
                raise DataError(f"{table}:{line}: bad number: {exc}") from exc
            records.append(
                FGRecord(
                    metal=metal,
                    family=mol.family,
                    mol_code=mol.mol_code,
                    formula=mol.formula,
                    gmae_ev=gmae_ev,
                    slab=slabs[metal].copy(),
                    gas=mol.gas,
                    smiles=mol.smiles,
                    structure_file=row["structure_file"],
                    n_configs=n_configs,
                )
            )
    return records
