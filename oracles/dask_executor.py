"""Run an oracle over many pairs on ``dask.distributed``: a LocalCluster, a scheduler address,
or a SLURM/PBS cluster through dask-jobqueue (see ``configs/dask-slurm.example.yaml``).

The oracle is scattered once to every worker (its model then stays loaded there between
pairs); at most one job per worker thread is in flight, so a job starts as soon as it is
submitted and ``job_timeout_s`` is measured from submission. A job over its limit is cancelled,
its worker restarted (the nanny kills the runaway computation) and it is recorded as a
``time_limit`` failure; a job whose worker dies is recorded as ``worker_died`` (our own
LocalCluster sets ``distributed.scheduler.allowed-failures`` to 0 so that a crashing pair is
not retried on the next worker; an external scheduler keeps its own setting).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alloop.oracles.errors import OracleConfigError
from alloop.oracles.executors import (
    died_result,
    label_guarded,
    oracle_fidelity,
    timeout_result,
)
from alloop.oracles.types import Oracle, OraclePair, OracleResult, failed_result

logger = logging.getLogger(__name__)

JOBQUEUE_KINDS: tuple[str, ...] = ("slurm", "pbs")


def _label_task(oracle: Oracle, pair: OraclePair) -> OracleResult:
    return label_guarded(oracle, pair)


class DaskExecutor:
    """Label pairs on a Dask cluster (see module docstring).

    Give exactly one of: ``address`` (an existing scheduler, ``"tcp://host:8786"``), ``cluster``
    (any dask cluster object, e.g. from :func:`jobqueue_cluster`), or neither, which starts a
    ``LocalCluster`` of ``n_workers`` single-threaded worker processes on 127.0.0.1.
    """

    def __init__(
        self,
        address: str | None = None,
        cluster: Any | None = None,
        n_workers: int = 2,
        job_timeout_s: float | None = None,
        memory_limit: str = "4GiB",
    ) -> None:
        import dask
        from distributed import Client, LocalCluster

        if address is not None and cluster is not None:
            raise OracleConfigError("give a scheduler address or a cluster, not both")
        if job_timeout_s is not None and job_timeout_s <= 0:
            raise OracleConfigError(f"job_timeout_s must be > 0 or None, got {job_timeout_s}")
        if n_workers < 1:
            raise OracleConfigError(f"n_workers must be >= 1, got {n_workers}")
        self.job_timeout_s = job_timeout_s
        self._own_cluster = None
        if address is not None:
            self.client = Client(address)
        elif cluster is not None:
            self.client = Client(cluster)
        else:
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self._own_cluster = LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    memory_limit=memory_limit,
                )
            self.client = Client(self._own_cluster)

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address}, job_timeout_s={self.job_timeout_s})"

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _slots(self) -> int:
        threads = self.client.nthreads()
        return max(1, sum(threads.values()))

    def map(self, oracle: Oracle, pairs: Sequence[OraclePair]) -> list[OracleResult]:
        """One result per pair, in order; failures are results (see module docstring)."""
        from distributed import wait

        if not pairs:
            return []
        scattered = self.client.scatter(oracle, broadcast=True, hash=False)
        results: list[OracleResult | None] = [None] * len(pairs)
        pending = list(range(len(pairs)))
        running: dict[Any, tuple[int, float]] = {}
        while pending or running:
            while pending and len(running) < self._slots():
                index = pending.pop(0)
                future = self.client.submit(_label_task, scattered, pairs[index], pure=False)
                running[future] = (index, time.monotonic())
            # nothing finishing within the poll interval is normal: check the deadlines below
            with contextlib.suppress(TimeoutError):
                wait(list(running), timeout=0.5, return_when="FIRST_COMPLETED")
            for future in list(running):
                index, submitted = running[future]
                if future.done():
                    results[index] = self._collect(future, oracle, pairs[index])
                    del running[future]
                elif (
                    self.job_timeout_s is not None
                    and time.monotonic() - submitted > self.job_timeout_s
                ):
                    results[index] = timeout_result(
                        oracle, pairs[index], self.job_timeout_s, "a dask worker"
                    )
                    self._stop(future)
                    del running[future]
        return [r for r in results if r is not None]

    def _collect(self, future: Any, oracle: Oracle, pair: OraclePair) -> OracleResult:
        from distributed.scheduler import KilledWorker

        if future.status == "finished":
            return future.result()
        exc = future.exception()
        if isinstance(exc, KilledWorker):
            return died_result(oracle, pair, f"dask reported KilledWorker: {exc}")
        # label_guarded cannot raise, so this is an infrastructure error (e.g. unpicklable pair)
        return failed_result(
            pair.key,
            oracle_fidelity(oracle),
            "unexpected_error",
            f"dask task error {type(exc).__name__}: {exc}",
        )

    def _stop(self, future: Any) -> None:
        """Cancel a runaway job and restart the worker computing it."""
        holders = [w for w, keys in self.client.processing().items() if future.key in keys]
        future.cancel()
        if holders:
            logger.warning(
                "restarting dask worker(s) %s to stop a job over its time limit", holders
            )
            try:
                self.client.restart_workers(holders, timeout=60, raise_for_error=False)
            except (TimeoutError, OSError) as exc:
                logger.warning("could not restart %s: %s", holders, exc)

    def close(self) -> None:
        """Close the client, and the LocalCluster if this executor started it."""
        self.client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()


def jobqueue_cluster(config_path: Path | str) -> Any:
    """A dask-jobqueue cluster (SLURM or PBS) from a YAML file like
    ``configs/dask-slurm.example.yaml``: ``kind``, ``jobs`` (how many batch jobs to request) and
    ``cluster`` (keyword arguments of ``SLURMCluster``/``PBSCluster``). Unknown keys are errors."""
    import yaml

    path = Path(config_path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise OracleConfigError(f"cannot read dask cluster config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise OracleConfigError(f"{path}: expected a mapping at the top level")
    unknown = sorted(set(data) - {"kind", "jobs", "cluster"})
    if unknown:
        raise OracleConfigError(f"{path}: unknown keys {unknown}; valid: cluster, jobs, kind")
    kind = data.get("kind")
    if kind not in JOBQUEUE_KINDS:
        raise OracleConfigError(f"{path}: kind {kind!r} is not one of {', '.join(JOBQUEUE_KINDS)}")
    jobs = data.get("jobs", 1)
    if not isinstance(jobs, int) or jobs < 0:
        raise OracleConfigError(f"{path}: jobs must be an integer >= 0, got {jobs!r}")
    from dask_jobqueue import PBSCluster, SLURMCluster

    cls = SLURMCluster if kind == "slurm" else PBSCluster
    try:
        cluster = cls(**(data.get("cluster") or {}))
    except (TypeError, ValueError) as exc:
        raise OracleConfigError(f"{path}: invalid {cls.__name__} settings: {exc}") from exc
    if jobs:
        cluster.scale(jobs=jobs)
    return cluster
