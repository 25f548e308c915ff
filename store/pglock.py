"""Campaign lock for PostgreSQL campaigns: a session-level advisory lock.

The lock lives on a dedicated connection held for the store's lifetime; PostgreSQL releases it
when that connection ends, so a killed process never leaves it behind. The connection's
`application_name` names the holder (PID and host) for the error message.
"""

from __future__ import annotations

import os
import socket
import zlib

from sqlalchemy import Connection, Engine, text

from alloop.store.errors import CampaignLockedError

_LOCK_NAMESPACE = 0x616C6C6F  # "allo"


class PgAdvisoryLock:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # one campaign per database: the lock is keyed by the database's name
        self._key = zlib.crc32(f"alloop:{engine.url.database}".encode()) & 0x7FFFFFFF
        self._conn: Connection | None = None

    def acquire(self) -> None:
        conn = self._engine.connect()
        me = f"alloop pid={os.getpid()} host={socket.gethostname()}"
        conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": me})
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:ns, :k)"), {"ns": _LOCK_NAMESPACE, "k": self._key}
        ).scalar()
        conn.commit()
        if not got:
            holder = conn.execute(
                text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                    "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.classid = :ns "
                    "AND l.objid = :k AND l.granted"
                ),
                {"ns": _LOCK_NAMESPACE, "k": self._key},
            ).scalar()
            conn.close()
            raise CampaignLockedError(
                f"campaign {self._engine.url.database} is locked by {holder or 'another process'}"
            )
        self._conn = conn

    def release(self) -> None:
        if self._conn is None:
            return
        self._conn.close()  # ending the session releases the advisory lock
        self._conn = None
