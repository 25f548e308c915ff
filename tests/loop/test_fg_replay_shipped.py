"""`configs/fg-replay.yaml` runs from the compact FG copy alone (what a fresh clone has)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from alloop.loop.face.cli import app
from alloop.oracles.fg_data import FG_ROOT_ENV, SHIPPED_FG_ROOT
from alloop.store import CampaignStore
from tests.conftest import REPO

runner = CliRunner()


def test_fg_replay_config_runs_a_round_from_the_shipped_copy(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(FG_ROOT_ENV, str(SHIPPED_FG_ROOT))
    text = (REPO / "configs" / "fg-replay.yaml").read_text()
    assert "max_rounds: 10" in text
    cfg = tmp_path / "fg.yaml"
    cfg.write_text(text.replace("max_rounds: 10", "max_rounds: 1"))  # the cold start only
    campaign = tmp_path / "fg.alloop"
    result = runner.invoke(app, ["run", str(cfg), "-c", str(campaign), "-q"])
    assert result.exit_code == 0, result.output
    with CampaignStore.open(campaign) as store:
        assert len(store.pairs()) == 14 * 207
        labels = store.labels()
    assert len(labels) == 50
    assert {(lab.status, lab.fidelity) for lab in labels} == {("ok", "replay")}
    # energies only: the compact copy has no adsorbed configurations to return
    assert all("best_structure" not in lab.provenance for lab in labels)
    assert all(lab.provenance["source"].startswith(str(SHIPPED_FG_ROOT)) for lab in labels)
