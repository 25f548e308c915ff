"""Tables and plots of the active-learning benchmark (benchmarks/loop/run.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _fmt(stat: dict[str, Any], digits: int = 0, scale: float = 1.0) -> str:
    if "mean" in stat:
        if digits == 0:
            return f"{stat['mean'] * scale:.0f} ± {stat['std'] * scale:.0f}"
        return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"
    vals = ["—" if v is None else f"{v * scale:.{digits}f}" for v in stat["values"]]
    return "not found in budget (" + ", ".join(vals) + ")"


def _mae_table(results: dict[str, Any], kind: str) -> list[str]:
    checkpoints = results["settings"]["checkpoints"]
    rnd = results["agents"].get("random")
    lines = [
        "| agent | " + " | ".join(f"{n} labels" for n in checkpoints) + " |",
        "|---|" + "---|" * len(checkpoints),
    ]
    for name, row in results["agents"].items():
        cells = []
        for n in checkpoints:
            stat = row["pool_mae"][str(n)][kind]
            cell = _fmt(stat, 3)
            base = rnd["pool_mae"][str(n)][kind] if rnd else None
            if base and "mean" in stat and "mean" in base:
                cell += f" ({stat['mean'] / base['mean']:.2f}×)"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _make_target(results: dict[str, Any]) -> str:
    shipped = results["settings"].get("surrogate", "bench") == "shipped"
    return "bench-loop-shipped" if shipped else "bench-loop"


def _budget(results: dict[str, Any]) -> int:
    """Labels the order was scored to (the ``found_by_1000`` figures stop there if sooner)."""
    st = results["settings"]
    return min(1000, max(st["checkpoints"]) + st["batch"])


def _surrogate_words(results: dict[str, Any]) -> str:
    st = results["settings"]
    if st.get("surrogate", "bench") == "shipped":
        return (
            "the shipped AdsMT surrogate, untouched (`surrogate/defaults.py`: cross-fitted "
            "members over the scaling prior with frozen SevenNet-0 features, spread calibrated "
            "on out-of-fold residuals)"
        )
    return (
        f"AdsMT ensemble of {st['members']} (hidden {st['hidden_dim']}, ≤ {st['max_epochs']} "
        f"epochs, patience {st['patience']}, warm start every round)"
    )


def write_markdown(results: dict[str, Any], path: Path) -> None:
    stem = path.stem
    agents = results["agents"]
    exp = results["random_expected_labels"]
    k, need = results["top_k"], results["find"]
    lines = [
        "# Active learning on FG replay (2,898 pairs, DFT labels)",
        "",
        f"Command: `make {_make_target(results)}` (`OMP_NUM_THREADS=1 .venv/bin/python "
        "benchmarks/loop/run.py`; "
        f"each finished run is cached under `{results.get('runs_cached_in', '--work')}`, and this "
        f"file was written by `{results['command']}`).",
        "",
        f"Seeds {results['settings']['seeds']}; start {results['settings']['start']} random "
        f"labels, batches of {results['settings']['batch']}; {_surrogate_words(results)} "
        "through the real engine and a SQLite campaign per run. Mean ± std over seeds.",
        "",
        f"## (a) Labels to find {need} of the {k} strongest binders",
        "",
        f"Random's expectation (order statistic {need}·(N+1)/({k}+1)): "
        f"{exp['with']:.0f} labels with the two dissociated minima, {exp['without']:.0f} "
        "without.",
        "",
        "| agent | labels (with) | × fewer than random | labels (without) | "
        f"found of {k} by {_budget(results):,} (with / without) |",
        "|---|---|---|---|---|",
    ]
    for name, row in agents.items():
        w, wo = row["find_with"], row["find_without"]
        ratio = f"{exp['with'] / w['mean']:.1f}×" if "mean" in w else "—"
        lines.append(
            f"| {name} | {_fmt(w)} | {ratio} | {_fmt(wo)} | "
            f"{_fmt(row['found_by_1000_with'], 1)} / {_fmt(row['found_by_1000_without'], 1)} |"
        )
    lines += [
        "",
        "## (b) MAE over the still-unlabelled pool (eV), ratio to random at the same count",
        "",
        *_mae_table(results, "all"),
        "",
        "Without the two dissociated minima (pool MAE, eV):",
        "",
        *_mae_table(results, "no_anomalies"),
    ]
    lines += [
        "",
        "## (c) The loop's own time per round (everything but training and oracle time)",
        "",
        "| agent | mean (s) | max (s) | scoring the pool (s) | batch selection (s) | "
        "bookkeeping (s) | training, not counted (s) | rounds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in agents.items():
        o = row.get("overhead_s")
        if o:
            select_s = o["acquire_s_mean"] - o["score_s_mean"]
            book_s = o["mean"] - o["acquire_s_mean"]
            lines.append(
                f"| {name} | {o['mean']:.2f} | {o['max']:.2f} | {o['score_s_mean']:.2f} | "
                f"{select_s:.2f} | {book_s:.2f} | {o['train_s_mean']:.1f} | {o['n_rounds']} |"
            )
    for o in results.get("overhead_default", []):
        lines += [
            "",
            f"With the shipped surrogate defaults ({o['ensemble_size']} members, hidden "
            f"{o['hidden_dim']}; EI + kriging believer, batches of 50, "
            f"{o['n_scored'][0]:,}–{o['n_scored'][-1]:,} pairs scored) on "
            f"{o['torch_threads']} thread(s): {o['mean_s']:.2f} s per round on average, "
            f"{o['max_s']:.2f} s at most (scoring {o['score_s_mean']:.2f} s, batch selection "
            f"{o['select_s_mean']:.2f} s).",
        ]
    lines += [
        "",
        f"Plots: `{stem}_found.png` (strongest binders found vs labels), "
        f"`{stem}_pool_mae.png` (pool MAE vs labels).",
        "",
    ]
    path.write_text("\n".join(lines))


def plot_curves(results: dict[str, Any], out: Path, stem: str = "loop_al") -> None:
    agents = results["agents"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, which in zip(axes, ("with", "without"), strict=True):
        for name, row in agents.items():
            curve = row[f"found_curve_{which}"]
            ax.plot(range(1, len(curve) + 1), curve, label=name)
        ax.axhline(results["find"], color="grey", ls=":", lw=1)
        ax.set_xlabel("labels")
        ax.set_ylabel(f"of the {results['top_k']} strongest binders found")
        ax.set_title(f"{which} the two dissociated minima")
        ax.set_xlim(0, max(len(r[f"found_curve_{which}"]) for r in agents.values()))
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{stem}_found.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for name, row in agents.items():
        pts = sorted((int(n), s["mean"]) for n, s in row["pool_mae_curve"].items() if "mean" in s)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=name)
    ax.set_xlabel("labels")
    ax.set_ylabel("MAE over the unlabelled pool (eV)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{stem}_pool_mae.png", dpi=120)
    plt.close(fig)
