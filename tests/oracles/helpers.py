"""Oracles used to exercise executor failure handling. They live in an importable module so that
spawned worker processes (local pool, Dask) can unpickle them."""

from __future__ import annotations

import os
import time

from alloop.oracles.types import OraclePair, OracleResult


class CrashingOracle:
    """Wraps a real oracle; the worker process exits hard (like a segfault or an OOM kill) on
    the pair whose key is ``crash_key``."""

    fidelity = "mlip"

    def __init__(self, inner: object, crash_key: str) -> None:
        self.inner = inner
        self.crash_key = crash_key

    def label(self, pair: OraclePair) -> OracleResult:
        if pair.key == self.crash_key:
            os._exit(13)
        return self.inner.label(pair)  # type: ignore[attr-defined]


class SleepingOracle:
    """Wraps a real oracle; blocks in a call that no cooperative time limit can interrupt on
    the pair whose key is ``hang_key``."""

    fidelity = "mlip"

    def __init__(self, inner: object, hang_key: str, hang_s: float = 600.0) -> None:
        self.inner = inner
        self.hang_key = hang_key
        self.hang_s = hang_s

    def label(self, pair: OraclePair) -> OracleResult:
        if pair.key == self.hang_key:
            time.sleep(self.hang_s)
        return self.inner.label(pair)  # type: ignore[attr-defined]


class CrashOnceOracle:
    """Wraps a real oracle; the first pair any worker takes kills its worker process (as a
    batch job that ends under it), once: ``marker`` is created atomically before the exit, so
    every later pair, that one's re-run included, is labelled normally."""

    def __init__(self, inner: object, marker: str) -> None:
        self.inner = inner
        self.marker = marker
        self.fidelity = getattr(inner, "fidelity", "mlip")

    def label(self, pair: OraclePair) -> OracleResult:
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return self.inner.label(pair)  # type: ignore[attr-defined]
        os._exit(13)


class GatedOracle:
    """Wraps a real oracle; the pair whose key is ``gated_key`` waits until the file ``gate``
    exists (polling), so a test decides when it may finish, without timing."""

    fidelity = "mlip"

    def __init__(self, inner: object, gated_key: str, gate: str) -> None:
        self.inner = inner
        self.gated_key = gated_key
        self.gate = gate

    def label(self, pair: OraclePair) -> OracleResult:
        while pair.key == self.gated_key and not os.path.exists(self.gate):
            time.sleep(0.05)
        return self.inner.label(pair)  # type: ignore[attr-defined]
