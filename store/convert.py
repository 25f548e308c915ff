"""ORM row -> frozen record conversions (the only place that knows both shapes)."""

from __future__ import annotations

from alloop.store import models as m
from alloop.store import records as r


def campaign(row: m.CampaignRow) -> r.CampaignRecord:
    return r.CampaignRecord(
        name=row.name,
        config=row.config,
        seed=row.seed,
        alloop_version=row.alloop_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def surface(row: m.SurfaceRow) -> r.SurfaceRecord:
    return r.SurfaceRecord(
        id=row.id,
        key=row.key,
        composition=row.composition,
        miller=row.miller,
        source=row.source,
        content_hash=row.content_hash,
    )


def adsorbate(row: m.AdsorbateRow) -> r.AdsorbateRecord:
    return r.AdsorbateRecord(
        id=row.id,
        key=row.key,
        name=row.name,
        smiles=row.smiles,
        binding_atoms=tuple(row.binding_atoms),
        content_hash=row.content_hash,
    )


def round_(row: m.RoundRow) -> r.RoundRecord:
    return r.RoundRecord(
        index=row.index,
        state=row.state,
        started_at=row.started_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        metrics=dict(row.metrics),
    )


def label(row: m.LabelRow, pair_key: str, job_key: str | None) -> r.LabelRecord:
    return r.LabelRecord(
        id=row.id,
        pair_id=row.pair_id,
        pair_key=pair_key,
        job_key=job_key,
        gmae_ev=row.gmae_ev,
        status=row.status,
        fidelity=row.fidelity,
        provenance=dict(row.provenance),
        created_at=row.created_at,
    )


def job(row: m.JobRow, pair_key: str, round_index: int | None) -> r.JobRecord:
    return r.JobRecord(
        id=row.id,
        key=row.key,
        pair_key=pair_key,
        round_index=round_index,
        kind=row.kind,
        state=row.state,
        attempts=row.attempts,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def event(row: m.EventRow) -> r.EventRecord:
    return r.EventRecord(
        id=row.id, ts=row.ts, kind=row.kind, round_index=row.round_index, payload=dict(row.payload)
    )


def acquisition(
    row: m.AcquisitionRow, round_index: int, pair_key: str, surface_key: str, adsorbate_key: str
) -> r.AcquisitionRecord:
    return r.AcquisitionRecord(
        round_index=round_index,
        pair_key=pair_key,
        surface_key=surface_key,
        adsorbate_key=adsorbate_key,
        rank=row.rank,
        score=row.score,
        mu_ev=row.mu_ev,
        sigma_ev=row.sigma_ev,
        acquisition=row.acquisition,
        reason=row.reason,
        believer_sigma_ev=row.believer_sigma_ev,
        value=row.value,
        ei_ev=row.ei_ev,
        threshold_ev=row.threshold_ev,
        cost=row.cost,
        fidelity=row.fidelity,
    )
