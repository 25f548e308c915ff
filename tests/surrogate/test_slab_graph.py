from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import fcc111

from alloop.surrogate.errors import FeaturisationError
from alloop.surrogate.featurizer import Featurizer, FeaturizerConfig
from alloop.surrogate.slab_graph import build_slab_graph, relative_depth, slab_content_hash


@pytest.fixture()
def slab() -> Atoms:
    return fcc111("Pt", size=(2, 2, 3), vacuum=6.0)


def test_depth_and_top_layer(slab: Atoms) -> None:
    depth = relative_depth(slab)
    assert depth.min() == pytest.approx(0.0)
    assert depth.max() == pytest.approx(1.0)
    np.testing.assert_allclose(sorted(set(np.round(depth, 6))), [0.0, 0.5, 1.0])
    graph = build_slab_graph(slab, cutoff_ang=4.0, max_neighbors=12)
    assert int(graph.top_mask.sum()) == 4
    np.testing.assert_array_equal(graph.top_mask.numpy(), depth > 0.99)


def test_depth_survives_wrap_across_cell_face(slab: Atoms) -> None:
    slab.pbc = True  # periodic along c too, as in a VASP/OC20 slab
    moved = slab.copy()
    moved.translate([0.3, 0.2, moved.cell[2, 2] - moved.positions[:, 2].max() + 0.5])
    moved.wrap()  # the top layer now sits at the bottom of the cell
    assert moved.positions[:, 2].min() < 1.0
    np.testing.assert_allclose(relative_depth(moved), relative_depth(slab), atol=1e-9)


def test_edges_are_periodic_and_capped(slab: Atoms) -> None:
    graph = build_slab_graph(slab, cutoff_ang=6.0, max_neighbors=12)
    centres = graph.edge_index[1].numpy()
    counts = np.bincount(centres, minlength=len(slab))
    assert counts.min() >= 12  # a 2x2 cell needs periodic images to reach 12 neighbours
    assert graph.edge_dist_ang.max() <= 6.0
    # A first-shell cap of 9 for a surface atom keeps the whole tied shell (no partial shell).
    capped = build_slab_graph(slab, cutoff_ang=6.0, max_neighbors=7)
    c = np.bincount(capped.edge_index[1].numpy(), minlength=len(slab))
    assert (c >= 7).all()
    nn_ang = 3.92 / np.sqrt(2)
    assert capped.edge_dist_ang.max() == pytest.approx(nn_ang, abs=0.01)


def test_cache_hits_by_content(slab: Atoms) -> None:
    # the RDKit descriptors alone (the MLIP features have their own tests)
    feat = Featurizer(FeaturizerConfig(cutoff_ang=4.0, max_neighbors=12, mlip_features="none"))
    feat.clear()
    g1 = feat.slab_graph(slab)
    assert feat.slab_graph(slab.copy()) is g1
    other = slab.copy()
    other.positions[0, 2] += 0.1
    assert feat.slab_graph(other) is not g1
    assert slab_content_hash(slab) != slab_content_hash(other)
    d1 = feat.descriptors(["CCO", "CCO"])
    assert d1.shape == (2, 210)
    assert "cached_slabs=2" in repr(feat)
    # shared by every featurizer of the same version in the process, not by other versions
    same = FeaturizerConfig(cutoff_ang=4.0, max_neighbors=12, mlip_features="none")
    assert Featurizer(same).slab_graph(slab) is g1
    assert Featurizer(FeaturizerConfig(cutoff_ang=4.5, max_neighbors=12)).slab_graph(slab) is not g1


def test_version_names_the_settings() -> None:
    v = FeaturizerConfig(cutoff_ang=5.5, max_neighbors=30).version
    assert "cutoff_ang=5.5" in v and "max_neighbors=30" in v
    assert v != FeaturizerConfig().version


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cutoff_ang": 0.0}, "cutoff_ang must be > 0, got 0.0"),
        ({"max_neighbors": 0}, "max_neighbors must be >= 1, got 0"),
        ({"top_layer_tol_ang": -1.0}, "top_layer_tol_ang must be >= 0"),
    ],
)
def test_bad_featurizer_config(kwargs: dict, match: str) -> None:
    with pytest.raises(FeaturisationError, match=match):
        FeaturizerConfig(**kwargs)


def test_graph_errors(slab: Atoms) -> None:
    with pytest.raises(FeaturisationError, match="empty slab"):
        build_slab_graph(Atoms())
    lonely = Atoms("Pt2", positions=[[0, 0, 0], [0, 0, 9]], cell=[20, 20, 20], pbc=True)
    with pytest.raises(FeaturisationError, match=r"atoms \[0, 1\] of Pt2 have no neighbour"):
        build_slab_graph(lonely, cutoff_ang=4.0)
    flat = Atoms("Pt", cell=[[1, 0, 0], [2, 0, 0], [0, 0, 5]], pbc=True)
    with pytest.raises(FeaturisationError, match="degenerate a x b"):
        build_slab_graph(flat)
