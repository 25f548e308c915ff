"""Surrogate learning curve on the FG-GMAE stand-in: AdsMT ensemble variants vs boosted trees
from 25 to 1,000 labels (not run in CI; ``make bench-surrogate-curve``).

For each N and seed: N random pairs are labelled (their FG DFT GMAE), the model is fit on
them and scored on every other pair of the 2,898; the tree baseline gets the same N labels in
the same process (its iteration count chosen on a fifth of them, then refit on all N). Then the
same at full data on held-out molecules (80/10/10 of the 207 molecules, train + val to fit).

Variants (``--variants``; the levers of issue 16, selectable by name):

``shipped``            ``EnsembleConfig()``: whatever the package ships now
``holdout``            one 80/20 split, spread scaled on the 20 % (the earlier default)
``cross_fit``          member k early-stops on fold k, spread calibrated on out-of-fold residuals
``holdout+scaling``    ``holdout`` with the scaling-relation prior mean
``cross_fit+scaling``  ``cross_fit`` with the scaling-relation prior mean
``...+scaling_ads``    the prior with per-adsorbate offsets
``...+steps8``         at least 8 optimiser steps per epoch (the mini-batch shrinks at small N)
``...+mlip``           frozen SevenNet-0 features of slab atoms and adsorbates as extra inputs
                       (``shipped`` = ``cross_fit+scaling+mlip``; without ``+mlip`` a variant has
                       none)

Writes ``benchmarks/results/surrogate_learning_curve.{json,md,png}``; every finished (variant,
N, seed) is kept in the JSON, so a rerun with the same settings resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import fit_predict_trees, tree_features  # noqa: E402
from curve_report import summarise_curve, write_curve_markdown, write_curve_plot  # noqa: E402
from splits import curve_split, molecule_split  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "benchmarks" / "results" / "surrogate_learning_curve"
VARIANTS = (
    "shipped",  # = cross_fit+scaling+mlip
    "holdout",
    "cross_fit",
    "holdout+scaling",
    "cross_fit+scaling",  # the shipped model before the MLIP features
    "cross_fit+scaling+mlip",
    "cross_fit+scaling_ads",
    "cross_fit+scaling+steps8",
    "holdout+steps8",
)
HOLDOUT_VAL_SHARE = 0.2  # the earlier default's split of N labels (the measurement)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ns", type=int, nargs="+", default=[25, 50, 100, 200, 500, 1000])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--variants", nargs="+", default=["shipped"], choices=VARIANTS)
    p.add_argument("--heldout-seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    p.add_argument("--workers", type=int, default=1, help="processes (1 torch thread each)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--report-only", action="store_true", help="summarise the cached runs only")
    return p.parse_args(argv)


def variant_config(name: str):  # -> EnsembleConfig (torch imported lazily, in workers)
    from alloop.surrogate.types import EnsembleConfig

    cfg = EnsembleConfig()
    if name == "shipped":
        return cfg
    split, *rest = name.split("+")
    prior = next((t for t in rest if t.startswith("scaling")), "none")
    # ``mlip``: lever (c), frozen SevenNet-0 features of slab atoms and adsorbates
    mlip = "sevennet-0" if "mlip" in rest else "none"
    featurizer = replace(cfg.featurizer, mlip_features=mlip)
    cfg = replace(cfg, split=split, prior_mean=prior, featurizer=featurizer)
    steps = [int(t.removeprefix("steps")) for t in rest if t.startswith("steps")]
    train = replace(cfg.train, min_steps_per_epoch=steps[0] if steps else 1)
    return replace(cfg, train=train)


_DATA: dict = {}


def _data() -> dict:
    """FG records, samples and tree features, read once per process."""
    if not _DATA:
        import torch

        torch.set_num_threads(1)
        from alloop.oracles.fg_data import fg_data_root
        from alloop.surrogate.featurizer import Featurizer
        from alloop.surrogate.fg import read_fg_table
        from alloop.surrogate.types import EnsembleConfig, SurrogateSample

        records = read_fg_table(fg_data_root())
        raw = Featurizer(EnsembleConfig().featurizer).descriptors([r.smiles for r in records])
        _DATA.update(
            samples=[SurrogateSample(r.metal, r.slab, r.smiles, r.gmae_ev) for r in records],
            y=np.array([r.gmae_ev for r in records]),
            x_trees=tree_features([r.metal for r in records], raw.numpy()),
            molecules=[r.molecule_key for r in records],
        )
    return _DATA


def _metrics(mean: np.ndarray, std: np.ndarray | None, y: np.ndarray) -> dict[str, float]:
    from alloop.surrogate.metrics import mae, miscalibration_area, success_rate

    out = {"mae_ev": mae(mean, y), "success": success_rate(mean, y)}
    if std is not None:
        out["coverage95"] = float(np.mean(np.abs(mean - y) <= 1.959964 * std))
        out["miscalibration_area"] = miscalibration_area(mean, std, y)
    return out


def fit_model(variant: str, train: np.ndarray, test: np.ndarray, seed: int) -> dict:
    """Fit ``variant`` on the pairs ``train`` (holdout: its first 80 % train, the rest
    validate), score ``test``."""
    from alloop.surrogate.ensemble import AdsMTEnsemble

    d = _data()
    samples = d["samples"]
    cfg = variant_config(variant)
    ens = AdsMTEnsemble(cfg, seed=seed)
    t0 = time.perf_counter()
    if cfg.split == "holdout":
        n_val = max(1, round(HOLDOUT_VAL_SHARE * len(train)))
        cut = len(train) - n_val
        report = ens.fit([samples[i] for i in train[:cut]], [samples[i] for i in train[cut:]])
    else:
        report = ens.fit([samples[i] for i in train])
    train_s = time.perf_counter() - t0
    pred = ens.predict_samples([samples[i] for i in test])
    other: dict[str, float] = {}
    if ens.calibration_inputs is not None:  # the same fit, σ sized by the other stretch
        from alloop.surrogate.calibration import calibrated_std, fit_spread_calibration

        scale, floor = fit_spread_calibration(*ens.calibration_inputs, stretch="unpaired")
        sigma = calibrated_std(pred.member_ev.std(dim=0), scale, floor).numpy()
        m = _metrics(pred.mean_ev.numpy(), sigma, d["y"][test])
        other = {f"{k}_unpaired": m[k] for k in ("coverage95", "miscalibration_area")}
    return (
        other
        | _metrics(pred.mean_ev.numpy(), pred.std_ev.numpy(), d["y"][test])
        | {
            "train_s": train_s,
            "val_mae_ev": report.val_mae_ev,
            "n_val": report.n_val,
            "std_scale": report.std_scale,
            "std_floor_ev": report.std_floor_ev,
        }
    )


def fit_trees(train: np.ndarray, test: np.ndarray, seed: int) -> dict:
    """Boosted trees on the same labels: iterations chosen on the last fifth, then refit on
    all of ``train`` with that count."""
    d = _data()
    x, y = d["x_trees"], d["y"]
    cut = len(train) - max(1, round(HOLDOUT_VAL_SHARE * len(train)))
    t0 = time.perf_counter()
    _, n_iter = fit_predict_trees(
        x[train[:cut]], y[train[:cut]], x[train[cut:]], y[train[cut:]], x[test], seed
    )
    pred, _ = fit_predict_trees(x[train], y[train], x[train], y[train], x[test], seed, n_iter)
    return _metrics(pred, None, y[test]) | {"train_s": time.perf_counter() - t0, "n_iter": n_iter}


def run_one(task: tuple[str, str, int, int]) -> tuple[str, dict]:
    """One (who, split, n, seed): ``who`` is a variant or ``trees``; ``split`` ``random`` or
    ``heldout``. Returns (key, row)."""
    who, split, n, seed = task
    d = _data()
    n_pairs = len(d["y"])
    if split == "random":
        train, test = curve_split(n_pairs, n, seed)
    else:
        tr, va, te = molecule_split(d["molecules"], seed)
        train = np.concatenate([tr, va])
        train = train[np.random.default_rng(seed).permutation(len(train))]
        test = te
    row = fit_trees(train, test, seed) if who == "trees" else fit_model(who, train, test, seed)
    return task_key(task), row | {"n_train": len(train), "n_test": len(test)}


def record(runs: dict, key: str, row: dict, save: Callable[[], None]) -> None:
    """Keep a finished fit's row, show it, and save the results file (the run resumes)."""
    runs[key] = row
    print(key, {k: round(v, 3) for k, v in row.items()}, flush=True)
    save()


def task_key(task: tuple[str, str, int, int]) -> str:
    who, split, n, seed = task
    return f"{who}|{split}|{n}|{seed}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    json_path = args.out.with_suffix(".json")
    old = json.loads(json_path.read_text()) if json_path.is_file() else {}
    runs: dict[str, dict] = old.get("runs", {})
    tasks = []
    for who in ["trees", *args.variants]:
        tasks += [(who, "random", n, s) for n in args.ns for s in args.seeds]
        tasks += [(who, "heldout", 0, s) for s in args.heldout_seeds]
    todo = [] if args.report_only else [t for t in tasks if task_key(t) not in runs]
    # the curve seed by seed (a partial run has whole seeds), largest N first; held-out last
    todo.sort(key=lambda t: (t[1] == "heldout", t[3], -t[2]))  # the curve first
    print(f"{len(tasks)} runs, {len(tasks) - len(todo)} cached, {len(todo)} to do", flush=True)
    t_start = time.perf_counter()

    def save() -> None:
        from alloop.surrogate.types import EnsembleConfig

        result = summarise_curve(runs, args.variants, args.ns, args.seeds, args.heldout_seeds)
        result |= {
            "benchmark": "FG-GMAE stand-in learning curve (2,898 pairs, 14 metals x 207 molecules)",
            "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
            "shipped_config": EnsembleConfig().to_dict(),
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "workers": args.workers,
                "torch_threads_per_worker": 1,
                "load_avg_at_save": os.getloadavg(),
            },
            "wall_s_this_invocation": time.perf_counter() - t_start,
            "runs": runs,
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=1))
        write_curve_markdown(result, args.out.with_suffix(".md"))
        write_curve_plot(result, args.out.with_suffix(".png"))

    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            for key, row in pool.map(run_one, todo):
                record(runs, key, row, save)
    else:
        for task in todo:
            record(runs, *run_one(task), save)
    save()
    print(f"wrote {json_path} in {time.perf_counter() - t_start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
