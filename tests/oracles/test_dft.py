"""DFT escalation: fast error paths, and one real tiny GPAW escalation (slow, dft)."""

from __future__ import annotations

import os

import pytest
from ase.build import fcc111
from ase.calculators.emt import EMT

from alloop.oracles import dft as dft_module
from alloop.oracles.adsorbates import adsorbate_from_database
from alloop.oracles.dft import DFTOracle
from alloop.oracles.dft_settings import DFTOracleSettings
from alloop.oracles.mlip_oracle import MLIPOracle
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.slabs import prepare_slab
from alloop.oracles.types import OraclePair, OracleResult, failed_result


@pytest.fixture()
def al_h_pair() -> OraclePair:
    """H on a 1x1 Al(111) slab of two layers: 3 atoms, affordable for a real GPAW run."""
    slab = prepare_slab(fcc111("Al", size=(1, 1, 2), vacuum=4.0, a=4.05), n_fixed_layers=1)
    return OraclePair("Al:*H", "Al", "*H", slab, adsorbate_from_database("*H"))


def test_label_without_start_oracle_is_a_config_failure(al_h_pair: OraclePair) -> None:
    res = DFTOracle(DFTOracleSettings()).label(al_h_pair)
    assert res.status == "failed" and res.fidelity == "dft_single_point"
    assert res.error is not None and res.error.startswith(
        "config_error: DFTOracle.label needs start_oracle"
    )
    assert res.provenance["dft_settings"]["code"] == "gpaw"


def test_escalating_a_failed_start_is_a_failure(al_h_pair: OraclePair) -> None:
    start = failed_result(al_h_pair.key, "mlip", "time_limit", "too slow")
    res = DFTOracle(DFTOracleSettings(mode="relax")).escalate(al_h_pair, start)
    assert res.status == "failed" and res.fidelity == "dft_relax"
    assert "start result has status 'failed'" in (res.error or "")


def test_start_that_is_not_ok_is_passed_on(al_h_pair: OraclePair) -> None:
    # EMT has no parameters for Ru, so the start oracle fails; the DFT oracle says why
    ru = prepare_slab(fcc111("Al", size=(1, 1, 2), vacuum=4.0, a=4.05), n_fixed_layers=1)
    ru.symbols[:] = "Ru"
    pair = OraclePair("Ru:*H", "Ru", "*H", ru, al_h_pair.adsorbate)
    oracle = DFTOracle(DFTOracleSettings(), MLIPOracle(MLIPOracleSettings(calculator="emt")))
    res = oracle.label(pair)
    assert res.provenance["failure_kind"] == "no_valid_placement"
    assert res.provenance["start"]["status"] == "failed"
    assert "No EMT-potential for Ru" in (res.provenance["start"]["error"] or "")


def _check_dft_label(res: OracleResult, fidelity: str) -> None:
    assert res.status == "ok", res.error
    assert res.fidelity == fidelity
    prov = res.provenance
    assert prov["calculator"] == "gpaw-pbe" and prov["dft_settings"]["cutoff_ev"] == 250
    assert prov["calculator_identity"]["kpts"] == [4, 4, 1]
    assert prov["start"]["calculator"] == "emt" and prov["start"]["status"] == "ok"
    ref = prov["reference_energies_ev"]
    e_total = prov["placements"][0]["e_total_ev"]
    assert e_total - ref["slab"] - ref["adsorbate"] == pytest.approx(res.gmae_ev)
    # mu_H = E(H2)/2 from GPAW; a PBE H2 total energy in GPAW's reference is about -6.5 eV
    assert -7.5 < prov["reference"]["molecule_energies_ev"]["H2"] < -5.5
    # H on 1 ML Al(111) is weakly bound or unbound against 1/2 H2: a sane DFT range
    assert -1.5 < (res.gmae_ev or 0.0) < 2.0


@pytest.mark.slow
@pytest.mark.dft
def test_gpaw_escalation_end_to_end(al_h_pair: OraclePair, tmp_path: object) -> None:
    start = MLIPOracle(
        MLIPOracleSettings(
            calculator="emt", max_placements=3, patience=2, reference_scheme="atomic"
        )
    )
    base = {
        "cutoff_ev": 250.0,
        "kpts": (4, 4, 1),
        "gas_box_ang": 6.0,
        "reference_scheme": "atomic",
        "cache_dir": str(tmp_path),
    }
    single = DFTOracle(DFTOracleSettings(mode="single_point", **base), start)  # type: ignore[arg-type]
    res = single.label(al_h_pair)
    _check_dft_label(res, "dft_single_point")
    assert res.provenance["placements"][0]["n_steps"] == 0
    relaxed = DFTOracle(DFTOracleSettings(mode="relax", max_steps=30, **base), start)  # type: ignore[arg-type]
    res2 = relaxed.label(al_h_pair)
    _check_dft_label(res2, "dft_relax")
    assert res2.gmae_ev <= res.gmae_ev + 1e-6  # relaxing cannot raise the energy
    # the DFT-relaxed slab was cached by content hash in cache_dir and reused by the second oracle
    assert res.provenance["slab_cache_hit"] is False and res2.provenance["slab_cache_hit"] is True
    assert res2.provenance["reference_energies_ev"] == res.provenance["reference_energies_ev"]


def test_dft_threads_hold_for_the_escalation_only(
    al_h_pair: OraclePair, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """GPAW's OpenMP threads: ``OMP_NUM_THREADS = omp_threads`` while the escalation computes,
    the process's own value after it. The calculator is EMT here (no GPAW in the fast suite):
    what is checked is the scope, with every calculation the escalation makes."""
    seen: list[str | None] = []

    class Recording(EMT):  # type: ignore[misc]
        def calculate(self, *args: object, **kwargs: object) -> None:
            seen.append(os.environ.get("OMP_NUM_THREADS"))
            super().calculate(*args, **kwargs)

    monkeypatch.setattr(dft_module, "build_dft_calculator", lambda *args: Recording())
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    start = MLIPOracle(
        MLIPOracleSettings(
            calculator="emt", max_placements=1, patience=1, reference_scheme="atomic"
        )
    )
    settings = DFTOracleSettings(
        reference_scheme="atomic", gas_box_ang=6.0, cache_dir=str(tmp_path), omp_threads=2
    )
    res = DFTOracle(settings, start).label(al_h_pair)
    assert res.status == "ok", res.error
    assert seen and set(seen) == {"2"}  # slab, reference molecule and adsorbate alike
    assert os.environ["OMP_NUM_THREADS"] == "7"
