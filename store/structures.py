"""ASE structures in and out of the store: JSON text and content hashes."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from ase import Atoms
from ase.io.jsonio import decode, encode

_HASH_DECIMALS = 4  # 1e-4 Å: coordinates equal to this precision are the same structure


def atoms_to_json(atoms: Atoms) -> str:
    """ASE JSON of `atoms`, constraints, tags and info included."""
    return encode(atoms.todict())


def atoms_from_json(text: str) -> Atoms:
    return Atoms.fromdict(decode(text))


def content_hash(atoms: Atoms, *extra: str) -> str:
    """sha256 over species, rounded positions, cell and periodicity (plus `extra` strings).

    Rounding makes the hash blind to float noise from a JSON round trip; `extra` lets a caller
    separate structures that differ only in metadata that matters (e.g. an adsorbate's SMILES).
    """
    payload = {
        "numbers": atoms.numbers.tolist(),
        "positions": np.round(atoms.positions, _HASH_DECIMALS).tolist(),
        "cell": np.round(np.asarray(atoms.cell), _HASH_DECIMALS).tolist(),
        "pbc": atoms.pbc.tolist(),
        "extra": list(extra),
    }
    # -0.0 and 0.0 must hash alike
    text = json.dumps(payload, sort_keys=True).replace("-0.0,", "0.0,").replace("-0.0]", "0.0]")
    return hashlib.sha256(text.encode()).hexdigest()


def text_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
