"""Frozen records: what the store hands out and takes in. ORM rows never leave the package."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ase import Atoms


@dataclass(frozen=True)
class CampaignRecord:
    name: str
    config: dict[str, Any]
    seed: int
    alloop_version: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewSurface:
    key: str
    atoms: Atoms
    source: str
    miller: str | None = None


@dataclass(frozen=True)
class NewAdsorbate:
    key: str
    name: str
    smiles: str | None
    atoms: Atoms | None
    binding_atoms: tuple[int, ...] = ()


@dataclass(frozen=True)
class SurfaceRecord:
    id: int
    key: str
    composition: str
    miller: str | None
    source: str
    content_hash: str


@dataclass(frozen=True)
class AdsorbateRecord:
    id: int
    key: str
    name: str
    smiles: str | None
    binding_atoms: tuple[int, ...]
    content_hash: str


@dataclass(frozen=True)
class PairRecord:
    id: int
    key: str
    surface_key: str
    adsorbate_key: str


@dataclass(frozen=True)
class NewLabel:
    """An oracle's answer for one pair, as the store records it."""

    gmae_ev: float | None
    status: str
    fidelity: str
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelRecord:
    id: int
    pair_id: int
    pair_key: str
    job_key: str | None
    gmae_ev: float | None
    status: str
    fidelity: str
    provenance: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class LabelSummary:
    """A label without its provenance: what bookkeeping queries need, cheap to load."""

    pair_id: int
    pair_key: str
    gmae_ev: float | None
    status: str
    fidelity: str
    job_key: str | None = None  # the job that bought it (None: added outside a job)
    # the slab atoms its adsorbate is bound to in the labelled minimum (an MLIP label's
    # provenance ``binding_surface_atoms``); loaded only when asked for
    # (`CampaignStore.label_summaries(sites=True)`), None where unknown or not loaded
    binding_atoms: tuple[int, ...] | None = None


@dataclass(frozen=True)
class RoundRecord:
    index: int
    state: str
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    metrics: dict[str, Any]


@dataclass(frozen=True)
class NewAcquisition:
    pair_key: str
    rank: int
    score: float | None
    mu_ev: float | None
    sigma_ev: float | None
    acquisition: str
    reason: str = ""  # for people; facts are the fields below
    # What the pick was chosen with (None where the acquisition has no such part, and in rows
    # written before schema revision 0002): the σ the kriging believer scored it with (lowered
    # by earlier picks of the batch), the acquisition's value before any cost weighting, its
    # expected improvement (eV) and the threshold that improves on (the best or k-th best
    # label, eV), the cost units and the fidelity of the job it asked for.
    believer_sigma_ev: float | None = None
    value: float | None = None
    ei_ev: float | None = None
    threshold_ev: float | None = None
    cost: float | None = None
    fidelity: str | None = None


@dataclass(frozen=True)
class AcquisitionRecord:
    round_index: int
    pair_key: str
    surface_key: str
    adsorbate_key: str
    rank: int
    score: float | None
    mu_ev: float | None
    sigma_ev: float | None
    acquisition: str
    reason: str
    # What the pick was chosen with (None where the acquisition has no such part, and in rows
    # written before schema revision 0002): the σ the kriging believer scored it with (lowered
    # by earlier picks of the batch), the acquisition's value before any cost weighting, its
    # expected improvement (eV) and the threshold that improves on (the best or k-th best
    # label, eV), the cost units and the fidelity of the job it asked for.
    believer_sigma_ev: float | None = None
    value: float | None = None
    ei_ev: float | None = None
    threshold_ev: float | None = None
    cost: float | None = None
    fidelity: str | None = None


@dataclass(frozen=True)
class NewJob:
    key: str
    pair_key: str
    kind: str

    @classmethod
    def for_round(cls, round_index: int, pair_key: str, kind: str) -> NewJob:
        """The job of ``pair_key`` at fidelity ``kind`` in a round; its key
        ``r{round}:{kind}:{pair}`` is the one idempotency key rule."""
        return cls(f"r{round_index}:{kind}:{pair_key}", pair_key, kind)


@dataclass(frozen=True)
class JobRecord:
    id: int
    key: str
    pair_key: str
    round_index: int | None
    kind: str
    state: str
    attempts: int
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CheckpointRecord:
    round_index: int
    member: int
    blob: bytes
    sha256: str
    config: dict[str, Any]


@dataclass(frozen=True)
class EventRecord:
    id: int
    ts: datetime
    kind: str
    round_index: int | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class CampaignStatus:
    """Counts for `alloop status` and the dashboard."""

    name: str
    seed: int
    n_surfaces: int
    n_adsorbates: int
    n_pairs: int
    n_labelled_pairs: int
    labels_by_fidelity_status: dict[tuple[str, str], int]
    jobs_by_state: dict[str, int]
    n_rounds: int
    last_round: RoundRecord | None
    best: tuple[tuple[str, float, str], ...]  # (pair key, gmae eV, fidelity), strongest first
