"""Oracle throughput of a real MLIP campaign by executor: in-process x 1, local processes x 2,
Dask LocalCluster x 2 (the same campaign, the same seed, run one after another in this process).

The campaign: 3 fcc(111) slabs (Pt, Cu, Ag) x 4 molecules (water, ammonia, methanol,
ethylene), all 12 pairs labelled by SevenNet-MF-0 (the quickstart's search settings) over two
rounds (6 + 6), a small AdsMT ensemble trained between them. Per executor:

* labels per hour: labels / wall seconds of the labelling steps (``timing.label_s`` of the
  rounds), and the ratio to ``inprocess-1`` measured here;
* worker utilisation: the labels' own wall seconds / (workers x labelling wall seconds);
* slab relaxations: reference-cache entries of kind slab written by the campaign (each clean
  slab should be relaxed once: the number of surfaces);
* training seconds per round (``timing.train_s``).

After the in-process campaign, torch's thread count is read (the oracle must not leave it at 1)
and the last round's training set is fitted twice in this process: with the default thread
count (after the fix) and with ``torch.set_num_threads(1)`` (what the oracle used to leave
behind): training seconds before/after the thread fix.

Needs the machine to itself: a 2-worker figure measured on busy cores says nothing. The script
records the load average before and after; ``--min-free`` refuses to start above a load.

Run (about 20 min on 2 free cores; do not set OMP_NUM_THREADS, training's thread count is part
of what is measured):
    make bench-throughput
Smoke run on EMT (seconds; results elsewhere):
    .venv/bin/python benchmarks/loop/campaign_throughput.py --calculator emt --labels 6 \
        --out /tmp/throughput
Writes benchmarks/results/campaign_throughput.json and .md (each executor as soon as it
finishes). ``--rescan`` recomputes the force-call columns from the campaigns a results file
names (they live in a temporary folder unless ``--keep``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from alloop.loop.agent.engine import CampaignEngine
from alloop.loop.agent.training import training_samples
from alloop.loop.bridges.oracle import oracle_cache_dir
from alloop.loop.bridges.surrogate import PoolView, fit_ensemble
from alloop.loop.config import AlloopConfig, parse_config
from alloop.loop.face.commands import create_campaign

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
VARIANTS = (("inprocess", 1), ("process", 2), ("dask", 2))


#: the oracle's search settings by label kind: ``short`` labels (seconds: a loose force limit,
#: few steps and placements, what this benchmark first measured) or ``shipped`` ones (the
#: config's defaults, `alloop.oracles.defaults`: minutes per label on these slabs)
LABEL_KINDS: dict[str, dict[str, Any]] = {
    "short": {"fmax_ev_per_ang": 0.1, "max_steps": 80, "max_placements": 3, "patience": 2},
    "shipped": {},
}


def campaign_config(
    calculator: str, labels: int, seed: int, kind: str, workers: int, label_kind: str = "short"
) -> dict:
    """The benchmark campaign (see the module docstring) with one executor."""
    emt = calculator == "emt"
    surfaces = [{"bulk": m, "miller": [1, 1, 1], "min_ab_ang": 5.0} for m in ("Pt", "Cu", "Ag")]
    adsorbates = (
        [{"name": n} for n in ("*O", "*H", "*OH", "*N")]
        if emt  # EMT knows H C N O on these metals; the molecules' SMILES path is the same
        else [{"smiles": s, "key": k} for s, k in
              (("O", "water"), ("N", "ammonia"), ("CO", "methanol"), ("C=C", "ethylene"))]
    )  # fmt: skip
    first = max(1, labels // 2)
    return {
        "campaign": {"name": f"throughput-{kind}-{workers}", "seed": seed},
        "pool": {"surfaces": surfaces, "adsorbates": adsorbates},
        "oracle": {"kind": "mlip", "calculator": calculator, **LABEL_KINDS[label_kind]},
        "surrogate": {
            "ensemble_size": 3,
            "hidden_dim": 32,
            "num_graph_layers": 2,
            "max_epochs": 40,
            "early_stop_patience": 10,
        },  # fmt: skip
        "acquisition": {
            "name": "lcb",
            "initial_batch_size": first,
            "batch_size": max(1, labels - first),
        },  # fmt: skip
        "budget": {"max_labels": labels, "max_rounds": 2},
        "executor": {"kind": kind, "workers": workers},
    }


def run_variant(cfg: AlloopConfig, where: Path) -> dict[str, Any]:
    path = where / f"{cfg.campaign.name}.alloop"
    t0 = time.perf_counter()
    with create_campaign(cfg, str(path)) as store:
        CampaignEngine(store, cfg).run()
        wall_s = time.perf_counter() - t0
        rounds = store.rounds()
        labels = store.labels()
        cache = oracle_cache_dir(store)
        label_s = sum(r.metrics.get("timing", {}).get("label_s", 0.0) for r in rounds)
        busy_s = sum(float(lab.provenance.get("wall_s") or 0.0) for lab in labels)
        workers = cfg.executor.workers
        surfaces = {store.pair(lab.pair_key).surface_key for lab in labels}
        return force_call_stats(labels) | {
            "executor": cfg.executor.kind,
            "workers": workers,
            "labels": len(labels),
            "ok_labels": sum(lab.status == "ok" for lab in labels),
            "label_wall_s": label_s,
            "labels_per_hour": 3600 * len(labels) / label_s if label_s else None,
            "seconds_per_label": label_s / len(labels) if labels else None,
            "worker_utilisation": busy_s / (workers * label_s) if label_s else None,
            "slab_relaxations": len(list(cache.glob("slab-*.json"))),
            "slab_cache_misses": sum(not lab.provenance.get("slab_cache_hit") for lab in labels),
            "n_surfaces": len(surfaces),
            "train_s_per_round": [
                r.metrics["timing"]["train_s"]
                for r in rounds
                if "train_s" in r.metrics.get("timing", {})
            ],
            "campaign_wall_s": wall_s,
            "campaign": str(path),
        }


def force_call_stats(labels: list[Any]) -> dict[str, Any]:
    """Force calls of the labels' relaxations and their seconds per call. The searches are
    deterministic (same seed, same pairs), so executors run the same force calls; what differs
    between them is the time each call takes where it runs."""
    placements = [p for lab in labels for p in lab.provenance.get("placements") or []]
    calls = sum(int(p.get("force_calls") or 0) for p in placements)
    relax_s = sum(float(p.get("wall_s") or 0.0) for p in placements)
    return {
        "force_calls": calls,
        "relaxation_s": relax_s,
        "ms_per_force_call": 1000 * relax_s / calls if calls else None,
    }


def rescan(out: Path) -> None:
    """Add the force-call figures to an earlier run's results from its campaigns (which its
    JSON names), then rewrite the results."""
    from alloop.store import CampaignStore

    results = out.with_suffix(".json")
    if not results.is_file():
        raise SystemExit(f"--rescan: no results at {results}; run the benchmark first")
    data = json.loads(results.read_text())
    for name, run in data["runs"].items():
        if not Path(run["campaign"]).is_file():
            raise SystemExit(
                f"--rescan: {name}'s campaign {run['campaign']} is gone; rerun the benchmark "
                "(with --keep DIR to keep the campaigns somewhere lasting)"
            )
        with CampaignStore.open(run["campaign"]) as store:
            run.update(force_call_stats(store.labels()))
    data["meta"]["force_calls_rescanned_from_campaigns"] = True
    write(out, data)


def thread_check(cfg: AlloopConfig, campaign: str, default_threads: int) -> dict[str, Any]:
    """Training seconds of the campaign's last training set with the default thread count and
    with one thread (what the oracle used to leave behind), in this process."""
    from alloop.store import CampaignStore

    with CampaignStore.open(campaign) as store:
        pool = PoolView.load(store)
        samples = [s for _, s in training_samples(store, pool, cfg.surrogate.mode)]
    out: dict[str, Any] = {"threads_after_in_process_labelling": torch.get_num_threads()}
    if len(samples) < 4:  # too few to split into training and validation
        return out
    for name, threads in (("after_fix", default_threads), ("before_fix", 1)):
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        fit_ensemble(cfg.surrogate, samples, seed=1, warm_start=None)
        out[f"train_s_{name}"] = time.perf_counter() - t0
        out[f"threads_{name}"] = threads
    torch.set_num_threads(default_threads)
    out["n_train_labels"] = len(samples)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calculator", default="sevennet-mf-0")
    parser.add_argument("--labels", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--label-kind", choices=sorted(LABEL_KINDS), default="short",
        help="short: seconds per label; shipped: the oracle's default search (minutes)",
    )  # fmt: skip
    parser.add_argument(
        "--executors", nargs="+", default=[f"{k}-{w}" for k, w in VARIANTS],
        choices=[f"{k}-{w}" for k, w in VARIANTS],
        help="which executors to run (inprocess-1 is the ratios' base)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=None,
        help="results stem; default campaign_throughput (short) or campaign_throughput_shipped",
    )  # fmt: skip
    parser.add_argument("--keep", type=Path, default=None, help="keep the campaigns here")
    parser.add_argument(
        "--rescan", action="store_true",
        help="recompute the force-call figures of the results at --out (or the default) from "
        "the campaigns they name, and rewrite them; runs nothing",
    )  # fmt: skip
    parser.add_argument(
        "--max-load", type=float, default=None,
        help="refuse to start when the 1-minute load average is above this",
    )  # fmt: skip
    args = parser.parse_args()
    if args.labels < 6:  # round 1 trains on the first half, split into training and validation
        parser.error(f"--labels must be >= 6, got {args.labels}")
    warnings.filterwarnings("ignore")
    out = args.out or RESULTS / (
        "campaign_throughput" if args.label_kind == "short" else "campaign_throughput_shipped"
    )
    if args.rescan:
        rescan(out)
        return
    load_before = os.getloadavg()
    if args.max_load is not None and load_before[0] > args.max_load:
        raise SystemExit(
            f"load average {load_before[0]:.2f} > --max-load {args.max_load}: the cores are "
            "busy, a throughput figure measured now would be meaningless"
        )
    default_threads = torch.get_num_threads()
    where = args.keep or Path(tempfile.mkdtemp(prefix="alloop-throughput-"))
    where.mkdir(parents=True, exist_ok=True)
    runs: dict[str, Any] = {}
    checks: dict[str, Any] = {}
    meta = {
        "calculator": args.calculator, "labels": args.labels, "seed": args.seed,
        "label_kind": args.label_kind, "oracle_search": LABEL_KINDS[args.label_kind] or "defaults",
        "cpu_count": os.cpu_count(), "torch_default_threads": default_threads,
        "load_average_before": load_before,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(), "torch": torch.__version__,
        "command": " ".join(["python", *(a.replace(str(REPO) + "/", "") for a in sys.argv)]),
        "note": "run one after another in one process, in the order given; load averages say "
        "what else ran",
    }  # fmt: skip
    # in the order asked for, each written as soon as it is measured (a long run stopped early
    # keeps what it finished)
    variants = {f"{k}-{w}": (k, w) for k, w in VARIANTS}
    for name in dict.fromkeys(args.executors):
        kind, workers = variants[name]
        cfg = parse_config(
            campaign_config(args.calculator, args.labels, args.seed, kind, workers,
                            args.label_kind)
        )  # fmt: skip
        print(f"running {name} ...", flush=True)
        runs[name] = run_variant(cfg, where) | {"label_kind": args.label_kind}
        print(json.dumps(runs[name], indent=1), flush=True)
        if kind == "inprocess":
            checks = thread_check(cfg, runs[name]["campaign"], default_threads)
        base = runs["inprocess-1"]["labels_per_hour"] if "inprocess-1" in runs else None
        for run in runs.values():
            run["ratio_to_inprocess_1"] = run["labels_per_hour"] / base if base else None
        meta["load_average_after"] = os.getloadavg()
        meta["finished"] = list(runs)
        write(out, {"runs": runs, "thread_fix": checks, "meta": meta})


def write(out: Path, data: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(data, indent=2))
    meta, checks = data["meta"], data["thread_fix"]

    def f(x: float | None, digits: int = 2) -> str:
        return "—" if x is None else f"{x:.{digits}f}"

    lines = [
        "# Campaign throughput by executor",
        "",
        f"Command: `{meta['command']}`; {meta['calculator']}, {meta['labels']} "
        f"{meta.get('label_kind', 'short')} labels (search: "
        f"{meta.get('oracle_search', '—')}), seed "
        f"{meta['seed']}, {meta['cpu_count']} cores; load average before "
        f"{meta['load_average_before'][0]:.2f}, after {meta['load_average_after'][0]:.2f}.",
        "",
        "| executor | labels/h | × inprocess-1 | s/label | worker utilisation | slab "
        "relaxations / surfaces | train s per round | force calls | ms per force call |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in data["runs"].items():
        train = ", ".join(f"{t:.1f}" for t in r["train_s_per_round"]) or "—"
        lines.append(
            f"| {name} | {f(r['labels_per_hour'], 0)} | {f(r['ratio_to_inprocess_1'])} | "
            f"{f(r['seconds_per_label'], 1)} | {f(r['worker_utilisation'])} | "
            f"{r['slab_relaxations']} / {r['n_surfaces']} | {train} | "
            f"{r.get('force_calls', '—')} | {f(r.get('ms_per_force_call'), 0)} |"
        )
    dask, proc = data["runs"].get("dask-2"), data["runs"].get("process-2")
    if dask and proc and dask["labels_per_hour"] and proc["labels_per_hour"]:
        ratio = dask["labels_per_hour"] / proc["labels_per_hour"]
        lines += ["", f"dask-2 / process-2: **{ratio:.2f}** (target ≥ 0.95)."]
    if "train_s_after_fix" in checks:
        lines += [
            "",
            f"Thread fix: torch threads after in-process labelling "
            f"{checks['threads_after_in_process_labelling']} (default "
            f"{meta['torch_default_threads']}); one fit of the last round's "
            f"{checks['n_train_labels']} labels: {f(checks['train_s_after_fix'], 1)} s with "
            f"{checks['threads_after_fix']} threads (after the fix) vs "
            f"{f(checks['train_s_before_fix'], 1)} s with 1 thread (before).",
        ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
