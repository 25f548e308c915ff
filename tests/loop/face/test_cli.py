"""CLI commands through Typer's CliRunner, and once through the installed `alloop` script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alloop.loop.face.cli import app
from alloop.store import CampaignStore
from alloop.store.records import NewAcquisition, NewLabel

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def write_fg_config(path: Path, fg_root: Path, name: str = "cli") -> Path:
    path.write_text(
        f"campaign: {{name: {name}, seed: 2}}\n"
        f"pool:\n  fg: {{root: {fg_root}, metals: [Pt, Au], max_molecules: 4}}\n"
        "oracle: {kind: replay}\n"
    )
    return path


@pytest.fixture
def campaign(tmp_path, fg_root) -> Path:
    cfg = write_fg_config(tmp_path / "c.yaml", fg_root)
    result = runner.invoke(app, ["init", str(cfg), "--campaign", str(tmp_path / "c.alloop")])
    assert result.exit_code == 0, result.output
    return tmp_path / "c.alloop"


def test_init_then_status(campaign):
    result = runner.invoke(app, ["status", str(campaign)])
    assert result.exit_code == 0, result.output
    assert "2 surfaces × 4 adsorbates = 8 pairs" in result.output
    with CampaignStore.open(campaign) as store:
        assert store.campaign().config["oracle"]["kind"] == "replay"
        assert {s.key for s in store.surfaces()} == {"Pt", "Au"}
        assert all(a.smiles for a in store.adsorbates())


def test_history_filters(campaign):
    with CampaignStore.open(campaign, write=True) as store:
        pairs = [p.key for p in store.pairs()]
        store.begin_round(0, "closed")
        store.record_acquisitions(
            0,
            [NewAcquisition(k, i, 1.0 - i, -0.5, 0.1, "lcb", "r") for i, k in enumerate(pairs[:3])],
        )
        store.begin_round(1, "closed")
        store.record_acquisitions(1, [NewAcquisition(pairs[5], 0, 0.3, -1.0, 0.2, "ei", "r")])
        store.add_label(pairs[0], NewLabel(-0.75, "ok", "replay"))
    out = runner.invoke(app, ["history", str(campaign), "--wide"], env=WIDE).output
    assert out.count("lcb") == 3 and "ei" in out and "-0.750" in out and "pending" in out
    out = runner.invoke(app, ["history", str(campaign), "--round", "1", "--wide"], env=WIDE).output
    assert "lcb" not in out and "ei" in out
    surface = pairs[0].split("|")[0]
    out = runner.invoke(app, ["history", str(campaign), "-s", surface], env=WIDE).output
    assert out.count(surface) >= 1
    result = runner.invoke(app, ["history", str(campaign), "-a", "nope/0"])
    assert result.exit_code == 1 and "no adsorbate 'nope/0'" in result.output


def test_export_formats(campaign, tmp_path):
    out_dir = tmp_path / "csv"
    result = runner.invoke(app, ["export", str(campaign), "--format", "csv", "--out", str(out_dir)])
    assert result.exit_code == 0, result.output
    assert (out_dir / "labels.csv").read_text().startswith("pair,surface,adsorbate,gmae_ev")
    assert "ranking.csv: 0 pairs ranked strongest first" in result.output
    db_path = tmp_path / "best.db"  # replay labels store no structure: said plainly, exit 1
    result = runner.invoke(app, ["export", str(campaign), "-f", "asedb", "-o", str(db_path)])
    assert result.exit_code == 1 and "no structures to export" in result.output
    assert not db_path.exists()


@pytest.mark.parametrize(
    "command",
    ["init", "status", "history", "export", "run", "resume", "dashboard", "show", "report", "pool"],
)
def test_every_command_has_help_with_an_example(command):
    result = runner.invoke(app, [command, "--help"], env=WIDE)
    assert result.exit_code == 0
    assert "Example: alloop " + command in result.output


def test_installed_console_script(tmp_path, fg_root):
    alloop = Path(sys.executable).parent / "alloop"
    assert alloop.exists(), "the alloop console script is not installed in this environment"
    cfg = write_fg_config(tmp_path / "c.yaml", fg_root, name="sub")
    done = subprocess.run(
        [str(alloop), "init", str(cfg)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sub.alloop").exists()
    done = subprocess.run(
        [str(alloop), "status", "sub.alloop"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0 and "8 pairs" in done.stdout
    done = subprocess.run(
        [str(alloop), "status", "missing.alloop"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "error: no campaign file at missing.alloop"
    done = subprocess.run([str(alloop), "stauts"], capture_output=True, text=True)
    assert done.returncode == 1 and "No such command 'stauts'" in done.stderr
    assert "Traceback" not in done.stderr


def test_show_and_dashboard_frame(campaign):
    with CampaignStore.open(campaign, write=True) as store:
        pairs = [p.key for p in store.pairs()]
        store.begin_round(0, "closed")
        store.record_acquisitions(0, [NewAcquisition(pairs[1], 0, 0.7, -0.4, 0.15, "lcb", "why")])
        store.set_round_state(0, "closed", metrics={"n_labels": 1, "best_gmae_ev": -0.9})
        store.add_label(pairs[1], NewLabel(-0.9, "ok", "replay", {"calculator": "table"}))
    result = runner.invoke(app, ["show", str(campaign), pairs[1]], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "lcb" in result.output and "-0.400" in result.output and "-0.900" in result.output
    assert "calculator" in result.output and "table" in result.output
    never = runner.invoke(app, ["show", str(campaign), pairs[2]], env=WIDE)
    assert "never acquired" in never.output and "no labels yet" in never.output
    bad = runner.invoke(app, ["show", str(campaign), "Xx|nope"], env=WIDE)
    assert bad.exit_code == 1 and "no pair 'Xx|nope'" in bad.output
    frame = runner.invoke(app, ["dashboard", str(campaign), "--once"], env=WIDE)
    assert frame.exit_code == 0, frame.output
    for text in ("rounds", "current batch (round 0)", "strongest binding", "escalations", "-0.900"):
        assert text in frame.output


def test_two_labels_are_a_cold_start_not_a_crash(tmp_path, fg_root):
    """Two labels cannot train (two rows to standardise on, one to validate): the round after
    a first batch of two is another cold start, and the campaign runs on."""
    cfg = write_fg_config(tmp_path / "two.yaml", fg_root, name="two")
    cfg.write_text(
        cfg.read_text()
        + "surrogate: {ensemble_size: 2, hidden_dim: 16, num_graph_layers: 1, max_epochs: 3}\n"
        + "acquisition: {batch_size: 2, initial_batch_size: 2}\nbudget: {max_rounds: 3}\n"
    )
    result = runner.invoke(app, ["run", str(cfg), "-c", str(tmp_path / "two.alloop"), "-q"])
    assert result.exit_code == 0, result.output
    with CampaignStore.open(tmp_path / "two.alloop") as store:
        trained = [r.index for r in store.rounds() if store.checkpoints(r.index)]
        assert len(store.rounds()) == 3 and trained == [2]  # rounds 0, 1 cold; 2 trains on 4


def test_export_neutralises_csv_formulas_by_default(campaign, tmp_path):
    with CampaignStore.open(campaign, write=True) as store:
        pair = store.pairs()[0].key
        store.begin_round(0, "closed")
        store.record_acquisitions(0, [NewAcquisition(pair, 0, -1.0, -0.5, 0.1, "lcb", "=1+1")])
    for flags, want in (([], "'=1+1"), (["--keep-formulas"], "=1+1")):
        out = tmp_path / f"export{len(flags)}"
        result = runner.invoke(app, ["export", str(campaign), "--out", str(out), *flags])
        assert result.exit_code == 0, result.output
        text = (out / "acquisitions.csv").read_text(encoding="utf-8")
        # the acquisition facts columns (none stored here) come before the reason
        assert text.splitlines()[1].endswith(f",-1.000000,-0.500000,0.100000,,,,,,,{want}")
