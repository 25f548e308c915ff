"""One calculator plus everything computed with it: relaxed slabs, gas and atomic references.

The MLIP oracle holds one :class:`ModelRunner` for its primary calculator and, when a committee
is configured, a second one; both share a :class:`~alloop.oracles.cache.RelaxationCache`
whose keys include the calculator identity, so their references never mix.
"""

from __future__ import annotations

import logging
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from alloop.oracles.cache import CachedRelaxation, RelaxationCache
from alloop.oracles.calculators import CalculatorSpec, build_calculator, calculator_identity
from alloop.oracles.referencing import AtomicReference, gas_box
from alloop.oracles.relax import Relaxation, relax

logger = logging.getLogger(__name__)


class ModelRunner:
    """Lazily built calculator (never pickled) with cached reference relaxations.

    ``fmax_ev_per_ang``/``max_steps``/``optimizer`` apply to every relaxation it runs;
    ``reference_scheme`` is ``"gas_phase_molecule"`` or ``"atomic"`` (``atomic_mu_ev`` given
    explicitly, or derived from molecules with this calculator).
    """

    def __init__(
        self,
        spec: CalculatorSpec,
        cache: RelaxationCache,
        fmax_ev_per_ang: float,
        max_steps: int,
        optimizer: str,
        reference_scheme: str,
        atomic_mu_ev: dict[str, float] | None = None,
    ) -> None:
        self.spec = spec
        self.cache = cache
        self.fmax_ev_per_ang = fmax_ev_per_ang
        self.max_steps = max_steps
        self.optimizer = optimizer
        self.reference_scheme = reference_scheme
        self.atomic_mu_ev = atomic_mu_ev
        self._calculator: Calculator | None = None
        self._identity: dict[str, Any] | None = None
        self._atomic: AtomicReference | None = None

    def __repr__(self) -> str:
        return f"ModelRunner({self.spec.name}, reference={self.reference_scheme})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_calculator"] = None  # models are rebuilt in the process that uses them
        return state

    @property
    def calculator(self) -> Calculator:
        if self._calculator is None:
            self._calculator = build_calculator(self.spec)
        return self._calculator

    @property
    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = calculator_identity(self.spec)
        return self._identity

    def _settings(self) -> dict[str, Any]:
        # max_steps is not part of the key: a reference relaxation that hits it raises
        return {
            "calculator": self.identity,
            "fmax_ev_per_ang": self.fmax_ev_per_ang,
            "optimizer": self.optimizer,
        }

    def relax(self, atoms: Atoms, deadline_s: float | None = None) -> Relaxation:
        """Relax a placement (not cached; non-convergence is reported, not raised)."""
        return relax(
            atoms, self.calculator, self.fmax_ev_per_ang, self.max_steps, deadline_s, self.optimizer
        )

    def relaxed_slab(self, slab: Atoms, deadline_s: float | None = None) -> CachedRelaxation:
        """The clean slab relaxed once per calculator (must converge)."""
        return self._relaxed_once("slab", slab, deadline_s)

    def relaxed_gas(self, molecule: Atoms, deadline_s: float | None = None) -> CachedRelaxation:
        """The gas-phase molecule relaxed in a box once per calculator (must converge)."""
        return self._relaxed_once("gas", gas_box(molecule), deadline_s)

    def _relaxed_once(self, kind: str, atoms: Atoms, deadline_s: float | None) -> CachedRelaxation:
        return self.cache.get_or_compute(
            kind,
            atoms,
            self._settings(),
            lambda a: relax(
                a,
                self.calculator,
                self.fmax_ev_per_ang,
                self.max_steps,
                deadline_s,
                self.optimizer,
                require_converged=True,
            ),
        )

    def adsorbate_reference(
        self, adsorbate: Atoms, deadline_s: float | None = None
    ) -> tuple[float, dict[str, Any], int]:
        """Reference energy (eV) of the adsorbate under this runner's scheme, a JSON description
        of it, and the force calls spent on it now (0 on a cache hit)."""
        if self.reference_scheme == "gas_phase_molecule":
            gas = self.relaxed_gas(adsorbate, deadline_s)
            spent = 0 if gas.hit else gas.force_calls
            return (
                gas.energy_ev,
                {
                    "scheme": "gas_phase_molecule",
                    "gas_ev": gas.energy_ev,
                    "gas_cache_key": gas.key,
                    "gas_converged": gas.converged,
                },
                spent,
            )
        atomic, spent = self._atomic_reference(adsorbate, deadline_s)
        return atomic.energy_ev(adsorbate), atomic.describe(), spent

    def reference_id(self) -> str | None:
        """What distinguishes two atomic references (their source); ``None`` for gas phase."""
        if self.reference_scheme != "atomic":
            return None
        return "explicit" if self.atomic_mu_ev is not None else f"molecules:{self.spec.name}"

    def _atomic_reference(
        self, adsorbate: Atoms, deadline_s: float | None
    ) -> tuple[AtomicReference, int]:
        if self.atomic_mu_ev is not None:
            return AtomicReference(dict(self.atomic_mu_ev), "explicit"), 0
        elements = tuple(sorted(set(adsorbate.get_chemical_symbols())))
        if self._atomic is None or not set(elements) <= set(self._atomic.mu_ev):
            spent = 0

            def energy(mol: Atoms) -> float:
                nonlocal spent
                entry = self.relaxed_gas(mol, deadline_s)
                spent += 0 if entry.hit else entry.force_calls
                return entry.energy_ev

            known = tuple(self._atomic.mu_ev) if self._atomic else ()
            self._atomic = AtomicReference.from_molecules(
                energy, self.spec.name, tuple(sorted(set(elements) | set(known)))
            )
            return self._atomic, spent
        return self._atomic, 0
