"""Running a round's oracle jobs (steps 4 and 5 of a round).

`JobRunner.run` takes the round's unfinished jobs of one kind (labelling or DFT), marks them
SUBMITTED (a job left RUNNING by a killed process is re-queued and run again), hands them to
the executor and ingests each result exactly once (`CampaignStore.complete_job`) as it
arrives. The executor is built on first use and closed with the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from alloop.loop.bridges.oracle import build_executor, oracle_pairs, result_to_label
from alloop.loop.bridges.surrogate import PoolView
from alloop.loop.config import AlloopConfig
from alloop.store import CampaignStore, JobState
from alloop.store.enums import TERMINAL_JOB_STATES
from alloop.store.records import JobRecord

Observer = Callable[[str, dict[str, Any]], None]


class JobRunner:
    """Runs jobs of one campaign through its executor; see the module docstring."""

    def __init__(
        self,
        store: CampaignStore,
        cfg: AlloopConfig,
        pool: PoolView,
        notify: Observer,
        executor: Any | None = None,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.pool = pool
        self.notify = notify
        self.executor = executor
        self.by_key = {p.key: p for p in pool.pairs}
        self.adsorbate_atoms = {k: store.adsorbate_atoms(k) for k in pool.adsorbates}

    def unfinished(self, index: int, kind: str) -> list[JobRecord]:
        return [j for j in self.store.jobs() if j.round_index == index and j.kind == kind
                and JobState(j.state) not in TERMINAL_JOB_STATES]  # fmt: skip

    def run(
        self,
        index: int,
        kind: str,
        oracle_for: Callable[[Sequence[JobRecord]], Any],
        progress: tuple[str, str],
    ) -> None:
        """Run round `index`'s unfinished jobs of `kind`, ingesting each result exactly once;
        `oracle_for(jobs)` gives the oracle (built only if there are any jobs)."""
        todo = self.unfinished(index, kind)
        if not todo:
            return
        for job in todo:
            if job.state in (JobState.PROPOSED.value, JobState.RUNNING.value):
                self.store.transition_job(job.key, JobState.SUBMITTED)  # RUNNING: a re-run
        oracle = oracle_for(todo)
        if self.executor is None:
            self.executor = build_executor(self.cfg)
        width = max(1, self.cfg.executor.workers)
        done = 0
        starting, each = progress
        self.notify(starting, {"index": index, "total": len(todo), "done": 0})
        for start in range(0, len(todo), width):
            chunk = todo[start : start + width]
            for job in chunk:
                self.store.transition_job(job.key, JobState.RUNNING)
            pairs = oracle_pairs(
                [self.by_key[j.pair_key] for j in chunk], self.pool.slabs,
                self.pool.adsorbates, self.adsorbate_atoms,
            )  # fmt: skip
            for job, result in zip(chunk, self.executor.map(oracle, pairs), strict=True):
                self.store.complete_job(job.key, result_to_label(result))
                done += 1
                info = {"index": index, "total": len(todo), "done": done, "pair": job.pair_key}
                self.notify(each, {**info, "status": result.status})

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
