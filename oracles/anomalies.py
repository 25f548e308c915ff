"""Anomaly checks for one relaxed placement (AdsorbML's definitions).

``desorbed``       no adsorbate atom is bonded to the slab (bond = 1.5 x sum of natural cutoffs)
``dissociated``    the adsorbate's bond graph differs from the intact molecule's
``reconstructed``  slab bonds broke or formed compared with the relaxed clean slab
``intercalated``   an adsorbate atom is bonded to a subsurface (tag 0) atom, or sits below the
                   mean height of the surface layer

The first three and the bonded half of the fourth are fairchem-data-oc's ``DetectTrajAnomaly``.
Two things it does not cover are ours: (1) dissociation is judged against the *intact gas-phase
molecule*, not only against the initial placement (a placement already built from a broken
molecule would otherwise pass), and (2) intercalation also by height: a hydrogen that slips into
a subsurface interstitial sits farther from the tag-0 atoms than the bond cutoff, so
the bonded test alone misses it.
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
            bond_matrix(intact_adsorbate), bond_matrix(final[tags == TAG_ADSORBATE])
        )
    if dissociated:
        flags.append("dissociated")
    if detector.has_surface_changed():
        flags.append("reconstructed")
    if detector.is_adsorbate_intercalated() or below_surface(final, cfg.intercalation_depth_ang):
        flags.append("intercalated")
    return flags


def bond_matrix(atoms: Atoms, multiplier: float = 1.0) -> np.ndarray:
    """`n x n` 0/1 bond matrix from natural cutoffs (minimum image where periodic)."""
    nl = NeighborList(natural_cutoffs(atoms, mult=multiplier), self_interaction=False, bothways=True)
    nl.update(atoms)
    return nl.get_connectivity_matrix(sparse=False)


def below_surface(atoms: Atoms, depth_ang: float) -> bool:
    """True if any adsorbate atom lies more than ``depth_ang`` below the surface layer's mean z."""
    tags = atoms.get_tags()
    surface = tags == TAG_SURFACE
    ads = tags == TAG_ADSORBATE
    if not surface.any() or not ads.any():
        return False
    return bool(atoms.positions[ads, 2].min() < atoms.positions[surface, 2].mean() - depth_ang)
