"""The test session's PostgreSQL (`tests.pg`): where none can start, the tests say why."""

from __future__ import annotations

import sys
import types

import pytest

from tests.pg import PG_URL_ENV, start_pg_server


def test_no_pgserver_skips_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.delenv(PG_URL_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "pgserver", None)  # import fails
    with pytest.raises(pytest.skip.Exception, match="pgserver is not installed .*'.\\[dev\\]'"):
        next(start_pg_server(tmp_path))


def test_a_server_that_cannot_start_skips_with_its_error(monkeypatch, tmp_path):
    def refuse(*_args: object, **_kw: object) -> None:
        raise RuntimeError("could not create shared memory segment\nmore detail")

    monkeypatch.delenv(PG_URL_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "pgserver", types.SimpleNamespace(get_server=refuse))
    with pytest.raises(pytest.skip.Exception,
                       match="cannot start PostgreSQL from pgserver in .*: could not create "
                             "shared memory segment$"):  # fmt: skip
        next(start_pg_server(tmp_path))
    assert list(tmp_path.iterdir()) == []  # its folder is gone


def test_the_session_server_gives_each_test_an_empty_database(pg_server):
    from sqlalchemy import create_engine, text

    first, second = pg_server.fresh_database(), pg_server.fresh_database()
    if pg_server.own_url is None:
        assert first != second
    engine = create_engine(second)
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
        assert tables.scalar() == 0
        if pg_server.own_url is None:  # the scratch server skips disk flushes
            assert conn.execute(text("SHOW fsync")).scalar() == "off"
    engine.dispose()
