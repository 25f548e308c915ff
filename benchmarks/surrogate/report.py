"""Summaries (mean ± std over seeds) and the markdown results table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_TARGETS = {
    "random_mae_ev": 0.085,
    "random_success": 0.75,
    "heldout_mae_ev": 0.12,
    "miscalibration_area": 0.05,
    "pairs_per_s": 2000,
}


def summarise(rows: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for who in ("model", "trees"):
        vals: dict[str, list[float]] = {}
        for row in rows:
            for k, v in row.get(who, {}).items():
                if isinstance(v, int | float):
                    vals.setdefault(k, []).append(float(v))
        if vals:
            out[who] = {
                k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)}
                for k, v in vals.items()
            }
    if "model" in out and "trees" in out:
        out["mae_ratio_model_over_trees"] = (
            out["model"]["mae_ev"]["mean"] / out["trees"]["mae_ev"]["mean"]
        )
    return out


def _fmt(stat: dict | None, pct: bool = False) -> str:
    if stat is None:
        return "—"
    if pct:
        return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}%"
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def _split_table(name: str, summary: dict) -> list[str]:
    m, t = summary.get("model", {}), summary.get("trees", {})
    n = (m or t).get("mae_ev", {}).get("n", 0)
    lines = [
        f"### {name} ({n} seeds)",
        "",
        "| metric | AdsMT ensemble | boosted trees |",
        "| --- | --- | --- |",
    ]
    for key, label, pct in [
        ("mae_ev", "test MAE (eV)", False),
        ("success", "success (|err| < 0.1 eV)", True),
        ("mae_ev_wo_anomalies", "MAE without the 2 anomalous pairs (eV)", False),
        ("success_wo_anomalies", "success without the 2 anomalous pairs", True),
        ("miscalibration_area", "miscalibration area", False),
        ("spearman_std_abs_error", "Spearman(σ, |error|)", False),
        ("mae_ev_top10pct_confident", "MAE of the 10% most confident (eV)", False),
        ("s_per_epoch", "training s/epoch (per member)", False),
        ("train_s", "training wall s (whole ensemble / trees)", False),
    ]:
        lines.append(f"| {label} | {_fmt(m.get(key), pct)} | {_fmt(t.get(key), pct)} |")
    if "mae_ratio_model_over_trees" in summary:
        lines += ["", f"MAE ratio model / trees: **{summary['mae_ratio_model_over_trees']:.3f}**"]
    return lines + [""]


def write_markdown(results: dict, path: Path) -> None:
    lines = [
        "# Surrogate benchmark — FG-GMAE stand-in",
        "",
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']}  ",
        f"Wall time: {results.get('wall_s', 0):.0f} s",
        "",
    ]
    if "random_split" in results:
        lines += _split_table("Random 80/10/10 pair split", results["random_split"]["summary"])
    if "heldout_molecules" in results:
        lines += _split_table(
            "Held-out molecules (80/10/10 of the 207 molecules)",
            results["heldout_molecules"]["summary"],
        )
    if "speed" in results:
        sp = results["speed"]
        lines += [
            "### Pool scoring throughput",
            "",
            f"{sp['members']} members, {sp['threads']} torch thread(s).",
            "",
            "| pool | pairs | featurise s | cached: pairs/s (score) | cached: pairs/s "
            "(incl. featurise) | re-score pairs/s | no cache: pairs/s (pairs timed) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for key, label in (("fg_pool", "FG 14 × 207"), ("synthetic_pool", "synthetic")):
            p = sp[key]
            lines.append(
                f"| {label} ({p['surfaces']} × {p['adsorbates']}) | {p['pairs']} | "
                f"{p['featurise_s']:.1f} | {p['cached_pairs_per_s']:.0f} | "
                f"{p['cached_end_to_end_pairs_per_s']:.0f} | {p['rescore_pairs_per_s']:.0f} | "
                f"{p['uncached_pairs_per_s']:.0f} ({p['uncached_pairs_timed']}) |"
            )
        lines.append("")
    lines += ["### Targets", "", "| target | bar |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in _TARGETS.items()]
    path.write_text("\n".join(lines) + "\n")
