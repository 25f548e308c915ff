"""Terminal plots of a campaign's progress, drawn with plotext on a `Plot` (the object
`textual_plotext.PlotextPlot.plt` hands out, or the `plotext` module itself).

Pure functions from `explore.Curves` / `model_view.PoolScores` to calls on that object: the
dashboard's plot screen draws them, tests can draw them on plotext and read its text.
"""

from __future__ import annotations

from typing import Any

from alloop.loop.face import numbers
from alloop.loop.face.explore import Curves, points
from alloop.loop.face.model_view import PoolScores

NO_DATA = "no closed round records this yet"


def _empty(plt: Any, title: str, why: str = NO_DATA) -> None:
    plt.title(f"{title}: {why}")


def draw_errors(plt: Any, c: Curves) -> None:
    """Validation MAE of each round's model and MAE of its batch predictions, vs labels."""
    plt.clear_data()
    title = "model error vs labels"
    drawn = False
    few_x: list[float] = []
    few_y: list[float] = []
    for ys, ns, name, marker in ((c.val_mae_ev, c.n_val, "validation MAE", "braille"),
                                 (c.batch_mae_ev, c.n_batch, "batch MAE", "dot")):  # fmt: skip
        xs, vs = points(c.n_labels, ys)
        if xs:
            plt.plot(xs, vs, label=name, marker=marker)
            drawn = True
        sizes = ns or (None,) * len(ys)
        for x, y, n in zip(c.n_labels, ys, sizes, strict=True):
            if x is not None and y is not None and not numbers.enough(n):
                few_x.append(x)
                few_y.append(y)
    if not drawn:
        _empty(plt, title)
        return
    if few_x:
        plt.scatter(few_x, few_y, marker="x", color="red",
                    label=f"from < {numbers.MIN_METRIC_VALUES} labels")  # fmt: skip
    plt.title(title)
    plt.xlabel("labels")
    plt.ylabel("eV")


def draw_best(plt: Any, c: Curves, against: str = "labels") -> None:
    """Best GMAE so far vs labels (``against="labels"``) or vs cost (``"cost"``); with the best
    target-fidelity (DFT) GMAE too when the campaign records it."""
    plt.clear_data()
    xs_all = c.n_labels if against == "labels" else c.cost_total
    title = f"best GMAE vs {'labels' if against == 'labels' else 'cost units'}"
    drawn = False
    for ys, name in ((c.best_gmae_ev, "best GMAE"), (c.best_target_ev, "best DFT-level")):
        xs, vs = points(xs_all, ys)
        if xs and (name == "best GMAE" or vs != points(xs_all, c.best_gmae_ev)[1]):
            plt.plot(xs, vs, label=name, marker="braille")
            drawn = True
    if not drawn:
        _empty(plt, title)
        return
    plt.title(title)
    plt.xlabel("labels" if against == "labels" else "cost units")
    plt.ylabel("eV")


def draw_coverage(plt: Any, c: Curves) -> None:
    """Share of each round's batch whose label fell within μ ± 1.96σ, against the 95 % aim."""
    plt.clear_data()
    sizes = c.n_batch or (None,) * len(c.rounds)
    kept = [(r, v, n) for r, v, n in zip(c.rounds, c.coverage_95, sizes, strict=True)
            if v is not None]  # fmt: skip
    title = "95% coverage per round"
    if not kept:
        _empty(plt, title)
        return
    names = [str(r) if numbers.enough(n) else f"{r} {numbers.size(n)}" for r, _, n in kept]
    plt.bar(names, [100 * v for _, v, _ in kept], width=0.4)
    plt.hline(95, "red")
    plt.ylim(0, 105)
    plt.title(f"{title} (red: 95%)")
    plt.xlabel("round")
    plt.ylabel("%")


def draw_pool(plt: Any, p: PoolScores | None, why: str = "no model stored yet") -> None:
    """μ vs σ of the pool the last model scored, the batch it chose highlighted."""
    plt.clear_data()
    title = "μ/σ of the scored pool"
    if p is None:
        _empty(plt, title, why)
        return
    if p.mu_ev:
        plt.scatter(list(p.mu_ev), list(p.sigma_ev), label="pool", marker="dot", color="blue")
    if p.batch_mu_ev:
        plt.scatter(list(p.batch_mu_ev), list(p.batch_sigma_ev), label=f"batch of round "
                    f"{p.round_index}", marker="x", color="red")  # fmt: skip
    plt.title(f"{title} by the model of round {p.round_index}")
    plt.xlabel("μ (eV)")
    plt.ylabel("σ (eV)")
