"""Initial adsorbate placements: which site, which binding atom, which orientation, how high.

The order in which placements are yielded is the search order (see :mod:`alloop.oracles.search`):

1. heuristic placements: every symmetry-distinct heuristic site (best-scored first when per-atom
   site scores are given, equivalent sites kept apart only when the scores tell them apart;
   kinds interleaved otherwise) with every binding atom, first ``upright`` (binding atom
   pointing down, as fairchem's heuristic mode: random turn about z, a wobble within a π/9 cone)
   and, for adsorbates of two or more atoms, ``flat`` (molecular plane, or the bond of a diatomic,
   parallel to the surface: aromatics and many FG minima lie flat, and with upright starts alone
   the search missed tilted CO/OH minima in the EMT benchmark), and in between ``tilted``
   (binding atom down, axis 30-60 degrees from the normal). The (site, combo) pairs are walked
   as a Latin square (:meth:`PlacementPlan.heuristic_order`): consecutive placements differ in
   site and in binding atom / orientation, so an early stop has already seen a diverse set.
2. random placements: a random point on the surface, a random binding atom, alternately
   ``upright`` and a uniformly random 3D rotation. Every ``random_every``-th placement (default
   every 3rd) is random even while heuristic ones remain, and all are random once the heuristic
   ones run out: in the EMT benchmark a fifth of the dense searches' minima (tilted OH, CO) were
   reached only from random starts, so an early stop must already have tried some.

Height: the adsorbate is lifted along z until every adsorbate-slab distance is at least the sum
of covalent radii plus ``gap_ang`` (fairchem's ``interstitial_gap``, 0.1 Å by default), solved in
closed form with minimum-image lateral distances.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.geometry import find_mic
from scipy.spatial.transform import Rotation

from alloop.oracles.sites import (
    Site,
    heuristic_sites,
    random_sites,
    score_sites,
    scores_are_symmetric,
)
from alloop.oracles.types import TAG_ADSORBATE

#: half-angle of the cone of upright wobbles (fairchem's heuristic mode)
WOBBLE_CONE_RAD = np.pi / 9
#: range of tilts from the surface normal for ``tilted`` starts (tilted OH, CO, methoxy, ...)
TILT_MIN_RAD = np.pi / 6
TILT_MAX_RAD = np.pi / 3


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
    """A rotated copy of ``adsorbate``: ``upright``, ``tilted``, ``flat`` or ``random``."""
    ads = adsorbate.copy()
    pos = ads.positions - ads.positions[binding]
    if len(ads) > 1 and mode in ("upright", "tilted"):
        away = ads.positions.mean(axis=0) - ads.positions[binding]
        if np.linalg.norm(away) > 1e-6:
            pos = _align(away, np.array([0.0, 0.0, 1.0])).apply(pos)
        cone = (TILT_MIN_RAD, TILT_MAX_RAD) if mode == "tilted" else (0.0, WOBBLE_CONE_RAD)
        pos = _wobble(rng, *cone).apply(pos)
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
        random_every: int = 3,
        orientations: tuple[str, ...] = ("upright", "tilted", "flat"),
    ) -> None:
        self.slab = slab
        self.adsorbate = adsorbate
        self.binding_atoms = binding_atoms
        self.rng = rng
        self.site_scores = site_scores
        self.gap_ang = gap_ang
        self.random_every = random_every
        self.orientations = orientations if len(adsorbate) >= 2 else ("upright",)
        # keep symmetry-equivalent sites only for scores that rank them differently: scores
        # that respect the slab's symmetry would put equivalent sites one after another
        reduce = site_scores is None or scores_are_symmetric(slab, site_scores)
        sites = heuristic_sites(slab, symmetry_reduce=reduce)
        self.sites = score_sites(sites, site_scores)
        #: (binding atom, orientation) combinations, binding atoms major
        self.combos = [(b, o) for b in binding_atoms for o in self.orientations]

    def __repr__(self) -> str:
        return (
            f"PlacementPlan({self.adsorbate.get_chemical_formula()} on "
            f"{self.slab.get_chemical_formula()}, {len(self.sites)} heuristic sites, "
            f"binding atoms {self.binding_atoms}, orientations {self.orientations})"
        )

    @property
    def n_heuristic(self) -> int:
        return len(self.sites) * len(self.binding_atoms) * len(self.orientations)

    def heuristic_order(self) -> list[tuple[int, int]]:
        """(site index, combo index) pairs in search order: a Latin-square walk in which round
        ``r`` gives site ``i`` the combo ``(i + r) mod n_combos``, so consecutive placements
        differ in site *and* in binding atom/orientation, and every pair appears once."""
        n_sites, n_combos = len(self.sites), len(self.combos)
        rounds = n_combos if n_sites >= n_combos else n_combos * n_sites
        order: list[tuple[int, int]] = []
        seen: set[tuple[int, int]] = set()
        for r in range(rounds):
            for i in range(n_sites):
                pair = (i, (i + r) % n_combos)
                if pair not in seen:
                    seen.add(pair)
                    order.append(pair)
        return order

    def __iter__(self) -> Iterator[Placement]:
        heuristic = iter(self.heuristic_order())
        n_random = 0
        for index in itertools.count():
            due = self.random_every > 0 and (index + 1) % self.random_every == 0
            pick = None if due else next(heuristic, None)
            if pick is None:
                yield self._random(index, n_random)
                n_random += 1
            else:
                binding, mode = self.combos[pick[1]]
                yield self._make(index, self.sites[pick[0]], binding, mode, "heuristic")

    def _random(self, index: int, n_random: int) -> Placement:
        site = random_sites(self.slab, 1, self.rng)[0]
        if self.site_scores is not None:
            score = float(np.mean([self.site_scores[i] for i in site.surface_atoms]))
            site = Site(site.position, site.kind, site.surface_atoms, score)
        binding = int(self.rng.choice(self.binding_atoms))
        mode = "upright" if n_random % 2 == 0 else "random"
        return self._make(index, site, binding, mode, "random")

    def _make(self, index: int, site: Site, binding: int, mode: str, source: str) -> Placement:
        oriented = orient(self.adsorbate, binding, mode, self.rng)
        atoms = place_on_site(self.slab, oriented, binding, site, self.gap_ang)
        return Placement(index, atoms, site, binding, mode, source)


def _align(vec: np.ndarray, target: np.ndarray) -> Rotation:
    """The rotation taking direction ``vec`` onto ``target``."""
    rot, _ = Rotation.align_vectors([target], [vec / np.linalg.norm(vec)])
    return rot


def _wobble(rng: np.random.Generator, min_tilt_rad: float, max_tilt_rad: float) -> Rotation:
    """Random turn about z, then a tilt drawn uniformly (in solid angle) between the two angles."""
    turn = Rotation.from_euler("z", rng.uniform(0, 2 * np.pi))
    cos_tilt = rng.uniform(np.cos(max_tilt_rad), np.cos(min_tilt_rad))
    phi = rng.uniform(0, 2 * np.pi)
    sin_tilt = np.sqrt(1 - cos_tilt**2)
    axis_to = np.array([sin_tilt * np.cos(phi), sin_tilt * np.sin(phi), cos_tilt])
    tilt = _align(np.array([0.0, 0.0, 1.0]), axis_to) if sin_tilt > 1e-9 else Rotation.identity()
    return tilt * turn
