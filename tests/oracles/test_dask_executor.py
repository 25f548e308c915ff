"""A real 2-worker Dask LocalCluster on localhost labelling real EMT pairs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from ase.build import fcc111

from alloop.oracles.adsorbates import adsorbate_from_database
from alloop.oracles.dask_executor import (
    LOCAL_CLUSTER_CONFIG,
    DaskExecutor,
    jobqueue_cluster,
    jobqueue_keys,
)
from alloop.oracles.errors import OracleConfigError
from alloop.oracles.executors import InProcessExecutor
from alloop.oracles.mlip_oracle import MLIPOracle
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.slabs import prepare_slab
from alloop.oracles.types import OraclePair
from tests.oracles.helpers import CrashingOracle, SleepingOracle


@pytest.fixture(scope="module")
def executor() -> Iterator[DaskExecutor]:
    with DaskExecutor(workers=2, job_timeout_s=8) as ex:
        yield ex


@pytest.fixture(scope="module")
def pairs() -> list[OraclePair]:
    slab = prepare_slab(fcc111("Cu", size=(2, 2, 3), vacuum=6.0), n_fixed_layers=1)
    return [
        OraclePair(f"Cu:{n}", "Cu", n, slab, adsorbate_from_database(n))
        for n in ("*O", "*OH", "*H", "*N")
    ]


@pytest.fixture(scope="module")
def oracle() -> MLIPOracle:
    return MLIPOracle(MLIPOracleSettings(calculator="emt", max_placements=3, patience=2))


def test_cluster_has_two_local_workers(executor: DaskExecutor) -> None:
    info = executor.client.scheduler_info()
    assert len(info["workers"]) == 2
    assert all(addr.startswith("tcp://127.0.0.1:") for addr in info["workers"])


def _worker_config() -> dict[str, object]:
    import dask

    return {key: dask.config.get(key) for key in LOCAL_CLUSTER_CONFIG}


def test_workers_run_with_the_executors_cluster_config(executor: DaskExecutor) -> None:
    # Dask's profiler takes the GIL from a label every 10 ms, and the other periodic work takes
    # the cores from labels (benchmarks/loop/dask_label_profile.py, docs/benchmarks.md): the
    # workers our LocalCluster starts must run with its config, not Dask's defaults
    configs = executor.client.run(_worker_config)
    assert len(configs) == 2
    for config in configs.values():
        assert config == LOCAL_CLUSTER_CONFIG
        assert config["distributed.worker.profile.enabled"] is False


def test_dask_matches_in_process(
    executor: DaskExecutor, oracle: MLIPOracle, pairs: list[OraclePair]
) -> None:
    expected = InProcessExecutor().map(oracle, pairs)
    results = executor.map(oracle, pairs)
    assert [r.pair_key for r in results] == [p.key for p in pairs]
    for a, b in zip(expected, results, strict=True):
        assert b.status == a.status == "ok"
        assert b.gmae_ev == pytest.approx(a.gmae_ev, abs=1e-8)
        assert b.best_structure is not None


def test_dask_worker_death_is_a_failed_result(
    executor: DaskExecutor, oracle: MLIPOracle, pairs: list[OraclePair]
) -> None:
    results = executor.map(CrashingOracle(oracle, crash_key="Cu:*H"), pairs)
    by_key = {r.pair_key: r for r in results}
    assert by_key["Cu:*H"].provenance["failure_kind"] == "worker_died"
    assert sum(r.status == "ok" for r in results) == 3
    # the nanny restarted the worker: the cluster is whole again for the next batch
    deadline = time.monotonic() + 60
    while len(executor.client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(executor.client.scheduler_info()["workers"]) == 2


def test_dask_job_over_time_limit_does_not_hang(
    executor: DaskExecutor, oracle: MLIPOracle, pairs: list[OraclePair]
) -> None:
    start = time.monotonic()
    results = executor.map(SleepingOracle(oracle, hang_key="Cu:*OH"), pairs)
    assert time.monotonic() - start < 90
    by_key = {r.pair_key: r for r in results}
    assert by_key["Cu:*OH"].provenance["failure_kind"] == "time_limit"
    assert sum(r.status == "ok" for r in results) == 3


def test_dask_streams_results_and_keeps_its_oracle(
    executor: DaskExecutor, oracle: MLIPOracle, pairs: list[OraclePair]
) -> None:
    started: list[int] = []
    got = dict(executor.stream(oracle, pairs, on_start=started.append))
    assert sorted(got) == sorted(started) == list(range(len(pairs)))
    assert all(r.status == "ok" for r in got.values())
    scattered = executor._scattered
    executor.map(oracle, pairs[:1])  # the same oracle object is not sent again
    assert executor._scattered is scattered


def test_jobqueue_cluster_refuses_unknown_kinds_and_keys() -> None:
    with pytest.raises(OracleConfigError, match="kind 'lsf' is not one of slurm, pbs"):
        jobqueue_cluster("lsf", 0, {})
    with pytest.raises(OracleConfigError, match=r"unknown slurm cluster key\(s\) \['queu'\]"):
        jobqueue_cluster("slurm", 0, {"queu": "x"})
    assert {"queue", "account", "walltime", "cores", "job_script_prologue"} <= jobqueue_keys(
        "slurm"
    )
    assert "resource_spec" in jobqueue_keys("pbs") and "resource_spec" not in jobqueue_keys("slurm")
