"""Placement traces for tuning the search's stopping rule offline (issue 21).

A stopping rule only decides *when* to stop walking the placement plan; the plan, its order and
each relaxation are the same whatever the rule. So one walk per pair that never stops early
(``patience = cap``, seed 0, the shipped plan) is enough to score any rule that stops within
the cap: replay the walk, stop where the rule says, take the best valid energy so far. This
script records those walks for the *tuning* sets only (``fresh``: `search_fresh.py`'s 30 pairs;
``heldout``: `search_heldout.py`'s 30), never the scoring set, and scores rules on them against
the dense minima of those sets' results files.

Run (EMT, one core; each pair's walk is appended to the ``.jsonl`` as it finishes and reused):
    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/oracles/search_traces.py \
        --set fresh --cap 40
    .venv/bin/python benchmarks/oracles/search_traces.py --score fresh heldout
Writes benchmarks/results/oracles_search_traces_<set>.jsonl (walks) and
oracles_search_rules.{json,md} (the sweep).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alloop.oracles.defaults import ORACLE_DEFAULTS
from alloop.oracles.search import StopRule

RESULTS = Path(__file__).resolve().parents[1] / "results"
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from search_efficiency import search_oracles  # noqa: E402
from search_fresh import fresh_pairs  # noqa: E402
from search_heldout import held_out_pairs  # noqa: E402

#: set name -> (its pairs, results file with its dense minima)
SETS = {
    "fresh": (fresh_pairs, "oracles_search_fresh.json"),
    "heldout": (held_out_pairs, "oracles_search_heldout.json"),
}
SUCCESS_EV = 0.1
TOLERANCE_EV = ORACLE_DEFAULTS.tolerance_ev
#: the rules swept: patience, valid placements required before a stop, cap
PATIENCES = (3, 4, 5, 6, 8)
MIN_VALID = (0, 1, 2, 3, 4, 5, 6)
CAPS = (20, 30, 40)
#: skip a (binding atom, orientation) after this many relaxations of it, none valid
PRUNE_AFTER = (1, 2, 3)


def walk(which: str, cap: int, out: Path) -> None:
    """One never-stopping adaptive walk per pair, appended to ``out`` (jsonl)."""
    done = (
        {json.loads(line)["pair"] for line in out.read_text().splitlines()}
        if out.is_file()
        else set()
    )
    # the sets' own adaptive search (seed 0, their settings), never stopping before `cap`
    _, adaptive = search_oracles(100, cap, [cap], TOLERANCE_EV)
    oracle = adaptive[cap]
    for pair in SETS[which][0]():
        if pair.key in done:
            continue
        result = oracle.label(pair)
        steps = [
            {
                "e_ads_ev": r["e_ads_ev"],
                "flags": r["anomaly_flags"],
                "force_calls": r["force_calls"],
                "source": r["source"],
                "site_kind": r["site_kind"],
                "binding_atom": r["binding_atom"],
                "orientation": r["orientation"],
            }
            for r in result.provenance.get("placements", [])
        ]
        row = {"pair": pair.key, "cap": cap, "status": result.status, "walk": steps}
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(pair.key, result.status, len(steps), flush=True)


def dense_minima(which: str) -> dict[str, float]:
    data = json.loads((RESULTS / SETS[which][1]).read_text())
    rows = data["pairs"]
    if isinstance(rows, dict):  # keyed by patience: every key holds the same dense minimum
        rows = next(iter(rows.values()))
    return {r["pair"]: r["dense_min_ev"] for r in rows if r.get("dense_min_ev") is not None}


def stop_at(steps: Sequence[dict[str, Any]], patience: int, min_valid: int, cap: int) -> int:
    """How many placements of ``steps`` the search's own rule (`StopRule`) walks with this
    patience, minimum of valid placements and cap."""
    rule = StopRule(patience, TOLERANCE_EV, min_valid)
    for i, s in enumerate(steps[:cap]):
        rule.observe(None if s["flags"] or s["e_ads_ev"] is None else s["e_ads_ev"])
        if rule.done:
            return i + 1
    return min(cap, len(steps))


def walks(which: str) -> list[tuple[str, list[dict[str, Any]], float]]:
    """(pair, walk, dense minimum) of every recorded walk whose pair has a dense minimum."""
    dense = dense_minima(which)
    path = RESULTS / f"oracles_search_traces_{which}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["pair"], r["walk"], dense[r["pair"]]) for r in rows if r["pair"] in dense]


def replay(data: list[tuple[str, list[dict[str, Any]], float]], rule: tuple[int, int, int]
           ) -> tuple[int, int, list[str]]:  # fmt: skip
    """(successes, relaxations, missed pairs) of ``rule`` = (patience, min_valid, cap)."""
    ok = used = 0
    missed = []
    for pair, steps, dense in data:
        n = stop_at(steps, *rule)
        used += n
        vals = [s["e_ads_ev"] for s in steps[:n] if not s["flags"] and s["e_ads_ev"] is not None]
        if vals and min(vals) - dense <= SUCCESS_EV:
            ok += 1
        else:
            missed.append(pair)
    return ok, used, missed


def pruned(
    steps: list[dict[str, Any]], patience: int, cap: int, after: int
) -> tuple[int, list[float]]:
    """The shipped rule on a walk that skips (without relaxing) every placement whose (binding
    atom, orientation) has been relaxed ``after`` times in this search with no valid result.
    Skipping does not change which placements the plan makes (they are built as it is walked,
    relaxed or not), so the replay is exact while the walk lasts. (relaxations, valid energies)."""
    rule = StopRule(patience, TOLERANCE_EV)
    tried: dict[tuple[int, str], int] = {}
    valid_of: dict[tuple[int, str], int] = {}
    vals: list[float] = []
    n = 0
    for s in steps:
        combo = (s["binding_atom"], s["orientation"])
        if tried.get(combo, 0) >= after and not valid_of.get(combo, 0):
            continue
        n += 1
        valid = not s["flags"] and s["e_ads_ev"] is not None
        tried[combo] = tried.get(combo, 0) + 1
        valid_of[combo] = valid_of.get(combo, 0) + valid
        if valid:
            vals.append(s["e_ads_ev"])
        rule.observe(s["e_ads_ev"] if valid else None)
        if rule.done or n >= cap:
            break
    return n, vals


def first_hit(steps: list[dict[str, Any]], dense: float) -> int | None:
    """1-based position of the first valid placement within SUCCESS_EV of the dense minimum."""
    for i, s in enumerate(steps):
        if not s["flags"] and s["e_ads_ev"] is not None and s["e_ads_ev"] - dense <= SUCCESS_EV:
            return i + 1
    return None


def sweep(sets: list[str]) -> None:
    """Every rule of the grid on every tuning set; the rules no other rule beats on both mean
    success and mean relaxations (over the sets), and the shipped one; written to
    ``oracles_search_rules.{json,md}``."""
    data = {w: walks(w) for w in sets}
    grid = [(p, v, c) for p in PATIENCES for v in MIN_VALID for c in CAPS]
    table = {}
    for rule in grid:
        per = {w: replay(data[w], rule) for w in sets}
        table[rule] = {
            w: {"success": ok / len(data[w]), "relaxations": used / len(data[w]), "missed": miss}
            for w, (ok, used, miss) in per.items()
        }

    def mean(rule: tuple[int, int, int], key: str) -> float:
        return sum(table[rule][w][key] for w in sets) / len(sets)

    front, best = [], -1.0
    for rule in sorted(grid, key=lambda r: (mean(r, "relaxations"), -mean(r, "success"))):
        if mean(rule, "success") > best:
            best = mean(rule, "success")
            front.append(rule)
    flags: dict[str, int] = {}
    n_steps = 0
    hits = {}
    for w in sets:
        for pair, steps, dense in data[w]:
            n_steps += len(steps)
            for s in steps:
                for f in s["flags"]:
                    flags[f.split(":")[0]] = flags.get(f.split(":")[0], 0) + 1
            hits[pair] = first_hit(steps, dense)
    shipped = (ORACLE_DEFAULTS.patience, 0, ORACLE_DEFAULTS.max_placements)
    out = {
        "sets": sets,
        "n_pairs": {w: len(data[w]) for w in sets},
        "grid": {"patience": PATIENCES, "min_valid": MIN_VALID, "cap": CAPS},
        "shipped": list(shipped),
        "front": [list(r) for r in front],
        "rules": {"/".join(map(str, r)): v for r, v in table.items()},
        "first_hit": hits,
        "flags": flags,
        "placements_walked": n_steps,
        "command": "python benchmarks/oracles/search_traces.py --score " + " ".join(sets),
    }
    (RESULTS / "oracles_search_rules.json").write_text(json.dumps(out, indent=1))
    lines = [
        "# Stopping rules replayed on recorded placement walks (tuning sets only)",
        "",
        f"Command: `{out['command']}`. Walks: `oracles_search_traces_<set>.jsonl` (EMT, seed 0, "
        "the shipped plan, never stopping before 40 placements); dense minima: each set's "
        "results file. A rule is (patience, minimum valid placements before a stop, cap); "
        f"the shipped rule is {shipped}. Success: best valid energy within "
        f"{SUCCESS_EV} eV of the dense minimum (or below); relaxations per pair (dense: 100).",
        "",
        "| rule | " + " | ".join(f"{w}: success | {w}: relaxations" for w in sets) + " |",
        "| --- | " + " | ".join("--- | ---" for _ in sets) + " |",
    ]
    for rule in [shipped, *[r for r in front if r != shipped]]:
        cells = " | ".join(
            f"{table[rule][w]['success']:.2f} | {table[rule][w]['relaxations']:.1f}" for w in sets
        )
        tag = " (shipped)" if rule == shipped else ""
        lines.append(f"| {rule}{tag} | {cells} |")
    lines += [
        "",
        "The shipped rule when the search skips every placement whose (binding atom, "
        "orientation) was relaxed K times in this search with no valid result:",
        "",
        "| K | " + " | ".join(f"{w}: success | {w}: relaxations" for w in sets) + " |",
        "| --- | " + " | ".join("--- | ---" for _ in sets) + " |",
    ]
    out["pruned"] = {}
    for after in PRUNE_AFTER:
        cells = []
        for w in sets:
            ok = used = 0
            for _, steps, dense in data[w]:
                n, vals = pruned(steps, shipped[0], shipped[2], after)
                used += n
                ok += bool(vals) and min(vals) - dense <= SUCCESS_EV
            out["pruned"][f"{after}/{w}"] = {"success": ok / len(data[w]),
                                            "relaxations": used / len(data[w])}  # fmt: skip
            cells.append(f"{ok / len(data[w]):.2f} | {used / len(data[w]):.1f}")
        lines.append(f"| {after} | " + " | ".join(cells) + " |")
    (RESULTS / "oracles_search_rules.json").write_text(json.dumps(out, indent=1))
    never = sorted(p for p, h in hits.items() if h is None)
    late = sorted(p for p, h in hits.items() if h is not None and h > 10)
    lines += [
        "",
        f"Anomaly flags over the {n_steps} placements walked: "
        + ", ".join(f"{k} {v}" for k, v in sorted(flags.items(), key=lambda kv: -kv[1]))
        + ".",
        f"First placement within {SUCCESS_EV} eV of the dense minimum after the 10th: "
        + (", ".join(f"{p} ({hits[p]})" for p in late) or "none")
        + f"; not within 40 placements: {', '.join(never) or 'none'}.",
    ]
    (RESULTS / "oracles_search_rules.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", choices=sorted(SETS), help="record the walks of this set")
    p.add_argument("--cap", type=int, default=40)
    p.add_argument("--score", nargs="+", choices=sorted(SETS), help="sweep rules on these sets")
    args = p.parse_args()
    if args.score:
        sweep(args.score)
        return
    if args.set is None:
        p.error("give --set SET to record walks, or --score SET [SET ...]")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    walk(args.set, args.cap, RESULTS / f"oracles_search_traces_{args.set}.jsonl")


if __name__ == "__main__":
    main()
