"""The label fidelities of a campaign, which are low (MLIP) or target (DFT, replay), and the
one rule for which label of a pair counts.

Labels and jobs carry a fidelity string (`OracleResult.fidelity`, the job's kind). MLIP labels
are the low fidelity; DFT labels, and replay labels that stand in for DFT, are the target the
surrogate predicts. Every place that needs the distinction (training samples, costs, the
cost-aware acquisition, reports) asks here.

Which label counts, everywhere a pair shows one value (training, the engine's metrics,
`status`, `show`, `history`, the dashboard, `report`): among its ``ok`` labels the one of
highest `FIDELITY_RANK`, the newest among equals; a pair with no ``ok`` label shows its newest
label (a failure is shown as one). `escalation.training_labels` applies the same rank to rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Protocol, TypeVar

LOW_FIDELITY_LABELS = frozenset({"mlip"})
DFT_FIDELITIES = frozenset({"dft_single_point", "dft_relax"})


def is_low_fidelity(fidelity: str) -> bool:
    """True for a label or job of the low (MLIP) fidelity."""
    return fidelity in LOW_FIDELITY_LABELS


#: higher supersedes lower; replay answers from a table of DFT references, so it ranks with
#: dft_relax
FIDELITY_RANK: Mapping[str, int] = MappingProxyType(
    {"mlip": 0, "dft_single_point": 1, "dft_relax": 2, "replay": 2}
)


class _Label(Protocol):
    @property
    def pair_key(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def fidelity(self) -> str: ...


L = TypeVar("L", bound=_Label)


def labels_that_count(labels: Iterable[L]) -> dict[str, L]:
    """Pair key -> the label that counts (module docstring). ``labels`` in insertion order,
    as the store lists them (so later means newer)."""
    out: dict[str, L] = {}
    for lab in labels:
        held = out.get(lab.pair_key)
        if held is None or _counts_more(lab, held):
            out[lab.pair_key] = lab
    return out


def _counts_more(new: _Label, held: _Label) -> bool:
    if (new.status == "ok") != (held.status == "ok"):
        return new.status == "ok"
    if new.status != "ok":
        return True  # neither usable: the newest shows
    return FIDELITY_RANK.get(new.fidelity, -1) >= FIDELITY_RANK.get(held.fidelity, -1)


def pairs_labelled(labels: Iterable[_Label]) -> int:
    """Pairs with any label, ok or not: what ``budget.max_labels`` counts."""
    return len({lab.pair_key for lab in labels})
