"""Supervised multi-fidelity check (issue 9, part 2): how well each surrogate variant predicts
DFT-level GMAE when every pair has an MLIP label and a few have a DFT label.

Data: the FG-GMAE stand-in (2,898 pairs, DFT) and its low-fidelity companion
(``oracles/data/fg_mlip_sevennet_mf0.csv``: SevenNet-MF-0 single points at the DFT geometries).
For each seed and DFT fraction (2, 5, 10, 20 % of the pairs, drawn at random), each variant
trains on the same labels and is scored on the pairs *without* a DFT label, against DFT:

* ``supersede``  one label per pair (DFT where there is one, else MLIP), the loop's baseline;
* ``token``      every label, with a learned fidelity embedding, queried at DFT;
* ``delta``      ``token`` + DFT = MLIP label + learned correction (the MLIP label as input);
* ``transfer``   pretrain on the MLIP labels, fine-tune on the DFT labels;
* ``dft_only``   the DFT labels alone (what a campaign without MLIP labels would learn);
* ``mlip_raw``   no model: the MLIP label itself (the error of the low fidelity).

Model (all variants): the AL benchmark's ensemble, 3 members, hidden 64, 2 graph layers,
24 neighbours within 6 Å, ≤ 60 epochs, patience 10, batch 256, lr 2e-3; one torch thread.
``--mlip sevennet-0`` changes only the inputs: frozen SevenNet-0 features of slab atoms and
adsorbates (`alloop.surrogate.mlip_features`), rows named ``<variant>+mlip``.
Every run is cached in ``benchmarks/multifidelity/.cache/supervised/`` so the script resumes;
runs already in the results JSON count as cached (a fresh clone keeps the committed rows).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multifidelity/supervised.py
Writes benchmarks/results/multifidelity_supervised.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from alloop.oracles.fg_data import fg_data_root
from alloop.oracles.lowfi_replay import LowFidelityReplayOracle
from alloop.surrogate.ensemble import AdsMTEnsemble
from alloop.surrogate.featurizer import FeaturizerConfig
from alloop.surrogate.fg import read_fg_table
from alloop.surrogate.fidelity import prepare_samples, split_by_fidelity
from alloop.surrogate.model import AdsMTConfig
from alloop.surrogate.training import TrainConfig
from alloop.surrogate.types import EnsembleConfig, SurrogateSample

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(__file__).resolve().parent / ".cache" / "supervised"
RESULTS = REPO / "benchmarks" / "results"
VARIANTS = ("supersede", "token", "delta", "transfer", "dft_only")
FRACTIONS = (0.02, 0.05, 0.10, 0.20)
#: DFT minima that are not the intact molecule (shared/data/README.md)
ANOMALIES = {("Ru", "oximes/49Y3"), ("Fe", "aromatics/44S1")}


def config(
    mode: str,
    members: int,
    max_epochs: int,
    patience: int,
    mlip: str = "none",
    split: str = "holdout",
    prior: str = "none",
) -> EnsembleConfig:
    return EnsembleConfig(
        ensemble_size=members,
        featurizer=FeaturizerConfig(cutoff_ang=6.0, max_neighbors=24, mlip_features=mlip),
        model=AdsMTConfig(hidden_dim=64, num_graph_layers=2, head_hidden_dim=128,
                          ads_hidden_dim=256),
        train=TrainConfig(max_epochs=max_epochs, batch_size=256, learning_rate=2e-3,
                          early_stop_patience=patience),
        device="cpu",
        fidelity_mode=mode,
        split=split,
        prior_mean=prior,
    )  # fmt: skip


def load() -> tuple[list[SurrogateSample], list[SurrogateSample], list[tuple[str, str]]]:
    """Per pair: its DFT sample (fidelity 0), its MLIP sample (fidelity 1), its key."""
    records = read_fg_table(fg_data_root())
    low = LowFidelityReplayOracle()
    dft, mlip, keys = [], [], []
    for r in records:
        value = low.value_of(r.metal, r.molecule_key)
        if value is None:
            raise SystemExit(f"no low-fidelity value for {r.metal}:{r.molecule_key}")
        dft.append(SurrogateSample(r.metal, r.slab, r.smiles, r.gmae_ev, 0))
        mlip.append(SurrogateSample(r.metal, r.slab, r.smiles, value, 1))
        keys.append((r.metal, r.molecule_key))
    return dft, mlip, keys


def dft_pairs(n: int, fraction: float, seed: int) -> np.ndarray:
    """The pairs with a DFT label: the same for every variant of a (fraction, seed)."""
    rng = np.random.default_rng(10_000 * seed + round(1000 * fraction))
    return np.sort(rng.choice(n, size=max(2, round(fraction * n)), replace=False))


def run_one(
    variant: str, fraction: float, seed: int, data: tuple, args: argparse.Namespace
) -> dict[str, Any]:
    dft, mlip, keys = data
    n = len(dft)
    known = dft_pairs(n, fraction, seed)
    rest = np.setdiff1d(np.arange(n), known)
    truth = np.array([dft[i].gmae_ev for i in rest])
    low_rest = np.array([mlip[i].gmae_ev for i in rest])
    ok = np.array([keys[i] not in ANOMALIES for i in rest])
    t0 = time.perf_counter()
    if variant == "mlip_raw":
        mean, std, report = low_rest, None, None
    else:
        mode = "supersede" if variant == "dft_only" else variant
        samples = [dft[i] for i in known] + ([] if variant == "dft_only" else mlip)
        prepared = prepare_samples(samples, mode)
        train, val = split_by_fidelity(prepared, 0.1, seed)
        cfg = config(
            mode, args.members, args.max_epochs, args.patience, args.mlip, args.split, args.prior
        )
        ens = AdsMTEnsemble(cfg, seed=seed)
        report = ens.fit(train, val)
        query = [replace(dft[i], low_fidelity_ev=mlip[i].gmae_ev) for i in rest]
        pred = ens.predict_samples(query)
        mean, std = pred.mean_ev.numpy(), pred.std_ev.numpy()
    err = np.abs(mean - truth)
    out: dict[str, Any] = {
        "variant": variant + ("" if variant == "mlip_raw" else row_suffix(args)),
        "fraction": fraction,
        "seed": seed,
        "n_dft": int(len(known)),
        "n_eval": int(len(rest)),
        "mae_ev": float(err.mean()),
        "mae_without_anomalies_ev": float(err[ok].mean()),
        "within_0p1": float((err < 0.1).mean()),
        "spearman": float(spearmanr(mean, truth).statistic),
        "wall_s": time.perf_counter() - t0,
    }
    if std is not None:
        out["coverage_95"] = float((err <= 1.96 * std).mean())
        out["mean_sigma_ev"] = float(std.mean())
    if report is not None:
        out["val_mae_ev"] = report.val_mae_ev
        out["epochs"] = [m.epochs_run for m in report.members]
    return out


def row_suffix(args: argparse.Namespace) -> str:
    """What a row's name adds to its variant for inputs and a model other than the check's
    first one (holdout split, no prior, no MLIP features): ``delta+cf+scaling+mlip``."""
    return (
        ("+cf" if args.split == "cross_fit" else "")
        + ("+scaling" if args.prior != "none" else "")
        + ("+mlip" if args.mlip != "none" else "")
    )


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, dict[str, Any]] = {}
    named = (*VARIANTS, "mlip_raw")
    extra = sorted({r["variant"] for r in runs} - set(named))  # e.g. delta+mlip
    for variant in (*named, *extra):
        table[variant] = {}
        for f in FRACTIONS:
            rows = [r for r in runs if r["variant"] == variant and r["fraction"] == f]
            if not rows:
                continue
            mae = np.array([r["mae_ev"] for r in rows])
            table[variant][f"{f:g}"] = {
                "n_seeds": len(rows),
                "mae_ev": float(mae.mean()),
                "mae_std_ev": float(mae.std()),
                "mae_without_anomalies_ev": float(
                    np.mean([r["mae_without_anomalies_ev"] for r in rows])
                ),
                "spearman": float(np.mean([r["spearman"] for r in rows])),
                "within_0p1": float(np.mean([r["within_0p1"] for r in rows])),
                "coverage_95": (
                    float(np.mean([r["coverage_95"] for r in rows]))
                    if "coverage_95" in rows[0]
                    else None
                ),
                "wall_s": float(np.mean([r["wall_s"] for r in rows])),
            }
    return table


def markdown(results: dict[str, Any]) -> str:
    t = results["summary"]
    lines = [
        "# Multi-fidelity surrogate: supervised check (FG-GMAE stand-in)",
        "",
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']}  ",
        f"Wall time: {results['wall_s']:.0f} s. {results['note']}",
        "",
        "Every pair has an MLIP label (SevenNet-MF-0 single point at the DFT geometries, "
        "`oracles/data/fg_mlip_sevennet_mf0.csv`); a random share of pairs also has its DFT "
        "label. Scored: DFT-level MAE (eV) on the pairs **without** a DFT label, mean ± std over "
        "seeds (same DFT pairs for every variant of a seed).",
        "",
        "| variant | " + " | ".join(f"{f:.0%} DFT" for f in FRACTIONS) + " |",
        "|---|" + "---|" * len(FRACTIONS),
    ]
    for variant, row in t.items():
        cells = []
        for f in FRACTIONS:
            c = row.get(f"{f:g}")
            if c is None:
                cells.append("—")
            elif c["n_seeds"] == 1:
                cells.append(f"{c['mae_ev']:.3f} (1 seed)")
            else:
                cells.append(f"{c['mae_ev']:.3f} ± {c['mae_std_ev']:.3f} ({c['n_seeds']} seeds)")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += ["", "Without the 2 dissociated DFT minima; Spearman; share within 0.1 eV; "
              "95 % interval coverage (ensemble σ, calibrated on DFT validation labels):", "",
              "| variant | DFT share | MAE w/o anomalies | Spearman | within 0.1 eV | "
              "coverage 95 % | wall s |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for variant, row in t.items():
        for f in FRACTIONS:
            c = row.get(f"{f:g}")
            if c is None:
                continue
            cov = "—" if c["coverage_95"] is None else f"{c['coverage_95']:.0%}"
            lines.append(
                f"| {variant} | {f:.0%} | {c['mae_without_anomalies_ev']:.3f} | "
                f"{c['spearman']:.3f} | {c['within_0p1']:.0%} | {cov} | {c['wall_s']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--max-epochs", type=int, default=60)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--variants", nargs="*", default=[*VARIANTS, "mlip_raw"])
    p.add_argument("--fractions", nargs="*", type=float, default=list(FRACTIONS))
    p.add_argument(
        "--mlip",
        choices=("none", "sevennet-0"),
        default="none",
        help="frozen MLIP features as extra inputs (rows named <variant>+mlip)",
    )
    p.add_argument(
        "--split",
        choices=("holdout", "cross_fit"),
        default="holdout",
        help="members' split (rows named <variant>+cf with cross_fit)",
    )
    p.add_argument(
        "--prior",
        choices=("none", "scaling"),
        default="none",
        help="prior mean the members learn the residual over (rows +scaling)",
    )
    p.add_argument("--note", default="", help="what else ran on the machine")
    p.add_argument("--report-only", action="store_true", help="aggregate cached runs only")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data = load()
    CACHE.mkdir(parents=True, exist_ok=True)
    runs = []
    tag = f"m{args.members}-e{args.max_epochs}-p{args.patience}"
    suffix = row_suffix(args)
    committed = RESULTS / "multifidelity_supervised.json"
    known = {  # the committed rows (this tag's), so a fresh clone resumes from them
        (r["variant"], r["fraction"], r["seed"]): r
        for r in (json.loads(committed.read_text())["runs"] if committed.is_file() else [])
    }
    # cheap variants first, so a partial run already compares something
    order = sorted(args.variants, key=lambda v: ("mlip_raw", "dft_only", "delta").index(v)
                   if v in ("mlip_raw", "dft_only", "delta") else 9)  # fmt: skip
    for seed in range(args.seeds):
        for fraction in args.fractions:
            for variant in order:
                name = variant + (suffix if variant != "mlip_raw" else "")
                path = CACHE / f"{tag}-{name}-{fraction:g}-{seed}.json"
                if path.is_file():
                    runs.append(json.loads(path.read_text()))
                    continue
                if (name, fraction, seed) in known and tag == "m3-e60-p10":
                    runs.append(known[(name, fraction, seed)])
                    continue
                if args.report_only:
                    continue
                row = run_one(variant, fraction, seed, data, args)
                path.write_text(json.dumps(row))
                runs.append(row)
                print(json.dumps({k: row[k] for k in ("variant", "fraction", "seed", "mae_ev",
                                                      "wall_s")}), flush=True)  # fmt: skip
    # every committed row stays; this invocation's rows replace theirs
    merged = {(r["variant"], r["fraction"], r["seed"]): r for r in [*known.values(), *runs]}
    runs = list(merged.values())
    results = {
        "benchmark": "multi-fidelity supervised check, FG-GMAE stand-in",
        "command": "OMP_NUM_THREADS=1 .venv/bin/python "
        + " ".join(
            [
                Path(sys.argv[0]).relative_to(REPO).as_posix()
                if Path(sys.argv[0]).is_absolute()
                else sys.argv[0]
            ]
            + sys.argv[1:]
        ),  # fmt: skip
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "torch_threads": 1,
        },  # fmt: skip
        "model": config("delta", args.members, args.max_epochs, args.patience).to_dict(),
        "wall_s": time.perf_counter() - t0,
        "note": args.note,
        "summary": summarise(runs),
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "multifidelity_supervised.json").write_text(json.dumps(results, indent=1))
    (RESULTS / "multifidelity_supervised.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
