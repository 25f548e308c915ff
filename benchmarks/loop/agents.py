"""The agents the active-learning benchmark compares, each run to a label budget on FG replay.

* AdsMT agents: the real ``CampaignEngine`` on a real SQLite campaign with the replay oracle
  (DFT labels of the FG table); only the acquisition section differs between them.
* The tree agent: a bootstrap ensemble of 5 gradient-boosted-tree models on metal one-hot +
  metal facts + RDKit descriptors, lower confidence bound, top-q batches, the same random start.

Each returns a plain dict (JSON-ready): the acquisition order (pair keys, round by round, rank
within the round), per-round timings and the pool MAE of the model trained at each checkpoint.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE.parent / "surrogate"))

from baseline import tree_features  # noqa: E402
from sklearn.ensemble import HistGradientBoostingRegressor  # noqa: E402
from splits import ANOMALIES  # noqa: E402

from alloop.loop.agent.batch import select_batch  # noqa: E402
from alloop.loop.agent.engine import CampaignEngine, round_generator  # noqa: E402
from alloop.loop.bridges.surrogate import PoolView  # noqa: E402
from alloop.loop.config import AlloopConfig  # noqa: E402
from alloop.loop.face.commands import create_campaign  # noqa: E402
from alloop.oracles.replay import read_fg_rows  # noqa: E402
from alloop.surrogate.ensemble import AdsMTEnsemble  # noqa: E402

# strategy name -> acquisition section overrides (batch sizes are added by the driver)
STRATEGIES: dict[str, dict[str, Any]] = {
    "random": {"name": "random", "diversity": "none"},
    "uncertainty": {"name": "uncertainty"},
    "ei": {"name": "ei"},
    "lcb": {"name": "lcb", "beta": 1.0},
    # "strongly binding" design window: below the 5th percentile of a typical FG pool
    "target_window": {"name": "target_window", "target_window_ev": [-5.0, -2.5]},
    # explore and exploit in one batch: half EI, half max-sigma
    "ei_explore": {"name": "ei", "explore_fraction": 0.5},
}
TREES = "trees_lcb"


def fg_truth(fg_root: Path) -> dict[str, float]:
    """pair key (as the campaign names it) -> DFT GMAE, eV."""
    return {f"{m}|{a}": row.e_ads_min_ev for (m, a), row in read_fg_rows(fg_root).items()}


def anomaly_keys() -> set[str]:
    return {f"{m}|{a}" for m, a in ANOMALIES}


#: ``--surrogate``: the benchmark's own settings (``--members`` …) or the package's defaults
SURROGATES = ("bench", "shipped")


def surrogate_section(args: Any) -> dict[str, Any]:
    if args.surrogate == "shipped":  # what `alloop run` trains when the config is silent
        return {"device": "cpu"}
    return {
        "ensemble_size": args.members,
        "hidden_dim": args.hidden_dim,
        "max_epochs": args.max_epochs,
        "early_stop_patience": args.patience,
        "batch_size": args.train_batch,
        "device": "cpu",
    }


def campaign_config(strategy: str, seed: int, args: Any) -> AlloopConfig:
    acquisition = {
        **STRATEGIES[strategy],
        "batch_size": args.batch,
        "initial_batch_size": args.start,
    }
    return AlloopConfig.model_validate(
        {
            "campaign": {"name": f"al-{strategy}-{seed}", "seed": seed},
            "pool": {"fg": {"root": str(args.fg_root)}},
            "oracle": {"kind": "replay"},
            "surrogate": surrogate_section(args),
            "acquisition": acquisition,
            # one batch past the largest checkpoint, so a model is trained on exactly that many
            "budget": {"max_labels": max(args.checkpoints) + args.batch, "max_rounds": None},
        }
    )


def _pair_key_fn(store: Any) -> dict[str, str]:
    """campaign pair key -> 'metal|family/code' (the truth's key)."""
    return {p.key: f"{p.surface_key}|{p.adsorbate_key}" for p in store.pairs()}


def run_adsmt_agent(strategy: str, seed: int, args: Any) -> dict[str, Any]:
    torch.set_num_threads(1)
    cfg = campaign_config(strategy, seed, args)
    truth = fg_truth(args.fg_root)
    with tempfile.TemporaryDirectory(prefix="alloop-al-") as tmp:
        path = os.path.join(tmp, "c.alloop")
        t0 = time.perf_counter()
        with create_campaign(cfg, path) as store:
            engine = CampaignEngine(store, cfg)
            decision = engine.run()
            wall = time.perf_counter() - t0
            names = _pair_key_fn(store)
            order: list[str] = []
            rounds = []
            pool_mae: dict[str, dict[str, float]] = {}
            for rnd in store.rounds():
                acq = sorted(store.acquisitions(round_index=rnd.index), key=lambda a: a.rank)
                n_before = len(order)
                timing = rnd.metrics.get("timing", {})
                rounds.append(
                    {
                        "index": rnd.index,
                        "n_labels_before": n_before,
                        "val_mae_ev": rnd.metrics.get("val_mae_ev"),
                        "batch_mae_ev": rnd.metrics.get("batch_mae_ev"),
                        "batch_coverage_95": rnd.metrics.get("batch_coverage_95"),
                        "timing": timing,
                    }
                )
                if store.checkpoints(rnd.index):
                    ens = AdsMTEnsemble.from_bytes(store.checkpoints(rnd.index)[0].blob)
                    pool_mae[str(n_before)] = _pool_mae(ens, engine.pool, set(order), names, truth)
                order += [names[a.pair_key] for a in acq]
    return {
        "agent": strategy,
        "seed": seed,
        "order": order,
        "rounds": rounds,
        "pool_mae": pool_mae,
        "stop": decision.reason,
        "wall_s": wall,
    }


def _pool_mae(
    ens: AdsMTEnsemble,
    pool: PoolView,
    labelled: set[str],
    names: dict[str, str],
    truth: dict[str, float],
) -> dict[str, float]:
    rest = [p for p in pool.pairs if names[p.key] not in labelled]
    slabs, smiles, index = pool.index_tensors(rest)
    mean = ens.predict(slabs, smiles, index).mean_ev.numpy()
    y = np.array([truth[names[p.key]] for p in rest])
    bad = anomaly_keys()
    ok = np.array([names[p.key] not in bad for p in rest])
    err = np.abs(mean - y)
    return {"all": float(err.mean()), "no_anomalies": float(err[ok].mean()), "n": len(rest)}


def run_tree_agent(seed: int, args: Any, n_models: int = 5, beta: float = 1.0) -> dict[str, Any]:
    """Bootstrap-GBT LCB agent; the first batch is the engine's random start for ``seed``."""
    from alloop.surrogate.featurizer import Featurizer, FeaturizerConfig

    cfg = campaign_config("random", seed, args)
    truth = fg_truth(args.fg_root)
    with (
        tempfile.TemporaryDirectory(prefix="alloop-al-") as tmp,
        create_campaign(cfg, os.path.join(tmp, "c.alloop")) as store,
    ):
        pairs = store.pairs()
        names = _pair_key_fn(store)
        smiles = {a.key: a.smiles for a in store.adsorbates()}
    keys = [names[p.key] for p in pairs]
    uniq = sorted(set(smiles.values()))
    # the trees read RDKit descriptors only (as measured), never the MLIP tail
    desc = Featurizer(FeaturizerConfig(mlip_features="none")).descriptors(uniq).numpy()
    row = {s: i for i, s in enumerate(uniq)}
    x = tree_features(
        [p.surface_key for p in pairs], desc[[row[smiles[p.adsorbate_key]] for p in pairs]]
    )
    y = np.array([truth[k] for k in keys])
    bad = anomaly_keys()
    ok = np.array([k not in bad for k in keys])
    # the engine's cold start: seeded random picks over the pool in store order
    start = select_batch(
        None, None, args.start, method="random",
        generator=round_generator(seed, 0),
        available=torch.ones(len(pairs), dtype=torch.bool),
    )  # fmt: skip
    chosen = [p.index for p in start.picks]
    rounds, pool_mae = [], {}
    budget = max(args.checkpoints) + args.batch
    rng = np.random.default_rng(seed)
    t_all = time.perf_counter()
    while len(chosen) < budget:
        t0 = time.perf_counter()
        lab = np.array(chosen)
        rest = np.setdiff1d(np.arange(len(pairs)), lab)
        preds = []
        for m in range(n_models):
            boot = rng.integers(0, len(lab), len(lab))
            model = HistGradientBoostingRegressor(
                learning_rate=0.05, max_iter=300, max_leaf_nodes=31, min_samples_leaf=5,
                l2_regularization=1e-3, early_stopping=False, random_state=seed * 100 + m,
            )  # fmt: skip
            model.fit(x[lab[boot]], y[lab[boot]])
            preds.append(model.predict(x[rest]))
        train_s = time.perf_counter() - t0
        mu, sd = np.mean(preds, 0), np.std(preds, 0)
        err = np.abs(mu - y[rest])
        pool_mae[str(len(chosen))] = {
            "all": float(err.mean()), "no_anomalies": float(err[ok[rest]].mean()), "n": len(rest)
        }  # fmt: skip
        score = mu - beta * sd
        take = rest[np.argsort(score, kind="stable")[: args.batch]]
        rounds.append({"n_labels_before": len(chosen), "timing": {"train_s": train_s}})
        chosen += [int(i) for i in take]
    return {
        "agent": TREES,
        "seed": seed,
        "order": [keys[i] for i in chosen],
        "rounds": rounds,
        "pool_mae": pool_mae,
        "stop": "label budget",
        "wall_s": time.perf_counter() - t_all,
    }


def measure_overhead(args: Any, rounds: int = 5, threads: int = 1) -> dict[str, Any]:
    """The loop's own time per round with the shipped surrogate defaults (5 members, hidden 128):
    EI + kriging believer, batches of 50 on FG replay. Training is capped at 3 epochs, since its
    time is not part of the overhead; the ensemble still scores the whole pool every round."""
    torch.set_num_threads(threads)
    cfg = AlloopConfig.model_validate(
        {
            "campaign": {"name": "overhead", "seed": 0},
            "pool": {"fg": {"root": str(args.fg_root)}},
            "oracle": {"kind": "replay"},
            "surrogate": {"max_epochs": 3, "device": "cpu"},
            "acquisition": {"name": "ei", "batch_size": 50, "initial_batch_size": 50},
            "budget": {"max_rounds": rounds},
        }
    )
    with (
        tempfile.TemporaryDirectory(prefix="alloop-al-") as tmp,
        create_campaign(cfg, os.path.join(tmp, "c.alloop")) as store,
    ):
        CampaignEngine(store, cfg).run()
        timing = [r.metrics["timing"] for r in store.rounds() if "train_s" in r.metrics["timing"]]
    over = [t["overhead_s"] for t in timing]
    return {
        "torch_threads": threads,
        "ensemble_size": cfg.surrogate.ensemble_size,
        "hidden_dim": cfg.surrogate.hidden_dim,
        "per_round_s": over,
        "mean_s": float(np.mean(over)),
        "max_s": float(np.max(over)),
        "score_s_mean": float(np.mean([t["score_s"] for t in timing])),
        "select_s_mean": float(np.mean([t["acquire_s"] - t["score_s"] for t in timing])),
        "n_scored": [t["n_scored"] for t in timing],
    }
