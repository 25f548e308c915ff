"""Opening campaign databases: preflight checks, engine settings, migrations.

A campaign target is a path to an SQLite file (the default) or a database URL
(`postgresql+psycopg://user@host/dbname`). Before anything writes to an existing SQLite file
it is checked with read-only access: a file that is not an alloop campaign, or that was written
by a newer schema, is refused and left byte-for-byte untouched.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import SQLAlchemyError

import alloop.store.migrations as _migrations
from alloop.store.errors import (
    CampaignNotFoundError,
    NotACampaignError,
    SchemaTooNewError,
    StoreError,
)

SQLITE_MAGIC = b"SQLite format 3\x00"
_REQUIRED_TABLES = frozenset({"alembic_version", "campaign", "pair", "label", "job"})


@dataclass(frozen=True)
class Target:
    """Where a campaign lives: a SQLAlchemy URL, plus the file path for SQLite."""

    url: str
    path: Path | None

    @property
    def display(self) -> str:
        return str(self.path) if self.path is not None else self.url.split("@")[-1]


def resolve_target(target: str | Path) -> Target:
    text_target = str(target)
    if "://" in text_target:
        if text_target.startswith("sqlite:///"):
            path = Path(text_target.removeprefix("sqlite:///"))
            return Target(url=text_target, path=path)
        return Target(url=text_target, path=None)
    path = Path(text_target).expanduser()
    return Target(url=f"sqlite:///{path}", path=path)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(_migrations.__file__).parent))
    return cfg


def known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise StoreError("alloop ships no schema migrations; the installation is broken")
    return head


def check_revision(found: str | None, where: str) -> None:
    """Refuse a campaign whose schema revision this alloop does not know."""
    if found is None:
        raise NotACampaignError(f"{where} is not an alloop campaign (no schema version recorded)")
    if found not in known_revisions():
        raise SchemaTooNewError(
            f"{where} was written by a newer alloop (schema revision {found!r}); this alloop "
            f"knows schema revisions up to {head_revision()!r}: upgrade alloop to open it"
        )


def unwritable_wal_file(path: Path) -> bool:
    """A campaign in a directory this process may not write (a read-only mount, an archive),
    without WAL sidecars: SQLite cannot create the `-shm` it needs to read a WAL-mode file, so
    such a file is read as immutable, which it is while its directory stays read-only."""
    sidecars = (path.with_name(path.name + s) for s in ("-wal", "-shm"))
    return not os.access(path.parent, os.W_OK) and not any(p.exists() for p in sidecars)


def preflight_sqlite(path: Path) -> None:
    """Check, without writing, that `path` is an alloop campaign this alloop can open."""
    if not path.exists():
        raise CampaignNotFoundError(f"no campaign file at {path}")
    if not path.is_file():
        raise NotACampaignError(f"{path} is not a file")
    with open(path, "rb") as fh:
        header = fh.read(len(SQLITE_MAGIC))
    if header != SQLITE_MAGIC:
        raise NotACampaignError(f"{path} is not an alloop campaign (not an SQLite database)")
    try:
        with read_only_sqlite(path) as conn:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not tables >= _REQUIRED_TABLES:
                raise NotACampaignError(
                    f"{path} is an SQLite database but not an alloop campaign "
                    f"(missing tables: {', '.join(sorted(_REQUIRED_TABLES - tables))})"
                )
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise NotACampaignError(f"{path} is not a readable alloop campaign ({exc})") from exc
    check_revision(row[0] if row else None, str(path))


@contextlib.contextmanager
def read_only_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain read-only sqlite3 connection to `path` that leaves no trace: opening a WAL-mode
    file, even read-only, makes `-wal`/`-shm` sidecars, and those it made are removed."""
    sidecars = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    preexisting = {p for p in sidecars if p.exists()}
    immutable = "&immutable=1" if unwritable_wal_file(path) else ""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro{immutable}", uri=True)
        try:
            yield conn
        finally:
            conn.close()
    finally:
        for sidecar in sidecars:
            if sidecar not in preexisting and sidecar.exists():
                sidecar.unlink(missing_ok=True)


def make_engine(target: Target, *, readonly: bool = False) -> Engine:
    """An engine with the campaign's connection settings.

    SQLite: WAL journal (readers never block the writer, e.g. the dashboard during a run),
    foreign keys on, synchronous=FULL (a committed round survives power loss), a busy timeout,
    and `BEGIN IMMEDIATE` for writers so that two writers queue instead of deadlocking on a
    lock upgrade. Read-only engines set `query_only`.
    """
    if target.path is None:
        return create_engine(target.url, pool_pre_ping=True)
    if readonly and unwritable_wal_file(target.path):
        uri = f"file:{target.path}?mode=ro&immutable=1"
        engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    else:
        engine = create_engine(target.url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA foreign_keys = ON")
        if readonly:
            cur.execute("PRAGMA query_only = ON")
        else:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: object) -> None:
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")  # type: ignore[attr-defined]

    return engine


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return current_revision_on(conn)


def current_revision_on(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).fetchone()
    return row[0] if row else None


def migrate(conn: Connection) -> None:
    """Bring the schema to head, from nothing or from any older revision, on `conn`.

    Runs inside the caller's transaction (SQLite and PostgreSQL both have transactional DDL), so
    a migration that fails leaves the previous schema in place.
    """
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    try:
        command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"schema migration failed: {exc}") from exc
