"""The label fidelities of a campaign and which are low (MLIP) or target (DFT, replay).

Labels and jobs carry a fidelity string (`OracleResult.fidelity`, the job's kind). MLIP labels
are the low fidelity; DFT labels, and replay labels that stand in for DFT, are the target the
surrogate predicts. Every place that needs the distinction (training samples, costs, the
cost-aware acquisition, reports) asks here.
"""

from __future__ import annotations

LOW_FIDELITY_LABELS = frozenset({"mlip"})
DFT_FIDELITIES = frozenset({"dft_single_point", "dft_relax"})


def is_low_fidelity(fidelity: str) -> bool:
    """True for a label or job of the low (MLIP) fidelity."""
    return fidelity in LOW_FIDELITY_LABELS
