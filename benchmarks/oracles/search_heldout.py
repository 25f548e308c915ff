"""The search-efficiency benchmark on a held-out set: pairs the search was never developed on.

`search_efficiency.py` measures the adaptive placement search on the 50 pairs it was tuned on
(fcc(111) of 7 metals, fcc(100) of Cu/Pt/Ni). This script runs the same measurement (the same
dense reference, stopping rule, seeds and success test, imported from it) on a held-out set with
other facets and site types: fcc(110) of Cu Ag Pd Pt (rows and troughs: long- and short-bridge,
4-fold trough sites) and the stepped fcc(211) of Cu and Pt (step-edge sites), x the same EMT
adsorbates. Nothing in the search may be changed on the strength of these pairs: the set is for
checking, not tuning. The tuning set's recorded figures are shown beside it.

Run (about 30 min on one free core; each pair's rows are appended to ``<out>.jsonl`` as they
finish, so a stopped run keeps what it measured):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/oracles/search_heldout.py
Writes benchmarks/results/oracles_search_heldout.json and .md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from ase.build import fcc110, fcc211

from alloop.oracles.adsorbates import adsorbate_from_database
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.slabs import prepare_slab
from alloop.oracles.types import OraclePair

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_efficiency import (  # noqa: E402
    ADSORBATES,
    aggregate,
    run_searches,
    search_oracles,
)

RESULTS = Path(__file__).resolve().parents[1] / "results"
HELD_OUT = (("Cu", "110"), ("Ag", "110"), ("Pd", "110"), ("Pt", "110"), ("Cu", "211"),
            ("Pt", "211"))  # fmt: skip
BUILDERS = {"110": fcc110, "211": fcc211}


def held_out_pairs() -> list[OraclePair]:
    pairs = []
    for metal, facet in HELD_OUT:
        slab = prepare_slab(BUILDERS[facet](metal, size=(3, 3, 3), vacuum=7.0), n_fixed_layers=1)
        for name in ADSORBATES:
            pairs.append(OraclePair(f"{metal}({facet}):{name}", f"{metal}({facet})", name, slab,
                                    adsorbate_from_database(name)))  # fmt: skip
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense", type=int, default=100)
    parser.add_argument("--patience", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--cap", type=int, default=30)  # as the recorded tuning-set figures
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "oracles_search_heldout")
    parser.add_argument(
        "--from-log",
        type=Path,
        default=None,
        help="summarise the rows of a (possibly stopped) run's .jsonl log instead of running",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="with --from-log: an earlier results .json, summarised over the same pairs",
    )
    args = parser.parse_args()
    if args.from_log is not None:
        summarise_log(args.from_log, args.out, args.compare)
        return
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    tolerance = MLIPOracleSettings.tolerance_ev
    dense_oracle, adaptive = search_oracles(args.dense, args.cap, args.patience, tolerance)
    pairs = held_out_pairs()[: args.limit]
    rows: dict[int, list[dict[str, Any]]] = {m: [] for m in args.patience}
    log = args.out.with_suffix(".jsonl")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    start = time.perf_counter()
    for i, pair, m, row in run_searches(pairs, dense_oracle, adaptive):
        rows[m].append(row)
        with log.open("a") as handle:
            handle.write(json.dumps({"patience": m, **row}) + "\n")
        print(f"[{i + 1}/{len(pairs)}] {pair.key} patience {m}: success={row['success']} "
              f"gap={row['gap_ev']} ({row['adaptive_relaxations']}/"
              f"{row['dense_relaxations']})", flush=True)  # fmt: skip
    meta = {
        "set": "fcc(110) Cu Ag Pd Pt, fcc(211) Cu Pt x *O *H *N *OH *CO",
        "dense_placements": args.dense, "dense_seed": 1000, "adaptive_seed": 0,
        "patience_values": args.patience, "tolerance_ev": tolerance, "max_placements": args.cap,
        "wall_s": time.perf_counter() - start, "load_average_at_end": os.getloadavg()[0],
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/oracles/search_heldout.py",
    }  # fmt: skip
    summary = {m: aggregate(rows[m]) for m in args.patience}
    write(args.out, meta, summary, rows)


def summarise_log(log: Path, out: Path, compare: Path | None) -> None:
    """Write ``out`` .json/.md from the rows a run appended to ``log`` (a stopped run's pairs
    only); with ``compare``, the earlier results over the same pairs are shown beside them."""
    rows: dict[int, list[dict[str, Any]]] = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        rows.setdefault(int(entry.pop("patience")), []).append(entry)
    done = sorted({r["pair"] for pair_rows in rows.values() for r in pair_rows})
    meta = {
        "set": f"{len(done)} of {len(held_out_pairs())} held-out pairs (a stopped run): "
        + ", ".join(done),
        "dense_placements": 100, "patience_values": sorted(rows), "tolerance_ev":
        MLIPOracleSettings.tolerance_ev, "max_placements": 30, "wall_s": None,
        "load_average_at_end": os.getloadavg()[0],
        "command": f"python benchmarks/oracles/search_heldout.py --from-log {log.name}"
        + (f" --compare {compare.name}" if compare else ""),
    }  # fmt: skip
    summary = {m: aggregate(pair_rows) for m, pair_rows in rows.items()}
    write(out, meta, summary, rows)
    if compare is not None:
        earlier = json.loads(compare.read_text())["pairs"]
        lines = ["", "Earlier results over the same pairs:", ""]
        for m, pair_rows in earlier.items():
            same = aggregate([r for r in pair_rows if r["pair"] in done])
            lines.append(
                f"* patience {m}: success {same['success_rate']:.3f} ({same['n_scored']} scored),"
                f" relaxations adaptive/dense {same['relaxation_fraction']:.3f}, failed: "
                f"{', '.join(same['failures']) or '—'}"
            )
        with out.with_suffix(".md").open("a") as handle:
            handle.write("\n".join(lines) + "\n")
        print("\n".join(lines))


def write(out: Path, meta: dict[str, Any], summary: dict[int, Any], rows: dict[int, Any]) -> None:
    data = {"meta": meta, "summary": {str(m): v for m, v in summary.items()},
            "pairs": {str(m): v for m, v in rows.items()}}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(data, indent=2))
    tuning_path = RESULTS / "oracles_search_efficiency.json"
    tuning = json.loads(tuning_path.read_text())["summary"] if tuning_path.is_file() else {}

    def f(x: Any) -> str:
        return "—" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))

    lines = [
        "# Search efficiency: tuning set vs held-out set (EMT, AdsorbML metric)",
        "",
        f"Command: `{meta['command']}` ("
        + ("wall time not recorded" if meta["wall_s"] is None else f"{meta['wall_s']:.0f} s")
        + "; load average "
        f"{meta['load_average_at_end']:.1f} at the end). Held-out set: {meta['set']}; dense "
        f"reference {meta['dense_placements']} placements, adaptive cap "
        f"{meta['max_placements']}, tolerance {meta['tolerance_ev']} eV; success = adaptive "
        "minimum within 0.1 eV of the dense one or below. Tuning set: the recorded figures of "
        "`benchmarks/oracles/search_efficiency.py` (50 pairs the search was developed on).",
        "",
        "| patience | set | success rate | relaxations adaptive/dense | force calls adaptive/dense"
        " | failed pairs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m, agg in summary.items():
        for name, a in (("tuning", tuning.get(str(m))), ("held-out", agg)):
            if a is None:
                continue
            lines.append(
                f"| {m} | {name} | {f(a['success_rate'])} ({a['n_scored']} scored) | "
                f"{f(a['relaxation_fraction'])} | {f(a['force_call_fraction'])} | "
                f"{', '.join(a['failures']) or '—'} |"
            )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
