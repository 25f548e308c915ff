"""In-process and local process-pool executors on real EMT labels."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ase import Atoms

from alloop.oracles.adsorbates import adsorbate_from_database
from alloop.oracles.errors import OracleConfigError
from alloop.oracles.executors import InProcessExecutor, LocalProcessExecutor
from alloop.oracles.mlip_oracle import MLIPOracle
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.types import OraclePair
from tests.oracles.helpers import CrashingOracle, GatedOracle, SleepingOracle

NAMES = ("*O", "*OH", "*H")


@pytest.fixture()
def pairs(cu_slab: Atoms) -> list[OraclePair]:
    return [OraclePair(f"Cu:{n}", "Cu", n, cu_slab, adsorbate_from_database(n)) for n in NAMES]


@pytest.fixture()
def oracle() -> MLIPOracle:
    return MLIPOracle(MLIPOracleSettings(calculator="emt", max_placements=3, patience=2))


def test_process_pool_matches_in_process(oracle: MLIPOracle, pairs: list[OraclePair]) -> None:
    local = InProcessExecutor().map(oracle, pairs)
    pooled = LocalProcessExecutor(workers=2, job_timeout_s=120).map(oracle, pairs)
    assert [r.pair_key for r in pooled] == [p.key for p in pairs]
    for a, b in zip(local, pooled, strict=True):
        assert a.status == b.status == "ok"
        assert b.gmae_ev == pytest.approx(a.gmae_ev, abs=1e-8)


def test_dead_worker_is_a_failed_result(oracle: MLIPOracle, pairs: list[OraclePair]) -> None:
    crashing = CrashingOracle(oracle, crash_key="Cu:*OH")
    results = LocalProcessExecutor(workers=2, job_timeout_s=120).map(crashing, pairs)
    by_key = {r.pair_key: r for r in results}
    assert by_key["Cu:*OH"].status == "failed"
    assert by_key["Cu:*OH"].error is not None and by_key["Cu:*OH"].error.startswith("worker_died")
    assert "exit code 13" in by_key["Cu:*OH"].error
    # the pool replaced the worker and finished the other pairs
    assert by_key["Cu:*O"].status == by_key["Cu:*H"].status == "ok"


def test_job_over_time_limit_is_stopped(pairs: list[OraclePair]) -> None:
    # the cheapest search: the other pairs finish well inside the limit even on busy cores
    quick = MLIPOracle(MLIPOracleSettings(calculator="emt", max_placements=1, patience=1))
    hanging = SleepingOracle(quick, hang_key="Cu:*O")
    start = time.monotonic()
    started: list[int] = []
    with LocalProcessExecutor(workers=2, job_timeout_s=6) as pool:
        streamed = list(pool.stream(hanging, pairs, on_start=started.append))
    assert time.monotonic() - start < 60  # not the 600 s the job would hang
    assert sorted(i for i, _ in streamed) == sorted(started) == [0, 1, 2]
    by_key = {r.pair_key: r for _, r in streamed}
    assert by_key["Cu:*O"].provenance["failure_kind"] == "time_limit"
    assert "job_timeout_s=6" in (by_key["Cu:*O"].error or "")
    assert by_key["Cu:*OH"].status == by_key["Cu:*H"].status == "ok"


@pytest.mark.parametrize("kind", ["inprocess", "process"])
def test_a_pass_names_its_finished_pairs_and_the_next_starts(
    pairs: list[OraclePair], kind: str
) -> None:
    quick = MLIPOracle(MLIPOracleSettings(calculator="emt", max_placements=1, patience=1))
    steps: list[tuple[list[int], list[int]]] = []
    executor = InProcessExecutor() if kind == "inprocess" else LocalProcessExecutor(workers=2)
    try:
        for step in executor.passes(quick, pairs):
            assert step.starting or step.finished  # an empty pass is not yielded
            steps.append((step.starting, [i for i, _ in step.finished]))
    finally:
        executor.close()
    started = [i for s, _ in steps for i in s]
    done = [i for _, d in steps for i in d]
    assert sorted(started) == sorted(done) == [0, 1, 2]  # each once
    for i in done:  # a pair is named starting in an earlier pass than the one it finishes in
        assert next(n for n, (s, _) in enumerate(steps) if i in s) < next(
            n for n, (_, d) in enumerate(steps) if i in d
        )
    if kind == "inprocess":  # one pair a pass, started before it runs in this process
        assert steps == [([0], []), ([1], [0]), ([2], [1]), ([], [2])]
    else:  # both workers handed a pair in the first pass
        assert steps[0] == ([0, 1], [])


def test_results_stream_back_as_each_pair_finishes(
    oracle: MLIPOracle, pairs: list[OraclePair], tmp_path: Path
) -> None:
    gate = tmp_path / "open"
    gated = GatedOracle(oracle, gated_key=pairs[0].key, gate=str(gate))
    with LocalProcessExecutor(workers=2) as pool:
        stream = pool.stream(gated, pairs)
        first, _ = next(stream)  # pair 0 cannot finish before the gate opens
        gate.touch()
        rest = [i for i, _ in stream]
    assert first != 0 and sorted([first, *rest]) == [0, 1, 2]


def test_workers_live_as_long_as_the_executor(
    oracle: MLIPOracle, pairs: list[OraclePair], tmp_path: Path
) -> None:
    with LocalProcessExecutor(workers=2) as pool:
        first = pool.map(oracle, pairs)
        pids = sorted(s.process.pid for s in pool._slots)
        again = pool.map(oracle, pairs[:2])  # same oracle: same workers, not sent again
        assert sorted(s.process.pid for s in pool._slots) == pids
        assert {s.oracle_token for s in pool._slots} == {1}
        other = MLIPOracle(MLIPOracleSettings(calculator="emt", max_placements=1, patience=1))
        cheaper = pool.map(other, pairs[:1])  # another oracle reaches the same workers
        assert pool.started_workers == 2
        slots = list(pool._slots)
    assert not any(s.process.is_alive() for s in slots)
    assert [r.gmae_ev for r in again] == [r.gmae_ev for r in first[:2]]
    assert cheaper[0].provenance["placements_tried"] == 1


def test_shared_cache_relaxes_a_slab_once_across_workers(cu_slab: Atoms, tmp_path: Path) -> None:
    settings = MLIPOracleSettings(
        calculator="emt", max_placements=1, patience=1, slab_cache_dir=str(tmp_path / "cache")
    )
    pairs = [OraclePair(f"Cu:{n}", "Cu", n, cu_slab, adsorbate_from_database(n)) for n in NAMES]
    with LocalProcessExecutor(workers=2) as pool:  # both workers start on the same slab
        results = pool.map(MLIPOracle(settings), pairs)
    assert [r.status for r in results] == ["ok"] * 3
    assert sum(not r.provenance["slab_cache_hit"] for r in results) == 1
    assert len(list((tmp_path / "cache").glob("slab-*.json"))) == 1


def test_executor_settings_validated() -> None:
    with pytest.raises(OracleConfigError, match="workers must be >= 1, got 0"):
        LocalProcessExecutor(workers=0)
    with pytest.raises(OracleConfigError, match="job_timeout_s must be > 0"):
        LocalProcessExecutor(job_timeout_s=-1)
