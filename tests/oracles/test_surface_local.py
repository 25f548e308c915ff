"""Surface-local intercalation and desorption tests on tiny hand-built slabs.

Adsorbate atoms are put on a site and lowered until they touch the slab (covalent radii, as the
placement code lifts them), then C, N and O 0.2 Å closer still, as their relaxed bonds to metals
are often shorter than the sum of covalent radii (metal-H bonds are longer: H stays at contact).
Trough, step-foot and hollow placements must not be flagged; atoms inside the slab and a
molecule far above it must be.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate, bcc110, fcc110, fcc111, fcc211, hcp0001, molecule
from ase.data import atomic_numbers, covalent_radii

from alloop.oracles.anomalies import AnomalySettings, detect_anomalies
from alloop.oracles.errors import OracleConfigError, StructureError
from alloop.oracles.placement import lift_height
from alloop.oracles.slabs import prepare_slab
from alloop.oracles.surface_local import (
    approach_directions,
    binding_surface_atoms,
    heights_above_surface,
    is_desorbed,
    is_intercalated,
)

PROBE = AnomalySettings().surface_probe_radius_ang
DEPTH = AnomalySettings().intercalation_depth_ang
#: how much closer than covalent contact the adsorbate atom is pushed (Å)
SQUEEZE_ANG = 0.2


def _with(slab: Atoms, ads: Atoms) -> Atoms:
    system = slab.copy()
    system.extend(ads)
    tags = system.get_tags()
    tags[len(slab) :] = 2
    system.set_tags(tags)
    return system


def _touching(slab: Atoms, symbol: str, xy: np.ndarray, squeeze_ang: float | None = None) -> Atoms:
    """``slab`` + one ``symbol`` atom above ``xy``, at covalent contact minus ``squeeze_ang``
    (default: ``SQUEEZE_ANG``, 0 for H)."""
    if squeeze_ang is None:
        squeeze_ang = 0.0 if symbol == "H" else SQUEEZE_ANG
    ads = Atoms(symbol, positions=[[xy[0], xy[1], slab.positions[:, 2].min()]])
    ads.positions[:, 2] += lift_height(slab, ads, -squeeze_ang)
    return _with(slab, ads)


def _site(slab: Atoms, site: str) -> np.ndarray:
    """Cartesian x, y of one of ASE's named adsorption sites of ``slab``."""
    probe = slab.copy()
    add_adsorbate(probe, "X", 1.0, site)
    return probe.positions[-1, :2]


def _old_rule_flags(system: Atoms) -> bool:
    """fairchem's tag-based intercalation test: bonded to a tag-0 atom."""
    from fairchem.data.oc.utils.flag_anomaly import DetectTrajAnomaly

    return bool(DetectTrajAnomaly(system, system, system.get_tags()).is_adsorbate_intercalated())


@pytest.mark.parametrize("metal", ["Cu", "Pt"])
@pytest.mark.parametrize("symbol", ["O", "H", "C"])
def test_fcc110_trough_is_not_intercalated(metal: str, symbol: str) -> None:
    slab = prepare_slab(fcc110(metal, size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    trough = _touching(slab, symbol, _site(slab, "hollow"))  # above a second-layer atom
    depth = trough.positions[-1, 2] - slab.positions[:, 2].max()
    assert depth < 0.9  # deep in the trough, bonded to the tag-0 second-layer atom below
    assert not is_intercalated(trough, PROBE, DEPTH)
    assert detect_anomalies(trough, trough, slab) == []
    if symbol != "H":  # the tag-based rule this replaces threw these placements away
        assert _old_rule_flags(trough)
    if symbol != "H":
        # the long bridge spans the trough (a/2 from both row atoms); squeezed by the full 0.2 Å
        # O would drop between the rows into their plane, which no EMT relaxation does (there it
        # ends 0.8-0.9 Å above them): 0.1 Å closer than contact. (H at contact drops between
        # the rows: see the module's limits.)
        long_bridge = _touching(slab, symbol, _site(slab, "longbridge"), squeeze_ang=0.1)
        assert not is_intercalated(long_bridge, PROBE, DEPTH)


@pytest.mark.parametrize("metal", ["Cu", "Pt", "Ag"])
@pytest.mark.parametrize("symbol", ["O", "C", "N"])
def test_fcc211_step_foot_is_not_intercalated(metal: str, symbol: str) -> None:
    slab = prepare_slab(fcc211(metal, size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    z = slab.positions[:, 2]
    rows = np.unique(np.round(z, 2))[::-1]  # step edge, mid terrace, foot, below the edge, ...
    edge = np.flatnonzero(np.isclose(z, rows[0], atol=0.05))
    foot = np.flatnonzero(np.isclose(z, rows[2], atol=0.05))
    assert slab.get_tags()[foot].max() == 0  # the foot row is not tagged surface
    foot_two = slab.positions[foot[np.argsort(slab.positions[foot, 1])[:2]]]
    # the step edge next to the foot row is the periodic image one cell to -x
    edge_two = slab.positions[edge[np.argsort(slab.positions[edge, 1])[:2]]] - slab.cell[0]
    # the four-fold site of the (100) micro-facet between foot and edge: on the square's
    # normal, at covalent contact minus 0.1 Å to all four atoms (in the square's plane where the
    # square is wider than that)
    square = np.vstack([foot_two, edge_two])
    centre = square.mean(axis=0)
    normal = np.cross(edge_two[0] - foot_two[0], foot_two[1] - foot_two[0])
    normal *= np.sign(normal[2]) / np.linalg.norm(normal)
    bond = covalent_radii[atomic_numbers[symbol]] + covalent_radii[atomic_numbers[metal]] - 0.1
    rise = np.sqrt(max(bond**2 - float(np.linalg.norm(square[0] - centre)) ** 2, 0.0))
    hollow = _with(slab, Atoms(symbol, positions=[centre + rise * normal]))
    bridge = _touching(slab, symbol, foot_two[:, :2].mean(axis=0))  # on the lower terrace
    for system in (hollow, bridge):
        assert not is_intercalated(system, PROBE, DEPTH)
        assert _old_rule_flags(system)  # bonded to the tag-0 foot row


@pytest.mark.parametrize("symbol", ["O", "H", "N"])
def test_hcp0001_and_bcc110_hollows_are_not_intercalated(symbol: str) -> None:
    hcp = prepare_slab(hcp0001("Ru", size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    bcc = prepare_slab(bcc110("Fe", size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    for slab, sites in ((hcp, ("fcc", "hcp", "bridge")), (bcc, ("hollow", "longbridge"))):
        for site in sites:
            system = _touching(slab, symbol, _site(slab, site))
            assert heights_above_surface(system, PROBE)[0] > -DEPTH, site
            assert detect_anomalies(system, system, slab) == [], site


@pytest.mark.parametrize("metal", ["Cu", "Pt"])
def test_subsurface_atoms_are_intercalated(metal: str) -> None:
    slab = prepare_slab(fcc111(metal, size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    top = slab.positions[:, 2].max()
    gap = top - np.unique(np.round(slab.positions[:, 2], 3))[-2]
    cases = {
        "O octahedral, under the fcc hollow": ("O", _site(slab, "fcc"), top - gap / 2),
        "H tetrahedral, under the hcp hollow": ("H", _site(slab, "hcp"), top - gap / 4),
        "H 0.4 Å below the top layer, in a hollow": ("H", _site(slab, "fcc"), top - 0.4),
    }
    for name, (symbol, xy, z) in cases.items():
        system = _with(slab, Atoms(symbol, positions=[[xy[0], xy[1], z]]))
        assert is_intercalated(system, PROBE, DEPTH), name
        assert "intercalated" in detect_anomalies(system, system, slab), name
    # an open facet too: under a top-row atom of fcc(110), at the height of the trough floor
    open_slab = prepare_slab(fcc110(metal, size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    row = int(np.argmax(open_slab.positions[:, 2]))
    below = open_slab.positions[row] - [0.0, 0.0, 1.3]
    assert is_intercalated(_with(open_slab, Atoms("O", positions=[below])), PROBE, DEPTH)


def test_depth_setting_decides() -> None:
    slab = prepare_slab(fcc111("Cu", size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    xy = _site(slab, "fcc")
    system = _with(slab, Atoms("H", positions=[[xy[0], xy[1], slab.positions[:, 2].max()]]))
    height = heights_above_surface(system, PROBE)[0]
    assert -2.0 < height < -DEPTH
    assert is_intercalated(system, PROBE, -height - 0.05)
    assert not is_intercalated(system, PROBE, -height + 0.05)


def test_desorbed_molecule_is_flagged_and_bound_one_is_not() -> None:
    slab = prepare_slab(fcc110("Pt", size=(3, 3, 3), vacuum=9.0), n_fixed_layers=1)
    co = molecule("CO")[::-1]  # C first
    bound = slab.copy()
    add_adsorbate(bound, co, 1.85, "ontop")
    bound = _with(slab, bound[len(slab) :])
    floating = bound.copy()
    floating.positions[len(slab) :, 2] += 3.5
    assert not is_desorbed(bound, 1.5)
    assert is_desorbed(floating, 1.5)
    assert detect_anomalies(bound, floating, slab, co) == ["desorbed"]
    assert not is_intercalated(floating, PROBE, DEPTH)


def test_desorbed_uses_minimum_image() -> None:
    slab = prepare_slab(fcc111("Cu", size=(2, 2, 3), vacuum=7.0), n_fixed_layers=1)
    system = _touching(slab, "O", _site(slab, "fcc"), squeeze_ang=0.0)
    # move the atom by a whole cell vector: the same site, the same contacts
    system.positions[-1, :2] += slab.cell[0, :2] + slab.cell[1, :2]
    assert not is_desorbed(system, 1.5)


def test_height_is_periodic_and_independent_of_supercell() -> None:
    small = prepare_slab(fcc111("Pt", size=(1, 1, 3), vacuum=7.0), n_fixed_layers=1)
    large = prepare_slab(fcc111("Pt", size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    rng = np.random.default_rng(0)
    top = small.positions[:, 2].max()
    for frac in rng.uniform(0, 1, size=(6, 2)):
        xy = frac @ small.cell[:2, :2]
        point = [xy[0], xy[1], top + rng.uniform(-0.5, 2.0)]
        shifted = point + 2 * small.cell[0] - small.cell[1]
        h_small = heights_above_surface(_with(small, Atoms("O", positions=[point])), PROBE)
        h_shift = heights_above_surface(_with(small, Atoms("O", positions=[shifted])), PROBE)
        h_large = heights_above_surface(_with(large, Atoms("O", positions=[point])), PROBE)
        np.testing.assert_allclose(h_shift, h_small, atol=1e-9)
        np.testing.assert_allclose(h_large, h_small, atol=1e-9)


def test_height_over_one_atom_is_distance_minus_its_radius() -> None:
    slab = prepare_slab(fcc111("Pt", size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    atop = slab.positions[np.argmax(slab.positions[:, 2])] + [0.0, 0.0, 2.0]
    height = heights_above_surface(_with(slab, Atoms("C", positions=[atop])), PROBE)[0]
    assert height == pytest.approx(2.0 - covalent_radii[atomic_numbers["Pt"]])
    dirs = approach_directions()
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0)
    assert (dirs[:, 2] >= 0.5 - 1e-9).all() and len(dirs) == 25


def test_no_atom_within_reach_gives_no_surface() -> None:
    lone = Atoms(
        "Cu", positions=[[0.0, 0.0, 5.0]], cell=[20.0, 20.0, 20.0], pbc=[True, True, False]
    )
    far = _with(lone, Atoms("O", positions=[[10.0, 10.0, 1.0]]))
    assert heights_above_surface(far, PROBE)[0] == np.inf
    assert not is_intercalated(far, PROBE, DEPTH) and is_desorbed(far, 1.5)
    assert heights_above_surface(lone, PROBE).shape == (0,)
    assert not is_desorbed(lone, 1.5)


def test_slab_without_lateral_cell_is_refused() -> None:
    flat = Atoms("Cu2", positions=[[0, 0, 0], [1, 0, 0]], cell=[[1, 0, 0], [2, 0, 0], [0, 0, 9]])
    system = _with(flat, Atoms("O", positions=[[0.5, 0.0, 2.0]]))
    with pytest.raises(StructureError, match="no lateral area"):
        heights_above_surface(system, PROBE)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("surface_probe_radius_ang", 0.0, "surface_probe_radius_ang must be a number > 0"),
        ("desorption_cutoff_multiplier", -1.0, "desorption_cutoff_multiplier must be"),
        ("intercalation_depth_ang", -0.1, "intercalation_depth_ang must be a number >= 0"),
        ("bond_multiplier", "1.3", "bond_multiplier must be a number > 0, got '1.3'"),
    ],
)
def test_bad_anomaly_settings_are_refused(field: str, value: object, match: str) -> None:
    with pytest.raises(OracleConfigError, match=match):
        AnomalySettings(**{field: value})  # type: ignore[arg-type]


REACH = AnomalySettings().desorption_cutoff_multiplier


@pytest.mark.parametrize(("site", "n_bound"), [("ontop", 1), ("bridge", 2), ("fcc", 3)])
def test_binding_surface_atoms_are_the_site_atoms(site: str, n_bound: int) -> None:
    slab = prepare_slab(fcc111("Cu", size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    system = _touching(slab, "O", _site(slab, site))
    bound = binding_surface_atoms(system, REACH)
    assert len(bound) == n_bound
    assert set(bound) <= set(np.flatnonzero(slab.get_tags() == 1).tolist())
    # the nearest slab atoms, and nothing farther than the bond rule's reach
    dist = system.get_distances(len(slab), list(range(len(slab))), mic=True)
    assert set(bound) == set(np.argsort(dist)[:n_bound].tolist())


def test_a_long_bonded_h_binds_and_a_desorbed_one_does_not() -> None:
    slab = prepare_slab(fcc111("Cu", size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    # EMT's H minimum on Cu sits 2.1-2.4 Å from its hollow's atoms (r_H + r_Cu = 1.63 Å)
    system = _touching(slab, "H", _site(slab, "fcc"), squeeze_ang=-0.6)
    assert not is_desorbed(system, REACH)
    assert len(binding_surface_atoms(system, REACH)) == 3


def test_binding_surface_atoms_include_the_untagged_step_foot() -> None:
    slab = prepare_slab(fcc211("Pt", size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    z = slab.positions[:, 2]
    rows = np.unique(np.round(z, 2))[::-1]
    foot = np.flatnonzero(np.isclose(z, rows[2], atol=0.05))
    two = foot[np.argsort(slab.positions[foot, 1])[:2]]
    bridge = _touching(slab, "O", slab.positions[two, :2].mean(axis=0))
    bound = binding_surface_atoms(bridge, REACH)
    assert set(two.tolist()) <= set(bound)
    assert slab.get_tags()[list(bound)].min() == 0  # found by distance, whatever the tags


def test_binding_surface_atoms_of_a_desorbed_molecule_and_bad_order() -> None:
    slab = prepare_slab(fcc111("Cu", size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
    far = _touching(slab, "O", _site(slab, "fcc"))
    far.positions[-1, 2] += 4.0
    assert binding_surface_atoms(far, REACH) == ()
    on = _touching(slab, "O", _site(slab, "fcc"))
    flipped = on[[len(on) - 1, *range(len(on) - 1)]]
    with pytest.raises(StructureError, match="precede"):
        binding_surface_atoms(flipped, REACH)
