"""A force call in Dask workers against local worker processes, with every core busy labelling.

`dask_label_profile.py` (beside this script) times one worker alone; in a campaign, 2 workers on
2 cores leave no core free for the cluster's own periodic work (event-loop ticks, memory and
system monitors, the scheduler's work stealing), so it is taken from the labels. Here two
workers each time the same SevenNet-MF-0 energy+forces call (a Pt(111) slab with methanol, as
`dask_label_profile.py` does, thresholds fixed as every label fixes them, one torch thread)
``--calls`` times, in three places, repeated ``--reps`` times in turn:

* ``dask_now``: a 2-worker LocalCluster with the executor's `LOCAL_CLUSTER_CONFIG`;
* ``dask_profiler_off_only``: the same with only the profiler off (the config before the
  periodic work was slowed; Dask's defaults otherwise);
* ``processes``: two spawned processes (what the process-pool executor runs labels in).

Reports the median seconds per call in each worker and their mean per place.

Run (about 6 minutes; needs idle cores):
    .venv/bin/python benchmarks/loop/dask_contention.py
Writes benchmarks/results/dask_contention.json and .md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import warnings
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "results"


def time_calls(calls: int) -> float:
    """Median seconds of one energy+forces call, in the calling process (see docstring)."""
    import time

    import numpy as np
    import torch
    from ase.build import add_adsorbate, fcc111, molecule

    from alloop.oracles.allocator import keep_freed_memory
    from alloop.oracles.calculators import CalculatorSpec, build_calculator

    warnings.filterwarnings("ignore")
    keep_freed_memory()
    torch.set_num_threads(1)
    calculator = build_calculator(CalculatorSpec("sevennet-mf-0"))
    slab = fcc111("Pt", size=(3, 3, 4), vacuum=10.0)
    add_adsorbate(slab, molecule("CH3OH"), 2.0, "ontop")
    rng = np.random.default_rng(0)
    times = []
    for _ in range(calls):
        probe = slab.copy()
        probe.positions += rng.normal(0, 0.01, probe.positions.shape)
        probe.calc = calculator
        start = time.perf_counter()
        probe.get_potential_energy()
        probe.get_forces()
        times.append(time.perf_counter() - start)
    return statistics.median(times[3:])


def in_dask(config: dict[str, Any], calls: int) -> list[float]:
    import dask
    from distributed import Client, LocalCluster

    with (
        dask.config.set(config),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        client.wait_for_workers(2)
        return client.gather([client.submit(time_calls, calls, pure=False) for _ in range(2)])


def in_processes(calls: int) -> list[float]:
    with mp.get_context("spawn").Pool(2) as pool:
        return pool.map(time_calls, [calls, calls])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "dask_contention")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from alloop.oracles.dask_executor import LOCAL_CLUSTER_CONFIG, SLOWED_PERIODIC_WORK

    # the executor's config without the slowed periodic work (Dask's defaults for it)
    profiler_only = {
        k: v for k, v in LOCAL_CLUSTER_CONFIG.items() if k not in SLOWED_PERIODIC_WORK
    }
    load_before = os.getloadavg()
    places: dict[str, list[list[float]]] = {
        "dask_now": [], "dask_profiler_off_only": [], "processes": [],
    }  # fmt: skip
    for _ in range(args.reps):
        places["dask_now"].append(in_dask(LOCAL_CLUSTER_CONFIG, args.calls))
        places["dask_profiler_off_only"].append(in_dask(profiler_only, args.calls))
        places["processes"].append(in_processes(args.calls))
        print({k: v[-1] for k, v in places.items()}, flush=True)
    data = {
        "places": places,
        "meta": {"calls": args.calls, "reps": args.reps, "cpu_count": os.cpu_count(),
                 "load_average_before": load_before, "load_average_after": os.getloadavg()},
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=2))
    meta = data["meta"]
    lines = [
        "# A force call in 2 Dask workers vs 2 worker processes, both cores busy",
        "",
        f"Command: `.venv/bin/python benchmarks/loop/dask_contention.py --calls {args.calls} "
        f"--reps {args.reps}`; SevenNet-MF-0, Pt(111)+CH3OH, 1 torch thread per worker, "
        f"{meta['cpu_count']} CPUs; load average before {meta['load_average_before'][0]:.2f}, "
        f"after {meta['load_average_after'][0]:.2f}. Median s per call in each worker.",
        "",
        "| place | per repetition (worker 1, worker 2) | mean |",
        "|---|---|---|",
    ]
    for name, reps in places.items():
        shown = "; ".join(f"{a:.3f}, {b:.3f}" for a, b in reps)
        mean = statistics.mean(t for rep in reps for t in rep)
        lines.append(f"| {name} | {shown} | **{mean:.3f}** |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
