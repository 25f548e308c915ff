"""Oracle thread limits hold for one pair only: a surrogate trained later in the same process
keeps its own thread count (`build_calculator` used to set it to 1 for the whole process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from ase import Atoms
from threadpoolctl import threadpool_info

from alloop.oracles.adsorbates import adsorbate_from_database
from alloop.oracles.calculators import CalculatorSpec, build_calculator, thread_limit
from alloop.oracles.mlip_oracle import MLIPOracle
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.types import OraclePair


@pytest.fixture()
def two_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_thread_limit_is_scoped(two_threads: None) -> None:
    with thread_limit(1):
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), thread_limit(1):  # restored on the way out of an error
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


def test_building_a_torch_model_leaves_the_thread_count_alone(two_threads: None) -> None:
    build_calculator(CalculatorSpec("sevennet-mf-0"))
    assert torch.get_num_threads() == 2


@pytest.mark.slow
def test_a_torch_label_leaves_the_thread_count_alone(two_threads: None, cu_slab: Atoms) -> None:
    settings = MLIPOracleSettings(
        calculator="sevennet-mf-0", max_placements=1, patience=1, fmax_ev_per_ang=0.2,
        max_steps=5,
    )  # fmt: skip
    pair = OraclePair("Cu:*H", "Cu", "*H", cu_slab, adsorbate_from_database("*H"))
    result = MLIPOracle(settings).label(pair)
    assert result.provenance["calculator"] == "sevennet-mf-0"
    assert torch.get_num_threads() == 2
