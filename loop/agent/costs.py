"""What a campaign spent, in cost units: every oracle job costs its fidelity's price.

One rule for every place that reports or budgets cost (round metrics, `alloop status`, the
dashboard, `budget.max_cost`, the cost-aware acquisition): a job costs `cost.mlip` when it is
an MLIP job and `cost.dft` otherwise (DFT escalations, and replay labels, which stand in for
DFT). A job costs when it is proposed, whatever its outcome: a failed calculation was paid for.
"""

from __future__ import annotations

from collections.abc import Iterable

from alloop.loop.agent.labels import is_low_fidelity
from alloop.loop.config import CostSection
from alloop.store.records import JobRecord


def fidelity_cost(kind: str, section: CostSection) -> float:
    """Cost units of one label of fidelity/job kind ``kind``."""
    return section.mlip if is_low_fidelity(kind) else section.dft


def cost_spent(
    jobs: Iterable[JobRecord], section: CostSection, round_index: int | None = None
) -> float:
    """Cost units of ``jobs`` (of round ``round_index`` only, when given)."""
    return sum(
        fidelity_cost(j.kind, section)
        for j in jobs
        if round_index is None or j.round_index == round_index
    )


def cost_by_fidelity(jobs: Iterable[JobRecord], section: CostSection) -> dict[str, float]:
    """Cost units per job kind, e.g. ``{"mlip": 120.0, "dft_relax": 500.0}``."""
    out: dict[str, float] = {}
    for j in jobs:
        out[j.kind] = out.get(j.kind, 0.0) + fidelity_cost(j.kind, section)
    return out
