"""Pool building: every adsorbate reaches the store with the SMILES the surrogate needs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from alloop.loop.bridges.pool import build_pool, stratified_choice
from alloop.loop.config import PoolSection, parse_config
from alloop.surrogate.fg import read_fg_molecules


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


def fg_pool_config(seed: int, max_molecules: int, fg_root: Path) -> PoolSection:
    cfg = parse_config(
        {
            "campaign": {"name": "p", "seed": seed},
            "pool": {"fg": {"root": str(fg_root), "metals": ["Pt"],
                            "max_molecules": max_molecules}},
        }
    )  # fmt: skip
    return cfg.pool


def test_fg_max_molecules_is_a_seeded_choice_over_every_family(fg_root: Path):
    # the first 20 molecules of the table are amides and amidines only (2 of 11 families)
    families = {m.family for m in read_fg_molecules(fg_root)}
    first = build_pool(fg_pool_config(0, 20, fg_root), seed=0)
    again = build_pool(fg_pool_config(0, 20, fg_root), seed=0)
    other = build_pool(fg_pool_config(1, 20, fg_root), seed=1)
    keys = [a.key for a in first.adsorbates]
    assert keys == [a.key for a in again.adsorbates]  # same seed, same pool
    assert keys != [a.key for a in other.adsorbates]
    assert len(keys) == 20 and len(set(keys)) == 20
    assert {k.split("/")[0] for k in keys} == families


def test_stratified_choice_is_proportional_and_seeded():
    items = (
        [("big", i) for i in range(60)]
        + [("mid", i) for i in range(30)]
        + [("small", i) for i in range(10)]
    )
    chosen = stratified_choice(items, lambda x: x[0], 20, seed=3)
    counts = Counter(g for g, _ in chosen)
    assert counts == {"big": 12, "mid": 6, "small": 2}
    assert chosen == sorted(chosen, key=items.index)  # in the order of the items
    assert chosen == stratified_choice(items, lambda x: x[0], 20, seed=3)
    assert chosen != stratified_choice(items, lambda x: x[0], 20, seed=4)
    # fewer slots than groups: a seeded set of groups, one item each
    assert len({g for g, _ in stratified_choice(items, lambda x: x[0], 2, seed=0)}) == 2
    assert stratified_choice(items, lambda x: x[0], 500, seed=0) == items
