"""GPU check (issue 12, item 8): the shipped surrogate on CUDA next to the same figures on CPU.

Trains the FG ensemble with the shipped defaults (`alloop.surrogate.defaults`) on a random
80/10/10 split (seed 0) on CUDA, then a few epochs of the same ensemble on CPU, and times
pool scoring (the 2,898 FG pairs and a 500 x 200 synthetic pool of rattled FG slabs) on both.
Prints a table and writes ``gpu_check.json`` and ``gpu_check.md`` to ``--out``.

Run through ``benchmarks/gpu/check.sh`` (it sets up the package without installing it, then also
runs the ``gpu``-marked tests). Needs only the FG data shipped in ``oracles/data/fg``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from alloop.surrogate.ensemble import AdsMTEnsemble
from alloop.surrogate.fg import read_fg_table
from alloop.surrogate.types import EnsembleConfig, SurrogateSample

REPO = Path(__file__).resolve().parents[2]


def timed(fn) -> tuple[float, object]:  # noqa: ANN001
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def scoring(ens: AdsMTEnsemble, slabs: list, smiles: list[str], repeats: int) -> dict:
    """Pairs/s scoring every (slab, molecule) pair: the first call (encodes each slab once)
    and the best of ``repeats`` re-scores (slab encodings cached)."""
    ens.clear_caches(features=False)
    first, _ = timed(lambda: ens.predict(slabs, smiles))
    again = min(timed(lambda: ens.predict(slabs, smiles))[0] for _ in range(repeats))
    n = len(slabs) * len(smiles)
    return {"pairs": n, "first_pairs_per_s": n / first, "rescore_pairs_per_s": n / again}


def run_device(device: str, cfg: EnsembleConfig, data: dict, epochs: int, repeats: int) -> dict:
    cfg = replace(cfg, device=device, train=replace(cfg.train, max_epochs=epochs))
    ens = AdsMTEnsemble(cfg, seed=0)
    wall, report = timed(lambda: ens.fit(data["train"], data["val"]))
    member_epochs = sum(m.epochs_run for m in report.members)
    test = data["test"]
    pred = ens.predict_samples(test)
    y = np.array([s.gmae_ev for s in test])
    out = {
        "device": device,
        "max_epochs": epochs,
        "member_epochs": member_epochs,
        "fit_wall_s": wall,
        "s_per_epoch_per_member": wall / member_epochs,
        "test_mae_ev": float(np.abs(pred.mean_ev.cpu().numpy() - y).mean()),
        "fg_pool": scoring(ens, data["fg_slabs"], data["smiles"], repeats),
        "synthetic_pool": scoring(ens, data["synthetic"], data["smiles"][:200], repeats),  # S x 200
    }
    print(json.dumps(out), flush=True)
    return out


def markdown(results: dict) -> str:
    rows = [
        "# GPU check: the shipped surrogate on CUDA and CPU",
        "",
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']}",
        "",
        "| device | epochs (max) | s / epoch / member | fit wall s | test MAE (eV) | FG pool "
        "pairs/s (first / re-score) | synthetic S x 200 pool pairs/s (first / re-score) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        fg, syn = r["fg_pool"], r["synthetic_pool"]
        rows.append(
            f"| {r['device']} | {r['max_epochs']} | {r['s_per_epoch_per_member']:.3f} | "
            f"{r['fit_wall_s']:.1f} | {r['test_mae_ev']:.3f} | {fg['first_pairs_per_s']:,.0f} / "
            f"{fg['rescore_pairs_per_s']:,.0f} | {syn['first_pairs_per_s']:,.0f} / "
            f"{syn['rescore_pairs_per_s']:,.0f} |"
        )
    if len(results["runs"]) == 2:
        gpu, cpu = results["runs"]
        rows += [
            "",
            f"Ratios CPU/GPU: seconds per epoch {cpu['s_per_epoch_per_member'] / gpu['s_per_epoch_per_member']:.1f}x, "  # noqa: E501
            f"FG re-scoring {gpu['fg_pool']['rescore_pairs_per_s'] / cpu['fg_pool']['rescore_pairs_per_s']:.1f}x, "  # noqa: E501
            f"synthetic re-scoring {gpu['synthetic_pool']['rescore_pairs_per_s'] / cpu['synthetic_pool']['rescore_pairs_per_s']:.1f}x. "  # noqa: E501
            "The CPU run trains only a few epochs (its MAE is not a trained model's).",
        ]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    p.add_argument("--fg-root", type=Path, default=REPO / "oracles" / "data" / "fg")
    p.add_argument("--gpu-epochs", type=int, default=None, help="default: the shipped max_epochs")
    p.add_argument("--cpu-epochs", type=int, default=3)
    p.add_argument("--cpu-threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--synthetic-surfaces", type=int, default=500)
    p.add_argument("--allow-cpu-only", action="store_true", help="try the script without CUDA")
    args = p.parse_args(argv)
    if not torch.cuda.is_available() and not args.allow_cpu_only:
        sys.exit("gpu_check: torch sees no CUDA device (use --allow-cpu-only to try it on CPU)")
    torch.set_num_threads(args.cpu_threads)
    t0 = time.perf_counter()
    records = read_fg_table(args.fg_root)
    samples = [SurrogateSample(r.metal, r.slab, r.smiles, r.gmae_ev) for r in records]
    perm = np.random.default_rng(0).permutation(len(samples))
    a, b = int(round(0.8 * len(samples))), int(round(0.9 * len(samples)))
    slabs_by_metal: dict = {}
    for r in records:
        slabs_by_metal.setdefault(r.metal, r.slab)
    fg_slabs = list(slabs_by_metal.values())
    rng = np.random.default_rng(12345)
    synthetic = []
    for i in range(args.synthetic_surfaces):
        slab = fg_slabs[i % len(fg_slabs)].copy()
        slab.positions += rng.normal(scale=0.03, size=slab.positions.shape)
        synthetic.append(slab)
    data = {
        "train": [samples[i] for i in perm[:a]],
        "val": [samples[i] for i in perm[a:b]],
        "test": [samples[i] for i in perm[b:]],
        "fg_slabs": fg_slabs,
        "smiles": sorted({r.smiles for r in records}),
        "synthetic": synthetic,
    }
    cfg = EnsembleConfig()  # the shipped defaults
    runs = []
    if torch.cuda.is_available():
        runs.append(run_device("cuda", cfg, data, args.gpu_epochs or cfg.train.max_epochs,
                               args.repeats))  # fmt: skip
    runs.append(run_device("cpu", cfg, data, args.cpu_epochs, args.repeats))
    results = {
        "benchmark": "GPU check: shipped surrogate defaults, FG random split seed 0",
        "command": "benchmarks/gpu/check.sh",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "cpu_threads": args.cpu_threads,
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "config": cfg.to_dict(),
        "runs": runs,
        "wall_s": time.perf_counter() - t0,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    md = markdown(results)
    (args.out / "gpu_check.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
