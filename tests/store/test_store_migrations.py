"""A campaign written by an older alloop opens, migrates and resumes: the file in
tests/data/schema_history/ was written at schema revision 0001 (before the acquisition facts were
columns) by the alloop of that time, from the config beside it."""

from __future__ import annotations

import gzip
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alloop.loop.face.cli import app
from alloop.store import CampaignStore, db
from alloop.store.errors import StoreError
from alloop.store.recover import recover_campaign

DATA = Path(__file__).resolve().parents[1] / "data" / "schema_history"
OLD = DATA / "schema0001_replay_ei.alloop.gz"
runner = CliRunner()


def old_campaign(directory: Path) -> Path:
    path = directory / "old.alloop"
    with gzip.open(OLD) as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def revision(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])
    finally:
        conn.close()


def test_the_old_file_is_refused_read_only_until_opened_for_writing(tmp_path):
    path = old_campaign(tmp_path)
    assert revision(path) == "0001" != db.head_revision()
    with pytest.raises(StoreError, match=r"older schema \(0001\); open it once for writing"):
        CampaignStore.open(path)
    shown = runner.invoke(app, ["history", str(path)])
    assert shown.exit_code == 1 and "alloop resume" in shown.output
    assert "Traceback" not in shown.output
    CampaignStore.open(path, write=True).close()  # migrates
    assert revision(path) == db.head_revision()
    with CampaignStore.open(path) as store:
        old_rows = store.acquisitions()
        assert len(old_rows) == 7 and len(store.labels()) == 7
    # what the old rows did not store stays unknown: nothing is read out of their reasons
    assert {(a.believer_sigma_ev, a.value, a.ei_ev, a.fidelity) for a in old_rows} == {
        (None, None, None, None)
    }
    assert any("sigma=" in a.reason for a in old_rows)
    wide = runner.invoke(app, ["history", str(path), "--wide"], env={"COLUMNS": "250"})
    assert wide.exit_code == 0, wide.output
    assert "log_ei=" in wide.output  # the old reasons are still shown, as text


def test_the_old_campaign_resumes_with_this_alloop(tmp_path):
    path = old_campaign(tmp_path)
    config = tmp_path / "more.yaml"
    text = (DATA / "schema0001_replay_ei.yaml").read_text()
    config.write_text(text.replace("max_rounds: 2", "max_rounds: 3"))  # budgets may change
    result = runner.invoke(app, ["run", str(config), "--campaign", str(path), "-q"])
    assert result.exit_code == 0, result.output
    with CampaignStore.open(path) as store:
        rounds = store.rounds()
        new = store.acquisitions(round_index=2)
        labels = store.labels()
    assert [r.state for r in rounds] == ["closed"] * 3
    assert len(new) == 3 and len(labels) == 10  # 4 + 3 before, 3 now: none lost, none twice
    assert len({lab.pair_key for lab in labels}) == 10
    assert all(a.fidelity == "replay" and a.value == a.score for a in new)
    assert all(a.believer_sigma_ev is not None for a in new)


def test_recovering_an_old_file_gives_one_at_this_schema(tmp_path):
    path = old_campaign(tmp_path)
    target = tmp_path / "recovered.alloop"
    report = recover_campaign(path, target)
    assert {t.table: t.lost for t in report.tables}["acquisition"] == 0
    assert revision(target) == db.head_revision()  # the copy is not migrated a second time
    CampaignStore.open(target, write=True).close()
    with CampaignStore.open(target) as store:
        assert len(store.acquisitions()) == 7
