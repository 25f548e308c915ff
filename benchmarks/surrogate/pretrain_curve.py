"""Lever (d) of issue 16, measured: pretrain the surrogate on MLIP labels of one half of the FG
molecules, fine-tune it on N DFT labels of the other half (not run in CI;
``make bench-surrogate-pretrain``).

For each seed the 207 molecules are split at random into a *pretrain* half and a *benchmark*
half (disjoint molecules; every metal in both, as each molecule has all 14). The shipped
ensemble (``EnsembleConfig()``) is fit once on the SevenNet-MF-0 single-point GMAE of every
pretrain-half pair (``oracles/data/fg_mlip_sevennet_mf0.csv``: the minimum over single points
at the DFT configurations, so optimistic rough labels; no DFT label goes in). Then, on the
benchmark half only, N random pairs get their DFT label and every other benchmark-half pair is
the test set; on the same N labels and test pairs, in the same process:

``trees``           boosted trees (``learning_curve.fit_trees``)
``shipped``         ``EnsembleConfig()`` from scratch: what the package ships now
``pretrained``      the same config, every (cross-fitted) member starting from the seed's
                    pretrained checkpoint, learning rate × ``transfer_lr_factor`` (0.3, the
                    library's default for transfer)
``pretrained+lr1``  the same with the full learning rate (factor 1.0)

Also per seed: the pretrained checkpoint alone on every benchmark-half pair (``N = 0``: no DFT
label) and the MLIP labels themselves against DFT there (context only: a campaign would pay an
MLIP calculation for each). Pretraining seconds are reported apart from fine-tuning seconds: a
checkpoint shipped with the package would pay them once.

Writes ``benchmarks/results/surrogate_pretrain_curve.{json,md}``; every finished (who, N, seed)
and each seed's pretraining are kept in the JSON, and checkpoints under
``.cache/pretrain_curve/``, so a rerun with the same settings resumes. One process, one torch
thread (the pretrained checkpoint is shared by all fits of its seed).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from learning_curve import _data, _metrics, fit_trees, record  # noqa: E402
from pretrain_report import write_pretrain_markdown  # noqa: E402
from splits import molecule_halves  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "benchmarks" / "results" / "surrogate_pretrain_curve"
CACHE = REPO / ".cache" / "pretrain_curve"
VARIANTS = ("shipped", "pretrained", "pretrained+lr1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ns", type=int, nargs="+", default=[25, 50, 100, 200])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=["shipped", "pretrained"], choices=VARIANTS)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--cache", type=Path, default=CACHE, help="pretrained checkpoints")
    p.add_argument("--report-only", action="store_true", help="summarise the cached runs only")
    p.add_argument(
        "--machine-note", default=None, help="what else ran on the machine (kept in the JSON)"
    )
    return p.parse_args(argv)


def variant_config(name: str):  # -> EnsembleConfig
    from alloop.surrogate.types import EnsembleConfig

    cfg = EnsembleConfig()
    return replace(cfg, transfer_lr_factor=1.0) if name == "pretrained+lr1" else cfg


_FEATURIZER: list = []


def _featurizer():  # -> Featurizer: one per process, shared by every fit (same config)
    if not _FEATURIZER:
        from alloop.surrogate.featurizer import Featurizer
        from alloop.surrogate.types import EnsembleConfig

        _FEATURIZER.append(Featurizer(EnsembleConfig().featurizer))
    return _FEATURIZER[0]


def mlip_labels() -> np.ndarray:
    """SevenNet-MF-0 single-point GMAE (eV) of every FG pair, in ``_data()`` order."""
    from alloop.oracles.fg_data import fg_data_root
    from alloop.oracles.lowfi_replay import default_lowfi_table, read_lowfi_table
    from alloop.surrogate.fg import read_fg_table

    rows, _ = read_lowfi_table(default_lowfi_table())
    out = [rows[(r.metal, r.molecule_key)].single_point_ev for r in read_fg_table(fg_data_root())]
    if any(v is None for v in out):
        raise SystemExit("the low-fidelity table lacks a single point for some FG pair")
    return np.array(out, dtype=float)


def benchmark_split(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """N random benchmark-half pairs to label (nested in N) and every other one to test."""
    _, bench = molecule_halves(_data()["molecules"], seed)
    perm = np.random.default_rng((seed, 1)).permutation(bench)
    return perm[:n], perm[n:]


def pretrain(seed: int, cache: Path) -> tuple[bytes, dict]:
    """The seed's checkpoint: ``EnsembleConfig()`` fit on the MLIP labels of every
    pretrain-half pair. Returns (bytes, row) and caches both."""
    from alloop.surrogate.ensemble import AdsMTEnsemble
    from alloop.surrogate.types import EnsembleConfig

    path = cache / f"pretrain_seed{seed}.pt"
    if path.is_file() and path.with_suffix(".json").is_file():
        return path.read_bytes(), json.loads(path.with_suffix(".json").read_text())
    d = _data()
    pre, bench = molecule_halves(d["molecules"], seed)
    low = mlip_labels()
    samples = [replace(d["samples"][i], gmae_ev=float(low[i])) for i in pre]
    ens = AdsMTEnsemble(EnsembleConfig(), seed=seed, featurizer=_featurizer())
    t0 = time.perf_counter()
    report = ens.fit(samples)
    pretrain_s = time.perf_counter() - t0
    pred = ens.predict_samples([d["samples"][i] for i in bench])
    zero = _metrics(pred.mean_ev.numpy(), pred.std_ev.numpy(), d["y"][bench])
    mlip_mae = float(np.mean(np.abs(low[bench] - d["y"][bench])))
    row = {
        "pretrain_s": pretrain_s,
        "n_pretrain_pairs": len(pre),
        "n_pretrain_molecules": len(set(d["molecules"][i] for i in pre)),
        "n_benchmark_pairs": len(bench),
        "oof_mae_vs_mlip_ev": report.val_mae_ev,
        "best_epochs": [m.best_epoch for m in report.members],
        "mlip_label_mae_vs_dft_benchmark_half_ev": mlip_mae,
    } | {f"zero_shot_{k}": v for k, v in zero.items()}
    cache.mkdir(parents=True, exist_ok=True)
    data = ens.to_bytes()
    path.write_bytes(data)
    path.with_suffix(".json").write_text(json.dumps(row, indent=1))
    return data, row


def fit_model(who: str, train: np.ndarray, test: np.ndarray, seed: int, ckpt: bytes | None) -> dict:
    """Fit variant ``who`` on the DFT labels of ``train`` (pretrained variants from ``ckpt``),
    score ``test``."""
    from alloop.surrogate.ensemble import AdsMTEnsemble

    d = _data()
    samples = d["samples"]
    ens = AdsMTEnsemble(variant_config(who), seed=seed, featurizer=_featurizer())
    t0 = time.perf_counter()
    report = ens.fit([samples[i] for i in train], pretrained=ckpt)
    train_s = time.perf_counter() - t0
    pred = ens.predict_samples([samples[i] for i in test])
    return _metrics(pred.mean_ev.numpy(), pred.std_ev.numpy(), d["y"][test]) | {
        "train_s": train_s,
        "val_mae_ev": report.val_mae_ev,
        "warm_started": float(report.warm_started),
        "mean_best_epoch": float(np.mean([m.best_epoch for m in report.members])),
        "std_scale": report.std_scale,
        "std_floor_ev": report.std_floor_ev,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    json_path = args.out.with_suffix(".json")
    old = json.loads(json_path.read_text()) if json_path.is_file() else {}
    runs: dict[str, dict] = old.get("runs", {})
    tasks = [(w, n, s) for s in args.seeds for n in args.ns for w in ["trees", *args.variants]]
    todo = [] if args.report_only else [t for t in tasks if "|".join(map(str, t)) not in runs]
    print(f"{len(tasks)} runs, {len(tasks) - len(todo)} cached, {len(todo)} to do", flush=True)
    t_start = time.perf_counter()

    def save() -> None:
        from alloop.surrogate.types import EnsembleConfig

        command = "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:])
        machine = {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "processes": 1,
            "torch_threads": 1,
            "load_avg_at_save": os.getloadavg(),
        }
        if args.report_only and old:  # the runs' own command and machine, not the report's
            command, machine = old["command"], old["machine"]
        note = args.machine_note or old.get("machine_note")
        # every invocation that ran fits (a resumed or extended run adds one)
        commands = list(old.get("commands", [old["command"]] if old.get("command") else []))
        if not args.report_only and command not in commands:
            commands.append(command)
        result = {
            "benchmark": "FG-GMAE stand-in, lever (d): pretrain on SevenNet-MF-0 single-point "
            "labels of half the molecules, fine-tune on N DFT labels of the other half",
            "command": command,
            "commands": commands,
            "variants": args.variants,
            "ns": args.ns,
            "seeds": args.seeds,
            "shipped_config": EnsembleConfig().to_dict(),
            "machine": machine,
            "machine_note": note,
            "wall_s_this_invocation": time.perf_counter() - t_start,
            "runs": runs,
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=1))
        write_pretrain_markdown(result, args.out.with_suffix(".md"))

    ckpts: dict[int, bytes] = {}
    for who, n, seed in todo:
        if who.startswith("pretrained") and seed not in ckpts:
            ckpts[seed], row = pretrain(seed, args.cache)
            runs.setdefault(f"pretrain|0|{seed}", row)
            print(f"pretrain|0|{seed}", {k: v for k, v in row.items() if k != "best_epochs"})
        train, test = benchmark_split(seed, n)
        if who == "trees":
            row = fit_trees(train, test, seed)
        else:
            row = fit_model(who, train, test, seed, ckpts.get(seed) if who != "shipped" else None)
        record(runs, f"{who}|{n}|{seed}", row | {"n_train": len(train), "n_test": len(test)}, save)
    save()
    print(f"wrote {json_path} in {time.perf_counter() - t_start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
