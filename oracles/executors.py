"""Run an oracle over many pairs: in this process, or in a pool of local worker processes.

Every executor returns one :class:`OracleResult` per pair, in input order, and never raises for
a pair: a job over its ``job_timeout_s`` becomes a ``failed`` result of kind ``time_limit``, a
worker process that dies (killed, segfault, out of memory) a ``failed`` result of kind
``worker_died``, and the pool starts a fresh worker for the remaining pairs.

:class:`LocalProcessExecutor` keeps long-lived workers (the oracle is sent once and its model
stays loaded between pairs); a job that overruns its limit is stopped by terminating its worker,
which is the only way to interrupt a force call that does not return. The Dask executor is in
:mod:`alloop.oracles.dask_executor`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from alloop.oracles.errors import OracleConfigError, OracleTimeoutError, WorkerDiedError
from alloop.oracles.guard import guarded_label
from alloop.oracles.types import Oracle, OraclePair, OracleResult, failed_result

logger = logging.getLogger(__name__)

EXECUTOR_KINDS: tuple[str, ...] = ("inprocess", "process", "dask")


class Executor(Protocol):
    """Labels a batch of pairs with an oracle; one result per pair, in order."""

    def map(
        self, oracle: Oracle, pairs: Sequence[OraclePair]
    ) -> list[OracleResult]: ...  # pragma: no cover - protocol

    def close(self) -> None: ...  # pragma: no cover - protocol


def oracle_fidelity(oracle: Oracle) -> Any:
    """The fidelity an oracle's failed results carry (``"mlip"`` if it does not say)."""
    return getattr(oracle, "fidelity", "mlip")


def label_guarded(oracle: Oracle, pair: OraclePair) -> OracleResult:
    """``oracle.label(pair)`` through the guard, so even a non-conforming oracle cannot raise."""
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

    def map(self, oracle: Oracle, pairs: Sequence[OraclePair]) -> list[OracleResult]:
        return [label_guarded(oracle, pair) for pair in pairs]

    def close(self) -> None:
        """Nothing to release."""


def _worker_main(conn: Connection, oracle: Oracle) -> None:
    """Worker loop: receive ``(index, pair)``, send ``(index, result)``; ``None`` stops it."""
    while True:
        message = conn.recv()
        if message is None:
            return
        index, pair = message
        conn.send((index, label_guarded(oracle, pair)))


@dataclass
class _Slot:
    process: Any
    conn: Connection
    job: int | None = None
    started: float = 0.0


class LocalProcessExecutor:
    """A pool of ``n_workers`` local processes (``spawn`` start method) with hard per-job limits.

    ``job_timeout_s``: wall seconds one pair may take in a worker (``None``: no limit).
    """

    def __init__(
        self, n_workers: int = 2, job_timeout_s: float | None = None, start_method: str = "spawn"
    ) -> None:
        if n_workers < 1:
            raise OracleConfigError(f"n_workers must be >= 1, got {n_workers}")
        if job_timeout_s is not None and job_timeout_s <= 0:
            raise OracleConfigError(f"job_timeout_s must be > 0 or None, got {job_timeout_s}")
        self.n_workers = n_workers
        self.job_timeout_s = job_timeout_s
        self._ctx: Any = mp.get_context(start_method)

    def __repr__(self) -> str:
        return (
            f"LocalProcessExecutor(n_workers={self.n_workers}, job_timeout_s={self.job_timeout_s})"
        )

    def map(self, oracle: Oracle, pairs: Sequence[OraclePair]) -> list[OracleResult]:
        results: list[OracleResult | None] = [None] * len(pairs)
        pending = list(range(len(pairs)))
        slots = [self._start(oracle) for _ in range(min(self.n_workers, len(pairs)))]
        try:
            while any(r is None for r in results):
                for slot in slots:
                    if slot.job is None and pending:
                        slot.job = pending.pop(0)
                        slot.started = time.monotonic()
                        slot.conn.send((slot.job, pairs[slot.job]))
                busy = [s for s in slots if s.job is not None]
                ready = wait(
                    [s.conn for s in busy] + [s.process.sentinel for s in busy], timeout=0.2
                )
                for i, slot in enumerate(slots):
                    if slot.job is None:
                        continue
                    replacement = self._check(slot, ready, oracle, pairs, results)
                    if replacement:
                        slots[i] = self._start(oracle)
        finally:
            for slot in slots:
                self._stop(slot)
        return [r for r in results if r is not None]

    def _check(
        self,
        slot: _Slot,
        ready: list[Any],
        oracle: Oracle,
        pairs: Sequence[OraclePair],
        results: list[OracleResult | None],
    ) -> bool:
        """Collect a finished job or record a death/timeout; True if the worker must be replaced."""
        job = slot.job
        if job is None:
            return False
        if slot.conn in ready:
            try:
                index, result = slot.conn.recv()
            except (EOFError, OSError):
                pass  # the worker died mid-send; handled as a death below
            else:
                results[index] = result
                slot.job = None
                return False
        if slot.process.sentinel in ready or not slot.process.is_alive():
            slot.process.join(timeout=1)
            detail = f"exit code {slot.process.exitcode}"
            logger.warning("worker for pair %s died (%s)", pairs[job].key, detail)
            results[job] = died_result(oracle, pairs[job], detail)
            return True
        if self.job_timeout_s is not None and time.monotonic() - slot.started > self.job_timeout_s:
            logger.warning(
                "pair %s over job_timeout_s=%s; terminating its worker",
                pairs[job].key,
                self.job_timeout_s,
            )
            results[job] = timeout_result(oracle, pairs[job], self.job_timeout_s, "a local worker")
            self._stop(slot, kill=True)
            return True
        return False

    def _start(self, oracle: Oracle) -> _Slot:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker_main, args=(child, oracle), daemon=True)
        process.start()
        child.close()
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
        """Workers live only inside ``map``; nothing stays running."""
