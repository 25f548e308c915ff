from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alloop.oracles.errors import OracleError
from alloop.oracles.replay import ReplayOracle, read_fg_rows


def test_replay_reads_whole_grid(fg_root: Path) -> None:
    rows = read_fg_rows(fg_root)
    assert len(rows) == 2898
    oracle = ReplayOracle(fg_root)
    assert len(oracle.metals) == 14 and "Pt" in oracle.metals
    # codes repeat across families: both keys must exist separately
    assert oracle.row("Pt", "group2/3611") is not None
    assert oracle.row("Pt", "group2b/3611") is not None


def test_replay_label_matches_csv_row(fg_root: Path) -> None:
    oracle = ReplayOracle(fg_root)
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
    best = res.best_structure
    assert best is not None and best.get_chemical_formula() == "CH3Ag48NO"
    tags = best.get_tags()
    assert (tags == 2).sum() == 6 and (tags == 1).sum() == 12


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


def test_replay_flags_the_two_dft_minima_that_are_not_intact(fg_root: Path) -> None:
    oracle = ReplayOracle(fg_root)
    for metal, key in (("Ru", "oximes/49Y3"), ("Fe", "aromatics/44S1")):
        res = oracle.label(oracle.make_pair(metal, key))
        assert res.status == "ok" and res.provenance["anomaly_flags"] == ["dissociated"]
    intact = oracle.label(oracle.make_pair("Ru", "oximes/37Y2"))
    assert intact.provenance["anomaly_flags"] == []
