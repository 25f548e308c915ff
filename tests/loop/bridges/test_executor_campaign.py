"""Oracle execution from the campaign config: the SLURM batch script a config produces (no
cluster here: dask-jobqueue renders it without submitting), and a real Dask LocalCluster
campaign end to end on EMT: results streamed and ingested once, each slab relaxed once in the
cache beside the campaign, site scores stored and used, a job lost with its worker recorded as
failed and run again on resume, `alloop show` listing the top-scored atoms."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from alloop.loop.agent.engine import CampaignEngine
from alloop.loop.agent.planning import SITE_SCORES_EVENT, stored_site_scores
from alloop.loop.bridges.oracle import build_executor, build_oracle, oracle_cache_dir
from alloop.loop.config import ConfigError, load_config, parse_config
from alloop.loop.face.cli import app
from alloop.loop.face.commands import create_campaign
from alloop.store import CampaignStore, JobState
from tests.oracles.helpers import CrashOnceOracle

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
runner = CliRunner()

CONFIG = """\
campaign: {name: dask-emt, seed: 2}
pool:
  surfaces: [{bulk: Cu, min_ab_ang: 4.0}, {bulk: Pt, min_ab_ang: 4.0}]
  adsorbates: [{name: '*H'}, {name: '*O'}, {name: '*OH'}, {name: '*N'}]
oracle: {kind: mlip, calculator: emt, max_placements: 2, patience: 1, fmax_ev_per_ang: 0.1,
         max_steps: 60, use_site_scores: true}
surrogate: {ensemble_size: 2, hidden_dim: 16, num_graph_layers: 1, max_epochs: 4,
            early_stop_patience: 2, batch_size: 16}
acquisition: {name: lcb, batch_size: 2, initial_batch_size: 4}
budget: {max_rounds: 2}
executor: {kind: dask, workers: 2, job_timeout_s: 300}
"""


def test_slurm_batch_script_from_the_example_campaign_config(tmp_path: Path) -> None:
    data = yaml.safe_load((CONFIGS / "dask-slurm.example.yaml").read_text())
    data["executor"]["jobqueue"]["jobs"] = 0  # build the cluster and its script; submit nothing
    data["executor"]["jobqueue"]["cluster"]["log_directory"] = str(tmp_path / "logs")
    cfg = parse_config(data)
    assert cfg.executor.jobqueue is not None and cfg.executor.jobqueue.kind == "slurm"
    executor = build_executor(cfg)
    try:
        script = executor._own_cluster.job_script()
        # a job whose worker died comes back as a failure to record, not re-run by dask
        assert executor._own_cluster.scheduler.allowed_failures == 0
    finally:
        executor.close()
    assert "#SBATCH -p compute" in script and "#SBATCH -A my-project" in script
    assert "#SBATCH -t 04:00:00" in script and "#SBATCH -n 1" in script
    assert "export OMP_NUM_THREADS=1" in script and "--nthreads 1" in script
    assert "--nworkers 8" in script


def test_jobqueue_section_is_validated() -> None:
    data = yaml.safe_load((CONFIGS / "dask-slurm.example.yaml").read_text())
    data["executor"]["jobqueue"]["cluster"]["queu"] = "x"
    with pytest.raises(ConfigError, match=r"executor\.jobqueue.*unknown slurm key\(s\) \['queu'\]"):
        parse_config(data)
    data["executor"]["jobqueue"]["cluster"].pop("queu")
    data["executor"]["kind"] = "process"
    with pytest.raises(ConfigError, match="executor: .*jobqueue needs kind: dask, not process"):
        parse_config(data)
    data["executor"] = {"kind": "dask", "jobqueue": {"kind": "lsf"}}
    with pytest.raises(ConfigError, match="executor.jobqueue.kind"):
        parse_config(data)


def test_dask_campaign_end_to_end(tmp_path: Path) -> None:
    config = tmp_path / "dask.yaml"
    config.write_text(CONFIG)
    cfg = load_config(config)
    path = tmp_path / "dask.alloop"
    marker = tmp_path / "crashed"
    with create_campaign(cfg, str(path)) as store:
        cache = oracle_cache_dir(store)
        oracle = CrashOnceOracle(build_oracle(cfg, cache), str(marker))
        CampaignEngine(store, cfg, oracle=oracle).run()
        jobs = store.jobs()
        lost = [j for j in jobs if j.state == JobState.FAILED.value]
        # the worker of the first pair died: a recorded failure, no label
        assert len(lost) == 1 and (lost[0].error or "").startswith("worker_died")
        assert all(j.state == JobState.DONE.value for j in jobs if j is not lost[0])
        assert lost[0].pair_key not in {lab.pair_key for lab in store.labels()}
        assert len(store.labels()) == len(jobs) - 1 == 5
    assert cache == (tmp_path / "dask.alloop.oracle-cache").resolve()
    with CampaignStore.open(path, write=True) as store:  # resume: the lost job runs again
        CampaignEngine(store, cfg, oracle=oracle).run()
        job = next(j for j in store.jobs() if j.key == lost[0].key)
        assert job.state == JobState.DONE.value and job.attempts == 2
        labels = store.labels()
        assert len(labels) == 6 and len({lab.job_key for lab in labels}) == 6
        assert len(store.rounds()) == 2  # no new round: the budget was spent
        # each clean slab relaxed once, across both workers and both runs
        surfaces = {lab.pair_key.split("|")[0] for lab in labels}
        assert len(list(cache.glob("slab-*.json"))) == len(surfaces)
        assert sum(not lab.provenance["slab_cache_hit"] for lab in labels) == len(surfaces)
        # round 1's pairs carried the surrogate's site scores to the oracle
        scores = stored_site_scores(store, 1)
        assert set(scores) == {a.pair_key for a in store.acquisitions(round_index=1)}
        for lab in labels:
            acquired_in = 1 if lab.pair_key in scores else 0
            assert lab.provenance["used_site_scores"] is (acquired_in == 1)
        assert not [e for e in store.events() if e.kind == SITE_SCORES_EVENT and e.round_index == 0]
        pair, first = next(iter(scores.items()))
        symbols = store.surface_atoms(store.pair(pair).surface_key).get_chemical_symbols()
    shown = runner.invoke(app, ["show", str(path), pair], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "top-scored slab atoms" in shown.output
    best = max(range(len(first)), key=lambda i: first[i])
    assert f"{best} {symbols[best]} {first[best]:.3f}" in shown.output


def test_oracle_cache_sits_beside_the_campaign_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    with create_campaign(load_config(config), "rel.alloop") as store:
        cache = oracle_cache_dir(store)
    assert cache.is_absolute() and cache == (tmp_path / "rel.alloop.oracle-cache").resolve()
