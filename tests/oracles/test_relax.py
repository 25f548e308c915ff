from __future__ import annotations

import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate
from ase.calculators.emt import EMT

from alloop.oracles.errors import (
    CalculatorFailure,
    NonFiniteEnergyError,
    NotConvergedError,
    OracleConfigError,
    OracleTimeoutError,
)
from alloop.oracles.relax import CountingCalculator, relax


def _o_on(slab: Atoms) -> Atoms:
    system = slab.copy()
    add_adsorbate(system, "O", 2.0, "ontop")
    return system


def test_relax_converges_and_counts_force_calls(cu_slab: Atoms) -> None:
    result = relax(_o_on(cu_slab), EMT(), fmax_ev_per_ang=0.05, max_steps=200)
    assert result.converged and result.fmax_final_ev_per_ang < 0.05
    # one evaluation per optimiser step plus the initial one
    assert result.force_calls == result.n_steps + 1
    assert result.atoms.calc is None
    # fixed atoms did not move
    fixed = np.flatnonzero(cu_slab.get_tags() == 0)[:4]
    assert np.allclose(result.atoms.positions[fixed], cu_slab.positions[fixed])
    single = relax(_o_on(cu_slab), EMT(), 0.05, max_steps=0)
    assert single.force_calls == 1 and single.n_steps == 0


def test_counting_calculator_reports_real_evaluations(cu_slab: Atoms) -> None:
    counter = CountingCalculator(EMT())
    atoms = cu_slab.copy()
    atoms.calc = counter
    atoms.get_potential_energy()
    atoms.get_forces()  # cached: same structure
    assert counter.force_calls == 1
    atoms.positions[-1, 2] += 0.1
    atoms.get_forces()
    assert counter.force_calls == 2


def test_not_converged(cu_slab: Atoms) -> None:
    result = relax(_o_on(cu_slab), EMT(), 1e-4, max_steps=2)
    assert not result.converged and result.n_steps == 2
    with pytest.raises(NotConvergedError, match="not converged after 2 steps"):
        relax(_o_on(cu_slab), EMT(), 1e-4, max_steps=2, require_converged=True)


def test_calculator_error_is_typed(cu_slab: Atoms) -> None:
    system = cu_slab.copy()
    add_adsorbate(system, "S", 2.0, "ontop")  # EMT has no parameters for S
    with pytest.raises(CalculatorFailure, match="No EMT-potential for S"):
        relax(system, EMT(), 0.05, 10)


def test_nan_is_typed(cu_slab: Atoms) -> None:
    system = cu_slab.copy()
    add_adsorbate(system, "O", 2.0, "ontop")
    system.extend(Atoms("O", positions=[system.positions[-1]]))  # two atoms on one point
    with pytest.raises(NonFiniteEnergyError, match="non-finite"):
        relax(system, EMT(), 0.05, 10)


def test_deadline_is_typed(cu_slab: Atoms) -> None:
    with pytest.raises(OracleTimeoutError, match="time limit"):
        relax(_o_on(cu_slab), EMT(), 0.05, 100, deadline_s=time.monotonic() - 1.0)


def test_unknown_optimizer(cu_slab: Atoms) -> None:
    with pytest.raises(OracleConfigError, match="optimizer 'newton' is unknown"):
        relax(cu_slab, EMT(), 0.05, 10, optimizer="newton")
