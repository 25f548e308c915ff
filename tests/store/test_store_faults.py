"""Damaged, read-only and full campaign files: one-line StoreErrors, nothing written, litter and
locks handled; on real files (pages corrupted on purpose, real read-only and full tmpfs mounts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alloop.store import CampaignStore
from alloop.store.errors import (
    CampaignDamagedError,
    CampaignLockedError,
    CampaignReadOnlyError,
    StorageFullError,
    StoreError,
)
from alloop.store.integrity import check_campaign
from alloop.store.lock import refuse_if_locked, remove_stale_temp_files, temp_path_for
from alloop.store.records import NewLabel
from tests.conftest import file_digest
from tests.damage import corrupt_page, read_only_dir, small_fs, table_pages


@pytest.fixture
def labelled(make_store) -> Path:
    """A closed campaign whose label table spans several pages (padded provenance)."""
    store = make_store("faults")
    for i, pair in enumerate(store.pairs()):
        store.add_label(pair.key, NewLabel(-0.1 * i, "ok", "replay", {"pad": "x" * 3000}))
    path = store.target.path
    store.close()
    assert path is not None and len(table_pages(path, "label")) > 2
    return path


def test_damaged_table_is_one_line_naming_the_file(labelled):
    corrupt_page(labelled, "label", which=0)  # the label table's root page
    with CampaignStore.open(labelled) as store:
        assert len(store.pairs()) == 6  # other tables still read
        with pytest.raises(CampaignDamagedError, match=rf"{labelled.name} is damaged .*alloop"):
            store.labels()


def test_open_for_writing_refuses_a_damaged_file_and_leaves_it_untouched(labelled):
    corrupt_page(labelled, "label", which=1)  # a leaf: reads of other pages still work
    before = file_digest(labelled)
    with pytest.raises(CampaignDamagedError, match="is damaged"):
        CampaignStore.open(labelled, write=True)
    assert file_digest(labelled) == before
    with CampaignStore.open(labelled) as store:  # read-only opening still works
        assert store.campaign().name == "faults"


def test_check_reports_the_damaged_table_and_what_is_readable(labelled):
    assert check_campaign(labelled).intact
    corrupt_page(labelled, "label", which=0)
    report = check_campaign(labelled)
    assert not report.intact and report.problems
    health = {t.table: t for t in report.tables}
    assert health["label"].error is not None
    assert health["pair"].error is None and health["pair"].rows == 6


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    final = tmp_path / "c.alloop"
    stale = temp_path_for(final, int(dead.stdout))
    live = temp_path_for(final, os.getppid())
    made = [stale, Path(f"{stale}-wal"), Path(f"{stale}-shm"), live]
    for p in made:
        p.write_bytes(b"x")
    removed = remove_stale_temp_files(final)
    assert sorted(removed) == sorted(made[:3])
    assert live.exists() and not any(p.exists() for p in made[:3])


def test_create_removes_litter_of_a_killed_creation(tmp_path, tiny_surfaces, tiny_adsorbates):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    final = tmp_path / "c.alloop"
    stale = temp_path_for(final, int(dead.stdout))
    stale.write_bytes(b"half a campaign")
    with CampaignStore.create(final, name="c", config={}, seed=1, surfaces=tiny_surfaces,
                              adsorbates=tiny_adsorbates):  # fmt: skip
        pass
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.alloop", "c.alloop.lock"]


def test_lock_probe_refuses_without_taking_the_lock(make_store):
    store = make_store("locked")
    assert store.target.path is not None
    with pytest.raises(CampaignLockedError, match=rf"locked by PID {os.getpid()}"):
        refuse_if_locked(store.target.path)
    store.close()
    refuse_if_locked(store.target.path)  # free now: no error
    CampaignStore.open(store.target.path, write=True).close()


def test_read_only_campaign_is_refused_before_any_work(labelled, tmp_path):
    with read_only_dir(tmp_path / "ro", [labelled]) as ro:
        path = ro / labelled.name
        with pytest.raises(CampaignReadOnlyError, match=rf"{path} is read-only"):
            CampaignStore.open(path, write=True)
        with CampaignStore.open(path) as store:  # reading works
            assert len(store.labels()) == 6


def test_create_on_a_full_file_system_leaves_nothing(tmp_path, tiny_surfaces, tiny_adsorbates):
    with small_fs(tmp_path / "full", "64k") as fs:
        with pytest.raises(StorageFullError, match=r"c.alloop: the disk is full"):
            CampaignStore.create(
                fs / "c.alloop",
                name="c",
                config={"pad": "x" * 200_000},
                seed=1,
                surfaces=tiny_surfaces,
                adsorbates=tiny_adsorbates,
            )
        assert list(fs.iterdir()) == []


def test_write_on_a_full_file_system_keeps_what_was_committed(labelled, tmp_path):
    with small_fs(tmp_path / "full", "2m") as fs:
        path = fs / labelled.name
        path.write_bytes(labelled.read_bytes())
        with CampaignStore.open(path, write=True) as store:
            pair = store.pairs()[0].key
            with pytest.raises(StorageFullError, match="the disk is full"):
                for _ in range(2000):
                    store.add_label(pair, NewLabel(-1.0, "ok", "replay", {"pad": "y" * 4000}))
            n_labels = len(store.labels())
        assert check_campaign(path).intact
        with CampaignStore.open(path) as store:
            assert len(store.labels()) == n_labels


def test_checkpoint_and_round_state_commit_together(make_store):
    store = make_store("ckpt")
    store.begin_round(0, "started")
    store.save_checkpoint(0, 0, b"weights", {}, state="trained", metrics={"val_mae_ev": 0.1})
    (rnd,) = store.rounds()
    assert (rnd.state, rnd.metrics) == ("trained", {"val_mae_ev": 0.1})
    with pytest.raises(StoreError, match="already has a checkpoint"):  # the whole tx rolls back
        store.save_checkpoint(0, 0, b"other", {}, state="acquired", metrics={"x": 1})
    (rnd,) = store.rounds()
    assert rnd.state == "trained" and "x" not in rnd.metrics


def test_damaged_checkpoint_page_refuses_writing(make_store):
    store = make_store("ckpage")
    store.begin_round(0, "started")
    store.save_checkpoint(0, 0, os.urandom(200_000), {})
    path = store.target.path
    store.close()
    assert path is not None
    pages = table_pages(path, "model_checkpoint")
    corrupt_page(path, "model_checkpoint", which=len(pages) // 2)  # an overflow page of the blob
    before = file_digest(path)
    with pytest.raises(CampaignDamagedError, match="integrity check"):
        CampaignStore.open(path, write=True)
    assert file_digest(path) == before
