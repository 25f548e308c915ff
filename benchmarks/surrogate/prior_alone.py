"""Diagnostic: the scaling-relation prior mean alone, on the learning curve's own splits.

The shipped ensemble's members learn the residual over `alloop.surrogate.prior` (a per-surface
offset and slope on one learned adsorbate score, strengths by 5-fold CV). How much of the
learning curve is the prior, and how much the AdsMT members add, tells where small-data gains
can come from. Same N random FG pairs per seed as ``learning_curve.py`` (``default_rng(seed)``
permutation, test = every other pair), descriptors as the shipped ensemble's prior reads
them (the shipped featuriser, frozen SevenNet-0 features included; statistics over the labels'
adsorbates; values clipped at ``descriptor_clip``: before 2026-12-07 this script left them
unclipped and without the MLIP features, which overstated the prior's error at 25-50 labels),
the prior fit on all N labels with its CV-chosen strength; compared, seed by seed, with the
shipped ensemble and the trees stored in ``surrogate_learning_curve.json``.

Run (minutes on one core: 442 s at nice 19 beside two benchmark processes):
    .venv/bin/python benchmarks/surrogate/prior_alone.py
Writes benchmarks/results/surrogate_prior_alone.json and .md.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from alloop.oracles.fg_data import fg_data_root
from alloop.surrogate.crossfit import fit_member_priors
from alloop.surrogate.featurizer import Featurizer
from alloop.surrogate.fg import read_fg_table
from alloop.surrogate.normalizers import Standardizer
from alloop.surrogate.types import EnsembleConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from splits import curve_split  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
CURVE = RESULTS / "surrogate_learning_curve.json"
NS = (25, 50, 100, 200, 500)
SEEDS = (0, 1, 2, 3, 4)
SHIPPED = EnsembleConfig()
CLIP = SHIPPED.descriptor_clip


def prior_alone_mae(
    metals: list[str],
    slab_idx: torch.Tensor,
    smiles: list[str],
    raw: torch.Tensor,
    ads_idx: torch.Tensor,
    y: torch.Tensor,
    train: np.ndarray,
    test: np.ndarray,
    seed: int,
    prior_mean: str = "scaling",
) -> float:
    """Test MAE (eV) of the prior alone, fit on the pairs `train` as an ensemble of that seed
    fits its members' prior (`fit_member_priors`: descriptors standardised and clipped over
    the labels' adsorbates, strengths by the same cross-validation), scored on `test`."""
    tr, te = torch.as_tensor(train), torch.as_tensor(test)
    desc = Standardizer(raw.shape[1], clip=CLIP).fit(raw[ads_idx[tr]])(raw)
    (prior,) = fit_member_priors(
        metals, slab_idx, smiles, desc, ads_idx, y, torch.zeros_like(y, dtype=torch.long),
        [(tr, tr[:0])], seed, prior_mean,
    )  # fmt: skip
    pred = prior.predict(metals, slab_idx[te], smiles, desc, ads_idx[te])
    return float((pred - y[te]).abs().mean())


def main() -> None:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    records = read_fg_table(fg_data_root())
    smiles = sorted({r.smiles for r in records})
    metals = sorted({r.metal for r in records})
    a_pos = {s: i for i, s in enumerate(smiles)}
    s_pos = {m: i for i, m in enumerate(metals)}
    raw = Featurizer(SHIPPED.featurizer).descriptors(smiles).double()  # MLIP features too
    y = torch.tensor([r.gmae_ev for r in records], dtype=torch.float64)
    slab_idx = torch.tensor([s_pos[r.metal] for r in records])
    ads_idx = torch.tensor([a_pos[r.smiles] for r in records])
    stored = json.loads(CURVE.read_text())["runs"]
    rows: dict[str, dict[str, list[float | None]]] = {}
    for prior_mean in ("scaling", "scaling_ads"):
        for n in NS:
            maes: list[float | None] = []
            for seed in SEEDS:
                train, test = curve_split(len(records), n, seed)
                maes.append(prior_alone_mae(
                    metals, slab_idx, smiles, raw, ads_idx, y, train, test, seed, prior_mean
                ))  # fmt: skip
            rows[f"prior_{prior_mean}|{n}"] = {"mae_ev": maes}
    for who in ("shipped", "trees"):
        for n in NS:
            got = [stored.get(f"{who}|random|{n}|{s}", {}).get("mae_ev") for s in SEEDS]
            rows[f"{who}|{n}"] = {"mae_ev": got}
    out = {"ns": NS, "seeds": SEEDS, "rows": rows, "wall_s": time.perf_counter() - t0,
           "command": ".venv/bin/python benchmarks/surrogate/prior_alone.py",
           "compared_with": str(CURVE.relative_to(RESULTS.parents[1]))}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "surrogate_prior_alone.json").write_text(json.dumps(out, indent=1))
    write_markdown(out)


def _mean_sd(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "—"
    sd = f" ± {np.std(got, ddof=1):.3f}" if len(got) > 1 else ""
    return f"{np.mean(got):.3f}{sd}" + ("" if len(got) == len(values) else f" (n={len(got)})")


def write_markdown(out: dict) -> None:
    ns, rows = out["ns"], out["rows"]
    who = {
        "prior_scaling": "scaling prior alone (`prior_mean: scaling`, no members)",
        "prior_scaling_ads": "scaling prior + adsorbate offsets alone",
        "shipped": "shipped ensemble (stored learning curve)",
        "trees": "trees (stored learning curve)",
    }
    lines = [
        "# The scaling prior alone on the learning curve's splits",
        "",
        f"Command: `{out['command']}` ({out['wall_s']:.0f} s). Seeds {list(out['seeds'])}, "
        "N random FG pairs, test = every other pair; the ensemble and the trees are read from "
        f"`{out['compared_with']}` (same seeds, same pairs). Test MAE (eV), mean ± sample std.",
        "",
        "| model | " + " | ".join(f"N={n}" for n in ns) + " |",
        "| --- | " + " | ".join("---" for _ in ns) + " |",
    ]
    for key, name in who.items():
        cells = [_mean_sd(rows[f"{key}|{n}"]["mae_ev"]) for n in ns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    diffs = []
    for n in ns:
        a, b = rows[f"shipped|{n}"]["mae_ev"], rows[f"prior_scaling|{n}"]["mae_ev"]
        paired = [x - z for x, z in zip(a, b, strict=True) if x is not None and z is not None]
        diffs.append(_mean_sd(paired))  # type: ignore[arg-type]
    lines += [
        "",
        "Shipped ensemble minus the prior alone, paired by seed: "
        + ", ".join(f"N={n}: {d}" for n, d in zip(ns, diffs, strict=True))
        + " eV.",
    ]
    (RESULTS / "surrogate_prior_alone.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
