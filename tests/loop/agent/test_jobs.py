"""`JobRunner` (steps 4 and 5 of a round) on a real SQLite campaign of FG pairs, labelled by the
real replay oracle: which jobs are unfinished, each result ingested once as it streams, jobs
left RUNNING by a kill run again, a job whose worker died recorded FAILED and retried on resume
(at most `MAX_ATTEMPTS` times), the executor built on first use and closed with the runner,
site scores handed to the oracle only when asked, and a result the store cannot hold refused."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from alloop.loop.agent.jobs import MAX_ATTEMPTS, JobRunner
from alloop.loop.agent.planning import SITE_SCORES_EVENT
from alloop.loop.bridges.oracle import build_oracle
from alloop.loop.bridges.surrogate import PoolView
from alloop.loop.config import AlloopConfig, parse_config
from alloop.loop.errors import LoopError
from alloop.loop.face.commands import create_campaign
from alloop.oracles.executors import InProcessExecutor, LocalProcessExecutor
from alloop.oracles.types import Oracle, OraclePair, OracleResult
from alloop.store import CampaignStore, JobState, RoundState
from alloop.store.records import JobRecord, NewJob
from tests.conftest import FG_ROOT
from tests.oracles.helpers import CrashingOracle, SleepingOracle

REPLAY = "replay"  # the job kind (and label fidelity) of a replay campaign's labelling jobs


def config(**oracle: Any) -> AlloopConfig:
    return parse_config(
        {
            "campaign": {"name": "jobs", "seed": 3},
            "pool": {"fg": {"root": str(FG_ROOT), "metals": ["Pt"], "max_molecules": 4}},
            "oracle": {"kind": "replay", **oracle},
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CampaignStore]:
    """A replay campaign (Pt x 4 FG molecules) with round 0 at `acquired`."""
    with create_campaign(config(), str(tmp_path / "jobs.alloop")) as opened:
        opened.begin_round(0, RoundState.ACQUIRED.value)
        yield opened


class Recorder:
    """The runner's observer: every (kind, info) it was told, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        self.seen.append((kind, info))


def runner_for(
    store: CampaignStore, cfg: AlloopConfig | None = None, executor: Any = None
) -> tuple[JobRunner, Recorder]:
    notes = Recorder()
    return JobRunner(store, cfg or config(), PoolView.load(store), notes, executor), notes


def propose(
    store: CampaignStore, index: int, kind: str = REPLAY, n: int | None = None
) -> list[str]:
    keys = [p.key for p in store.pairs()][:n]
    store.propose_jobs(index, [NewJob.for_round(index, k, kind) for k in keys])
    return keys


def oracle_for(oracle: Oracle) -> Any:
    """What the engine hands the runner: jobs -> oracle, here one fixed oracle."""
    asked: list[int] = []

    def give(jobs: Sequence[JobRecord]) -> Oracle:
        asked.append(len(jobs))
        return oracle

    give.asked = asked  # type: ignore[attr-defined]
    return give


def states(store: CampaignStore) -> dict[str, tuple[str, int]]:
    return {j.pair_key: (j.state, j.attempts) for j in store.jobs()}


def test_run_ingests_each_result_once_as_it_streams(store: CampaignStore) -> None:
    keys = propose(store, 0)
    runner, notes = runner_for(store, executor=InProcessExecutor())
    give = oracle_for(build_oracle(config()))
    runner.run(0, REPLAY, give, ("labelling", "labelled"))
    assert give.asked == [len(keys)]  # built once, for all the round's jobs
    assert states(store) == {k: (JobState.DONE.value, 1) for k in keys}
    labels = store.labels()
    assert sorted(lab.pair_key for lab in labels) == sorted(keys)
    assert {lab.job_key for lab in labels} == {f"r0:{REPLAY}:{k}" for k in keys}
    assert all(lab.status == "ok" and lab.fidelity == REPLAY for lab in labels)
    assert notes.seen[0] == ("labelling", {"index": 0, "total": len(keys), "done": 0})
    each = notes.seen[1:]
    assert [kind for kind, _ in each] == ["labelled"] * len(keys)
    assert [info["done"] for _, info in each] == list(range(1, len(keys) + 1))
    assert {info["pair"] for _, info in each} == set(keys)
    assert {info["status"] for _, info in each} == {"ok"}
    # nothing is left to run: a second run asks for no oracle and ingests nothing twice
    runner.run(0, REPLAY, give, ("labelling", "labelled"))
    assert give.asked == [len(keys)] and len(store.labels()) == len(keys)


def test_unfinished_is_one_round_and_one_kind_not_yet_terminal(store: CampaignStore) -> None:
    keys = propose(store, 0)
    store.propose_jobs(0, [NewJob.for_round(0, keys[0], "dft_relax")])
    store.begin_round(1, RoundState.ACQUIRED.value)
    propose(store, 1, n=1)
    runner, _ = runner_for(store)
    store.transition_job(f"r0:{REPLAY}:{keys[1]}", JobState.ABANDONED)
    got = runner.unfinished(0, REPLAY)
    assert [j.pair_key for j in got] == [k for k in keys if k != keys[1]]
    assert [j.key for j in runner.unfinished(0, "dft_relax")] == [f"r0:dft_relax:{keys[0]}"]
    assert [j.round_index for j in runner.unfinished(1, REPLAY)] == [1]
    assert runner.unfinished(2, REPLAY) == []


def test_nothing_to_run_builds_neither_oracle_nor_executor(store: CampaignStore) -> None:
    runner, notes = runner_for(store)

    def no_oracle(jobs: Sequence[JobRecord]) -> Oracle:
        raise AssertionError("the oracle is built only when there are jobs")

    runner.run(0, REPLAY, no_oracle, ("labelling", "labelled"))
    runner.retry_lost(REPLAY, no_oracle, ("labelling", "labelled"))
    assert runner.executor is None and notes.seen == []
    runner.close()  # nothing to close


class ClosingExecutor(InProcessExecutor):
    """The in-process executor, counting `close` calls."""

    closed = 0

    def close(self) -> None:
        self.closed += 1


def test_executor_is_built_from_the_config_on_first_use_and_closed_with_the_runner(
    store: CampaignStore,
) -> None:
    propose(store, 0, n=1)
    runner, _ = runner_for(store)
    assert runner.executor is None
    runner.run(0, REPLAY, oracle_for(build_oracle(config())), ("labelling", "labelled"))
    assert isinstance(runner.executor, InProcessExecutor)  # executor.kind defaults to inprocess
    given = ClosingExecutor()
    runner, _ = runner_for(store, executor=given)
    runner.close()
    assert runner.executor is given and given.closed == 1


def test_jobs_left_running_by_a_kill_run_again(store: CampaignStore) -> None:
    keys = propose(store, 0, n=2)
    killed = f"r0:{REPLAY}:{keys[0]}"
    store.transition_job(killed, JobState.SUBMITTED)  # the killed run had started this one
    store.transition_job(killed, JobState.RUNNING)
    runner, _ = runner_for(store, executor=InProcessExecutor())
    runner.run(0, REPLAY, oracle_for(build_oracle(config())), ("labelling", "labelled"))
    assert states(store) == {keys[0]: (JobState.DONE.value, 2), keys[1]: (JobState.DONE.value, 1)}
    assert len(store.labels(keys[0])) == 1


class RaisingOracle:
    """An oracle with a bug: `label` raises (the executors' guard makes it a failed result)."""

    fidelity = REPLAY

    def label(self, pair: OraclePair) -> OracleResult:
        raise ZeroDivisionError("a bug in the oracle")


def test_a_failed_pair_is_a_failed_label_not_a_lost_job(store: CampaignStore) -> None:
    keys = propose(store, 0, n=2)
    runner, notes = runner_for(store, executor=InProcessExecutor())
    runner.run(0, REPLAY, oracle_for(RaisingOracle()), ("labelling", "labelled"))
    assert states(store) == {k: (JobState.DONE.value, 1) for k in keys}
    labels = store.labels()
    assert [lab.status for lab in labels] == ["failed", "failed"]
    assert all(lab.gmae_ev is None for lab in labels)
    assert "ZeroDivisionError: a bug in the oracle" in labels[0].provenance["error"]
    assert [info["status"] for kind, info in notes.seen if kind == "labelled"] == ["failed"] * 2
    assert runner.lost() == []


def test_worker_death_is_recorded_failed_and_retried_on_resume(store: CampaignStore) -> None:
    crash, hang, fine = propose(store, 0, n=3)
    replay = build_oracle(config())
    # a real pool: the worker labelling `crash` exits hard; `hang` overruns its job limit
    broken = CrashingOracle(SleepingOracle(replay, hang, hang_s=60.0), crash)
    executor = LocalProcessExecutor(workers=1, job_timeout_s=3.0, start_method="fork")
    runner, notes = runner_for(store, executor=executor)
    try:
        runner.run(0, REPLAY, oracle_for(broken), ("labelling", "labelled"))
        jobs = {j.pair_key: j for j in store.jobs()}
        assert jobs[crash].state == JobState.FAILED.value
        assert (jobs[crash].error or "").startswith("worker_died:")
        assert store.labels(crash) == []  # a dead worker says nothing about the pair
        # a time limit is the pair's own failure: a failed label, never run again
        assert jobs[hang].state == JobState.DONE.value
        assert [lab.status for lab in store.labels(hang)] == ["failed"]
        assert store.labels(hang)[0].provenance["failure_kind"] == "time_limit"
        assert [lab.status for lab in store.labels(fine)] == ["ok"]
        assert [j.pair_key for j in runner.lost()] == [crash]
        runner.retry_lost(REPLAY, oracle_for(replay), ("labelling", "labelled"))
    finally:
        runner.close()
    assert ("retrying", {"index": 0, "n": 1, "kind": REPLAY}) in notes.seen
    assert states(store)[crash] == (JobState.DONE.value, 2)
    assert [lab.status for lab in store.labels(crash)] == ["ok"]
    assert runner.lost() == []


def test_a_job_lost_max_attempts_times_stays_failed(store: CampaignStore) -> None:
    (key,) = propose(store, 0, n=1)
    job = f"r0:{REPLAY}:{key}"
    runner, _ = runner_for(store)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        store.transition_job(job, JobState.SUBMITTED)
        store.transition_job(job, JobState.RUNNING)
        store.transition_job(job, JobState.FAILED, error="worker_died: killed")
        assert [j.attempts for j in runner.lost()] == ([attempt] if attempt < MAX_ATTEMPTS else [])
    # a failure of another kind is never run again, whatever its attempts
    store.propose_jobs(0, [NewJob.for_round(0, key, "dft_relax")])
    for to in (JobState.SUBMITTED, JobState.RUNNING):
        store.transition_job(f"r0:dft_relax:{key}", to)
    store.transition_job(f"r0:dft_relax:{key}", JobState.FAILED, error="time_limit: too slow")
    assert runner.lost() == []


class NotJSONOracle:
    """The replay oracle, slipping into its result's provenance, after `OracleResult` checked
    it, a value JSON cannot hold (an oracle bug the store must not swallow)."""

    fidelity = REPLAY

    def __init__(self, inner: Oracle) -> None:
        self.inner = inner

    def label(self, pair: OraclePair) -> OracleResult:
        result = self.inner.label(pair)
        result.provenance["when"] = object()
        return result


def test_a_result_that_is_not_json_when_made_is_a_failed_label(store: CampaignStore) -> None:
    (key,) = propose(store, 0, n=1)
    replay = build_oracle(config())

    class Bad(NotJSONOracle):
        def label(self, pair: OraclePair) -> OracleResult:
            result = self.inner.label(pair)
            return replace(result, provenance={**result.provenance, "when": object()})

    runner, _ = runner_for(store, executor=InProcessExecutor())
    runner.run(0, REPLAY, oracle_for(Bad(replay)), ("labelling", "labelled"))
    (label,) = store.labels(key)
    assert label.status == "failed" and label.provenance["failure_kind"] == "oracle_error"
    assert "provenance is not JSON-serialisable" in label.provenance["error"]


def test_a_result_the_store_cannot_hold_is_refused_and_run_again(store: CampaignStore) -> None:
    (key,) = propose(store, 0, n=1)
    replay = build_oracle(config())
    runner, _ = runner_for(store, executor=InProcessExecutor())
    with pytest.raises(LoopError, match=f"oracle provenance for {key} is not JSON"):
        runner.run(0, REPLAY, oracle_for(NotJSONOracle(replay)), ("labelling", "labelled"))
    assert states(store) == {key: (JobState.RUNNING.value, 1)} and store.labels() == []
    runner.run(0, REPLAY, oracle_for(replay), ("labelling", "labelled"))  # as a resume would
    assert states(store) == {key: (JobState.DONE.value, 2)}


class SiteScoreRecorder:
    """The replay oracle as an MLIP one, recording the site scores each pair came with."""

    fidelity = "mlip"

    def __init__(self, inner: Oracle) -> None:
        self.inner = inner
        self.scores: dict[str, tuple[float, ...] | None] = {}

    def label(self, pair: OraclePair) -> OracleResult:
        self.scores[pair.key] = pair.site_scores
        return replace(self.inner.label(pair), fidelity="mlip")


def test_site_scores_reach_the_oracle_only_when_asked(store: CampaignStore) -> None:
    scored, unscored = propose(store, 0, kind="mlip", n=2)
    n_atoms = len(store.surface_atoms(store.pair(scored).surface_key))
    scores = tuple([0.5] + [0.5 / (n_atoms - 1)] * (n_atoms - 1))  # one per slab atom
    store.log_event(SITE_SCORES_EVENT, {"pair": scored, "scores": list(scores)}, round_index=0)
    mlip = {"calculator": "emt"}
    on = config(**{"kind": "mlip", "use_site_scores": True, **mlip})
    off = config(**{"kind": "mlip", **mlip})
    runner, _ = runner_for(store, on)
    jobs = runner.unfinished(0, "mlip")
    assert runner.site_scores(0, jobs) == {scored: scores}
    assert runner.site_scores(None, jobs) is None  # a retry outside a round
    assert runner_for(store, off)[0].site_scores(0, jobs) is None
    assert runner.site_scores(1, jobs) is None  # no scores stored with round 1
    dft = store.propose_jobs(0, [NewJob.for_round(0, scored, "dft_relax")])
    assert runner.site_scores(0, dft) is None  # DFT jobs start from a minimum, not sites
    oracle = SiteScoreRecorder(build_oracle(config()))
    runner.executor = InProcessExecutor()
    runner.run(0, "mlip", oracle_for(oracle), ("labelling", "labelled"))
    assert oracle.scores == {scored: scores, unscored: None}


def test_a_pool_records_each_pass_in_one_transaction(store: CampaignStore) -> None:
    from sqlalchemy import event

    keys = propose(store, 0)
    commits: list[int] = []
    event.listen(store._engine, "commit", lambda _conn: commits.append(1))
    runner, notes = runner_for(store, executor=LocalProcessExecutor(workers=2, start_method="fork"))
    try:
        runner.run(0, REPLAY, oracle_for(build_oracle(config())), ("labelling", "labelled"))
    finally:
        runner.close()
    assert {j.pair_key: j.state for j in store.jobs()} == dict.fromkeys(keys, JobState.DONE.value)
    assert len(store.labels()) == len(keys)
    done = [info["done"] for kind, info in notes.seen if kind == "labelled"]
    assert done == [1, 2, 3, 4]  # every result reported, one at a time
    # one commit for the SUBMITTED jobs, then one per pass (its results and the next starts:
    # at most a pass per job, plus the first); a commit per job and state (3 x 4) was the
    # way before
    assert len(commits) <= 2 + len(keys)
