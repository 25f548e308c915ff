"""Initial adsorbate placements: which site, which binding atom, which orientation, how high.

The order in which placements are yielded is the search order (see :mod:`alloop.oracles.search`):

1. heuristic placements: every heuristic site (best-scored first when per-atom site scores are
   given; kinds interleaved otherwise) with every binding atom, first ``upright`` (binding atom
   pointing down, as fairchem's heuristic mode: random turn about z, a wobble within a π/9 cone)
   and, for adsorbates with three or more heavy atoms, ``flat`` (molecular plane parallel to the
   surface, the way aromatics and many FG minima lie). Rounds are combo-major: all sites with the
   first (binding atom, orientation) before any site with the second, so early tries are diverse.
2. then an endless stream of random placements: a random point on the surface, a random binding
   atom, alternately ``upright`` and a uniformly random 3D rotation.

Height: the adsorbate is lifted along z until every adsorbate-slab distance is at least the sum
of covalent radii plus ``gap_ang`` (fairchem's ``interstitial_gap``, 0.1 Å by default), solved in
closed form with minimum-image lateral distances.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.geometry import find_mic
from scipy.spatial.transform import Rotation

from alloop.oracles.sites import Site, heuristic_sites, random_sites, score_sites
from alloop.oracles.types import TAG_ADSORBATE

#: half-angle of the cone of upright wobbles (fairchem's heuristic mode)
WOBBLE_CONE_RAD = np.pi / 9


@dataclass(frozen=True)
class Placement:
    """One initial structure: slab + adsorbate (tags 0/1/2) and how it was made."""

    index: int
    atoms: Atoms
    site: Site
    binding_atom: int
    orientation: str
    source: str

    def describe(self) -> dict[str, object]:
        """JSON-ready description for provenance."""
        return {
            "index": self.index,
            "source": self.source,
            "site_kind": self.site.kind,
            "site_xyz_ang": [round(x, 4) for x in self.site.position],
            "site_surface_atoms": list(self.site.surface_atoms),
            "site_score": self.site.score,
            "binding_atom": self.binding_atom,
            "orientation": self.orientation,
        }


def orient(adsorbate: Atoms, binding: int, mode: str, rng: np.random.Generator) -> Atoms:
    """A rotated copy of ``adsorbate``: ``upright``, ``flat`` or ``random`` (see module doc)."""
    ads = adsorbate.copy()
    pos = ads.positions - ads.positions[binding]
    if len(ads) > 1 and mode == "upright":
        away = ads.positions.mean(axis=0) - ads.positions[binding]
        if np.linalg.norm(away) > 1e-6:
            pos = _align(away, np.array([0.0, 0.0, 1.0])).apply(pos)
        pos = _wobble(rng).apply(pos)
    elif len(ads) > 1 and mode == "flat":
        centred = ads.positions - ads.positions.mean(axis=0)
        _, vecs = np.linalg.eigh(centred.T @ centred)
        pos = _align(vecs[:, 0], np.array([0.0, 0.0, 1.0])).apply(pos)
        pos = Rotation.from_euler("z", rng.uniform(0, 2 * np.pi)).apply(pos)
    elif len(ads) > 1 and mode == "random":
        pos = Rotation.random(random_state=rng).apply(pos)
    ads.positions = pos
    return ads


def place_on_site(slab: Atoms, oriented: Atoms, binding: int, site: Site, gap_ang: float) -> Atoms:
    """Slab + adsorbate with the binding atom above ``site``, lifted to touch but not overlap."""
    ads = oriented.copy()
    ads.positions += np.asarray(site.position) - ads.positions[binding]
    ads.positions[:, 2] += lift_height(slab, ads, gap_ang)
    ads.set_tags([TAG_ADSORBATE] * len(ads))
    combined = slab.copy()
    combined.calc = None
    combined.extend(ads)
    return combined


def lift_height(slab: Atoms, ads: Atoms, gap_ang: float) -> float:
    """Smallest upward shift (Å) that clears every adsorbate-slab covalent contact + gap."""
    r_ads = covalent_radii[ads.numbers]
    r_slab = covalent_radii[slab.numbers]
    need = 0.0
    for a in range(len(ads)):
        delta = slab.positions - ads.positions[a]
        lateral = delta.copy()
        lateral[:, 2] = 0.0
        _, d_xy = find_mic(lateral, slab.cell, pbc=[True, True, False])
        reach = r_ads[a] + r_slab + gap_ang
        close = d_xy < reach
        if close.any():
            rise = delta[close, 2] + np.sqrt(reach[close] ** 2 - d_xy[close] ** 2)
            need = max(need, float(rise.max()))
    return need


class PlacementPlan:
    """Yields placements of one adsorbate on one slab in search order (see module docstring)."""

    def __init__(
        self,
        slab: Atoms,
        adsorbate: Atoms,
        binding_atoms: tuple[int, ...],
        rng: np.random.Generator,
        site_scores: tuple[float, ...] | None = None,
        gap_ang: float = 0.1,
    ) -> None:
        self.slab = slab
        self.adsorbate = adsorbate
        self.binding_atoms = binding_atoms
        self.rng = rng
        self.site_scores = site_scores
        self.gap_ang = gap_ang
        heavy = int((adsorbate.numbers != 1).sum())
        self.orientations = ("upright", "flat") if heavy >= 3 else ("upright",)
        # with scores, keep symmetry-equivalent sites: the scores may rank them differently
        sites = heuristic_sites(slab, symmetry_reduce=site_scores is None)
        self.sites = score_sites(sites, site_scores)

    def __repr__(self) -> str:
        return (
            f"PlacementPlan({self.adsorbate.get_chemical_formula()} on "
            f"{self.slab.get_chemical_formula()}, {len(self.sites)} heuristic sites, "
            f"binding atoms {self.binding_atoms}, orientations {self.orientations})"
        )

    @property
    def n_heuristic(self) -> int:
        return len(self.sites) * len(self.binding_atoms) * len(self.orientations)

    def __iter__(self) -> Iterator[Placement]:
        index = 0
        for binding in self.binding_atoms:
            for mode in self.orientations:
                for site in self.sites:
                    yield self._make(index, site, binding, mode, "heuristic")
                    index += 1
        while True:
            site = random_sites(self.slab, 1, self.rng)[0]
            if self.site_scores is not None:
                score = float(np.mean([self.site_scores[i] for i in site.surface_atoms]))
                site = Site(site.position, site.kind, site.surface_atoms, score)
            binding = int(self.rng.choice(self.binding_atoms))
            mode = "upright" if index % 2 == 0 else "random"
            yield self._make(index, site, binding, mode, "random")
            index += 1

    def _make(self, index: int, site: Site, binding: int, mode: str, source: str) -> Placement:
        oriented = orient(self.adsorbate, binding, mode, self.rng)
        atoms = place_on_site(self.slab, oriented, binding, site, self.gap_ang)
        return Placement(index, atoms, site, binding, mode, source)


def _align(vec: np.ndarray, target: np.ndarray) -> Rotation:
    """The rotation taking direction ``vec`` onto ``target``."""
    rot, _ = Rotation.align_vectors([target], [vec / np.linalg.norm(vec)])
    return rot


def _wobble(rng: np.random.Generator) -> Rotation:
    """Random turn about z followed by a tilt drawn uniformly within the wobble cone."""
    turn = Rotation.from_euler("z", rng.uniform(0, 2 * np.pi))
    cos_tilt = rng.uniform(np.cos(WOBBLE_CONE_RAD), 1.0)
    phi = rng.uniform(0, 2 * np.pi)
    sin_tilt = np.sqrt(1 - cos_tilt**2)
    axis_to = np.array([sin_tilt * np.cos(phi), sin_tilt * np.sin(phi), cos_tilt])
    tilt = _align(np.array([0.0, 0.0, 1.0]), axis_to) if sin_tilt > 1e-9 else Rotation.identity()
    return tilt * turn
