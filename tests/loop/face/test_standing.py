"""Where a campaign stands (`alloop.loop.face.standing`): `status` and the dashboard say
finished / running / interrupted, why a run stopped and the budget used against the allowed;
a run whose every label failed exits non-zero naming the cause; keys a campaign does not
have are refused with close matches."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alloop.loop.agent.events import STOPPED_EVENT
from alloop.loop.face.cli import app
from alloop.loop.face.standing import all_labels_failed, lock_holder, standing_of
from alloop.store import CampaignStore
from alloop.store.lock import FileLock
from alloop.store.records import NewLabel
from tests.conftest import FG_ROOT, replay_config

runner = CliRunner()
WIDE = {"COLUMNS": "200", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A replay campaign run to its stop rule (two rounds)."""
    root = tmp_path_factory.mktemp("standing")
    cfg = replay_config(root / "c.yaml")
    result = runner.invoke(app, ["run", str(cfg), "-c", str(root / "c.alloop"), "-q"], env=WIDE)
    assert result.exit_code == 0, result.output
    return root / "c.alloop"


def test_status_says_finished_why_and_the_budget_used(finished):
    out = runner.invoke(app, ["status", str(finished)], env=WIDE).output
    assert "finished — MAX_ROUNDS: 2 rounds completed of 2" in out
    assert "cost 700 of 5,000 units · labels 7 (no limit) · rounds 2 of 2" in out
    frame = runner.invoke(app, ["dashboard", str(finished), "--once"], env=WIDE).output
    assert "finished — MAX_ROUNDS" in frame and "rounds 2 of 2" in frame


def test_a_run_of_a_finished_campaign_stores_its_stop_once(finished, tmp_path):
    with CampaignStore.open(finished) as store:
        before = [e.payload for e in store.events() if e.kind == STOPPED_EVENT]
    again = runner.invoke(app, ["resume", str(finished), "-q"], env=WIDE)
    assert again.exit_code == 0, again.output
    with CampaignStore.open(finished) as store:
        after = [e.payload for e in store.events() if e.kind == STOPPED_EVENT]
    assert (
        before
        == after
        == [{"reason": "MAX_ROUNDS", "detail": "2 rounds completed of 2", "rounds": 2}]
    )


def test_status_says_running_while_another_process_holds_the_lock(finished):
    lock = FileLock(finished)
    lock.acquire()
    try:
        assert lock_holder(str(finished)) is not None
        out = runner.invoke(app, ["status", str(finished)], env=WIDE).output
        assert "running — driven by PID" in out
    finally:
        lock.release()
    assert lock_holder(str(finished)) is None


def test_standing_before_a_round_and_after_an_interruption(tmp_path):
    cfg = replay_config(tmp_path / "c.yaml")
    target = tmp_path / "c.alloop"
    assert runner.invoke(app, ["init", str(cfg), "-c", str(target)]).exit_code == 0
    with CampaignStore.open(target, write=True) as store:
        assert standing_of(store).state == "not started"
        store.begin_round(0, "started")
        standing = standing_of(store)
        assert (standing.state, standing.detail) == (
            "interrupted", "at round 0, step started; `alloop resume` continues it",
        )  # fmt: skip
        assert [(b.what, b.used, b.allowed) for b in standing.budget] == [
            ("cost", 0.0, 5000.0), ("labels", 0, None), ("rounds", 0, 2),
        ]  # fmt: skip


def test_all_labels_failed_names_the_commonest_kind(tmp_path):
    cfg = replay_config(tmp_path / "c.yaml")
    target = tmp_path / "c.alloop"
    assert runner.invoke(app, ["init", str(cfg), "-c", str(target)]).exit_code == 0
    with CampaignStore.open(target, write=True) as store:
        pairs = [p.key for p in store.pairs()]
        assert all_labels_failed(store) is None  # no labels: nothing failed yet
        for key, kind in zip(pairs[:3], ("unknown_pair", "unknown_pair", "timeout"), strict=True):
            prov = {"failure_kind": kind, "error": f"{kind}: no row for {key}"}
            store.add_label(key, NewLabel(None, "failed", "replay", prov))
        text = all_labels_failed(store)
        assert text is not None and text.startswith("3 labels, all failed: unknown_pair (2×)")
        assert "(other kinds: timeout)" in text and f"no row for {pairs[0]}" in text
        store.add_label(pairs[3], NewLabel(-0.5, "ok", "replay"))
        assert all_labels_failed(store) is None


def test_a_run_whose_every_label_failed_exits_non_zero_with_the_cause(tmp_path, monkeypatch):
    # made while the FG table held the pool; run after it changed under the campaign (the
    # replay oracle reads $ALLOOP_FG_ROOT, which now holds one unrelated row)
    monkeypatch.setenv("ALLOOP_FG_ROOT", str(FG_ROOT))
    cfg = replay_config(tmp_path / "c.yaml", root=None)
    target = tmp_path / "c.alloop"
    assert runner.invoke(app, ["init", str(cfg), "-c", str(target)]).exit_code == 0
    other = tmp_path / "other-fg"
    other.mkdir()
    with open(FG_ROOT / "fg_gmae_derived.csv", newline="") as src:
        rows = list(csv.reader(src))
    keep = [rows[0], next(r for r in rows[1:] if r[0] not in ("Pt", "Au"))]
    with open(other / "fg_gmae_derived.csv", "w", newline="") as dst:
        csv.writer(dst).writerows(keep)
    monkeypatch.setenv("ALLOOP_FG_ROOT", str(other))
    result = runner.invoke(app, ["run", str(cfg), "-c", str(target), "-q"], env=WIDE)
    assert result.exit_code == 1, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error: ") and "labels, all failed: unknown_pair" in line
    assert "is not in the FG table" in line
    out = runner.invoke(app, ["status", str(target)], env=WIDE).output
    assert "all failed: unknown_pair" in out


def test_keys_the_campaign_lacks_are_refused_with_close_matches(finished):
    with CampaignStore.open(finished) as store:
        pair = store.pairs()[0].key
    result = runner.invoke(app, ["show", str(finished), pair.lower()], env=WIDE)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"no pair {pair.lower()!r} in this campaign (did you mean {pair!r}" in text
    assert "(+11 more)" in text  # 16 pairs: five listed, the count of the rest
    result = runner.invoke(app, ["history", str(finished), "-s", "au"], env=WIDE)
    assert result.exit_code == 1
    assert "no surface 'au' in this campaign (did you mean 'Au'?); valid: 'Au', 'Pt'" in " ".join(
        result.output.split()
    )
    result = runner.invoke(app, ["history", str(finished), "-r", "7"], env=WIDE)
    assert "no round 7 in this campaign (it has rounds 0 to 1)" in result.output
