"""Does multi-fidelity pay? Campaigns on the FG multi-fidelity replay (issue 9, part 4); not CI.

Every agent runs the real ``CampaignEngine`` on a real SQLite campaign: MLIP labels from the
low-fidelity table (``oracle.kind: mf_replay``: SevenNet-MF-0 single points at the FG DFT
geometries), DFT labels from the FG DFT table. Cost: MLIP 1, DFT 100 units (also re-priced at
DFT = 30x and 1,000x from the same job sequences: the decisions were made at 100x).

Agents (same seeds):
* ``dft_only``  today's best single-fidelity agent: EI on DFT labels only (replay oracle), 50
  random then batches of 50;
* ``mlip_only``  EI on MLIP labels only (mf_replay, no escalation); its answer is the 30 lowest
  of its labels and predictions, and never DFT-confirmed;
* ``funnel``    the AdsorbML / catlas recipe, no model: MLIP on the whole pool, then DFT in MLIP
  order (deterministic; computed from the two tables);
* ``mf_<mode>[_top30]``  the cost-aware (pair, fidelity) acquisition with surrogate
  ``fidelity_mode`` ``<mode>`` (``MF_AGENTS``): 200 random MLIP labels and 10 random DFT labels,
  then rounds of 300 MLIP + 10 DFT labels' worth of cost (1,300 units, at most 300 MLIP picks),
  spent by value per cost; EI on the best DFT label, or with ``_top30`` on the 30th best
  (``acquisition.top_k: 30``, the shortlist the benchmark scores). ``_screen`` agents label the
  whole pool with MLIP in the first round (2,898 units, the funnel's screen) and then spend
  1,300 units a round on DFT by value per cost. ``_anchor`` agents run with
  ``escalation.anchor_surfaces`` (the shipped default): the first DFT labels go to the
  MLIP-strongest pair of distinct surfaces, and a pair on a surface with no DFT label yet gets
  the spread of the surfaces' mean MLIP-DFT gaps added to its σ; the others run without it (as
  they were measured).

Measured: (a) cost until 27 of the 30 strongest DFT binders have a DFT label (in job order
within a round), with and without the two dissociated minima; (b) the DFT-level MAE over the
pairs without a DFT label of the model trained at each round, and at the first round whose model
saw DFT labels on >= 5 % of the pool; (c) the share of the pool that got DFT.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multifidelity/campaigns.py
Writes benchmarks/results/multifidelity.{json,md} and multifidelity_found.png; each finished
(agent, seed) is cached under benchmarks/multifidelity/.cache/campaigns/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alloop.loop.agent.engine import CampaignEngine
from alloop.loop.agent.labels import (
    LOW_FIDELITIES,
    TARGET_FIDELITIES,
    counted_energies,
    is_low_fidelity,
    labels_that_count,
)
from alloop.loop.bridges.surrogate import PoolView
from alloop.loop.config import AlloopConfig
from alloop.loop.face.commands import create_campaign
from alloop.oracles.fg_data import fg_data_root
from alloop.oracles.lowfi_replay import LowFidelityReplayOracle
from alloop.oracles.replay import read_fg_rows
from alloop.surrogate.ensemble import AdsMTEnsemble

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CACHE = HERE / ".cache" / "campaigns"
RESULTS = REPO / "benchmarks" / "results"
TOP_K, FIND = 30, 27
ANOMALIES = {"Ru|oximes/49Y3", "Fe|aromatics/44S1"}
COST_MLIP, COST_DFT = 1.0, 100.0
RATIOS = (30.0, 100.0, 1000.0)
#: multi-fidelity agents: surrogate fidelity_mode, acquisition.top_k (30: the shortlist the
#: benchmark scores; 1: EI on the best DFT label) and the first round's MLIP labels (200 random;
#: SCREEN: the whole pool, so every later prediction is an MLIP label plus a learned correction)
SCREEN = 3000
#: name -> (fidelity_mode, top_k, first round's MLIP labels, escalation.anchor_surfaces)
MF_AGENTS = {
    "mf_delta": ("delta", 1, 200, False),
    "mf_delta_top30": ("delta", 30, 200, False),
    "mf_token_top30": ("token", 30, 200, False),
    "mf_transfer_top30": ("transfer", 30, 200, False),
    "mf_supersede_top30": ("supersede", 30, 200, False),
    "mf_delta_screen_top30": ("delta", 30, SCREEN, False),
    "mf_transfer_screen_top30": ("transfer", 30, SCREEN, False),
    "mf_delta_anchor_top30": ("delta", 30, 200, True),
    "mf_delta_screen_anchor_top30": ("delta", 30, SCREEN, True),
}
AGENTS = ("dft_only", "mlip_only", "funnel", *MF_AGENTS)


def surrogate(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    return {
        "ensemble_size": args.members, "hidden_dim": 64, "num_graph_layers": 2,
        "max_neighbors": 24, "max_epochs": args.max_epochs, "early_stop_patience": args.patience,
        "batch_size": 256, "learning_rate": 2e-3, "device": "cpu", "fidelity_mode": mode,
    }  # fmt: skip


def agent_config(agent: str, seed: int, args: argparse.Namespace) -> AlloopConfig:
    base: dict[str, Any] = {
        "campaign": {"name": f"mf-{agent}-{seed}", "seed": seed},
        "pool": {"fg": {}},
        "cost": {"mlip": COST_MLIP, "dft": COST_DFT},
    }
    if agent == "dft_only":
        return AlloopConfig.model_validate({
            **base, "oracle": {"kind": "replay"}, "surrogate": surrogate(args, "supersede"),
            "acquisition": {"name": "ei", "batch_size": 50, "initial_batch_size": 50},
            "budget": {"max_cost": args.dft_only_cost, "max_rounds": None},
        })  # fmt: skip
    if agent == "mlip_only":
        return AlloopConfig.model_validate({
            **base, "oracle": {"kind": "mf_replay"}, "surrogate": surrogate(args, "supersede"),
            "acquisition": {"name": "ei", "batch_size": 300, "initial_batch_size": 200},
            "budget": {"max_cost": args.mlip_only_cost, "max_rounds": None},
        })  # fmt: skip
    mode, top_k, initial, anchor = MF_AGENTS[agent]
    return AlloopConfig.model_validate({
        **base, "oracle": {"kind": "mf_replay"}, "surrogate": surrogate(args, mode),
        "acquisition": {"batch_size": 300, "initial_batch_size": initial, "top_k": top_k},
        "escalation": {"enabled": True, "policy": "cost_aware", "mode": "relax", "per_round": 10,
                       "anchor_surfaces": anchor},
        "budget": {"max_cost": args.mf_cost, "max_rounds": None},
    })  # fmt: skip


def truth_tables() -> tuple[dict[str, float], dict[str, float]]:
    """pair key -> DFT GMAE, and -> MLIP (low-fidelity) GMAE, eV."""
    dft = {f"{m}|{a}": r.e_ads_min_ev for (m, a), r in read_fg_rows(fg_data_root()).items()}
    low = LowFidelityReplayOracle()
    mlip = {}
    for key in dft:
        metal, ads = key.split("|")
        value = low.value_of(metal, ads)
        if value is not None:
            mlip[key] = value
    return dft, mlip


def top_sets(dft: dict[str, float]) -> dict[str, set[str]]:
    ranked = sorted(dft, key=lambda k: (dft[k], k))
    return {
        "with": set(ranked[:TOP_K]),
        "without": set([k for k in ranked if k not in ANOMALIES][:TOP_K]),
    }


def run_agent(agent: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run one campaign; return its job sequence (kind, pair, value) and per-round models'
    DFT-level pool MAE."""
    torch.set_num_threads(1)
    cfg = agent_config(agent, seed, args)
    dft, _ = truth_tables()
    with tempfile.TemporaryDirectory(prefix="alloop-mf-") as tmp:
        path = os.path.join(tmp, "c.alloop")
        t0 = time.perf_counter()
        with create_campaign(cfg, path) as store:
            engine = CampaignEngine(store, cfg)
            decision = engine.run()
            wall = time.perf_counter() - t0
            names = {p.key: f"{p.surface_key}|{p.adsorbate_key}" for p in store.pairs()}
            ranks = {(a.round_index, a.pair_key): a.rank for a in store.acquisitions()}
            jobs = sorted(
                store.jobs(),
                key=lambda j: (j.round_index, ranks.get((j.round_index, j.pair_key), 1e9), j.id),
            )
            labels = {lab.job_key: lab for lab in store.labels()}
            sequence = [
                {"round": j.round_index, "kind": j.kind, "pair": names[j.pair_key],
                 "gmae_ev": labels[j.key].gmae_ev if j.key in labels else None,
                 "status": labels[j.key].status if j.key in labels else None}
                for j in jobs
            ]  # fmt: skip
            rounds = []
            pool = PoolView.load(store)
            for rnd in store.rounds():
                row: dict[str, Any] = {
                    "index": rnd.index,
                    "cost_total": rnd.metrics.get("cost_total"),
                    "n_target_labels": rnd.metrics.get("n_target_labels"),
                    "val_mae_ev": rnd.metrics.get("val_mae_ev"),
                    "train_s": rnd.metrics.get("timing", {}).get("train_s"),
                }
                ckpt = store.checkpoints(rnd.index)
                if ckpt:
                    row |= pool_mae(AdsMTEnsemble.from_bytes(ckpt[0].blob, device="cpu"),
                                    store, pool, names, dft, rnd.index)  # fmt: skip
                rounds.append(row)
            answer = final_answer(engine, store, pool, names) if agent == "mlip_only" else None
    return {"agent": agent, "seed": seed, "sequence": sequence, "rounds": rounds,
            "answer": answer, "stop": str(decision.reason), "wall_s": wall}  # fmt: skip


def pool_mae(
    ens: AdsMTEnsemble,
    store: Any,
    pool: PoolView,
    names: dict[str, str],
    dft: dict[str, float],
    index: int,
) -> dict[str, Any]:
    """DFT-level MAE over the pairs without a DFT label when round ``index`` trained, each
    predicted with its MLIP label where it had one then (labels of earlier rounds only)."""
    earlier = {j.key for j in store.jobs() if j.round_index < index}
    known = [lab for lab in store.labels() if lab.job_key in earlier]
    target, low = (
        {k: lab.gmae_ev for k, lab in labels_that_count(known, fidelities=f, usable=True).items()}
        for f in (TARGET_FIDELITIES, LOW_FIDELITIES)
    )
    rest = [p for p in pool.pairs if p.key not in target]
    slabs, smiles, idx = pool.index_tensors(rest)
    lf = torch.tensor([low.get(p.key, math.nan) for p in rest], dtype=torch.float64)
    mean = ens.predict(slabs, smiles, idx, low_fidelity_ev=lf).mean_ev.numpy()
    y = np.array([dft[names[p.key]] for p in rest])
    ok = np.array([names[p.key] not in ANOMALIES for p in rest])
    err = np.abs(mean - y)
    return {"n_dft_at_training": len(target), "pool_mae_ev": float(err.mean()),
            "pool_mae_no_anomalies_ev": float(err[ok].mean()), "n_rest": len(rest)}  # fmt: skip


def final_answer(engine: CampaignEngine, store: Any, pool: PoolView, names: dict[str, str]) -> list:
    """The 30 lowest of (MLIP labels, the last model's predictions for unlabelled pairs)."""
    low = counted_energies(store.label_summaries(), fidelities=LOW_FIDELITIES)
    by_id = {p.id: p for p in pool.pairs}
    values = {names[by_id[i].key]: v for i, v in low.items()}
    last = [r for r in store.rounds() if store.checkpoints(r.index)]
    rest = [p for p in pool.pairs if names[p.key] not in values]
    if last and rest:
        ens = AdsMTEnsemble.from_bytes(store.checkpoints(last[-1].index)[0].blob, device="cpu")
        slabs, smiles, idx = pool.index_tensors(rest)
        mean = ens.predict(slabs, smiles, idx).mean_ev.numpy()
        values |= {names[p.key]: float(m) for p, m in zip(rest, mean, strict=True)}
    return sorted(values, key=lambda k: (values[k], k))[:TOP_K]


def funnel_run(dft: dict[str, float], mlip: dict[str, float]) -> dict[str, Any]:
    """MLIP on every pair (pool order), then DFT in ascending MLIP order."""
    keys = sorted(dft)
    seq = [
        {"round": 0, "kind": "mlip", "pair": k, "gmae_ev": mlip[k], "status": "ok"} for k in keys
    ]
    seq += [
        {"round": 1, "kind": "dft_relax", "pair": k, "gmae_ev": dft[k], "status": "ok"}
        for k in sorted(keys, key=lambda k: (mlip[k], k))
    ]
    return {"agent": "funnel", "seed": 0, "sequence": seq, "rounds": [], "answer": None,
            "stop": "deterministic", "wall_s": 0.0}  # fmt: skip


def cost_to_find(seq: list[dict[str, Any]], top: set[str], dft_cost: float) -> dict[str, Any]:
    """Cost (and labels by fidelity) when the FIND-th of ``top`` gets a DFT-level label."""
    spent, n_mlip, n_dft, hits = 0.0, 0, 0, set()
    for job in seq:
        low = is_low_fidelity(job["kind"])
        spent += COST_MLIP if low else dft_cost
        n_mlip, n_dft = n_mlip + low, n_dft + (not low)
        if not low and job["status"] == "ok" and job["pair"] in top:
            hits.add(job["pair"])
            if len(hits) >= FIND:
                return {"cost": spent, "mlip": n_mlip, "dft": n_dft}
    return {"cost": None, "mlip": n_mlip, "dft": n_dft, "found": len(hits)}


def aggregate(runs: list[dict[str, Any]], dft: dict[str, float]) -> dict[str, Any]:
    tops = top_sets(dft)
    n_pool = len(dft)
    agents: dict[str, Any] = {}
    for agent in AGENTS:
        mine = sorted((r for r in runs if r["agent"] == agent), key=lambda r: r["seed"])
        if not mine:
            continue
        row: dict[str, Any] = {"seeds": [r["seed"] for r in mine]}
        for name, top in tops.items():
            for ratio in RATIOS:
                found = [cost_to_find(r["sequence"], top, ratio) for r in mine]
                row[f"find_{name}_x{ratio:g}"] = found
        at = row[f"find_with_x{COST_DFT:g}"]
        costs = [f["cost"] for f in at]
        row["cost_to_find_27_of_30"] = (
            float(np.mean(costs)) if all(c is not None for c in costs) else None
        )
        row["dft_labels_at_find"] = float(np.mean([f["dft"] for f in at]))
        row["mlip_labels_at_find"] = float(np.mean([f["mlip"] for f in at]))
        five = []
        for r in mine:
            hit = [x for x in r["rounds"] if x.get("n_dft_at_training", 0) >= 0.05 * n_pool]
            five.append(hit[0]["pool_mae_ev"] if hit else None)
        got = [v for v in five if v is not None]  # a seed may stop before 5 % of the pool
        row["pool_mae_dft_ev_at_5pct_dft"] = float(np.mean(got)) if got else None
        row["pool_mae_at_5pct_by_seed"] = five
        row["dft_share_end"] = float(np.mean(
            [sum(not is_low_fidelity(j["kind"]) for j in r["sequence"]) / n_pool for r in mine]
        ))  # fmt: skip
        if agent == "mlip_only":
            row["answer_holds_top30"] = [len(set(r["answer"]) & tops["with"]) for r in mine]
        row["curves"] = [
            [(x["cost_total"], x.get("n_dft_at_training"), x.get("pool_mae_ev"))
             for x in r["rounds"]] for r in mine
        ]  # fmt: skip
        row["wall_s"] = [r["wall_s"] for r in mine]
        agents[agent] = row
    return agents


def markdown(results: dict[str, Any]) -> str:
    a = results["agents"]
    dft_only = a.get("dft_only", {}).get("cost_to_find_27_of_30")
    lines = [
        "# Multi-fidelity campaigns on the FG replay (FG-GMAE stand-in)", "",
        f"Command: `{results['command']}`  ", f"Machine: {results['machine']}  ",
        f"Wall time: {results['wall_s']:.0f} s. {results['note']}", "",
        "MLIP = SevenNet-MF-0 single points at the FG DFT geometries "
        "(`oracles/data/fg_mlip_sevennet_mf0.csv`); DFT = the FG table. Cost: MLIP 1, DFT 100 "
        "units; the 30x and 1,000x columns re-price the same job sequences.", "",
        "| agent | seeds | (a) cost to DFT-confirm 27 of 30 (100x) | ratio to DFT-only | "
        "DFT / MLIP labels then | w/o the 2 dissociated | at 30x | at 1,000x | "
        "(b) pool MAE at 5 % DFT (eV) | (c) DFT share at end |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip

    def mean_cost(found: list[dict[str, Any]]) -> str:
        c = [f["cost"] for f in found]
        if any(x is None for x in c):
            return f"not reached ({', '.join('—' if x is None else f'{x:,.0f}' for x in c)})"
        return f"{np.mean(c):,.0f} ± {np.std(c):,.0f}"

    for name, row in a.items():
        cost = row["cost_to_find_27_of_30"]
        ratio = f"{cost / dft_only:.2f}" if cost and dft_only else "—"
        mae = row["pool_mae_dft_ev_at_5pct_dft"]
        n_mae = sum(v is not None for v in row["pool_mae_at_5pct_by_seed"])
        lines.append(
            f"| {name} | {len(row['seeds'])} | {mean_cost(row['find_with_x100'])} | {ratio} | "
            f"{row['dft_labels_at_find']:.0f} / {row['mlip_labels_at_find']:.0f} | "
            f"{mean_cost(row['find_without_x100'])} | {mean_cost(row['find_with_x30'])} | "
            f"{mean_cost(row['find_with_x1000'])} | "
            f"{'—' if mae is None else f'{mae:.3f} ({n_mae} seeds)'} | {row['dft_share_end']:.1%} |"
        )
    if "mlip_only" in a:
        lines += ["", "MLIP-only's final answer (its 30 lowest labels/predictions) holds "
                  f"{a['mlip_only']['answer_holds_top30']} of the 30 strongest DFT binders "
                  "(per seed), none of them DFT-confirmed."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], dft: dict[str, float], runs: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = top_sets(dft)["with"]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for agent in results["agents"]:
        for r in (x for x in runs if x["agent"] == agent):
            spent, hits, xs, ys = 0.0, set(), [], []
            for job in r["sequence"]:
                low = is_low_fidelity(job["kind"])
                spent += COST_MLIP if low else COST_DFT
                if not low and job["pair"] in top:
                    hits.add(job["pair"])
                xs.append(spent)
                ys.append(len(hits))
            ax[0].plot(xs, ys, label=agent if r["seed"] == 0 else None,
                       color=f"C{list(results['agents']).index(agent)}", alpha=0.8)  # fmt: skip
        for i, curve in enumerate(results["agents"][agent]["curves"]):
            pts = [(c, m) for c, _, m in curve if m is not None and c is not None]
            if pts:
                ax[1].plot(*zip(*pts, strict=True), marker="o", ms=3, alpha=0.8,
                           color=f"C{list(results['agents']).index(agent)}",
                           label=agent if i == 0 else None)  # fmt: skip
    ax[0].axhline(FIND, color="grey", ls=":")
    ax[0].set(xlabel="cost units (MLIP 1, DFT 100)", ylabel="top-30 DFT binders confirmed",
              xscale="log", xlim=(100, None))  # fmt: skip
    ax[1].set(xlabel="cost units when the model trained", ylabel="DFT-level pool MAE (eV)",
              xscale="log")  # fmt: skip
    ax[0].legend(fontsize=7)
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "multifidelity_found.png", dpi=120)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--agents", nargs="+", default=["dft_only", "mlip_only", "funnel", "mf_delta"])
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--max-epochs", type=int, default=60)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--dft-only-cost", type=float, default=50_000.0)
    p.add_argument("--mlip-only-cost", type=float, default=2_000.0)
    p.add_argument("--mf-cost", type=float, default=16_000.0)
    p.add_argument("--note", default="", help="what else ran on the machine")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    unknown = sorted(set(args.agents) - set(AGENTS))
    if unknown:
        raise SystemExit(f"unknown agents {unknown}; valid: {', '.join(AGENTS)}")
    t0 = time.perf_counter()
    CACHE.mkdir(parents=True, exist_ok=True)
    dft, mlip = truth_tables()
    tag = f"m{args.members}-e{args.max_epochs}-p{args.patience}"
    runs = []
    for seed in args.seeds:
        for agent in args.agents:
            if agent == "funnel":
                if seed == args.seeds[0]:
                    runs.append(funnel_run(dft, mlip))
                continue
            path = CACHE / f"{tag}-{agent}-{seed}.json"
            if not path.is_file() and not args.report_only:
                result = run_agent(agent, seed, args)
                path.write_text(json.dumps(result))
                print(f"{agent} seed {seed}: {result['wall_s']:.0f} s, stop {result['stop']}",
                      flush=True)  # fmt: skip
            if path.is_file():
                runs.append(json.loads(path.read_text()))
    agents = aggregate(runs, dft)
    results = {
        "benchmark": "multi-fidelity campaigns, FG replay (FG-GMAE stand-in)",
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multifidelity/campaigns.py "
        + " ".join(sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "torch_threads": 1,
        },  # fmt: skip
        "settings": {
            "members": args.members,
            "max_epochs": args.max_epochs,
            "patience": args.patience,
            "cost": {"mlip": COST_MLIP, "dft": COST_DFT},
            "budgets": {
                "dft_only": args.dft_only_cost,
                "mlip_only": args.mlip_only_cost,
                "mf": args.mf_cost,
            },
        },  # fmt: skip
        "wall_s": time.perf_counter() - t0,
        "note": args.note,
        "dft_only_agent": "dft_only",
        "funnel_agent": "funnel",
        "summary": {
            name: {
                k: row[k]
                for k in (
                    "cost_to_find_27_of_30",
                    "dft_labels_at_find",
                    "mlip_labels_at_find",
                    "pool_mae_dft_ev_at_5pct_dft",
                )
            }
            for name, row in agents.items()
        },  # fmt: skip
        "agents": agents,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "multifidelity.json").write_text(json.dumps(results, indent=1))
    (RESULTS / "multifidelity.md").write_text(markdown(results))
    plot(results, dft, runs)
    print(markdown(results))


if __name__ == "__main__":
    main()
