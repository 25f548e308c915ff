"""SQLAlchemy 2 models: the whole state of one campaign.

One file (or one PostgreSQL database) per campaign. ORM objects never leave `alloop.store`:
the public API in `alloop.store.campaign` converts them to the frozen records of
`alloop.store.records`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from alloop.store.enums import Fidelity, JobState, LabelStatus, sql_in
from alloop.store.types import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


class CampaignRow(Base):
    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    config: Mapped[dict[str, Any]]
    seed: Mapped[int]
    alloop_version: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SurfaceRow(Base):
    __tablename__ = "surface"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    structure: Mapped[str] = mapped_column(Text)  # ASE JSON of the clean slab
    composition: Mapped[str] = mapped_column(String(200), index=True)
    miller: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)


class AdsorbateRow(Base):
    __tablename__ = "adsorbate"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    smiles: Mapped[str | None] = mapped_column(String(500))
    structure: Mapped[str | None] = mapped_column(Text)  # ASE JSON of the molecule
    binding_atoms: Mapped[list[Any]]
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)


class PairRow(Base):
    __tablename__ = "pair"
    __table_args__ = (UniqueConstraint("surface_id", "adsorbate_id", name="surface_adsorbate"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(420), unique=True)
    surface_id: Mapped[int] = mapped_column(ForeignKey("surface.id"), index=True)
    adsorbate_id: Mapped[int] = mapped_column(ForeignKey("adsorbate.id"), index=True)


class RoundRow(Base):
    __tablename__ = "round"

    id: Mapped[int] = mapped_column(primary_key=True)
    index: Mapped[int] = mapped_column(unique=True)
    state: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)


class JobRow(Base):
    __tablename__ = "job"
    __table_args__ = (
        CheckConstraint(f"state IN ({sql_in(JobState)})", name="state"),
        CheckConstraint("attempts >= 0", name="attempts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)  # idempotency key
    pair_id: Mapped[int] = mapped_column(ForeignKey("pair.id"), index=True)
    round_id: Mapped[int | None] = mapped_column(ForeignKey("round.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), index=True, default=JobState.PROPOSED.value)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LabelRow(Base):
    __tablename__ = "label"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_in(LabelStatus)})", name="status"),
        CheckConstraint(f"fidelity IN ({sql_in(Fidelity)})", name="fidelity"),
        CheckConstraint("status <> 'ok' OR gmae_ev IS NOT NULL", name="ok_has_value"),
        # Exactly-once ingestion: a job yields at most one label, ever.
        UniqueConstraint("job_id", name="one_label_per_job"),
        Index("ix_label_pair_fidelity", "pair_id", "fidelity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pair.id"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id"))
    gmae_ev: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20))
    fidelity: Mapped[str] = mapped_column(String(30))
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AcquisitionRow(Base):
    __tablename__ = "acquisition"
    __table_args__ = (
        UniqueConstraint("round_id", "pair_id", name="round_pair"),
        UniqueConstraint("round_id", "rank", name="round_rank"),
        CheckConstraint("rank >= 0", name="rank"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id"), index=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pair.id"), index=True)
    rank: Mapped[int]
    score: Mapped[float | None] = mapped_column(Float)
    mu_ev: Mapped[float | None] = mapped_column(Float)
    sigma_ev: Mapped[float | None] = mapped_column(Float)
    acquisition: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str] = mapped_column(Text, default="")
    # what the pick was chosen with (revision 0002; NULL in older rows and where not defined)
    believer_sigma_ev: Mapped[float | None] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)
    ei_ev: Mapped[float | None] = mapped_column(Float)
    threshold_ev: Mapped[float | None] = mapped_column(Float)
    cost: Mapped[float | None] = mapped_column(Float)
    fidelity: Mapped[str | None] = mapped_column(String(30))


class CheckpointRow(Base):
    __tablename__ = "model_checkpoint"
    __table_args__ = (
        UniqueConstraint("round_id", "member", name="round_member"),
        CheckConstraint("member >= 0", name="member"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id"), index=True)
    member: Mapped[int]
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EventRow(Base):
    """Append-only log; UPDATE and DELETE are refused by triggers installed by the migration."""

    __tablename__ = "event"

    id: Mapped[int] = mapped_column(primary_key=True)
    ts: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(60), index=True)
    round_index: Mapped[int | None]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
