"""Does site supervision teach the surrogate's attention where adsorbates bind? Real EMT labels.

The AdsMT cross-attention over slab atoms is the surrogate's per-atom site score. Trained on the
GMAE alone it has no reason to point at binding atoms; the optional site loss
(:mod:`alloop.surrogate.site_loss`, ``TrainConfig.site_loss``) pulls it toward the slab atoms
that the oracle's minimum structure binds (``binding_surface_atoms`` in every MLIP label's
provenance). This script measures what the loss buys on slabs whose atoms differ:

1. A pool of surfaces with distinct sites (fixed here before any figure was measured): stepped
   fcc(211), ordered fcc(111)/(100) alloys (every 3rd / 2nd atom a second metal, lattice by
   Vegard's rule), fcc(211) alloys, fcc(111) with a top-layer vacancy; EMT metals only (Al Cu
   Ag Au Ni Pd Pt) x *O *H *N *OH *CO *C. Each surface is either a training surface or a
   held-out one (other metals or metal pairs of the same kinds); no label of a held-out
   surface trains the surrogate.
2. Every pair is labelled by the project's EMT oracle (`MLIPOracle`, the shipped search:
   patience, cap, tolerance of ``ORACLE_DEFAULTS``, fmax 0.05 eV/Å); labels with their binding
   atoms are cached in ``.cache/site_attention/labels.json`` (a rerun labels nothing twice),
   fitted ensembles beside them (``site_scores.py --pool sites`` reuses them), and each
   (seed, loss, weight) evaluation in ``runs.json``, so a run with more seeds or weights only
   computes what is new.
3. For each seed, the shipped surrogate (``EnsembleConfig()``: 5 members, cross-fitting,
   scaling prior, SevenNet-0 features) is fitted on the training surfaces' labels without the
   loss and with ``binding_mass`` at each ``--weights`` value. On the held-out pairs:
   * top-k hit rate: the share of pairs whose k best-scored atoms (ensemble-mean attention)
     contain a binding atom, k = 1 and 3;
   * chance: the same for k atoms drawn at random from the slab (exact, averaged over pairs),
     and for the geometric guess "least-coordinated atoms first" (ties drawn at random);
   * GMAE MAE (ensemble mean vs the EMT label).
   Targets (issue 21): top-3 >= 80 % on held-out surfaces, MAE no worse than without the loss
   within seed noise.

Run (labels ~10 min on one core the first time, then ~4 min per seed and condition):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/oracles/site_attention.py
Writes benchmarks/results/site_attention.json and .md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import fcc100, fcc111, fcc211
from ase.data import reference_states
from ase.neighborlist import neighbor_list

from alloop.oracles.adsorbates import adsorbate_from_database
from alloop.oracles.defaults import ORACLE_DEFAULTS
from alloop.oracles.mlip_oracle import MLIPOracle
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.slabs import prepare_slab
from alloop.oracles.types import OraclePair

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / ".cache" / "site_attention"
#: adsorbate name -> SMILES the surrogate reads (the oracle builds the atoms from its database)
ADSORBATES = {"*O": "[O]", "*H": "[H]", "*N": "[N]", "*OH": "[OH]", "*CO": "[C-]#[O+]",
              "*C": "[C]"}  # fmt: skip
VACUUM_ANG = 7.0
#: (kind, host, guest or None); held-out surfaces are other metals / pairs of the same kinds
TRAIN_SURFACES = (
    ("step", "Cu", None), ("step", "Au", None), ("step", "Ni", None), ("step", "Pt", None),
    ("step", "Al", None),
    ("alloy111", "Cu", "Pt"), ("alloy111", "Ni", "Au"), ("alloy111", "Ag", "Pd"),
    ("alloy111", "Al", "Ni"), ("alloy111", "Pt", "Cu"), ("alloy111", "Au", "Ag"),
    ("alloy100", "Cu", "Au"), ("alloy100", "Ni", "Pd"),
    ("step_alloy", "Cu", "Pd"), ("step_alloy", "Pt", "Ni"),
    ("vacancy", "Cu", None), ("vacancy", "Pt", None), ("vacancy", "Ni", None),
)  # fmt: skip
HELD_OUT_SURFACES = (
    ("step", "Ag", None), ("step", "Pd", None),
    ("alloy111", "Pd", "Au"), ("alloy111", "Cu", "Ni"), ("alloy100", "Pt", "Cu"),
    ("step_alloy", "Au", "Cu"), ("vacancy", "Au", None), ("vacancy", "Pd", None),
)  # fmt: skip
KS = (1, 3)


def _d_nn(metal: str) -> float:
    return float(reference_states[_z(metal)]["a"]) / math.sqrt(2)  # type: ignore[index]


def _z(metal: str) -> int:
    from ase.data import atomic_numbers

    return atomic_numbers[metal]


def _mix(slab: Atoms, guest: str, every: int) -> Atoms:
    symbols = slab.get_chemical_symbols()
    slab.set_chemical_symbols([guest if i % every == 0 else s for i, s in enumerate(symbols)])
    return slab


def build_surface(kind: str, host: str, guest: str | None) -> tuple[str, Atoms]:
    """(name, tagged and constrained slab) of one pool surface, 26-27 atoms."""
    every = {"alloy111": 3, "alloy100": 2, "step_alloy": 3}.get(kind)
    d = _d_nn(host)
    if guest is not None and every is not None:
        d = (1 - 1 / every) * d + _d_nn(guest) / every
    a = d * math.sqrt(2)
    builders: dict[str, Callable[..., Atoms]] = {
        "step": fcc211, "step_alloy": fcc211, "alloy111": fcc111, "alloy100": fcc100,
        "vacancy": fcc111,
    }  # fmt: skip
    slab = builders[kind](host, size=(3, 3, 3), a=a, vacuum=VACUUM_ANG)
    if guest is not None and every is not None:
        slab = _mix(slab, guest, every)
    if kind == "vacancy":
        top = np.flatnonzero(slab.positions[:, 2] > slab.positions[:, 2].max() - 0.5)
        del slab[int(top[0])]
    facet = {"step": "211", "step_alloy": "211", "alloy111": "111", "alloy100": "100",
             "vacancy": "111-vac"}[kind]  # fmt: skip
    name = f"{host}{guest or ''}({facet})"
    return name, prepare_slab(slab, n_fixed_layers=1)


def pool(surfaces: tuple[tuple[str, str, str | None], ...]) -> list[OraclePair]:
    pairs = []
    for spec in surfaces:
        name, slab = build_surface(*spec)
        for ads in ADSORBATES:
            pairs.append(OraclePair(f"{name}:{ads}", name, ads, slab,
                                    adsorbate_from_database(ads)))  # fmt: skip
    return pairs


def labeller() -> MLIPOracle:
    """The EMT oracle with the shipped search settings."""
    return MLIPOracle(MLIPOracleSettings(calculator="emt", fmax_ev_per_ang=0.05, seed=0))


def _pair_hash(pair: OraclePair, settings: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    h.update(pair.key.encode())
    h.update(pair.slab.positions.round(6).tobytes())
    h.update(pair.slab.numbers.tobytes())
    return h.hexdigest()[:16]


def label_pool(pairs: list[OraclePair], cache_dir: Path = CACHE) -> dict[str, dict[str, Any]]:
    """EMT label of every pair (status, GMAE, binding surface atoms, cost), cached on disk."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / "labels.json"
    cache: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
    oracle = labeller()
    out = {}
    for i, pair in enumerate(pairs):
        key = _pair_hash(pair, oracle.settings.to_dict())
        if key not in cache:
            t0 = time.perf_counter()
            res = oracle.label(pair)
            cache[key] = {
                "pair": pair.key, "status": res.status, "gmae_ev": res.gmae_ev,
                "binding_surface_atoms": res.provenance.get("binding_surface_atoms"),
                "placements_tried": res.provenance.get("placements_tried"),
                "force_calls": res.provenance.get("force_calls"),
                "wall_s": time.perf_counter() - t0,
            }  # fmt: skip
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            tmp.replace(path)
            print(f"  label [{i + 1}/{len(pairs)}] {pair.key}: {res.status} {res.gmae_ev} "
                  f"{cache[key]['binding_surface_atoms']}", flush=True)  # fmt: skip
        out[pair.key] = cache[key]
    return out


def usable(pairs: list[OraclePair], labels: dict[str, dict[str, Any]]) -> list[OraclePair]:
    """Pairs with an ok label and binding atoms."""
    return [p for p in pairs if labels[p.key]["status"] == "ok"
            and labels[p.key]["binding_surface_atoms"]]  # fmt: skip


def fit_ensemble(
    pairs: list[OraclePair],
    labels: dict[str, dict[str, Any]],
    seed: int,
    site_loss: str,
    weight: float,
) -> Any:
    """The shipped surrogate (CPU) fitted on ``pairs``' labels, with the named site loss."""
    from alloop.surrogate.ensemble import AdsMTEnsemble
    from alloop.surrogate.types import EnsembleConfig, SurrogateSample

    base = EnsembleConfig(device="cpu")
    config = replace(base, train=replace(base.train, site_loss=site_loss, site_loss_weight=weight))
    samples = [
        SurrogateSample(p.surface_key, p.slab, ADSORBATES[p.adsorbate_key],
                        labels[p.key]["gmae_ev"],
                        binding_atoms=tuple(labels[p.key]["binding_surface_atoms"]))
        for p in pairs
    ]  # fmt: skip
    # fits are cached by everything that defines them (slow on a shared machine: 10-15 min)
    h = hashlib.sha256(json.dumps([config.to_dict(), seed], sort_keys=True).encode())
    for p in pairs:
        h.update(_pair_hash(p, labels[p.key]).encode())
    path = CACHE / f"ensemble-{h.hexdigest()[:16]}.pt"
    if path.exists():
        return AdsMTEnsemble.from_bytes(path.read_bytes(), device="cpu")
    ensemble = AdsMTEnsemble(config, seed=seed)
    ensemble.fit(samples, [])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ensemble.to_bytes())
    return ensemble


def chance_hit(n_atoms: int, n_binding: int, k: int) -> float:
    """P(k atoms drawn without replacement from ``n_atoms`` include one of ``n_binding``)."""
    if n_atoms - n_binding < k:
        return 1.0
    return 1.0 - math.comb(n_atoms - n_binding, k) / math.comb(n_atoms, k)


def coordination_hit(slab: Atoms, binding: set[int], k: int, rng: np.random.Generator) -> float:
    """Hit rate of "the k least-coordinated atoms" (neighbours within 1.2 x the nearest-
    neighbour distance), ties broken at random (mean of 200 draws)."""
    i, d = neighbor_list("id", slab, 1.2 * float(neighbor_list("d", slab, 3.5).min()))
    cn = np.bincount(i, minlength=len(slab))
    hits = 0
    for _ in range(200):
        order = np.lexsort((rng.random(len(slab)), cn))
        hits += bool(binding & set(order[:k].tolist()))
    return hits / 200


def evaluate(ensemble: Any, pairs: list[OraclePair], labels: dict[str, Any]) -> dict[str, Any]:
    """Top-k hit rates and GMAE MAE of a fitted ensemble on ``pairs``."""
    import torch

    slabs, smiles = [p.slab for p in pairs], [ADSORBATES[p.adsorbate_key] for p in pairs]
    index = torch.tensor([[i, i] for i in range(len(pairs))])
    pred = ensemble.predict(slabs, smiles, index, with_site_scores=True)
    rows = []
    for p, (pair, mean) in enumerate(zip(pairs, pred.mean_ev.tolist(), strict=True)):
        scores = pred.site_scores[p, : len(pair.slab)].numpy()
        binding = set(labels[pair.key]["binding_surface_atoms"])
        order = np.argsort(-scores, kind="stable")
        rows.append({
            "pair": pair.key, "error_ev": mean - labels[pair.key]["gmae_ev"],
            **{f"top{k}": bool(binding & set(order[:k].tolist())) for k in KS},
            "mass_on_binding": float(scores[list(binding)].sum()),
            "top3_atoms": order[:3].tolist(),
        })  # fmt: skip
    return {
        "mae_ev": statistics.fmean(abs(r["error_ev"]) for r in rows),
        **{f"top{k}_rate": statistics.fmean(r[f"top{k}"] for r in rows) for k in KS},
        "mean_mass_on_binding": statistics.fmean(r["mass_on_binding"] for r in rows),
        "pairs": rows,
    }


def baselines(pairs: list[OraclePair], labels: dict[str, Any]) -> dict[str, float]:
    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    for k in KS:
        per = [(p.slab, set(labels[p.key]["binding_surface_atoms"])) for p in pairs]
        out[f"chance_top{k}"] = statistics.fmean(chance_hit(len(s), len(b), k) for s, b in per)
        out[f"coordination_top{k}"] = statistics.fmean(coordination_hit(s, b, k, rng)
                                                       for s, b in per)  # fmt: skip
    out["mean_binding_atoms"] = statistics.fmean(
        len(labels[p.key]["binding_surface_atoms"]) for p in pairs
    )
    out["mean_slab_atoms"] = statistics.fmean(len(p.slab) for p in pairs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.1])
    parser.add_argument("--label-only", action="store_true", help="label the pool and stop")
    parser.add_argument("--out", type=Path, default=RESULTS / "site_attention")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    train_all, held_all = pool(TRAIN_SURFACES), pool(HELD_OUT_SURFACES)
    labels = label_pool(train_all + held_all)
    label_s = time.perf_counter() - start
    if args.label_only:
        return
    train, held = usable(train_all, labels), usable(held_all, labels)
    print(f"{len(train)}/{len(train_all)} training and {len(held)}/{len(held_all)} held-out "
          f"pairs usable; labels {label_s:.0f} s", flush=True)  # fmt: skip
    conditions = [("none", 0.0)] + [("binding_mass", w) for w in args.weights]
    runs: list[dict[str, Any]] = []
    data = hashlib.sha256("".join(_pair_hash(p, labels[p.key]) for p in train + held).encode())
    runs_path = CACHE / "runs.json"
    cached = json.loads(runs_path.read_text()) if runs_path.exists() else {}
    for seed in args.seeds:
        for loss, weight in conditions:
            key = f"{data.hexdigest()[:16]}:{seed}:{loss}:{weight:g}"
            if key not in cached:
                t0 = time.perf_counter()
                ensemble = fit_ensemble(train, labels, seed, loss, weight)
                fit_s = time.perf_counter() - t0
                held_eval = evaluate(ensemble, held, labels)
                train_eval = evaluate(ensemble, train, labels)
                train_eval.pop("pairs")
                cached[key] = {"seed": seed, "site_loss": loss, "weight": weight,
                               "fit_s": fit_s, "held_out": held_eval, "train": train_eval,
                               "load_average": os.getloadavg()[0]}  # fmt: skip
                runs_path.write_text(json.dumps(cached))
            run = cached[key]
            runs.append(run)
            print(f"seed {seed} {loss} w={weight}: held-out MAE {run['held_out']['mae_ev']:.3f} "
                  f"eV, top1 {run['held_out']['top1_rate']:.2f} top3 "
                  f"{run['held_out']['top3_rate']:.2f}; train top3 "
                  f"{run['train']['top3_rate']:.2f} (fit {run['fit_s']:.0f} s)",
                  flush=True)  # fmt: skip
    meta = {
        "calculator": "emt", "oracle": "MLIPOracle, shipped search (ORACLE_DEFAULTS: patience "
        f"{ORACLE_DEFAULTS.patience}, cap {ORACLE_DEFAULTS.max_placements}), fmax 0.05, seed 0",
        "surrogate": "EnsembleConfig() on CPU (the shipped surrogate)",
        "train_surfaces": [build_surface(*s)[0] for s in TRAIN_SURFACES],
        "held_out_surfaces": [build_surface(*s)[0] for s in HELD_OUT_SURFACES],
        "adsorbates": list(ADSORBATES), "n_train_pairs": len(train), "n_held_out_pairs": len(held),
        "unusable_pairs": sorted(p.key for p in train_all + held_all
                                 if p not in train and p not in held),
        "seeds": args.seeds, "weights": args.weights, "label_s": label_s,
        "wall_s": time.perf_counter() - start, "load_average_at_end": os.getloadavg()[0],
        "python": platform.python_version(),
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/oracles/site_attention.py",
    }  # fmt: skip
    prefix = f"{data.hexdigest()[:16]}:"
    others = [r for k, r in cached.items() if k.startswith(prefix) and r not in runs]
    write(args.out, meta, baselines(held, labels), runs, conditions, others)


def summarise(runs: list[dict[str, Any]], loss: str, weight: float) -> dict[str, Any]:
    mine = [r for r in runs if r["site_loss"] == loss and r["weight"] == weight]

    def stat(key: str, part: str = "held_out") -> tuple[float, float]:
        vals = [r[part][key] for r in mine]
        return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)

    return {
        "mae_ev": stat("mae_ev"), "top1_rate": stat("top1_rate"), "top3_rate": stat("top3_rate"),
        "mass": stat("mean_mass_on_binding"), "train_top3_rate": stat("top3_rate", "train"),
        "train_mae_ev": stat("mae_ev", "train"),
    }  # fmt: skip


def write(
    out: Path,
    meta: dict[str, Any],
    base: dict[str, float],
    runs: list[dict[str, Any]],
    conditions: list[tuple[str, float]],
    others: list[dict[str, Any]],
) -> None:
    """Results; ``others``: cached runs of the same labels outside the seeds x conditions
    grid (an earlier, wider sweep), listed one by one."""
    summary = {f"{loss}:{w:g}": summarise(runs, loss, w) for loss, w in conditions}
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "baselines": base, "summary": summary, "runs": runs,
            "other_runs": others}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(data, indent=2))

    def ms(x: tuple[float, float], pct: bool = False) -> str:
        return f"{100 * x[0]:.0f} ± {100 * x[1]:.0f} %" if pct else f"{x[0]:.3f} ± {x[1]:.3f}"

    lines = [
        "# Site-supervised attention (EMT labels, held-out surfaces)",
        "",
        f"Command: `{meta['command']}` ({meta['wall_s']:.0f} s, labels {meta['label_s']:.0f} s; "
        f"load average {meta['load_average_at_end']:.1f} at the end). Surrogate: "
        f"{meta['surrogate']}, fitted on {meta['n_train_pairs']} EMT labels of "
        f"{len(meta['train_surfaces'])} training surfaces; evaluated on "
        f"{meta['n_held_out_pairs']} pairs of {len(meta['held_out_surfaces'])} held-out "
        f"surfaces ({', '.join(meta['held_out_surfaces'])}) x {' '.join(meta['adsorbates'])}. "
        f"Seeds {meta['seeds']}: mean ± standard deviation over seeds. A hit: the k atoms with "
        "the highest ensemble-mean attention contain an atom the EMT minimum's adsorbate is "
        "bound to. Target: top-3 >= 80 % on held-out surfaces; MAE no worse than without the "
        "loss within seed noise.",
        "",
        "| site loss | held-out top-1 | held-out top-3 | attention mass on binding atoms | "
        "held-out GMAE MAE (eV) | training pairs top-3 | training MAE (eV, in-sample) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for loss, w in conditions:
        s = summary[f"{loss}:{w:g}"]
        name = "none" if loss == "none" else f"{loss}, weight {w:g}"
        lines.append(f"| {name} | {ms(s['top1_rate'], True)} | {ms(s['top3_rate'], True)} | "
                     f"{ms(s['mass'])} | {ms(s['mae_ev'])} | {ms(s['train_top3_rate'], True)} | "
                     f"{ms(s['train_mae_ev'])} |")  # fmt: skip
    lines += [
        f"| chance (k random slab atoms) | {100 * base['chance_top1']:.0f} % | "
        f"{100 * base['chance_top3']:.0f} % | | | | |",
        f"| least-coordinated atoms first | {100 * base['coordination_top1']:.0f} % | "
        f"{100 * base['coordination_top3']:.0f} % | | | | |",
        "",
        *(
            f"Also measured (seed {r['seed']} only): {r['site_loss']}, weight {r['weight']:g}: "
            f"held-out top-1 {100 * r['held_out']['top1_rate']:.0f} %, top-3 "
            f"{100 * r['held_out']['top3_rate']:.0f} %, mass "
            f"{r['held_out']['mean_mass_on_binding']:.3f}, "
            f"MAE {r['held_out']['mae_ev']:.3f} eV."
            for r in others
        ),
        "",
        f"Held-out pairs: {base['mean_binding_atoms']:.1f} binding atoms of "
        f"{base['mean_slab_atoms']:.1f} slab atoms on average. Unusable pairs (label not ok or "
        f"no binding atom): {', '.join(meta['unusable_pairs']) or 'none'}.",
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
