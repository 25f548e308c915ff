"""Pool-scoring throughput with and without the slab-encoding cache."""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from alloop.surrogate.ensemble import AdsMTEnsemble


def _time(fn) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _pool(ens: AdsMTEnsemble, slabs: list, smiles: list[str], n_uncached: int) -> dict:
    n_pairs = len(slabs) * len(smiles)
    ens.clear_caches()
    feat_s = _time(lambda: (ens.featurizer.slab_graphs(slabs), ens.featurizer.descriptors(smiles)))
    ens.clear_caches(features=False)
    first_s = _time(lambda: ens.predict(slabs, smiles))  # encodes every slab once, then pairs
    again_s = _time(lambda: ens.predict(slabs, smiles))  # slab encodings already cached
    ens.clear_caches(features=False)
    rng = np.random.default_rng(0)
    n_naive = min(n_uncached, n_pairs)
    flat = np.arange(n_pairs)
    if n_naive < n_pairs:
        flat = rng.choice(n_pairs, size=n_naive, replace=False)
    pairs = torch.tensor(np.stack([flat // len(smiles), flat % len(smiles)], axis=1))
    naive_s = _time(lambda: ens.predict(slabs, smiles, pairs, reuse_slab_encodings=False))
    return {
        "surfaces": len(slabs),
        "adsorbates": len(smiles),
        "pairs": n_pairs,
        "featurise_s": feat_s,
        "cached_score_s": first_s,
        "cached_pairs_per_s": n_pairs / first_s,
        "cached_end_to_end_pairs_per_s": n_pairs / (feat_s + first_s),
        "rescore_s": again_s,
        "rescore_pairs_per_s": n_pairs / again_s,
        "uncached_pairs_timed": n_naive,
        "uncached_s": naive_s,
        "uncached_pairs_per_s": n_naive / naive_s,
        "cache_speedup": (n_naive / naive_s) and (n_pairs / first_s) / (n_naive / naive_s),
    }


def measure_speed(ens: AdsMTEnsemble, records: list, args: argparse.Namespace) -> dict:
    """Throughput of ``ens`` (K members) on the FG pool and a synthetic S x A pool."""
    slabs_by_metal = {}
    for r in records:
        slabs_by_metal.setdefault(r.metal, r.slab)
    smiles = sorted({r.smiles for r in records})
    fg_slabs = list(slabs_by_metal.values())
    out = {
        "members": len(ens.members),
        "threads": torch.get_num_threads(),
        "fg_pool": _pool(ens, fg_slabs, smiles, args.uncached_pairs),
    }
    print("[speed fg]", {k: round(v, 1) for k, v in out["fg_pool"].items()}, flush=True)
    rng = np.random.default_rng(12345)
    synthetic = []
    for i in range(args.synthetic_surfaces):  # distinct surfaces: rattled FG slabs
        slab = fg_slabs[i % len(fg_slabs)].copy()
        slab.positions += rng.normal(scale=0.03, size=slab.positions.shape)
        synthetic.append(slab)
    syn_smiles = smiles[: args.synthetic_adsorbates]
    out["synthetic_pool"] = _pool(ens, synthetic, syn_smiles, args.uncached_pairs)
    print(
        "[speed synthetic]", {k: round(v, 1) for k, v in out["synthetic_pool"].items()}, flush=True
    )
    return out
