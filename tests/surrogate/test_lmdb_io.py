from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from alloop.surrogate.errors import DataError
from alloop.surrogate.lmdb_io import read_adsmt_lmdb, write_adsmt_lmdb


def _records(examples: Path, n: int = 3) -> list[Data]:
    out = []
    for item in json.loads(examples.read_text())["items"][:n]:
        out.append(
            Data(
                pos=torch.tensor(item["pos"]),
                atomic_numbers=torch.tensor(item["atomic_numbers"]),
                cell=torch.tensor(item["cell"]),
                natoms=item["natoms"][0],
                tags=torch.tensor(item["tags"]),
                fixed=torch.tensor(item["fixed"]),
                y_relaxed=item["y_relaxed"][0],
                ads_smi=item["ads_smi"],
                ads_des=torch.tensor(item["ads_des"]),
                sid=item["sid"][0],
            )
        )
    return out


def test_round_trip(ocd_examples_path: Path, tmp_path: Path) -> None:
    records = _records(ocd_examples_path)
    path = tmp_path / "train.lmdb"
    assert write_adsmt_lmdb(path, records) == 3
    got = read_adsmt_lmdb(path)
    assert [r.smiles for r in got] == [d.ads_smi for d in records]
    first, src = got[0], records[0]
    assert first.key == "train.lmdb:0"
    assert first.sid == str(src.sid)
    assert first.gmae_ev == pytest.approx(src.y_relaxed)
    np.testing.assert_allclose(first.slab.positions, src.pos.numpy(), atol=1e-6)
    np.testing.assert_array_equal(first.slab.numbers, src.atomic_numbers.numpy().astype(int))
    np.testing.assert_array_equal(first.slab.get_tags(), src.tags.numpy())
    fixed = first.slab.constraints[0].get_indices()
    np.testing.assert_array_equal(fixed, np.flatnonzero(src.fixed.numpy()))
    assert first.ads_descriptors is not None and first.ads_descriptors.shape == (208,)
    assert read_adsmt_lmdb(path, limit=2)[-1].key == "train.lmdb:1"
    assert len(read_adsmt_lmdb(tmp_path)) == 3  # a directory of .lmdb files


def test_pyg1_style_record(ocd_examples_path: Path, tmp_path: Path) -> None:
    src = _records(ocd_examples_path, 1)[0]
    old = Data.__new__(Data)
    old.__dict__.update(src.to_dict())  # attributes in __dict__, no _store: PyG 1.x layout
    write_adsmt_lmdb(tmp_path / "old.lmdb", [old])
    (rec,) = read_adsmt_lmdb(tmp_path / "old.lmdb")
    assert rec.smiles == src.ads_smi
    assert len(rec.slab) == src.pos.shape[0]


def test_refuses_foreign_classes(tmp_path: Path) -> None:
    path = tmp_path / "evil.lmdb"
    env = lmdb.open(str(path), subdir=False, map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"0", pickle.dumps(os.getcwd))
    env.close()
    with pytest.raises(DataError, match="refusing to unpickle"):
        read_adsmt_lmdb(path)


def test_missing_fields_and_paths(tmp_path: Path) -> None:
    write_adsmt_lmdb(tmp_path / "bad.lmdb", [Data(pos=torch.zeros(2, 3))])
    with pytest.raises(DataError, match="lacks fields \\['atomic_numbers', 'cell', 'ads_smi'\\]"):
        read_adsmt_lmdb(tmp_path / "bad.lmdb")
    with pytest.raises(DataError, match="no LMDB file at"):
        read_adsmt_lmdb(tmp_path / "nope.lmdb")
