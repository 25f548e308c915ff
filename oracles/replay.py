"""``ReplayOracle``: labels looked up from the FG DFT table instead of computed.

It is the offline benchmark and dry-run oracle of a campaign (CAMD's after-the-fact sampler):
the loop asks for a label and gets the DFT global-minimum adsorption energy that the FG dataset
already holds, with provenance naming the table row and the CONTCAR of the best configuration.

Keys: ``surface_key`` is the metal symbol (``"Pt"``), ``adsorbate_key`` is
``"family/mol_code"`` (``"amides/13X1"``; codes repeat across families). An unknown pair is a
``status="failed"`` result, never an exception. With ``load_structures`` the best DFT
configuration comes back as ``best_structure`` and is checked against the intact gas molecule
(``anomaly_flags == ["dissociated"]`` for the two FG minima that are not intact); that needs
the full FG set, while energies come from the compact copy alloop ships just as well
(:mod:`alloop.oracles.fg_data`).
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from alloop.oracles.anomalies import bond_signature
from alloop.oracles.errors import OracleError, StructureError
from alloop.oracles.fg_data import (
    FG_TABLE_NAME,
    fg_data_root,
    holds_configurations,
    require_configurations,
)
from alloop.oracles.slabs import read_single
from alloop.oracles.types import (
    TAG_ADSORBATE,
    TAG_SUBSURFACE,
    TAG_SURFACE,
    AdsorbateSpec,
    Fidelity,
    OraclePair,
    OracleResult,
    failed_result,
)

logger = logging.getLogger(__name__)

#: what produced the FG energies (GAME-Net paper, Pablo-García et al. 2023)
FG_CALCULATOR = "vasp-pbe-d2 (FG dataset, GAME-Net)"
#: atoms within this height (Å) of the topmost metal atom are tagged as surface
SURFACE_LAYER_DEPTH_ANG = 1.0


@dataclass(frozen=True)
class FGRow:
    """One row of ``fg_gmae_derived.csv`` (energies in eV). ``line`` is the 1-based file line."""

    line: int
    metal: str
    family: str
    mol_code: str
    formula: str
    n_configs: int
    best_config: str
    e_ads_min_ev: float
    e_ads_all: str
    e_tot_best_ev: float
    e_slab_ev: float
    e_gas_ev: float
    structure_file: str

    @property
    def adsorbate_key(self) -> str:
        return f"{self.family}/{self.mol_code}"


def read_fg_rows(fg_root: Path) -> dict[tuple[str, str], FGRow]:
    """Read the FG table into ``{(metal, "family/mol_code"): FGRow}``.

    Raises :class:`OracleError` if the file is missing, a column is missing, or a key repeats.
    """
    path = Path(fg_root) / FG_TABLE_NAME
    if not path.is_file():
        raise OracleError(f"FG table not found at {path}; fg_root must contain {FG_TABLE_NAME}")
    rows: dict[tuple[str, str], FGRow] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        for line, rec in enumerate(reader, start=2):
            try:
                row = FGRow(
                    line=line,
                    metal=rec["metal"],
                    family=rec["family"],
                    mol_code=rec["mol_code"],
                    formula=rec["adsorbate_formula"],
                    n_configs=int(rec["n_configs"]),
                    best_config=rec["best_config"],
                    e_ads_min_ev=float(rec["e_ads_min_eV"]),
                    e_ads_all=rec["e_ads_all_eV"],
                    e_tot_best_ev=float(rec["e_tot_best_eV"]),
                    e_slab_ev=float(rec["e_slab_eV"]),
                    e_gas_ev=float(rec["e_gas_eV"]),
                    structure_file=rec["structure_file"],
                )
            except (KeyError, ValueError, TypeError) as exc:
                raise OracleError(f"{path} line {line}: cannot parse row ({exc})") from exc
            key = (row.metal, row.adsorbate_key)
            if key in rows:
                raise OracleError(f"{path} line {line}: duplicate pair {key}")
            rows[key] = row
    logger.debug("read %d FG rows from %s", len(rows), path)
    return rows


def tag_fg_structure(atoms: Atoms, metal: str) -> Atoms:
    """Tag an FG structure: adsorbate (non-metal) atoms 2, top metal layer 1, the rest 0."""
    atoms = atoms.copy()
    symbols = np.array(atoms.get_chemical_symbols())
    is_metal = symbols == metal
    if not is_metal.any():
        raise StructureError(f"structure {atoms.get_chemical_formula()} holds no {metal} atoms")
    z = atoms.positions[:, 2]
    top = z[is_metal].max()
    tags = np.full(len(atoms), TAG_SUBSURFACE)
    tags[is_metal & (z > top - SURFACE_LAYER_DEPTH_ANG)] = TAG_SURFACE
    tags[~is_metal] = TAG_ADSORBATE
    atoms.set_tags(tags)
    return atoms


class ReplayOracle:
    """Answer ``label(pair)`` from the FG table (fidelity ``"replay"``).

    ``fg_root``: the ``fg/`` folder holding ``fg_gmae_derived.csv`` and the structure folders;
    ``None``: :func:`~alloop.oracles.fg_data.fg_data_root`.
    ``load_structures``: read the best configuration's CONTCAR into ``best_structure``
    (about 2 ms per label); ``False`` for pure energy lookups; ``None``: when ``fg_root`` holds
    the adsorbed configurations (the full set). ``True`` on a root without them (the compact
    copy) raises :class:`OracleError`.
    """

    fidelity: Fidelity = "replay"

    def __init__(self, fg_root: Path | None = None, load_structures: bool | None = None) -> None:
        self.fg_root = Path(fg_root) if fg_root is not None else fg_data_root()
        self._rows = read_fg_rows(self.fg_root)
        if load_structures is None:
            load_structures = holds_configurations(self.fg_root)
        elif load_structures:
            require_configurations(self.fg_root, "ReplayOracle(load_structures=True)")
        self.load_structures = load_structures
        self._metals = sorted({m for m, _ in self._rows})

    def __repr__(self) -> str:
        return f"ReplayOracle(fg_root={str(self.fg_root)!r}, n_pairs={len(self._rows)})"

    @property
    def metals(self) -> list[str]:
        """The surface keys the table knows (metal symbols)."""
        return list(self._metals)

    def known_pairs(self) -> list[tuple[str, str]]:
        """Every ``(surface_key, adsorbate_key)`` in the table, sorted."""
        return sorted(self._rows)

    def row(self, surface_key: str, adsorbate_key: str) -> FGRow | None:
        """The table row of a pair, or ``None`` when the table does not hold it."""
        return self._rows.get((surface_key, adsorbate_key))

    def label(self, pair: OraclePair) -> OracleResult:
        """Look the pair up; an unknown pair is a ``failed`` result naming what is known."""
        start = time.perf_counter()
        row = self.row(pair.surface_key, pair.adsorbate_key)
        if row is None:
            reason = self._unknown_reason(pair.surface_key, pair.adsorbate_key)
            return self._failed(pair, "unknown_pair", reason, start)
        best = None
        flags: list[str] = []
        if self.load_structures:
            try:
                best = tag_fg_structure(
                    read_single(self.fg_root / row.structure_file, "vasp"), row.metal
                )
                flags = self._dft_minimum_flags(row, best)
            except StructureError as exc:  # one unreadable CONTCAR fails its pair only
                return self._failed(pair, exc.kind, str(exc), start)
        provenance = {
            "calculator": FG_CALCULATOR,
            "weights_hash": None,
            "reference_scheme": "gas_phase_molecule",
            "reference_energies_ev": {"slab": row.e_slab_ev, "gas": row.e_gas_ev},
            "placements": [
                {"config": name, "e_ads_ev": float(value)}
                for name, value in (item.split(":") for item in row.e_ads_all.split(";"))
            ],
            "placements_tried": row.n_configs,
            "anomaly_flags": flags,
            "force_calls": 0,
            "wall_s": time.perf_counter() - start,
            "error": None,
            "source": str(self.fg_root / FG_TABLE_NAME),
            "source_line": row.line,
            "best_config": row.best_config,
            "structure_file": row.structure_file,
            "e_tot_best_ev": row.e_tot_best_ev,
            "formula": row.formula,
        }
        return OracleResult(pair.key, row.e_ads_min_ev, "ok", self.fidelity, provenance, best)

    def _failed(self, pair: OraclePair, kind: str, message: str, start: float) -> OracleResult:
        return failed_result(
            pair.key,
            self.fidelity,
            kind,
            message,
            calculator=FG_CALCULATOR,
            weights_hash=None,
            reference_scheme="gas_phase_molecule",
            placements=[],
            placements_tried=0,
            anomaly_flags=[],
            force_calls=0,
            wall_s=time.perf_counter() - start,
            source=str(self.fg_root / FG_TABLE_NAME),
        )

    def _dft_minimum_flags(self, row: FGRow, best: Atoms) -> list[str]:
        """``["dissociated"]`` when the DFT minimum's adsorbate is not the intact gas molecule.

        Two FG minima are like that (Ru + oxime 49Y3, Fe + 44S1); the label stays the table's
        value (it is a DFT result), the flag tells the caller.
        """
        gas = read_single(self._gas_file(row), "vasp")
        adsorbate = best[best.get_tags() == TAG_ADSORBATE]
        return [] if bond_signature(adsorbate) == bond_signature(gas) else ["dissociated"]

    def _gas_file(self, row: FGRow) -> Path:
        return self.fg_root / f"gas_{row.family}" / "structures" / f"{row.mol_code}.contcar"

    def make_pair(self, surface_key: str, adsorbate_key: str, key: str | None = None) -> OraclePair:
        """Build the ``OraclePair`` of an FG pair from the FG slab and gas-phase CONTCARs.

        The adsorbate's ``binding_atoms`` is left empty (the placement rule chooses); this is
        how benchmarks label FG pairs from scratch with an MLIP oracle.
        """
        row = self.row(surface_key, adsorbate_key)
        if row is None:
            raise OracleError(self._unknown_reason(surface_key, adsorbate_key))
        slab_file = (
            self.fg_root / "metal_surfaces" / "structures" / f"{row.metal.lower()}-0000.contcar"
        )
        gas_file = self._gas_file(row)
        slab = tag_fg_structure(read_single(slab_file, "vasp"), row.metal)
        gas = read_single(gas_file, "vasp")
        spec = AdsorbateSpec(name=adsorbate_key, smiles=None, atoms=gas, binding_atoms=())
        return OraclePair(
            key=key or f"{surface_key}:{adsorbate_key}",
            surface_key=surface_key,
            adsorbate_key=adsorbate_key,
            slab=slab,
            adsorbate=spec,
        )

    def _unknown_reason(self, surface_key: str, adsorbate_key: str) -> str:
        if surface_key not in self._metals:
            return (
                f"surface_key {surface_key!r} is not in the FG table; valid metals: "
                f"{', '.join(self._metals)}"
            )
        return (
            f"adsorbate_key {adsorbate_key!r} is not in the FG table for {surface_key}; "
            "expected 'family/mol_code', e.g. 'amides/13X1'"
        )
