"""``DFTOracle``: escalate a pair to DFT from its MLIP minimum.

``escalate(pair, start)`` takes an ``ok`` MLIP result and either computes a single point at its
best structure (AdsorbML-style verification, fidelity ``dft_single_point``) or relaxes from it
(``dft_relax``). The references are DFT-relaxed once per slab / molecule and cached by content
hash + DFT settings: E_ads = E_DFT(slab+ads) - E_DFT(relaxed slab) - E_DFT(reference).
``label(pair)`` runs the configured start oracle first. The DFT settings (code, mode, xc,
cutoff, k-points, smearing, spin) and a summary of the start label go into the provenance.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from ase import Atoms
from threadpoolctl import threadpool_limits

from alloop.oracles.adsorbates import resolve_adsorbate
from alloop.oracles.anomalies import detect_anomalies
from alloop.oracles.cache import CachedRelaxation, RelaxationCache
from alloop.oracles.dft_settings import DFTOracleSettings, build_dft_calculator, dft_identity
from alloop.oracles.environ import scoped_environ
from alloop.oracles.errors import OracleConfigError, OracleError
from alloop.oracles.guard import empty_provenance, guarded_label
from alloop.oracles.referencing import AtomicReference
from alloop.oracles.relax import relax
from alloop.oracles.types import (
    TAG_ADSORBATE,
    Fidelity,
    Oracle,
    OraclePair,
    OracleResult,
    Status,
    failed_result,
)

logger = logging.getLogger(__name__)


class DFTOracle:
    """DFT labels from MLIP minima (see module docstring). ``start_oracle``: the MLIP oracle
    whose minimum ``label(pair)`` escalates; ``escalate`` can be called without one."""

    def __init__(
        self,
        settings: DFTOracleSettings,
        start_oracle: Oracle | None = None,
        cache: RelaxationCache | None = None,
    ) -> None:
        self.settings = settings
        self.start_oracle = start_oracle
        self.cache = cache or RelaxationCache(settings.cache_dir)
        self.fidelity: Fidelity = cast(Fidelity, settings.fidelity)
        self._workdir = settings.cache_dir or tempfile.mkdtemp(prefix="alloop-dft-")

    def __repr__(self) -> str:
        return f"DFTOracle({self.settings.code}, mode={self.settings.mode}, xc={self.settings.xc})"

    def _base(self) -> dict[str, Any]:
        return empty_provenance(
            dft_identity(self.settings)["calculator"],
            self.settings.reference_scheme,
            dft_settings=self.settings.to_dict(),
        )

    def label(self, pair: OraclePair) -> OracleResult:
        """Label with the start oracle, then escalate its minimum; never raises for the pair."""
        return guarded_label(self._label, pair, self.fidelity, self._base())

    def escalate(self, pair: OraclePair, start: OracleResult) -> OracleResult:
        """DFT label of ``pair`` from the ``ok`` result ``start``; never raises for the pair."""
        return guarded_label(lambda p: self._escalate(p, start), pair, self.fidelity, self._base())

    def _label(self, pair: OraclePair) -> OracleResult:
        if self.start_oracle is None:
            raise OracleConfigError(
                "DFTOracle.label needs start_oracle (the MLIP oracle); or call escalate(pair, "
                "mlip_result)"
            )
        t0 = time.perf_counter()
        start = self.start_oracle.label(pair)
        if start.status != "ok":
            return failed_result(
                pair.key,
                self.fidelity,
                "no_valid_placement",
                f"start label is {start.status!r} ({start.error}); nothing to escalate",
                start=_summary(start),
                wall_s=time.perf_counter() - t0,
                **self._base(),
            )
        return self._escalate(pair, start)

    def _escalate(self, pair: OraclePair, start: OracleResult) -> OracleResult:
        if start.status != "ok" or start.best_structure is None:
            raise OracleError(
                f"cannot escalate {pair.key!r}: the start result has status {start.status!r} and "
                f"{'a' if start.best_structure is not None else 'no'} best structure; escalate "
                "needs an 'ok' result with best_structure"
            )
        s = self.settings
        t0 = time.perf_counter()
        deadline = time.monotonic() + s.time_limit_s if s.time_limit_s else None
        threads = scoped_environ(OMP_NUM_THREADS=str(s.omp_threads))
        with threadpool_limits(limits=s.omp_threads), threads:
            slab = self._relaxed("slab", pair.slab, True, deadline)
            adsorbate, _ = resolve_adsorbate(pair.adsorbate)
            e_ref, ref_info, ref_calls = self._reference(adsorbate, deadline)
            calc = build_dft_calculator(s, True, self._dir("adslab"))
            steps = 0 if s.mode == "single_point" else s.max_steps
            run = relax(start.best_structure, calc, s.fmax_ev_per_ang, steps, deadline, s.optimizer)
        flags = []
        if s.mode == "relax":
            n_adsorbate = int((start.best_structure.get_tags() == TAG_ADSORBATE).sum())
            intact = adsorbate if len(adsorbate) == n_adsorbate else None
            flags = detect_anomalies(start.best_structure, run.atoms, slab.atoms, intact)
            if not run.converged:
                flags.append("not_converged")
        e_ads = run.energy_ev - slab.energy_ev - e_ref
        ident = dft_identity(s)
        provenance = {
            **self._base(),
            "calculator_identity": ident,
            "reference_id": "dft" if s.reference_scheme == "atomic" else None,
            "reference_energies_ev": {"slab": slab.energy_ev, "adsorbate": e_ref},
            "reference": ref_info,
            "slab_cache_key": slab.key,
            "slab_cache_hit": slab.hit,
            "placements": [
                {
                    "index": 0,
                    "source": "mlip_minimum",
                    "e_total_ev": run.energy_ev,
                    "e_ads_ev": e_ads,
                    "converged": run.converged,
                    "n_steps": run.n_steps,
                    "force_calls": run.force_calls,
                    "anomaly_flags": flags,
                    "fmax_final_ev_per_ang": run.fmax_final_ev_per_ang,
                }
            ],
            "placements_tried": 1,
            "anomaly_flags": flags,
            "force_calls": run.force_calls + ref_calls + (0 if slab.hit else slab.force_calls),
            "start": _summary(start),
            "mlip_dft_difference_ev": e_ads - float(start.gmae_ev or 0.0),
            "wall_s": time.perf_counter() - t0,
            "error": None,
        }
        status: Status = "anomalous" if any(f != "not_converged" for f in flags) else "ok"
        if status == "ok" and "not_converged" in flags:
            return failed_result(
                pair.key,
                self.fidelity,
                "not_converged",
                f"DFT relaxation not converged in {s.max_steps} steps",
                **{k: v for k, v in provenance.items() if k != "error"},
            )
        return OracleResult(
            pair.key,
            e_ads if status == "ok" else None,
            status,
            self.fidelity,
            provenance,
            run.atoms,
        )

    def _relaxed(
        self, kind: str, atoms: Atoms, periodic_slab: bool, deadline: float | None
    ) -> CachedRelaxation:
        s = self.settings
        # the level of theory and the convergence criterion define a reference; the escalation
        # mode and the step limit do not (a reference that hits the limit raises instead)
        level = {k: v for k, v in dft_identity(s).items() if k != "mode"}
        settings = {"dft": level, "fmax_ev_per_ang": s.fmax_ev_per_ang, "optimizer": s.optimizer}
        return self.cache.get_or_compute(
            f"dft{kind}",
            atoms,
            settings,
            lambda a: relax(
                a,
                build_dft_calculator(s, periodic_slab, self._dir(kind)),
                s.fmax_ev_per_ang,
                s.max_steps,
                deadline,
                s.optimizer,
                require_converged=True,
            ),
        )

    def _reference(
        self, adsorbate: Atoms, deadline: float | None
    ) -> tuple[float, dict[str, Any], int]:
        s = self.settings
        spent = 0

        def gas_energy(mol: Atoms) -> float:
            nonlocal spent
            entry = self._relaxed("gas", _box(mol, s.gas_box_ang), False, deadline)
            spent += 0 if entry.hit else entry.force_calls
            return entry.energy_ev

        if s.reference_scheme == "gas_phase_molecule":
            e_gas = gas_energy(adsorbate)
            return e_gas, {"scheme": "gas_phase_molecule", "gas_ev": e_gas}, spent
        if s.atomic_mu_ev is not None:
            ref = AtomicReference(dict(s.atomic_mu_ev), "explicit")
        else:
            ref = AtomicReference.from_molecules(
                gas_energy, f"{s.code}-{s.xc}", tuple(sorted(set(adsorbate.get_chemical_symbols())))
            )
        return ref.energy_ev(adsorbate), ref.describe(), spent

    def _dir(self, kind: str) -> str:
        path = Path(self._workdir) / kind
        path.mkdir(parents=True, exist_ok=True)
        return str(path)


def _box(molecule: Atoms, edge_ang: float) -> Atoms:
    boxed = molecule.copy()
    boxed.set_constraint()
    boxed.set_tags(0)
    boxed.cell = [edge_ang] * 3
    boxed.pbc = True
    boxed.center()
    return boxed


def _summary(result: OracleResult) -> dict[str, Any]:
    prov = result.provenance
    return {
        "status": result.status,
        "fidelity": result.fidelity,
        "gmae_ev": result.gmae_ev,
        "calculator": prov.get("calculator"),
        "weights_hash": prov.get("weights_hash"),
        "reference_scheme": prov.get("reference_scheme"),
        "error": result.error,
    }
