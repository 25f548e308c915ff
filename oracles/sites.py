"""Adsorption sites on a tagged slab: heuristic (ontop/bridge/hollow) and random.

Heuristic sites are what fairchem-data-oc's ``AdsorbateSlabConfig(mode="heuristic")`` uses:
pymatgen's ``AdsorbateSiteFinder`` on the tag-1 surface atoms. We call it directly rather than
through ``AdsorbateSlabConfig`` because that class draws from NumPy's global random state (it
shuffles sites and rotates adsorbates with ``np.random``); everything random here comes from an
explicit ``numpy.random.Generator``. Random sites follow fairchem's "random" mode: a Delaunay
triangulation of the surface atoms (tiled 3x3 so triangles across the cell edge count), a
uniform point in a triangle, wrapped into the cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.geometry import find_mic
from scipy.spatial import Delaunay

from alloop.oracles.errors import StructureError
from alloop.oracles.types import TAG_SURFACE

#: heuristic kinds in the order tried when no site scores are given
SITE_KINDS: tuple[str, ...] = ("hollow", "ontop", "bridge")
#: surface atoms laterally within this much (Å) of the nearest one define a site together
SITE_TOLERANCE_ANG = 0.2
#: per-atom scores equal within this share of the largest count as equal (float32 attention of
#: symmetry-equivalent atoms differs by ~1e-7 of it)
SYMMETRIC_SCORE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Site:
    """A point on the surface: ``position`` (3,) in Å, ``kind``, the slab indices of the surface
    atoms that define it (1 ontop, 2 bridge, 3 hollow, nearest 3 for random) and a ``score``."""

    position: tuple[float, float, float]
    kind: str
    surface_atoms: tuple[int, ...]
    score: float = 0.0


def surface_indices(slab: Atoms) -> np.ndarray:
    """Indices of tag-1 surface atoms; raises if the slab has none."""
    idx = np.flatnonzero(slab.get_tags() == TAG_SURFACE)
    if idx.size == 0:
        raise StructureError(
            "slab has no surface-tagged (tag 1) atoms; prepare it with "
            "alloop.oracles.slabs.prepare_slab"
        )
    return idx


def heuristic_sites(slab: Atoms, symmetry_reduce: bool = True) -> list[Site]:
    """Ontop, bridge and hollow sites (pymatgen ``AdsorbateSiteFinder``, as fairchem's heuristic
    mode). ``symmetry_reduce=False`` keeps symmetry-equivalent sites, so that per-atom scores can
    tell them apart."""
    from pymatgen.analysis.adsorption import AdsorbateSiteFinder
    from pymatgen.io.ase import AseAtomsAdaptor

    surface = set(surface_indices(slab).tolist())
    plain = Atoms(numbers=slab.numbers, positions=slab.positions, cell=slab.cell, pbc=slab.pbc)
    struct = AseAtomsAdaptor.get_structure(plain)
    labels = ["surface" if i in surface else "subsurface" for i in range(len(slab))]
    struct = struct.copy(site_properties={"surface_properties": labels})
    finder = AdsorbateSiteFinder(struct)
    found = finder.find_adsorption_sites(
        distance=0.0, symm_reduce=0.01 if symmetry_reduce else 0.0, near_reduce=0.01
    )
    sites = []
    for pos in found.get("all", []):
        kind, atoms = classify_site(slab, np.asarray(pos))
        sites.append(Site(_xyz(pos), kind, atoms))
    return sites


def classify_site(
    slab: Atoms, point: np.ndarray, tolerance_ang: float = SITE_TOLERANCE_ANG
) -> tuple[str, tuple[int, ...]]:
    """Kind of a site by how many surface atoms are laterally (nearly) equidistant from it:
    1 ontop, 2 bridge, 3 or more hollow; and those atoms.

    We classify ourselves instead of keeping pymatgen's labels because pymatgen skips hollows
    of right-angled Delaunay triangles and so reports the 4-fold hollow of an fcc(100) surface
    as a "bridge" (the midpoint of the square's diagonal).
    """
    surf = surface_indices(slab)
    delta = slab.positions[surf] - point
    delta[:, 2] = 0.0
    _, dist = find_mic(delta, slab.cell, pbc=[True, True, False])
    close = np.flatnonzero(dist <= dist.min() + tolerance_ang)
    close = close[np.argsort(dist[close], kind="stable")]
    kind = {1: "ontop", 2: "bridge"}.get(len(close), "hollow")
    return kind, tuple(int(surf[i]) for i in close)


def random_sites(slab: Atoms, n_sites: int, rng: np.random.Generator) -> list[Site]:
    """``n_sites`` uniformly random points on the triangulated surface (Å)."""
    surf = surface_indices(slab)
    cell = np.asarray(slab.cell)
    base = slab.positions[surf]
    shifts = [i * cell[0] + j * cell[1] for i in (-1, 0, 1) for j in (-1, 0, 1)]
    tiled = np.concatenate([base + s for s in shifts])
    central = np.arange(len(tiled)) // len(base) == 4  # shift (0, 0) is the 5th block
    if len(tiled) < 3:
        raise StructureError("need at least one surface atom to triangulate the surface")
    triangles = Delaunay(tiled[:, :2]).simplices
    triangles = triangles[central[triangles].any(axis=1)]
    picks = rng.integers(0, len(triangles), size=n_sites)
    r1 = np.sqrt(rng.uniform(size=n_sites))[:, None]
    r2 = rng.uniform(size=n_sites)[:, None]
    verts = tiled[triangles[picks]]
    points = (1 - r1) * verts[:, 0] + r1 * (1 - r2) * verts[:, 1] + r1 * r2 * verts[:, 2]
    sites = []
    for point in points:
        wrapped = _wrap_xy(slab, point)
        sites.append(Site(_xyz(wrapped), "random", nearest_surface_atoms(slab, wrapped, 3)))
    return sites


def nearest_surface_atoms(slab: Atoms, point: np.ndarray, n: int) -> tuple[int, ...]:
    """The ``n`` surface atoms laterally closest to ``point`` (minimum image in x/y)."""
    surf = surface_indices(slab)
    delta = slab.positions[surf] - point
    delta[:, 2] = 0.0
    _, dist = find_mic(delta, slab.cell, pbc=[True, True, False])
    order = np.argsort(dist, kind="stable")[:n]
    return tuple(int(surf[i]) for i in order)


def score_sites(sites: list[Site], atom_scores: tuple[float, ...] | None) -> list[Site]:
    """Attach scores (mean of the defining atoms' per-atom scores) and sort best first.

    With no scores the order is kept (kinds interleaved, see :func:`interleave_kinds`).
    Ties keep their original order, so the result is deterministic.
    """
    if atom_scores is None:
        return interleave_kinds(sites)
    scored = [
        Site(
            s.position,
            s.kind,
            s.surface_atoms,
            float(np.mean([atom_scores[i] for i in s.surface_atoms])),
        )
        for s in sites
    ]
    return sorted(scored, key=lambda s: -s.score)


def scores_are_symmetric(
    slab: Atoms, atom_scores: tuple[float, ...], tolerance: float = SYMMETRIC_SCORE_TOLERANCE
) -> bool:
    """True when every symmetry operation of ``slab`` that keeps its top on top (pymatgen's
    ``SpacegroupAnalyzer``, as `heuristic_sites` reduces by) maps the per-atom scores onto
    themselves, within ``tolerance`` x the largest score magnitude.

    Scores from an invariant model (the surrogate's attention reads distances and heights
    only) are symmetric, and then symmetry-equivalent sites score the same: keeping them all
    only repeats a site. Scores that tell equivalent atoms apart (a hand-set favourite) are not.
    """
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    scores = np.asarray(atom_scores, dtype=float)
    if len(scores) != len(slab):
        raise StructureError(f"{len(scores)} site scores for a {len(slab)}-atom slab")
    bar = tolerance * max(float(np.abs(scores).max()), 1e-12)
    plain = Atoms(numbers=slab.numbers, positions=slab.positions, cell=slab.cell, pbc=slab.pbc)
    struct = AseAtomsAdaptor.get_structure(plain)
    frac = struct.frac_coords
    lattice = np.asarray(struct.lattice.matrix)
    for op in SpacegroupAnalyzer(struct).get_symmetry_operations():
        tau_z = float(op.translation_vector[2]) % 1.0
        if not np.allclose(op.rotation_matrix[2], [0, 0, 1]) or min(tau_z, 1 - tau_z) > 1e-6:
            continue  # turns the slab over or shifts it along c: not a symmetry of its surface
        moved = op.operate_multi(frac)
        delta = moved[:, None, :] - frac[None, :, :]
        delta -= np.round(delta)
        dist = np.linalg.norm(delta @ lattice, axis=2)  # moved atom i x atom j, Å
        image = dist.argmin(axis=1)
        if np.any(dist[np.arange(len(frac)), image] > 0.1):
            continue  # not an operation of these atoms' positions at this tolerance
        if np.any(np.abs(scores[image] - scores) > bar):
            return False
    return True


def interleave_kinds(sites: list[Site]) -> list[Site]:
    """Round-robin over kinds (hollow, ontop, bridge, hollow, ...) so early tries are diverse."""
    by_kind = [[s for s in sites if s.kind == k] for k in SITE_KINDS]
    by_kind.append([s for s in sites if s.kind not in SITE_KINDS])
    out: list[Site] = []
    while any(by_kind):
        for group in by_kind:
            if group:
                out.append(group.pop(0))
    return out


def _xyz(point: np.ndarray) -> tuple[float, float, float]:
    return (float(point[0]), float(point[1]), float(point[2]))


def _wrap_xy(slab: Atoms, point: np.ndarray) -> np.ndarray:
    frac = np.linalg.solve(np.asarray(slab.cell).T, point)
    frac[:2] %= 1.0
    return np.asarray(slab.cell).T @ frac
