"""Summary and markdown of the pretraining learning curve (pretrain_curve.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_METRICS = ("mae_ev", "success", "coverage95", "miscalibration_area", "train_s", "mean_best_epoch")


def _ms(vals: list[float]) -> tuple[float, float, int]:
    sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return float(np.mean(vals)), sd, len(vals)


def summarise(result: dict) -> dict:
    """Mean ± sample std over seeds per (who, N) and metric; paired differences (same seed,
    same labels) of each pretrained variant against ``shipped`` and ``trees``."""
    runs, seeds = result["runs"], result["seeds"]
    out: dict = {"per_n": {}, "pretrain": {}}
    for n in result["ns"]:
        block: dict = {}
        for who in ["trees", *result["variants"]]:
            rows = [runs[k] for s in seeds if (k := f"{who}|{n}|{s}") in runs]
            block[who] = {m: _ms([r[m] for r in rows]) for m in _METRICS if rows and m in rows[0]}
        for who in result["variants"]:
            for base in ("shipped", "trees"):
                if who == base:
                    continue
                diffs = [
                    runs[f"{who}|{n}|{s}"]["mae_ev"] - runs[f"{base}|{n}|{s}"]["mae_ev"]
                    for s in seeds
                    if f"{who}|{n}|{s}" in runs and f"{base}|{n}|{s}" in runs
                ]
                if diffs:
                    m, sd, k = _ms(diffs)
                    block[f"{who}-{base}"] = (m, sd, k, sum(x < 0 for x in diffs))
        out["per_n"][str(n)] = block
    pre = [runs[k] for s in seeds if (k := f"pretrain|0|{s}") in runs]
    for m in ("pretrain_s", "oof_mae_vs_mlip_ev", "zero_shot_mae_ev", "zero_shot_coverage95",
              "mlip_label_mae_vs_dft_benchmark_half_ev"):  # fmt: skip
        if pre:
            out["pretrain"][m] = _ms([r[m] for r in pre])
    return out


def _f(stat: tuple | None, digits: int = 3, pct: bool = False) -> str:
    if not stat:
        return "—"
    m, sd, *_ = stat
    return f"{100 * m:.0f} ± {100 * sd:.0f} %" if pct else f"{m:.{digits}f} ± {sd:.{digits}f}"


def write_pretrain_markdown(result: dict, path: Path) -> None:
    """The tables of ``result`` (see ``summarise``) as markdown at ``path``."""
    s = summarise(result)
    variants = result["variants"]
    lines = [
        "# Surrogate lever (d): pretraining on MLIP labels",
        "",
        f"{result['benchmark']}.",
        "",
        "Commands (run in this order; each resumes the JSON): "
        + "; ".join(f"`{c}`" for c in result.get("commands", [result["command"]]))
        + f"; seeds {result['seeds']}; machine "
        f"{result['machine']['platform']}, {result['machine']['cpus']} CPUs, one process, one "
        "torch thread; load average at the last save "
        + ", ".join(f"{x:.1f}" for x in result["machine"]["load_avg_at_save"])
        + ". "
        + (result.get("machine_note") or ""),
        "",
        "Test MAE (eV), mean ± sample std over seeds; every model of a seed gets the same N "
        "DFT labels and test pairs (the benchmark half minus the N).",
        "",
        "| N | " + " | ".join(["trees", *variants]) + " | seeds (fewest) |",
        "| --- | " + " | ".join("---" for _ in ["trees", *variants]) + " | --- |",
    ]
    for n, block in s["per_n"].items():
        k = min((v["mae_ev"][2] for w, v in block.items() if "-" not in w and v), default=0)
        cells = [_f(block.get(w, {}).get("mae_ev")) for w in ["trees", *variants]]
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {k} |")
    lines += ["", "Success (|err| < 0.1 eV), 95 % coverage, miscalibration area, fit seconds "
              "(fine-tuning only for pretrained variants), mean best epoch of the members:", "",
              "| N | model | success | coverage95 | miscalibration | fit s | best epoch |",
              "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for n, block in s["per_n"].items():
        for w in ["trees", *variants]:
            b = block.get(w) or {}
            if not b:
                continue
            lines.append(
                f"| {n} | {w} | {_f(b.get('success'), pct=True)} | "
                f"{_f(b.get('coverage95'), pct=True)} | {_f(b.get('miscalibration_area'))} | "
                f"{_f(b.get('train_s'), 0)} | {_f(b.get('mean_best_epoch'), 1)} |"
            )
    lines += ["", "Paired by seed (same labels): MAE difference (eV), mean ± std, lower in k of "
              "n seeds:", "", "| N | comparison | difference | lower in |",
              "| --- | --- | --- | --- |"]  # fmt: skip
    for n, block in s["per_n"].items():
        for key, val in block.items():
            if "-" in key:
                m, sd, k, wins = val
                lines.append(f"| {n} | {key} | {m:+.3f} ± {sd:.3f} | {wins} of {k} |")
    p = s["pretrain"]
    if p:
        lines += [
            "",
            "Pretraining (once per seed; a shipped checkpoint would pay it once): "
            f"{_f(p['pretrain_s'], 0)} s; out-of-fold MAE against its own MLIP labels "
            f"{_f(p['oof_mae_vs_mlip_ev'])} eV. The checkpoint alone, no DFT label (N = 0), on "
            f"every benchmark-half pair: MAE {_f(p['zero_shot_mae_ev'])} eV against DFT, "
            f"coverage {_f(p['zero_shot_coverage95'], pct=True)}. The MLIP single-point labels "
            f"themselves there: {_f(p['mlip_label_mae_vs_dft_benchmark_half_ev'])} eV from DFT "
            "(single points at the DFT geometries: optimistic for real MLIP labels).",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
