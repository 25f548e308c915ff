"""Exactly-once ingest under a worker kill, on a real Dask LocalCluster and a real SQLite
campaign: 50 FG pairs labelled by the real replay oracle through the executor that
`executor: {kind: dask, workers: 2}` builds; one worker process is killed with SIGKILL while it
holds a job. That job comes back as a `worker_died` failure (no label), the other jobs finish,
and the resume runs it again: in the end one DONE job and one label per acquired pair, none
lost, none twice. No timings are asserted."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from alloop.loop.agent.engine import CampaignEngine
from alloop.loop.bridges.oracle import build_executor, build_oracle
from alloop.loop.config import parse_config
from alloop.loop.face.commands import create_campaign
from alloop.oracles.types import OraclePair, OracleResult
from alloop.store import CampaignStore, JobState
from tests.conftest import FG_ROOT

N_JOBS = 50


class HangOnceOracle:
    """Wraps a real oracle; the first time any worker takes ``victim`` it writes its process id
    into ``marker`` (created atomically) and blocks, so that the test kills that process while
    it holds the job; every other label, the victim's re-run included, is the inner oracle's."""

    def __init__(self, inner: object, victim: str, marker: str) -> None:
        self.inner = inner
        self.victim = victim
        self.marker = marker
        self.fidelity = getattr(inner, "fidelity", "mlip")

    def label(self, pair: OraclePair) -> OracleResult:
        if pair.key == self.victim:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                time.sleep(600)  # killed long before
        return self.inner.label(pair)  # type: ignore[attr-defined]


def kill_when_marked(marker: Path, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the process whose id appears in ``marker``, once (until ``stop`` is set)."""
    while not stop.is_set():
        text = marker.read_text() if marker.exists() else ""
        if text:
            os.kill(int(text), signal.SIGKILL)
            killed.append(int(text))
            return
        time.sleep(0.05)


def test_worker_killed_mid_run_loses_and_repeats_no_label(tmp_path: Path) -> None:
    cfg = parse_config({
        "campaign": {"name": "kill", "seed": 1},
        "pool": {"fg": {"root": str(FG_ROOT), "metals": ["Pt", "Cu"], "max_molecules": 25}},
        "oracle": {"kind": "replay"},
        "acquisition": {"initial_batch_size": N_JOBS, "cold_start": "random"},
        "budget": {"max_rounds": 1},
        "executor": {"kind": "dask", "workers": 2},
    })  # fmt: skip
    path = tmp_path / "kill.alloop"
    marker = tmp_path / "victim-pid"
    with create_campaign(cfg, str(path)) as store:
        assert len(store.pairs()) == N_JOBS
        victim = sorted(p.key for p in store.pairs())[N_JOBS // 2]
        oracle = HangOnceOracle(build_oracle(cfg), victim, str(marker))
        killed: list[int] = []
        stop = threading.Event()
        killer = threading.Thread(target=kill_when_marked, args=(marker, killed, stop), daemon=True)
        killer.start()
        try:
            CampaignEngine(store, cfg, oracle=oracle, executor=build_executor(cfg)).run()
        finally:
            stop.set()
            killer.join(timeout=5)
        assert killed, "the victim pair never started"
        jobs = store.jobs()
        failed = [j for j in jobs if j.state != JobState.DONE.value]
        # the killed worker's job: recorded as failed by a dead worker, with no label
        assert victim in {j.pair_key for j in failed}
        assert all(j.state == JobState.FAILED.value for j in failed)
        assert all((j.error or "").startswith("worker_died") for j in failed)
        labels = store.labels()
        assert len(labels) == N_JOBS - len(failed)
        assert not {j.pair_key for j in failed} & {lab.pair_key for lab in labels}
    with CampaignStore.open(path, write=True) as store:  # resume: the lost jobs run again
        CampaignEngine(store, cfg, oracle=oracle, executor=build_executor(cfg)).run()
        jobs = store.jobs()
        labels = store.labels()
        acquired = {a.pair_key for a in store.acquisitions(round_index=0)}
    assert len(jobs) == N_JOBS and all(j.state == JobState.DONE.value for j in jobs)
    assert len(acquired) == N_JOBS
    assert sorted(lab.pair_key for lab in labels) == sorted(acquired)  # none lost, none twice
    assert len({lab.job_key for lab in labels}) == N_JOBS
    assert {j.pair_key for j in jobs if j.attempts == 2} == {j.pair_key for j in failed}
    assert next(j for j in jobs if j.pair_key == victim).attempts == 2
