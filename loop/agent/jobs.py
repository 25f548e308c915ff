"""Running a round's oracle jobs (steps 4 and 5 of a round).

`JobRunner.run` takes the round's unfinished jobs of one kind (labelling or DFT), marks them
SUBMITTED (a job left RUNNING by a killed process is re-queued and run again) and streams them
through the executor: every worker stays busy while jobs remain (no barrier between jobs), a
job turns RUNNING when a worker takes it, and each result is ingested exactly once as it
arrives. What one pass of the executor's loop found finished and the jobs it hands out next
are recorded in one transaction (`CampaignStore.record_pass`), before those jobs run; the
in-process executor's passes hold one job each, so a job that crashes the process is left
RUNNING. A job whose worker died (its process killed, its batch job ended) says nothing about
the pair: it is recorded FAILED with the error, no label, and `retry_lost` runs it again when
the campaign resumes (at most `MAX_ATTEMPTS` times).

Labelling jobs of a round whose acquisitions carry the surrogate's site scores
(`planning.SITE_SCORES_EVENT`) hand them to the oracle when `oracle.use_site_scores` is on (off
by default: measured, they did not pay; docs/oracles.md, "Site scores").
The executor is built on first use and closed with the runner; its workers live as long.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from alloop.loop.agent.planning import stored_site_scores
from alloop.loop.bridges.oracle import (
    RETRYABLE_FAILURES,
    Executor,
    Oracle,
    build_executor,
    is_retryable,
    oracle_fidelity,
    oracle_pairs,
    result_to_label,
)
from alloop.loop.bridges.surrogate import PoolView
from alloop.loop.config import AlloopConfig
from alloop.store import CampaignStore, JobState
from alloop.store.enums import TERMINAL_JOB_STATES
from alloop.store.records import JobRecord

Observer = Callable[[str, dict[str, Any]], None]
#: the oracle for a list of jobs (built on first use by the engine)
OracleFor = Callable[[Sequence[JobRecord]], Oracle]

#: how many times a job whose worker died is run in all before it stays FAILED
MAX_ATTEMPTS = 3


class JobRunner:
    """Runs jobs of one campaign through its executor; see the module docstring."""

    def __init__(
        self,
        store: CampaignStore,
        cfg: AlloopConfig,
        pool: PoolView,
        notify: Observer,
        executor: Executor | None = None,
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

    def lost(self) -> list[JobRecord]:
        """FAILED jobs whose worker died, with attempts left: what a resume runs again."""
        return [
            j for j in self.store.jobs(JobState.FAILED)
            if (j.error or "").partition(":")[0] in RETRYABLE_FAILURES and j.attempts < MAX_ATTEMPTS
        ]  # fmt: skip

    def run(self, index: int, kind: str, oracle_for: OracleFor, progress: tuple[str, str]) -> None:
        """Run round `index`'s unfinished jobs of `kind`, ingesting each result exactly once;
        `oracle_for(jobs)` gives the oracle (built only if there are any jobs)."""
        self.run_jobs(self.unfinished(index, kind), oracle_for, progress, index)

    def retry_lost(self, kind: str, oracle_for: OracleFor, progress: tuple[str, str]) -> None:
        """Run again the lost jobs (see `lost`) of `kind`, round by round."""
        lost = [j for j in self.lost() if j.kind == kind]
        for index in sorted({j.round_index for j in lost}, key=lambda i: -1 if i is None else i):
            jobs = [j for j in lost if j.round_index == index]
            self.notify("retrying", {"index": index, "n": len(jobs), "kind": kind})
            self.run_jobs(jobs, oracle_for, progress, index)

    def run_jobs(
        self,
        todo: Sequence[JobRecord],
        oracle_for: OracleFor,
        progress: tuple[str, str],
        index: int | None,
    ) -> None:
        if not todo:
            return
        # RUNNING: a re-run; FAILED: a retry
        again = [j.key for j in todo if j.state != JobState.SUBMITTED.value]
        if again:
            self.store.transition_jobs(again, JobState.SUBMITTED)
        oracle = oracle_for(todo)
        if self.executor is None:
            self.executor = build_executor(self.cfg)
        scores = self.site_scores(index, todo)
        pairs = oracle_pairs(
            [self.by_key[j.pair_key] for j in todo], self.pool.slabs, self.pool.adsorbates,
            self.adsorbate_atoms, site_scores=scores,
        )  # fmt: skip
        starting, each = progress
        self.notify(starting, {"index": index, "total": len(todo), "done": 0})

        done = 0
        for step in self.executor.passes(oracle, pairs):
            # a pass's results and starts in one transaction: with many small jobs a commit
            # per job and state was what held the workers up (benchmarks/results/scheduler_scale.md)
            fin = step.finished
            self.store.record_pass(
                [todo[i].key for i in step.starting],
                [(todo[i].key, result_to_label(r)) for i, r in fin if not is_retryable(r)],
                [(todo[i].key, r.error) for i, r in fin if is_retryable(r)],
            )
            for i, result in fin:
                done += 1
                info = {"index": index, "total": len(todo), "done": done, "pair": todo[i].pair_key}
                self.notify(each, {**info, "status": result.status})

    def site_scores(
        self, index: int | None, jobs: Sequence[JobRecord]
    ) -> dict[str, tuple[float, ...]] | None:
        """The stored site scores of labelling jobs, when the oracle is to use them."""
        if index is None or not self.cfg.oracle.use_site_scores:
            return None
        if not any(j.kind == oracle_fidelity(self.cfg) for j in jobs):
            return None
        return stored_site_scores(self.store, index) or None

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
