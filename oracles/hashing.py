"""Content hashes of structures, used as cache keys (relaxed slabs, gas references)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from ase import Atoms

from alloop.oracles.slabs import fixed_mask

#: positions and cell are rounded to this many decimals (Å) before hashing
HASH_DECIMALS = 5


def atoms_hash(atoms: Atoms) -> str:
    """sha256 of what defines a structure for a calculation: numbers, positions, cell, pbc,
    tags and fixed atoms. Rounded to 1e-5 Å so float noise from copies does not change it."""
    digest = hashlib.sha256()
    digest.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    # +0.0 turns -0.0 into 0.0 so that rounding noise around zero hashes alike
    digest.update((np.round(atoms.positions, HASH_DECIMALS) + 0.0).tobytes())
    digest.update((np.round(np.asarray(atoms.cell), HASH_DECIMALS) + 0.0).tobytes())
    digest.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    digest.update(np.asarray(atoms.get_tags(), dtype=np.int64).tobytes())
    digest.update(fixed_mask(atoms).tobytes())
    return digest.hexdigest()


def dict_hash(data: dict[str, Any]) -> str:
    """sha256 of a JSON-serialisable dict (keys sorted), e.g. calculator settings."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
