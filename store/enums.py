"""Closed vocabularies stored in the campaign file.

Stored as plain strings guarded by CHECK constraints, so a file stays readable by any SQLite
client and portable to PostgreSQL without native enum types.
"""

from __future__ import annotations

from enum import StrEnum


class LabelStatus(StrEnum):
    """What became of a labelling job: a usable value, a value flagged anomalous, or none."""

    OK = "ok"
    ANOMALOUS = "anomalous"
    FAILED = "failed"


class Fidelity(StrEnum):
    """Where a label came from. Which one a pair's value is taken from (MLIP < DFT single
    point < DFT relaxation = replay of DFT references) is the loop's rule,
    `alloop.loop.agent.labels.FIDELITY_RANK`; the store records every label."""

    REPLAY = "replay"
    MLIP = "mlip"
    DFT_SINGLE_POINT = "dft_single_point"
    DFT_RELAX = "dft_relax"


class JobState(StrEnum):
    PROPOSED = "PROPOSED"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    ABANDONED = "ABANDONED"


class RoundState(StrEnum):
    """The steps of a campaign round, in order; a round row records the last one finished.

    The store keeps the value as given (it records, the engine in `alloop.loop.agent.engine`
    decides), so a file written by an older engine stays readable.
    """

    STARTED = "started"
    TRAINED = "trained"
    ACQUIRED = "acquired"
    LABELLED = "labelled"
    ESCALATED = "escalated"
    CLOSED = "closed"


TERMINAL_JOB_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.ABANDONED})

# The job state machine: PROPOSED -> SUBMITTED -> RUNNING -> DONE | FAILED | ABANDONED.
# RUNNING -> SUBMITTED and FAILED -> SUBMITTED are re-queues (a job that was running when its
# process died is run again; a failed one may be retried): both count a new attempt.
JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PROPOSED: frozenset({JobState.SUBMITTED, JobState.ABANDONED}),
    JobState.SUBMITTED: frozenset({JobState.RUNNING, JobState.FAILED, JobState.ABANDONED}),
    JobState.RUNNING: frozenset(
        {JobState.DONE, JobState.FAILED, JobState.ABANDONED, JobState.SUBMITTED}
    ),
    JobState.FAILED: frozenset({JobState.SUBMITTED, JobState.ABANDONED}),
    JobState.DONE: frozenset(),
    JobState.ABANDONED: frozenset(),
}


def sql_in(values: type[StrEnum]) -> str:
    """`'a', 'b', ...` for a CHECK constraint listing an enum's values."""
    return ", ".join(f"'{v.value}'" for v in values)
