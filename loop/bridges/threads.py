"""How many torch and BLAS threads the campaign process uses, from one setting
(`executor.threads`, or `alloop run/resume --threads`), applied in a context that restores the
previous values (`alloop.oracles.calculators.thread_limit`), never for good.

Unset, it is the cores this process may use divided by the executor's workers (and never more
than torch has already, e.g. from ``OMP_NUM_THREADS``), so that the campaign process and its
workers together do not oversubscribe the machine. It covers
training, scoring and in-process labelling; an MLIP job in a worker process keeps one thread
(`MLIPOracleSettings.torch_threads`, measured there), and so does in-process labelling while
the setting is unset. Not measured: how close this default comes to the idle-core speed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from alloop.loop.config import AlloopConfig


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API (macOS)
        return max(1, os.cpu_count() or 1)


def campaign_threads(
    cfg: AlloopConfig, cores: int | None = None, current: int | None = None
) -> int:
    """`executor.threads` when set; else ``cores // executor.workers`` (at least 1), and never
    more than the process has now (``current``: torch's count, which honours
    ``OMP_NUM_THREADS``), so the default only ever lowers it."""
    if cfg.executor.threads is not None:
        return cfg.executor.threads
    share = max(1, (usable_cores() if cores is None else cores) // cfg.executor.workers)
    return share if current is None else min(share, current)


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


@contextmanager
def threads_for(cfg: AlloopConfig) -> Iterator[int]:
    """Limit torch intra-op and BLAS/OpenMP threads to `campaign_threads` inside the block;
    the previous values come back after it."""
    import torch

    from alloop.oracles.calculators import thread_limit

    n = campaign_threads(cfg, current=torch.get_num_threads())
    with thread_limit(n):
        yield n
