"""The oracle-job state machine and exactly-once label ingestion.

PROPOSED -> SUBMITTED -> RUNNING -> DONE | FAILED | ABANDONED (see `enums.JOB_TRANSITIONS`).
A job's key is its idempotency key: proposing a key twice returns the first job, and a job's
result is ingested at most once — the label row carries a UNIQUE job_id, and a second result
for the same job is refused with `DuplicateResultError` whatever the process that sends it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from alloop.store.enums import JOB_TRANSITIONS, Fidelity, JobState, LabelStatus
from alloop.store.errors import DuplicateResultError, JobStateError, StoreError, UnknownRecordError
from alloop.store.models import JobRow, LabelRow, PairRow
from alloop.store.records import NewJob, NewLabel


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


#: keys per ``IN (...)`` query (well under every backend's bound-parameter limit)
_KEYS_PER_QUERY = 500


def _job(session: Session, key: str) -> JobRow:
    row = session.scalars(select(JobRow).where(JobRow.key == key)).one_or_none()
    if row is None:
        raise UnknownRecordError(f"no job with key {key!r}")
    return row


def _check_transition(key: str, current: JobState, to: JobState) -> None:
    """The state machine's rule for a job's next state: raise unless `current -> to` is one
    of `JOB_TRANSITIONS`."""
    if to not in JOB_TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in JOB_TRANSITIONS[current])) or "none"
        raise JobStateError(
            f"job {key!r}: illegal transition {current.value} -> {to.value} (allowed: {allowed})"
        )


def duplicate_result(key: str) -> DuplicateResultError:
    """The one refusal of a second result for job `key`."""
    return DuplicateResultError(f"job {key!r} already has a recorded result; refused")


def _counts_an_attempt(to: JobState) -> bool:
    """A job is tried once more each time it is (re)submitted."""
    return to is JobState.SUBMITTED


def _move(row: JobRow, to: JobState, error: str | None) -> None:
    """A job's next state, on a loaded row (`_bulk_move` does the same for many, unloaded)."""
    _check_transition(row.key, JobState(row.state), to)
    if _counts_an_attempt(to):
        row.attempts += 1
    row.state = to.value
    if error is not None:
        row.error = error


def transition(session: Session, key: str, to: JobState, error: str | None = None) -> JobRow:
    row = _job(session, key)
    _move(row, to, error)
    session.flush()
    return row


def _chunks(keys: Sequence[str]) -> list[list[str]]:
    unique = list(dict.fromkeys(keys))
    return [unique[at : at + _KEYS_PER_QUERY] for at in range(0, len(unique), _KEYS_PER_QUERY)]


def _states(session: Session, chunk: Sequence[str]) -> dict[str, tuple[JobState, int, int]]:
    """``key -> (state, job id, pair id)`` of the jobs of `chunk`, read in one query (no rows
    loaded); an unknown key raises."""
    query = select(JobRow.key, JobRow.state, JobRow.id, JobRow.pair_id).where(JobRow.key.in_(chunk))
    found = {k: (JobState(st), i, p) for k, st, i, p in session.execute(query).all()}
    for key in chunk:
        if key not in found:
            raise UnknownRecordError(f"no job with key {key!r}")
    return found


def _bulk_move(
    session: Session,
    chunk: Sequence[str],
    found: dict[str, tuple[JobState, int, int]],
    to: JobState,
) -> None:
    """What `_move` does to each job of `chunk` (states as `found` read them), as one UPDATE:
    every transition checked first (all or none), and the UPDATE refused when a job changed
    state since it was read (another writer)."""
    for key in chunk:
        _check_transition(key, found[key][0], to)
    values: dict[str, Any] = {"state": to.value}
    if _counts_an_attempt(to):
        values["attempts"] = JobRow.attempts + 1
    sources = [f.value for f, nxt in JOB_TRANSITIONS.items() if to in nxt]
    moved = session.execute(
        update(JobRow).where(JobRow.key.in_(chunk), JobRow.state.in_(sources)).values(**values),
        execution_options={"synchronize_session": False},
    )
    if moved.rowcount != len(chunk):  # type: ignore[attr-defined]  # a CursorResult
        raise JobStateError(
            f"{len(chunk) - moved.rowcount} of the jobs to turn {to.value} "  # type: ignore[attr-defined]
            "changed state meanwhile (another writer); nothing recorded"
        )


def transition_many(session: Session, keys: Sequence[str], to: JobState) -> None:
    """Move every job of `keys` to `to` (all or none), in the caller's transaction: what
    `_move` does, as one checking query and one UPDATE per `_KEYS_PER_QUERY` keys (no rows
    loaded; the rows of `keys` must not be pending in the session)."""
    for chunk in _chunks(keys):
        _bulk_move(session, chunk, _states(session, chunk), to)


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
    complete_many(session, [(key, label)])
    query = select(LabelRow).join(JobRow, LabelRow.job_id == JobRow.id).where(JobRow.key == key)
    return session.scalars(query).one()


def complete_many(session: Session, results: Sequence[tuple[str, NewLabel]]) -> None:
    """`complete` for many ``(job key, label)``, in the caller's transaction: per
    `_KEYS_PER_QUERY` jobs one query reads their states, one INSERT writes the labels and one
    UPDATE marks the jobs DONE (no rows loaded; the jobs must not be pending in the session)."""
    for _, label in results:
        validate_label(label)
    keys = [k for k, _ in results]
    if len(set(keys)) != len(keys):
        raise duplicate_result(next(k for k in keys if keys.count(k) > 1))
    labels = dict(results)
    for chunk in _chunks(keys):
        found = _states(session, chunk)
        for key in chunk:  # refused before anything is written
            if found[key][0] is JobState.DONE:
                raise duplicate_result(key)
            _check_transition(key, found[key][0], JobState.DONE)
        # labels first: a job another writer completed mid-race trips the UNIQUE job_id of
        # the labels table here, and the callers turn that IntegrityError into the refusal
        rows = [
            {
                "pair_id": found[key][2],
                "job_id": found[key][1],
                "gmae_ev": labels[key].gmae_ev,
                "status": labels[key].status,
                "fidelity": labels[key].fidelity,
                "provenance": dict(labels[key].provenance),
            }
            for key in chunk
        ]
        session.execute(insert(LabelRow), rows)
        _bulk_move(session, chunk, found, JobState.DONE)
