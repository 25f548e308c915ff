"""What ships, measured (issue 12, item 4): one training round of the default surrogate.

For the shipped defaults (`alloop.surrogate.defaults`), the default before them (``holdout``:
one validation split, no prior mean) and, unless ``--skip-previous``, the model the campaign
config shipped before (hidden 128, 3 graph layers, 50 neighbours, 300 epochs, patience 30,
batch 128, lr 1e-3): train the ensemble on a seeded random 500 and 2,000 FG pairs (90/10
train/validation, as a campaign round splits its labels; cross-fitting pools them) and report
the wall time of the round's training and the test MAE on a fixed held-out 10 % of the pool.
Same process, same splits, ``--threads`` torch threads (2: a campaign's training on this
machine's 2 cores).

Run:  .venv/bin/python benchmarks/surrogate/defaults.py   (nothing else running, please)
Writes benchmarks/results/surrogate_defaults.{json,md}.
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

from alloop.oracles.fg_data import fg_data_root
from alloop.surrogate.ensemble import AdsMTEnsemble
from alloop.surrogate.featurizer import FeaturizerConfig
from alloop.surrogate.fg import read_fg_table
from alloop.surrogate.model import AdsMTConfig
from alloop.surrogate.training import TrainConfig
from alloop.surrogate.types import EnsembleConfig, SurrogateSample

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "surrogate_defaults"


def configs(skip_previous: bool) -> dict[str, EnsembleConfig]:
    shipped = EnsembleConfig(device="cpu")
    no_mlip = replace(shipped.featurizer, mlip_features="none")
    out = {
        "shipped": shipped,
        # the shipped model before the frozen MLIP features
        "no_mlip": replace(shipped, featurizer=no_mlip),
        # the default before cross-fitting and the scaling prior (the 201 s of the issue)
        "holdout": replace(shipped, split="holdout", prior_mean="none", featurizer=no_mlip),
    }
    if not skip_previous:
        out["previous"] = replace(
            shipped,
            featurizer=FeaturizerConfig(cutoff_ang=6.0, max_neighbors=50),
            model=AdsMTConfig(hidden_dim=128, num_graph_layers=3),
            train=TrainConfig(max_epochs=300, early_stop_patience=30, batch_size=128,
                              learning_rate=1e-3),
        )  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-previous", action="store_true")
    p.add_argument("--models", nargs="+", help="time only these configs (default: all)")
    p.add_argument("--note", default="", help="what else ran on the machine")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    records = read_fg_table(fg_data_root())
    samples = [SurrogateSample(r.metal, r.slab, r.smiles, r.gmae_ev) for r in records]
    perm = np.random.default_rng(args.seed).permutation(len(samples))
    n_test = len(samples) // 10
    test, rest = perm[:n_test], perm[n_test:]
    y_test = np.array([samples[i].gmae_ev for i in test])
    runs = []
    chosen_configs = {
        k: v for k, v in configs(args.skip_previous).items() if not args.models or k in args.models
    }
    for name, cfg in chosen_configs.items():
        for n in args.sizes:
            chosen = rest[:n]
            n_val = max(2, n // 10)
            train = [samples[i] for i in chosen[n_val:]]
            val = [samples[i] for i in chosen[:n_val]]
            ens = AdsMTEnsemble(cfg, seed=args.seed)
            t0 = time.perf_counter()
            report = ens.fit(train, val)
            wall = time.perf_counter() - t0
            pred = ens.predict_samples([samples[i] for i in test]).mean_ev.numpy()
            row = {
                "model": name,
                "labels": n,
                "train_wall_s": wall,
                "member_epochs": sum(m.epochs_run for m in report.members),
                "test_mae_ev": float(np.abs(pred - y_test).mean()),
                "val_mae_ev": report.val_mae_ev,
            }
            runs.append(row)
            print(json.dumps(row), flush=True)
    results = {
        "benchmark": "one training round of the default surrogate vs the previous default",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": args.threads,
            "torch": torch.__version__,
        },  # fmt: skip
        "note": args.note,
        "configs": {k: v.to_dict() for k, v in chosen_configs.items()},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    lines = [
        "# One training round: shipped surrogate defaults vs the previous config default",
        "",
        f"Command: `{results['command']}`; {args.threads} torch threads; {args.note}",
        "",
        "| model | labels | training wall s | member-epochs | test MAE (eV, fixed 10 %) |",
        "|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(f"| {r['model']} | {r['labels']} | {r['train_wall_s']:.0f} | "
                     f"{r['member_epochs']} | {r['test_mae_ev']:.3f} |")  # fmt: skip
    by = {(r["model"], r["labels"]): r for r in runs}
    for n in args.sizes:
        for other, words in (
            ("holdout", "the holdout default"),
            ("previous", "the previous default"),
        ):
            if (other, n) in by and ("shipped", n) in by:  # a ratio needs both
                a, b = by[("shipped", n)], by[(other, n)]
                lines.append(
                    f"\nAt {n} labels {words} took {b['train_wall_s'] / a['train_wall_s']:.2f}x "
                    f"the shipped one's training time for a test MAE of {b['test_mae_ev']:.3f} vs "
                    f"{a['test_mae_ev']:.3f} eV."
                )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
