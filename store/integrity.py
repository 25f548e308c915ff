"""Integrity checks of a campaign file: a quick one before a session's first write, a full one
for `alloop check`.

`PRAGMA quick_check` verifies every b-tree page, cell and overflow chain (it skips only the
index-versus-table comparison of `integrity_check`); its cost grows with the file's size
(docs/reliability.md). The full check also reads every row of every table, so it can say how much
of each table is still readable: the numbers `alloop recover` will salvage.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from alloop.store.db import preflight_sqlite, read_only_sqlite
from alloop.store.faults import damaged

#: campaign tables, in the order `alloop check` lists them (labels first: the expensive part)
TABLES = (
    "label", "job", "round", "acquisition", "pair", "surface", "adsorbate", "campaign",
    "model_checkpoint", "event", "alembic_version",
)  # fmt: skip


def refuse_damaged(engine: Engine, where: str) -> None:
    """Raise CampaignDamagedError when `PRAGMA quick_check` finds a problem (first one named)."""
    with engine.connect() as conn:
        problems = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        first = problems[0].replace("*** in database main ***", "").strip().splitlines()
        raise damaged(where, f"integrity check: {first[0] if first else 'failed'}")


@dataclass(frozen=True)
class TableHealth:
    """How much of one table could be read: `rows` read, `error` the first failure (or None)."""

    table: str
    rows: int
    error: str | None


@dataclass(frozen=True)
class IntegrityReport:
    path: Path
    problems: tuple[str, ...]  # from PRAGMA integrity_check; empty when the file is intact
    tables: tuple[TableHealth, ...]

    @property
    def intact(self) -> bool:
        return not self.problems and all(t.error is None for t in self.tables)


def check_campaign(path: Path, max_problems: int = 20) -> IntegrityReport:
    """Run SQLite's full integrity check on `path` (read-only) and try to read every table."""
    preflight_sqlite(path)
    with read_only_sqlite(path) as conn:
        try:
            found = [str(r[0]) for r in conn.execute(f"PRAGMA integrity_check({max_problems})")]
        except sqlite3.DatabaseError as exc:
            found = [str(exc)]
        lines = [
            ln.strip()
            for text in found
            for ln in text.splitlines()
            if ln.strip() and ln.strip() != "*** in database main ***"
        ]
        problems = tuple(ln for ln in lines if ln != "ok")
        tables = tuple(_table_health(conn, t) for t in TABLES)
    return IntegrityReport(path, problems, tables)


def _table_health(conn: sqlite3.Connection, table: str) -> TableHealth:
    rows = 0
    try:
        for _ in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - fixed table names
            rows += 1
    except sqlite3.DatabaseError as exc:
        return TableHealth(table, rows, str(exc).splitlines()[0] if str(exc) else "unreadable")
    return TableHealth(table, rows, None)
