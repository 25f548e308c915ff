"""Build an oracle (and an executor) from settings or a config mapping: the loop's entry point.

``build_oracle(MLIPOracleSettings(...))`` -> :class:`~alloop.oracles.mlip_oracle.MLIPOracle`;
``build_oracle(DFTOracleSettings(...), start=MLIPOracleSettings(...))`` -> a
:class:`~alloop.oracles.dft.DFTOracle` that escalates that MLIP oracle's minima;
``build_oracle(ReplayOracleSettings(fg_root))`` -> :class:`~alloop.oracles.replay.ReplayOracle`.
``oracle_from_config({"kind": "mlip", ...})`` does the same from a YAML/JSON mapping.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from alloop.oracles.defaults import ORACLE_DEFAULTS
from alloop.oracles.dft import DFTOracle
from alloop.oracles.dft_settings import DFTOracleSettings
from alloop.oracles.errors import OracleConfigError
from alloop.oracles.executors import (
    EXECUTOR_KINDS,
    Executor,
    InProcessExecutor,
    LocalProcessExecutor,
)
from alloop.oracles.mlip_oracle import MLIPOracle
from alloop.oracles.replay import ReplayOracle
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.types import Oracle

ORACLE_KINDS: tuple[str, ...] = ("replay", "mlip", "dft")


@dataclass(frozen=True)
class ReplayOracleSettings:
    """``fg_root``: the FG folder holding ``fg_gmae_derived.csv``."""

    fg_root: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplayOracleSettings:
        unknown = sorted(set(data) - {"fg_root"})
        if unknown or "fg_root" not in data:
            raise OracleConfigError(
                f"replay oracle settings need exactly the key fg_root; got {sorted(data)}"
            )
        return cls(str(data["fg_root"]))


@dataclass(frozen=True)
class ExecutorSettings:
    """``kind``: inprocess, process or dask; ``workers``; ``job_timeout_s`` (hard limit per
    pair); ``address``: a Dask scheduler; ``jobqueue``: a SLURM/PBS cluster as
    ``{"kind": "slurm"|"pbs", "jobs": int, "cluster": {...SLURMCluster keywords...}}``."""

    kind: str = "inprocess"
    workers: int = ORACLE_DEFAULTS.workers
    job_timeout_s: float | None = None
    address: str | None = None
    jobqueue: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTOR_KINDS:
            raise OracleConfigError(
                f"executor kind {self.kind!r} is not valid; choose one of "
                f"{', '.join(EXECUTOR_KINDS)}"
            )
        if (self.address or self.jobqueue) and self.kind != "dask":
            raise OracleConfigError("address and jobqueue need kind='dask'")
        if self.address and self.jobqueue:
            raise OracleConfigError("give a Dask address or a jobqueue cluster, not both")
        if self.jobqueue is not None:
            unknown = sorted(set(self.jobqueue) - {"kind", "jobs", "cluster"})
            if unknown or "kind" not in self.jobqueue:
                got = sorted(self.jobqueue)
                raise OracleConfigError(
                    f"jobqueue needs 'kind' and may have 'jobs', 'cluster'; got {got}"
                )


OracleSettings: TypeAlias = MLIPOracleSettings | DFTOracleSettings | ReplayOracleSettings


def build_oracle(settings: OracleSettings, start: MLIPOracleSettings | None = None) -> Oracle:
    """The oracle described by ``settings`` (``start``: the MLIP settings a DFT oracle escalates
    from). Invalid combinations raise :class:`OracleConfigError`."""
    if isinstance(settings, MLIPOracleSettings):
        if start is not None:
            raise OracleConfigError("start is only meaningful for a DFT oracle")
        return MLIPOracle(settings)
    if isinstance(settings, DFTOracleSettings):
        return DFTOracle(settings, MLIPOracle(start) if start is not None else None)
    if isinstance(settings, ReplayOracleSettings):
        return ReplayOracle(Path(settings.fg_root))
    raise OracleConfigError(
        f"unknown settings type {type(settings).__name__}; expected MLIPOracleSettings, "
        "DFTOracleSettings or ReplayOracleSettings"
    )


def oracle_from_config(config: dict[str, Any]) -> Oracle:
    """Build from ``{"kind": "mlip"|"dft"|"replay", ...settings..., "start": {...}}``."""
    data = dict(config)
    kind = data.pop("kind", None)
    if kind not in ORACLE_KINDS:
        raise OracleConfigError(
            f"oracle kind {kind!r} is not valid; choose one of {', '.join(ORACLE_KINDS)}"
        )
    start = data.pop("start", None)
    if start is not None and kind != "dft":
        raise OracleConfigError(f"'start' is only valid for kind 'dft', not {kind!r}")
    if kind == "mlip":
        return build_oracle(MLIPOracleSettings.from_dict(data))
    if kind == "replay":
        return build_oracle(ReplayOracleSettings.from_dict(data))
    return build_oracle(
        DFTOracleSettings.from_dict(data),
        MLIPOracleSettings.from_dict(start) if start is not None else None,
    )


def build_executor(settings: ExecutorSettings) -> Executor:
    """The executor described by ``settings`` (a Dask one connects/starts its cluster now)."""
    if settings.kind == "inprocess":
        return InProcessExecutor()
    if settings.kind == "process":
        return LocalProcessExecutor(settings.workers, settings.job_timeout_s)
    from alloop.oracles.dask_executor import DaskExecutor, jobqueue_cluster

    jq = settings.jobqueue
    cluster = (
        jobqueue_cluster(jq["kind"], jq.get("jobs", 1), dict(jq.get("cluster") or {}))
        if jq is not None
        else None
    )
    return DaskExecutor(
        address=settings.address,
        cluster=cluster,
        workers=settings.workers,
        job_timeout_s=settings.job_timeout_s,
        owns_cluster=True,
    )


def executor_settings_from_dict(data: dict[str, Any]) -> ExecutorSettings:
    valid = {f.name for f in dataclasses.fields(ExecutorSettings)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise OracleConfigError(
            f"unknown executor keys {unknown}; valid keys: {', '.join(sorted(valid))}"
        )
    return ExecutorSettings(**data)
