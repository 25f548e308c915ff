"""Migrations, schema-version refusal, WAL/foreign keys, the append-only event log."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from alloop.store import CampaignStore, db
from alloop.store.errors import NotACampaignError, SchemaTooNewError
from alloop.store.models import Base
from tests.conftest import file_digest


def test_migration_from_empty_file_matches_models(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.touch()  # a zero-byte file is an empty SQLite database
    engine = db.make_engine(db.resolve_target(path))
    with engine.begin() as conn:
        db.migrate(conn)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(conn.dialect.get_table_names(conn))
    engine.dispose()
    assert diffs == []
    assert {"campaign", "surface", "adsorbate", "pair", "label", "round", "acquisition", "job",
            "model_checkpoint", "event", "alembic_version"} <= tables  # fmt: skip
    assert db.current_revision(db.make_engine(db.resolve_target(path))) == db.head_revision()


def test_sqlite_settings_wal_and_foreign_keys(make_store, tmp_path):
    make_store().close()
    engine = db.make_engine(db.resolve_target(tmp_path / "t.alloop"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_newer_schema_refused_and_file_untouched(make_store, tmp_path):
    path = tmp_path / "t.alloop"
    make_store().close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    conn.commit()
    conn.close()
    before = file_digest(path)
    for write in (False, True):
        with pytest.raises(
            SchemaTooNewError, match="written by a newer alloop.*9999_from_the_future"
        ):
            CampaignStore.open(path, write=write)
    assert file_digest(path) == before


def test_foreign_sqlite_file_refused_untouched(tmp_path):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = file_digest(path)
    with pytest.raises(NotACampaignError, match="not an alloop campaign \\(missing tables"):
        CampaignStore.open(path, write=True)
    assert file_digest(path) == before


def test_event_log_is_append_only(make_store, tmp_path):
    make_store().close()
    conn = sqlite3.connect(tmp_path / "t.alloop")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE event SET kind = 'forged'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM event")
    conn.close()


def test_label_for_unknown_pair_refused_by_foreign_key(make_store, tmp_path):
    make_store().close()
    conn = sqlite3.connect(tmp_path / "t.alloop")
    conn.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        conn.execute(
            "INSERT INTO label (pair_id, gmae_ev, status, fidelity, provenance, created_at) "
            "VALUES (999, -1.0, 'ok', 'mlip', '{}', '2026-01-01')"
        )
    conn.close()
