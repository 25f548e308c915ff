"""Surface-local geometry: where the slab's surface is under an adsorbate atom, read from the atoms
around it, not from their tags.

Tags mark the atoms within 1 Å of the *clean* slab's topmost atom (:mod:`alloop.oracles.slabs`).
On close-packed facets that is the top layer; on open facets it is not the surface an adsorbate
meets: the second-layer atoms at the bottom of an fcc(110) trough and the row at the foot of an
fcc(211) step are tag 0, yet exposed, and an adsorbate bound there touches them. Tests built on
tags (fairchem's "bonded to a tag-0 atom" intercalation test, a height below the tagged layer's
mean) flagged such trough and step placements as intercalated, and in the EMT held-out search
check most *OH/*CO placements on fcc(110)/(211) were thrown away for it. The tests here read only
positions and covalent radii (ASE's), and tag 2 to tell the adsorbate from the slab:

* **height above the local surface** of an adsorbate atom: a probe sphere of radius
  ``probe_radius_ang`` comes at the atom from the vacuum, along the line through the atom, from
  straight above and from 24 directions tilted 20, 40 and 60 degrees (steps and facets are
  inclined), until it touches the covalent sphere of some slab atom (any tag, periodic images
  included); along that line the surface is the probe's leading point. The atom's height is
  taken from the direction that reaches deepest. Only atoms within r_j + probe radius of the
  line can stop the probe: the atoms under and around the adsorbate atom.
* **intercalated**: an adsorbate atom lies more than ``depth_ang`` below that surface: it has
  gone into the slab (subsurface octahedral and tetrahedral sites, under a top-row atom, under a
  step edge) rather than onto it. A bound atom sits on the surface or above it: over a single
  atom its height is d - r_j, about its own covalent radius.
* **binding surface atoms** of a relaxed structure: the slab atoms (any tag) in contact with
  some adsorbate atom, contact = closer than ``cutoff_multiplier`` x (r_a + r_j), minimum image
  (the desorption test's reach, so every structure that is not desorbed has one), and closer
  than ``BINDING_SHELL_FACTOR`` x that adsorbate atom's nearest slab distance. The reach alone
  is loose (it must be: EMT puts H 2.1-2.4 Å from Cu, beyond 1.3 x the covalent radii); the
  nearest-shell factor keeps the site's own atoms: an O on an fcc(111) bridge 1.2 Å up (Cu-O
  1.8 Å) does not also "bind" the two far atoms of the rhombus (2.5 Å). The oracle
  stores them with each label: the site the minimum sits on, which the surrogate's
  cross-attention may learn to point at (:mod:`alloop.surrogate.site_loss`).
* **desorbed**: no adsorbate atom is within ``cutoff_multiplier`` x (r_a + r_j) of any slab atom
  (minimum image). fairchem's test is the same with a neighbour list whose 0.3 Å skin is added
  to both radii (see :mod:`alloop.oracles.anomalies`); here the reach is the multiplier alone.

The probe radius is a compromise, chosen on hand-built sites and EMT relaxations (not on any
search benchmark): 0.8 Å does not fit through the three-fold holes of close-packed layers
(clear radius 0.15-0.45 Å for Cu-Al) and is not held up at the rims of fcc(110) troughs or
step feet. Measured with it: every adsorbate atom of 256 EMT-relaxed placements (Cu(110),
Pt(211), Cu/Al(111), Ni/Pt(100) x *O *H *N *OH *CO) lay at least 0.37 Å above the surface; C, N
and O on the four-fold site of the (100) micro-facet of fcc(211) steps (Cu Pt Ag Al, 0.1 Å
closer than covalent contact) between 0.27 Å below and 0.82 Å above it; subsurface atoms
(octahedral and tetrahedral sites of fcc(111)/(100), an H 0.4 Å below an fcc(111) hollow, O
under an fcc(110) row) 0.7-2.3 Å below it, before and after an EMT relaxation, but for two
relaxed tetrahedral H (Pt, Al) that pushed a top atom 0.9 Å up and opened a hole the probe
passes. Limits: those (the reconstruction test did not flag the Pt one either); and an atom
squeezed into the plane of a four-fold hole or between fcc(110) rows (H at 1.63 Å from Cu,
shorter than real Cu-H bonds) lies 0.4-0.7 Å below the surface and is flagged.
"""

from __future__ import annotations

import math

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.geometry import get_distances

from alloop.oracles.errors import StructureError
from alloop.oracles.types import TAG_ADSORBATE

#: a slab atom binds an adsorbate atom only within this factor of its nearest slab distance
BINDING_SHELL_FACTOR = 1.25
#: tilts (degrees from the surface normal +z) of the probe's approach directions
APPROACH_TILTS_DEG = (0.0, 20.0, 40.0, 60.0)
#: azimuths per tilted ring
APPROACH_AZIMUTHS = 8


def approach_directions() -> np.ndarray:
    """`k x 3` unit vectors the probe comes from: +z, then rings tilted 20, 40 and 60 degrees."""
    dirs = [np.array([0.0, 0.0, 1.0])]
    for tilt in np.radians(APPROACH_TILTS_DEG[1:]):
        for phi in np.arange(APPROACH_AZIMUTHS) * 2 * np.pi / APPROACH_AZIMUTHS:
            dirs.append(
                np.array([np.sin(tilt) * np.cos(phi), np.sin(tilt) * np.sin(phi), np.cos(tilt)])
            )
    return np.array(dirs)


def heights_above_surface(atoms: Atoms, probe_radius_ang: float) -> np.ndarray:
    """For each adsorbate atom (tag 2) of a slab+adsorbate structure, how far (Å) it lies
    outside the slab's local surface, from the approach direction that reaches deepest;
    negative = inside. ``inf`` where some direction meets no slab atom at all.

    For one direction u: the probe moves along the line through the atom, coming from far out
    along u, until its sphere (radius ``probe_radius_ang``) touches a slab atom's covalent
    sphere; the surface along u is the probe's leading point then. Only slab atoms within
    r_j + probe radius of that line can stop it: the atoms under and around the adsorbate atom.
    """
    tags = atoms.get_tags()
    ads = tags == TAG_ADSORBATE
    slab = atoms[~ads]
    if not ads.any() or len(slab) == 0:
        return np.full(int(ads.sum()), np.inf)
    dirs = approach_directions()
    radii = covalent_radii[slab.numbers] + probe_radius_ang  # n
    top = float(slab.positions[:, 2].max())
    heights = []
    for pos in atoms.positions[ads]:
        # far enough sideways for a 60-degree line to meet every atom that can stop the probe
        rise = max(0.0, top - pos[2]) + float(radii.max())
        lateral = rise * np.tan(np.radians(APPROACH_TILTS_DEG[-1])) + float(radii.max())
        rel = _image_vectors(slab, pos, lateral)  # n x s x 3: slab atom images - pos
        reach = np.broadcast_to(radii[:, None], rel.shape[:2]).reshape(-1)
        rel = rel.reshape(-1, 3)
        along = rel @ dirs.T  # N x k
        perp2 = (rel**2).sum(axis=1)[:, None] - along**2
        inside = perp2 < reach[:, None] ** 2
        t_hit = np.where(inside, along + np.sqrt(np.where(inside, reach[:, None] ** 2 - perp2, 0)),
                         -np.inf)  # fmt: skip
        heights.append(float((probe_radius_ang - t_hit.max(axis=0)).max()))
    return np.array(heights)


def is_intercalated(atoms: Atoms, probe_radius_ang: float, depth_ang: float) -> bool:
    """True if any adsorbate atom lies more than ``depth_ang`` below the local surface."""
    return bool((heights_above_surface(atoms, probe_radius_ang) < -depth_ang).any())


def _contacts(atoms: Atoms, cutoff_multiplier: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Adsorbate (tag 2) x slab distances (minimum image under the structure's cell and pbc)
    and the contact test ``dist < cutoff_multiplier x (r_a + r_j)`` (covalent radii), both
    `A x S`; None without adsorbate or without slab atoms. The one rule of contact that the
    desorption test and the binding atoms share."""
    ads = atoms.get_tags() == TAG_ADSORBATE
    if not ads.any() or ads.all():
        return None
    _, dist = get_distances(
        atoms.positions[ads], atoms.positions[~ads], cell=atoms.cell, pbc=atoms.pbc
    )
    reach = cutoff_multiplier * (
        covalent_radii[atoms.numbers[ads]][:, None] + covalent_radii[atoms.numbers[~ads]][None, :]
    )
    return dist, dist < reach


def is_desorbed(atoms: Atoms, cutoff_multiplier: float) -> bool:
    """True if no adsorbate atom is within ``cutoff_multiplier`` x (r_a + r_j) of a slab atom
    (covalent radii, minimum-image distances under the structure's cell and pbc)."""
    contacts = _contacts(atoms, cutoff_multiplier)
    return contacts is not None and not bool(contacts[1].any())


def binding_surface_atoms(atoms: Atoms, cutoff_multiplier: float) -> tuple[int, ...]:
    """Indices (into the slab part, i.e. the clean slab's atom order) of the slab atoms bonded to
    any adsorbate atom (tag 2) of a slab+adsorbate structure (see the module docstring),
    sorted; empty if none is (a desorbed adsorbate). The slab atoms must come first, as every
    structure the oracles build has them (:func:`alloop.oracles.placement.place_on_site`)."""
    slab_idx = np.flatnonzero(atoms.get_tags() != TAG_ADSORBATE)
    if slab_idx.size and slab_idx[-1] != slab_idx.size - 1:
        raise StructureError("slab atoms must precede the adsorbate's (tag 2) atoms")
    contacts = _contacts(atoms, cutoff_multiplier)
    if contacts is None:
        return ()
    dist, touching = contacts
    nearest = dist.min(axis=1, keepdims=True)  # per adsorbate atom
    bonded = touching & (dist < BINDING_SHELL_FACTOR * nearest)
    return tuple(int(j) for j in np.flatnonzero(bonded.any(axis=0)))


def _image_vectors(slab: Atoms, point: np.ndarray, lateral_ang: float) -> np.ndarray:
    """`n x s x 3` vectors from ``point`` to every slab atom's periodic images (along the first
    two cell vectors, which must span x/y), all images within ``lateral_ang`` sideways."""
    basis = np.asarray(slab.cell[:2, :2], dtype=float)  # rows: a, b (x, y parts)
    area = abs(float(np.linalg.det(basis)))
    if area < 1e-9:
        raise StructureError("slab cell has no lateral area; its a and b vectors must span x/y")
    delta = slab.positions - point  # n x 3
    frac = delta[:, :2] @ np.linalg.inv(basis)
    frac -= np.round(frac)  # the nearest image first, then enough shells to cover the reach
    # the cell's width across the edges a shift along a (then b) crosses: area / |b| (area / |a|);
    # an image s cells away lies at least (|s| - 1/2) widths from the point
    widths = area / np.linalg.norm(basis, axis=1)[::-1]
    shells = [math.ceil(lateral_ang / w + 0.5) for w in widths]
    shifts = np.array(
        [
            (i, j)
            for i in range(-shells[0], shells[0] + 1)
            for j in range(-shells[1], shells[1] + 1)
        ],
        dtype=float,
    )  # s x 2
    lateral = (frac[:, None, :] + shifts[None, :, :]) @ basis  # n x s x 2
    z = np.broadcast_to(delta[:, None, 2:], (*lateral.shape[:2], 1))
    return np.concatenate([lateral, z], axis=2)
