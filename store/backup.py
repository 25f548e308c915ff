"""Backups of a campaign beside it, and restoring one.

A backup is a consistent copy written with SQLite's online backup API (`sqlite3.Connection.
backup`), so it can be taken while the campaign is open: `NAME.backup-r00004` holds the campaign
as it was when round 4 closed. The engine writes one every `backup.every_rounds` rounds and keeps
the last `backup.keep` (config section `backup`). `restore_campaign` puts the newest intact
backup (or a chosen one) in place of a damaged campaign, keeping the damaged file beside it as
`NAME.damaged-<UTC time>`, so nothing is thrown away.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
from pathlib import Path

from alloop.store import db
from alloop.store.errors import StoreError
from alloop.store.faults import faults_as_store_errors
from alloop.store.lock import FileLock, temp_path_for
from alloop.store.types import utcnow

_BACKUP = re.compile(r"\.backup-r(\d+)$")


def backup_path(db_path: Path, round_index: int) -> Path:
    return db_path.with_name(f"{db_path.name}.backup-r{round_index:05d}")


def backups(db_path: Path) -> list[Path]:
    """The backups of `db_path`, oldest round first."""
    found = []
    prefix = f"{db_path.name}.backup-r"
    for entry in db_path.parent.glob(f"{glob_escape(prefix)}*"):
        match = _BACKUP.search(entry.name)
        if match and entry.name == f"{db_path.name}{match.group(0)}":
            found.append((int(match.group(1)), entry))
    return [p for _, p in sorted(found)]


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def write_backup(db_path: Path, round_index: int, keep: int) -> Path:
    """Copy campaign `db_path` (committed state) to its backup for `round_index`, then remove
    all but the newest `keep` backups. Written to a temporary name and renamed into place, so
    a backup file is always whole."""
    final = backup_path(db_path, round_index)
    tmp = temp_path_for(final)
    with faults_as_store_errors(str(final)):
        try:
            with db.read_only_sqlite(db_path) as src:
                dst = sqlite3.connect(tmp)
                try:
                    src.backup(dst)
                    dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
                finally:
                    dst.close()
            os.replace(tmp, final)
        finally:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    for old in backups(db_path)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return final


def restore_campaign(db_path: Path, source: Path | None = None) -> tuple[Path, Path | None]:
    """Replace campaign `db_path` by backup `source` (default: the newest one that passes
    SQLite's integrity check). The campaign file, if there is one, is kept as
    `NAME.damaged-<time>`. Returns (the backup used, where the old file went)."""
    from alloop.store.integrity import check_campaign

    candidates = [source] if source is not None else list(reversed(backups(db_path)))
    if not candidates:
        raise StoreError(f"no backups of {db_path} beside it ({db_path.name}.backup-r*)")
    chosen = None
    for candidate in candidates:
        if not candidate.is_file():
            raise StoreError(f"no backup file at {candidate}")
        if check_campaign(candidate).intact:
            chosen = candidate
            break
    if chosen is None:
        raise StoreError(f"no intact backup of {db_path}: {', '.join(map(str, candidates))}")
    lock = FileLock(db_path)
    lock.acquire()  # refuses while a run drives the campaign
    try:
        with faults_as_store_errors(str(db_path)):
            kept = None
            if db_path.exists():
                stamp = utcnow().strftime("%Y%m%dT%H%M%S")
                kept = db_path.with_name(f"{db_path.name}.damaged-{stamp}")
                for suffix in ("", "-wal", "-shm"):
                    old = Path(f"{db_path}{suffix}")
                    if old.exists():
                        os.replace(old, f"{kept}{suffix}")
            tmp = temp_path_for(db_path)
            shutil.copyfile(chosen, tmp)
            os.replace(tmp, db_path)
    finally:
        lock.release()
    return chosen, kept


def backup_if_due(
    db_path: Path | None, round_index: int, every_rounds: int, keep: int
) -> tuple[Path, float] | None:
    """After round `round_index` closed: write its backup when `every_rounds` divides
    `round_index + 1` (an SQLite campaign only); returns (the backup, wall seconds) or None."""
    if db_path is None or every_rounds <= 0 or (round_index + 1) % every_rounds:
        return None
    t0 = time.perf_counter()
    path = write_backup(db_path, round_index, keep)
    return path, time.perf_counter() - t0
