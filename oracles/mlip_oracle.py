"""``MLIPOracle``: a rough GMAE label by an AdsorbML-style placement search with an MLIP.

For one pair (numbered steps of ``label``):

1. relax the clean slab with the calculator (cached by content hash: once per calculator);
2. resolve the adsorbate (atoms and binding atoms) and its energy reference under the
   configured scheme (gas molecule relaxed with the same calculator, or atomic references);
3. place the adsorbate on the relaxed slab, heuristic sites first (best attention score first
   when the pair carries site scores), then random sites and rotations;
4. relax placements under the adaptive stopping rule, flag anomalies on each one;
5. label = the lowest valid E_ads, with the slab atoms its adsorbate is bound to
   (``binding_surface_atoms``); all placements anomalous -> ``anomalous``; nothing usable ->
   ``failed``; optionally re-relax the best placement with a committee MLIP and store the
   disagreement as ``uncertainty_ev``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import numpy as np
from ase import Atoms

from alloop.oracles.adsorbates import resolve_adsorbate
from alloop.oracles.anomalies import ANOMALY_KINDS, detect_anomalies
from alloop.oracles.cache import RelaxationCache
from alloop.oracles.calculators import thread_limit
from alloop.oracles.errors import OracleError
from alloop.oracles.guard import empty_provenance, guarded_label
from alloop.oracles.placement import PlacementPlan
from alloop.oracles.runner import ModelRunner
from alloop.oracles.search import SearchOutcome, SearchSettings, run_search
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.surface_local import binding_surface_atoms
from alloop.oracles.types import OraclePair, OracleResult, failed_result

logger = logging.getLogger(__name__)


class MLIPOracle:
    """Label pairs with an MLIP (or EMT) placement search; see the module docstring."""

    fidelity = "mlip"

    def __init__(self, settings: MLIPOracleSettings, cache: RelaxationCache | None = None) -> None:
        self.settings = settings
        self.cache = cache or RelaxationCache(settings.slab_cache_dir)
        self.primary = self._runner(settings.calculator_spec(), settings.atomic_mu_ev)
        spec = settings.committee_spec()
        self.committee = self._runner(spec, settings.atomic_mu_ev) if spec else None

    def __repr__(self) -> str:
        committee = f", committee={self.settings.committee_calculator}" if self.committee else ""
        return (
            f"MLIPOracle({self.settings.calculator}{committee}, cap={self.settings.max_placements})"
        )

    def _runner(self, spec: Any, mu: dict[str, float] | None) -> ModelRunner:
        s = self.settings
        return ModelRunner(
            spec, self.cache, s.fmax_ev_per_ang, s.max_steps, s.optimizer, s.reference_scheme, mu
        )

    def label(self, pair: OraclePair) -> OracleResult:
        """Label one pair; never raises for a failure of this pair."""
        base = empty_provenance(
            self.settings.calculator, self.settings.reference_scheme,
            settings=self.settings.to_dict(),
        )  # fmt: skip
        return guarded_label(self._label, pair, "mlip", base)

    def search_settings(self) -> SearchSettings:
        s = self.settings
        return SearchSettings(
            s.max_placements,
            s.patience,
            s.tolerance_ev,
            s.fmax_ev_per_ang,
            s.max_steps,
            s.optimizer,
            s.anomaly,
        )

    def _label(self, pair: OraclePair) -> OracleResult:
        # BLAS threads oversubscribe shared cores badly: BFGS's eigh on an 87x87 Hessian took
        # 37 ms with 2 OpenBLAS threads next to a busy neighbour and 0.2 ms with one. The limit
        # holds for this pair only: training in the same process keeps its own thread count.
        specs = [self.settings.calculator_spec(), self.settings.committee_spec()]
        uses_torch = any(spec is not None and spec.name != "emt" for spec in specs)
        with thread_limit(self.settings.torch_threads, torch_too=uses_torch):
            return self._label_limited(pair)

    def _label_limited(self, pair: OraclePair) -> OracleResult:
        start = time.perf_counter()
        limit = self.settings.time_limit_s
        deadline = time.monotonic() + limit if limit is not None else None
        ident = self.primary.identity
        slab = self.primary.relaxed_slab(pair.slab, deadline)
        adsorbate, binding = resolve_adsorbate(pair.adsorbate, self.settings.seed)
        e_ref_ads, ref_info, ref_calls = self.primary.adsorbate_reference(adsorbate, deadline)
        reference_ev = slab.energy_ev + e_ref_ads
        plan = PlacementPlan(
            slab.atoms,
            adsorbate,
            binding,
            self.pair_rng(pair),
            pair.site_scores,
            self.settings.gap_ang,
            self.settings.random_every,
        )
        outcome = run_search(
            plan,
            self.primary.calculator,
            reference_ev,
            slab.atoms,
            adsorbate,
            self.search_settings(),
            deadline,
        )
        force_calls = outcome.force_calls + ref_calls + (0 if slab.hit else slab.force_calls)
        provenance: dict[str, Any] = {
            "calculator": ident["calculator"],
            "weights_hash": ident["weights_hash"],
            "calculator_identity": ident,
            "reference_scheme": self.settings.reference_scheme,
            "reference_id": self.primary.reference_id(),
            "reference_energies_ev": {"slab": slab.energy_ev, "adsorbate": e_ref_ads},
            "reference": ref_info,
            "slab_cache_key": slab.key,
            "slab_cache_hit": slab.hit,
            "binding_atoms": list(binding),
            "n_heuristic_placements": plan.n_heuristic,
            "placements": outcome.records,
            "placements_tried": len(outcome.records),
            "anomaly_flags": outcome.anomaly_flags,
            "force_calls": force_calls,
            "stop_reason": outcome.stop_reason,
            "best_placement": outcome.best_index,
            # the site of the minimum: slab atoms (the pair's slab order) bonded to the adsorbate
            "binding_surface_atoms": (
                None
                if outcome.best_atoms is None
                else list(
                    binding_surface_atoms(
                        outcome.best_atoms, self.settings.anomaly.desorption_cutoff_multiplier
                    )
                )
            ),
            "used_site_scores": pair.site_scores is not None,
            "settings": self.settings.to_dict(),
            "error": None,
        }
        if outcome.stop_reason == "time_limit":
            provenance["best_so_far_e_ads_ev"] = outcome.best_e_ads_ev
            provenance["wall_s"] = time.perf_counter() - start
            return failed_result(
                pair.key,
                "mlip",
                "time_limit",
                f"pair exceeded time_limit_s={limit} after {len(outcome.records)} placements",
                **provenance,
            )
        if outcome.best_atoms is not None and self.committee is not None:
            provenance["committee"] = self._committee(pair, outcome, adsorbate, deadline)
            provenance["uncertainty_ev"] = provenance["committee"].get("disagreement_ev")
            provenance["force_calls"] += provenance["committee"]["force_calls"]
        provenance["wall_s"] = time.perf_counter() - start
        return self._result(pair, outcome, provenance)

    def _result(
        self, pair: OraclePair, outcome: SearchOutcome, provenance: dict[str, Any]
    ) -> OracleResult:
        if outcome.best_atoms is not None:
            return OracleResult(
                pair.key, outcome.best_e_ads_ev, "ok", "mlip", provenance, outcome.best_atoms
            )
        anomalous = [r for r in outcome.records if set(r["anomaly_flags"]) & set(ANOMALY_KINDS)]
        if anomalous:
            return OracleResult(pair.key, None, "anomalous", "mlip", provenance, None)
        errors = [r["error"] for r in outcome.records if r["error"]]
        if errors:
            kind, _, message = errors[0].partition(": ")
            return failed_result(
                pair.key, "mlip", kind, f"no usable placement; first error: {message}", **provenance
            )
        return failed_result(
            pair.key,
            "mlip",
            "not_converged",
            f"none of {len(outcome.records)} relaxations converged within "
            f"max_steps={self.settings.max_steps}",
            **provenance,
        )

    def _committee(
        self, pair: OraclePair, outcome: SearchOutcome, adsorbate: Atoms, deadline: float | None
    ) -> dict[str, Any]:
        """Re-relax the best placement with the committee model; E_ads with its own references."""
        runner = self.committee
        if runner is None or outcome.best_atoms is None or outcome.best_e_ads_ev is None:
            raise OracleError("committee called without a committee model or a best placement")
        slab = runner.relaxed_slab(pair.slab, deadline)
        e_ref_ads, _, ref_calls = runner.adsorbate_reference(adsorbate, deadline)
        relaxed = runner.relax(outcome.best_atoms, deadline)
        e_ads = relaxed.energy_ev - slab.energy_ev - e_ref_ads
        flags = detect_anomalies(
            outcome.best_atoms, relaxed.atoms, slab.atoms, adsorbate, self.settings.anomaly
        )
        return {
            "calculator": runner.identity["calculator"],
            "weights_hash": runner.identity["weights_hash"],
            "e_ads_ev": e_ads,
            "disagreement_ev": abs(e_ads - outcome.best_e_ads_ev),
            "converged": relaxed.converged,
            "anomaly_flags": flags,
            "force_calls": relaxed.force_calls + ref_calls + (0 if slab.hit else slab.force_calls),
        }

    def pair_rng(self, pair: OraclePair) -> np.random.Generator:
        """Generator seeded by (settings.seed, pair key): reproducible and distinct per pair."""
        key_int = int(hashlib.sha256(pair.key.encode()).hexdigest()[:12], 16)
        return np.random.default_rng([self.settings.seed, key_int])
