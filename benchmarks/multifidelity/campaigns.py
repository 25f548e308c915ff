"""Does multi-fidelity pay? Campaigns on the FG multi-fidelity replay (issues 9 and 18); not CI.

Every agent runs the real ``CampaignEngine`` on a real SQLite campaign: MLIP labels from the
low-fidelity table (``oracle.kind: mf_replay``: SevenNet-MF-0 single points at the FG DFT
geometries), DFT labels from the FG DFT table. Cost: MLIP 1, DFT 100 units (also re-priced at
DFT = 30x and 1,000x from the same job sequences: the decisions were made at 100x). Every agent
uses the surrogate settings of ``configs/fg-mf-replay.yaml`` (ensemble of 3, hidden 64, 60
epochs, patience 10), with the small-data choices (split, prior mean, MLIP features) the config
resolves for it: the shipped single-fidelity ones for the DFT-only agents, the cost-aware ones
for the multi-fidelity agents.

Agents (same seeds):
* ``dft_only``  EI on the best DFT label (replay oracle, no MLIP), 50 random then batches of 50;
* ``dft_only_top30_b10``  the like-for-like DFT-only baseline: EI on the 30th best DFT label
  (``acquisition.top_k: 30``, the shortlist the benchmark scores), 50 random then batches of 10
  (the multi-fidelity agents' DFT labels per round, so as many refits per DFT label);
* ``mlip_only``  EI on MLIP labels only (mf_replay, no escalation); its answer is the 30 lowest
  of its labels and predictions, and never DFT-confirmed;
* ``funnel``    the AdsorbML / catlas recipe, no model: MLIP on the whole pool, then DFT in MLIP
  order (deterministic; computed from the two tables);
* ``mf_<mode>[_top30]``  the cost-aware (pair, fidelity) acquisition with surrogate
  ``fidelity_mode`` ``<mode>`` (``MF_AGENTS``): 200 random MLIP labels and 10 DFT labels, then
  rounds of 300 MLIP + 10 DFT labels' worth of cost (1,300 units, at most 300 MLIP picks), spent
  by value per cost; EI on the best DFT label, or with ``_top30`` on the 30th best. ``_screen``
  agents label the whole pool with MLIP in the first round (2,898 units, the funnel's screen) and
  then spend 1,300 units a round on DFT by value per cost. ``_anchor`` agents run with
  ``escalation.anchor_surfaces`` (the shipped default): the first DFT labels go to the
  MLIP-strongest pair of distinct surfaces, and a pair on a surface with no DFT label yet gets
  the spread of the surfaces' mean MLIP-DFT gaps added to its σ; the others run without it.
  The headline agent, ``mf_delta_anchor_top30``, is ``configs/fg-mf-replay.yaml`` itself (its
  campaign seed and name replaced).

Measured: (a) cost until 27 of the 30 strongest DFT binders have a DFT label (in job order
within a round), with and without the two dissociated minima; the headline agent's cost over
the better of the two DFT-only baselines' per seed (paired), with mean, sample std and a 90 %
t-interval; (b) the DFT-level MAE over the pairs without a DFT label of the model trained at the
first round whose model saw DFT labels on >= 5 % of the pool. A campaign stops at its budget or,
earlier, once (a) is reached for both top-30 sets and a model trained on >= 5 % DFT exists (the
stop is checked between rounds, so every decision before it is the unstopped campaign's).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multifidelity/campaigns.py [--workers 2]
(``make bench-mf``: the agents of the docs' table, 5 seeds.) Each finished (agent, seed) is
stored with its job sequence under ``benchmarks/results/multifidelity_runs/`` (committed; the
file name carries a fingerprint of the agent's config, so a changed config runs again) and is
not run again; the report is computed from every stored run of the current configs, so a run of
some agents does not drop the others' rows. ``--report-only`` recomputes it from the stored runs.
Writes benchmarks/results/multifidelity.{json,md} and multifidelity_found.png.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from scipy import stats

from alloop.loop.agent.engine import CampaignEngine
from alloop.loop.agent.labels import (
    LOW_FIDELITIES,
    TARGET_FIDELITIES,
    counted_energies,
    is_low_fidelity,
    labels_that_count,
)
from alloop.loop.agent.stopping import StopDecision
from alloop.loop.bridges.pool import build_pool
from alloop.loop.bridges.surrogate import PoolView
from alloop.loop.config import AlloopConfig
from alloop.loop.face.commands import create_campaign
from alloop.oracles.fg_data import fg_data_root
from alloop.oracles.lowfi_replay import (
    LowFidelityReplayOracle,
    default_lowfi_table,
    read_lowfi_table,
)
from alloop.oracles.replay import read_fg_rows
from alloop.store import CampaignStore, RoundState
from alloop.surrogate.ensemble import AdsMTEnsemble

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"
RUNS = RESULTS / "multifidelity_runs"
HEADLINE_CONFIG = REPO / "configs" / "fg-mf-replay.yaml"
HEADLINE = "mf_delta_anchor_top30"
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
    HEADLINE: ("delta", 30, 200, True),
    "mf_delta_screen_anchor_top30": ("delta", 30, SCREEN, True),
}
#: DFT-only agents: name -> (acquisition.top_k, DFT labels per round after the first 50)
DFT_ONLY_AGENTS = {"dft_only": (1, 50), "dft_only_top30_b10": (30, 10)}
AGENTS = (*DFT_ONLY_AGENTS, "mlip_only", "funnel", *MF_AGENTS)
#: what `make bench-mf` runs: the agents of the table in docs/multifidelity.md
TABLE_AGENTS = ("dft_only", "dft_only_top30_b10", "funnel", HEADLINE)


@dataclass(frozen=True)
class Variant:
    """Which replay: ``fg`` (every FG pair, MLIP single points, the 30 strongest) or
    ``relaxed`` (the 282 pairs of the low-fidelity table's relaxed subset, MLIP labels = the
    relaxed MLIP minima from the DFT geometries, the 10 strongest; issue 18, part 3)."""

    name: str
    top_k: int
    find: int
    lowfi_value: str
    agents: tuple[str, ...]
    runs: Path
    stem: str

    @property
    def cost_key(self) -> str:
        return f"cost_to_find_{self.find}_of_{self.top_k}"


#: relaxed-pattern agents, scaled to a pool a tenth the size: (top_k, first DFT labels, DFT
#: labels per round) for the DFT-only ones; the headline agent keeps its config but EI on the
#: 10th best, 50 random MLIP labels first, rounds of <= 30 MLIP + 5 DFT labels' worth
RELAXED_DFT_ONLY = {"dft_only": (1, 20, 10), "dft_only_top10_b5": (10, 20, 5)}
RELAXED_HEADLINE = "mf_delta_anchor_top10"
VARIANTS = {
    "fg": Variant("fg", TOP_K, FIND, "single_point", AGENTS, RUNS, "multifidelity"),
    "relaxed": Variant("relaxed", 10, 9, "relaxed",
                       (*RELAXED_DFT_ONLY, "funnel", RELAXED_HEADLINE), RUNS / "relaxed",
                       "multifidelity_relaxed"),
}  # fmt: skip


def variant(args: argparse.Namespace) -> Variant:
    return VARIANTS[getattr(args, "pool", "fg")]


def headline_of(v: Variant) -> str:
    return HEADLINE if v.name == "fg" else RELAXED_HEADLINE


def dft_only_agents(v: Variant) -> tuple[str, ...]:
    return tuple(DFT_ONLY_AGENTS) if v.name == "fg" else tuple(RELAXED_DFT_ONLY)


def relaxed_pairs() -> list[tuple[str, str]]:
    """(metal, FG molecule key) of the low-fidelity table's relaxed subset."""
    rows, _ = read_lowfi_table(default_lowfi_table())
    return sorted(key for key, row in rows.items() if row.relaxed_status)


def headline_yaml() -> dict[str, Any]:
    return yaml.safe_load(HEADLINE_CONFIG.read_text())


def surrogate(mode: str) -> dict[str, Any]:
    """The surrogate section every agent uses: the headline config's, with ``mode``."""
    return {**headline_yaml()["surrogate"], "fidelity_mode": mode}


def agent_config(agent: str, seed: int, args: argparse.Namespace) -> AlloopConfig:
    if variant(args).name == "relaxed":
        return relaxed_config(agent, seed)
    base: dict[str, Any] = {
        "campaign": {"name": f"mf-{agent}-{seed}", "seed": seed},
        "pool": {"fg": {}},
        "cost": {"mlip": COST_MLIP, "dft": COST_DFT},
    }
    if agent in DFT_ONLY_AGENTS:
        top_k, per_round = DFT_ONLY_AGENTS[agent]
        return AlloopConfig.model_validate({
            **base, "oracle": {"kind": "replay"}, "surrogate": surrogate("supersede"),
            "acquisition": {"name": "ei", "batch_size": per_round, "initial_batch_size": 50,
                            "top_k": top_k},
            "budget": {"max_cost": args.dft_only_cost, "max_rounds": None},
        })  # fmt: skip
    if agent == "mlip_only":
        return AlloopConfig.model_validate({
            **base, "oracle": {"kind": "mf_replay"}, "surrogate": surrogate("supersede"),
            "acquisition": {"name": "ei", "batch_size": 300, "initial_batch_size": 200},
            "budget": {"max_cost": args.mlip_only_cost, "max_rounds": None},
        })  # fmt: skip
    if agent == HEADLINE:
        data = headline_yaml()
        data["campaign"] = {**data["campaign"], **base["campaign"]}
        return AlloopConfig.model_validate(data)
    mode, top_k, initial, anchor = MF_AGENTS[agent]
    return AlloopConfig.model_validate({
        **base, "oracle": {"kind": "mf_replay"}, "surrogate": surrogate(mode),
        "acquisition": {"batch_size": 300, "initial_batch_size": initial, "top_k": top_k},
        "escalation": {"enabled": True, "policy": "cost_aware", "mode": "relax", "per_round": 10,
                       "anchor_surfaces": anchor},
        "budget": {"max_cost": args.mf_cost, "max_rounds": None},
    })  # fmt: skip


def relaxed_config(agent: str, seed: int) -> AlloopConfig:
    """The relaxed-pattern agents (the pool and the MLIP oracle are set by `run_agent`)."""
    base: dict[str, Any] = {
        "campaign": {"name": f"mf-relaxed-{agent}-{seed}", "seed": seed},
        "pool": {"fg": {}},
        "cost": {"mlip": COST_MLIP, "dft": COST_DFT},
    }
    if agent in RELAXED_DFT_ONLY:
        top_k, first, per_round = RELAXED_DFT_ONLY[agent]
        return AlloopConfig.model_validate({
            **base, "oracle": {"kind": "replay"}, "surrogate": surrogate("supersede"),
            "acquisition": {"name": "ei", "batch_size": per_round, "initial_batch_size": first,
                            "top_k": top_k},
            "budget": {"max_cost": 20_000.0, "max_rounds": None},
        })  # fmt: skip
    data = headline_yaml()
    data["campaign"] = {**data["campaign"], **base["campaign"]}
    data["acquisition"] |= {"top_k": 10, "batch_size": 30, "initial_batch_size": 50}
    data["escalation"] |= {"per_round": 5}
    data["budget"] = {"max_cost": 10_000.0, "max_rounds": None}
    return AlloopConfig.model_validate(data)


#: config settings added after runs were stored, with the value that leaves a campaign as it
#: was: at that value they are left out of the fingerprint (with the settings that only act
#: when they are on), so adding a switch that is off does not orphan every stored run
NEUTRAL_SETTINGS: dict[tuple[str, str], tuple[Any, tuple[str, ...]]] = {
    ("surrogate", "site_loss"): ("none", ("site_loss_weight",)),
}


def fingerprint(cfg: AlloopConfig) -> str:
    """A short hash of what the campaign decides with (its resolved config, name and the
    `NEUTRAL_SETTINGS` at their neutral values left out)."""
    data = cfg.resolved()
    data["campaign"] = {k: v for k, v in data["campaign"].items() if k != "name"}
    for (section, key), (neutral, along) in NEUTRAL_SETTINGS.items():
        if data[section].get(key) == neutral:
            data[section] = {k: v for k, v in data[section].items() if k not in (key, *along)}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:10]


def run_path(agent: str, seed: int, args: argparse.Namespace) -> Path:
    runs = variant(args).runs
    if agent == "funnel":
        return runs / "funnel.json.gz"
    return runs / f"{agent}-s{seed}-{fingerprint(agent_config(agent, seed, args))}.json.gz"


def read_run(path: Path) -> dict[str, Any]:
    with gzip.open(path, "rt") as fh:
        return json.load(fh)


def write_run(path: Path, run: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt") as fh:
        json.dump(run, fh, separators=(",", ":"))
    tmp.replace(path)


def truth_tables(v: Variant) -> tuple[dict[str, float], dict[str, float]]:
    """pair key -> DFT GMAE, and -> MLIP (low-fidelity) GMAE, eV, over the variant's pool
    (``relaxed``: a pair whose relaxation was flagged has no MLIP value)."""
    dft = {f"{m}|{a}": r.e_ads_min_ev for (m, a), r in read_fg_rows(fg_data_root()).items()}
    if v.name == "relaxed":
        dft = {f"{m}|{a}": dft[f"{m}|{a}"] for m, a in relaxed_pairs()}
    low = LowFidelityReplayOracle(value=v.lowfi_value)
    mlip = {}
    for key in dft:
        metal, ads = key.split("|")
        value = low.value_of(metal, ads)
        if value is not None:
            mlip[key] = value
    return dft, mlip


def top_sets(dft: dict[str, float], k: int = TOP_K) -> dict[str, set[str]]:
    ranked = sorted(dft, key=lambda key: (dft[key], key))
    return {
        "with": set(ranked[:k]),
        "without": set([key for key in ranked if key not in ANOMALIES][:k]),
    }


class BenchmarkEngine(CampaignEngine):
    """The real engine with one more stop, checked between rounds like its own: once FIND of
    both top sets have a DFT label and the last round's model trained on DFT labels for >= 5 %
    of the pool, what the benchmark scores is known, and the rest of the budget is not run."""

    def __init__(
        self, store: Any, cfg: AlloopConfig, v: Variant, dft: dict[str, float], **kw: Any
    ) -> None:
        super().__init__(store, cfg, **kw)
        self.tops, self.n_pool, self.find = top_sets(dft, v.top_k), len(dft), v.find
        self.names = {p.key: f"{p.surface_key}|{p.adsorbate_key}" for p in store.pairs()}

    def stop_decision(self) -> StopDecision:
        decision = super().stop_decision()
        if decision.stop:
            return decision
        closed = [r.index for r in self.store.rounds() if r.state == RoundState.CLOSED]
        if not closed:
            return decision
        ok = {lab.job_key for lab in self.store.labels() if lab.status == "ok"}
        dft_jobs = [j for j in self.store.jobs() if not is_low_fidelity(j.kind) and j.key in ok]
        confirmed = {self.names[j.pair_key] for j in dft_jobs}
        trained_on = sum(j.round_index < closed[-1] for j in dft_jobs)
        if all(len(confirmed & top) >= self.find for top in self.tops.values()) and (
            trained_on >= 0.05 * self.n_pool
        ):
            return StopDecision(True, None, "benchmark: scored figures reached")
        return decision


def run_agent(agent: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run one campaign; return its job sequence (kind, pair, value) and per-round models'
    DFT-level pool MAE."""
    torch.set_num_threads(1)
    cfg = agent_config(agent, seed, args)
    v = variant(args)
    dft, _ = truth_tables(v)
    with tempfile.TemporaryDirectory(prefix="alloop-mf-") as tmp:
        path = os.path.join(tmp, "c.alloop")
        t0 = time.perf_counter()
        with open_campaign(cfg, path, v) as store:
            relaxed_mlip = v.name == "relaxed" and cfg.oracle.kind == "mf_replay"
            oracle = LowFidelityReplayOracle(value=v.lowfi_value) if relaxed_mlip else None
            engine = BenchmarkEngine(store, cfg, v, dft, oracle=oracle)
            decision = engine.run()
            wall = time.perf_counter() - t0
            names = engine.names
            sequence = job_sequence(store)
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
    return {"agent": agent, "seed": seed, "fingerprint": fingerprint(cfg),
            "levers": cfg.surrogate.levers._asdict(), "sequence": sequence, "rounds": rounds,
            "answer": answer, "stop": f"{decision.reason}: {decision.detail}", "wall_s": wall,
            "load_avg_end": os.getloadavg()}  # fmt: skip


def job_sequence(store: Any) -> list[dict[str, Any]]:
    """A campaign's jobs in the order it bought them (round, then acquisition rank), each with
    its pair (``metal|molecule``), label value and status."""
    names = {p.key: f"{p.surface_key}|{p.adsorbate_key}" for p in store.pairs()}
    ranks = {(a.round_index, a.pair_key): a.rank for a in store.acquisitions()}
    jobs = sorted(
        store.jobs(),
        key=lambda j: (j.round_index, ranks.get((j.round_index, j.pair_key), 1e9), j.id),
    )
    labels = {lab.job_key: lab for lab in store.labels()}
    return [
        {"round": j.round_index, "kind": j.kind, "pair": names[j.pair_key],
         "gmae_ev": labels[j.key].gmae_ev if j.key in labels else None,
         "status": labels[j.key].status if j.key in labels else None}
        for j in jobs
    ]  # fmt: skip


def score_campaign(path: str) -> str:
    """Figure (a) of a campaign file run on the FG pool (e.g. `alloop run
    configs/fg-mf-replay.yaml`): the cost to DFT-confirm 27 of the 30 strongest."""
    if not Path(path).is_file():
        raise SystemExit(f"--score: no campaign file at {path}")
    with CampaignStore.open(path) as store:
        seq = job_sequence(store)
    dft, _ = truth_tables(VARIANTS["fg"])
    found = {name: cost_to_find(seq, top, COST_DFT) for name, top in top_sets(dft).items()}
    return (f"{path}: cost to DFT-confirm {FIND} of {TOP_K}: {found['with']} "
            f"(without the 2 dissociated minima: {found['without']})")  # fmt: skip


def open_campaign(cfg: AlloopConfig, path: str, v: Variant) -> CampaignStore:
    """The campaign's store: the config's pool, or the relaxed subset's pairs of it."""
    if v.name == "fg":
        return create_campaign(cfg, path)
    pool = build_pool(cfg.pool, cfg.campaign.seed)
    pairs = relaxed_pairs()
    used = {a for _, a in pairs}
    return CampaignStore.create(
        path, name=cfg.campaign.name, config=cfg.resolved(), seed=cfg.campaign.seed,
        surfaces=pool.surfaces, adsorbates=[a for a in pool.adsorbates if a.key in used],
        pairs=pairs,
    )  # fmt: skip


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
    """MLIP on every pair (pool order), then DFT in ascending MLIP order (pairs whose MLIP
    label failed last)."""
    keys = sorted(dft)
    seq = [
        {"round": 0, "kind": "mlip", "pair": k, "gmae_ev": mlip.get(k),
         "status": "ok" if k in mlip else "failed"} for k in keys
    ]  # fmt: skip
    seq += [
        {"round": 1, "kind": "dft_relax", "pair": k, "gmae_ev": dft[k], "status": "ok"}
        for k in sorted(keys, key=lambda k: (k not in mlip, mlip.get(k, 0.0), k))
    ]
    return {"agent": "funnel", "seed": 0, "sequence": seq, "rounds": [], "answer": None,
            "stop": "deterministic", "wall_s": 0.0}  # fmt: skip


def cost_to_find(
    seq: list[dict[str, Any]], top: set[str], dft_cost: float, find: int = FIND
) -> dict[str, Any]:
    """Cost (and labels by fidelity) when the ``find``-th of ``top`` gets a DFT-level label."""
    spent, n_mlip, n_dft, hits = 0.0, 0, 0, set()
    for job in seq:
        low = is_low_fidelity(job["kind"])
        spent += COST_MLIP if low else dft_cost
        n_mlip, n_dft = n_mlip + low, n_dft + (not low)
        if not low and job["status"] == "ok" and job["pair"] in top:
            hits.add(job["pair"])
            if len(hits) >= find:
                return {"cost": spent, "mlip": n_mlip, "dft": n_dft}
    return {"cost": None, "mlip": n_mlip, "dft": n_dft, "found": len(hits)}


def aggregate(runs: list[dict[str, Any]], dft: dict[str, float], v: Variant) -> dict[str, Any]:
    tops = top_sets(dft, v.top_k)
    n_pool = len(dft)
    agents: dict[str, Any] = {}
    for agent in v.agents:
        mine = sorted((r for r in runs if r["agent"] == agent), key=lambda r: r["seed"])
        if not mine:
            continue
        row: dict[str, Any] = {"seeds": [r["seed"] for r in mine]}
        for name, top in tops.items():
            for ratio in RATIOS:
                found = [cost_to_find(r["sequence"], top, ratio, v.find) for r in mine]
                row[f"find_{name}_x{ratio:g}"] = found
        at = row[f"find_with_x{COST_DFT:g}"]
        costs = [f["cost"] for f in at]
        row[v.cost_key] = float(np.mean(costs)) if all(c is not None for c in costs) else None
        row["cost_by_seed"] = dict(zip(row["seeds"], costs, strict=True))
        row["dft_labels_at_find"] = float(np.mean([f["dft"] for f in at]))
        row["mlip_labels_at_find"] = float(np.mean([f["mlip"] for f in at]))
        five = []
        for r in mine:
            hit = [x for x in r["rounds"] if x.get("n_dft_at_training", 0) >= 0.05 * n_pool]
            five.append(hit[0]["pool_mae_ev"] if hit else None)
        got = [v for v in five if v is not None]  # a seed may stop before 5 % of the pool
        row["pool_mae_dft_ev_at_5pct_dft"] = float(np.mean(got)) if got else None
        row["pool_mae_at_5pct_by_seed"] = five
        if agent == "mlip_only":
            row["answer_holds_top30"] = [len(set(r["answer"]) & tops["with"]) for r in mine]
        row["curves"] = [
            [(x["cost_total"], x.get("n_dft_at_training"), x.get("pool_mae_ev"))
             for x in r["rounds"]] for r in mine
        ]  # fmt: skip
        row["levers"] = mine[0].get("levers")
        row["wall_s"] = [r["wall_s"] for r in mine]
        agents[agent] = row
    return agents


def better_dft_only(agents: dict[str, Any], v: Variant) -> str:
    """The DFT-only baseline with the lower mean cost over its seeds (one that missed in some
    seed loses to one that never missed)."""
    have = [a for a in dft_only_agents(v) if a in agents]
    if not have:
        return "dft_only"
    return min(have, key=lambda a: (agents[a][v.cost_key] is None,
                                    agents[a][v.cost_key] or 0.0))  # fmt: skip


def paired_ratio(agents: dict[str, Any], num: str, den: str) -> dict[str, Any] | None:
    """``num``'s cost over ``den``'s, seed by seed (seeds both ran and both reached): mean,
    sample std, a 90 % t-interval of the mean, the largest; None without a common seed."""
    a, b = agents.get(num), agents.get(den)
    if a is None or b is None:
        return None
    if den == "funnel":  # deterministic: one value for every seed
        f = b["cost_by_seed"][b["seeds"][0]]
        pairs = {s: (c, f) for s, c in a["cost_by_seed"].items()}
    else:
        pairs = {s: (c, b["cost_by_seed"][s]) for s, c in a["cost_by_seed"].items()
                 if s in b["cost_by_seed"]}  # fmt: skip
    missed = sorted(s for s, (x, y) in pairs.items() if x is None or y is None)
    r = {s: x / y for s, (x, y) in pairs.items() if x is not None and y is not None}
    if not r:
        return None
    v = np.array(list(r.values()))
    out: dict[str, Any] = {"by_seed": r, "n": len(v), "mean": float(v.mean()),
                           "max": float(v.max()), "seeds_missed": missed}  # fmt: skip
    if len(v) > 1:
        sd = float(v.std(ddof=1))
        half = float(stats.t.ppf(0.95, len(v) - 1)) * sd / math.sqrt(len(v))
        out |= {"sample_std": sd, "ci90": [float(v.mean()) - half, float(v.mean()) + half]}
    return out


def markdown(results: dict[str, Any], v: Variant) -> str:
    a = results["agents"]
    base = results["dft_only_agent"]
    dft_only = a.get(base, {}).get(v.cost_key)
    what = {
        "fg": ("Multi-fidelity campaigns on the FG replay (FG-GMAE stand-in)",
               "MLIP = SevenNet-MF-0 single points at the FG DFT geometries "
               "(`oracles/data/fg_mlip_sevennet_mf0.csv`); DFT = the FG table."),
        "relaxed": ("Multi-fidelity campaigns on the relaxed-pattern replay (issue 18, part 3)",
                    "Pool: the 282 pairs of the low-fidelity table's relaxed subset; MLIP = "
                    "SevenNet-MF-0 relaxed from the DFT geometries (the live oracle's error "
                    "pattern; a pair whose relaxation was flagged, 10 of them, gets a failed "
                    "MLIP label); DFT = the FG table. Agents scaled to the pool: "
                    f"{RELAXED_DFT_ONLY} (top_k, first DFT labels, DFT per round) and "
                    f"`{RELAXED_HEADLINE}` = configs/fg-mf-replay.yaml with EI on the 10th best, "
                    "50 random MLIP labels first, then <= 30 MLIP + 5 DFT labels a round."),
    }[v.name]  # fmt: skip
    lines = [
        f"# {what[0]}", "",
        f"Command: `{results['command']}`  ", f"Machine: {results['machine']}  ",
        f"Wall time of this invocation: {results['wall_s']:.0f} s (runs stored earlier are "
        f"reused; each run's own wall time is in the JSON). {results['note']}", "",
        f"{what[1]} Cost: MLIP 1, DFT 100 "
        "units; the 30x and 1,000x columns re-price the same job sequences. ± is the sample "
        f"standard deviation over seeds. Ratio column: over `{base}`, the better DFT-only "
        "baseline (lower mean cost).", "",
        "| agent | seeds | surrogate (split / prior / MLIP features) | (a) cost to DFT-confirm "
        f"{v.find} of {v.top_k} (100x), per seed | mean ± sd | ratio to the better DFT-only | "
        "DFT / MLIP "
        "labels then | w/o the 2 dissociated | at 30x | at 1,000x | (b) pool MAE at 5 % DFT "
        "(eV) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip

    def mean_cost(found: list[dict[str, Any]]) -> str:
        c = [f["cost"] for f in found]
        if any(x is None for x in c):
            return f"not reached ({', '.join('—' if x is None else f'{x:,.0f}' for x in c)})"
        sd = f" ± {np.std(c, ddof=1):,.0f}" if len(c) > 1 else ""
        return f"{np.mean(c):,.0f}{sd}"

    for name, row in a.items():
        cost = row[v.cost_key]
        ratio = f"{cost / dft_only:.2f}" if cost and dft_only else "—"
        mae = row["pool_mae_dft_ev_at_5pct_dft"]
        n_mae = sum(v is not None for v in row["pool_mae_at_5pct_by_seed"])
        per_seed = ", ".join(
            "—" if c is None else f"{c:,.0f}" for c in row["cost_by_seed"].values()
        )
        lev = row.get("levers") or {}
        levers = " / ".join(str(lev.get(k, "—")) for k in ("split", "prior_mean", "mlip_features"))
        lines.append(
            f"| {name} | {len(row['seeds'])} | {levers if name != 'funnel' else '— (no model)'} | "
            f"{per_seed} | {mean_cost(row['find_with_x100'])} | {ratio} | "
            f"{row['dft_labels_at_find']:.0f} / {row['mlip_labels_at_find']:.0f} | "
            f"{mean_cost(row['find_without_x100'])} | {mean_cost(row['find_with_x30'])} | "
            f"{mean_cost(row['find_with_x1000'])} | "
            f"{'—' if mae is None else f'{mae:.3f} ({n_mae} seeds)'} |"
        )
    lines += ["", f"Paired ratios (cost to DFT-confirm {v.find} of {v.top_k}, seed by seed):", ""]
    for key, r in results["ratio_table"].items():
        if r is None:
            lines.append(f"* {key}: no common seed reached")
            continue
        ci = (f", 90 % interval of the mean {r['ci90'][0]:.2f}-{r['ci90'][1]:.2f}, sample std "
              f"{r['sample_std']:.2f}" if "ci90" in r else "")  # fmt: skip
        seeds = ", ".join(f"{v:.2f}" for v in r["by_seed"].values())
        missed = f"; not reached in seeds {r['seeds_missed']}" if r["seeds_missed"] else ""
        lines.append(f"* {key}: mean {r['mean']:.2f}{ci}; largest {r['max']:.2f} "
                     f"(per seed {seeds}; n = {r['n']}){missed}")  # fmt: skip
    if "mlip_only" in a:
        lines += ["", "MLIP-only's final answer (its 30 lowest labels/predictions) holds "
                  f"{a['mlip_only']['answer_holds_top30']} of the 30 strongest DFT binders "
                  "(per seed), none of them DFT-confirmed."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(
    results: dict[str, Any], dft: dict[str, float], runs: list[dict[str, Any]], v: Variant
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = top_sets(dft, v.top_k)["with"]
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
    ax[0].axhline(v.find, color="grey", ls=":")
    ax[0].set(xlabel="cost units (MLIP 1, DFT 100)", ylabel=f"top-{v.top_k} DFT binders confirmed",
              xscale="log", xlim=(100, None))  # fmt: skip
    ax[1].set(xlabel="cost units when the model trained", ylabel="DFT-level pool MAE (eV)",
              xscale="log")  # fmt: skip
    ax[0].legend(fontsize=7)
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{v.stem}_found.png", dpi=120)


def run_and_store(agent: str, seed: int, args: argparse.Namespace) -> str:
    result = run_agent(agent, seed, args)
    write_run(run_path(agent, seed, args), result)
    return f"{agent} seed {seed}: {result['wall_s']:.0f} s, stop {result['stop']}"


def stored_runs(args: argparse.Namespace, dft: dict[str, float], mlip: dict[str, float]):
    """Every stored run of the current configs (any seed), and the funnel."""
    v = variant(args)
    runs = [funnel_run(dft, mlip)]
    for path in sorted(v.runs.glob("*-s*-*.json.gz")):
        agent, rest = path.name.removesuffix(".json.gz").rsplit("-s", 1)
        seed = int(rest.split("-")[0])
        if agent in v.agents and path == run_path(agent, seed, args):
            runs.append(read_run(path))
    return runs


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--agents", nargs="+", help="default: the docs' table (fg), every (relaxed)")
    p.add_argument("--pool", choices=sorted(VARIANTS), default="fg")
    p.add_argument("--workers", type=int, default=1, help="campaigns run at once (1 thread each)")
    p.add_argument("--dft-only-cost", type=float, default=50_000.0)
    p.add_argument("--mlip-only-cost", type=float, default=2_000.0)
    p.add_argument("--mf-cost", type=float, default=16_000.0)
    p.add_argument("--note", default="", help="what else ran on the machine")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--score", metavar="CAMPAIGN", help="only print figure (a) of a campaign file")
    args = p.parse_args(argv)
    if args.score:
        print(score_campaign(args.score))
        return
    v = variant(args)
    args.agents = args.agents or list(TABLE_AGENTS if v.name == "fg" else v.agents)
    unknown = sorted(set(args.agents) - set(v.agents))
    if unknown:
        raise SystemExit(f"unknown agents {unknown}; valid: {', '.join(v.agents)}")
    t0 = time.perf_counter()
    dft, mlip = truth_tables(v)
    todo = [
        (agent, seed)
        for seed in args.seeds
        for agent in args.agents
        if agent != "funnel" and not run_path(agent, seed, args).is_file()
    ]
    if todo and not args.report_only:
        print(f"{len(todo)} campaigns to run ({args.workers} at a time)", flush=True)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
            futures = [pool.submit(run_and_store, agent, seed, args) for agent, seed in todo]
            for fut in as_completed(futures):
                print(fut.result(), flush=True)
    runs = stored_runs(args, dft, mlip)
    agents = aggregate(runs, dft, v)
    base = better_dft_only(agents, v)
    head = headline_of(v)
    ratio_table = {
        f"{head} / {den}": paired_ratio(agents, head, den)
        for den in (*dft_only_agents(v), "funnel")
    }
    results = {
        "benchmark": f"multi-fidelity campaigns, {v.name} replay (FG-GMAE stand-in)",
        "pool": {"variant": v.name, "n_pairs": len(dft), "top_k": v.top_k, "find": v.find},
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multifidelity/campaigns.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "torch_threads": 1,
        },  # fmt: skip
        "settings": {
            "surrogate": headline_yaml()["surrogate"],
            "cost": {"mlip": COST_MLIP, "dft": COST_DFT},
            "budgets": {
                "dft_only": args.dft_only_cost,
                "mlip_only": args.mlip_only_cost,
                "mf": args.mf_cost,
                "headline": headline_yaml()["budget"]["max_cost"],
            },
        },  # fmt: skip
        "wall_s": time.perf_counter() - t0,
        "note": args.note,
        "headline_agent": head,
        "dft_only_agent": base,
        "funnel_agent": "funnel",
        "ratio_table": ratio_table,
        "summary": {
            name: {
                k: row[k]
                for k in (
                    v.cost_key,
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
    (RESULTS / f"{v.stem}.json").write_text(json.dumps(results, indent=1))
    (RESULTS / f"{v.stem}.md").write_text(markdown(results, v))
    plot(results, dft, runs, v)
    print(markdown(results, v))


if __name__ == "__main__":
    main()
