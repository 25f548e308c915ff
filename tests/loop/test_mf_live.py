"""`configs/mf-live.yaml` end to end: a live multi-fidelity campaign through the CLI.

SevenNet-MF-0 labels pairs (the MLIP fidelity), GPAW single points at their MLIP minima are the
DFT fidelity, and the Δ-learning surrogate with the cost-aware acquisition decides which pair
gets which. Nothing is replaced: both codes really run (about 2-4 min on one CPU core). The
campaign runs from a copy of the shipped config whose only change is a DFT cache in tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from alloop.loop.agent.costs import cost_by_fidelity, cost_spent, fidelity_cost
from alloop.loop.config import load_config
from alloop.loop.face.cli import app
from alloop.store import CampaignStore, JobState
from tests.conftest import REPO

runner = CliRunner()
WIDE = {"COLUMNS": "200"}
DFT = "dft_single_point"
REASONS = {"COLD_START", "VALUE_PER_COST"}


def live_config(directory: Path) -> Path:
    """The shipped config, with the DFT references cached under ``directory``."""
    data = yaml.safe_load((REPO / "configs" / "mf-live.yaml").read_text())
    data["escalation"]["dft"]["cache_dir"] = "dft-cache"  # relative to the config file
    path = directory / "mf-live.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.slow
@pytest.mark.dft
@pytest.mark.mlip
def test_live_mf_campaign_mlip_and_gpaw(tmp_path: Path) -> None:
    pytest.importorskip("gpaw", reason="GPAW is not installed: `make dft-env` builds it")
    config = live_config(tmp_path)
    cfg = load_config(config)
    campaign = tmp_path / "mf-live.alloop"
    result = runner.invoke(app, ["run", str(config), "--campaign", str(campaign)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "COST_BUDGET" in result.output
    with CampaignStore.open(campaign) as store:
        rounds = store.rounds()
        labels = store.labels()
        jobs = store.jobs()
        events = [e for e in store.events() if e.kind == "escalated"]

    assert len(rounds) >= 2 and all(r.state == "closed" for r in rounds)
    assert {lab.fidelity for lab in labels} == {"mlip", DFT}
    assert all(j.state == JobState.DONE.value for j in jobs)
    mlip = {lab.pair_key: lab for lab in labels if lab.fidelity == "mlip" and lab.status == "ok"}
    dft = [lab for lab in labels if lab.fidelity == DFT]
    for lab in dft:  # each from its pair's ok MLIP minimum, computed by GPAW
        assert lab.status == "ok", lab.provenance.get("error")
        assert lab.pair_key in mlip
        prov = lab.provenance
        assert prov["calculator"] == "gpaw-pbe" and prov["dft_settings"]["cutoff_ev"] == 350
        assert prov["start"]["calculator"] == "sevennet-mf-0"
        assert prov["start"]["gmae_ev"] == pytest.approx(mlip[lab.pair_key].gmae_ev)
        ref = prov["reference_energies_ev"]
        e_total = prov["placements"][0]["e_total_ev"]
        assert e_total - ref["slab"] - ref["adsorbate"] == pytest.approx(lab.gmae_ev)
    assert (tmp_path / "dft-cache").is_dir()

    # every DFT job: exactly one `escalated` event, with a reason code and its price
    dft_jobs = [j for j in jobs if j.kind == DFT]
    assert sorted(j.pair_key for j in dft_jobs) == sorted(lab.pair_key for lab in dft)
    price = fidelity_cost(DFT, cfg.cost)
    for job in dft_jobs:
        mine = [e for e in events if e.payload["pair"] == job.pair_key]
        assert len(mine) == 1 and mine[0].round_index == job.round_index
        assert mine[0].payload["reason"] in REASONS and mine[0].payload["cost"] == price
    assert len(events) == len(dft_jobs)
    # round 0's DFT label is the random cold start; a later one was bought by value per cost
    by_reason = {e.payload["reason"]: e for e in events}
    assert set(by_reason) == REASONS
    assert by_reason["COLD_START"].round_index == 0
    later = by_reason["VALUE_PER_COST"]
    assert later.round_index > 0 and later.payload["value"] > 0

    # cost per round and in total, by the one rule, within the budget
    assert [r.metrics["cost_round"] for r in rounds] == [
        cost_spent(jobs, cfg.cost, r.index) for r in rounds
    ]
    assert rounds[-1].metrics["cost_total"] == cost_spent(jobs, cfg.cost)
    assert rounds[-1].metrics["cost_by_fidelity"] == cost_by_fidelity(jobs, cfg.cost)
    assert cfg.budget.max_cost is not None and cost_spent(jobs, cfg.cost) <= cfg.budget.max_cost

    status = runner.invoke(app, ["status", str(campaign)], env=WIDE)
    assert status.exit_code == 0, status.output
    assert f"{cost_spent(jobs, cfg.cost):,.0f} units" in status.output
    shown = runner.invoke(app, ["show", str(campaign), dft[0].pair_key], env=WIDE)
    assert shown.exit_code == 0, shown.output
    assert DFT in shown.output and "mlip" in shown.output
