"""`alloop report`: PNG plots of a campaign (matplotlib, Agg backend, no display needed).

* learning curve: validation MAE (training split) and batch MAE (predictions against the labels
  they then received) against the number of labels, per round; a point from fewer than
  `numbers.MIN_METRIC_VALUES` values is hollow and carries its n;
* parity: predicted μ at acquisition time against the label;
* calibration: observed against expected coverage of central Gaussian intervals μ ± zσ;
* GMAE distribution: labels of acquired pairs against the latest ensemble's μ over the pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

from alloop.loop.agent.labels import labels_that_count  # noqa: E402
from alloop.loop.face import numbers  # noqa: E402
from alloop.store import CampaignStore  # noqa: E402
from alloop.store.errors import StoreError  # noqa: E402
from alloop.store.records import RoundRecord  # noqa: E402


def _pairs_with_predictions(store: CampaignStore) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(μ, σ, label) of acquired pairs that were predicted and labelled ok."""
    counting = labels_that_count(store.labels(), strict=False)
    labels = {k: lab for k, lab in counting.items() if lab.status == "ok"}
    rows = [
        (a.mu_ev, a.sigma_ev, labels[a.pair_key].gmae_ev)
        for a in store.acquisitions()
        if a.mu_ev is not None and a.sigma_ev is not None and a.pair_key in labels
    ]
    arr = np.array(rows, dtype=float).reshape(-1, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2]


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


def parity_title(mu: np.ndarray, y: np.ndarray) -> str:
    """``parity (MAE 0.123 eV, n=42)``; with fewer labels than the minimum, it says so."""
    mae = float(np.abs(mu - y).mean()) if len(y) else None
    return f"parity (MAE {_sized(numbers.sigma(mae) + ' eV', len(y))})"


def parity(mu: np.ndarray, y: np.ndarray, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(y, mu, s=12)
    lo, hi = (min(y.min(), mu.min()) - 0.1, max(y.max(), mu.max()) + 0.1) if len(y) else (-1, 0)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("label GMAE (eV)")
    ax.set_ylabel("predicted μ at acquisition (eV)")
    ax.set_title(parity_title(mu, y))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def calibration(mu: np.ndarray, sigma: np.ndarray, y: np.ndarray, path: Path) -> None:
    expected = np.linspace(0.05, 0.95, 19)
    z = norm.ppf(0.5 + expected / 2)
    err = np.abs(mu - y) / np.maximum(sigma, 1e-9)
    observed = np.array([(err <= zi).mean() if len(y) else np.nan for zi in z])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.plot(expected, observed, marker="o")
    area = float(np.nanmean(np.abs(observed - expected))) if len(y) else float("nan")
    ax.set_xlabel("expected coverage")
    ax.set_ylabel("observed coverage")
    ax.set_title(f"calibration (miscalibration {_sized(numbers.sigma(area), len(y))})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def distribution(store: CampaignStore, path: Path) -> None:
    # one value per pair: the label that counts (`alloop.loop.agent.labels`)
    counting = labels_that_count(store.labels(), strict=False).values()
    by_pair = {lab.pair_key: lab.gmae_ev for lab in counting if lab.status == "ok"}
    acquired = [e for e in by_pair.values() if e is not None]  # an ok label always has one
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
    values = acquired + pool_mu
    bins = np.linspace(min(values, default=-1), max(values, default=0), 30).tolist()
    if pool_mu:
        ax.hist(pool_mu, bins=bins, alpha=0.5, density=True, label="pool (latest μ)")
    ax.hist(acquired, bins=bins, alpha=0.6, density=True, label="acquired (labels)")
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
        mu, sigma, y = _pairs_with_predictions(store)
        learning_curve(store, paths[0])
        parity(mu, y, paths[1])
        calibration(mu, sigma, y, paths[2])
        distribution(store, paths[3])
    return paths
