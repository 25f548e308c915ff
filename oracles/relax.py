"""Relaxation and single points with force-call counting, NaN checks and a wall-clock deadline.

The optimiser is consumed through ``irun`` so that every step can check the deadline; the
calculator is wrapped in :class:`CountingCalculator`, which counts energy/force evaluations and
turns NaN/inf and calculator exceptions into the typed errors of :mod:`alloop.oracles.errors`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, CalculatorError, all_changes
from ase.optimize import BFGS, FIRE, LBFGS

from alloop.oracles.errors import (
    CalculatorFailure,
    NonFiniteEnergyError,
    NotConvergedError,
    OracleConfigError,
    OracleTimeoutError,
)

logger = logging.getLogger(__name__)

OPTIMIZERS = {"lbfgs": LBFGS, "bfgs": BFGS, "fire": FIRE}
#: exceptions a calculator raises when it cannot evaluate a structure (unknown element, a
#: torch shape error, an SCF that does not converge, ...). Others reach the guard unclassified.
CALCULATOR_EXCEPTIONS: tuple[type[BaseException], ...] = (
    CalculatorError,
    RuntimeError,
    ValueError,
    KeyError,
    IndexError,
    NotImplementedError,
    ArithmeticError,
)


class EnergyForcesCalculator(Protocol):
    """What the oracles need from a calculator: ASE's ``get_potential_energy``/``get_forces``.
    ASE calculators satisfy it, and so does GPAW's new ``ASECalculator`` (no ASE base class)."""

    def get_potential_energy(self, atoms: Atoms | None = None) -> float: ...

    def get_forces(self, atoms: Atoms | None = None) -> np.ndarray: ...


class CountingCalculator(Calculator):
    """ASE calculator that delegates to ``inner``, counts evaluations and rejects NaN.

    Energy and forces are always computed together (optimisers need both), so
    ``force_calls`` is the number of real evaluations of ``inner``.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, inner: EnergyForcesCalculator) -> None:
        super().__init__()
        self.inner = inner
        self.force_calls = 0

    def __repr__(self) -> str:
        return f"CountingCalculator({type(self.inner).__name__}, force_calls={self.force_calls})"

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Any = ("energy",),
        system_changes: Any = all_changes,
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        self.force_calls += 1
        try:
            energy = float(self.inner.get_potential_energy(self.atoms))
            forces = np.array(self.inner.get_forces(self.atoms), dtype=float)
        except CALCULATOR_EXCEPTIONS as exc:
            raise CalculatorFailure(
                f"{type(self.inner).__name__} failed on {self.atoms.get_chemical_formula()}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
            raise NonFiniteEnergyError(
                f"{type(self.inner).__name__} returned energy={energy} and "
                f"{int((~np.isfinite(forces)).sum())} non-finite force components on "
                f"{self.atoms.get_chemical_formula()}"
            )
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}


@dataclass(frozen=True)
class Relaxation:
    """Outcome of one relaxation: final geometry (no calculator), energy in eV, counters."""

    atoms: Atoms
    energy_ev: float
    fmax_final_ev_per_ang: float
    n_steps: int
    force_calls: int
    converged: bool
    wall_s: float


def relax(
    atoms: Atoms,
    calculator: EnergyForcesCalculator,
    fmax_ev_per_ang: float,
    max_steps: int,
    deadline_s: float | None = None,
    optimizer: str = "bfgs",
    require_converged: bool = False,
) -> Relaxation:
    """Relax a copy of ``atoms`` (constraints respected) until max force < ``fmax_ev_per_ang``.

    ``deadline_s``: a ``time.monotonic()`` instant; passing it raises :class:`OracleTimeoutError`
    between steps. ``max_steps=0`` is a single point. A relaxation that stops at ``max_steps``
    returns ``converged=False``, or raises :class:`NotConvergedError` if ``require_converged``.
    """
    if optimizer not in OPTIMIZERS:
        raise OracleConfigError(f"optimizer {optimizer!r} is unknown; valid: {sorted(OPTIMIZERS)}")
    start = time.perf_counter()
    work = atoms.copy()
    counter = CountingCalculator(calculator)
    work.calc = counter
    _check_deadline(deadline_s, work)
    n_steps = 0
    converged = False
    if max_steps == 0:
        fmax = _fmax(work)
        converged = fmax < fmax_ev_per_ang
    else:
        opt = OPTIMIZERS[optimizer](work, logfile=None)
        for converged in opt.irun(fmax=fmax_ev_per_ang, steps=max_steps):
            n_steps = opt.nsteps
            if converged:
                break
            _check_deadline(deadline_s, work)
        fmax = _fmax(work)
    energy = float(work.get_potential_energy())
    if require_converged and not converged:
        raise NotConvergedError(
            f"relaxation of {work.get_chemical_formula()} not converged after {n_steps} steps "
            f"(fmax {fmax:.3f} > {fmax_ev_per_ang} eV/Å)"
        )
    final = work.copy()
    final.calc = None
    return Relaxation(
        final,
        energy,
        fmax,
        n_steps,
        counter.force_calls,
        bool(converged),
        time.perf_counter() - start,
    )


def _fmax(atoms: Atoms) -> float:
    forces = atoms.get_forces()  # constraints applied: fixed atoms report zero
    return float(np.sqrt((forces**2).sum(axis=1)).max()) if len(atoms) else 0.0


def _check_deadline(deadline_s: float | None, atoms: Atoms) -> None:
    if deadline_s is not None and time.monotonic() > deadline_s:
        raise OracleTimeoutError(
            f"time limit reached while relaxing {atoms.get_chemical_formula()}"
        )
