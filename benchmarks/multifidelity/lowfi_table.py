"""Low-fidelity (MLIP) companion of the FG DFT table: SevenNet-MF-0 (PBE modal) GMAEs.

Issue 9, part 1. For every (metal, ``family/mol_code``) pair of
``shared/data/fg/fg_gmae_derived.csv`` (2,898 pairs, 14 metals x 207 molecules):

1. **Single points at the DFT geometries** (phase ``sp``). Every configuration named in the
   pair's ``e_ads_all_eV`` column (3,108 adsorbed CONTCARs
   ``<family>/structures/<metal lowercase>-<code>-<conf>.contcar``), the 14 clean slabs
   (``metal_surfaces/structures/<metal>-0000.contcar``) and the 207 gas molecules
   (``gas_<family>/structures/<code>.contcar``) get one energy evaluation with the project's
   offline default MLIP, built by ``build_calculator(CalculatorSpec("sevennet-mf-0"))``.
   E_ads(conf) = E(adsorbed) - E(slab) - E(gas) in eV; the single-point low-fidelity GMAE of a
   pair is the minimum over its configurations. Gas molecules: the CONTCARs hold each molecule
   in a 20 Å periodic cubic box (pbc on, molecule not wrapped across the box, largest extent
   7.8 Å). They are evaluated in that box as they are: SevenNet-MF-0 builds its graph from
   neighbours within 5 Å, and periodic images are at least 20 - 7.8 = 12.2 Å apart, so no edge
   joins a molecule to its image and the energy is that of the isolated molecule (the script
   checks the gap for every molecule).
2. **Relaxations from the DFT geometries** (phase ``relax``) for a stratified subset of pairs:
   20 per metal (280), seeded; for each metal the 11 families are dealt in a seeded order and a
   seeded random molecule is drawn from each family in turn. Work order: ranks 0-9 of every
   metal first (a complete 10-per-metal subset, 140 pairs), then ranks 10-19. Every
   configuration of a pair is relaxed with ``alloop.oracles.relax.relax`` under
   ``MLIPOracleSettings()`` defaults (fmax 0.05 eV/Å, 300 steps, BFGS, 3,600 s per pair), the
   clean slab and the gas molecule are relaxed once each with the same MLIP through the oracle's
   own :class:`~alloop.oracles.runner.ModelRunner` (gas in its ``gas_box``; relaxed references
   cached on disk), and each relaxed configuration is checked with
   ``alloop.oracles.anomalies.detect_anomalies`` exactly as ``MLIPOracle`` checks a placement
   (initial = DFT geometry tagged like the replay oracle tags it, relaxed clean slab, intact gas
   molecule; non-convergence is a flag as well). The relaxed GMAE is the minimum over the
   configurations without flags; a pair whose configurations are all flagged is ``anomalous``.
   After the subset, the two dissociated DFT minima (below) are relaxed as well, reported on
   their own and kept out of the subset's statistics (``relax_subset_rank`` = ``extra``).
   The intact molecule handed to the dissociation test is the gas CONTCAR with its atoms put in
   the adsorbate's atom order (an element-labelled bond-graph isomorphism; 56 of the 3,108 FG
   configurations list the molecule's atoms in another order than the gas CONTCAR). The two FG
   DFT minima that are not intact (Ru + oximes/49Y3, Fe + aromatics/44S1) have no such mapping:
   the gas CONTCAR is passed as it is, and the test flags them, as it should.
3. **Outputs** (phase ``report``, also written after the single points and every
   ``--report-every`` relaxed pairs): ``oracles/data/fg_mlip_sevennet_mf0.csv`` (one row per
   pair, energies rounded to 1e-4 eV) with its sidecar ``.json`` (model, weights sha256,
   settings, counts, wall times), and ``benchmarks/results/lowfi_table.md``/``.json`` (errors of
   the low-fidelity GMAE against DFT).

Resumable: every evaluation and every relaxed configuration is appended to a JSON-lines cache in
``benchmarks/multifidelity/.cache/`` (git-ignored) as soon as it finishes; a rerun skips what is
there (records from another model, by weights sha256, are ignored). Kill it at any time.

Run (one thread, one process; about 20-30 min for the single points on one core, then the
relaxations at roughly 15-60 s per configuration):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multifidelity/lowfi_table.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multifidelity/lowfi_table.py --phase report

``--phase sp|relax|report|all`` (default ``all``: sp, relax, report), ``--per-metal 20``,
``--note TEXT`` (what else ran on the machine, stored in the report).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
from ase import Atoms
from ase.io import write
from scipy.stats import spearmanr
from threadpoolctl import threadpool_limits

from alloop.oracles.anomalies import bond_matrix
from alloop.oracles.cache import RelaxationCache
from alloop.oracles.calculators import build_calculator, calculator_identity
from alloop.oracles.errors import OracleError
from alloop.oracles.relax import relax
from alloop.oracles.replay import FGRow, read_fg_rows, tag_fg_structure
from alloop.oracles.runner import ModelRunner
from alloop.oracles.search import relaxed_record
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.slabs import read_single
from alloop.oracles.types import TAG_ADSORBATE

logger = logging.getLogger("lowfi_table")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = HERE / ".cache"
SP_CACHE = CACHE / "sp_sevennet_mf0.jsonl"
RELAX_CACHE = CACHE / "relax_sevennet_mf0.jsonl"
RUNS_LOG = CACHE / "runs.jsonl"
REF_CACHE_DIR = CACHE / "relaxed_references"
RELAXED_STRUCTURES = CACHE / "relaxed_structures"
OUT_CSV = ROOT / "oracles" / "data" / "fg_mlip_sevennet_mf0.csv"
OUT_SIDECAR = OUT_CSV.with_suffix(".json")
RESULTS = ROOT / "benchmarks" / "results"
COMMAND = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multifidelity/lowfi_table.py"
MODEL = "sevennet-mf-0"
#: DFT minima that are not the intact molecule (shared/data/README.md)
KNOWN_DISSOCIATED: frozenset[tuple[str, str]] = frozenset(
    {("Ru", "oximes/49Y3"), ("Fe", "aromatics/44S1")}
)
N_SLAB_ATOMS = 48
DECIMALS = 4
#: ranks below this form the 10-per-metal part of the relaxed subset (worked first)
FIRST_PER_METAL = 10
#: rank of the pairs relaxed after the subset (the dissociated DFT minima), not in its stats
EXTRA_RANK = -1


def fg_root() -> Path:
    """The FG data folder: ``$ALLOOP_FG_ROOT`` or ``../shared/data/fg`` beside the checkout."""
    return Path(os.environ.get("ALLOOP_FG_ROOT", ROOT.parent / "shared" / "data" / "fg"))


# ----------------------------------------------------------------------------- paths, cache


def configs_of(row: FGRow) -> list[tuple[str, float]]:
    """``[(conf, dft_e_ads_ev), ...]`` from the row's ``e_ads_all_eV`` ("a:-0.39;b:-0.12")."""
    out = []
    for item in row.e_ads_all.split(";"):
        name, _, value = item.partition(":")
        out.append((name, float(value)))
    return out


def adsorbed_rel(row: FGRow, conf: str) -> str:
    """Path of one adsorbed configuration, relative to the FG root."""
    return f"{row.family}/structures/{row.metal.lower()}-{row.mol_code}-{conf}.contcar"


def slab_rel(metal: str) -> str:
    """Path of a clean slab, relative to the FG root."""
    return f"metal_surfaces/structures/{metal.lower()}-0000.contcar"


def gas_rel(family: str, mol_code: str) -> str:
    """Path of a gas-phase molecule, relative to the FG root."""
    return f"gas_{family}/structures/{mol_code}.contcar"


class JsonlCache:
    """Append-only JSON-lines store keyed by ``record["key"]``; a torn last line is ignored."""

    def __init__(self, path: Path, weights_hash: str | None) -> None:
        self.path = path
        self.weights_hash = weights_hash
        self.records: dict[str, dict[str, Any]] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut off by a kill
                if weights_hash is None or rec.get("weights_hash") == weights_hash:
                    self.records[rec["key"]] = rec

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def append(self, record: dict[str, Any]) -> None:
        """Store ``record`` (must carry ``key``) on disk at once (flushed and fsynced)."""
        record = {**record, "weights_hash": self.weights_hash}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records[record["key"]] = record


class RunLog:
    """Start/progress/end events of this process in ``runs.jsonl`` (for wall-time accounting)."""

    def __init__(self, phase: str, note: str | None) -> None:
        self.run_id = uuid.uuid4().hex[:12]
        self.phase = phase
        self.start = time.time()
        self.event("start", note=note, argv=sys.argv)

    def event(self, kind: str, **extra: Any) -> None:
        """Append one event with the wall clock and the 1-min load average."""
        RUNS_LOG.parent.mkdir(parents=True, exist_ok=True)
        rec = {
            "run_id": self.run_id,
            "phase": self.phase,
            "event": kind,
            "t": time.time(),
            "elapsed_s": time.time() - self.start,
            "loadavg_1min": os.getloadavg()[0],
            **extra,
        }
        with RUNS_LOG.open("a") as handle:
            handle.write(json.dumps(rec) + "\n")


def run_wall_s(phase: str) -> dict[str, float]:
    """Elapsed wall seconds per run of ``phase`` (last event minus start), and their total."""
    if not RUNS_LOG.is_file():
        return {"total_s": 0.0, "n_runs": 0}
    last: dict[str, float] = {}
    loads: list[float] = []
    for line in RUNS_LOG.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec["phase"] == phase:
            last[rec["run_id"]] = max(last.get(rec["run_id"], 0.0), rec["elapsed_s"])
            loads.append(rec["loadavg_1min"])
    return {
        "total_s": round(sum(last.values()), 1),
        "n_runs": len(last),
        "loadavg_1min_median": round(float(np.median(loads)), 2) if loads else None,
        "loadavg_1min_max": round(float(max(loads)), 2) if loads else None,
    }


# ----------------------------------------------------------------------------- single points


@dataclass(frozen=True)
class SinglePointJob:
    """One energy evaluation: ``key`` is the CONTCAR path relative to the FG root."""

    key: str
    kind: str  # "slab" | "gas" | "adsorbed"


def single_point_jobs(rows: dict[tuple[str, str], FGRow]) -> list[SinglePointJob]:
    """Slabs, then gas molecules, then every adsorbed configuration (sorted, deduplicated)."""
    slabs = sorted({slab_rel(m) for m, _ in rows})
    gases = sorted({gas_rel(r.family, r.mol_code) for r in rows.values()})
    ads = sorted({adsorbed_rel(r, c) for r in rows.values() for c, _ in configs_of(r)})
    return (
        [SinglePointJob(k, "slab") for k in slabs]
        + [SinglePointJob(k, "gas") for k in gases]
        + [SinglePointJob(k, "adsorbed") for k in ads]
    )


def image_gap_ang(atoms: Atoms) -> float:
    """Smallest distance (Å) between a periodic molecule and its nearest image along a cell
    axis of a cubic-ish box: box edge minus the molecule's extent along that axis."""
    lengths = atoms.cell.lengths()
    extent = np.ptp(atoms.positions, axis=0)
    return float(np.min(lengths - extent))


def run_single_points(
    rows: dict[tuple[str, str], FGRow], cache: JsonlCache, runlog: RunLog, limit: int | None
) -> int:
    """Evaluate every job not yet in ``cache``; returns how many were computed now."""
    jobs = [j for j in single_point_jobs(rows) if j.key not in cache]
    if limit is not None:
        jobs = jobs[:limit]
    logger.info("single points: %d to do, %d cached", len(jobs), len(cache.records))
    if not jobs:
        return 0
    spec = MLIPOracleSettings().calculator_spec()  # = CalculatorSpec("sevennet-mf-0"), 1 thread
    calculator = build_calculator(spec)
    cutoff_ang = float(getattr(calculator, "cutoff", 5.0))
    root = fg_root()
    start = time.perf_counter()
    for n, job in enumerate(jobs, start=1):
        atoms = read_single(root / job.key, "vasp")
        record: dict[str, Any] = {"key": job.key, "kind": job.kind, "n_atoms": len(atoms)}
        if job.kind == "gas":
            gap = image_gap_ang(atoms)
            record["image_gap_ang"] = round(gap, 3)
            if gap <= cutoff_ang:
                raise OracleError(f"{job.key}: image gap {gap:.2f} Å <= cutoff {cutoff_ang} Å")
        try:
            result = relax(atoms, calculator, fmax_ev_per_ang=0.05, max_steps=0)
        except OracleError as exc:
            record.update({"energy_ev": None, "error": f"{exc.kind}: {exc}"})
        else:
            record.update(
                {
                    "energy_ev": result.energy_ev,
                    "fmax_ev_per_ang": result.fmax_final_ev_per_ang,
                    "wall_s": result.wall_s,
                    "error": None,
                }
            )
        cache.append(record)
        if n % 100 == 0 or n == len(jobs):
            rate = (time.perf_counter() - start) / n
            logger.info("single points %d/%d (%.3f s each)", n, len(jobs), rate)
            runlog.event("progress", n_done=n, n_todo=len(jobs))
    return len(jobs)


def sp_pair_energies(
    rows: dict[tuple[str, str], FGRow], cache: JsonlCache
) -> dict[tuple[str, str], dict[str, float]]:
    """Per pair ``{conf: E_ads (eV)}`` from the single points (pairs with any gap left out)."""
    energies: dict[str, float | None] = {k: r.get("energy_ev") for k, r in cache.records.items()}
    out: dict[tuple[str, str], dict[str, float]] = {}
    for key, row in rows.items():
        e_slab = energies.get(slab_rel(row.metal))
        e_gas = energies.get(gas_rel(row.family, row.mol_code))
        confs = {}
        for conf, _ in configs_of(row):
            e_tot = energies.get(adsorbed_rel(row, conf))
            if e_tot is not None and e_slab is not None and e_gas is not None:
                confs[conf] = e_tot - e_slab - e_gas
        if len(confs) == row.n_configs:
            out[key] = confs
    return out


# ----------------------------------------------------------------------------- relaxations


def choose_relax_subset(
    rows: dict[tuple[str, str], FGRow], per_metal: int, seed: int
) -> list[tuple[int, str, str]]:
    """``[(rank, metal, "family/code"), ...]`` in work order (rank, then metal).

    Per metal (seeded by ``[seed, metal index]``): the families in a random order, a random
    molecule of each family in turn (round robin), ``per_metal`` picks; ranks 0..9 of a metal
    cover 10 different families.
    """
    metals = sorted({m for m, _ in rows})
    picks: list[tuple[int, str, str]] = []
    for i, metal in enumerate(metals):
        rng = np.random.default_rng([seed, i])
        families = sorted({r.family for (m, _), r in rows.items() if m == metal})
        order = [str(f) for f in rng.permutation(families)]
        pools = {
            f: [str(c) for c in rng.permutation(sorted(
                r.mol_code for (m, _), r in rows.items() if m == metal and r.family == f
            ))]
            for f in order
        }  # fmt: skip
        chosen: list[str] = []
        turn = 0
        while len(chosen) < per_metal and any(pools.values()):
            family = order[turn % len(order)]
            turn += 1
            if pools[family]:
                chosen.append(f"{family}/{pools[family].pop(0)}")
        picks.extend((rank, metal, key) for rank, key in enumerate(chosen))
    return sorted(picks, key=lambda p: (p[0], metals.index(p[1])))


def intact_in_adsorbate_order(gas: Atoms, adsorbate: Atoms) -> Atoms | None:
    """The gas molecule with its atoms reordered to the adsorbate's order (bond-graph
    isomorphism with element labels, strict bonds of ``bond_matrix``); ``None`` if the two
    bond graphs are not isomorphic (the adsorbate is not the intact molecule)."""
    if sorted(gas.get_chemical_symbols()) != sorted(adsorbate.get_chemical_symbols()):
        return None

    def graph(atoms: Atoms) -> nx.Graph:
        g = nx.from_numpy_array(np.asarray(bond_matrix(atoms)))
        nx.set_node_attributes(g, dict(enumerate(atoms.get_chemical_symbols())), "el")
        return g

    matcher = nx.algorithms.isomorphism.GraphMatcher(
        graph(adsorbate), graph(gas), node_match=lambda a, b: a["el"] == b["el"]
    )
    if not matcher.is_isomorphic():
        return None
    mapping = matcher.mapping  # adsorbate index -> gas index
    intact = gas[[mapping[i] for i in range(len(adsorbate))]]
    intact.set_constraint()
    return intact


def relax_pair(
    row: FGRow,
    runner: ModelRunner,
    settings: MLIPOracleSettings,
    cache: JsonlCache,
    save_structures: bool = True,
) -> None:
    """Relax every configuration of one pair not yet in ``cache`` and append its record."""
    root = fg_root()
    deadline = time.monotonic() + settings.time_limit_s if settings.time_limit_s else None
    base = {"metal": row.metal, "adsorbate_key": row.adsorbate_key}
    try:
        slab = runner.relaxed_slab(
            tag_fg_structure(read_single(root / slab_rel(row.metal), "vasp"), row.metal),
            deadline,
        )
        gas_atoms = read_single(root / gas_rel(row.family, row.mol_code), "vasp")
        gas = runner.relaxed_gas(gas_atoms, deadline)
    except OracleError as exc:
        for conf, _ in configs_of(row):
            cache.append(
                {**base, "key": f"{row.metal}|{row.adsorbate_key}|{conf}", "conf": conf,
                 "e_ads_ev": None, "anomaly_flags": [f"error:{exc.kind}"],
                 "error": f"reference {exc.kind}: {exc}"}
            )  # fmt: skip
        return
    for conf, _ in configs_of(row):
        key = f"{row.metal}|{row.adsorbate_key}|{conf}"
        if key in cache:
            continue
        initial = tag_fg_structure(read_single(root / adsorbed_rel(row, conf), "vasp"), row.metal)
        adsorbate = initial[initial.get_tags() == TAG_ADSORBATE]
        intact = intact_in_adsorbate_order(gas_atoms, adsorbate)
        record: dict[str, Any] = {
            **base,
            "key": key,
            "conf": conf,
            "e_slab_ev": slab.energy_ev,
            "e_gas_ev": gas.energy_ev,
            "start_intact": intact is not None,
        }
        try:
            result = runner.relax(initial, deadline)
        except OracleError as exc:
            record.update(
                {"e_ads_ev": None, "anomaly_flags": [f"error:{exc.kind}"],
                 "error": f"{exc.kind}: {exc}"}
            )  # fmt: skip
            cache.append(record)
            continue
        record.update(
            relaxed_record(
                initial, result, slab.atoms, intact if intact is not None else gas_atoms,
                settings.anomaly, slab.energy_ev + gas.energy_ev,
            )
        )  # fmt: skip
        if save_structures:
            target = RELAXED_STRUCTURES / row.family / f"{row.metal.lower()}-{row.mol_code}-{conf}"
            target.parent.mkdir(parents=True, exist_ok=True)
            write(str(target) + ".traj", result.atoms, format="traj")
        cache.append(record)


def run_relaxations(
    rows: dict[tuple[str, str], FGRow],
    subset: list[tuple[int, str, str]],
    cache: JsonlCache,
    runlog: RunLog,
    opts: Options,
) -> int:
    """Relax the subset in work order, skipping cached configurations; returns pairs done now
    (at most ``opts.max_pairs``)."""
    settings = MLIPOracleSettings()
    runner = ModelRunner(
        settings.calculator_spec(),
        RelaxationCache(REF_CACHE_DIR),
        settings.fmax_ev_per_ang,
        settings.max_steps,
        settings.optimizer,
        settings.reference_scheme,
    )
    todo = [
        (rank, metal, key)
        for rank, metal, key in subset
        if not all(f"{metal}|{key}|{c}" in cache for c, _ in configs_of(rows[(metal, key)]))
    ]
    logger.info("relaxations: %d of %d pairs to do", len(todo), len(subset))
    if opts.max_pairs is not None:
        todo = todo[: opts.max_pairs]
    start = time.perf_counter()
    for n, (rank, metal, key) in enumerate(todo, start=1):
        t0 = time.perf_counter()
        relax_pair(rows[(metal, key)], runner, settings, cache)
        logger.info(
            "relaxed %d/%d rank %d %s %s in %.0f s (%.0f s elapsed)",
            n, len(todo), rank, metal, key, time.perf_counter() - t0, time.perf_counter() - start,
        )  # fmt: skip
        runlog.event("progress", n_done=n, n_todo=len(todo), pair=f"{metal}|{key}")
        if n % opts.report_every == 0:
            write_outputs(rows, opts)
    return len(todo)


def relaxed_pairs(
    rows: dict[tuple[str, str], FGRow], cache: JsonlCache
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per pair whose every configuration is relaxed: status, minimum, per-config values."""
    by_pair: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for rec in cache.records.values():
        by_pair[(rec["metal"], rec["adsorbate_key"])][rec["conf"]] = rec
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key, confs in by_pair.items():
        row = rows[key]
        if set(confs) != {c for c, _ in configs_of(row)}:
            continue
        valid = {c: r["e_ads_ev"] for c, r in confs.items() if not r["anomaly_flags"]}
        if valid:
            best = min(valid, key=lambda c: valid[c])
            status, e_min = "ok", valid[best]
        elif any(r.get("error") is None for r in confs.values()):
            status, e_min, best = "anomalous", None, None
        else:
            status, e_min, best = "failed", None, None
        out[key] = {
            "status": status,
            "e_ads_min_ev": e_min,
            "best_config": best,
            "e_ads_all_ev": {c: confs[c]["e_ads_ev"] for c in sorted(confs)},
            "flags": {c: confs[c]["anomaly_flags"] for c in sorted(confs)},
            "wall_s": sum(r.get("wall_s") or 0.0 for r in confs.values()),
        }
    return out


# ----------------------------------------------------------------------------- outputs


def fmt(value: float | None) -> str:
    """Energy for the CSV: rounded to 1e-4 eV, empty when missing."""
    return "" if value is None else f"{value:.{DECIMALS}f}"


def build_table(
    rows: dict[tuple[str, str], FGRow],
    sp: dict[tuple[str, str], dict[str, float]],
    relaxed: dict[tuple[str, str], dict[str, Any]],
    ranks: dict[tuple[str, str], int],
) -> list[dict[str, str]]:
    """CSV rows (strings), sorted by metal, family, code."""
    table = []
    for key in sorted(rows, key=lambda k: (k[0], rows[k].family, rows[k].mol_code)):
        row = rows[key]
        confs = sp.get(key, {})
        best_sp = min(confs, key=lambda c: confs[c]) if confs else None
        rel = relaxed.get(key)
        flags = ""
        if rel is not None:
            flags = ";".join(f"{c}:{'+'.join(f)}" for c, f in rel["flags"].items() if f)
        table.append(
            {
                "metal": row.metal,
                "family": row.family,
                "mol_code": row.mol_code,
                "e_ads_min_dft_ev": fmt(row.e_ads_min_ev),
                "e_ads_min_sp_ev": fmt(confs[best_sp]) if best_sp else "",
                "best_config_sp": best_sp or "",
                "e_ads_all_sp_ev": ";".join(f"{c}:{fmt(v)}" for c, v in sorted(confs.items())),
                "relax_subset_rank": (
                    ""
                    if key not in ranks
                    else "extra"
                    if ranks[key] == EXTRA_RANK
                    else str(ranks[key])
                ),
                "relaxed_status": rel["status"] if rel else "",
                "e_ads_min_relaxed_ev": fmt(rel["e_ads_min_ev"]) if rel else "",
                "e_ads_all_relaxed_ev": (
                    ";".join(f"{c}:{fmt(v)}" for c, v in rel["e_ads_all_ev"].items()) if rel else ""
                ),
                "relaxed_anomaly_flags": flags,
            }
        )
    return table


def error_stats(pred: Iterable[float], ref: Iterable[float]) -> dict[str, Any]:
    """MAE, bias (pred - ref), RMSE, Spearman, share within 0.1 eV, n (eV)."""
    p = np.asarray(list(pred), dtype=float)
    r = np.asarray(list(ref), dtype=float)
    if len(p) == 0:
        return {"n": 0}
    err = p - r
    rho = float(spearmanr(p, r).statistic) if len(p) > 2 else None
    return {
        "n": int(len(p)),
        "mae_ev": round(float(np.abs(err).mean()), 4),
        "bias_ev": round(float(err.mean()), 4),
        "rmse_ev": round(float(np.sqrt((err**2).mean())), 4),
        "spearman": round(rho, 4) if rho is not None else None,
        "within_0p1_ev": round(float((np.abs(err) < 0.1).mean()), 4),
    }


def grouped(
    keys: list[tuple[str, str]],
    pred: dict[tuple[str, str], float],
    dft: dict[tuple[str, str], float],
    group: Any,
) -> dict[str, dict[str, Any]]:
    """``error_stats`` per group (``group(key) -> name``)."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for k in keys:
        groups[group(k)].append(k)
    return {
        g: error_stats([pred[k] for k in ks], [dft[k] for k in ks])
        for g, ks in sorted(groups.items())
    }


def build_report(
    rows: dict[tuple[str, str], FGRow],
    sp: dict[tuple[str, str], dict[str, float]],
    relaxed: dict[tuple[str, str], dict[str, Any]],
    subset: list[tuple[int, str, str]],
    sp_cache: JsonlCache,
    relax_cache: JsonlCache,
) -> dict[str, Any]:
    """All numbers of the report (JSON-ready)."""
    dft = {k: r.e_ads_min_ev for k, r in rows.items()}
    sp_min = {k: min(v.values()) for k, v in sp.items()}
    keys = sorted(sp_min)
    clean = [k for k in keys if k not in KNOWN_DISSOCIATED]
    fmax = [
        r["fmax_ev_per_ang"] for r in sp_cache.records.values()
        if r["kind"] == "adsorbed" and r.get("fmax_ev_per_ang") is not None
    ]  # fmt: skip
    gaps = [r["image_gap_ang"] for r in sp_cache.records.values() if r["kind"] == "gas"]
    report: dict[str, Any] = {
        "n_pairs": len(rows),
        "n_pairs_with_sp": len(keys),
        "single_point": {
            "all": error_stats([sp_min[k] for k in keys], [dft[k] for k in keys]),
            "without_dissociated_dft_minima": error_stats(
                [sp_min[k] for k in clean], [dft[k] for k in clean]
            ),
            "dissociated_dft_minima": {
                f"{m}|{a}": {
                    "dft_ev": dft[(m, a)],
                    "sp_ev": round(sp_min[(m, a)], 4) if (m, a) in sp_min else None,
                    "sp_configs_ev": {c: round(v, 4) for c, v in sp.get((m, a), {}).items()},
                }
                for m, a in sorted(KNOWN_DISSOCIATED)
            },
            "per_metal": grouped(keys, sp_min, dft, lambda k: k[0]),
            "per_family": grouped(keys, sp_min, dft, lambda k: rows[k].family),
            "best_config_agrees_with_dft": _config_agreement(rows, sp),
            "fmax_at_dft_geometry_ev_per_ang": {
                "median": round(float(np.median(fmax)), 3) if fmax else None,
                "p90": round(float(np.percentile(fmax, 90)), 3) if fmax else None,
                "max": round(float(np.max(fmax)), 3) if fmax else None,
            },
            "gas_image_gap_ang_min": min(gaps) if gaps else None,
            "failed_evaluations": sorted(k for k, r in sp_cache.records.items() if r.get("error")),
        },
    }
    report["relaxed"] = _relaxed_report(rows, sp_min, relaxed, subset, relax_cache, dft)
    return report


def _config_agreement(
    rows: dict[tuple[str, str], FGRow], sp: dict[tuple[str, str], dict[str, float]]
) -> dict[str, int]:
    """Among pairs with two or more configurations: does the SP minimum pick DFT's best one?"""
    multi = [k for k, v in sp.items() if len(v) > 1]
    same = sum(min(sp[k], key=lambda c: sp[k][c]) == rows[k].best_config for k in multi)
    return {"n_multi_config_pairs": len(multi), "same_best_config": int(same)}


def _relaxed_report(
    rows: dict[tuple[str, str], FGRow],
    sp_min: dict[tuple[str, str], float],
    relaxed: dict[tuple[str, str], dict[str, Any]],
    subset: list[tuple[int, str, str]],
    relax_cache: JsonlCache,
    dft: dict[tuple[str, str], float],
) -> dict[str, Any]:
    in_subset = [(m, a) for _, m, a in subset]
    done = [k for k in in_subset if k in relaxed]
    first_half = {(m, a) for rank, m, a in subset if rank < FIRST_PER_METAL}
    ok = [k for k in done if relaxed[k]["status"] == "ok" and k in sp_min]
    ok_clean = [k for k in ok if k not in KNOWN_DISSOCIATED]
    rel = {k: relaxed[k]["e_ads_min_ev"] for k in ok}
    diff = np.array([sp_min[k] - rel[k] for k in ok]) if ok else np.array([])
    subset_keys = set(in_subset)
    configs = [
        r for r in relax_cache.records.values() if (r["metal"], r["adsorbate_key"]) in subset_keys
    ]
    flag_counts: dict[str, int] = defaultdict(int)
    for rec in configs:
        for flag in rec["anomaly_flags"]:
            flag_counts[flag] += 1
    wall = [r["wall_s"] for r in configs if r.get("wall_s") is not None]
    steps = [r["n_steps"] for r in configs if r.get("n_steps") is not None]
    return {
        "subset_size": len(in_subset),
        "pairs_done": len(done),
        "pairs_done_in_10_per_metal_subset": sum(k in first_half for k in done),
        "status_counts": {
            s: sum(relaxed[k]["status"] == s for k in done) for s in ("ok", "anomalous", "failed")
        },
        "configs_relaxed": len(configs),
        "configs_flagged": sum(bool(r["anomaly_flags"]) for r in configs),
        "flag_counts": dict(sorted(flag_counts.items())),
        "sp_vs_dft_on_ok_pairs": error_stats([sp_min[k] for k in ok], [dft[k] for k in ok]),
        "relaxed_vs_dft_on_ok_pairs": error_stats([rel[k] for k in ok], [dft[k] for k in ok]),
        "sp_vs_dft_without_dissociated": error_stats(
            [sp_min[k] for k in ok_clean], [dft[k] for k in ok_clean]
        ),
        "relaxed_vs_dft_without_dissociated": error_stats(
            [rel[k] for k in ok_clean], [dft[k] for k in ok_clean]
        ),
        "mean_abs_sp_minus_relaxed_ev": round(float(np.abs(diff).mean()), 4) if ok else None,
        "mean_sp_minus_relaxed_ev": round(float(diff.mean()), 4) if ok else None,
        "max_sp_minus_relaxed_ev": round(float(diff.max()), 4) if ok else None,
        "min_sp_minus_relaxed_ev": round(float(diff.min()), 4) if ok else None,
        "relaxed_per_metal": grouped(ok, rel, dft, lambda k: k[0]),
        "sp_per_metal_on_ok_pairs": grouped(ok, sp_min, dft, lambda k: k[0]),
        "mean_sp_minus_relaxed_per_metal_ev": {
            metal: round(float(np.mean([sp_min[k] - rel[k] for k in ok if k[0] == metal])), 4)
            for metal in sorted({k[0] for k in ok})
        },
        "n_dissociated_dft_minima_in_subset": sum(k in KNOWN_DISSOCIATED for k in in_subset),
        "dissociated_dft_minima_relaxed": {
            f"{m}|{a}": {
                "dft_ev": dft[(m, a)],
                "sp_ev": round(sp_min[(m, a)], 4) if (m, a) in sp_min else None,
                "status": relaxed[(m, a)]["status"],
                "relaxed_ev": _round(relaxed[(m, a)]["e_ads_min_ev"]),
                "relaxed_configs_ev": {
                    c: _round(v) for c, v in relaxed[(m, a)]["e_ads_all_ev"].items()
                },
                "flags": relaxed[(m, a)]["flags"],
            }
            for m, a in sorted(KNOWN_DISSOCIATED)
            if (m, a) in relaxed
        },
        "non_ok_pairs": {
            f"{m}|{a}": relaxed[(m, a)]["flags"]
            for m, a in done
            if relaxed[(m, a)]["status"] != "ok"
        },  # fmt: skip
        "config_wall_s": {
            "mean": round(float(np.mean(wall)), 1) if wall else None,
            "median": round(float(np.median(wall)), 1) if wall else None,
            "max": round(float(np.max(wall)), 1) if wall else None,
            "sum": round(float(np.sum(wall)), 1) if wall else None,
        },
        "config_steps": {
            "mean": round(float(np.mean(steps)), 1) if steps else None,
            "max": int(np.max(steps)) if steps else None,
        },
    }


@dataclass(frozen=True)
class Options:
    """Command-line choices that the work and the outputs depend on."""

    per_metal: int = 20
    seed: int = 0
    limit: int | None = None
    max_pairs: int | None = None
    report_every: int = 10
    note: str | None = None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, DECIMALS)


def write_outputs(rows: dict[tuple[str, str], FGRow], opts: Options) -> None:
    """Rebuild the CSV, its sidecar and the report from the caches (cheap; safe to rerun)."""
    note = opts.note
    spec = MLIPOracleSettings().calculator_spec()
    ident = calculator_identity(spec)
    sp_cache = JsonlCache(SP_CACHE, ident["weights_hash"])
    relax_cache = JsonlCache(RELAX_CACHE, ident["weights_hash"])
    subset = choose_relax_subset(rows, opts.per_metal, opts.seed)
    ranks = {(m, a): rank for rank, m, a in subset}
    for key in KNOWN_DISSOCIATED:
        ranks.setdefault(key, EXTRA_RANK)
    sp = sp_pair_energies(rows, sp_cache)
    relaxed = relaxed_pairs(rows, relax_cache)
    table = build_table(rows, sp, relaxed, ranks)
    OUT_CSV.parent.mkdir(parents=True, exist_ok=True)
    with OUT_CSV.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    report = build_report(rows, sp, relaxed, subset, sp_cache, relax_cache)
    settings = MLIPOracleSettings()
    wall = {"single_point": run_wall_s("sp"), "relax": run_wall_s("relax")}
    sp_compute = sum(r.get("wall_s") or 0.0 for r in sp_cache.records.values())
    wall["single_point"]["compute_s"] = round(sp_compute, 1)
    wall["relax"]["compute_s"] = report["relaxed"]["config_wall_s"]["sum"]
    counts = {
        "pairs": len(rows),
        "pairs_with_sp": len(sp),
        "sp_evaluations": len(sp_cache.records),
        "sp_adsorbed": sum(r["kind"] == "adsorbed" for r in sp_cache.records.values()),
        "sp_slabs": sum(r["kind"] == "slab" for r in sp_cache.records.values()),
        "sp_gas": sum(r["kind"] == "gas" for r in sp_cache.records.values()),
        "relax_subset": len(subset),
        "relaxed_pairs_done": report["relaxed"]["pairs_done"],
        "relaxed_configs": report["relaxed"]["configs_relaxed"],
    }
    sidecar = {
        "table": str(OUT_CSV.relative_to(ROOT)),
        "description": "Low-fidelity (SevenNet-MF-0, PBE modal) GMAE of every FG pair: single "
        "points at the DFT geometries (all pairs) and relaxations from them (stratified subset).",
        "model": {**ident, "weights_path": Path(ident["weights_path"]).name},
        "fg_table": "shared/data/fg/fg_gmae_derived.csv",
        "settings": {
            "single_point": {
                "geometry": "DFT CONTCAR as given (adsorbed, clean slab, gas molecule)",
                "gas": "molecule in its 20 Å periodic DFT box; images >= "
                f"{report['single_point']['gas_image_gap_ang_min']} Å apart (> 5 Å cutoff)",
                "e_ads": "E(adsorbed) - E(slab) - E(gas); GMAE = min over configurations",
            },
            "relaxation": {
                "fmax_ev_per_ang": settings.fmax_ev_per_ang,
                "max_steps": settings.max_steps,
                "optimizer": settings.optimizer,
                "time_limit_s_per_pair": settings.time_limit_s,
                "anomaly": asdict(settings.anomaly),
                "references": "clean slab and gas molecule (gas_box) relaxed with the same MLIP "
                "(ModelRunner, must converge)",
                "label": "min over configurations without anomaly flags (not_converged included)",
                "subset": f"{opts.per_metal} per metal, seed {opts.seed}, work order rank then "
                "metal (ranks 0-9 = 10-per-metal subset)",
            },
            "torch_threads": spec.torch_threads,
            "device": spec.device,
        },
        "command": COMMAND,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall": wall,
        "counts": counts,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "note": note},
    }
    OUT_SIDECAR.write_text(json.dumps(sidecar, indent=1) + "\n")
    full = {"sidecar": sidecar, **report}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lowfi_table.json").write_text(json.dumps(full, indent=1) + "\n")
    (RESULTS / "lowfi_table.md").write_text(render_markdown(full))
    logger.info("wrote %s, %s and benchmarks/results/lowfi_table.*", OUT_CSV, OUT_SIDECAR)


def _row(name: str, s: dict[str, Any]) -> str:
    if not s.get("n"):
        return f"| {name} | 0 | | | | | |"
    return (
        f"| {name} | {s['n']} | {s['mae_ev']:.3f} | {s['bias_ev']:+.3f} | {s['rmse_ev']:.3f} | "
        f"{'' if s['spearman'] is None else format(s['spearman'], '.3f')} | "
        f"{100 * s['within_0p1_ev']:.1f}% |"
    )


def render_markdown(full: dict[str, Any]) -> str:
    """The human-readable report."""
    side, sp, rel = full["sidecar"], full["single_point"], full["relaxed"]
    head = "| set | n | MAE (eV) | bias (eV) | RMSE (eV) | Spearman | within 0.1 eV |\n"
    head += "|---|---|---|---|---|---|---|\n"
    wall = side["wall"]
    lines = [
        "# Low-fidelity companion of the FG table: SevenNet-MF-0 (PBE modal) vs DFT",
        "",
        f"Table: `{side['table']}` (one row per pair, {side['counts']['pairs']} pairs). "
        f"Model `{side['model']['calculator']}` (sevenn {side['model']['package_version']}, "
        f"modal {side['model']['modal']}, weights sha256 `{side['model']['weights_hash'][:16]}…`). "
        f"Generated {side['date']} by `{side['command']}` "
        "(`benchmarks/multifidelity/lowfi_table.py`). Errors are low-fidelity minus DFT "
        "(FG-GMAE stand-in, VASP PBE-D2); bias < 0 means the MLIP binds more strongly.",
        "",
        "## Single points at the DFT geometries (all pairs)",
        "",
        f"{side['counts']['sp_evaluations']} evaluations ({side['counts']['sp_adsorbed']} "
        f"adsorbed, {side['counts']['sp_slabs']} slabs, {side['counts']['sp_gas']} gas "
        f"molecules in their 20 Å periodic DFT box, images ≥ {sp['gas_image_gap_ang_min']} Å "
        "apart vs a 5 Å cutoff); GMAE = min over each pair's configurations.",
        "",
        head
        + _row("all pairs", sp["all"])
        + "\n"
        + _row("without the 2 dissociated DFT minima", sp["without_dissociated_dft_minima"]),
        "",
        "Dissociated DFT minima (the DFT geometry is the broken molecule):",
        "",
    ]
    for key, d in sp["dissociated_dft_minima"].items():
        lines.append(
            f"* {key}: DFT {d['dft_ev']:+.3f} eV, SP {d['sp_ev']} eV (configs {d['sp_configs_ev']})"
        )
    agree = sp["best_config_agrees_with_dft"]
    fm = sp["fmax_at_dft_geometry_ev_per_ang"]
    lines += [
        "",
        f"Best configuration: the SP minimum picks DFT's best configuration in "
        f"{agree['same_best_config']} of {agree['n_multi_config_pairs']} two-configuration "
        f"pairs. Max force of SevenNet-MF-0 at the DFT geometries: median {fm['median']}, "
        f"p90 {fm['p90']}, max {fm['max']} eV/Å. Failed evaluations: "
        f"{len(sp['failed_evaluations'])}.",
        "",
        "### Per metal",
        "",
        head + "\n".join(_row(m, s) for m, s in sp["per_metal"].items()),
        "",
        "### Per family",
        "",
        head + "\n".join(_row(f, s) for f, s in sp["per_family"].items()),
        "",
        "## Relaxed from the DFT geometries (stratified subset)",
        "",
        f"**{rel['pairs_done']} of {rel['subset_size']} subset pairs relaxed** "
        f"({rel['pairs_done_in_10_per_metal_subset']} of the 140-pair 10-per-metal part); "
        f"{rel['configs_relaxed']} configurations, {rel['configs_flagged']} flagged "
        f"({rel['flag_counts']}). Pair status: {rel['status_counts']}. Settings: "
        f"`MLIPOracleSettings()` defaults (fmax {side['settings']['relaxation']['fmax_ev_per_ang']}"
        f" eV/Å, {side['settings']['relaxation']['max_steps']} steps, "
        f"{side['settings']['relaxation']['optimizer']}); anomalous configurations never become "
        "the label.",
        "",
        "Same pairs (relaxed status ok), against DFT:",
        "",
        head
        + _row("single point", rel["sp_vs_dft_on_ok_pairs"])
        + "\n"
        + _row("relaxed", rel["relaxed_vs_dft_on_ok_pairs"])
        + (
            "\n"
            + _row("single point, w/o dissociated", rel["sp_vs_dft_without_dissociated"])
            + "\n"
            + _row("relaxed, w/o dissociated", rel["relaxed_vs_dft_without_dissociated"])
            if rel["n_dissociated_dft_minima_in_subset"]
            else "\n\nThe two dissociated DFT minima are not in the subset (rows without them "
            "are the same); they are relaxed apart, below."
        ),
        "",
        f"SP − relaxed: mean |Δ| {rel['mean_abs_sp_minus_relaxed_ev']} eV, mean "
        f"{rel['mean_sp_minus_relaxed_ev']} eV (range {rel['min_sp_minus_relaxed_ev']} to "
        f"{rel['max_sp_minus_relaxed_ev']} eV). Pairs not ok: {rel['non_ok_pairs'] or 'none'}.",
        "",
        "Dissociated DFT minima, relaxed from each DFT configuration (outside the subset): "
        + (
            "; ".join(
                f"{k}: DFT {d['dft_ev']:+.3f}, SP {d['sp_ev']}, relaxed {d['relaxed_ev']} "
                f"({d['status']}; configs {d['relaxed_configs_ev']}, flags {d['flags']})"
                for k, d in rel["dissociated_dft_minima_relaxed"].items()
            )
            or "not yet relaxed"
        )
        + ".",
        "",
        "Per metal, same pairs (relaxed status ok):",
        "",
        "| metal | n | SP MAE (eV) | SP bias (eV) | relaxed MAE (eV) | relaxed bias (eV) | "
        "mean SP − relaxed (eV) |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {m} | {s['n']} | {rel['sp_per_metal_on_ok_pairs'][m]['mae_ev']:.3f} | "
            f"{rel['sp_per_metal_on_ok_pairs'][m]['bias_ev']:+.3f} | {s['mae_ev']:.3f} | "
            f"{s['bias_ev']:+.3f} | {rel['mean_sp_minus_relaxed_per_metal_ev'][m]:+.3f} |"
            for m, s in rel["relaxed_per_metal"].items()
        ),
        "",
        "## Cost",
        "",
        f"* single points: {wall['single_point']['total_s']} s wall over "
        f"{wall['single_point']['n_runs']} run(s), {wall['single_point']['compute_s']} s in "
        "model calls (1 torch thread, 1 process)",
        f"* relaxations: {wall['relax']['total_s']} s wall over {wall['relax']['n_runs']} run(s), "
        f"{wall['relax']['compute_s']} s in adsorbed relaxations; per configuration "
        f"{rel['config_wall_s']}, steps {rel['config_steps']}",
        f"* machine: {side['machine']['cpus']} CPU cores shared with other jobs; 1-min load "
        f"average during the single points median {wall['single_point'].get('loadavg_1min_median')}"
        f" (max {wall['single_point'].get('loadavg_1min_max')}), during the relaxations median "
        f"{wall['relax'].get('loadavg_1min_median')} (max {wall['relax'].get('loadavg_1min_max')})"
        + (f". {side['machine']['note']}" if side["machine"]["note"] else ""),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """CLI; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phase", choices=("all", "sp", "relax", "report"), default="all")
    parser.add_argument("--per-metal", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="single points this run (test)")
    parser.add_argument("--max-pairs", type=int, default=None, help="relaxed pairs this run")
    parser.add_argument("--report-every", type=int, default=10)
    parser.add_argument("--note", default=None, help="what else ran on the machine")
    args = parser.parse_args(argv)
    opts = Options(
        args.per_metal, args.seed, args.limit, args.max_pairs, args.report_every, args.note
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("alloop").setLevel(logging.WARNING)
    rows = read_fg_rows(fg_root())
    weights_hash = calculator_identity(MLIPOracleSettings().calculator_spec())["weights_hash"]
    with threadpool_limits(limits=1):
        if args.phase in ("all", "sp"):
            runlog = RunLog("sp", opts.note)
            n = run_single_points(rows, JsonlCache(SP_CACHE, weights_hash), runlog, opts.limit)
            runlog.event("end", n_computed=n)
            write_outputs(rows, opts)
        if args.phase in ("all", "relax"):
            runlog = RunLog("relax", opts.note)
            subset = choose_relax_subset(rows, opts.per_metal, opts.seed)
            # the two dissociated DFT minima go last, outside the subset's statistics
            extras = [(EXTRA_RANK, m, a) for m, a in sorted(KNOWN_DISSOCIATED)]
            extras = [p for p in extras if (p[1], p[2]) not in {(m, a) for _, m, a in subset}]
            cache = JsonlCache(RELAX_CACHE, weights_hash)
            n = run_relaxations(rows, subset + extras, cache, runlog, opts)
            runlog.event("end", n_computed=n)
            write_outputs(rows, opts)
        if args.phase == "report":
            write_outputs(rows, opts)


if __name__ == "__main__":
    main()
