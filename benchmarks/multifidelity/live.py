"""The live multi-fidelity path, timed (issue 18, part 5); not CI.

Runs ``alloop run configs/mf-live.yaml`` (SevenNet-MF-0 labels with the adaptive placement
search, GPAW single points at the MLIP minima as the DFT fidelity; ``make dft-env`` first) in a
child process on a fresh campaign file, and records what it bought: every label (pair,
fidelity, status, value, wall time), the cost per round and fidelity, the stop, the wall time
and the CPU time of the run, and the machine's load average before and after (the wall time
means little on a shared machine; the CPU time does).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multifidelity/live.py
Writes benchmarks/results/mf_live.{json,md} (``--report-only``: the markdown from the JSON).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from alloop.loop.agent.costs import cost_spent
from alloop.loop.config import load_config
from alloop.store import CampaignStore

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "mf-live.yaml"
RESULTS = REPO / "benchmarks" / "results"


def campaign_facts(path: Path) -> dict[str, Any]:
    cfg = load_config(CONFIG)
    with CampaignStore.open(path) as store:
        names = {p.key: f"{p.surface_key}|{p.adsorbate_key}" for p in store.pairs()}
        jobs = {j.key: j for j in store.jobs()}
        labels = [
            {"round": jobs[lab.job_key].round_index, "pair": names[jobs[lab.job_key].pair_key],
             "fidelity": lab.fidelity, "status": str(lab.status), "gmae_ev": lab.gmae_ev,
             "wall_s": (lab.provenance or {}).get("wall_s")}
            for lab in store.labels()
        ]  # fmt: skip
        rounds = [
            {"index": r.index, "cost_total": r.metrics.get("cost_total"),
             "cost_by_fidelity": r.metrics.get("cost_by_fidelity"),
             "timing_s": r.metrics.get("timing")}
            for r in store.rounds()
        ]  # fmt: skip
        stops = [e.payload for e in store.events() if e.kind == "stopped"]
        spent = cost_spent(store.jobs(), cfg.cost)
    return {"labels": labels, "rounds": rounds, "cost_spent": spent,
            "stop": stops[-1] if stops else None}  # fmt: skip


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Live multi-fidelity campaign (`configs/mf-live.yaml`)", "",
        f"Command: `{r['command']}`  ", f"Machine: {r['machine']}  ",
        f"Load average before / after: {r['load_before']} / {r['load_after']}", "",
        f"Wall time {r['wall_s']:.0f} s, CPU time {r['cpu_s']:.0f} s (user + system of the "
        f"`alloop run` process); exit code {r['returncode']}; cost {r['cost_spent']:g} units; "
        f"stop: {r['stop']}.", "",
        "| round | pair | fidelity | status | GMAE (eV) | wall (s) |", "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for lab in r["labels"]:
        value = "—" if lab["gmae_ev"] is None else f"{lab['gmae_ev']:+.3f}"
        wall = "—" if lab["wall_s"] is None else f"{lab['wall_s']:.0f}"
        pair = lab["pair"].replace("|", "\\|")  # a table cell
        lines.append(f"| {lab['round']} | {pair} | {lab['fidelity']} | {lab['status']} | "
                     f"{value} | {wall} |")  # fmt: skip
    lines += [
        "",
        "| round | cost total | by fidelity | train / label / DFT (s) |",
        "|---|---|---|---|",
    ]
    for rnd in r["rounds"]:
        t = rnd["timing_s"] or {}
        parts = " / ".join(
            f"{t[k]:.0f}" if k in t else "—" for k in ("train_s", "label_s", "escalate_s")
        )
        lines.append(
            f"| {rnd['index']} | {rnd['cost_total']:g} | {rnd['cost_by_fidelity']} | {parts} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:] == ["--report-only"]:  # the markdown again from the stored JSON
        result = json.loads((RESULTS / "mf_live.json").read_text())
        (RESULTS / "mf_live.md").write_text(markdown(result))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="alloop-mf-live-") as tmp:
        path = Path(tmp) / "live.alloop"
        alloop = Path(sys.executable).with_name("alloop")  # the venv's entry point
        cmd = [str(alloop), "run", str(CONFIG), "--campaign", str(path)]
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, check=False)
        wall = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = {
            "benchmark": "live multi-fidelity campaign, configs/mf-live.yaml",
            "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multifidelity/live.py",
            "machine": {"platform": platform.platform(), "cores": os.cpu_count()},
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "returncode": proc.returncode,
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            **campaign_facts(path),
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mf_live.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "mf_live.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
