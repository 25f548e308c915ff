"""A campaign lock so that two processes never drive one campaign at once.

SQLite campaigns use an advisory `flock` on a sidecar file `<campaign>.lock`. The kernel drops
the lock when its holder dies (even by SIGKILL), so a crash never leaves a stale lock behind; the
file's content only names the holder (PID, host, since) for the error message. PostgreSQL
campaigns use a session-level advisory lock keyed by the campaign name.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
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


def temp_path_for(db_path: Path, pid: int | None = None) -> Path:
    """Where process `pid` (default: this one) builds a new campaign before linking it into
    place: `.NAME.tmp-PID` beside it (plus SQLite's `-wal`/`-shm`/`-journal` while open)."""
    return db_path.with_name(f".{db_path.name}.tmp-{os.getpid() if pid is None else pid}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temp_files(db_path: Path) -> list[Path]:
    """Remove the temporary files of campaign creations whose process has died (killed while
    creating `db_path`); returns what was removed. Files of living processes are left alone."""
    pattern = re.compile(rf"^\.{re.escape(db_path.name)}\.tmp-(\d+)(-wal|-shm|-journal)?$")
    removed = []
    with contextlib.suppress(OSError):
        for entry in db_path.parent.iterdir():
            found = pattern.match(entry.name)
            if found and int(found.group(1)) != os.getpid() and not _pid_alive(int(found.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed.append(entry)
    return removed


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
            text = fh.read()
            fh.close()
            raise _locked(self.path, text) from None
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


def refuse_if_locked(db_path: Path) -> None:
    """Raise CampaignLockedError when another process holds the lock of `db_path`, without
    taking it (cheap: no database opened, nothing imported), so a second run is refused fast."""
    path = lock_path_for(db_path)
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError:
        return  # no lock file, or unreadable: the real acquire reports it
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _locked(path, fh.read()) from None
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _locked(lock_path: Path, text: str) -> CampaignLockedError:
    holder = _parse_holder(text)
    return CampaignLockedError(
        f"campaign {lock_path.name.removesuffix('.lock')} is locked by PID {holder.pid} "
        f"on host {holder.host} (since {holder.since}); wait for it to finish or stop it"
    )


def _parse_holder(text: str) -> LockHolder:
    try:
        data = json.loads(text)
        return LockHolder(pid=int(data["pid"]), host=str(data["host"]), since=str(data["since"]))
    except (ValueError, KeyError, TypeError):
        return LockHolder(pid=-1, host="unknown", since="unknown")
