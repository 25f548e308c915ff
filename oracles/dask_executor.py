"""Run an oracle over many pairs on ``dask.distributed``: a LocalCluster, a scheduler address,
or a SLURM/PBS cluster through dask-jobqueue (see ``configs/dask-slurm.example.yaml``).

Results stream back as each pair finishes (``stream``, as the local executors). The oracle is
scattered once to every worker per oracle object (its model then stays loaded there between
pairs and rounds); at most one job per worker thread is in flight, so a job starts as soon as
it is submitted and ``job_timeout_s`` is measured from submission. A job over its limit is
cancelled, its worker restarted (the nanny kills the runaway computation) and it is recorded as a
``time_limit`` failure; a job whose worker dies is recorded as ``worker_died`` (our own
LocalCluster sets ``distributed.scheduler.allowed-failures`` to 0 so that a crashing pair is
not retried on the next worker; an external scheduler keeps its own setting).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from alloop.oracles.defaults import ORACLE_DEFAULTS
from alloop.oracles.errors import OracleConfigError
from alloop.oracles.executors import (
    Finished,
    OnStart,
    Pass,
    collect,
    died_result,
    flattened,
    label_guarded,
    oracle_fidelity,
    timeout_result,
)
from alloop.oracles.types import Oracle, OraclePair, OracleResult, failed_result

logger = logging.getLogger(__name__)

JOBQUEUE_KINDS: tuple[str, ...] = ("slurm", "pbs")
#: our own LocalCluster's settings: a job whose worker died is not retried by Dask (the
#: campaign records and re-runs it), and the workers start without the nanny's default
#: ``MALLOC_TRIM_THRESHOLD_=65536``: glibc then stops adapting its mmap threshold, so every
#: tensor buffer over 128 KiB is mapped and unmapped afresh (page faults on every
#: allocation), which slowed MLIP labels in Dask workers (issue 19;
#: ``benchmarks/loop/dask_label_profile.py``). Their OMP/MKL/OpenBLAS=1 defaults stay. The
#: workers' statistical profiler is off: every 10 ms it takes the GIL from the label's thread to
#: walk its stack, and a label is mostly Python between small tensor operations. The cluster's
#: other periodic work runs less often (event-loop tick 20 ms -> 1 s, memory monitor 100 ms ->
#: 1 s, system monitor 500 ms -> 5 s) and nothing is stolen (jobs go to free slots one at a
#: time): with every core busy labelling, that work is taken from the labels (6 % per force
#: call with 2 workers on 2 cores; docs/benchmarks.md).
SLOWED_PERIODIC_WORK: dict[str, Any] = {
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.scheduler.work-stealing": False,
}
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    **SLOWED_PERIODIC_WORK,
}
#: how often a stream asks the scheduler how many worker threads there are, s (a worker that
#: joins is used this much later at most; one that leaves fails its jobs at once)
THREADS_CHECK_S = 1.0


def _label_task(oracle: Oracle, pair: OraclePair) -> OracleResult:
    return label_guarded(oracle, pair)


class DaskExecutor:
    """Label pairs on a Dask cluster (see module docstring).

    Give exactly one of: ``address`` (an existing scheduler, ``"tcp://host:8786"``), ``cluster``
    (any dask cluster object, e.g. from :func:`jobqueue_cluster`), or neither, which starts a
    ``LocalCluster`` of ``workers`` single-threaded worker processes on 127.0.0.1.
    ``owns_cluster``: close the given ``cluster`` with the executor (a jobqueue cluster built
    from a campaign config).
    """

    def __init__(
        self,
        address: str | None = None,
        cluster: Any | None = None,
        workers: int = ORACLE_DEFAULTS.workers,
        job_timeout_s: float | None = None,
        memory_limit: str = "4GiB",
        owns_cluster: bool = False,
    ) -> None:
        import dask
        from distributed import Client, LocalCluster

        if address is not None and cluster is not None:
            raise OracleConfigError("give a scheduler address or a cluster, not both")
        if job_timeout_s is not None and job_timeout_s <= 0:
            raise OracleConfigError(f"job_timeout_s must be > 0 or None, got {job_timeout_s}")
        if workers < 1:
            raise OracleConfigError(f"workers must be >= 1, got {workers}")
        self.job_timeout_s = job_timeout_s
        self._own_cluster: Any = None
        self._scattered: tuple[Oracle, Any] | None = None
        self._retired: list[Any] = []  # earlier copies of the oracle, see `_rescatter`
        if address is not None:
            self.client = Client(address)
        elif cluster is not None:
            self.client = Client(cluster)
            self._own_cluster = cluster if owns_cluster else None
        else:
            with dask.config.set(LOCAL_CLUSTER_CONFIG):
                self._own_cluster = LocalCluster(
                    n_workers=workers,
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

    def _threads(self) -> int:
        """Worker threads the cluster has now (0 while batch jobs wait in the queue)."""
        return sum(self.client.nthreads().values())

    def map(self, oracle: Oracle, pairs: Sequence[OraclePair]) -> list[OracleResult]:
        """One result per pair, in order; failures are results (see module docstring)."""
        return collect(self.stream(oracle, pairs), len(pairs))

    def _scatter(self, oracle: Oracle) -> Any:
        """The oracle on every worker, sent once per oracle object (and again after a worker
        was lost or restarted, which may have taken the only copy)."""
        if self._scattered is None or self._scattered[0] is not oracle:
            future = self.client.scatter(oracle, broadcast=True, hash=False)
            self._scattered = (oracle, future)
        return self._scattered[1]

    def _rescatter(self) -> None:
        """Scatter the oracle again at the next submission (a lost or restarted worker may have
        taken a copy), keeping the old copy referenced until the stream ends: dropping the last
        reference would make Dask cancel every running job that uses it."""
        if self._scattered is not None:
            self._retired.append(self._scattered[1])
        self._scattered = None

    def stream(
        self, oracle: Oracle, pairs: Sequence[OraclePair], on_start: OnStart | None = None
    ) -> Iterator[tuple[int, OracleResult]]:
        """``(index, result)`` as each pair finishes (``passes`` flattened)."""
        return flattened(self.passes(oracle, pairs), on_start)

    def passes(self, oracle: Oracle, pairs: Sequence[OraclePair]) -> Iterator[Pass]:
        """Every pass: the pairs found finished and the pairs submitted when the caller goes
        on; at most one job per worker thread in flight, so a start and the time limit count
        from when a pair really starts.

        Each pass of the loop makes few round trips to the scheduler, whatever the number of
        jobs: the results of every job that finished are gathered in one call, and the
        cluster's thread count is asked again only every `THREADS_CHECK_S` (or while it has
        none). Measured with 10,000 tiny jobs: `benchmarks/results/scheduler_scale.md`."""
        from distributed import wait

        if not pairs:
            return
        pending = deque(range(len(pairs)))
        running: dict[Any, tuple[int, float]] = {}
        threads, asked = 0, -math.inf
        finished: Finished = []
        try:
            while True:
                if not threads or time.monotonic() - asked > THREADS_CHECK_S:
                    threads, asked = self._threads(), time.monotonic()
                if not threads:  # no worker yet (batch jobs queued): no job's clock runs
                    running = {f: (i, time.monotonic()) for f, (i, _) in running.items()}
                free = max(1, threads) - len(running)
                handed = [pending.popleft() for _ in range(min(free, len(pending)))]
                if handed or finished:
                    yield Pass(handed, finished)
                    finished = []
                if not handed and not running:
                    return
                for index in handed:
                    future = self.client.submit(
                        _label_task, self._scatter(oracle), pairs[index], pure=False
                    )
                    running[future] = (index, time.monotonic())
                # nothing finishing within the poll interval is normal: check the deadlines
                with contextlib.suppress(TimeoutError):
                    wait(list(running), timeout=0.5, return_when="FIRST_COMPLETED")
                done = [f for f in running if f.done()]
                finished = [
                    (running.pop(future)[0], result)
                    for future, result in self._collect_all(done, oracle, pairs, running)
                ]
                limit = self.job_timeout_s or 0.0
                for future in [f for f in running if self._overdue(running[f][1])]:
                    index = running.pop(future)[0]
                    self._stop(future)
                    finished.append(
                        (index, timeout_result(oracle, pairs[index], limit, "a dask worker"))
                    )
        finally:
            for future in running:  # the caller stopped early: nobody waits for these
                future.cancel()
            self._retired.clear()

    def _overdue(self, submitted: float) -> bool:
        return self.job_timeout_s is not None and time.monotonic() - submitted > self.job_timeout_s

    def _collect_all(
        self,
        done: list[Any],
        oracle: Oracle,
        pairs: Sequence[OraclePair],
        running: dict[Any, tuple[int, float]],
    ) -> list[tuple[Any, OracleResult]]:
        """The results of finished futures, fetched in one call; failures one by one."""
        status = {f: f.status for f in done}  # read once: a status can change meanwhile
        finished = [f for f in done if status[f] == "finished"]
        results = self.client.gather(finished, errors="skip") if finished else []
        if len(results) != len(finished):  # a result vanished with its worker: fetch each
            results = [self._collect(f, oracle, pairs[running[f][0]]) for f in finished]
        out = list(zip(finished, results, strict=True))
        out += [(f, self._collect(f, oracle, pairs[running[f][0]]))
                for f in done if status[f] != "finished"]  # fmt: skip
        return out

    def _collect(self, future: Any, oracle: Oracle, pair: OraclePair) -> OracleResult:
        from distributed.scheduler import KilledWorker

        if future.status == "finished":
            try:
                return future.result()
            except Exception as exc:  # noqa: BLE001 - lost with its worker since: run it again
                return died_result(oracle, pair, f"its result was lost: {exc!r}")
        if future.status == "cancelled":  # its input went away with a worker
            self._rescatter()
            return died_result(oracle, pair, "dask cancelled the job")
        error = future.exception()
        if isinstance(error, KilledWorker):
            self._rescatter()
            return died_result(oracle, pair, f"dask reported KilledWorker: {error}")
        # label_guarded cannot raise, so this is an infrastructure error (e.g. unpicklable pair)
        return failed_result(
            pair.key,
            oracle_fidelity(oracle),
            "unexpected_error",
            f"dask task error {type(error).__name__}: {error}",
        )

    def _stop(self, future: Any) -> None:
        """Cancel a runaway job and restart the worker computing it."""
        holders = [w for w, keys in self.client.processing().items() if future.key in keys]
        future.cancel()
        self._rescatter()
        if holders:
            logger.warning(
                "restarting dask worker(s) %s to stop a job over its time limit", holders
            )
            try:
                self.client.restart_workers(holders, timeout=60, raise_for_error=False)
            except (TimeoutError, OSError) as exc:
                logger.warning("could not restart %s: %s", holders, exc)

    def close(self) -> None:
        """Close the client, and the cluster if this executor started or owns it."""
        self.client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()


# JobQueueCluster/Job arguments the executor sets itself, or that make no sense in a config
_JOBQUEUE_RESERVED = frozenset(
    {"self", "scheduler", "name", "job_cls", "loop", "asynchronous", "n_workers", "job_kwargs",
     "base_class_kwargs", "config_name", "kwargs"}
)  # fmt: skip


def _jobqueue_classes(kind: str) -> tuple[Any, Any]:
    if kind not in JOBQUEUE_KINDS:
        raise OracleConfigError(f"jobqueue kind {kind!r} is not one of {', '.join(JOBQUEUE_KINDS)}")
    try:
        from dask_jobqueue import PBSCluster, SLURMCluster
        from dask_jobqueue.pbs import PBSJob
        from dask_jobqueue.slurm import SLURMJob
    except ImportError as exc:
        raise OracleConfigError(
            f"a {kind} cluster needs dask-jobqueue (pip install 'alloop[dist]'): {exc}"
        ) from exc
    return (SLURMCluster, SLURMJob) if kind == "slurm" else (PBSCluster, PBSJob)


def jobqueue_keys(kind: str) -> frozenset[str]:
    """The keyword arguments a ``kind`` ("slurm"/"pbs") cluster takes from a config: those of
    its job class, of every job and of the cluster."""
    import inspect

    from dask_jobqueue.core import Job, JobQueueCluster

    cluster_cls, job_cls = _jobqueue_classes(kind)
    names: set[str] = set()
    for cls in (job_cls, Job, JobQueueCluster):
        names |= set(inspect.signature(cls.__init__).parameters)
    return frozenset(names - _JOBQUEUE_RESERVED)


def jobqueue_cluster(kind: str, jobs: int, cluster: dict[str, Any]) -> Any:
    """A dask-jobqueue ``kind`` cluster built from ``cluster`` (keyword arguments of
    ``SLURMCluster``/``PBSCluster``) that keeps ``jobs`` batch jobs running: one that ends
    (walltime, preemption) is requested again (0: none, e.g. to render ``job_script()``). Its
    scheduler, in this process, does not re-run a job whose worker died: the job comes back as
    a ``worker_died`` result, which the campaign records and runs again on resume. Bad settings
    are one :class:`OracleConfigError`."""
    import dask

    unknown = sorted(set(cluster) - jobqueue_keys(kind))
    if unknown:
        raise OracleConfigError(f"unknown {kind} cluster key(s) {unknown}")
    if not isinstance(jobs, int) or jobs < 0:
        raise OracleConfigError(f"jobs must be an integer >= 0, got {jobs!r}")
    cls, _ = _jobqueue_classes(kind)
    try:
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            made = cls(**cluster)
    except (TypeError, ValueError) as exc:
        raise OracleConfigError(f"invalid {cls.__name__} settings: {exc}") from exc
    if jobs:
        made.adapt(minimum_jobs=jobs, maximum_jobs=jobs)
    return made
