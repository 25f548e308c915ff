"""Salvage what SQLite can still read from a damaged campaign into a new campaign file.

Rows are read table by table in rowid order; where a damaged page stops a scan, the scan
skips ahead to the next rowid it can reach, so one bad page costs the rows on it and not the
rest of the table. Rows go into a fresh file with the current schema, parents before children
(foreign keys on), and labels are kept whenever their pair survives: a label whose job row was
lost keeps its value without the job link, since labels are what a campaign paid for. Derived
state is checked too: a checkpoint whose sha256 does not match its bytes is left out (the next
round retrains from the labels), and a finished job whose label was lost is marked FAILED so
that the campaign's bookkeeping adds up. The new file is written beside its target and linked
into place only when complete and intact; `alloop resume` continues it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.orm import Session

from alloop.store import db
from alloop.store import models as m
from alloop.store.enums import JobState
from alloop.store.errors import CampaignExistsError, StoreError
from alloop.store.faults import damaged, is_damage
from alloop.store.lock import remove_stale_temp_files, temp_path_for

#: parents before children (foreign keys); labels right after what they point at
COPY_ORDER = (
    "alembic_version", "campaign", "surface", "adsorbate", "pair", "round", "job", "label",
    "acquisition", "model_checkpoint", "event",
)  # fmt: skip
#: the order the report lists tables in: what is expensive to lose first
REPORT_ORDER = ("label", "job", "round", "acquisition", "pair", "surface", "adsorbate",
                "campaign", "model_checkpoint", "event")  # fmt: skip
_MAX_ROWID = 2**62


@dataclass(frozen=True)
class TableSalvage:
    table: str
    kept: int
    lost: int  # rows read but refused (broken references, bad JSON, corrupt checkpoints)
    damaged: bool  # a scan hit a damaged page: rows on it are gone and not counted


@dataclass(frozen=True)
class RecoveryReport:
    source: Path
    target: Path
    tables: tuple[TableSalvage, ...]


def recover_campaign(source: Path, target: Path) -> RecoveryReport:
    """Copy every readable row of campaign `source` into a new campaign at `target`."""
    db.preflight_sqlite(source)
    if target.exists():
        raise CampaignExistsError(f"{target} exists already; choose another path or remove it")
    if not target.parent.is_dir():
        raise StoreError(f"cannot create {target}: directory {target.parent} does not exist")
    remove_stale_temp_files(target)
    tmp = temp_path_for(target)
    with db.read_only_sqlite(source) as src:
        src.text_factory = _text_or_bytes
        try:
            salvaged = _salvage_into(src, tmp)
            report = RecoveryReport(source, target, tuple(salvaged[t] for t in REPORT_ORDER))
            if not salvaged["campaign"].kept:
                raise StoreError(f"nothing to recover: the campaign row of {source} is unreadable")
            _log_recovery(tmp, report)
            os.link(tmp, target)
        finally:
            _remove(tmp)
    return report


def _salvage_into(src: sqlite3.Connection, tmp: Path) -> dict[str, TableSalvage]:
    _remove(tmp)
    _make_schema(tmp)
    dst = sqlite3.connect(tmp, isolation_level=None)
    try:
        dst.execute("PRAGMA foreign_keys = ON")
        dst.execute("BEGIN")
        salvaged = {t: _copy_table(src, dst, t) for t in COPY_ORDER}
        # the copy has this alloop's schema whatever revision the source was at (an older
        # source's rows fill the columns it had): it must not be migrated again
        dst.execute("DELETE FROM alembic_version")
        dst.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (db.head_revision(),))
        _settle_jobs(dst)
        dst.execute("COMMIT")
        problems = [r[0] for r in dst.execute("PRAGMA integrity_check")]
    finally:
        dst.close()
    if problems != ["ok"]:  # pragma: no cover - a fresh file written by SQLite itself
        raise damaged(str(tmp), f"the recovered copy fails its check: {problems[0]}")
    return salvaged


def _make_schema(path: Path) -> None:
    engine = db.make_engine(db.resolve_target(path))
    try:
        with engine.begin() as conn:
            db.migrate(conn)
            conn.exec_driver_sql("DELETE FROM alembic_version")  # copied from the source
    finally:
        engine.dispose()


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]


def _json_columns(table: str) -> set[str]:
    found = m.Base.metadata.tables.get(table)
    if found is None:
        return set()
    return {c.name for c in found.columns if isinstance(c.type, JSON)}


def _copy_table(src: sqlite3.Connection, dst: sqlite3.Connection, table: str) -> TableSalvage:
    try:
        src_cols = set(_columns(src, table))
    except sqlite3.DatabaseError:
        src_cols = set()
    cols = [c for c in _columns(dst, table) if c in src_cols]
    if not cols:
        return TableSalvage(table, 0, 0, damaged=True)
    json_cols = [i for i, c in enumerate(cols) if c in _json_columns(table)]
    insert = f'INSERT INTO "{table}" ({_names(cols)}) VALUES ({", ".join("?" * len(cols))})'  # noqa: S608
    kept = lost = 0
    scan = _RowScan(src, table, cols)
    for row in scan:
        values = list(row)
        if not _valid(table, cols, values, json_cols):
            lost += 1
            continue
        try:
            dst.execute(insert, values)
        except sqlite3.IntegrityError:
            if table == "label" and _unlink_job(cols, values):
                try:
                    dst.execute(insert, values)
                except sqlite3.IntegrityError:
                    lost += 1
                    continue
            else:
                lost += 1
                continue
        kept += 1
    return TableSalvage(table, kept, lost, scan.hit_damage)


def _names(cols: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in cols)


def _text_or_bytes(raw: bytes) -> str | bytes:
    """Text as str; damaged text (not UTF-8) left as bytes, for `_valid` to refuse."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _valid(table: str, cols: list[str], values: list[Any], json_cols: list[int]) -> bool:
    if any(isinstance(v, bytes) and c != "blob" for c, v in zip(cols, values, strict=True)):
        return False
    for i in json_cols:
        if values[i] is not None:
            try:
                json.loads(values[i])
            except (TypeError, ValueError):
                return False
    if table == "model_checkpoint":
        row = dict(zip(cols, values, strict=True))
        blob = row.get("blob")
        return isinstance(blob, bytes) and hashlib.sha256(blob).hexdigest() == row.get("sha256")
    return True


def _unlink_job(cols: list[str], values: list[Any]) -> bool:
    """Keep a label whose job was lost: drop the link (the value is what counts)."""
    if "job_id" not in cols or values[cols.index("job_id")] is None:
        return False
    values[cols.index("job_id")] = None
    return True


class _RowScan:
    """Rows of `table` in rowid order, skipping past pages SQLite reports as damaged."""

    def __init__(self, conn: sqlite3.Connection, table: str, cols: list[str]) -> None:
        self.conn, self.table = conn, table
        self.query = f'SELECT rowid, {_names(cols)} FROM "{table}" WHERE rowid > ? ORDER BY rowid'  # noqa: S608
        self.hit_damage = False

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        last: int | None = -(2**62)
        while last is not None:
            try:
                for row in self.conn.execute(self.query, (last,)):
                    last = row[0]
                    yield row[1:]
                return
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                self.hit_damage = True
                last = self._skip_past(last)

    def _probe(self, after: int) -> int | None | bool:
        """The first rowid above `after`, None when there is none, False when unreadable."""
        try:
            row = self.conn.execute(
                f'SELECT rowid FROM "{self.table}" WHERE rowid > ? ORDER BY rowid LIMIT 1',  # noqa: S608
                (after,),
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            return False
        return None if row is None else int(row[0])

    def _skip_past(self, last: int) -> int | None:
        """Where to scan on from after a scan failed just past `last` (None: nothing left)."""
        failing = self._probe(last)
        if failing is not False:  # its rowid reads, its content does not: skip that row
            return failing
        bad, step = last, 1
        while True:  # gallop until a probe reads something (or nothing is left)
            probe = min(last + step, _MAX_ROWID)
            found = self._probe(probe)
            if found is None:
                return None
            if found is not False:
                break
            if probe >= _MAX_ROWID:
                return None
            bad, step = probe, step * 2
        good = probe
        while good - bad > 1:  # the lowest start that still reads
            mid = (bad + good) // 2
            if self._probe(mid) is False:
                bad = mid
            else:
                good = mid
        return good


def _settle_jobs(dst: sqlite3.Connection) -> None:
    """A finished job whose label was lost: FAILED, saying so (the pair may be asked again)."""
    dst.execute(
        "UPDATE job SET state = ?, error = ? WHERE state = ? AND id NOT IN "
        "(SELECT job_id FROM label WHERE job_id IS NOT NULL)",
        (JobState.FAILED.value, "its label was lost to file damage (recovered campaign)",
         JobState.DONE.value),
    )  # fmt: skip


def _log_recovery(path: Path, report: RecoveryReport) -> None:
    payload = {
        "source": str(report.source),
        "tables": {t.table: {"kept": t.kept, "lost": t.lost, "damaged": t.damaged}
                   for t in report.tables},
    }  # fmt: skip
    engine = db.make_engine(db.resolve_target(path))
    try:
        with Session(engine) as s, s.begin():
            s.add(m.EventRow(kind="campaign_recovered", payload=payload))
    finally:
        engine.dispose()


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
