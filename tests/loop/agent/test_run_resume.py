"""The closed loop end to end on the replay oracle, and crash safety under real SIGKILLs.

A subprocess running a small replay campaign is killed with SIGKILL at seeded random moments,
restarted with the same command each time, and its final database compared with that of an
uninterrupted run with the same seed.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alloop.loop.face.cli import app
from alloop.store import CampaignStore
from tests.conftest import FG_ROOT

ALLOOP = str(Path(sys.executable).parent / "alloop")
# One torch thread: training is then bit-reproducible, so "resumed == uninterrupted" is checked
# exactly (with two threads the float sums may differ in the last digits; the decisions do not)
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}
runner = CliRunner()


def tiny_config(path: Path, name: str = "tiny", rounds: int = 3) -> Path:
    path.write_text(
        f"campaign: {{name: {name}, seed: 5}}\n"
        f"pool:\n  fg: {{root: {FG_ROOT}, metals: [Pt, Au], max_molecules: 8}}\n"
        "oracle: {kind: replay}\n"
        "surrogate: {ensemble_size: 2, hidden_dim: 16, num_graph_layers: 1, max_epochs: 4,\n"
        "            early_stop_patience: 2, batch_size: 16}\n"
        "acquisition: {name: lcb, batch_size: 3, initial_batch_size: 4}\n"
        f"budget: {{max_rounds: {rounds}}}\n"
    )
    return path


def canonical_state(path: Path) -> dict[str, Any]:
    """Everything a campaign decided, without timings, attempts or event timestamps."""

    def r6(x: float | None) -> float | None:
        return None if x is None else round(x, 6)

    with CampaignStore.open(path) as store:
        return {
            "rounds": [
                (r.index, r.state, {k: v for k, v in r.metrics.items() if k != "timing"})
                for r in store.rounds()
            ],
            "acquisitions": [
                (
                    a.round_index,
                    a.rank,
                    a.pair_key,
                    r6(a.score),
                    r6(a.mu_ev),
                    r6(a.sigma_ev),
                    a.acquisition,
                    a.reason,
                )
                for a in store.acquisitions()
            ],  # fmt: skip
            "labels": sorted(
                (lab.pair_key, lab.job_key, lab.gmae_ev, lab.status, lab.fidelity)
                for lab in store.labels()
            ),
            "jobs": sorted((j.key, j.state) for j in store.jobs()),
            "checkpoints": [
                (c.round_index, c.member)
                for r in store.rounds()
                for c in store.checkpoints(r.index)
            ],  # fmt: skip
        }


def test_replay_campaign_end_to_end(tmp_path):
    cfg = tiny_config(tmp_path / "tiny.yaml")
    campaign = tmp_path / "tiny.alloop"
    result = runner.invoke(app, ["run", str(cfg), "-c", str(campaign), "-q"])
    assert result.exit_code == 0, result.output
    state = canonical_state(campaign)
    assert [r[:2] for r in state["rounds"]] == [(0, "closed"), (1, "closed"), (2, "closed")]
    # cold start of 4, then 3 per round; every acquired pair labelled exactly once
    assert [sum(1 for a in state["acquisitions"] if a[0] == i) for i in range(3)] == [4, 3, 3]
    assert len(state["labels"]) == 10 == len({lab[0] for lab in state["labels"]})
    assert all(j[1] == "DONE" for j in state["jobs"])
    assert state["checkpoints"] == [(1, 0), (2, 0)]
    assert state["acquisitions"][4][6] == "lcb" and state["acquisitions"][4][4] is not None
    # report: four real PNGs
    report = runner.invoke(app, ["report", str(campaign), "-o", str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    for name in ("learning_curve", "parity", "calibration", "distribution"):
        png = (tmp_path / "rep" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    # running again is a no-op once a stop rule holds
    again = runner.invoke(app, ["run", str(cfg), "-c", str(campaign), "-q"])
    assert again.exit_code == 0 and canonical_state(campaign) == state
    # a config whose frozen part differs is refused, naming the field
    cfg.write_text(cfg.read_text().replace("batch_size: 3,", "batch_size: 5,"))
    refused = runner.invoke(app, ["run", str(cfg), "-c", str(campaign), "-q"])
    assert refused.exit_code == 1
    assert "acquisition.batch_size (stored 3, given 5)" in refused.output
    assert f"{campaign.name}: 1 field(s) differ" in refused.output.replace("\n", "")
    assert "--campaign NEW.alloop" in refused.output.replace("\n", "")
    # the budget may change: two more rounds
    cfg.write_text(tiny_config(tmp_path / "t2.yaml", rounds=5).read_text())
    more = runner.invoke(app, ["run", str(cfg), "-c", str(campaign), "-q"])
    assert more.exit_code == 0, more.output
    assert len(canonical_state(campaign)["rounds"]) == 5


def progress(path: Path) -> int:
    """Events + labels committed so far (both append-only), read without the store's lock."""
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM event) + (SELECT count(*) FROM label)"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:  # still being created
        return 0
    return int(row[0])


def mf_tiny_config(path: Path) -> Path:
    """A multi-fidelity replay campaign: MLIP labels from the low-fidelity table, DFT from the
    FG table, Δ-learning surrogate, cost-aware (pair, fidelity) batches."""
    path.write_text(
        "campaign: {name: mftiny, seed: 5}\n"
        f"pool:\n  fg: {{root: {FG_ROOT}, metals: [Pt, Ru], max_molecules: 8}}\n"
        "oracle: {kind: mf_replay}\n"
        "surrogate: {ensemble_size: 2, hidden_dim: 16, num_graph_layers: 1, max_epochs: 4,\n"
        "            early_stop_patience: 2, batch_size: 16, fidelity_mode: delta}\n"
        "acquisition: {batch_size: 3, initial_batch_size: 4}\n"
        "escalation: {enabled: true, policy: cost_aware, mode: relax, per_round: 2}\n"
        "cost: {mlip: 1, dft: 5}\n"
        "budget: {max_rounds: 3}\n"
    )
    return path


@pytest.mark.parametrize("make_config", [tiny_config, mf_tiny_config], ids=["replay", "mf"])
def test_sigkill_at_random_points_then_resume_matches_uninterrupted(tmp_path, make_config):
    cfg = make_config(tmp_path / "tiny.yaml")
    reference = tmp_path / "reference.alloop"
    subprocess.run([ALLOOP, "run", str(cfg), "-c", str(reference), "-q"], check=True,
                   capture_output=True, timeout=600, env=ONE_THREAD)  # fmt: skip
    total = progress(reference)

    # Kill points are drawn in units of committed progress, not seconds, so they fall inside
    # the run however fast the machine is; a jitter lands them between commits too.
    killed = tmp_path / "killed.alloop"
    rng = random.Random(20261124)
    kill_points = []
    for target in sorted(rng.sample(range(2, total - 2), 3)):
        if progress(killed) >= target:
            continue
        proc = subprocess.Popen([ALLOOP, "run", str(cfg), "-c", str(killed), "-q"], env=ONE_THREAD,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        while proc.poll() is None and progress(killed) < target:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kill_points.append(progress(killed))
        proc.wait()
    final = subprocess.run([ALLOOP, "run", str(cfg), "-c", str(killed), "-q"], env=ONE_THREAD,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert final.returncode == 0, final.stderr
    assert len(kill_points) >= 2, f"too few runs were interrupted: {kill_points} of {total}"
    assert canonical_state(killed) == canonical_state(reference)


def test_locked_campaign_refused_with_holder(tmp_path):
    cfg = tiny_config(tmp_path / "tiny.yaml", rounds=1)
    campaign = tmp_path / "tiny.alloop"
    assert runner.invoke(app, ["init", str(cfg), "-c", str(campaign)]).exit_code == 0
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from alloop.store import CampaignStore;"
         "s = CampaignStore.open(sys.argv[1], write=True); print('locked', flush=True);"
         "sys.stdin.readline()", str(campaign)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = campaign.read_bytes()
        result = runner.invoke(app, ["resume", str(campaign), "-q"], env={"COLUMNS": "300"})
        assert result.exit_code == 1
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and f"locked by PID {holder.pid}" in lines[0]
        assert campaign.read_bytes() == before
    finally:
        holder.kill()
        holder.wait()


def test_explore_fraction_splits_each_batch(tmp_path):
    cfg = tiny_config(tmp_path / "mix.yaml", name="mix", rounds=2)
    cfg.write_text(
        cfg.read_text().replace("batch_size: 3,", "batch_size: 4, explore_fraction: 0.5,")
    )
    campaign = tmp_path / "mix.alloop"
    result = runner.invoke(app, ["run", str(cfg), "-c", str(campaign), "-q"])
    assert result.exit_code == 0, result.output
    with CampaignStore.open(campaign) as store:
        batch = sorted(store.acquisitions(round_index=1), key=lambda a: a.rank)
        taken = {a.pair_key for a in store.acquisitions(round_index=0)}
    # ranks 0-1 by the named acquisition, 2-3 by max σ among what was left, no repeats
    assert [a.rank for a in batch] == [0, 1, 2, 3]
    assert [a.acquisition for a in batch] == ["lcb", "lcb", "uncertainty", "uncertainty"]
    assert len({a.pair_key for a in batch} | taken) == 8
    explore = batch[2:]
    assert explore[0].score is not None and explore[0].sigma_ev is not None
    # the explore share is chosen by σ: the first explore pick has σ at least the second's
    assert explore[0].sigma_ev >= explore[1].sigma_ev - 1e-9


def test_campaign_from_an_older_alloop_continues_with_the_same_config(tmp_path):
    from alloop.loop.face.commands import open_for_run

    cfg = tiny_config(tmp_path / "old.yaml", name="old")
    campaign = tmp_path / "old.alloop"
    assert runner.invoke(app, ["init", str(cfg), "-c", str(campaign)]).exit_code == 0
    with CampaignStore.open(campaign, write=True) as store:  # as an older alloop stored it
        stored = store.campaign().config
        del stored["acquisition"]["explore_fraction"]
        del stored["escalation"]["reasons"]
        store.update_config(stored)
    store, _ = open_for_run(cfg, str(campaign))  # keys added since compare at their defaults
    store.close()
    cfg.write_text(cfg.read_text().replace("batch_size: 3,", "batch_size: 3, beta: 2.0,"))
    refused = runner.invoke(app, ["run", str(cfg), "-c", str(campaign), "-q"])
    assert refused.exit_code == 1
    assert "acquisition.beta (stored 1.0, given 2.0)" in refused.output
