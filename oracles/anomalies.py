"""Anomaly checks for one relaxed placement (AdsorbML's definitions).

``desorbed``       no adsorbate atom is bonded to the slab (fairchem's test, 1.5 x cutoffs)
``dissociated``    the adsorbate's bond graph differs from the initial placement's (fairchem) or
                   from the intact molecule's (ours, strict bonds: d < 1.3 x (r_i + r_j))
``reconstructed``  slab bonds broke or formed compared with the relaxed clean slab (fairchem)
``intercalated``   an adsorbate atom is bonded to a subsurface (tag 0) atom (fairchem), or sits
                   below the mean height of the surface layer (ours)

fairchem-data-oc's ``DetectTrajAnomaly`` is used as it is. Where it does not fit we add our own:

1. Dissociation against the *intact gas-phase molecule* with strict bonds. fairchem builds its
   bond graphs with ASE's ``NeighborList`` defaults, whose 0.3 Å skin is added to *each* atom's
   radius, so a bond counts as intact up to r_i + r_j + 0.6 Å: an O-H stretched to 1.57 Å (0.97 Å
   at rest) still passes, and in the EMT search benchmark such half-broken OH were the dense
   searches' "minima". Our bonds have no skin and RDKit's bond-perception factor (``covFactor``
   1.3 of ``rdDetermineBonds``): d < 1.3 (r_i + r_j), i.e. O-H up to 1.26 Å, C-H 1.38, C-O 1.85,
   N-O 1.78 Å. On the FG DFT minima this flags exactly the two documented broken molecules and
   nothing else (see ``ReplayOracle``). Judging against the intact molecule also catches a
   placement already built from a broken molecule, which an initial-vs-final comparison passes.
2. Intercalation by height: a small atom (H) sinking into the surface layer is still beyond bond
   distance of every tag-0 atom while it passes the surface plane, so the bonded test alone
   misses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.neighborlist import NeighborList, natural_cutoffs

from alloop.oracles.types import TAG_ADSORBATE, TAG_SURFACE

ANOMALY_KINDS: tuple[str, ...] = ("desorbed", "dissociated", "reconstructed", "intercalated")


@dataclass(frozen=True)
class AnomalySettings:
    """Tolerances. Multipliers scale ASE's natural (covalent) cutoffs."""

    desorption_cutoff_multiplier: float = 1.5
    surface_change_cutoff_multiplier: float = 1.5
    #: an adsorbate atom this far (Å) below the surface layer's mean height is intercalated
    intercalation_depth_ang: float = 0.3
    #: bond = distance < bond_multiplier x sum of covalent radii, for the intact-molecule test
    bond_multiplier: float = 1.3


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
        desorption_cutoff_multiplier=cfg.desorption_cutoff_multiplier,
    )
    flags = []
    if detector.is_adsorbate_desorbed():
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
    if detector.is_adsorbate_intercalated() or below_surface(final, cfg.intercalation_depth_ang):
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


def below_surface(atoms: Atoms, depth_ang: float) -> bool:
    """True if any adsorbate atom lies more than ``depth_ang`` below the surface layer's mean z."""
    tags = atoms.get_tags()
    surface = tags == TAG_SURFACE
    ads = tags == TAG_ADSORBATE
    if not surface.any() or not ads.any():
        return False
    return bool(atoms.positions[ads, 2].min() < atoms.positions[surface, 2].mean() - depth_ang)
