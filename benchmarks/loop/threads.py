"""Thread control measured (issue 20, item 1): one training round on idle and on busy cores.

The round: the shipped surrogate of a campaign (`configs/minimal.yaml`'s `surrogate` section,
every key its default: 5 members, cross-fitting, scaling prior, frozen SevenNet-0 features)
fitted on a seeded random ``--labels`` FG replay labels (the compact FG copy that ships in
``alloop.oracles``) through the campaign's own call, `alloop.loop.bridges.surrogate.fit_ensemble`,
inside `alloop.loop.bridges.threads.threads_for`, as the engine runs each round. One untimed fit
first featurises the labels (SevenNet-0 on the slabs and molecules, cached in the process) and
compiles what torch compiles once, so the timed rounds are training alone.

Each thread choice — the default (whatever `threads_for` decides at that moment), 1 thread and
2 threads — is timed ``--repeats`` times (a) on idle cores and (b) on busy cores (a count the
default has just chosen is not timed twice: its row is the default's round): this script
starts ``--burners`` CPU-burning processes (``while True: pass``, killed at the end) and waits
a second before the busy rounds. Printed and written: the wall and CPU seconds of each round,
the threads the default chose, and busy/idle per choice (medians, same process). The default
before the free-core cap (cores ÷ workers, at most torch's count) is computed here too
(`campaign_threads` without a free-core reading) and reported with the row of its thread count.

Needs the machine to itself (`--max-load` refuses to start above a 1-minute load average).
Run (about 14 min on 2 free cores; no OMP_NUM_THREADS, the thread count is what is measured):
    make bench-threads
Writes benchmarks/results/threads.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from alloop.loop.bridges.surrogate import fit_ensemble
from alloop.loop.bridges.threads import (
    PROC_STAT,
    campaign_threads,
    free_cores,
    parse_cpu_times,
    threads_for,
    usable_cores,
    usable_cpus,
    with_threads,
)
from alloop.loop.config import AlloopConfig, load_config
from alloop.oracles.fg_data import SHIPPED_FG_ROOT
from alloop.surrogate.fg import read_fg_table
from alloop.surrogate.types import SurrogateSample

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "threads"
CONFIG = REPO / "configs" / "minimal.yaml"
#: the thread choices timed: None is the default (`threads_for` decides)
CHOICES: tuple[int | None, ...] = (None, 1, 2)
#: busy within this factor of idle: the issue's bar
BAR = 1.5
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def choice_name(threads: int | None) -> str:
    return "default" if threads is None else f"{threads} thread{'s' if threads > 1 else ''}"


def fg_samples(n: int, seed: int) -> list[SurrogateSample]:
    """``n`` seeded random FG labels of the compact copy that ships with alloop."""
    records = read_fg_table(SHIPPED_FG_ROOT)
    chosen = np.random.default_rng(seed).permutation(len(records))[:n]
    return [
        SurrogateSample(records[i].metal, records[i].slab, records[i].smiles, records[i].gmae_ev)
        for i in chosen
    ]


def machine_busy_s() -> float:
    """CPU seconds spent by anything on this process's CPUs since boot (``/proc/stat``)."""
    times = parse_cpu_times(Path(PROC_STAT).read_text())
    cpus = usable_cpus() or set(times)
    return sum(times[c][0] - times[c][1] for c in cpus if c in times) / TICKS_PER_S


def processes_cpu_s(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) of the processes ``pids`` so far (``/proc/PID/stat``)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS_PER_S


def one_round(
    cfg: AlloopConfig, samples: list[SurrogateSample], seed: int, burners: Sequence[int] = ()
) -> dict[str, float]:
    """One training round as the engine runs it: threads decided, ensemble fitted. Also the CPU
    seconds that processes other than this one and its ``burners`` spent meanwhile (the check
    that nothing else ran; a second or two is the system's own)."""
    t_decide = time.perf_counter()
    with threads_for(cfg) as n:
        decide_s = time.perf_counter() - t_decide
        machine0, burners0 = machine_busy_s(), processes_cpu_s(burners)
        cpu0, t0 = time.process_time(), time.perf_counter()
        fit_ensemble(cfg.surrogate, samples, seed, None)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        burned = processes_cpu_s(burners) - burners0
        others = machine_busy_s() - machine0 - cpu - burned
    return {"threads": n, "wall_s": wall, "cpu_s": cpu, "decide_s": decide_s,
            "burners_cpu_s": burned, "others_cpu_s": others}  # fmt: skip


def autogroup() -> str | None:
    """``/proc/sys/kernel/sched_autogroup_enabled`` (1: the scheduler shares CPUs between
    sessions first; the burners run in this benchmark's session either way), None if absent."""
    path = Path("/proc/sys/kernel/sched_autogroup_enabled")
    return path.read_text().strip() if path.exists() else None


def start_burners(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_burners(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def time_choices(
    cfg: AlloopConfig,
    samples: list[SurrogateSample],
    seed: int,
    repeats: int,
    condition: str,
    burners: Sequence[int] = (),
) -> list[dict[str, object]]:
    """Rounds of each choice; an explicit count equal to the one the default just chose is not
    timed again: its row is the default's round (``"same_round_as": "default"``)."""
    rows: list[dict[str, object]] = []
    for rep in range(repeats):
        chosen: dict[str, object] = {}
        for threads in CHOICES:
            base = {"condition": condition, "choice": choice_name(threads), "repeat": rep}
            if threads is not None and chosen and chosen["threads"] == threads:
                row = {**chosen, **base, "same_round_as": "default"}
            else:
                row = {**base, **one_round(with_threads(cfg, threads), samples, seed, burners)}
            chosen = row if threads is None else chosen
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def median(rows: list[dict[str, object]], condition: str, choice: str, key: str) -> float:
    return statistics.median(
        float(r[key])  # type: ignore[arg-type]
        for r in rows
        if r["condition"] == condition and r["choice"] == choice
    )


def summarise(rows: list[dict[str, object]], old_default: int) -> list[dict[str, object]]:
    """Per choice: median idle and busy wall seconds, threads used, busy/idle."""
    out: list[dict[str, object]] = []
    for threads in CHOICES:
        name = choice_name(threads)
        idle, busy = median(rows, "idle", name, "wall_s"), median(rows, "busy", name, "wall_s")
        used = {c: sorted({int(r["threads"]) for r in rows  # type: ignore[call-overload]
                           if r["choice"] == name and r["condition"] == c})
                for c in ("idle", "busy")}  # fmt: skip
        out.append({"choice": name, "threads_idle": used["idle"], "threads_busy": used["busy"],
                    "idle_wall_s": idle, "busy_wall_s": busy, "busy_over_idle": busy / idle,
                    "idle_cpu_s": median(rows, "idle", name, "cpu_s"),
                    "busy_cpu_s": median(rows, "busy", name, "cpu_s"),
                    "idle_others_cpu_s": median(rows, "idle", name, "others_cpu_s"),
                    "busy_others_cpu_s": median(rows, "busy", name, "others_cpu_s")})  # fmt: skip
    same = next(s for s in out if s["choice"] == choice_name(old_default))
    out.append({**same, "choice": f"old default (cores ÷ workers = {old_default})",
                "threads_idle": [old_default], "threads_busy": [old_default]})  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", type=int, default=100)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--burners", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-load", type=float, default=None,
                   help="refuse to start above this 1-minute load average")  # fmt: skip
    p.add_argument("--note", default="", help="what else ran on the machine")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    if args.max_load is not None and load_before[0] > args.max_load:
        sys.exit(f"load average {load_before[0]:.2f} > --max-load {args.max_load}: the cores "
                 "are busy; run this on an idle machine")  # fmt: skip
    cfg = load_config(CONFIG)
    samples = fg_samples(args.labels, args.seed)
    old_default = campaign_threads(cfg, current=torch.get_num_threads())
    t0 = time.perf_counter()
    warm = one_round(cfg, samples, args.seed)
    print(json.dumps({"warm_up_with_featurisation": warm}), flush=True)
    free_idle = free_cores()
    rows = time_choices(cfg, samples, args.seed, args.repeats, "idle")
    # a kill (timeout, Ctrl-C) still runs the `finally` that stops the burners
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    burners = start_burners(args.burners)
    try:
        time.sleep(1.0)
        free_busy = free_cores()
        rows += time_choices(cfg, samples, args.seed, args.repeats, "busy",
                             [b.pid for b in burners])  # fmt: skip
    finally:
        stop_burners(burners)
    summary = summarise(rows, old_default)
    default = summary[0]
    results = {
        "benchmark": "one training round on idle and busy cores by thread choice",
        "command": shlex.join(["python", "benchmarks/loop/threads.py",
                               *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "usable_cores": usable_cores(), "torch": torch.__version__,
                    "torch_threads_at_start": torch.get_num_threads(),
                    "sched_autogroup": autogroup()},  # fmt: skip
        "note": args.note,
        "labels": args.labels, "repeats": args.repeats, "burners": args.burners,
        "seed": args.seed, "config": str(CONFIG.relative_to(REPO)),
        "surrogate": cfg.surrogate.model_dump(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "free_cores_idle": free_idle, "free_cores_busy": free_busy,
        "warm_up": warm, "total_s": time.perf_counter() - t0,
        "runs": rows, "summary": summary,
        "bar": BAR, "default_meets_bar": default["busy_over_idle"] <= BAR,  # type: ignore[operator]
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    md = render(results)
    args.out.with_suffix(".md").write_text(md)
    print(md)


def render(res: dict[str, object]) -> str:
    lines = [
        "# Thread control: one training round on idle and busy cores",
        "",
        f"Command: `{res['command']}`. One training round of the shipped surrogate "
        f"(`{res['config']}`'s defaults, SevenNet-0 features computed once before timing) on "
        f"{res['labels']} FG replay labels (seed {res['seed']}), through the campaign's "
        "`fit_ensemble` inside `threads_for`; busy = "
        f"{res['burners']} CPU-burning processes started by the benchmark on "
        f"{res['machine']['usable_cores']} cores; median of {res['repeats']} "  # type: ignore[index]
        f"round(s). Free cores read by the default: {res['free_cores_idle']:.2f} idle, "
        f"{res['free_cores_busy']:.2f} busy. Load average before: "
        f"{res['load_average_before'][0]:.2f}. {res['note']}",  # type: ignore[index]
        "",
        "| thread choice | threads idle / busy | idle wall s | busy wall s | busy / idle | "
        "CPU s idle / busy | other processes' CPU s idle / busy |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in res["summary"]:  # type: ignore[attr-defined]
        lines.append(
            f"| {s['choice']} | {','.join(map(str, s['threads_idle']))} / "
            f"{','.join(map(str, s['threads_busy']))} | {s['idle_wall_s']:.1f} | "
            f"{s['busy_wall_s']:.1f} | {s['busy_over_idle']:.2f}x | "
            f"{s['idle_cpu_s']:.0f} / {s['busy_cpu_s']:.0f} | "
            f"{s['idle_others_cpu_s']:.0f} / {s['busy_others_cpu_s']:.0f} |"
        )
    met = "meets" if res["default_meets_bar"] else "does not meet"
    lines += ["", f"The default {met} the bar: busy within {res['bar']}x of idle."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
