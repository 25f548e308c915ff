"""Pool building: every adsorbate reaches the store with the SMILES the surrogate needs."""

from __future__ import annotations

from alloop.loop.bridges.pool import build_pool
from alloop.loop.config import parse_config


def test_database_and_smiles_adsorbates_all_carry_smiles():
    cfg = parse_config(
        {
            "campaign": {"name": "p"},
            "pool": {
                "surfaces": [{"bulk": "Cu", "min_ab_ang": 5.0}],
                "adsorbates": [{"name": "*OH"}, {"name": "*CCH"}, {"smiles": "CCO"}],
            },
        }
    )
    pool = build_pool(cfg.pool)
    assert [(a.key, a.smiles) for a in pool.adsorbates] == [
        ("*OH", "[OH]"),
        ("*CCH", "[C][CH]"),
        ("CCO", "CCO"),
    ]
    assert pool.surfaces[0].key == "Cu(111)" and pool.surfaces[0].miller == "1,1,1"
