"""A replay campaign on a real PostgreSQL server (`tests.pg`): killed with SIGKILL mid-run and
resumed, while the dashboard's reader reads it; it ends where an uninterrupted run on SQLite
ends, and every read saw a consistent campaign."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from alloop.loop.face.dashboard import snapshot
from tests.loop.agent.test_run_resume import ALLOOP, ONE_THREAD, canonical_state, tiny_config

#: one statement, so one snapshot of the database: a job is DONE exactly when its label exists
#: (one transaction), and a batch's acquisitions come with their jobs (one transaction)
CONSISTENCY = text(
    "SELECT (SELECT count(*) FROM job WHERE state = 'DONE'),"
    " (SELECT count(*) FROM label WHERE job_id IS NOT NULL),"
    " (SELECT count(*) FROM acquisition), (SELECT count(*) FROM job),"
    " (SELECT count(*) FROM event) + (SELECT count(*) FROM label)"
)


class Reader(threading.Thread):
    """Reads the campaign over and over, as `alloop dashboard` does, until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.reads = 0
        self.snapshots = 0
        self.problems: list[str] = []
        self.labels_seen: list[int] = []

    def run(self) -> None:
        engine = create_engine(self.url)
        try:
            while not self.stop.is_set():
                with engine.connect() as conn:
                    row = conn.execute(CONSISTENCY).one()
                done, labelled, acquired, jobs, _ = row
                if done != labelled or acquired != jobs:
                    self.problems.append(f"inconsistent read: {tuple(row)}")
                self.labels_seen.append(labelled)
                self.reads += 1
                if self.reads % 10 == 0 and acquired:  # the dashboard's own read, now and then
                    try:
                        snap = snapshot(self.url)
                        if snap.status.n_pairs != 16:
                            self.problems.append(f"pool of {snap.status.n_pairs} pairs")
                        self.snapshots += 1
                    except Exception as exc:  # noqa: BLE001 - recorded, the test fails on it
                        self.problems.append(f"snapshot failed: {exc!r}")
                time.sleep(0.05)
        finally:
            engine.dispose()


def progress(url: str) -> int:
    """Events + labels committed so far (both append-only); 0 before the schema exists."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(CONSISTENCY).one()[4])
    except Exception:  # noqa: BLE001 - the campaign is still being created
        return 0
    finally:
        engine.dispose()


def test_killed_replay_campaign_resumes_on_postgres_under_a_reader(pg_url, tmp_path: Path):
    cfg = tiny_config(tmp_path / "tiny.yaml", rounds=2)
    reference = tmp_path / "reference.alloop"
    subprocess.run([ALLOOP, "run", str(cfg), "-c", str(reference), "-q"], check=True,
                   capture_output=True, timeout=300, env=ONE_THREAD)  # fmt: skip
    total = progress(f"sqlite:///{reference}")
    assert total > 6

    run = [ALLOOP, "run", str(cfg), "-c", pg_url, "-q"]
    log = tmp_path / "killed-run.err"
    with open(log, "w") as err:
        proc = subprocess.Popen(run, env=ONE_THREAD, stdout=subprocess.DEVNULL, stderr=err)
    while proc.poll() is None and progress(pg_url) < total // 2:
        time.sleep(0.02)
    reader = Reader(pg_url)
    reader.start()
    killed_at = None
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = progress(pg_url)
    proc.wait()
    assert killed_at is not None and killed_at < total, f"it ended first: {log.read_text()}"
    try:
        # the PostgreSQL advisory lock went with the killed session: resume at once
        final = subprocess.run([ALLOOP, "resume", pg_url, "-q"], env=ONE_THREAD,
                               capture_output=True, text=True, timeout=300)  # fmt: skip
    finally:
        reader.stop.set()
        reader.join(timeout=30)
    assert final.returncode == 0, final.stderr
    assert reader.problems == []
    assert reader.reads > 10 and reader.snapshots > 0
    assert reader.labels_seen == sorted(reader.labels_seen)  # committed labels never vanish
    assert reader.labels_seen[-1] > reader.labels_seen[0]  # and it saw the run write
    assert canonical_state(pg_url) == canonical_state(reference)
