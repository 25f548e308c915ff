"""Relaxed reference structures (clean slabs, gas molecules) computed once per calculator.

The key is the content hash of the input structure plus the calculator identity and the
relaxation settings, so the same slab is relaxed once per calculator however many pairs use
it. Entries live in memory and, when ``directory`` is given, on disk (``<key>.traj`` plus
``<key>.json``, written atomically) so that worker processes and later runs share them; there a
per-key file lock makes a process that wants an entry another one is computing wait for it
instead of computing it again, so each reference is relaxed once across all workers.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ase import Atoms
from ase.io import write

from alloop.oracles.hashing import atoms_hash, dict_hash
from alloop.oracles.relax import Relaxation
from alloop.oracles.slabs import read_single

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedRelaxation:
    """A reference relaxation: final atoms, energy (eV), and what it cost when first computed."""

    key: str
    atoms: Atoms
    energy_ev: float
    force_calls: int
    converged: bool
    wall_s: float
    hit: bool


class RelaxationCache:
    """Content-addressed store of reference relaxations (see module docstring)."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory else None
        self._memory: dict[str, CachedRelaxation] = {}
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"RelaxationCache(directory={self.directory}, in_memory={len(self._memory)})"

    def __getstate__(self) -> dict[str, Any]:
        # workers start with an empty memory and share entries through the directory
        return {"directory": self.directory, "_memory": {}}

    @staticmethod
    def key(kind: str, atoms: Atoms, settings: dict[str, Any]) -> str:
        """Cache key of a ``kind`` ("slab"/"gas") relaxation of ``atoms`` under ``settings``."""
        return f"{kind}-{dict_hash({'atoms': atoms_hash(atoms), **settings})[:24]}"

    def get_or_compute(
        self,
        kind: str,
        atoms: Atoms,
        settings: dict[str, Any],
        compute: Callable[[Atoms], Relaxation],
    ) -> CachedRelaxation:
        """Return the cached relaxation of ``atoms`` or run ``compute(atoms)`` and store it."""
        key = self.key(kind, atoms, settings)
        if key in self._memory:
            return _as_hit(self._memory[key])
        with self._computing(key):  # another process computing the same key: wait, then load
            loaded = self._load(key)
            if loaded is not None:
                self._memory[key] = loaded
                return _as_hit(loaded)
            return self._compute(kind, key, atoms, settings, compute)

    @contextmanager
    def _computing(self, key: str) -> Iterator[None]:
        """An exclusive lock on ``key`` across processes (a no-op without a directory)."""
        if self.directory is None:
            yield
            return
        with open(self.directory / f".{key}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _compute(
        self,
        kind: str,
        key: str,
        atoms: Atoms,
        settings: dict[str, Any],
        compute: Callable[[Atoms], Relaxation],
    ) -> CachedRelaxation:
        result = compute(atoms)
        entry = CachedRelaxation(
            key,
            result.atoms,
            result.energy_ev,
            result.force_calls,
            result.converged,
            result.wall_s,
            hit=False,
        )
        self._memory[key] = entry
        self._store(entry, settings)
        logger.info(
            "cached %s %s: E=%.4f eV (%d force calls)",
            kind,
            key,
            entry.energy_ev,
            entry.force_calls,
        )
        return entry

    def _load(self, key: str) -> CachedRelaxation | None:
        if self.directory is None:
            return None
        meta_path = self.directory / f"{key}.json"
        traj_path = self.directory / f"{key}.traj"
        if not (meta_path.is_file() and traj_path.is_file()):
            return None
        meta = json.loads(meta_path.read_text())
        atoms = read_single(traj_path, "traj")
        atoms.calc = None
        return CachedRelaxation(
            key,
            atoms,
            float(meta["energy_ev"]),
            int(meta["force_calls"]),
            bool(meta["converged"]),
            float(meta["wall_s"]),
            hit=True,
        )

    def _store(self, entry: CachedRelaxation, settings: dict[str, Any]) -> None:
        if self.directory is None:
            return
        # structure first, metadata last: a reader only trusts an entry whose json exists
        _atomic_write(
            self.directory / f"{entry.key}.traj",
            lambda path: write(path, entry.atoms, format="traj"),
        )
        meta = {
            "energy_ev": entry.energy_ev,
            "force_calls": entry.force_calls,
            "converged": entry.converged,
            "wall_s": entry.wall_s,
            "settings": settings,
        }
        _atomic_write(
            self.directory / f"{entry.key}.json",
            lambda path: Path(path).write_text(json.dumps(meta, default=str)),
        )


def _as_hit(entry: CachedRelaxation) -> CachedRelaxation:
    return CachedRelaxation(
        entry.key,
        entry.atoms,
        entry.energy_ev,
        entry.force_calls,
        entry.converged,
        entry.wall_s,
        hit=True,
    )


def _atomic_write(target: Path, writer: Callable[[str], Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
