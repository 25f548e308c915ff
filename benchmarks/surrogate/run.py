"""FG-GMAE stand-in benchmark of the AdsMT ensemble against boosted trees (not run in CI).

One command (from the repository root)::

    .venv/bin/python benchmarks/surrogate/run.py

writes ``benchmarks/results/surrogate.json`` and ``.md``: random 80/10/10 pair splits and
held-out-molecule splits (5 seeds each), test MAE / success rate (|error| < 0.1 eV) with and
without the two anomalous pairs, uncertainty quality (miscalibration area, Spearman of sigma vs
|error|, MAE of the 10% most confident), the tree baseline on the same splits, training speed
and pool-scoring throughput with and without the slab-encoding cache.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import fit_predict_trees, tree_features  # noqa: E402
from report import summarise, write_markdown  # noqa: E402
from speed import measure_speed  # noqa: E402
from splits import ANOMALIES, molecule_split, random_split  # noqa: E402

from alloop.surrogate.ensemble import AdsMTEnsemble  # noqa: E402
from alloop.surrogate.featurizer import FeaturizerConfig  # noqa: E402
from alloop.surrogate.fg import read_fg_table  # noqa: E402
from alloop.surrogate.metrics import (  # noqa: E402
    confident_fraction_mae,
    mae,
    miscalibration_area,
    spearman_std_error,
    success_rate,
)
from alloop.surrogate.model import AdsMTConfig  # noqa: E402
from alloop.surrogate.training import TrainConfig  # noqa: E402
from alloop.surrogate.types import EnsembleConfig, SurrogateSample  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fg-root", type=Path, default=REPO.parent / "shared" / "data" / "fg")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "surrogate")
    p.add_argument("--seeds", type=int, default=5, help="random-split seeds 0..n-1")
    p.add_argument("--heldout-seeds", type=int, default=5, help="held-out-molecule seeds")
    p.add_argument("--members", type=int, default=5)
    p.add_argument("--max-epochs", type=int, default=60)
    p.add_argument("--patience", type=int, default=30, help="early-stopping patience (epochs)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--hidden-dim", type=int, default=64)
    p.add_argument("--graph-layers", type=int, default=2)
    p.add_argument("--self-layers", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--cutoff-ang", type=float, default=6.0)
    p.add_argument("--max-neighbors", type=int, default=24)
    p.add_argument("--no-stereo", action="store_true", help="208 descriptors only")
    p.add_argument("--descriptor-transform", default="none", choices=["none", "signed_log1p"])
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument(
        "--skip", nargs="*", default=[], choices=["random", "heldout", "trees", "model", "speed"]
    )
    p.add_argument("--synthetic-surfaces", type=int, default=500)
    p.add_argument("--synthetic-adsorbates", type=int, default=200)
    p.add_argument(
        "--uncached-pairs",
        type=int,
        default=1000,
        help="pairs scored on the naive no-cache path of the synthetic pool",
    )
    return p.parse_args(argv)


def ensemble_config(args: argparse.Namespace) -> EnsembleConfig:
    return EnsembleConfig(
        ensemble_size=args.members,
        featurizer=FeaturizerConfig(
            cutoff_ang=args.cutoff_ang,
            max_neighbors=args.max_neighbors,
            stereo_features=not args.no_stereo,
        ),
        model=AdsMTConfig(
            hidden_dim=args.hidden_dim,
            num_graph_layers=args.graph_layers,
            num_self_layers=args.self_layers,
            dropout=args.dropout,
            head_hidden_dim=2 * args.hidden_dim,
            ads_hidden_dim=4 * args.hidden_dim,
        ),
        train=TrainConfig(
            max_epochs=args.max_epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            early_stop_patience=args.patience,
            weight_decay=args.weight_decay,
        ),
        descriptor_transform=args.descriptor_transform,
    )


def pair_metrics(
    pred: np.ndarray, std: np.ndarray | None, y: np.ndarray, ok: np.ndarray
) -> dict[str, float]:
    out = {
        "mae_ev": mae(pred, y),
        "success": success_rate(pred, y),
        "mae_ev_wo_anomalies": mae(pred[ok], y[ok]),
        "success_wo_anomalies": success_rate(pred[ok], y[ok]),
    }
    if std is not None:
        out |= {
            "miscalibration_area": miscalibration_area(pred, std, y),
            "spearman_std_abs_error": spearman_std_error(std, pred, y),
            "mae_ev_top10pct_confident": confident_fraction_mae(std, pred, y, 0.1),
        }
    return out


def run_split(
    name: str, seed: int, idx: tuple, data: dict, args: argparse.Namespace, results: dict
) -> AdsMTEnsemble | None:
    tr, va, te = idx
    samples, y, ok = data["samples"], data["y"], data["ok"]
    row: dict[str, object] = {"seed": seed, "n_train": len(tr), "n_val": len(va), "n_test": len(te)}
    ens = None
    if "model" not in args.skip:
        ens = AdsMTEnsemble(ensemble_config(args), seed=seed)
        rep = ens.fit([samples[i] for i in tr], [samples[i] for i in va])
        pred = ens.predict_samples([samples[i] for i in te])
        row["model"] = pair_metrics(pred.mean_ev.numpy(), pred.std_ev.numpy(), y[te], ok[te]) | {
            "val_mae_ev": rep.val_mae_ev,
            "std_scale": rep.std_scale,
            "train_s": rep.wall_s,
            "s_per_epoch": float(np.mean([m.seconds_per_epoch for m in rep.members])),
            "epochs_run": [m.epochs_run for m in rep.members],
            "best_epochs": [m.best_epoch for m in rep.members],
        }
    if "trees" not in args.skip:
        x = data["x_trees"]
        t0 = time.perf_counter()
        pred_t, n_iter = fit_predict_trees(x[tr], y[tr], x[va], y[va], x[te], seed)
        row["trees"] = pair_metrics(pred_t, None, y[te], ok[te]) | {
            "n_iter": n_iter,
            "train_s": time.perf_counter() - t0,
        }
    results.setdefault(name, {"per_seed": []})["per_seed"].append(row)
    results[name]["summary"] = summarise(results[name]["per_seed"])
    print(
        f"[{name} seed {seed}] "
        + json.dumps(
            {
                k: {
                    m: round(v, 4)
                    for m, v in row[k].items()
                    if m
                    in (
                        "mae_ev",
                        "success",
                        "miscalibration_area",
                        "spearman_std_abs_error",
                        "s_per_epoch",
                    )
                }
                for k in ("model", "trees")
                if k in row
            }
        ),
        flush=True,
    )
    return ens


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    records = read_fg_table(args.fg_root)
    samples = [SurrogateSample(r.metal, r.slab, r.smiles, r.gmae_ev) for r in records]
    metals = [r.metal for r in records]
    mol_keys = [r.molecule_key for r in records]
    cfg = ensemble_config(args)
    from alloop.surrogate.featurizer import Featurizer

    raw = Featurizer(cfg.featurizer).descriptors([r.smiles for r in records]).numpy()
    data = {
        "samples": samples,
        "y": np.array([r.gmae_ev for r in records]),
        "ok": np.array([pair not in ANOMALIES for pair in zip(metals, mol_keys, strict=True)]),
        "x_trees": tree_features(metals, raw),
    }
    results: dict[str, object] = {
        "benchmark": "FG-GMAE stand-in (2,898 pairs, 14 metals x 207 molecules)",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
            "torch_threads": args.threads,
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
        },
        "config": cfg.to_dict(),
    }
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    json_path.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        results["wall_s"] = time.perf_counter() - t_start
        json_path.write_text(json.dumps(results, indent=2))
        write_markdown(results, md_path)

    last = None
    if "random" not in args.skip:
        for seed in range(args.seeds):
            last = (
                run_split(
                    "random_split", seed, random_split(len(samples), seed), data, args, results
                )
                or last
            )
            save()
    if "heldout" not in args.skip:
        for seed in range(args.heldout_seeds):
            run_split(
                "heldout_molecules", seed, molecule_split(mol_keys, seed), data, args, results
            )
            save()
    if "speed" not in args.skip:
        if last is None:
            last = AdsMTEnsemble(replace(cfg, train=replace(cfg.train, max_epochs=1)), seed=0)
            last.fit(samples[:2000], samples[2000:2300])
        results["speed"] = measure_speed(last, records, args)
        save()
    print(f"wrote {json_path} and {md_path} in {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
