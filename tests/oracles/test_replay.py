"""The replay oracle on the FG data this run uses (the full set or the compact copy), and its
structure path on adsorbed configurations written here from the real slabs and molecules."""

from __future__ import annotations

import shutil
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms

from alloop.oracles.errors import OracleError
from alloop.oracles.fg_data import SHIPPED_FG_ROOT, holds_configurations
from alloop.oracles.replay import ReplayOracle, read_fg_rows
from alloop.oracles.slabs import read_single
from tests.conftest import FG_ROOT

NEEDS_FULL_SET = pytest.mark.skipif(
    not holds_configurations(FG_ROOT),
    reason=f"checks the FG dataset's own adsorbed configurations, which {FG_ROOT} (the compact "
    "copy) leaves out; set ALLOOP_FG_ROOT to the full set",
)


def _configuration(slab_file: Path, gas_file: Path, pull: str | None = None) -> Atoms:
    """The gas molecule flat 2.2 Å above the middle of the slab, optionally with its first
    ``pull`` atom moved 3 Å sideways (a broken bond)."""
    slab, gas = read_single(slab_file, "vasp"), read_single(gas_file, "vasp")
    centre = slab.cell[0] / 2 + slab.cell[1] / 2
    positions = gas.positions - gas.positions.mean(axis=0) + centre
    positions[:, 2] = slab.positions[:, 2].max() + 2.2
    if pull is not None:
        positions[gas.get_chemical_symbols().index(pull), 0] += 3.0
    return slab + Atoms(gas.get_chemical_symbols(), positions=positions)


@pytest.fixture
def root_with_configurations(fg_root: Path, tmp_path: Path) -> Path:
    """An FG root: the real table, Ag slab and amide molecules, plus two adsorbed
    configurations written here: Ag + 13X1 intact, Ag + 25X1 with its O pulled off."""
    for rel in ("fg_gmae_derived.csv", "metal_surfaces", "gas_amides"):
        copy = shutil.copytree if (fg_root / rel).is_dir() else shutil.copyfile
        copy(fg_root / rel, tmp_path / rel)
    (tmp_path / "amides" / "structures").mkdir(parents=True)
    slab = tmp_path / "metal_surfaces/structures/ag-0000.contcar"
    for code, pull in (("13X1", None), ("25X1", "O")):
        gas = tmp_path / f"gas_amides/structures/{code}.contcar"
        configuration = _configuration(slab, gas, pull)
        ase.io.write(tmp_path / f"amides/structures/ag-{code}-a.contcar", configuration, "vasp")
    return tmp_path


def test_replay_reads_whole_grid(fg_root: Path) -> None:
    rows = read_fg_rows(fg_root)
    assert len(rows) == 2898
    oracle = ReplayOracle(fg_root)
    assert len(oracle.metals) == 14 and "Pt" in oracle.metals
    # codes repeat across families: both keys must exist separately
    assert oracle.row("Pt", "group2/3611") is not None
    assert oracle.row("Pt", "group2b/3611") is not None


def test_replay_label_matches_csv_row(fg_root: Path) -> None:
    oracle = ReplayOracle(fg_root, load_structures=False)
    pair = oracle.make_pair("Ag", "amides/13X1")
    res = oracle.label(pair)
    assert res.status == "ok" and res.fidelity == "replay"
    assert res.gmae_ev == pytest.approx(-0.394987)
    prov = res.provenance
    assert prov["source_line"] == 2
    assert prov["structure_file"] == "amides/structures/ag-13X1-a.contcar"
    assert prov["reference_scheme"] == "gas_phase_molecule"
    # the table value is the definition E(ads) - E(slab) - E(gas)
    e_ads = (
        prov["e_tot_best_ev"]
        - prov["reference_energies_ev"]["slab"]
        - prov["reference_energies_ev"]["gas"]
    )
    assert e_ads == pytest.approx(res.gmae_ev, abs=1e-5)
    assert res.best_structure is None


def test_replay_best_structure_is_tagged_and_checked(root_with_configurations: Path) -> None:
    oracle = ReplayOracle(root_with_configurations)
    assert oracle.load_structures  # the root holds configurations
    res = oracle.label(oracle.make_pair("Ag", "amides/13X1"))
    assert res.status == "ok" and res.gmae_ev == pytest.approx(-0.394987)
    best = res.best_structure
    assert best is not None and best.get_chemical_formula() == "CH3Ag48NO"
    tags = best.get_tags()
    assert (tags == 2).sum() == 6 and (tags == 1).sum() == 12
    assert res.provenance["anomaly_flags"] == []
    broken = oracle.label(oracle.make_pair("Ag", "amides/25X1"))
    assert broken.status == "ok" and broken.provenance["anomaly_flags"] == ["dissociated"]


def test_replay_missing_configuration_fails_its_pair_only(root_with_configurations: Path) -> None:
    oracle = ReplayOracle(root_with_configurations)
    res = oracle.label(oracle.make_pair("Ag", "amides/25X2"))  # no CONTCAR written for it
    assert res.status == "failed" and res.gmae_ev is None
    assert res.error is not None and res.error.startswith("structure_error: ")
    assert "ag-25X2-a.contcar" in res.error


def test_replay_on_the_compact_copy_gives_energies_only() -> None:
    oracle = ReplayOracle(SHIPPED_FG_ROOT)
    assert not oracle.load_structures and len(oracle.known_pairs()) == 2898
    res = oracle.label(oracle.make_pair("Pt", "group2/3611"))
    assert res.status == "ok" and res.gmae_ev is not None and res.best_structure is None
    with pytest.raises(OracleError) as info:
        ReplayOracle(SHIPPED_FG_ROOT, load_structures=True)
    message = str(info.value)
    assert "\n" not in message and "ALLOOP_FG_ROOT" in message
    assert message.startswith("ReplayOracle(load_structures=True) needs the adsorbed")
    assert "the compact copy alloop ships" in message


def test_replay_two_configs_takes_minimum(fg_root: Path) -> None:
    res = ReplayOracle(fg_root, load_structures=False).label(
        ReplayOracle(fg_root).make_pair("Ag", "aromatics/4411")
    )
    energies = [p["e_ads_ev"] for p in res.provenance["placements"]]
    assert len(energies) == 2
    assert res.gmae_ev == pytest.approx(min(energies))
    assert res.best_structure is None


def test_replay_unknown_pair_is_failed_result(fg_root: Path) -> None:
    oracle = ReplayOracle(fg_root)
    pair = oracle.make_pair("Pt", "amides/13X1")
    from dataclasses import replace

    res = oracle.label(replace(pair, surface_key="Xx"))
    assert res.status == "failed" and res.gmae_ev is None
    assert res.error is not None and "surface_key 'Xx'" in res.error and "Pt" in res.error
    res2 = oracle.label(replace(pair, adsorbate_key="13X1"))
    assert res2.error is not None and "'family/mol_code'" in res2.error
    with pytest.raises(OracleError, match="not in the FG table"):
        oracle.make_pair("Pt", "nope/0000")


def test_replay_missing_root_is_clear(tmp_path: Path) -> None:
    with pytest.raises(OracleError, match="FG table not found"):
        ReplayOracle(tmp_path)


def test_replay_make_pair_slab_is_tagged(fg_root: Path) -> None:
    pair = ReplayOracle(fg_root).make_pair("Fe", "group2/3611")
    tags = pair.slab.get_tags()
    assert len(pair.slab) == 48 and set(np.unique(tags)) == {0, 1}
    assert pair.adsorbate.atoms is not None


@NEEDS_FULL_SET
def test_replay_flags_the_two_dft_minima_that_are_not_intact(fg_root: Path) -> None:
    oracle = ReplayOracle(fg_root)
    for metal, key in (("Ru", "oximes/49Y3"), ("Fe", "aromatics/44S1")):
        res = oracle.label(oracle.make_pair(metal, key))
        assert res.status == "ok" and res.provenance["anomaly_flags"] == ["dissociated"]
    intact = oracle.label(oracle.make_pair("Ru", "oximes/37Y2"))
    assert intact.provenance["anomaly_flags"] == []
