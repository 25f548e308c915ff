"""Anomaly checks for one relaxed placement (AdsorbML's definitions, judged locally).

``desorbed``       no adsorbate atom is within 1.5 x (r_a + r_j) of any slab atom
``dissociated``    the adsorbate's bond graph differs from the initial placement's (fairchem) or
                   from the intact molecule's (ours, strict bonds: d < 1.3 x (r_i + r_j))
``reconstructed``  slab bonds broke or formed compared with the relaxed clean slab (fairchem)
``intercalated``   an adsorbate atom lies more than ``intercalation_depth_ang`` below the slab's
                   local surface at its (x, y) (:mod:`alloop.oracles.surface_local`)

fairchem-data-oc's ``DetectTrajAnomaly`` is used for dissociation and reconstruction. Where it
does not fit we use our own:

1. Dissociation against the *intact gas-phase molecule* with strict bonds. fairchem builds its
   bond graphs with ASE's ``NeighborList`` defaults, whose 0.3 Å skin is added to *each* atom's
   radius, so a bond counts as intact up to r_i + r_j + 0.6 Å: an O-H stretched to 1.57 Å (0.97 Å
   at rest) still passes, and in the EMT search benchmark such half-broken OH were the dense
   searches' "minima". Our bonds have no skin and RDKit's bond-perception factor (``covFactor``
   1.3 of ``rdDetermineBonds``): d < 1.3 (r_i + r_j), i.e. O-H up to 1.26 Å, C-H 1.38, C-O 1.85,
   N-O 1.78 Å. On the FG DFT minima this flags exactly the two documented broken molecules and
   nothing else (see ``ReplayOracle``). Judging against the intact molecule also catches a
   placement already built from a broken molecule, which an initial-vs-final comparison passes.
2. Intercalation and desorption by the *local* surface, whatever the tags: fairchem's
   intercalation test ("bonded to a tag-0 atom") and our earlier height test (below the mean of
   the tagged top layer) both assume a flat close-packed facet, and flagged fcc(110) trough and
   fcc(211) step-foot placements, which touch exposed second-layer atoms, as intercalated. The
   one rule for both kinds is in :mod:`alloop.oracles.surface_local`. (fairchem's desorption test
   is the same bond test with its neighbour-list skin; ours has none.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.neighborlist import NeighborList, natural_cutoffs

from alloop.oracles.errors import OracleConfigError
from alloop.oracles.surface_local import is_desorbed, is_intercalated
from alloop.oracles.types import TAG_ADSORBATE

ANOMALY_KINDS: tuple[str, ...] = ("desorbed", "dissociated", "reconstructed", "intercalated")


@dataclass(frozen=True)
class AnomalySettings:
    """Tolerances. Multipliers scale ASE's natural (covalent) cutoffs."""

    desorption_cutoff_multiplier: float = 1.5
    surface_change_cutoff_multiplier: float = 1.5
    #: an adsorbate atom this far (Å) below the local surface is intercalated
    intercalation_depth_ang: float = 0.3
    #: radius (Å) of the probe that defines the local surface (enters fcc(110) troughs and step
    #: feet, not the holes of close-packed layers; see :mod:`alloop.oracles.surface_local`)
    surface_probe_radius_ang: float = 0.8
    #: bond = distance < bond_multiplier x sum of covalent radii, for the intact-molecule test
    bond_multiplier: float = 1.3

    def __post_init__(self) -> None:
        for name in (
            "desorption_cutoff_multiplier",
            "surface_change_cutoff_multiplier",
            "surface_probe_radius_ang",
            "bond_multiplier",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
                raise OracleConfigError(f"anomaly.{name} must be a number > 0, got {value!r}")
        depth = self.intercalation_depth_ang
        if not isinstance(depth, int | float) or isinstance(depth, bool) or not depth >= 0:
            raise OracleConfigError(
                f"anomaly.intercalation_depth_ang must be a number >= 0, got {depth!r}"
            )


def detect_anomalies(
    initial: Atoms,
    final: Atoms,
    relaxed_slab: Atoms,
    intact_adsorbate: Atoms | None = None,
    settings: AnomalySettings | None = None,
) -> list[str]:
    """Anomaly flags (subset of ``ANOMALY_KINDS``, in that order) for one relaxation.

    ``initial``/``final``: the slab+adsorbate before/after relaxation, tags 0/1/2, same atom
    order. ``relaxed_slab``: the relaxed clean slab (same slab atoms, same order).
    ``intact_adsorbate``: the gas-phase molecule in the adsorbate's atom order, if known.
    """
    from fairchem.data.oc.utils.flag_anomaly import DetectTrajAnomaly

    cfg = settings or AnomalySettings()
    tags = final.get_tags()
    detector = DetectTrajAnomaly(
        initial,
        final,
        tags,
        final_slab_atoms=relaxed_slab,
        surface_change_cutoff_multiplier=cfg.surface_change_cutoff_multiplier,
    )
    flags = []
    if is_desorbed(final, cfg.desorption_cutoff_multiplier):
        flags.append("desorbed")
    dissociated = detector.is_adsorbate_dissociated()
    if intact_adsorbate is not None and not dissociated:
        dissociated = not np.array_equal(
            bond_matrix(intact_adsorbate, cfg.bond_multiplier),
            bond_matrix(final[tags == TAG_ADSORBATE], cfg.bond_multiplier),
        )
    if dissociated:
        flags.append("dissociated")
    if detector.has_surface_changed():
        flags.append("reconstructed")
    if is_intercalated(final, cfg.surface_probe_radius_ang, cfg.intercalation_depth_ang):
        flags.append("intercalated")
    return flags


def bond_matrix(atoms: Atoms, multiplier: float = 1.3) -> np.ndarray:
    """`n x n` 0/1 bond matrix: i-j bonded when closer than ``multiplier`` x (r_i + r_j), the
    covalent radii, minimum image where periodic. No neighbour-list skin (see module doc)."""
    nl = NeighborList(
        natural_cutoffs(atoms, mult=multiplier), skin=0.0, self_interaction=False, bothways=True
    )
    nl.update(atoms)
    return nl.get_connectivity_matrix(sparse=False)


def bond_signature(atoms: Atoms) -> dict[tuple[str, str], int]:
    """Bond counts per element pair: an atom-order-free fingerprint of a molecule's bond graph
    (two structures of one molecule written in different atom orders compare equal)."""
    matrix = np.triu(bond_matrix(atoms))
    symbols = atoms.get_chemical_symbols()
    counts: dict[tuple[str, str], int] = {}
    for i, j in zip(*np.nonzero(matrix), strict=True):
        key = (min(symbols[i], symbols[j]), max(symbols[i], symbols[j]))
        counts[key] = counts.get(key, 0) + 1
    return counts
