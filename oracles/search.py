"""Adaptive placement search: relax placements until the minimum stops improving.

Each placement from a :class:`~alloop.oracles.placement.PlacementPlan` is relaxed, checked for
anomalies and recorded. A placement is *valid* when its relaxation converged, raised nothing
and shows no anomaly; only valid placements can become the minimum. The search stops when

* ``patience`` consecutive relaxations found no valid energy lower than the best by more than
  ``tolerance_ev`` (while no valid minimum exists the bar is ``2 * patience`` relaxations), or
* ``cap`` relaxations were made, or
* the pair's deadline passed (``stop_reason="time_limit"``).

A calculator error, NaN or non-convergence in one placement is recorded on that placement and
the search goes on; the pair fails only if no placement is usable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from alloop.oracles.anomalies import AnomalySettings, detect_anomalies
from alloop.oracles.errors import (
    CalculatorFailure,
    NonFiniteEnergyError,
    OracleTimeoutError,
)
from alloop.oracles.placement import Placement
from alloop.oracles.relax import Relaxation, relax

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchSettings:
    """Stopping rule and relaxation settings of one search (units in the names)."""

    cap: int
    patience: int
    tolerance_ev: float
    fmax_ev_per_ang: float
    max_steps: int
    optimizer: str = "bfgs"
    anomaly: AnomalySettings = field(default_factory=AnomalySettings)


@dataclass
class StopRule:
    """The patience rule, one placement at a time (`run_search` walks it; the stopping-rule
    benchmark replays recorded walks through it).

    Stop after ``patience`` consecutive placements found no valid energy lower than the best
    by more than ``tolerance_ev`` (``2 * patience`` while no valid minimum exists), and not
    before ``min_valid`` valid placements were seen (0 in the shipped search: the rule
    benchmark measured no gain from more, docs/oracles.md).
    """

    patience: int
    tolerance_ev: float
    min_valid: int = 0
    best_ev: float | None = None
    since: int = 0
    n_valid: int = 0

    def observe(self, e_ads_ev: float | None) -> bool:
        """Count one placement: its energy when valid, else None. True when it is the new best
        (lower than the best so far, by any margin)."""
        new_best = e_ads_ev is not None and (self.best_ev is None or e_ads_ev < self.best_ev)
        if e_ads_ev is not None:
            self.n_valid += 1
        if new_best:
            assert e_ads_ev is not None  # for the type checker: new_best implies it
            if self.best_ev is None or e_ads_ev < self.best_ev - self.tolerance_ev:
                self.since = -1
            self.best_ev = e_ads_ev
        self.since += 1
        return new_best

    @property
    def done(self) -> bool:
        bar = self.patience if self.best_ev is not None else 2 * self.patience
        return self.since >= bar and self.n_valid >= self.min_valid


@dataclass
class SearchOutcome:
    """Per-placement records (JSON-ready dicts), the best valid one, and why the search stopped."""

    records: list[dict[str, Any]]
    best_index: int | None
    best_atoms: Atoms | None
    best_e_ads_ev: float | None
    stop_reason: str
    force_calls: int

    @property
    def anomaly_flags(self) -> list[str]:
        """Union of flags over placements, sorted."""
        return sorted({f for r in self.records for f in r["anomaly_flags"]})


def run_search(
    placements: Iterable[Placement],
    calculator: Calculator,
    reference_energy_ev: float,
    relaxed_slab: Atoms,
    intact_adsorbate: Atoms,
    settings: SearchSettings,
    deadline_s: float | None = None,
) -> SearchOutcome:
    """Relax placements in order under the stopping rule; E_ads = E_total - reference_energy_ev."""
    records: list[dict[str, Any]] = []
    best: tuple[float, int, Atoms] | None = None
    rule = StopRule(settings.patience, settings.tolerance_ev)
    force_calls = 0
    stop_reason = "cap"
    for placement in placements:
        if len(records) >= settings.cap:
            break
        record = placement.describe()
        start = time.perf_counter()
        try:
            result = relax(
                placement.atoms,
                calculator,
                settings.fmax_ev_per_ang,
                settings.max_steps,
                deadline_s,
                settings.optimizer,
            )
        except OracleTimeoutError as exc:
            record.update(_failed_record(exc, start))
            records.append(record)
            stop_reason = "time_limit"
            break
        except (CalculatorFailure, NonFiniteEnergyError) as exc:
            record.update(_failed_record(exc, start))
            force_calls += 1
            rule.observe(None)
        else:
            force_calls += result.force_calls
            relaxed = relaxed_record(
                placement.atoms, result, relaxed_slab, intact_adsorbate, settings.anomaly,
                reference_energy_ev,
            )  # fmt: skip
            record.update(relaxed)
            e_ads: float = relaxed["e_ads_ev"]
            if rule.observe(None if relaxed["anomaly_flags"] else e_ads):
                best = (e_ads, placement.index, result.atoms)
        records.append(record)
        if rule.done:
            stop_reason = "patience"
            break
    logger.debug("search stopped (%s) after %d placements", stop_reason, len(records))
    return SearchOutcome(
        records,
        best[1] if best else None,
        best[2] if best else None,
        best[0] if best else None,
        stop_reason,
        force_calls,
    )


def relaxed_record(
    start: Atoms,
    result: Relaxation,
    relaxed_slab: Atoms,
    intact_adsorbate: Atoms,
    anomaly: AnomalySettings,
    reference_energy_ev: float,
) -> dict[str, Any]:
    """What a relaxed placement records: energies (``e_ads_ev`` = total − reference, eV),
    convergence, cost, and its anomaly flags (``not_converged`` included)."""
    flags = detect_anomalies(start, result.atoms, relaxed_slab, intact_adsorbate, anomaly)
    if not result.converged:
        flags.append("not_converged")
    return {
        "e_total_ev": result.energy_ev,
        "e_ads_ev": result.energy_ev - reference_energy_ev,
        "converged": result.converged,
        "n_steps": result.n_steps,
        "force_calls": result.force_calls,
        "fmax_final_ev_per_ang": result.fmax_final_ev_per_ang,
        "wall_s": result.wall_s,
        "anomaly_flags": flags,
        "error": None,
    }


def _failed_record(exc: Exception, start: float) -> dict[str, Any]:
    kind = getattr(exc, "kind", type(exc).__name__)
    return {
        "e_total_ev": None,
        "e_ads_ev": None,
        "converged": False,
        "n_steps": None,
        "force_calls": None,
        "wall_s": time.perf_counter() - start,
        "anomaly_flags": [f"error:{kind}"],
        "error": f"{kind}: {exc}",
    }
