"""A fresh held-out check of the placement search: facets, metals and adsorbates it never saw.

The search was developed on fcc(111)/fcc(100) x *O *H *N *OH *CO (`search_efficiency.py`) and
checked once on fcc(110)/fcc(211) with the same adsorbates (`search_heldout.py`). This set shares
neither the lattices nor the adsorbates, and it was fixed (committed) before any figure was
measured on it; nothing in the search may be tuned on it:

* surfaces (EMT metals only: Al Cu Ag Au Ni Pd Pt): hcp(0001) Pt and bcc(110) Cu (close-packed
  and dense bcc terraces of metals that are fcc in nature), the stepped hcp(10-13) of Ni and
  bcc(310) of Pd, and two alloys, CuPd fcc(111) and NiPt fcc(100) (every third atom Pd / every
  other atom Pt, lattice constant by Vegard's rule);
* adsorbates that EMT keeps intact in the gas phase and in most placements on Cu(111)/Pt(111)
  (screened there, off this set): *C, *CH, *NH, *NO, *CN. (*CH2, *CH3, *NH2, *NH3, *OH2, *CHO
  fall apart under EMT in every placement tried; *COH, *OOH, *NO2 already in the gas phase.)

Dense reference: 100 placements, no early stop; adaptive: the shipped defaults
(``ORACLE_DEFAULTS``: patience, cap, tolerance), so the figure is what a user gets. The run loop,
seeds and success test (adaptive minimum within 0.1 eV of the dense one, or below) are
`search_efficiency.py`'s. Reported per facet and per adsorbate: success, relaxations adaptive /
dense, the largest gap.

A second set, ``--set scoring`` (36 pairs), was fixed (committed) on 2026-12-07 before any search
rule was tuned on the fresh set above: that tuning happens on the fresh set and the held-out
facets, and the scoring set scores what comes of it, once (issue 21). Surfaces none of the earlier
sets has: Au fcc(311) and Ag fcc(210) (steps and open rows of metals not stepped before), Al
fcc(100), Ni bcc(100), Pt hcp(10-10) (a corrugated hcp facet) and a PdAg fcc(110) alloy (every
other atom Ag); adsorbates from both earlier sets, *O *OH *CO *NO *CH *CN, so that a rule tuned
on the fresh set's adsorbates meets them on surfaces it never saw.

Run (target: under 25 min on one core; each pair's row is appended to ``<out>.jsonl`` as it
finishes, so a stopped run keeps what it measured):
    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/oracles/search_fresh.py
Writes benchmarks/results/oracles_search_fresh.json and .md (``--set scoring``:
oracles_search_scoring.json and .md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bcc100, bcc110, bulk, fcc100, fcc110, fcc111, hcp0001, surface

from alloop.oracles.adsorbates import adsorbate_from_database
from alloop.oracles.defaults import ORACLE_DEFAULTS
from alloop.oracles.slabs import prepare_slab
from alloop.oracles.types import OraclePair

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_efficiency import aggregate, run_searches, search_oracles  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
ADSORBATES = ("*C", "*CH", "*NH", "*NO", "*CN")
SCORING_ADSORBATES = ("*O", "*OH", "*CO", "*NO", "*CH", "*CN")
#: nearest-neighbour distances (Å) of the fcc metals, kept for their hcp/bcc/alloy lattices
D_NN_ANG = {"Cu": 2.556, "Ni": 2.492, "Pd": 2.751, "Pt": 2.775, "Ag": 2.889, "Au": 2.884,
            "Al": 2.864}  # fmt: skip
VACUUM_ANG = 7.0


def _hcp(metal: str) -> Atoms:
    d = D_NN_ANG[metal]
    return bulk(metal, "hcp", a=d, c=d * np.sqrt(8 / 3))


def _bcc_a(metal: str) -> float:
    return D_NN_ANG[metal] * 2 / np.sqrt(3)


def _alloy(host: str, guest: str, every: int, builder: Callable[..., Atoms]) -> Atoms:
    """``builder`` slab of ``host`` with every ``every``-th atom ``guest`` (Vegard lattice)."""
    frac = 1 / every
    d = (1 - frac) * D_NN_ANG[host] + frac * D_NN_ANG[guest]
    slab = builder(host, size=(3, 3, 3), a=d * np.sqrt(2), vacuum=VACUUM_ANG)
    symbols = slab.get_chemical_symbols()
    slab.set_chemical_symbols([guest if i % every == 0 else s for i, s in enumerate(symbols)])
    return slab


def fresh_surfaces() -> dict[str, Atoms]:
    """The six clean slabs (name -> tagged, constrained slab), 16-30 atoms each."""
    raw = {
        "Pt hcp(0001)": (hcp0001("Pt", size=(3, 3, 3), a=D_NN_ANG["Pt"],
                                 c=D_NN_ANG["Pt"] * np.sqrt(8 / 3), vacuum=VACUUM_ANG), 1),
        "Cu bcc(110)": (bcc110("Cu", size=(3, 3, 3), a=_bcc_a("Cu"), vacuum=VACUUM_ANG), 1),
        "Ni hcp(10-13)": (surface(_hcp("Ni"), (1, 0, 3), 5, vacuum=VACUUM_ANG)
                          .repeat((1, 3, 1)), None),
        "Pd bcc(310)": (surface(bulk("Pd", "bcc", a=_bcc_a("Pd"), cubic=True), (3, 1, 0), 6,
                                vacuum=VACUUM_ANG).repeat((1, 2, 1)), None),
        "CuPd fcc(111)": (_alloy("Cu", "Pd", 3, fcc111), 1),
        "NiPt fcc(100)": (_alloy("Ni", "Pt", 2, fcc100), 1),
    }  # fmt: skip
    # None: prepare_slab fixes the bottom half of the (thin, closely spaced) layers
    return {name: prepare_slab(slab, n_fixed_layers=n) for name, (slab, n) in raw.items()}


def _fcc(metal: str) -> Atoms:
    return bulk(metal, "fcc", a=D_NN_ANG[metal] * np.sqrt(2))


def scoring_surfaces() -> dict[str, Atoms]:
    """The scoring set's six clean slabs (module docstring), 27-48 atoms, >= 7.6 Å apart in
    plane from their images."""
    raw = {
        "Au fcc(311)": (surface(_fcc("Au"), (3, 1, 1), 9, vacuum=VACUUM_ANG)
                        .repeat((1, 3, 1)), None),
        "Ag fcc(210)": (surface(_fcc("Ag"), (2, 1, 0), 8, vacuum=VACUUM_ANG)
                        .repeat((2, 3, 1)), None),
        "Al fcc(100)": (fcc100("Al", size=(3, 3, 4), a=D_NN_ANG["Al"] * np.sqrt(2),
                               vacuum=VACUUM_ANG), 2),
        "Ni bcc(100)": (bcc100("Ni", size=(3, 3, 4), a=_bcc_a("Ni"), vacuum=VACUUM_ANG), 2),
        "Pt hcp(10-10)": (surface(_hcp("Pt"), (1, 0, 0), 4, vacuum=VACUUM_ANG)
                          .repeat((3, 2, 1)), None),
        "PdAg fcc(110)": (_alloy("Pd", "Ag", 2, fcc110), 1),
    }  # fmt: skip
    return {name: prepare_slab(slab, n_fixed_layers=n) for name, (slab, n) in raw.items()}


#: name -> (surfaces, adsorbates, results file stem, heading)
SETS: dict[str, tuple[Callable[[], dict[str, Atoms]], tuple[str, ...], str, str]] = {
    "fresh": (fresh_surfaces, ADSORBATES, "oracles_search_fresh", "a fresh held-out set"),
    "scoring": (scoring_surfaces, SCORING_ADSORBATES, "oracles_search_scoring",
                "the scoring set (fixed before tuning, scored once)"),
}  # fmt: skip


def fresh_pairs(which: str = "fresh") -> list[OraclePair]:
    """A set's surfaces x adsorbates (fresh: 6 x 5 = 30 pairs; scoring: 6 x 6 = 36), keyed
    ``"<surface>:<adsorbate>"``."""
    surfaces, adsorbates, _, _ = SETS[which]
    return [
        OraclePair(f"{name}:{ads}", name, ads, slab, adsorbate_from_database(ads))
        for name, slab in surfaces().items()
        for ads in adsorbates
    ]


def breakdown(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`aggregate` per surface and per adsorbate (pair keys are ``surface:adsorbate``)."""
    by_surface: dict[str, list[dict[str, Any]]] = {}
    by_adsorbate: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        surface_name, _, ads = row["pair"].rpartition(":")
        by_surface.setdefault(f"surface {surface_name}", []).append(row)
        by_adsorbate.setdefault(f"adsorbate {ads}", []).append(row)
    return {key: aggregate(group) for key, group in (by_surface | by_adsorbate).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense", type=int, default=100)
    parser.add_argument("--limit", type=int, default=None, help="first N pairs only (smoke run)")
    parser.add_argument("--set", choices=sorted(SETS), default="fresh", dest="which")
    parser.add_argument("--out", type=Path, default=None, help="default: results/<set's stem>")
    args = parser.parse_args()
    surfaces, adsorbates, stem, heading = SETS[args.which]
    args.out = args.out or RESULTS / stem
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    d = ORACLE_DEFAULTS
    dense_oracle, adaptive = search_oracles(
        args.dense, d.max_placements, [d.patience], d.tolerance_ev
    )
    pairs = fresh_pairs(args.which)[: args.limit]
    rows: list[dict[str, Any]] = []
    log = args.out.with_suffix(".jsonl")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    start = time.perf_counter()
    for i, pair, _, row in run_searches(pairs, dense_oracle, adaptive):
        rows.append(row)
        with log.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        cost = f"{row['adaptive_relaxations']}/{row['dense_relaxations']}"
        print(f"[{i + 1}/{len(pairs)}] {pair.key}: success={row['success']} "
              f"gap={row['gap_ev']} ({cost})", flush=True)  # fmt: skip
    meta = {
        "set": f"{', '.join(surfaces())} x {' '.join(adsorbates)}", "heading": heading,
        "calculator": "emt", "dense_placements": args.dense, "dense_seed": 1000,
        "adaptive_seed": 0, "patience": d.patience, "max_placements": d.max_placements,
        "tolerance_ev": d.tolerance_ev, "wall_s": time.perf_counter() - start,
        "load_average_at_end": os.getloadavg()[0],
        "command": "nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python "
                   f"benchmarks/oracles/search_fresh.py --set {args.which}",
    }  # fmt: skip
    write(args.out, meta, aggregate(rows), breakdown(rows), rows)


def write(
    out: Path,
    meta: dict[str, Any],
    summary: dict[str, Any],
    groups: dict[str, dict[str, Any]],
    rows: list[dict[str, Any]],
) -> None:
    data = {"meta": meta, "summary": summary, "groups": groups, "pairs": rows}
    out.with_suffix(".json").write_text(json.dumps(data, indent=2))

    def f(x: Any) -> str:
        return "—" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))

    def line(name: str, a: dict[str, Any]) -> str:
        return (f"| {name} | {a['n_scored']}/{a['n_pairs']} | {f(a['success_rate'])} | "
                f"{f(a['relaxation_fraction'])} | {f(a['force_call_fraction'])} | "
                f"{f(a['max_gap_ev'])} | {', '.join(a['failures']) or '—'} |")  # fmt: skip

    lines = [
        f"# Search efficiency on {meta.get('heading', 'a fresh held-out set')} (EMT, AdsorbML "
        "metric)",
        "",
        f"Command: `{meta['command']}` ({meta['wall_s']:.0f} s; load average "
        f"{meta['load_average_at_end']:.1f} at the end). Set: {meta['set']}. Dense reference "
        f"{meta['dense_placements']} placements; adaptive = shipped defaults (patience "
        f"{meta['patience']}, cap {meta['max_placements']}, tolerance {meta['tolerance_ev']} eV)."
        " Success = adaptive minimum within 0.1 eV of the dense one, or below; pairs where the"
        " dense search found no valid minimum are not scored. Target: >= 95 % success at"
        " <= 10 % of the dense relaxations.",
        "",
        "| group | pairs scored | success rate | relaxations adaptive/dense | force calls "
        "adaptive/dense | largest gap (eV) | failed pairs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        line("all", summary),
        *(line(name, a) for name, a in groups.items()),
        "",
        "## Per pair",
        "",
        "| pair | dense min (eV) | adaptive min (eV) | gap (eV) | relaxations (adaptive/dense) "
        "| dense anomalous placements | stop | success |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['pair']} | {f(r['dense_min_ev'])} | {f(r['adaptive_min_ev'])} | "
            f"{f(r['gap_ev'])} | {r['adaptive_relaxations']}/{r['dense_relaxations']} | "
            f"{r['dense_anomalous_placements']} | {r['adaptive_stop']} | {r['success']} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[: 12 + len(groups)]))


if __name__ == "__main__":
    main()
