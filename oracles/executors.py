"""Run an oracle over many pairs: in this process, or in a pool of local worker processes.

Every executor streams: ``stream(oracle, pairs, on_start)`` yields ``(index, result)`` for each
pair as soon as it finishes (completion order), keeps every worker busy while pairs remain (no
barrier between pairs) and calls ``on_start(index)`` when a pair is handed to a worker.
``passes(oracle, pairs)`` is the same stream a pass of the executor's loop at a time: each
:class:`Pass` lists the pairs the pass found finished and the pairs it hands to workers once the
caller asks for the next pass, so that a caller can record both in one transaction before any of
those pairs runs (``stream`` is ``passes`` flattened). ``map`` collects the stream into input order.

No executor raises for a pair: a job over its ``job_timeout_s`` becomes a ``failed`` result of
kind ``time_limit``, a worker process that dies (killed, segfault, out of memory, its batch job
ended) a ``failed`` result of kind ``worker_died`` (:data:`RETRYABLE_FAILURES`: the campaign
records the job as failed and runs it again on resume), and the pool starts a fresh worker for
the remaining pairs.

Workers live as long as the executor (until ``close``): the oracle is sent to a worker once and
its model stays loaded across ``stream`` calls and rounds; a different oracle object is sent
again. A job that overruns its limit is stopped by terminating its worker, the only way to
interrupt a force call that does not return. The Dask executor is in
:mod:`alloop.oracles.dask_executor`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from alloop.oracles.allocator import keep_freed_memory
from alloop.oracles.defaults import ORACLE_DEFAULTS
from alloop.oracles.errors import OracleConfigError, OracleTimeoutError, WorkerDiedError
from alloop.oracles.guard import guarded_label
from alloop.oracles.types import Oracle, OraclePair, OracleResult, failed_result

logger = logging.getLogger(__name__)

EXECUTOR_KINDS: tuple[str, ...] = ("inprocess", "process", "dask")
#: failure kinds that say nothing about the pair (its worker went away): worth running again
RETRYABLE_FAILURES: frozenset[str] = frozenset({WorkerDiedError.kind})

OnStart = Callable[[int], None]
#: pairs (by index) and their results
Finished = list[tuple[int, OracleResult]]


@dataclass(frozen=True)
class Pass:
    """One pass of an executor's loop: ``finished``, the pairs it found finished, and
    ``starting``, the pairs it hands to workers when the caller asks for the next pass."""

    starting: list[int]
    finished: Finished


class Executor(Protocol):
    """Labels pairs with an oracle (see the module docstring)."""

    def stream(
        self, oracle: Oracle, pairs: Sequence[OraclePair], on_start: OnStart | None = None
    ) -> Iterator[tuple[int, OracleResult]]: ...  # pragma: no cover - protocol

    def passes(
        self, oracle: Oracle, pairs: Sequence[OraclePair]
    ) -> Iterator[Pass]: ...  # pragma: no cover - protocol

    def map(
        self, oracle: Oracle, pairs: Sequence[OraclePair]
    ) -> list[OracleResult]: ...  # pragma: no cover - protocol

    def close(self) -> None: ...  # pragma: no cover - protocol


def flattened(
    passes: Iterator[Pass], on_start: OnStart | None
) -> Iterator[tuple[int, OracleResult]]:
    """An executor's ``stream``: its ``passes``, one pair at a time (``on_start`` before the
    pass that hands a pair out goes on)."""
    for step in passes:
        yield from step.finished
        if on_start is not None:
            for index in step.starting:
                on_start(index)


def collect(stream: Iterator[tuple[int, OracleResult]], n: int) -> list[OracleResult]:
    """A stream's ``n`` results in input order."""
    results: list[OracleResult | None] = [None] * n
    for index, result in stream:
        results[index] = result
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:  # an executor bug, not a pair's failure
        raise RuntimeError(f"executor returned no result for pair indices {missing}")
    return [r for r in results if r is not None]


def is_retryable(result: OracleResult) -> bool:
    """Whether a failed result is the worker's fault, not the pair's (see module docstring)."""
    return result.status == "failed" and result.provenance.get("failure_kind") in (
        RETRYABLE_FAILURES
    )


def oracle_fidelity(oracle: Oracle) -> Any:
    """The fidelity an oracle's failed results carry (``"mlip"`` if it does not say)."""
    return getattr(oracle, "fidelity", "mlip")


def label_guarded(oracle: Oracle, pair: OraclePair) -> OracleResult:
    """``oracle.label(pair)`` through the guard, so even a non-conforming oracle cannot raise.

    Every executor labels through here, in whatever process runs the label: that process's
    allocator keeps freed buffers for the next force call first (`alloop.oracles.allocator`).
    """
    keep_freed_memory()
    return guarded_label(oracle.label, pair, oracle_fidelity(oracle), {})


def timeout_result(oracle: Oracle, pair: OraclePair, limit_s: float, where: str) -> OracleResult:
    return failed_result(
        pair.key,
        oracle_fidelity(oracle),
        OracleTimeoutError.kind,
        f"job exceeded job_timeout_s={limit_s} on {where}; worker stopped",
        wall_s=limit_s,
    )


def died_result(oracle: Oracle, pair: OraclePair, detail: str) -> OracleResult:
    return failed_result(
        pair.key,
        oracle_fidelity(oracle),
        WorkerDiedError.kind,
        f"worker died while labelling the pair ({detail})",
    )


class InProcessExecutor:
    """Label pairs one after another in this process (no hard time limit: the oracle's own
    ``time_limit_s`` is checked between optimiser steps)."""

    def __repr__(self) -> str:
        return "InProcessExecutor()"

    def stream(
        self, oracle: Oracle, pairs: Sequence[OraclePair], on_start: OnStart | None = None
    ) -> Iterator[tuple[int, OracleResult]]:
        return flattened(self.passes(oracle, pairs), on_start)

    def passes(self, oracle: Oracle, pairs: Sequence[OraclePair]) -> Iterator[Pass]:
        """A pass per pair: the previous pair's result and this pair's start, recorded by the
        caller before this pair runs in this very process (a crash of the process leaves it
        marked as started)."""
        finished: Finished = []
        for index, pair in enumerate(pairs):
            yield Pass([index], finished)
            finished = [(index, label_guarded(oracle, pair))]
        if finished:
            yield Pass([], finished)

    def map(self, oracle: Oracle, pairs: Sequence[OraclePair]) -> list[OracleResult]:
        return collect(self.stream(oracle, pairs), len(pairs))

    def close(self) -> None:
        """Nothing to release."""


def _worker_main(conn: Connection) -> None:
    """Worker loop: ``("oracle", oracle)`` sets the oracle, ``("job", index, pair)`` sends back
    ``("started", index)`` and then ``("result", index, result)``, ``None`` stops it."""
    # Ctrl-C at a terminal reaches the whole process group: the parent handles it (and stops
    # its workers); a worker would only print a KeyboardInterrupt traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    oracle: Oracle | None = None
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent is gone (killed): nothing left to do
            return
        if message is None:
            return
        if message[0] == "oracle":
            oracle = message[1]
            continue
        _, index, pair = message
        if oracle is None:  # the parent always sends the oracle first
            raise RuntimeError("worker got a job before an oracle")
        conn.send(("started", index))
        conn.send(("result", index, label_guarded(oracle, pair)))


@dataclass
class _Slot:
    process: Any
    conn: Connection
    oracle_token: int | None = None
    job: int | None = None
    started: float | None = None  # when the worker began the job (its clock), None before


class LocalProcessExecutor:
    """A pool of up to ``workers`` local processes (``spawn`` start method) with hard per-job
    limits, started on first use and kept until :meth:`close` (see the module docstring).

    ``job_timeout_s``: wall seconds one pair may take in a worker, counted from when the worker
    starts it (a worker still starting up is not charged); ``None``: no limit.
    """

    def __init__(
        self,
        workers: int = ORACLE_DEFAULTS.workers,
        job_timeout_s: float | None = None,
        start_method: str = "spawn",
    ) -> None:
        if workers < 1:
            raise OracleConfigError(f"workers must be >= 1, got {workers}")
        if job_timeout_s is not None and job_timeout_s <= 0:
            raise OracleConfigError(f"job_timeout_s must be > 0 or None, got {job_timeout_s}")
        self.workers = workers
        self.job_timeout_s = job_timeout_s
        self._ctx: Any = mp.get_context(start_method)
        self._slots: list[_Slot] = []
        self._oracle: Oracle | None = None  # the oracle object the token stands for
        self._token = 0
        #: worker processes started over the executor's life (replacements included)
        self.started_workers = 0

    def __repr__(self) -> str:
        return f"LocalProcessExecutor(workers={self.workers}, job_timeout_s={self.job_timeout_s})"

    def __enter__(self) -> LocalProcessExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map(self, oracle: Oracle, pairs: Sequence[OraclePair]) -> list[OracleResult]:
        return collect(self.stream(oracle, pairs), len(pairs))

    def stream(
        self, oracle: Oracle, pairs: Sequence[OraclePair], on_start: OnStart | None = None
    ) -> Iterator[tuple[int, OracleResult]]:
        return flattened(self.passes(oracle, pairs), on_start)

    def passes(self, oracle: Oracle, pairs: Sequence[OraclePair]) -> Iterator[Pass]:
        if oracle is not self._oracle:
            self._oracle, self._token = oracle, self._token + 1
        pending = list(range(len(pairs)))
        while len(self._slots) < min(self.workers, len(pairs)):
            self._slots.append(self._start())
        owed = len(pairs)
        finished: Finished = []
        try:
            while True:
                idle = [s for s in self._slots if s.job is None][: len(pending)]
                handed = [pending.pop(0) for _ in idle]
                if handed or finished:
                    yield Pass(handed, finished)
                    owed -= len(finished)
                    finished = []
                if not owed:
                    return
                for slot, index in zip(idle, handed, strict=True):
                    self._dispatch(slot, index, oracle, pairs)
                busy = [s for s in self._slots if s.job is not None]
                ready = wait(
                    [s.conn for s in busy] + [s.process.sentinel for s in busy], timeout=0.2
                )
                for i, slot in enumerate(self._slots):
                    if slot.job is None:
                        continue
                    done, replace = self._check(slot, ready, oracle, pairs)
                    if replace:
                        self._slots[i] = self._start()
                    if done is not None:
                        finished.append(done)
        finally:
            # the caller stopped early or failed: a worker still busy holds a pair nobody waits
            # for; stop it (a fresh one starts on the next call)
            for slot in [s for s in self._slots if s.job is not None]:
                self._stop(slot, kill=True)
                self._slots.remove(slot)

    def _dispatch(
        self, slot: _Slot, index: int, oracle: Oracle, pairs: Sequence[OraclePair]
    ) -> None:
        if slot.oracle_token != self._token:
            slot.conn.send(("oracle", oracle))
            slot.oracle_token = self._token
        slot.job = index
        slot.started = None
        slot.conn.send(("job", index, pairs[index]))

    def _check(
        self, slot: _Slot, ready: list[Any], oracle: Oracle, pairs: Sequence[OraclePair]
    ) -> tuple[tuple[int, OracleResult] | None, bool]:
        """A finished job's ``(index, result)`` or a death/timeout recorded as one, and whether
        the worker must be replaced."""
        job = slot.job
        if job is None:
            return None, False
        try:
            while slot.conn.poll():
                message = slot.conn.recv()
                if message[0] == "started":  # the job's clock starts now, not at dispatch
                    slot.started = time.monotonic()
                else:
                    _, index, result = message
                    slot.job = None
                    return (index, result), False
        except (EOFError, OSError):
            pass  # the worker died mid-send; handled as a death below
        if slot.process.sentinel in ready or not slot.process.is_alive():
            slot.process.join(timeout=1)
            detail = f"exit code {slot.process.exitcode}"
            logger.warning("worker for pair %s died (%s)", pairs[job].key, detail)
            slot.job = None
            self._stop(slot, kill=True)
            return (job, died_result(oracle, pairs[job], detail)), True
        running_s = 0.0 if slot.started is None else time.monotonic() - slot.started
        if self.job_timeout_s is not None and running_s > self.job_timeout_s:
            logger.warning(
                "pair %s over job_timeout_s=%s; terminating its worker",
                pairs[job].key,
                self.job_timeout_s,
            )
            slot.job = None
            self._stop(slot, kill=True)
            return (
                job,
                timeout_result(oracle, pairs[job], self.job_timeout_s, "a local worker"),
            ), True
        return None, False

    def _start(self) -> _Slot:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker_main, args=(child,), daemon=True)
        process.start()
        child.close()
        self.started_workers += 1
        return _Slot(process, parent)

    @staticmethod
    def _stop(slot: _Slot, kill: bool = False) -> None:
        if slot.process.is_alive() and not kill:
            try:
                slot.conn.send(None)
            except (OSError, BrokenPipeError):
                kill = True
            slot.process.join(timeout=5)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join(timeout=5)
        slot.conn.close()

    def close(self) -> None:
        """Stop every worker."""
        for slot in self._slots:
            self._stop(slot)
        self._slots = []
