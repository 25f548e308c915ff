"""One quick real MLIP label: SevenNet-MF-0 (weights in the sevenn wheel) with an EMT committee."""

from __future__ import annotations

import pytest
from ase import Atoms

from alloop.oracles.adsorbates import adsorbate_from_database
from alloop.oracles.calculators import CalculatorSpec, calculator_identity
from alloop.oracles.mlip_oracle import MLIPOracle
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.types import OraclePair


@pytest.mark.mlip
def test_sevennet_label_with_committee(cu_slab: Atoms) -> None:
    settings = MLIPOracleSettings(
        calculator="sevennet-mf-0",
        committee_calculator="emt",
        max_placements=2,
        patience=2,
        fmax_ev_per_ang=0.1,
    )
    pair = OraclePair("Cu:*O", "Cu", "*O", cu_slab, adsorbate_from_database("*O"))
    res = MLIPOracle(settings).label(pair)
    assert res.status == "ok", res.error
    prov = res.provenance
    assert prov["calculator"] == "sevennet-mf-0"
    assert (
        prov["weights_hash"] == calculator_identity(CalculatorSpec("sevennet-mf-0"))["weights_hash"]
    )
    assert prov["calculator_identity"]["modal"] == "PBE"
    # O on Cu(111) against an isolated O atom binds strongly under any sane potential
    assert -7.0 < res.gmae_ev < -2.0
    committee = prov["committee"]
    assert committee["calculator"] == "emt"
    assert prov["uncertainty_ev"] == pytest.approx(abs(committee["e_ads_ev"] - res.gmae_ev))
    assert prov["force_calls"] > committee["force_calls"] > 0
