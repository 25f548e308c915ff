"""The vocabulary of labels, and the one rule for which label of a pair counts.

Names: a label's status and fidelity are the store's closed vocabularies
(`alloop.store.enums.LabelStatus`, `Fidelity`: what a campaign file may hold), re-exported here
for the loop. The oracles package spells the same names as its `OracleResult` types (it may not
import the store); `tests/loop/agent/test_labels.py` checks that the two agree.

Fidelity classes: MLIP labels are the low fidelity; DFT labels, and replay labels that stand in
for DFT, are the target the surrogate predicts. A job's kind is the fidelity of the label it
makes, so `is_dft_job` and `is_low_fidelity` read jobs too.

The rule (`labels_that_count`), used everywhere a pair shows or uses one value (training, the
engine's metrics and stop rules, the cost-aware planner, `status`, `show`, `history`, the
dashboard, `report`): among a pair's ``ok`` labels the one of highest `FIDELITY_RANK`, the
newest among equals (the store lists labels in insertion order); a pair with no ``ok`` label
shows its newest label (a failure is shown as one), and is absent from what trains
(``usable=True``). Asked for one fidelity class (``fidelities=``) the same rule runs over that
class's labels only: the multi-fidelity surrogate trains on a pair's target label *and* its
MLIP label. A failed DFT run never erases a usable MLIP label.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol, TypeVar

from alloop.loop.errors import LoopError
from alloop.store.enums import Fidelity, LabelStatus

if TYPE_CHECKING:
    from alloop.loop.config import EscalationSection
    from alloop.store.records import JobRecord

__all__ = [
    "DFT_FIDELITIES",
    "FIDELITY_RANK",
    "LABEL_STATUSES",
    "LOW_FIDELITIES",
    "TARGET_FIDELITIES",
    "Fidelity",
    "LabelError",
    "LabelStatus",
    "counted_energies",
    "dft_fidelity",
    "is_dft_job",
    "is_low_fidelity",
    "labels_that_count",
    "pairs_labelled",
]


class LabelError(LoopError, ValueError):
    """A label the rule cannot place: unknown status or fidelity, or ``ok`` without a value."""


LABEL_STATUSES: tuple[str, ...] = tuple(s.value for s in LabelStatus)
LOW_FIDELITIES = frozenset({Fidelity.MLIP.value})
DFT_FIDELITIES = frozenset({Fidelity.DFT_SINGLE_POINT.value, Fidelity.DFT_RELAX.value})
TARGET_FIDELITIES = frozenset(f.value for f in Fidelity) - LOW_FIDELITIES

#: higher supersedes lower; replay answers from a table of DFT references, so it ranks with
#: dft_relax
FIDELITY_RANK: Mapping[str, int] = MappingProxyType(
    {
        Fidelity.MLIP.value: 0,
        Fidelity.DFT_SINGLE_POINT.value: 1,
        Fidelity.DFT_RELAX.value: 2,
        Fidelity.REPLAY.value: 2,
    }
)


def is_low_fidelity(fidelity: str) -> bool:
    """True for a label or job of the low (MLIP) fidelity."""
    return fidelity in LOW_FIDELITIES


def is_dft_job(job: JobRecord) -> bool:
    """True for a DFT escalation job (its kind is a DFT fidelity)."""
    return job.kind in DFT_FIDELITIES


def dft_fidelity(section: EscalationSection) -> str:
    """The fidelity (and job kind) of the campaign's DFT labels: the DFT oracle's own mapping
    of ``escalation.mode`` (`alloop.oracles.dft_settings.DFT_MODE_FIDELITY`)."""
    from alloop.loop.bridges.dft import DFT_MODE_FIDELITY

    return DFT_MODE_FIDELITY[section.mode]


class _Label(Protocol):
    @property
    def pair_id(self) -> int: ...
    @property
    def pair_key(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def fidelity(self) -> str: ...
    @property
    def gmae_ev(self) -> float | None: ...


L = TypeVar("L", bound=_Label)


def labels_that_count(
    labels: Iterable[L],
    *,
    fidelities: Collection[str] | None = None,
    usable: bool = False,
    strict: bool = True,
) -> dict[str, L]:
    """Pair key -> the label that counts (the rule of the module docstring).

    Args:
        labels: Labels in insertion order, as the store lists them (later means newer); any
            objects with ``pair_id``, ``pair_key``, ``status``, ``fidelity``, ``gmae_ev``.
        fidelities: Only labels of these fidelities take part (``LOW_FIDELITIES``,
            ``TARGET_FIDELITIES``); ``None``: all.
        usable: Only pairs whose counting label is ``ok`` (what trains and what the metrics
            score); otherwise a pair with no ``ok`` label shows its newest one.
        strict: Refuse a label the rule cannot place (`LabelError`); ``False`` (the face,
            which only shows a campaign, an edited file included): an unknown fidelity ranks
            below every known one and an unknown status is not usable.

    Returns:
        Pair key -> label, pairs in the order they first appear.

    Raises:
        LabelError: an unknown status or fidelity, or an ``ok`` label without a finite value.
    """
    out: dict[str, L] = {}
    for lab in labels:
        if strict:
            _check(lab)
        if fidelities is not None and lab.fidelity not in fidelities:
            continue
        held = out.get(lab.pair_key)
        if held is None or _counts_more(lab, held):
            out[lab.pair_key] = lab
    if usable:
        return {k: lab for k, lab in out.items() if lab.status == LabelStatus.OK}
    return out


def counted_energies(
    labels: Iterable[_Label], *, fidelities: Collection[str] | None = None
) -> dict[int, float]:
    """Pair id -> the GMAE (eV) of its usable label that counts (`labels_that_count` with
    ``usable=True``), in ascending pair id."""
    counted = labels_that_count(labels, fidelities=fidelities, usable=True).values()
    return {lab.pair_id: float(lab.gmae_ev) for lab in sorted(counted, key=lambda x: x.pair_id)}  # type: ignore[arg-type]


def _check(lab: _Label) -> None:
    if lab.fidelity not in FIDELITY_RANK:
        raise LabelError(
            f"pair {lab.pair_key}: unknown fidelity {lab.fidelity!r}; "
            f"valid: {sorted(FIDELITY_RANK)}"
        )
    if lab.status not in LABEL_STATUSES:
        raise LabelError(
            f"pair {lab.pair_key}: unknown status {lab.status!r}; valid: {list(LABEL_STATUSES)}"
        )
    if lab.status == LabelStatus.OK and (lab.gmae_ev is None or not math.isfinite(lab.gmae_ev)):
        raise LabelError(f"pair {lab.pair_key}: status 'ok' with gmae_ev {lab.gmae_ev!r}")


def _counts_more(new: _Label, held: _Label) -> bool:
    ok = LabelStatus.OK
    if (new.status == ok) != (held.status == ok):
        return new.status == ok
    if new.status != ok:
        return True  # neither usable: the newest shows
    return FIDELITY_RANK.get(new.fidelity, -1) >= FIDELITY_RANK.get(held.fidelity, -1)


def pairs_labelled(labels: Iterable[_Label]) -> int:
    """Pairs with any label, ok or not: what ``budget.max_labels`` counts."""
    return len({lab.pair_key for lab in labels})
