"""The campaign lock, WAL concurrency and exactly-once ingestion, with real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from alloop.store import CampaignStore, JobState
from alloop.store.errors import CampaignLockedError, DuplicateResultError
from alloop.store.records import NewJob, NewLabel

HOLDER = textwrap.dedent(
    """
    import sys
    from alloop.store import CampaignStore
    from alloop.store.records import NewLabel
    store = CampaignStore.open(sys.argv[1], write=True)
    print("locked", flush=True)
    for line in sys.stdin:
        if line.strip() == "write":
            store.add_label("Pt(111)|CO", NewLabel(-2.0, "ok", "replay"))
            print("written", flush=True)
    """
)


def _start_holder(path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_is_refused_with_holder_pid_and_host(make_store, tmp_path):
    path = tmp_path / "t.alloop"
    make_store().close()
    proc = _start_holder(path)
    try:
        with pytest.raises(CampaignLockedError) as info:
            CampaignStore.open(path, write=True)
        assert f"PID {proc.pid}" in str(info.value)
        assert socket.gethostname() in str(info.value)

        # WAL: a reader in this process sees the other process's committed write, while it
        # still holds the lock
        with CampaignStore.open(path) as reader:
            assert reader.labels() == []
            proc.stdin.write("write\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "written"
            assert [lab.gmae_ev for lab in reader.labels()] == [-2.0]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # SIGKILL frees the lock: the kernel drops the holder's flock
    with CampaignStore.open(path, write=True) as store:
        assert [lab.gmae_ev for lab in store.labels()] == [-2.0]


RESULT_SENDER = textwrap.dedent(
    """
    import sys
    from alloop.store import CampaignStore
    from alloop.store.errors import DuplicateResultError
    from alloop.store.records import NewLabel
    with CampaignStore.open(sys.argv[1], write=True) as store:
        try:
            store.complete_job("job-1", NewLabel(-1.0, "ok", "mlip", {"sender": sys.argv[2]}))
            print("recorded")
        except DuplicateResultError as exc:
            print("refused:", exc)
    """
)


def test_duplicated_result_is_ingested_once(any_store):
    store = any_store()
    path = store.target.url
    store.propose_jobs(None, [NewJob("job-1", "Pt(111)|CO", "mlip")])
    store.transition_job("job-1", JobState.SUBMITTED)
    store.transition_job("job-1", JobState.RUNNING)
    store.close()

    outputs = []
    for sender in ("first", "second"):  # e.g. a resumed run re-sending a result
        done = subprocess.run(
            [sys.executable, "-c", RESULT_SENDER, path, sender],
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(done.stdout.strip())
    assert outputs[0] == "recorded"
    assert outputs[1].startswith("refused: job 'job-1' already has a recorded result")

    with CampaignStore.open(path, write=True) as store:
        labels = store.labels()
        assert len(labels) == 1 and labels[0].provenance == {"sender": "first"}
        with pytest.raises(DuplicateResultError):
            store.complete_job("job-1", NewLabel(-1.0, "ok", "mlip"))
        assert len(store.labels()) == 1


def test_job_state_machine(any_store):
    from alloop.store.errors import JobStateError

    store = any_store()
    store.propose_jobs(None, [NewJob("j", "Cu(111)|CO", "mlip")])
    with pytest.raises(JobStateError, match="PROPOSED -> RUNNING.*allowed: ABANDONED, SUBMITTED"):
        store.transition_job("j", JobState.RUNNING)
    with pytest.raises(JobStateError, match="PROPOSED -> DONE"):
        store.complete_job("j", NewLabel(-1.0, "ok", "mlip"))
    store.transition_job("j", JobState.SUBMITTED)
    store.transition_job("j", JobState.RUNNING)
    # a job running when its process died is re-queued: a new attempt
    requeued = store.transition_job("j", JobState.SUBMITTED)
    assert requeued.attempts == 2
    store.transition_job("j", JobState.RUNNING)
    store.transition_job("j", JobState.FAILED, error="worker died")
    assert store.jobs(JobState.FAILED)[0].error == "worker died"
    store.transition_job("j", JobState.ABANDONED)
    with pytest.raises(JobStateError, match="ABANDONED -> SUBMITTED \\(allowed: none\\)"):
        store.transition_job("j", JobState.SUBMITTED)
    assert store.labels() == []
