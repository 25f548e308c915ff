"""Every failure kind is a recorded result naming its reason, never an exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from ase import Atoms

from alloop.oracles.adsorbates import adsorbate_from_database
from alloop.oracles.cache import RelaxationCache
from alloop.oracles.errors import FAILURE_KINDS
from alloop.oracles.guard import guarded_label
from alloop.oracles.mlip_oracle import MLIPOracle
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.types import AdsorbateSpec, OraclePair, OracleResult


def _oracle(**kw: object) -> MLIPOracle:
    base = {"calculator": "emt", "max_placements": 6, "patience": 2}
    base.update(kw)
    return MLIPOracle(MLIPOracleSettings(**base))  # type: ignore[arg-type]


def _pair(slab: Atoms, spec: AdsorbateSpec) -> OraclePair:
    return OraclePair(f"Cu:{spec.name}", "Cu", spec.name, slab, spec)


def _check_failed(res: OracleResult, kind: str, text: str) -> None:
    assert res.status == "failed" and res.gmae_ev is None
    assert res.provenance["failure_kind"] == kind and kind in FAILURE_KINDS
    assert res.error is not None and res.error.startswith(f"{kind}: ") and text in res.error


def test_calculator_error_in_reference(cu_slab: Atoms) -> None:
    res = _oracle().label(_pair(cu_slab, AdsorbateSpec("S", None, Atoms("S"), ())))
    _check_failed(res, "calculator_error", "No EMT-potential for S")


def test_calculator_error_in_every_placement(cu_slab: Atoms) -> None:
    # explicit atomic references skip the gas relaxation, so each placement hits the error
    oracle = _oracle(reference_scheme="atomic", atomic_mu_ev={"S": -1.0})
    res = oracle.label(_pair(cu_slab, AdsorbateSpec("S", None, Atoms("S"), ())))
    _check_failed(res, "calculator_error", "no usable placement")
    assert res.provenance["placements_tried"] == 4
    assert all(
        p["anomaly_flags"] == ["error:calculator_error"] for p in res.provenance["placements"]
    )


def test_non_finite_energy(cu_slab: Atoms) -> None:
    broken = Atoms("O2", positions=[[0, 0, 0], [0, 0, 0]])  # coincident atoms: EMT gives NaN
    res = _oracle().label(_pair(cu_slab, AdsorbateSpec("O2-broken", None, broken, (0,))))
    _check_failed(res, "non_finite", "non-finite")


def test_not_converged(cu_slab: Atoms) -> None:
    res = _oracle(max_steps=1, fmax_ev_per_ang=1e-4).label(
        _pair(cu_slab, adsorbate_from_database("*O"))
    )
    _check_failed(res, "not_converged", "not converged after 1 steps")


def test_time_limit_keeps_finished_placements(cu_slab: Atoms) -> None:
    cache = RelaxationCache()
    warm = MLIPOracle(MLIPOracleSettings(calculator="emt", max_placements=1), cache)
    pair = _pair(cu_slab, adsorbate_from_database("*CO"))
    assert warm.label(pair).status == "ok"  # slab and gas now cached
    slow = MLIPOracle(
        MLIPOracleSettings(calculator="emt", max_placements=200, patience=200, time_limit_s=0.5),
        cache,
    )
    res = slow.label(pair)
    _check_failed(res, "time_limit", "time_limit_s=0.5")
    assert res.provenance["stop_reason"] == "time_limit"
    assert res.provenance["placements_tried"] >= 1
    assert res.provenance["wall_s"] < 5.0


def test_time_limit_before_search(cu_slab: Atoms) -> None:
    res = _oracle(time_limit_s=1e-6).label(_pair(cu_slab, adsorbate_from_database("*O")))
    _check_failed(res, "time_limit", "time limit reached")


def test_structure_error(cu_slab: Atoms) -> None:
    res = _oracle().label(_pair(cu_slab, AdsorbateSpec("bad", "C1CC", None, ())))
    _check_failed(res, "structure_error", "cannot parse SMILES 'C1CC'")


def test_missing_fairchem_checkpoint_is_clear(cu_slab: Atoms, tmp_path: Path) -> None:
    missing = tmp_path / "uma-s-1p1.pt"
    oracle = MLIPOracle(MLIPOracleSettings(calculator="fairchem", checkpoint_path=str(missing)))
    res = oracle.label(_pair(cu_slab, adsorbate_from_database("*O")))
    _check_failed(res, "calculator_setup", "fairchem checkpoint not found")
    assert str(missing) in (res.error or "") and "HF_HUB_OFFLINE=1" in (res.error or "")


def test_unexpected_error_is_recorded_with_traceback(cu_slab: Atoms) -> None:
    def buggy(pair: OraclePair) -> OracleResult:
        return {}[pair.key]  # a bug (KeyError), not an OracleError

    res = guarded_label(buggy, _pair(cu_slab, adsorbate_from_database("*O")), "mlip", {})
    _check_failed(res, "unexpected_error", "KeyError")
    assert "Traceback" in res.provenance["traceback"]


@pytest.mark.parametrize(
    "kind",
    [
        "calculator_error",
        "non_finite",
        "not_converged",
        "time_limit",
        "worker_died",
        "unknown_pair",
        "calculator_setup",
    ],
)
def test_failure_kinds_are_declared(kind: str) -> None:
    assert kind in FAILURE_KINDS
