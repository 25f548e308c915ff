"""Reader (and writer) for AdsMT's OCP-style LMDB datasets of pickled PyG ``Data`` records.

AdsMT distributes Alloy-GMAE, FG-GMAE and OCD-GMAE as LMDB files in the Open Catalyst layout:
keys ``b"0"``, ``b"1"``, … hold pickled PyG ``Data`` objects (clean slab ``pos``,
``atomic_numbers``, ``cell`` `1 x 3 x 3`, ``tags``, ``fixed``; target ``y_relaxed`` in eV;
adsorbate ``ads_smi`` and ``ads_des``), and ``b"length"`` the pickled record count.

Unpickling runs code named in the file, so only read files you trust. As a guard, classes are
resolved through an allow-list (torch, torch_geometric, numpy, collections, plain builtins);
anything else is refused with :class:`DataError`. Records pickled by PyG 1.x (no ``_store``)
are converted to the current ``Data`` layout.
"""

from __future__ import annotations

import io
import logging
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import torch
from ase import Atoms
from ase.constraints import FixAtoms
from torch_geometric.data import Data

from alloop.surrogate.errors import DataError

__all__ = ["LmdbRecord", "iter_adsmt_lmdb", "read_adsmt_lmdb", "write_adsmt_lmdb"]

logger = logging.getLogger(__name__)

_ALLOWED_PREFIXES = ("torch", "torch_geometric", "numpy", "collections", "_codecs", "copyreg")
_ALLOWED_BUILTINS = frozenset(
    {
        "dict",
        "list",
        "tuple",
        "set",
        "frozenset",
        "slice",
        "int",
        "float",
        "str",
        "bytes",
        "bytearray",
        "complex",
        "bool",
        "object",
        "getattr",
    }
)
_SIZE_BYTES = 1 << 30


@dataclass(frozen=True)
class LmdbRecord:
    """One AdsMT record: a clean slab, the adsorbate and (if labelled) its GMAE in eV."""

    key: str
    sid: str | None
    slab: Atoms
    smiles: str
    gmae_ev: float | None
    ads_descriptors: np.ndarray | None


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        root = module.split(".")[0]
        if root in _ALLOWED_PREFIXES or (module == "builtins" and name in _ALLOWED_BUILTINS):
            return super().find_class(module, name)
        raise DataError(f"refusing to unpickle {module}.{name} from an LMDB record")


def _loads(raw: bytes) -> Any:
    try:
        return _AllowListUnpickler(io.BytesIO(raw)).load()
    except DataError:
        raise
    except Exception as exc:  # pickle raises many types on corrupt input
        raise DataError(f"cannot unpickle LMDB record ({len(raw)} bytes): {exc}") from exc


def _as_data(obj: Any) -> Data:
    if isinstance(obj, Data):
        if "_store" not in obj.__dict__:  # pickled by PyG 1.x: attributes live in __dict__
            return Data(**{k: v for k, v in obj.__dict__.items() if v is not None})
        return obj
    if isinstance(obj, dict):
        return Data(**obj)
    raise DataError(f"LMDB record is a {type(obj).__name__}, not a PyG Data or dict")


def _array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _record(key: str, data: Data) -> LmdbRecord:
    store = data.to_dict()
    missing = [f for f in ("pos", "atomic_numbers", "cell", "ads_smi") if f not in store]
    if missing:
        raise DataError(f"LMDB record {key!r} lacks fields {missing}; has {sorted(store)}")
    pos = _array(store["pos"]).reshape(-1, 3).astype(np.float64)
    numbers = np.rint(_array(store["atomic_numbers"]).ravel()).astype(int)
    cell = _array(store["cell"]).reshape(3, 3).astype(np.float64)
    slab = Atoms(numbers=numbers, positions=pos, cell=cell, pbc=True)
    if "tags" in store:
        slab.set_tags(_array(store["tags"]).astype(int).ravel())
    if "fixed" in store:
        fixed = np.flatnonzero(_array(store["fixed"]).ravel() > 0.5)
        if len(fixed):
            slab.set_constraint(FixAtoms(indices=fixed))
    y = store.get("y_relaxed")
    smiles = store["ads_smi"]
    smiles = smiles[0] if isinstance(smiles, list | tuple) else smiles
    des = store.get("ads_des")
    sid = store.get("sid")
    if sid is not None and not isinstance(sid, str):
        sid = str(_array(sid).ravel()[0])
    return LmdbRecord(
        key=key,
        sid=sid,
        slab=slab,
        smiles=str(smiles),
        gmae_ev=None if y is None else float(_array(y).ravel()[0]),
        ads_descriptors=None if des is None else _array(des).ravel().astype(np.float64),
    )


def iter_adsmt_lmdb(path: Path, limit: int | None = None) -> Iterator[LmdbRecord]:
    """Yield records of one ``.lmdb`` file (or every ``*.lmdb`` in a directory) in key order.

    Raises:
        DataError: missing path, not an LMDB, a refused class, or a record lacking fields.
    """
    path = Path(path)
    files = sorted(path.glob("*.lmdb")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise DataError(f"no LMDB file at {path}")
    n = 0
    for file in files:
        try:
            env = lmdb.open(
                str(file),
                subdir=False,
                readonly=True,
                lock=False,
                readahead=False,
                meminit=False,
                max_readers=1,
            )
        except lmdb.Error as exc:
            raise DataError(f"cannot open LMDB {file}: {exc}") from exc
        try:
            with env.begin() as txn:
                keys = [bytes(k) for k, _ in txn.cursor() if bytes(k) != b"length"]
                keys.sort(key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
                for key in keys:
                    if limit is not None and n >= limit:
                        return
                    text = key.decode("ascii", "replace")
                    yield _record(f"{file.name}:{text}", _as_data(_loads(txn.get(key))))
                    n += 1
        finally:
            env.close()


def read_adsmt_lmdb(path: Path, limit: int | None = None) -> list[LmdbRecord]:
    """All records of :func:`iter_adsmt_lmdb` as a list."""
    return list(iter_adsmt_lmdb(path, limit))


def write_adsmt_lmdb(path: Path, records: Iterable[Data]) -> int:
    """Write PyG ``Data`` records in the AdsMT/OCP layout; returns the count written."""
    env = lmdb.open(str(path), subdir=False, map_size=_SIZE_BYTES, meminit=False)
    n = 0
    try:
        with env.begin(write=True) as txn:
            for n, data in enumerate(records, start=1):
                txn.put(str(n - 1).encode("ascii"), pickle.dumps(data, protocol=-1))
            txn.put(b"length", pickle.dumps(n, protocol=-1))
    finally:
        env.close()
    return n
