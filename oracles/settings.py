"""Typed, validated settings of the MLIP oracle (built from a config dict or YAML section).

Unknown keys and out-of-range values raise :class:`OracleConfigError` with the field name, the
bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from alloop.oracles.anomalies import AnomalySettings
from alloop.oracles.calculators import CALCULATOR_NAMES, DEFAULT_OFFLINE_CALCULATOR, CalculatorSpec
from alloop.oracles.defaults import ORACLE_DEFAULTS
from alloop.oracles.errors import OracleConfigError
from alloop.oracles.referencing import REFERENCE_SCHEMES
from alloop.oracles.relax import OPTIMIZERS


@dataclass(frozen=True)
class MLIPOracleSettings:
    """How the MLIP oracle labels a pair (units in the names).

    Search: placements are relaxed in the order of :mod:`alloop.oracles.placement` until
    ``patience`` consecutive relaxations found no minimum lower than the best by more than
    ``tolerance_ev`` (with no valid minimum yet, until ``2 * patience``), and never more than
    ``max_placements``. ``time_limit_s`` bounds one pair (checked between optimiser steps).
    ``committee_calculator``: a second MLIP that re-relaxes the best placement; the absolute
    difference of the two adsorption energies is stored as ``uncertainty_ev``.
    ``atomic_mu_ev``: explicit per-element references for ``reference_scheme="atomic"``
    (otherwise derived from H2/H2O/CO/N2/H2S with the same calculator).
    ``slab_cache_dir``: where relaxed slabs and gas references are kept across processes.
    ``random_every``: every n-th placement is a random one even while heuristic ones remain.
    ``torch_threads``: torch intra-op threads *and* BLAS threads while labelling (keep 1 on
    shared cores: 2 threads next to a busy neighbour made a SevenNet call 30x slower here).
    ``checkpoint_sha256``: pin of ``checkpoint_path`` (:class:`CalculatorSpec`).
    """

    calculator: str = DEFAULT_OFFLINE_CALCULATOR
    checkpoint_path: str | None = None
    checkpoint_sha256: str | None = None
    device: str = "cpu"
    torch_threads: int = 1
    fmax_ev_per_ang: float = ORACLE_DEFAULTS.fmax_ev_per_ang
    max_steps: int = ORACLE_DEFAULTS.max_steps
    optimizer: str = "bfgs"
    max_placements: int = ORACLE_DEFAULTS.max_placements
    patience: int = ORACLE_DEFAULTS.patience
    tolerance_ev: float = ORACLE_DEFAULTS.tolerance_ev
    seed: int = 0
    gap_ang: float = 0.1
    random_every: int = 3
    reference_scheme: str = "gas_phase_molecule"
    atomic_mu_ev: dict[str, float] | None = None
    committee_calculator: str | None = None
    committee_checkpoint_path: str | None = None
    time_limit_s: float | None = ORACLE_DEFAULTS.time_limit_s
    slab_cache_dir: str | None = None
    anomaly: AnomalySettings = field(default_factory=AnomalySettings)

    def __post_init__(self) -> None:
        _one_of("calculator", self.calculator, CALCULATOR_NAMES)
        _one_of("optimizer", self.optimizer, tuple(OPTIMIZERS))
        _one_of("reference_scheme", self.reference_scheme, REFERENCE_SCHEMES)
        _positive("fmax_ev_per_ang", self.fmax_ev_per_ang)
        _positive("tolerance_ev", self.tolerance_ev, allow_zero=True)
        _positive("gap_ang", self.gap_ang, allow_zero=True)
        for name in ("max_steps", "max_placements", "patience", "torch_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise OracleConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.random_every, int) or self.random_every < 0:
            raise OracleConfigError(
                f"random_every must be an integer >= 0 (0: random placements only after the "
                f"heuristic ones), got {self.random_every!r}"
            )
        if self.time_limit_s is not None:
            _positive("time_limit_s", self.time_limit_s)
        if self.committee_calculator is not None:
            _one_of("committee_calculator", self.committee_calculator, CALCULATOR_NAMES)
            if (self.committee_calculator, self.committee_checkpoint_path) == (
                self.calculator,
                self.checkpoint_path,
            ):
                raise OracleConfigError(
                    f"committee_calculator {self.committee_calculator!r} is the primary "
                    "calculator; a committee needs a second, different model"
                )
        if self.atomic_mu_ev is not None:
            if self.reference_scheme != "atomic":
                raise OracleConfigError(
                    "atomic_mu_ev is only used with reference_scheme='atomic', got "
                    f"reference_scheme={self.reference_scheme!r}"
                )
            bad = {k: v for k, v in self.atomic_mu_ev.items() if not math.isfinite(float(v))}
            if bad:
                raise OracleConfigError(f"atomic_mu_ev has non-finite values: {bad}")
        # builds and validates the calculator specs (e.g. fairchem without checkpoint_path)
        self.calculator_spec()
        self.committee_spec()

    def calculator_spec(self) -> CalculatorSpec:
        return CalculatorSpec(
            self.calculator,
            self.checkpoint_path,
            self.device,
            torch_threads=self.torch_threads,
            checkpoint_sha256=self.checkpoint_sha256,
        )

    def committee_spec(self) -> CalculatorSpec | None:
        if self.committee_calculator is None:
            return None
        return CalculatorSpec(
            self.committee_calculator,
            self.committee_checkpoint_path,
            self.device,
            torch_threads=self.torch_threads,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, stored in every label's provenance."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MLIPOracleSettings:
        """Build from a config mapping; unknown keys are errors that list the valid ones."""
        return _from_dict(cls, data)


def _from_dict(cls: Any, data: dict[str, Any]) -> Any:
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise OracleConfigError(
            f"unknown {cls.__name__} keys {unknown}; valid keys: {', '.join(sorted(valid))}"
        )
    values = dict(data)
    if isinstance(values.get("anomaly"), dict):
        values["anomaly"] = _from_dict(AnomalySettings, values["anomaly"])
    try:
        return cls(**values)
    except TypeError as exc:
        raise OracleConfigError(f"invalid {cls.__name__}: {exc}") from exc


def _one_of(name: str, value: object, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise OracleConfigError(f"{name} {value!r} is not valid; choose one of {', '.join(valid)}")


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise OracleConfigError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise OracleConfigError(f"{name} must be finite and {bound}, got {value!r}")
