"""Why is a label slower inside a Dask worker? The same MLIP oracle, the same pairs, timed phase
by phase in this process and inside a 1-worker Dask LocalCluster built by the campaign's own
executor (`DaskExecutor`, the oracle scattered to the worker as a campaign does).

Per place: the thread settings the label runs under (torch intra-op and inter-op threads, the
BLAS and OpenMP pools threadpoolctl sees, OMP_* variables, the thread's name), whether the
allocator's thresholds are fixed (`alloop.oracles.allocator`, as every label does first) and, in
a worker, whether Dask's statistical profiler runs; the seconds to build the model, the median
seconds of one energy+forces call on a fixed slab+adsorbate structure (under the oracle's own
thread limit, as inside a label) with the minor page faults it caused (a count that does not
depend on the machine's load), and each label's wall seconds with its force calls.

Places, in this order: ``inprocess_glibc`` (this process, ``ALLOOP_MALLOC=glibc``: glibc's own
thresholds); ``dask`` (a worker as the executor starts it, `LOCAL_CLUSTER_CONFIG`: profiler
off, slowed periodic work; thresholds fixed); ``dask_profiler`` (the profiler on, as before it
was turned off); ``dask_glibc`` (glibc's thresholds); ``dask_before`` (both, as before this
change); ``inprocess`` (this process with the thresholds fixed, last: once fixed they stay fixed
in a process). The committed results predate the slowed periodic work (docs/benchmarks.md).

Run (about 15 minutes; needs idle cores for the timings to mean anything):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/loop/dask_label_profile.py
Writes benchmarks/results/dask_label_profile.json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alloop.loop.bridges.oracle import build_oracle, oracle_pairs
from alloop.loop.bridges.surrogate import PoolView
from alloop.loop.config import parse_config
from alloop.loop.face.commands import create_campaign

RESULTS = Path(__file__).resolve().parents[1] / "results"
ENV_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_",
            "ALLOOP_MALLOC")  # fmt: skip


def config(calculator: str) -> dict[str, Any]:
    """The throughput benchmark's campaign (`campaign_throughput.py`, beside this script): its
    pool and search settings."""
    from campaign_throughput import campaign_config

    data = campaign_config(calculator, 12, 0, "inprocess", 1)
    data["campaign"]["name"] = "profile"
    return data


def profile_oracle(oracle: Any, pairs: list[Any], n_calls: int) -> dict[str, Any]:
    """Phase timings of ``oracle`` in the calling process and thread (see module docstring)."""
    import dask
    import numpy as np
    import torch
    from threadpoolctl import threadpool_info

    from alloop.oracles.allocator import keep_freed_memory
    from alloop.oracles.calculators import thread_limit

    out: dict[str, Any] = {
        "allocator_fixed": keep_freed_memory(),  # what every label does first
        "worker_profiler": dask.config.get("distributed.worker.profile.enabled", None),
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
        "env": {k: os.environ.get(k) for k in ENV_KEYS},  # as the process started
        "torch_threads_outside": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }
    t0 = time.perf_counter()
    calculator = oracle.primary.calculator
    out["model_build_s"] = time.perf_counter() - t0
    atoms = pairs[0].slab.copy()
    ads = pairs[0].adsorbate.atoms
    if ads is not None:
        ads = ads.copy()
        ads.translate(atoms.positions[:, :].max(axis=0) - ads.positions.min(axis=0) + [0, 0, 2])
        atoms += ads
    rng = np.random.default_rng(0)
    times: list[float] = []
    minflt: list[int] = []
    with thread_limit(oracle.settings.torch_threads):
        out["torch_threads_inside"] = torch.get_num_threads()
        out["blas_pools_inside"] = [
            {"api": p["internal_api"], "threads": p["num_threads"]} for p in threadpool_info()
        ]
        for _ in range(n_calls):
            probe = atoms.copy()
            probe.positions += rng.normal(0, 0.01, probe.positions.shape)
            probe.calc = calculator
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t = time.perf_counter()
            probe.get_potential_energy()
            probe.get_forces()
            times.append(time.perf_counter() - t)
            minflt.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
    out["force_call_s_median"] = statistics.median(times)
    out["minor_faults_per_force_call_median"] = statistics.median(minflt)
    out["force_call_s_all"] = times
    labels = []
    for pair in pairs:
        t = time.perf_counter()
        result = oracle.label(pair)
        prov = result.provenance
        labels.append({
            "pair": pair.key, "status": result.status, "wall_s": time.perf_counter() - t,
            "oracle_wall_s": prov.get("wall_s"), "force_calls": prov.get("force_calls"),
            "slab_cache_hit": prov.get("slab_cache_hit"),
        })  # fmt: skip
    out["labels"] = labels
    for label in labels:
        calls = label["force_calls"] or 0
        label["s_per_force_call"] = label["wall_s"] / calls if calls else None
    return out


@contextlib.contextmanager
def _environ(**values: str | None) -> Iterator[None]:
    """These environment variables set (None: unset) inside the block, restored after it."""
    before = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        yield
    finally:
        for key, value in before.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


@contextlib.contextmanager
def _patched_config(override: dict[str, Any]) -> Iterator[None]:
    """`LOCAL_CLUSTER_CONFIG` with ``override`` on top, for one executor."""
    from alloop.oracles import dask_executor

    before = dict(dask_executor.LOCAL_CLUSTER_CONFIG)
    dask_executor.LOCAL_CLUSTER_CONFIG.update(override)
    try:
        yield
    finally:
        dask_executor.LOCAL_CLUSTER_CONFIG.clear()
        dask_executor.LOCAL_CLUSTER_CONFIG.update(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calculator", default="sevennet-mf-0")
    parser.add_argument("--labels", type=int, default=3)
    parser.add_argument("--force-calls", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS / "dask_label_profile")
    args = parser.parse_args()
    from alloop.oracles.dask_executor import DaskExecutor

    where = Path(tempfile.mkdtemp(prefix="alloop-profile-"))
    cfg = parse_config(config(args.calculator))
    load_before = os.getloadavg()
    with create_campaign(cfg, str(where / "profile.alloop")) as store:
        pool = PoolView.load(store)
        atoms = {k: store.adsorbate_atoms(k) for k in pool.adsorbates}
        pairs = oracle_pairs(pool.pairs, pool.slabs, pool.adsorbates, atoms)[: args.labels]
        cache = where / "cache"
    oracle = build_oracle(cfg, cache)
    # warm the slab and gas references once, so every place below times the same work
    oracle.label(pairs[0])
    places: dict[str, Any] = {}
    with _environ(ALLOOP_MALLOC="glibc"):
        places["inprocess_glibc"] = profile_oracle(oracle, pairs, args.force_calls)
    print(json.dumps(places["inprocess_glibc"], indent=1), flush=True)
    profiler_on = {"distributed.worker.profile.enabled": True}
    variants = (
        ("dask", {}, None),
        ("dask_profiler", profiler_on, None),
        ("dask_glibc", {}, "glibc"),
        ("dask_before", profiler_on, "glibc"),
    )
    for name, override, malloc in variants:
        # a spawned worker inherits this process's environment
        with (
            _environ(ALLOOP_MALLOC=malloc),
            _patched_config(override),
            DaskExecutor(workers=1) as executor,
        ):
            future = executor.client.submit(
                profile_oracle, executor._scatter(oracle), pairs, args.force_calls, pure=False
            )
            places[name] = future.result()
        print(json.dumps(places[name], indent=1), flush=True)
    places["inprocess"] = profile_oracle(oracle, pairs, args.force_calls)
    meta = {"calculator": args.calculator, "labels": len(pairs), "cpu_count": os.cpu_count(),
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}  # fmt: skip
    write(args.out, {"places": places, "meta": meta})


def write(out: Path, data: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(data, indent=2))
    meta = data["meta"]
    lines = [
        "# One label in-process vs inside a Dask worker",
        "",
        f"Command: `OMP_NUM_THREADS={meta['omp_num_threads']} .venv/bin/python "
        f"benchmarks/loop/dask_label_profile.py`; {meta['calculator']}, {meta['labels']} labels; "
        f"load average before {meta['load_average_before'][0]:.2f}, after "
        f"{meta['load_average_after'][0]:.2f}.",
        "",
        "| place | allocator thresholds | worker profiler | thread | torch threads in label "
        "(outside) | BLAS pools | model build s | force call s (median) | minor page faults per "
        "force call | label s | s per force call |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, p in data["places"].items():
        pools = ", ".join(f"{b['api']}={b['threads']}" for b in p["blas_pools_inside"])
        label_s = statistics.mean(lab["wall_s"] for lab in p["labels"])
        per_call = statistics.mean(
            lab["s_per_force_call"] for lab in p["labels"] if lab["s_per_force_call"]
        )
        lines.append(
            f"| {name} | {'fixed' if p['allocator_fixed'] else 'glibc'} | "
            f"{'on' if p['worker_profiler'] and name.startswith('dask') else 'off'} | "
            f"{p['thread']} | "
            f"{p['torch_threads_inside']} "
            f"({p['torch_threads_outside']}) | {pools} | {p['model_build_s']:.2f} | "
            f"{p['force_call_s_median']:.3f} | {p['minor_faults_per_force_call_median']:.0f} | "
            f"{label_s:.1f} | {per_call:.3f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
