from __future__ import annotations

import itertools

import numpy as np
import pytest
from ase import Atoms
from fairchem.data.oc.core.adsorbate_slab_config import there_is_overlap

from alloop.oracles.adsorbates import (
    adsorbate_from_database,
    adsorbate_from_smiles,
    resolve_adsorbate,
)
from alloop.oracles.errors import StructureError
from alloop.oracles.placement import PlacementPlan, lift_height
from alloop.oracles.sites import heuristic_sites, random_sites, score_sites, scores_are_symmetric


def test_fcc111_has_four_symmetry_distinct_sites(cu_slab: Atoms) -> None:
    sites = heuristic_sites(cu_slab)
    kinds = sorted(s.kind for s in sites)
    assert kinds == ["bridge", "hollow", "hollow", "ontop"]
    ontop = next(s for s in sites if s.kind == "ontop")
    assert len(ontop.surface_atoms) == 1 and cu_slab.get_tags()[ontop.surface_atoms[0]] == 1
    all_sites = heuristic_sites(cu_slab, symmetry_reduce=False)
    assert len(all_sites) > len(sites)


def test_random_sites_lie_in_cell_and_are_seeded(cu_slab: Atoms) -> None:
    a = random_sites(cu_slab, 20, np.random.default_rng(5))
    b = random_sites(cu_slab, 20, np.random.default_rng(5))
    assert [s.position for s in a] == [s.position for s in b]
    frac = np.linalg.solve(np.asarray(cu_slab.cell).T, np.array([s.position for s in a]).T).T
    assert (frac[:, :2] >= -1e-9).all() and (frac[:, :2] < 1 + 1e-9).all()
    top = cu_slab.positions[:, 2].max()
    assert np.allclose(frac @ np.asarray(cu_slab.cell), np.array([s.position for s in a]))
    assert all(abs(s.position[2] - top) < 0.01 for s in a)


def test_site_scores_order_sites_best_first(cu_slab: Atoms) -> None:
    sites = heuristic_sites(cu_slab, symmetry_reduce=False)
    scores = np.zeros(len(cu_slab))
    favourite = int(np.flatnonzero(cu_slab.get_tags() == 1)[2])
    scores[favourite] = 1.0
    ranked = score_sites(sites, tuple(scores))
    assert ranked[0].kind == "ontop" and ranked[0].surface_atoms == (favourite,)
    assert ranked[0].score == pytest.approx(1.0)
    assert all(ranked[i].score >= ranked[i + 1].score for i in range(len(ranked) - 1))


def test_placements_do_not_overlap_and_bind_downwards(cu_slab: Atoms) -> None:
    atoms, binding = resolve_adsorbate(adsorbate_from_smiles("CC=O", seed=0))
    plan = PlacementPlan(cu_slab, atoms, binding, np.random.default_rng(0))
    assert plan.orientations == ("upright", "tilted", "flat")
    assert plan.n_heuristic == 4 * 3 * 3
    placements = list(itertools.islice(plan, 60))
    # every third placement is random while heuristic ones remain, then all are random
    expected = ["random" if (i + 1) % 3 == 0 else "heuristic" for i in range(54)]
    assert [p.source for p in placements[:54]] == expected
    assert {p.source for p in placements[54:]} == {"random"}
    top = cu_slab.positions[:, 2].max()
    for p in placements:
        tags = p.atoms.get_tags()
        assert (tags == 2).sum() == len(atoms) and len(p.atoms) == len(cu_slab) + len(atoms)
        assert not there_is_overlap(p.atoms)  # fairchem-data-oc's own overlap check
        ads = p.atoms.positions[tags == 2]
        assert ads[:, 2].min() > top + 0.5
    # the binding atom sits at the site laterally
    first = placements[0]
    xy = first.atoms.positions[len(cu_slab) + first.binding_atom, :2]
    assert np.allclose(xy, first.site.position[:2], atol=1e-6)


def test_placement_plan_is_reproducible(cu_slab: Atoms) -> None:
    atoms, binding = resolve_adsorbate(adsorbate_from_database("*OH"))
    run = [
        [
            p.atoms.positions.copy()
            for p in itertools.islice(
                PlacementPlan(cu_slab, atoms, binding, np.random.default_rng(9)), 8
            )
        ]
        for _ in range(2)
    ]
    assert all(np.allclose(x, y) for x, y in zip(*run, strict=True))


def test_lift_height_clears_covalent_contacts(cu_slab: Atoms) -> None:
    o = Atoms("O", positions=[cu_slab.positions[-1]])  # exactly on a top atom
    h = lift_height(cu_slab, o, gap_ang=0.1)
    assert h == pytest.approx(0.66 + 1.32 + 0.1, abs=0.01)  # covalent radii O + Cu + gap


def test_untagged_slab_is_rejected(cu_slab: Atoms) -> None:
    bare = cu_slab.copy()
    bare.set_tags(0)
    with pytest.raises(StructureError, match="no surface-tagged"):
        heuristic_sites(bare)


def test_heuristic_order_is_a_latin_walk(cu_slab: Atoms) -> None:
    atoms, binding = resolve_adsorbate(adsorbate_from_smiles("CC=O", seed=0))
    plan = PlacementPlan(cu_slab, atoms, binding, np.random.default_rng(0))
    order = plan.heuristic_order()
    n_sites, n_combos = len(plan.sites), len(plan.combos)
    assert sorted(order) == [(i, c) for i in range(n_sites) for c in range(n_combos)]
    # the first round tries every site, each with a different (binding atom, orientation)
    first = order[:n_sites]
    assert [s for s, _ in first] == list(range(n_sites))
    assert len({c for _, c in first}) == n_sites
    single = PlacementPlan(
        cu_slab,
        *resolve_adsorbate(adsorbate_from_database("*O")),
        np.random.default_rng(0),
        random_every=0,
    )
    assert single.orientations == ("upright",)
    assert [p.source for p in itertools.islice(single, 6)] == ["heuristic"] * 4 + ["random"] * 2


def test_fcc100_four_fold_hollow_is_a_hollow() -> None:
    from ase.build import fcc100

    from alloop.oracles.slabs import prepare_slab

    slab = prepare_slab(fcc100("Pt", size=(3, 3, 3), vacuum=6.0), n_fixed_layers=1)
    sites = heuristic_sites(slab)
    assert sorted(s.kind for s in sites) == ["bridge", "hollow", "ontop"]
    hollow = next(s for s in sites if s.kind == "hollow")
    assert len(hollow.surface_atoms) == 4  # pymatgen alone calls this point a "bridge"
    assert score_sites(sites, None)[0].kind == "hollow"  # without scores, hollows first


def test_symmetric_scores_keep_the_symmetry_reduced_sites(cu_slab: Atoms) -> None:
    atoms, binding = resolve_adsorbate(adsorbate_from_database("*O"))
    layer_scores = tuple(float(z) for z in np.round(cu_slab.positions[:, 2], 3))
    favoured = np.zeros(len(cu_slab))
    favoured[int(np.flatnonzero(cu_slab.get_tags() == 1)[2])] = 1.0
    assert scores_are_symmetric(cu_slab, layer_scores)
    assert not scores_are_symmetric(cu_slab, tuple(favoured))
    rng = np.random.default_rng(0)
    plain = PlacementPlan(cu_slab, atoms, binding, rng)
    by_layer = PlacementPlan(cu_slab, atoms, binding, rng, layer_scores)
    one_atom = PlacementPlan(cu_slab, atoms, binding, rng, tuple(favoured))
    assert len(by_layer.sites) == len(plain.sites) == 4
    assert len(one_atom.sites) == len(heuristic_sites(cu_slab, symmetry_reduce=False)) > 4
    with pytest.raises(StructureError, match="3 site scores for a"):
        scores_are_symmetric(cu_slab, (1.0, 2.0, 3.0))
