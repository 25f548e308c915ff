"""A campaign lock so that two processes never drive one campaign at once.

SQLite campaigns use an advisory `flock` on a sidecar file `<campaign>.lock`. The kernel drops
the lock when its holder dies (even by SIGKILL), so a crash never leaves a stale lock behind; the
file's content only names the holder (PID, host, since) for the error message. PostgreSQL
campaigns use a session-level advisory lock keyed by the campaign name.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from alloop.store.errors import CampaignLockedError
from alloop.store.types import utcnow


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    since: str

    @classmethod
    def me(cls) -> LockHolder:
        return cls(pid=os.getpid(), host=socket.gethostname(), since=utcnow().isoformat())


def lock_path_for(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


class FileLock:
    """Exclusive, non-blocking advisory lock on `<campaign>.lock`; freed by `release()` or exit."""

    def __init__(self, db_path: Path) -> None:
        self.path = lock_path_for(db_path)
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = _parse_holder(fh.read())
            fh.close()
            raise CampaignLockedError(
                f"campaign {self.path.name.removesuffix('.lock')} is locked by PID {holder.pid} "
                f"on host {holder.host} (since {holder.since}); wait for it to finish or stop it"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(LockHolder.me().__dict__))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is None:
            return
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None


def _parse_holder(text: str) -> LockHolder:
    try:
        data = json.loads(text)
        return LockHolder(pid=int(data["pid"]), host=str(data["host"]), since=str(data["since"]))
    except (ValueError, KeyError, TypeError):
        return LockHolder(pid=-1, host="unknown", since="unknown")
