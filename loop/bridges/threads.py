"""How many torch and BLAS threads the campaign process uses, from one setting
(`executor.threads`, or `alloop run/resume --threads`), applied in a context that restores the
previous values (`alloop.oracles.calculators.thread_limit`), never for good.

Unset, it is decided at the start of every round (`threads_for`, as the engine calls it): the
cores this process may use divided by the executor's workers, capped at the cores that no other
process used during a 0.2 s look at ``/proc/stat`` (rounded, at least 1; where that cannot be
read, the share alone), and never more than torch has already (e.g. from ``OMP_NUM_THREADS``).
Why the cap: torch's OpenMP threads wait for each other at every operation, so one thread that
shares its core with another process stalls them all. Measured (`benchmarks/loop/threads.py`,
`benchmarks/results/threads.md`; 2 cores, 100 labels): one training round took 75 s idle with
2 threads; beside 2 CPU-burning processes, 398 s with 2 threads (cores ÷ workers, the default
before the cap: 5.3x idle) and 166 s with 1, the cap's choice (2.2x; the issue's 1.5x is out of
reach there: the burners leave the round at most one core's worth, 2.0x).

It covers training, scoring and in-process labelling; an MLIP job in a worker process keeps one
thread (`MLIPOracleSettings.torch_threads`, measured there), and so does in-process labelling
while the setting is unset.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager

from alloop.loop.config import AlloopConfig

#: how long the default watches the CPUs before choosing the threads of a round, s
IDLE_SAMPLE_S = 0.2
PROC_STAT = "/proc/stat"

#: per CPU: (all time, idle time) in clock ticks since boot
CpuTimes = Mapping[int, tuple[int, int]]


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, else the machine's count)."""
    return len(usable_cpus()) or max(1, os.cpu_count() or 1)


def usable_cpus() -> set[int]:
    """The ids of the CPUs this process may run on; empty where the OS does not say (macOS)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set()


def campaign_threads(
    cfg: AlloopConfig,
    cores: int | None = None,
    current: int | None = None,
    free: float | None = None,
) -> int:
    """`executor.threads` when set; else ``cores // executor.workers`` (at least 1), capped at
    ``free`` rounded (the cores no other process is using, `free_cores`; at least 1; None:
    unknown, no cap), and never more than the process has now (``current``: torch's count,
    which honours ``OMP_NUM_THREADS``), so the default only ever lowers it."""
    if cfg.executor.threads is not None:
        return cfg.executor.threads
    share = max(1, (usable_cores() if cores is None else cores) // cfg.executor.workers)
    if free is not None:
        share = min(share, max(1, int(free + 0.5)))
    return share if current is None else min(share, current)


def parse_cpu_times(text: str) -> dict[int, tuple[int, int]]:
    """Per-CPU (all, idle) clock ticks from the ``cpuN`` lines of ``/proc/stat``: all is user +
    nice + system + idle + iowait + irq + softirq + steal (guest time is inside user), idle is
    idle + iowait."""
    times: dict[int, tuple[int, int]] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or not name[3:].isdigit():
            continue
        ticks = [int(v) for v in rest.split()[:8]]
        ticks += [0] * (8 - len(ticks))
        times[int(name[3:])] = (sum(ticks), ticks[3] + ticks[4])
    return times


def cores_left(
    before: CpuTimes, after: CpuTimes, cpus: Collection[int], own_ticks: float = 0.0
) -> float | None:
    """How many of ``cpus`` no other process used between two `parse_cpu_times` readings:
    their number less the busy ticks, minus this process's own (``own_ticks``), per CPU of the
    window; None when no tick of those CPUs passed (nothing to go by)."""
    seen = [c for c in cpus if c in before and c in after]
    total = sum(after[c][0] - before[c][0] for c in seen)
    if not seen or total <= 0:
        return None
    idle = sum(after[c][1] - before[c][1] for c in seen)
    others = max(0.0, total - idle - own_ticks)
    return max(0.0, len(seen) - others / (total / len(seen)))


def free_cores(sample_s: float = IDLE_SAMPLE_S) -> float | None:
    """The cores of this process's CPUs that no other process used during ``sample_s`` seconds
    (Linux ``/proc/stat``); None where that cannot be read."""
    cpus = usable_cpus()
    try:
        with open(PROC_STAT) as fh:
            before = parse_cpu_times(fh.read())
        own0 = time.process_time()
        time.sleep(sample_s)
        with open(PROC_STAT) as fh:
            after = parse_cpu_times(fh.read())
        own_s = time.process_time() - own0
        ticks_per_s = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    return cores_left(before, after, cpus or set(after), own_s * ticks_per_s)


def labelling_threads(cfg: AlloopConfig) -> int:
    """Threads of an MLIP label: 1 in worker processes, and in process while `threads` is
    unset (the oracle's measured default); the setting once the user gives one."""
    if cfg.executor.kind == "inprocess" and cfg.executor.threads is not None:
        return cfg.executor.threads
    return 1


def with_threads(cfg: AlloopConfig, threads: int | None) -> AlloopConfig:
    """`cfg` with ``executor.threads`` set for one run (`--threads`; the stored config keeps
    its own); `cfg` itself when ``threads`` is None."""
    if threads is None:
        return cfg
    executor = cfg.executor.model_copy(update={"threads": threads})
    return cfg.model_copy(update={"executor": executor})


def decide_threads(cfg: AlloopConfig) -> int:
    """`campaign_threads` now, with the free cores looked at only when they could lower it."""
    import torch

    current = torch.get_num_threads()
    upper = campaign_threads(cfg, current=current)
    if cfg.executor.threads is not None or upper == 1:
        return upper
    return campaign_threads(cfg, current=current, free=free_cores())


@contextmanager
def threads_for(cfg: AlloopConfig) -> Iterator[int]:
    """Limit torch intra-op and BLAS/OpenMP threads to `decide_threads` inside the block; the
    previous values come back after it."""
    from alloop.oracles.calculators import thread_limit

    n = decide_threads(cfg)
    with thread_limit(n):
        yield n
