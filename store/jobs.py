"""The oracle-job state machine and exactly-once label ingestion.

PROPOSED -> SUBMITTED -> RUNNING -> DONE | FAILED | ABANDONED (see `enums.JOB_TRANSITIONS`).
A job's key is its idempotency key: proposing a key twice returns the first job, and a job's
result is ingested at most once — the label row carries a UNIQUE job_id, and a second result
for the same job is refused with `DuplicateResultError` whatever the process that sends it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from alloop.store.enums import JOB_TRANSITIONS, Fidelity, JobState, LabelStatus
from alloop.store.errors import DuplicateResultError, JobStateError, StoreError, UnknownRecordError
from alloop.store.models import JobRow, LabelRow, PairRow
from alloop.store.records import NewJob, NewLabel


def get_job(session: Session, key: str) -> JobRow:
    row = session.scalar(select(JobRow).where(JobRow.key == key))
    if row is None:
        raise UnknownRecordError(f"no job with key {key!r}")
    return row


def propose(session: Session, round_id: int | None, specs: Sequence[NewJob]) -> list[JobRow]:
    """Insert PROPOSED jobs; a key that exists already returns the existing job untouched."""
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise StoreError("duplicate job keys in one proposal")
    existing = {j.key: j for j in session.scalars(select(JobRow).where(JobRow.key.in_(keys)))}
    pair_ids = dict(
        session.execute(
            select(PairRow.key, PairRow.id).where(PairRow.key.in_({s.pair_key for s in specs}))
        ).all()
    )
    out: list[JobRow] = []
    for spec in specs:
        if spec.key in existing:
            out.append(existing[spec.key])
            continue
        if spec.pair_key not in pair_ids:
            raise UnknownRecordError(f"job {spec.key!r} names unknown pair {spec.pair_key!r}")
        row = JobRow(
            key=spec.key,
            pair_id=pair_ids[spec.pair_key],
            round_id=round_id,
            kind=spec.kind,
            state=JobState.PROPOSED.value,
        )
        session.add(row)
        out.append(row)
    session.flush()
    return out


def transition(session: Session, key: str, to: JobState, error: str | None = None) -> JobRow:
    row = get_job(session, key)
    current = JobState(row.state)
    if to not in JOB_TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in JOB_TRANSITIONS[current])) or "none"
        raise JobStateError(
            f"job {key!r}: illegal transition {current.value} -> {to.value} (allowed: {allowed})"
        )
    if to is JobState.SUBMITTED:
        row.attempts += 1
    row.state = to.value
    if error is not None:
        row.error = error
    session.flush()
    return row


def validate_label(label: NewLabel) -> None:
    try:
        status = LabelStatus(label.status)
        Fidelity(label.fidelity)
    except ValueError as exc:
        raise StoreError(
            f"bad label: {exc}; status must be one of {[s.value for s in LabelStatus]}, "
            f"fidelity one of {[f.value for f in Fidelity]}"
        ) from exc
    if status is LabelStatus.OK and (label.gmae_ev is None or not math.isfinite(label.gmae_ev)):
        raise StoreError(f"bad label: status 'ok' needs a finite GMAE, got {label.gmae_ev!r}")


def complete(session: Session, key: str, label: NewLabel) -> LabelRow:
    """Record a RUNNING job's result and mark it DONE, in the caller's transaction."""
    validate_label(label)
    row = get_job(session, key)
    if row.state == JobState.DONE.value or session.scalar(
        select(LabelRow.id).where(LabelRow.job_id == row.id)
    ):
        raise DuplicateResultError(f"job {key!r} already has a recorded result; refused")
    transition(session, key, JobState.DONE)
    label_row = LabelRow(
        pair_id=row.pair_id,
        job_id=row.id,
        gmae_ev=label.gmae_ev,
        status=label.status,
        fidelity=label.fidelity,
        provenance=dict(label.provenance),
    )
    session.add(label_row)
    session.flush()
    return label_row
