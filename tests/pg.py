"""A real PostgreSQL server for the test session.

`ALLOOP_TEST_PG_URL` names a server of your own (its database is emptied before each test);
otherwise the session starts one from `pgserver` (a pip-installable, self-contained PostgreSQL
in the `dev` extra) in a temporary directory, listening on a Unix socket only, and gives each
test a database of its own. The directory is a fresh one under the system's temporary folder,
not pytest's: the server runs as another user when the tests run as root, and a pytest session
started beside this one (another checkout) resets pytest's folder to owner-only. Where
neither is possible the PostgreSQL tests are skipped with the reason.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: a server of your own instead of the one the session starts
PG_URL_ENV = "ALLOOP_TEST_PG_URL"
_DRIVER = "postgresql+psycopg"


@dataclass
class PgServer:
    """Where the test databases live: ``own_url`` (a database of `PG_URL_ENV`, emptied for
    each test), else the Unix socket directory of a server the session started."""

    own_url: str | None = None
    socket_dir: str | None = None
    _numbers: Iterator[int] = itertools.count()

    def url(self, database: str) -> str:
        return f"{_DRIVER}://postgres@/{database}?host={self.socket_dir}"

    def fresh_database(self) -> str:
        """A SQLAlchemy URL of an empty database."""
        from sqlalchemy import create_engine, text

        if self.own_url is not None:
            engine = create_engine(self.own_url)
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            engine.dispose()
            return self.own_url
        name = f"alloop_test_{next(self._numbers)}"
        engine = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        engine.dispose()
        return self.url(name)


def start_pg_server(parent: Path | None = None) -> Iterator[PgServer]:
    """Yield a `PgServer` (module docstring), stopping what it started afterwards; skips the
    test when no server can be had. Its data go in a new folder in ``parent`` (default: the
    system's temporary folder), removed afterwards."""
    own = os.environ.get(PG_URL_ENV)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install -e '.[dev]'")
    if own:
        yield PgServer(own_url=own)
        return
    try:
        import pgserver
    except ImportError:
        pytest.skip(f"pgserver is not installed (pip install -e '.[dev]'), nor {PG_URL_ENV} set")
    directory = Path(tempfile.mkdtemp(prefix="alloop-pg-", dir=parent))
    try:
        try:
            server = pgserver.get_server(directory / "data", cleanup_mode="delete")
        except Exception as exc:  # noqa: BLE001 - any failure to start is a reason to skip
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            pytest.skip(f"cannot start PostgreSQL from pgserver in {directory}: {first}")
        try:
            found = PgServer(socket_dir=server.get_postmaster_info().socket_dir)
            _no_disk_flushes(found)
            yield found
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _no_disk_flushes(server: PgServer) -> None:
    """A scratch server need not survive the machine's crash (a killed client it must, and
    does: that is the server's transactions, not its fsyncs): no flushes, so that commits and
    the shutdown are fast on a busy disk."""
    from sqlalchemy import create_engine, text

    engine = create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(text(f"ALTER SYSTEM SET {setting} = off"))
        conn.execute(text("SELECT pg_reload_conf()"))
    engine.dispose()
