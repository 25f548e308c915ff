from __future__ import annotations

import math

import pytest
from ase import Atoms
from ase.build import molecule

from alloop.oracles.errors import OracleError
from alloop.oracles.types import (
    AdsorbateSpec,
    Oracle,
    OraclePair,
    OracleResult,
    failed_result,
)


def _slab() -> Atoms:
    return Atoms("Cu2", positions=[[0, 0, 0], [1.8, 0, 0]], cell=[3.6, 3.6, 10], pbc=True)


def test_records_are_frozen_and_copy_atoms() -> None:
    co = molecule("CO")
    spec = AdsorbateSpec("CO", "[C-]#[O+]", co, (0,))
    co.positions[0, 0] += 5.0
    assert spec.atoms is not None
    assert spec.atoms.positions[0, 0] != pytest.approx(co.positions[0, 0])
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]
    slab = _slab()
    pair = OraclePair("k", "Cu", "CO", slab, spec, site_scores=(0.1, 0.9))
    slab.positions[:] = 0.0
    assert pair.slab.positions[1, 0] == pytest.approx(1.8)
    assert pair.site_scores == (0.1, 0.9)


def test_adsorbate_spec_validation() -> None:
    with pytest.raises(OracleError, match="needs smiles or atoms"):
        AdsorbateSpec("x", None, None, ())
    with pytest.raises(OracleError, match=r"binding_atoms \[5\] out of range 0..1"):
        AdsorbateSpec("CO", None, molecule("CO"), (5,))
    with pytest.raises(OracleError, match="non-empty"):
        AdsorbateSpec("", "O", None, ())


def test_pair_site_scores_length_checked() -> None:
    spec = AdsorbateSpec("O", "[O]", None, ())
    with pytest.raises(OracleError, match="site_scores has 3 entries but the slab has 2 atoms"):
        OraclePair("k", "Cu", "O", _slab(), spec, site_scores=(1.0, 2.0, 3.0))
    with pytest.raises(OracleError, match="NaN"):
        OraclePair("k", "Cu", "O", _slab(), spec, site_scores=(1.0, math.nan))


def test_result_validation() -> None:
    ok = OracleResult("k", -1.25, "ok", "mlip", {"calculator": "emt"})
    assert ok.gmae_ev == -1.25 and ok.error is None
    with pytest.raises(OracleError, match="status 'done' is not one of"):
        OracleResult("k", -1.0, "done", "mlip", {})  # type: ignore[arg-type]
    with pytest.raises(OracleError, match="fidelity 'dft' is not one of"):
        OracleResult("k", -1.0, "ok", "dft", {})  # type: ignore[arg-type]
    with pytest.raises(OracleError, match="needs a finite gmae_ev"):
        OracleResult("k", math.nan, "ok", "mlip", {})
    with pytest.raises(OracleError, match="must have gmae_ev=None"):
        OracleResult("k", -1.0, "anomalous", "mlip", {})
    with pytest.raises(OracleError, match=r"needs provenance\['error'\]"):
        OracleResult("k", None, "failed", "mlip", {})
    with pytest.raises(OracleError, match="not JSON-serialisable"):
        OracleResult("k", -1.0, "ok", "mlip", {"bad": object()})


def test_failed_result_records_kind_and_message() -> None:
    res = failed_result("k", "mlip", "time_limit", "pair exceeded 3 s", wall_s=3.1)
    assert res.status == "failed" and res.gmae_ev is None
    assert res.error == "time_limit: pair exceeded 3 s"
    assert res.provenance["failure_kind"] == "time_limit"
    assert res.provenance["wall_s"] == 3.1


def test_oracle_protocol_is_structural() -> None:
    class Constant:
        def label(self, pair: OraclePair) -> OracleResult:
            return OracleResult(pair.key, 0.0, "ok", "replay", {})

    assert isinstance(Constant(), Oracle)
    assert not isinstance(object(), Oracle)
