"""What a damaged, full or read-only campaign file looks like to the user: one line.

SQLite reports a failing file through error codes (`SQLITE_CORRUPT`, `SQLITE_FULL`,
`SQLITE_READONLY`, ...); the operating system through `errno` (`ENOSPC`, `EROFS`, `EACCES`).
`store_fault` turns either into a `StoreError` subclass whose message names the file, says what
happened and what to do next, so every command can print it as one red line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.exc import DBAPIError, IntegrityError

from alloop.store.errors import (
    CampaignDamagedError,
    CampaignReadOnlyError,
    StorageFullError,
    StoreError,
)


def _sqlite_error(exc: BaseException) -> sqlite3.Error | None:
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, sqlite3.Error):
        return exc.orig
    return exc if isinstance(exc, sqlite3.Error) else None


def _first_line(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def damaged(where: str, detail: str) -> CampaignDamagedError:
    return CampaignDamagedError(
        f"{where} is damaged ({detail}): run `alloop check {where}` to see what is intact, "
        f"then `alloop restore {where}` (from a backup) or `alloop recover {where} --out NEW`"
    )


def full(where: str, detail: str) -> StorageFullError:
    return StorageFullError(
        f"{where}: the disk is full ({detail}); what was committed before is intact: free some "
        "space, then run the command again (`alloop resume` continues a run)"
    )


def read_only(where: str, detail: str) -> CampaignReadOnlyError:
    return CampaignReadOnlyError(
        f"{where} is read-only ({detail}): make it and its directory writable, or copy the "
        "campaign to a writable place, then run the command again"
    )


def is_damage(exc: BaseException) -> bool:
    """SQLite says the file itself is broken (corrupt page, not a database, I/O error)."""
    err = _sqlite_error(exc)
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in (
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_IOERR,
    )


def store_fault(exc: BaseException, where: str) -> StoreError | None:
    """The one-line `StoreError` for a database or file-system failure on `where`, or None when
    `exc` is not one (integrity violations stay with the code that expects them)."""
    if isinstance(exc, IntegrityError):
        return None
    if isinstance(exc, OSError):
        detail = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return full(where, detail)
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return read_only(where, detail)
        return StoreError(f"{where}: {detail}")
    err = _sqlite_error(exc)
    if err is None:
        return (
            StoreError(f"{where}: database error ({_first_line(exc)})")
            if isinstance(exc, DBAPIError)
            else None
        )
    detail = _first_line(exc)
    code = getattr(err, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return damaged(where, detail)
    if primary == sqlite3.SQLITE_FULL:
        return full(where, detail)
    if primary in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
        return read_only(where, detail)
    if primary == sqlite3.SQLITE_CANTOPEN:
        return StoreError(
            f"cannot open {where} ({detail}): check that it and its directory exist and are "
            "readable (writable too, for run and resume)"
        )
    if primary == sqlite3.SQLITE_IOERR:
        return StoreError(
            f"{where}: I/O error ({detail}): check the disk; `alloop check {where}` says what "
            "is intact"
        )
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreError(f"{where} is busy ({detail}): another process holds it; try again")
    return StoreError(f"{where}: database error ({detail})")


@contextlib.contextmanager
def faults_as_store_errors(where: str) -> Iterator[None]:
    """Re-raise database and file-system failures inside the block as one-line StoreErrors."""
    try:
        yield
    except StoreError:
        raise
    except (DBAPIError, sqlite3.Error, OSError) as exc:
        fault = store_fault(exc, where)
        if fault is None:
            raise
        raise fault from exc


def refuse_read_only(path: Path) -> None:
    """Raise CampaignReadOnlyError when this process may not write the file `path` (if it
    exists) or its directory (SQLite's sidecars and the lock live there), before any work is
    done: SQLite itself would open such a file read-only without a word and fail only at the
    first write."""
    for target, what in ((path, "the file"), (path.parent, "its directory")):
        if target.exists() and not os.access(target, os.W_OK):
            reason = "read-only file system" if _on_read_only_fs(target) else "no write permission"
            raise read_only(str(path), f"{what}: {reason}")


def _on_read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
