"""Damaged, read-only and full campaign files through every command; check, recover, restore;
signals and the fast lock refusal. Real files throughout: pages corrupted on purpose, real
read-only and full tmpfs mounts (root only, skipped otherwise), real signals to a real run."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alloop.loop.face.cli import app
from alloop.store.integrity import check_campaign
from tests.conftest import FG_ROOT, file_digest
from tests.damage import corrupt_page, read_only_dir, resize_fs, small_fs

ALLOOP = str(Path(sys.executable).parent / "alloop")
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300"}
runner = CliRunner()
WIDE = {"COLUMNS": "300"}


def tiny_config(path: Path, rounds: int, molecules: int = 8, executor: str = "inprocess") -> Path:
    path.write_text(
        "campaign: {name: tiny, seed: 5}\n"
        f"pool:\n  fg: {{root: {FG_ROOT}, metals: [Pt, Au], max_molecules: {molecules}}}\n"
        "oracle: {kind: replay}\n"
        "surrogate: {ensemble_size: 2, hidden_dim: 16, num_graph_layers: 1, max_epochs: 4,\n"
        "            early_stop_patience: 2, batch_size: 16}\n"
        "acquisition: {name: lcb, batch_size: 3, initial_batch_size: 4}\n"
        f"budget: {{max_rounds: {rounds}}}\n"
        f"executor: {{kind: {executor}, workers: 2}}\n"
    )
    return path


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Path:
    """A replay campaign after two closed rounds (labels, jobs, acquisitions, a checkpoint)."""
    root = tmp_path_factory.mktemp("ran")
    cfg = tiny_config(root / "two.yaml", rounds=2)
    result = runner.invoke(app, ["run", str(cfg), "-c", str(root / "ran.alloop"), "-q"])
    assert result.exit_code == 0, result.output
    return root / "ran.alloop"


@pytest.fixture
def copy_of(ran, tmp_path):
    def make(name: str = "c.alloop") -> Path:
        shutil.copy(ran, tmp_path / name)
        return tmp_path / name

    return make


def one_red_line(result, fragment: str) -> str:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert fragment in lines[0], lines[0]
    return lines[0]


COMMANDS = [
    ["status", "{c}"],
    ["history", "{c}"],
    ["show", "{c}", "{pair}"],
    ["export", "{c}", "-f", "csv", "-o", "{tmp}/csv"],
    ["export", "{c}", "-f", "asedb", "-o", "{tmp}/best.db"],
    ["dashboard", "{c}", "--once"],
    ["resume", "{c}", "-q"],
    ["run", "{tmp}/three.yaml", "-c", "{c}", "-q"],
]


@pytest.mark.parametrize("table", ["label", "acquisition"])
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: "-".join(a[:2]))
def test_every_command_on_a_damaged_campaign_is_one_line(copy_of, tmp_path, table, argv):
    campaign = copy_of()
    tiny_config(tmp_path / "three.yaml", rounds=3)
    (tmp_path / "csv").mkdir()
    with sqlite3.connect(campaign) as conn:
        (pair,) = conn.execute("SELECT key FROM pair ORDER BY id LIMIT 1").fetchone()
    corrupt_page(campaign, table, which=0)
    before = file_digest(campaign)
    args = [a.format(c=campaign, tmp=tmp_path, pair=pair) for a in argv]
    result = runner.invoke(app, args, env=WIDE)
    if result.exit_code == 0:  # a command that never reads the damaged table
        assert table == "acquisition" and argv[0] in ("status", "export", "dashboard")
    elif table == "acquisition" and "asedb" in argv:  # replay labels store no structure
        one_red_line(result, "no structures to export")
    else:
        line = one_red_line(result, f"{campaign} is damaged")
        assert f"alloop check {campaign}" in line
    assert file_digest(campaign) == before  # nothing was written to a damaged file


def test_check_recover_and_resume_end_to_end(copy_of, tmp_path):
    campaign = copy_of()
    assert runner.invoke(app, ["check", str(campaign)], env=WIDE).exit_code == 0
    corrupt_page(campaign, "label", which=0)
    checked = runner.invoke(app, ["check", str(campaign)], env=WIDE)
    assert checked.exit_code == 1 and "damaged" in checked.output
    assert "label" in checked.output and "readable" in checked.output
    new = tmp_path / "new.alloop"
    recovered = runner.invoke(app, ["recover", str(campaign), "--out", str(new)], env=WIDE)
    assert recovered.exit_code == 0, recovered.output
    assert f"alloop resume {new}" in recovered.output
    assert check_campaign(new).intact
    cfg = tiny_config(tmp_path / "three.yaml", rounds=3)
    env = {**WIDE, "OMP_NUM_THREADS": "1"}
    resumed = runner.invoke(app, ["run", str(cfg), "-c", str(new), "-q"], env=env)
    assert resumed.exit_code == 0, resumed.output
    conn = sqlite3.connect(new)
    rounds = conn.execute('SELECT "index", state FROM round ORDER BY "index"').fetchall()
    labels = conn.execute("SELECT count(*) FROM label").fetchone()[0]
    conn.close()
    assert rounds[-1] == (2, "closed") and labels >= 3  # round 2 labelled again what was lost


def test_recover_keeps_labels_whose_jobs_were_lost(copy_of, tmp_path):
    campaign = copy_of()
    with sqlite3.connect(campaign) as conn:
        n_labels = conn.execute("SELECT count(*) FROM label").fetchone()[0]
    corrupt_page(campaign, "job", which=0)
    new = tmp_path / "new.alloop"
    result = runner.invoke(app, ["recover", str(campaign), "-o", str(new)], env=WIDE)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(new) as conn:
        kept = conn.execute("SELECT count(*), count(job_id) FROM label").fetchone()
    assert kept == (n_labels, 0)


def test_recover_refuses_to_overwrite(copy_of, tmp_path):
    campaign = copy_of()
    other = copy_of("other.alloop")
    before = file_digest(other)
    result = runner.invoke(app, ["recover", str(campaign), "-o", str(other)], env=WIDE)
    one_red_line(result, "exists already")
    assert file_digest(other) == before


def test_read_only_campaign(copy_of, tmp_path):
    campaign = copy_of()
    with read_only_dir(tmp_path / "ro", [campaign]) as ro:
        path = ro / campaign.name
        one_red_line(runner.invoke(app, ["resume", str(path), "-q"], env=WIDE), "is read-only")
        assert runner.invoke(app, ["status", str(path)], env=WIDE).exit_code == 0
        result = runner.invoke(
            app, ["export", str(campaign), "-f", "asedb", "-o", str(ro / "best.db")], env=WIDE
        )
        one_red_line(result, "is read-only")
        cfg = tiny_config(tmp_path / "c.yaml", rounds=1)
        result = runner.invoke(app, ["init", str(cfg), "-c", str(ro / "new.alloop")], env=WIDE)
        one_red_line(result, f"{ro / 'new.alloop'} is read-only")


def test_init_on_a_full_disk_leaves_nothing(tmp_path):
    cfg = tiny_config(tmp_path / "c.yaml", rounds=1, molecules=40)
    with small_fs(tmp_path / "full", "96k") as fs:
        result = runner.invoke(app, ["init", str(cfg), "-c", str(fs / "c.alloop")], env=WIDE)
        one_red_line(result, "the disk is full")
        assert list(fs.iterdir()) == []


def test_full_disk_during_a_run_then_resume(copy_of, tmp_path):
    campaign = copy_of()
    cfg = tiny_config(tmp_path / "four.yaml", rounds=4)
    size_kb = campaign.stat().st_size // 1024
    env = {**WIDE, "OMP_NUM_THREADS": "1"}
    with small_fs(tmp_path / "full", f"{size_kb + 200}k") as fs:
        path = fs / campaign.name
        shutil.copy(campaign, path)
        result = runner.invoke(app, ["run", str(cfg), "-c", str(path), "-q"], env=env)
        one_red_line(result, "the disk is full")
        resize_fs(fs, "64m")
        assert check_campaign(path).intact
        resumed = runner.invoke(app, ["run", str(cfg), "-c", str(path), "-q"], env=env)
        assert resumed.exit_code == 0, resumed.output
        with sqlite3.connect(path) as conn:
            last = conn.execute('SELECT max("index") FROM round').fetchone()[0]
        assert last == 3


def _wait_for_closed_round(path: Path, proc: subprocess.Popen[str]) -> None:
    for _ in range(1200):  # a readiness poll, not a timing assertion
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.communicate()}")
        if path.exists():
            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                    n = conn.execute("SELECT count(*) FROM round WHERE state='closed'").fetchone()
                if n[0] >= 1:
                    return
            except sqlite3.Error:
                pass
        time.sleep(0.1)
    pytest.fail("no round closed")


@pytest.mark.parametrize(
    ("signum", "code", "executor"),
    [(signal.SIGTERM, 143, "inprocess"), (signal.SIGINT, 130, "inprocess"),
     (signal.SIGINT, 130, "process")],
    ids=["sigterm", "sigint", "ctrl-c-to-the-group-with-worker-processes"],
)  # fmt: skip
def test_signal_prints_where_it_stopped_and_exits_non_zero(tmp_path, signum, code, executor):
    cfg = tiny_config(tmp_path / "long.yaml", rounds=60, molecules=60, executor=executor)
    path = tmp_path / "long.alloop"
    proc = subprocess.Popen(
        [ALLOOP, "run", str(cfg), "-c", str(path), "-q"], start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ONE_THREAD,
    )  # fmt: skip
    _wait_for_closed_round(path, proc)
    os.killpg(proc.pid, signum)  # as a terminal does: the run and its workers, if any
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, out + err
    lines = [ln for ln in (out + err).splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    said = re.fullmatch(
        r"interrupted (at round \d+, step \w+|after round \d+ closed); continue with: "
        r"alloop resume (.+)",
        lines[0],
    )
    assert said is not None and said.group(2) == str(path), lines[0]
    assert check_campaign(path).intact


HOLDER = (
    "import sys\n"
    "from alloop.store import CampaignStore\n"
    "store = CampaignStore.open(sys.argv[1], write=True)\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_a_second_run_is_refused_before_the_heavy_imports(copy_of, tmp_path):
    campaign = copy_of()
    cfg = tiny_config(tmp_path / "three.yaml", rounds=3)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(campaign)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for argv in (["resume", str(campaign)], ["run", str(cfg), "-c", str(campaign)]):
            done = subprocess.run(
                [sys.executable, "-X", "importtime", ALLOOP, *argv],
                capture_output=True, text=True, env=ONE_THREAD, timeout=120,
            )  # fmt: skip
            assert done.returncode == 1
            said = [ln for ln in done.stderr.splitlines() if not ln.startswith("import time:")]
            assert len(said) == 1 and f"locked by PID {holder.pid}" in said[0], said
            imported = {ln.split("|")[-1].strip() for ln in done.stderr.splitlines()
                        if ln.startswith("import time:")}  # fmt: skip
            assert "alloop.store.lock" in imported
            assert not imported & {"torch", "ase", "alloop.loop.face.cli", "alloop.store.models"}
    finally:
        holder.communicate("")


def _rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def test_backups_are_written_kept_and_restored(ran, tmp_path):
    backups = sorted(ran.parent.glob("ran.alloop.backup-r*"))
    assert [b.name[-6:] for b in backups] == ["r00000", "r00001"]  # every round, newest 2 kept
    assert all(check_campaign(b).intact for b in backups)
    assert _rows(ran, "SELECT count(*) FROM event WHERE kind = 'backup_written'") == [(2,)]
    campaign = tmp_path / "ran.alloop"
    for f in [ran, *backups]:
        shutil.copy(f, tmp_path / f.name)
    n_labels = _rows(campaign, "SELECT count(*) FROM label")
    corrupt_page(campaign, "label", which=0)
    damaged = file_digest(campaign)
    result = runner.invoke(app, ["restore", str(campaign)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "r00001" in result.output and f"alloop resume {campaign}" in result.output
    assert check_campaign(campaign).intact
    assert _rows(campaign, "SELECT count(*) FROM label") == n_labels
    (kept,) = [
        p for p in tmp_path.glob("ran.alloop.damaged-*") if p.name[-4:] not in ("-wal", "-shm")
    ]
    assert file_digest(kept) == damaged
    cfg = tiny_config(tmp_path / "three.yaml", rounds=3)
    env = {**WIDE, "OMP_NUM_THREADS": "1"}
    resumed = runner.invoke(app, ["run", str(cfg), "-c", str(campaign), "-q"], env=env)
    assert resumed.exit_code == 0, resumed.output
    assert [b.name[-6:] for b in sorted(tmp_path.glob("ran.alloop.backup-r*"))] == [
        "r00001",
        "r00002",
    ]


def test_restore_without_backups_is_one_line(copy_of):
    campaign = copy_of()
    before = file_digest(campaign)
    one_red_line(runner.invoke(app, ["restore", str(campaign)], env=WIDE), "no backups of")
    assert file_digest(campaign) == before


@pytest.mark.parametrize("damage", ["flipped-bytes", "missing"])
def test_damaged_or_missing_checkpoint_is_retrained(copy_of, tmp_path, damage):
    campaign = copy_of()
    ((round_index, blob),) = _rows(
        campaign,
        'SELECT r."index", c.blob FROM model_checkpoint c JOIN round r ON r.id = c.round_id',
    )
    with sqlite3.connect(campaign) as conn:
        if damage == "missing":
            conn.execute("DELETE FROM model_checkpoint")
        else:  # bytes changed inside an intact page: only the sha256 can tell
            conn.execute("UPDATE model_checkpoint SET blob = ?", (bytes(b ^ 0xFF for b in blob),))
    cfg = tiny_config(tmp_path / "three.yaml", rounds=3)
    env = {**WIDE, "OMP_NUM_THREADS": "1"}
    result = runner.invoke(app, ["run", str(cfg), "-c", str(campaign)], env=env)
    assert result.exit_code == 0, result.output
    ((metrics,),) = _rows(campaign, 'SELECT metrics FROM round WHERE "index" = 2')
    assert '"warm_started": false' in metrics
    dropped = _rows(campaign, "SELECT round_index FROM event WHERE kind = 'checkpoint_dropped'")
    if damage == "missing":
        assert dropped == []
    else:
        assert dropped == [(round_index,)]
        assert "is corrupt; retraining round" in result.output
