"""Does active learning pay? The closed loop on FG replay (2,898 pairs, DFT labels); not CI.

One command (from the repository root)::

    make bench-loop        # = OMP_NUM_THREADS=1 .venv/bin/python benchmarks/loop/run.py

runs, for every seed, a start of 50 random labels then batches of 50 up to 1,050 labels with
each AdsMT agent (random, uncertainty, EI toward strong binding, LCB, target window, EI with a
max-sigma share) through the real engine, and the bootstrap-tree LCB baseline in the same run.
Each finished (agent, seed) is cached as JSON under ``--work`` with the settings that made it,
so an interrupted run resumes; a cached run made with other settings is run again.
Writes ``benchmarks/results/loop_al.json``, ``loop_al.md`` and ``loop_al_*.png``:

(a) labels needed to find 27 of the 30 strongest binders, with and without the two dissociated
    reference minima; random's figure comes from its expected order statistic (and is checked
    against the random agent's own picks up to the budget);
(b) MAE over the still-unlabelled pool at 200 / 500 / 1,000 labels, and ratios to random;
(c) the loop's own time per round: everything but training and oracle time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from agents import STRATEGIES, SURROGATES, TREES, anomaly_keys, fg_truth  # noqa: E402
from al_report import plot_curves, write_markdown  # noqa: E402

TOP_K, FIND = 30, 27


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--agents", nargs="+", default=[*STRATEGIES, TREES])
    p.add_argument("--workers", type=int, default=2, help="agents run in parallel processes")
    p.add_argument("--start", type=int, default=50, help="random labels before the first model")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--checkpoints", type=int, nargs="+", default=[200, 500, 1000])
    p.add_argument(
        "--surrogate",
        choices=SURROGATES,
        default="bench",
        help="bench: the settings below (the table's); shipped: the package defaults, untouched",
    )
    p.add_argument("--members", type=int, default=3, help="AdsMT ensemble size")
    p.add_argument("--hidden-dim", type=int, default=64)
    p.add_argument("--max-epochs", type=int, default=60)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--train-batch", type=int, default=256)
    p.add_argument("--fg-root", type=Path, default=REPO.parent / "shared" / "data" / "fg")
    p.add_argument("--work", type=Path, default=None, help="run cache (default per --surrogate)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--report-only", action="store_true", help="aggregate cached runs only")
    p.add_argument("--stem", default=None, help="results file stem (default per --surrogate)")
    p.add_argument(
        "--no-overhead", action="store_true", help="skip the overhead run with default settings"
    )
    args = p.parse_args(argv)
    suffix = "" if args.surrogate == "bench" else f"_{args.surrogate}"
    args.work = args.work or Path(f"/tmp/alloop-bench-loop{suffix.replace('_', '-')}")
    args.stem = args.stem or f"loop_al{suffix}"
    return args


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What makes two runs of one (agent, seed) the same run: a cached run is reused only when
    it was made with these (another budget or surrogate in the same ``--work`` runs again)."""
    return {
        "surrogate": args.surrogate, "start": args.start, "batch": args.batch,
        "budget": max(args.checkpoints) + args.batch, "members": args.members,
        "hidden_dim": args.hidden_dim, "max_epochs": args.max_epochs,
        "patience": args.patience, "train_batch": args.train_batch,
    }  # fmt: skip


def cached_run(args: argparse.Namespace, agent: str, seed: int) -> dict[str, Any] | None:
    """The cached run of (agent, seed) made with this run's settings, else None."""
    path = args.work / f"{agent}-{seed}.json"
    if not path.exists():
        return None
    run = json.loads(path.read_text())
    return run if run.get("settings") == run_settings(args) else None


def _task(job: tuple[str, int, argparse.Namespace]) -> tuple[str, int, float]:
    agent, seed, args = job
    from agents import run_adsmt_agent, run_tree_agent

    t0 = time.perf_counter()
    result = run_tree_agent(seed, args) if agent == TREES else run_adsmt_agent(agent, seed, args)
    path = args.work / f"{agent}-{seed}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**result, "settings": run_settings(args)}))
    tmp.replace(path)
    return agent, seed, time.perf_counter() - t0


def labels_to_find(order: list[str], targets: set[str], need: int) -> int | None:
    hits = 0
    for n, key in enumerate(order, start=1):
        hits += key in targets
        if hits >= need:
            return n
    return None


def expected_random(n_pool: int, k: int, need: int) -> float:
    """E[position of the need-th of k targets] in a uniformly random order of n_pool."""
    return need * (n_pool + 1) / (k + 1)


def _stat(values: list[float | None]) -> dict[str, Any]:
    found = [v for v in values if v is not None]
    out: dict[str, Any] = {"values": values}
    if len(found) == len(values) and found:
        out |= {"mean": float(np.mean(found)), "std": float(np.std(found))}
    return out


def aggregate(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    truth = fg_truth(args.fg_root)
    bad = anomaly_keys()
    ranked = sorted(truth, key=lambda k: (truth[k], k))
    top_with = set(ranked[:TOP_K])
    top_without = set([k for k in ranked if k not in bad][:TOP_K])
    n_pool = len(truth)
    agents: dict[str, Any] = {}
    for agent in args.agents:
        mine = sorted((r for r in runs if r["agent"] == agent), key=lambda r: r["seed"])
        if not mine:
            continue
        row: dict[str, Any] = {"seeds": [r["seed"] for r in mine]}
        for name, top in (("with", top_with), ("without", top_without)):
            row[f"find_{name}"] = _stat([labels_to_find(r["order"], top, FIND) for r in mine])
            row[f"found_by_1000_{name}"] = _stat(
                [float(len(top & set(r["order"][:1000]))) for r in mine]
            )
            curve = np.array([np.cumsum([k in top for k in r["order"]]) for r in mine])
            row[f"found_curve_{name}"] = curve.mean(0).tolist()
        points = sorted({int(n) for r in mine for n in r["pool_mae"]})
        row["pool_mae_curve"] = {
            str(n): _stat([r["pool_mae"].get(str(n), {}).get("all") for r in mine]) for n in points
        }
        row["pool_mae"] = {
            str(n): {
                kind: _stat([r["pool_mae"].get(str(n), {}).get(kind) for r in mine])
                for kind in ("all", "no_anomalies")
            }
            for n in args.checkpoints
        }
        if agent != TREES:
            over = [
                rd["timing"]
                for r in mine
                for rd in r["rounds"]
                if "overhead_s" in rd["timing"] and "train_s" in rd["timing"]
            ]
            row["overhead_s"] = {
                "mean": float(np.mean([t["overhead_s"] for t in over])),
                "max": float(np.max([t["overhead_s"] for t in over])),
                "score_s_mean": float(np.mean([t.get("score_s", 0.0) for t in over])),
                "acquire_s_mean": float(np.mean([t.get("acquire_s", 0.0) for t in over])),
                "train_s_mean": float(np.mean([t["train_s"] for t in over])),
                "n_rounds": len(over),
            }
        row["wall_s"] = [r["wall_s"] for r in mine]
        agents[agent] = row
    return {
        "top_k": TOP_K,
        "find": FIND,
        "n_pool": n_pool,
        "random_expected_labels": {
            "with": expected_random(n_pool, TOP_K, FIND),
            "without": expected_random(n_pool - len(bad), TOP_K, FIND),
        },
        "agents": agents,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(args.agents) - {*STRATEGIES, TREES})
    if unknown:
        raise SystemExit(f"unknown agents {unknown}; valid: {[*STRATEGIES, TREES]}")
    # seed-major order: every agent of seed 0 first, so a partial run compares like with like
    jobs = [
        (agent, seed, args)
        for seed in args.seeds
        for agent in args.agents
        if cached_run(args, agent, seed) is None
    ]
    t0 = time.perf_counter()
    if jobs and not args.report_only:
        print(f"{len(jobs)} agent runs to do, {args.workers} at a time", flush=True)
        with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
            for agent, seed, wall in pool.imap_unordered(_task, jobs):
                print(f"  {agent} seed {seed}: {wall:.0f} s", flush=True)
    runs = []
    for agent in args.agents:
        for seed in args.seeds:
            run = cached_run(args, agent, seed)
            if run is not None:
                runs.append(run)
    results = aggregate(runs, args)
    overheads = []
    for threads in (1, 2):  # one core, and both (torch's default here, as `alloop run` runs)
        cached = args.work / f"overhead-{threads}.json"
        if not args.no_overhead and not cached.exists():
            from agents import measure_overhead

            cached.write_text(json.dumps(measure_overhead(args, threads=threads)))
        if cached.exists():
            overheads.append(json.loads(cached.read_text()))
    results["overhead_default"] = overheads
    results |= {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "runs_cached_in": str(args.work),
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("report_only", "no_overhead")
        },
        "strategies": STRATEGIES,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "wall_s_this_invocation": time.perf_counter() - t0,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.stem}.json").write_text(json.dumps(results, indent=1))
    plot_curves(results, args.out, args.stem)
    write_markdown(results, args.out / f"{args.stem}.md")
    print((args.out / f"{args.stem}.md").read_text())


if __name__ == "__main__":
    main()
