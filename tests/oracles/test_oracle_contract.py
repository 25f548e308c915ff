"""The contract every oracle in `alloop.oracles` keeps (see `alloop.oracles.types`).

* it declares a ``fidelity`` and every result it returns carries that fidelity;
* ``label(pair)`` returns an :class:`OracleResult` for the pair's key;
* a failure of one pair is a ``failed`` result whose ``provenance["error"]`` reads
  ``"<kind>: <message>"`` with a known kind, never an exception;
* the provenance of every result, ok or failed, holds the documented keys and is JSON.

Oracle classes are found by importing every module of the package, so a new oracle without a
case below fails :func:`test_every_oracle_has_a_contract_case`. Real oracles only: replay on
the FG data of this run, the MLIP oracle with EMT on a 12-atom Cu(111) slab. DFTOracle's ok
path needs a DFT code; its contract on an ok label is the slow GPAW test in ``test_dft.py``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import pkgutil
from collections.abc import Callable
from pathlib import Path

import pytest
from ase import Atoms
from ase.build import fcc111

import alloop.oracles
from alloop.oracles.adsorbates import adsorbate_from_database
from alloop.oracles.errors import FAILURE_KINDS
from alloop.oracles.slabs import prepare_slab
from alloop.oracles.types import FIDELITIES, PROVENANCE_KEYS, Oracle, OraclePair, OracleResult
from tests.conftest import FG_ROOT

REQUIRED_KEYS = PROVENANCE_KEYS


def oracle_classes() -> list[str]:
    """``module.Class`` of every class in the package with a ``label`` method (protocols aside)."""
    names = []
    for info in pkgutil.iter_modules(alloop.oracles.__path__):
        module = importlib.import_module(f"alloop.oracles.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or getattr(cls, "_is_protocol", False):
                continue
            if callable(getattr(cls, "label", None)):
                names.append(f"{cls.__module__}.{cls.__qualname__}")
    return sorted(names)


# ----------------------------------------------------------------------------- the cases
def _fg_pair(metal: str = "Pt", key: str = "group2/3611") -> OraclePair:
    from alloop.oracles.replay import ReplayOracle

    return ReplayOracle(FG_ROOT, load_structures=False).make_pair(metal, key)


def _unknown_fg_pair() -> OraclePair:
    from dataclasses import replace

    return replace(_fg_pair(), key="Xx:group2/3611", surface_key="Xx")


def _cu_pair(symbol: str = "Cu") -> OraclePair:
    slab = prepare_slab(fcc111("Cu", size=(2, 2, 3), vacuum=6.0), n_fixed_layers=1)
    slab.symbols[:] = symbol  # EMT has no Ru parameters: a calculator failure for that pair
    return OraclePair(f"{symbol}:*O", symbol, "*O", slab, adsorbate_from_database("*O"))


def _emt_oracle() -> Oracle:
    from alloop.oracles.mlip_oracle import MLIPOracle
    from alloop.oracles.settings import MLIPOracleSettings

    return MLIPOracle(MLIPOracleSettings(calculator="emt", max_placements=2, patience=1))


def _replay() -> Oracle:
    from alloop.oracles.replay import ReplayOracle

    return ReplayOracle(FG_ROOT)


def _dft(start: bool) -> Callable[[], Oracle]:
    def build() -> Oracle:
        from alloop.oracles.dft import DFTOracle
        from alloop.oracles.dft_settings import DFTOracleSettings

        return DFTOracle(DFTOracleSettings(), _emt_oracle() if start else None)

    return build


def _lowfi() -> Oracle:
    from alloop.oracles.lowfi_replay import LowFidelityReplayOracle

    return LowFidelityReplayOracle()


def _lowfi_pair() -> OraclePair:
    """The first FG pair the shipped low-fidelity table has a value for."""
    from alloop.oracles.lowfi_replay import LowFidelityReplayOracle
    from alloop.oracles.replay import ReplayOracle

    table = LowFidelityReplayOracle()
    for metal, key in ReplayOracle(FG_ROOT, load_structures=False).known_pairs():
        if table.value_of(metal, key) is not None:
            return _fg_pair(metal, key)
    pytest.fail(f"the low-fidelity table {table.table} holds no value to label a pair with")


def _dft_replay() -> Oracle:
    from alloop.oracles.lowfi_replay import DFTReplayOracle
    from alloop.oracles.replay import ReplayOracle

    return DFTReplayOracle(ReplayOracle(FG_ROOT))


Case = tuple[Callable[[], Oracle], Callable[[], OraclePair], str]  # oracle, pair, status

#: per oracle class: (build the oracle, build a pair, the status it must give)
CASES: dict[str, list[Case]] = {
    "alloop.oracles.replay.ReplayOracle": [
        (_replay, _fg_pair, "ok"),
        (_replay, _unknown_fg_pair, "failed"),
    ],
    "alloop.oracles.mlip_oracle.MLIPOracle": [
        (_emt_oracle, _cu_pair, "ok"),
        (_emt_oracle, lambda: _cu_pair("Ru"), "failed"),
    ],
    "alloop.oracles.dft.DFTOracle": [
        (_dft(start=False), _cu_pair, "failed"),  # label() without a start oracle
        (_dft(start=True), lambda: _cu_pair("Ru"), "failed"),  # the start oracle fails
    ],
    "alloop.oracles.lowfi_replay.LowFidelityReplayOracle": [
        (_lowfi, _lowfi_pair, "ok"),
        (_lowfi, _unknown_fg_pair, "failed"),
    ],
    "alloop.oracles.lowfi_replay.DFTReplayOracle": [
        (_dft_replay, _fg_pair, "ok"),
        (_dft_replay, _unknown_fg_pair, "failed"),
    ],
}

FOUND = oracle_classes()


def test_every_oracle_has_a_contract_case() -> None:
    missing = [name for name in FOUND if name not in CASES]
    assert not missing, f"add contract cases for {missing} to {Path(__file__).name}"
    assert "alloop.oracles.replay.ReplayOracle" in FOUND  # discovery itself works


def _check_provenance(result: OracleResult) -> None:
    prov = result.provenance
    missing = [key for key in REQUIRED_KEYS if key not in prov]
    assert not missing, f"provenance lacks {missing}"
    assert json.loads(json.dumps(prov)) == prov  # JSON, and nothing lost on the way
    assert isinstance(prov["placements"], list) and isinstance(prov["anomaly_flags"], list)
    assert isinstance(prov["placements_tried"], int) and prov["placements_tried"] >= 0
    assert isinstance(prov["wall_s"], float) and prov["wall_s"] >= 0


@pytest.mark.parametrize(
    ("cls_name", "index"),
    [(name, i) for name in FOUND for i in range(len(CASES.get(name, [])))],
    ids=lambda v: v.rsplit(".", 1)[-1] if isinstance(v, str) else str(v),
)
def test_oracle_keeps_the_contract(cls_name: str, index: int) -> None:
    build_oracle, build_pair, status = CASES[cls_name][index]
    oracle, pair = build_oracle(), build_pair()
    assert f"{type(oracle).__module__}.{type(oracle).__qualname__}" == cls_name
    assert isinstance(oracle, Oracle)
    fidelity = oracle.fidelity  # type: ignore[attr-defined]
    assert fidelity in FIDELITIES

    result = oracle.label(pair)  # a failure must come back as a result: no pytest.raises here

    assert isinstance(result, OracleResult)
    assert (result.pair_key, result.fidelity, result.status) == (pair.key, fidelity, status)
    _check_provenance(result)
    if status == "ok":
        assert result.gmae_ev is not None and math.isfinite(result.gmae_ev)
        assert result.error is None
        best = result.best_structure
        assert best is None or (isinstance(best, Atoms) and set(best.get_tags()) <= {0, 1, 2})
    else:
        assert result.gmae_ev is None and result.best_structure is None
        kind, _, message = (result.error or "").partition(": ")
        assert kind in FAILURE_KINDS and message, result.error
        assert result.provenance.get("failure_kind") == kind
