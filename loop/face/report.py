"""`alloop report`: PNG plots of a campaign (matplotlib, Agg backend, no display needed).

* learning curve: validation MAE (training split) and batch MAE (predictions against the labels
  they then received) against the number of labels, per round; a point from fewer than
  `numbers.MIN_METRIC_VALUES` values is hollow and carries its n;
* parity: predicted μ at acquisition time against the label;
* calibration: observed against expected coverage of central Gaussian intervals μ ± zσ;
* GMAE distribution: labels of acquired pairs against the latest ensemble's μ over the pool.

Fidelities are never mixed: in a multi-fidelity campaign (`answers.is_multi_fidelity`) the
μ and σ stored with a pick are DFT-level, so parity and calibration compare them with DFT
labels only (the target label that counts, `agent.labels.labels_that_count`) and say how many
picks with only an MLIP label they leave out; the distribution shows DFT and MLIP labels as
two histograms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

from alloop.loop.agent.labels import (  # noqa: E402
    LOW_FIDELITIES,
    TARGET_FIDELITIES,
    labels_that_count,
)
from alloop.loop.face import numbers  # noqa: E402
from alloop.loop.face.answers import is_multi_fidelity  # noqa: E402
from alloop.store import CampaignStore  # noqa: E402
from alloop.store.errors import StoreError  # noqa: E402
from alloop.store.records import RoundRecord  # noqa: E402


@dataclass(frozen=True)
class ParityPoints:
    """(μ, σ, label) of acquisitions that were predicted and whose pair has a usable label at
    the level μ is predicted at: `n x 1` arrays in eV. ``what`` names that comparison;
    ``left_out``: predicted picks whose pair has only a label of another fidelity (MLIP)."""

    mu: np.ndarray
    sigma: np.ndarray
    y: np.ndarray
    what: str
    left_out: int = 0
    label_name: str = "label"  # what y is: "DFT label" in a multi-fidelity campaign


def parity_points(store: CampaignStore) -> ParityPoints:
    """What parity and calibration plot (see the module docstring)."""
    summaries = store.label_summaries()
    multi = is_multi_fidelity(store, summaries)
    fidelities = TARGET_FIDELITIES if multi else None
    counting = labels_that_count(summaries, fidelities=fidelities, usable=True, strict=False)
    predicted = [a for a in store.acquisitions() if a.mu_ev is not None and a.sigma_ev is not None]
    rows = [(a.mu_ev, a.sigma_ev, counting[a.pair_key].gmae_ev)
            for a in predicted if a.pair_key in counting]  # fmt: skip
    labelled = {lab.pair_key for lab in summaries if lab.status == "ok"}
    left_out = sum(a.pair_key not in counting and a.pair_key in labelled for a in predicted)
    arr = np.array(rows, dtype=float).reshape(-1, 3)
    if not multi:
        return ParityPoints(arr[:, 0], arr[:, 1], arr[:, 2], "labels vs μ")
    return ParityPoints(arr[:, 0], arr[:, 1], arr[:, 2], "DFT labels vs DFT-level μ", left_out,
                        "DFT label")  # fmt: skip


#: each learning-curve series: its metric and the metric that counts the values it was computed on
CURVE_SERIES = (
    ("val_mae_ev", "n_val_labels", "validation MAE"),
    ("batch_mae_ev", "n_batch_scored", "batch MAE"),
)


def draw_learning_curve(ax: Any, rounds: Sequence[RoundRecord]) -> None:
    """Validation and batch MAE against labels on `ax`; each point computed on fewer than
    `numbers.MIN_METRIC_VALUES` values is drawn hollow and labelled with its n (``n=?``
    where the round did not record it)."""
    closed = [r for r in rounds if r.state == "closed"]
    for key, n_key, label in CURVE_SERIES:
        pts = [(r.metrics.get("n_labels"), r.metrics[key], r.metrics.get(n_key))
               for r in closed if key in r.metrics]  # fmt: skip
        if not pts:
            continue
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        (line,) = ax.plot(xs, ys, marker="o", label=label)
        for x, y, n in pts:
            if not numbers.enough(n):
                ax.plot([x], [y], marker="o", color="white", markeredgecolor=line.get_color())
                ax.annotate(numbers.size(n), (x, y), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")  # fmt: skip
    ax.set_xlabel("labels")
    ax.set_ylabel("MAE (eV)")
    ax.set_title(f"learning curve (hollow: < {numbers.MIN_METRIC_VALUES} values, n shown)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def learning_curve(store: CampaignStore, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    draw_learning_curve(ax, store.rounds())
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _sized(shown: str, n: int) -> str:
    """``0.123 eV, n=42``; below `numbers.MIN_METRIC_VALUES` values ``..., n=3: too few
    labels``."""
    return f"{shown}, n={n}" + ("" if numbers.enough(n) else f": {numbers.TOO_FEW}")


def parity_title(mu: np.ndarray, y: np.ndarray, what: str | None = None) -> str:
    """``parity (MAE 0.123 eV, n=42)``; with fewer labels than the minimum, it says so;
    ``what`` (e.g. "DFT labels vs DFT-level μ") goes on a first line."""
    mae = float(np.abs(mu - y).mean()) if len(y) else None
    title = f"parity (MAE {_sized(numbers.sigma(mae) + ' eV', len(y))})"
    return title if what is None else f"{what}\n{title}"


def left_out_note(points: ParityPoints) -> str:
    """The x-axis note of a plot that leaves picks out (empty when none is)."""
    if not points.left_out:
        return ""
    return f"\n({points.left_out} picks with only an MLIP label left out)"


def parity(points: ParityPoints, path: Path) -> None:
    mu, y = points.mu, points.y
    fig, ax = plt.subplots(figsize=(4, 4.3))
    ax.scatter(y, mu, s=12)
    lo, hi = (min(y.min(), mu.min()) - 0.1, max(y.max(), mu.max()) + 0.1) if len(y) else (-1, 0)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel(f"{points.label_name} GMAE (eV)" + left_out_note(points))
    ax.set_ylabel("predicted μ at acquisition (eV)")
    ax.set_title(parity_title(mu, y, points.what), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def calibration(points: ParityPoints, path: Path) -> None:
    mu, sigma, y = points.mu, points.sigma, points.y
    expected = np.linspace(0.05, 0.95, 19)
    z = norm.ppf(0.5 + expected / 2)
    err = np.abs(mu - y) / np.maximum(sigma, 1e-9)
    observed = np.array([(err <= zi).mean() if len(y) else np.nan for zi in z])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.plot(expected, observed, marker="o")
    area = float(np.nanmean(np.abs(observed - expected))) if len(y) else float("nan")
    ax.set_xlabel("expected coverage" + left_out_note(points))
    ax.set_ylabel("observed coverage")
    ax.set_title(f"{points.what}\ncalibration (miscalibration "
                 f"{_sized(numbers.sigma(area), len(y))})", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def label_values(store: CampaignStore) -> dict[str, list[float]]:
    """The usable labels that count, one per pair, by what they are: "labels" in a single-
    fidelity campaign; "DFT labels" (a pair's target label) and "MLIP labels" (pairs with
    only an MLIP label) in a multi-fidelity one."""
    summaries = store.label_summaries()
    counting = labels_that_count(summaries, usable=True, strict=False).values()
    values = [lab for lab in counting if lab.gmae_ev is not None]
    if not is_multi_fidelity(store, summaries):
        return {"labels": [float(lab.gmae_ev) for lab in values]}  # type: ignore[arg-type]
    out: dict[str, list[float]] = {"DFT labels": [], "MLIP labels": []}
    for lab in values:  # the rule ranks a target label above an MLIP one
        key = "MLIP labels" if lab.fidelity in LOW_FIDELITIES else "DFT labels"
        out[key].append(float(lab.gmae_ev))  # type: ignore[arg-type]
    return out


def distribution(store: CampaignStore, path: Path) -> None:
    labelled = label_values(store)
    pool_mu: list[float] = []
    cps = store.checkpoints()
    if cps:
        from alloop.loop.bridges.surrogate import PoolView
        from alloop.surrogate.ensemble import AdsMTEnsemble

        pool = PoolView.load(store)
        slabs, smiles, index = pool.index_tensors(pool.pairs)
        pool_mu = (
            AdsMTEnsemble.from_bytes(cps[0].blob).predict(slabs, smiles, index).mean_ev.tolist()
        )
    fig, ax = plt.subplots(figsize=(5, 3.5))
    values = [v for vs in labelled.values() for v in vs] + pool_mu
    bins = np.linspace(min(values, default=-1), max(values, default=0), 30).tolist()
    if pool_mu:
        ax.hist(pool_mu, bins=bins, alpha=0.5, density=True, label="pool (latest μ)")
    for name, shown in labelled.items():
        if shown:
            ax.hist(shown, bins=bins, alpha=0.6, density=True,
                    label=f"acquired: {name} (n={len(shown)})")  # fmt: skip
    ax.set_xlabel("GMAE (eV)")
    ax.set_ylabel("density")
    ax.legend()
    ax.set_title("GMAE distribution")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(campaign: str, out_dir: Path) -> list[Path]:
    """Write the four PNGs into `out_dir` (created if its parent exists); returns their paths."""
    if not out_dir.exists():
        if not out_dir.parent.is_dir():
            raise StoreError(f"cannot write into {out_dir}: parent directory missing")
        out_dir.mkdir()
    paths = [out_dir / f"{n}.png" for n in ("learning_curve", "parity", "calibration",
                                              "distribution")]  # fmt: skip
    with CampaignStore.open(campaign) as store:
        points = parity_points(store)
        learning_curve(store, paths[0])
        parity(points, paths[1])
        calibration(points, paths[2])
        distribution(store, paths[3])
    return paths
