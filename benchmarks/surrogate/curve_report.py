"""Summary, markdown table and plot of the surrogate learning curve (learning_curve.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: issue 16's targets: test MAE (eV) by N, held-out molecules, 95 % coverage band
TARGET_MAE_EV = {50: 0.25, 100: 0.20, 200: 0.16, 500: 0.11, 1000: 0.085}
TARGET_HELDOUT_MAE_EV = 0.12
TARGET_COVERAGE = (0.85, 0.99)
_METRICS = (
    "mae_ev",
    "success",
    "coverage95",
    "miscalibration_area",
    "coverage95_unpaired",
    "miscalibration_area_unpaired",
    "train_s",
    "val_mae_ev",
)


def _stats(rows: list[dict]) -> dict[str, dict[str, float]]:
    out = {}
    for m in _METRICS:
        vals = [r[m] for r in rows if m in r]
        if vals:
            sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            out[m] = {"mean": float(np.mean(vals)), "std": sd, "n": len(vals)}
    return out


def summarise_curve(
    runs: dict[str, dict],
    variants: list[str],
    ns: list[int],
    seeds: list[int],
    heldout_seeds: list[int],
) -> dict:
    """Mean ± sample std over seeds per (variant, N); the headline ``n_labels`` block is the
    ``shipped`` variant (else the first one) beside the trees of the same run."""

    def rows(who: str, split: str, n: int, seed_list: list[int]) -> list[dict]:
        return [runs[k] for s in seed_list if (k := f"{who}|{split}|{n}|{s}") in runs]

    per_variant: dict[str, dict] = {}
    for who in ["trees", *variants]:
        per_variant[who] = {
            "n_labels": {str(n): _stats(rows(who, "random", n, seeds)) for n in ns},
            "heldout_molecules": _stats(rows(who, "heldout", 0, heldout_seeds)),
        }
    head = "shipped" if "shipped" in variants else variants[0]
    n_labels = {}
    for n in ns:
        model = per_variant[head]["n_labels"][str(n)]
        trees = per_variant["trees"]["n_labels"][str(n)]
        if not model or not trees:
            continue
        n_labels[str(n)] = {
            "surrogate_mae_ev": model["mae_ev"]["mean"],
            "surrogate_mae_ev_std": model["mae_ev"]["std"],
            "trees_mae_ev": trees["mae_ev"]["mean"],
            "trees_mae_ev_std": trees["mae_ev"]["std"],
            "surrogate_success": model["success"]["mean"],
            "trees_success": trees["success"]["mean"],
            "coverage95": model["coverage95"]["mean"],
            "miscalibration_area": model["miscalibration_area"]["mean"],
            "coverage95_unpaired": model.get("coverage95_unpaired", {}).get("mean"),
            "train_s": model["train_s"]["mean"],
            "trees_train_s": trees["train_s"]["mean"],
            "seeds_done": model["mae_ev"]["n"],
        }
    held = per_variant[head]["heldout_molecules"]
    held_trees = per_variant["trees"]["heldout_molecules"]
    return {
        "headline_variant": head,
        "n_labels": n_labels,
        "heldout_molecules_mae_ev": held["mae_ev"]["mean"] if held else None,
        "heldout_molecules_mae_ev_std": held["mae_ev"]["std"] if held else None,
        "heldout_molecules_coverage95": held["coverage95"]["mean"] if held else None,
        "heldout_molecules_trees_mae_ev": held_trees["mae_ev"]["mean"] if held_trees else None,
        "seeds": seeds,
        "heldout_seeds": heldout_seeds,
        "variants": per_variant,
        "targets": {
            "mae_ev": {str(k): v for k, v in TARGET_MAE_EV.items()},
            "heldout_molecules_mae_ev": TARGET_HELDOUT_MAE_EV,
            "coverage95": list(TARGET_COVERAGE),
        },
    }


def _cell(stat: dict | None, pct: bool = False, seeds: int = 0) -> str:
    """Mean ± std, and the seeds behind it when fewer than ``seeds``."""
    if not stat:
        return "—"
    few = f" (n={stat['n']})" if stat["n"] < seeds else ""
    if pct:
        return f"{100 * stat['mean']:.0f} ± {100 * stat['std']:.0f} %{few}"
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}{few}"


def write_curve_markdown(result: dict, path: Path) -> None:
    variants = result["variants"]
    names = [v for v in variants if v != "trees"]
    ns = [int(n) for n in variants["trees"]["n_labels"]]
    k = len(result["seeds"])
    lines = [
        "# Surrogate learning curve — FG-GMAE stand-in",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}  ",
        f"Seeds: {result['seeds']} (held-out molecules: {result['heldout_seeds']}). Test set: "
        "every pair not labelled. Mean ± sample std over seeds. Trees get the same N labels in "
        "the same run. `train_s` is wall time with the machine as it was (see load average).",
        "",
        f"Headline (shipped) variant: **{result['headline_variant']}**",
        "",
    ]
    for metric, pct, title in (
        ("mae_ev", False, "Test MAE (eV)"),
        ("coverage95", True, "95 % interval coverage (target 85-99 %)"),
        ("miscalibration_area", False, "Miscalibration area"),
        ("success", True, "Success (|error| < 0.1 eV)"),
        ("train_s", False, "Training wall s (whole ensemble / trees)"),
    ):
        lines += [f"### {title}", "", "| who | " + " | ".join(f"N={n}" for n in ns) + " |"]
        lines.append("| --- |" + " --- |" * len(ns))
        for who in ["trees", *names]:
            if metric in ("coverage95", "miscalibration_area") and who == "trees":
                continue
            cells = [_cell(variants[who]["n_labels"][str(n)].get(metric), pct, k) for n in ns]
            lines.append(f"| {who} | " + " | ".join(cells) + " |")
            alt = f"{metric}_unpaired"  # the same fits, σ sized by the other stretch
            if any(alt in variants[who]["n_labels"][str(n)] for n in ns):
                cells = [_cell(variants[who]["n_labels"][str(n)].get(alt), pct, k) for n in ns]
                lines.append(f"| {who}, `unpaired` stretch | " + " | ".join(cells) + " |")
        if metric == "mae_ev":
            lines.append(
                "| target | "
                + " | ".join(f"≤ {TARGET_MAE_EV[n]}" if n in TARGET_MAE_EV else "—" for n in ns)
                + " |"
            )
        lines.append("")
    lines += [
        "### Held-out molecules (full data: 90 % of the molecules train, 10 % test)",
        "",
        "| who | test MAE (eV) | coverage95 | miscalibration area | train s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for who in ["trees", *names]:
        h = variants[who]["heldout_molecules"]
        lines.append(
            f"| {who} | {_cell(h.get('mae_ev'))} | {_cell(h.get('coverage95'), True)} | "
            f"{_cell(h.get('miscalibration_area'))} | {_cell(h.get('train_s'))} |"
        )
    lines += [
        "",
        f"Target: ≤ {TARGET_HELDOUT_MAE_EV} eV.",
        "",
        "Plot: `surrogate_learning_curve.png`.",
    ]
    path.write_text("\n".join(lines) + "\n")


def write_curve_plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = result["variants"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for who, block in variants.items():
        pts = [(int(n), s["mae_ev"]) for n, s in block["n_labels"].items() if s]
        if pts:
            ns, st = zip(*pts, strict=True)
            ax.errorbar(ns, [s["mean"] for s in st], [s["std"] for s in st], label=who, capsize=3)
        cov = [(int(n), s["coverage95"]) for n, s in block["n_labels"].items() if "coverage95" in s]
        if cov:
            ns, st = zip(*cov, strict=True)
            ax2.plot(ns, [100 * s["mean"] for s in st], marker="o", label=who)
    tn = sorted(TARGET_MAE_EV)
    ax.plot(tn, [TARGET_MAE_EV[n] for n in tn], "k--", label="target")
    ax.set(xscale="log", yscale="log", xlabel="labels N", ylabel="test MAE (eV)")
    ax.legend(fontsize=8)
    ax2.axhspan(100 * TARGET_COVERAGE[0], 100 * TARGET_COVERAGE[1], color="0.9")
    ax2.set(xscale="log", xlabel="labels N", ylabel="95 % interval coverage (%)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
