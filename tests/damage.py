"""Real damage for reliability tests: corrupted pages, read-only and full file systems.

`corrupt_page` overwrites one page that the test chose (by table, through SQLite's `dbstat`)
with seeded random bytes. The file-system helpers mount a real tmpfs (root only; the test is
skipped otherwise): `read_only_dir` remounts it read-only, `small_fs` gives a tiny one that
fills up. Without root a read-only directory is made with permissions, which binds only a
non-root process.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def table_pages(path: Path, table: str) -> list[int]:
    """Page numbers of `table` (its b-tree and overflow pages), ascending."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno", (table,)
        ).fetchall()
    finally:
        conn.close()
    if not rows:
        raise ValueError(f"{path} has no pages for table {table!r}")
    return [r[0] for r in rows]


def corrupt_page(path: Path, table: str, which: int = 0, seed: int = 0) -> int:
    """Overwrite page number `which` (in ascending order; 0 = the table's root when it has one
    page tree) of `table` in `path` with seeded random bytes; returns the page number."""
    pages = table_pages(path, table)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    page = pages[which]
    junk = random.Random(seed).randbytes(page_size)
    with open(path, "r+b") as fh:
        fh.seek((page - 1) * page_size)
        fh.write(junk)
    return page


def _mount_tmpfs(where: Path, size: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


@contextlib.contextmanager
def small_fs(where: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of `size` (e.g. "256k") mounted at `where`; unmounted afterwards."""
    _mount_tmpfs(where, size)
    try:
        yield where
    finally:
        _umount(where)


def resize_fs(where: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


@contextlib.contextmanager
def read_only_dir(where: Path, files: list[Path]) -> Iterator[Path]:
    """`files` copied into `where`, which then cannot be written: a read-only tmpfs as root,
    permissions (0555 directory, 0444 files) otherwise."""
    if os.geteuid() != 0:
        where.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(f, where / f.name)
            os.chmod(where / f.name, 0o444)
        os.chmod(where, 0o555)
        try:
            yield where
        finally:
            os.chmod(where, 0o755)
        return
    _mount_tmpfs(where, "64m")
    try:
        for f in files:
            shutil.copy(f, where / f.name)
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        yield where
    finally:
        _umount(where)
