"""Every decision a campaign made about one pair, and the label each one bought.

A decision is an acquisition (step 3: the pair was picked, with the acquisition's name as its
code) or an escalation (step 5: the pair went to DFT, with the reason code of its ``escalated``
event: ``COLD_START``, ``VALUE_PER_COST``, ``STRONG_BINDER``, ...). A cost-aware pick that asked
for DFT itself is one decision, an escalation: its acquisition row holds the value and cost, its
event the reason code. Each decision names the job it made (the job key rule
`NewJob.for_round`: round, fidelity, pair) and the label that job bought; a job that neither an
acquisition nor an event names is listed too, so nothing a pair was labelled with is hidden.

Facts are stored fields: the value is the acquisition's stored ``value`` (before cost
weighting; a cost-aware escalation's event stores the same), the cost is the stored ``cost`` or,
where a row predates it, the job's price by the campaign's `cost` section
(`agent.costs.fidelity_cost`, the one pricing rule). Which label counts is
`agent.labels.labels_that_count`, nowhere else. Reads the store; prints nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from alloop.loop.agent.costs import fidelity_cost
from alloop.loop.agent.events import ESCALATED_EVENT
from alloop.loop.agent.labels import DFT_FIDELITIES, labels_that_count
from alloop.loop.config import CostSection
from alloop.store import CampaignStore
from alloop.store.records import (
    AcquisitionRecord,
    EventRecord,
    JobRecord,
    LabelRecord,
    LabelSummary,
)

#: a label record or summary (both name the job that bought them)
L = TypeVar("L", LabelRecord, LabelSummary)

__all__ = [
    "ACQUIRED",
    "ESCALATED",
    "JOB_ONLY",
    "Decision",
    "PairDecisions",
    "acquisition_job",
    "labels_bought",
    "pair_decisions",
]

ACQUIRED = "acquired"
ESCALATED = "escalated"
JOB_ONLY = "job"  # a job no acquisition or escalation names (e.g. added by hand)


@dataclass(frozen=True)
class Decision:
    """One decision about a pair. ``code``: the acquisition's name or the escalation's reason
    code; ``value``: the acquisition value before cost weighting, signed as stored (show it
    with `numbers.acquisition_value` under ``value_of``); ``label``: what its job bought (None:
    no job, or the job has no result yet)."""

    round_index: int | None
    action: str  # ACQUIRED, ESCALATED or JOB_ONLY
    code: str
    value_of: str  # the acquisition whose sign convention ``value`` follows
    fidelity: str | None  # of the job it asked for
    value: float | None
    cost: float | None
    job: JobRecord | None
    label: LabelRecord | None
    detail: str  # prose for people: the acquisition's reason or the escalation's detail


@dataclass(frozen=True)
class PairDecisions:
    decisions: tuple[Decision, ...]  # by round; acquisitions before escalations
    counted: LabelRecord | None  # the label that counts (`labels_that_count`)


def _number(x: object) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _job_for(jobs: Sequence[JobRecord], fidelity: str | None, dft: bool) -> JobRecord | None:
    """Of the pair's jobs of one round, the one of ``fidelity``, else (rows written before
    the fidelity was stored) the first that is (``dft``) or is not a DFT job."""
    if fidelity is not None:
        found = [j for j in jobs if j.kind == fidelity]
    else:
        found = [j for j in jobs if (j.kind in DFT_FIDELITIES) is dft]
    return found[0] if found else None


def acquisition_job(a: AcquisitionRecord, jobs: Sequence[JobRecord]) -> JobRecord | None:
    """The job acquisition ``a`` made, among ``jobs`` (its pair's jobs of its round): the one
    of the fidelity it asked for; None when it made none (a row added by hand)."""
    return _job_for(jobs, a.fidelity, a.fidelity in DFT_FIDELITIES)


def pair_decisions(store: CampaignStore, pair_key: str) -> PairDecisions:
    """The pair's decisions (module docstring); an unknown pair raises the store's
    UnknownRecordError (`commands.pair_story` refuses it with close matches first)."""
    store.pair(pair_key)
    section = CostSection.model_validate(store.campaign().config.get("cost", {}))
    acqs = [a for a in store.acquisitions() if a.pair_key == pair_key]
    events = [e for e in store.events()
              if e.kind == ESCALATED_EVENT and e.payload.get("pair") == pair_key]  # fmt: skip
    jobs = [j for j in store.jobs() if j.pair_key == pair_key]
    labels = store.labels(pair_key)
    made = _Made(labels_bought(labels), section)
    by_round: dict[int | None, list[JobRecord]] = {}
    for j in jobs:
        by_round.setdefault(j.round_index, []).append(j)

    out: list[tuple[tuple[int, int], Decision]] = []
    merged: set[int] = set()
    for a in acqs:
        dft = a.fidelity in DFT_FIDELITIES
        job = made.take(acquisition_job(a, by_round.get(a.round_index, [])))
        event = next((e for e in events if dft and e.round_index == a.round_index), None)
        if event is not None:
            merged.add(event.id)
        out.append(((a.round_index, 1 if event else 0), made.acquired(a, job, event)))
    for e in events:
        if e.id not in merged:
            job = made.take(_job_for(by_round.get(e.round_index, []), None, True))
            out.append(((_order(e.round_index), 1), made.escalated(e, job)))
    for j in jobs:
        if j.key not in made.used:
            out.append(((_order(j.round_index), 2), made.job_only(j)))
    ordered = tuple(d for _, d in sorted(out, key=lambda kv: kv[0]))
    counted = labels_that_count(labels, strict=False).get(pair_key)
    return PairDecisions(ordered, counted)


def _order(round_index: int | None) -> int:
    return -1 if round_index is None else round_index


class _Made:
    """Builds decisions: what each job bought and cost, and which jobs a decision named."""

    def __init__(self, bought: dict[str, LabelRecord], section: CostSection) -> None:
        self.bought = bought
        self.section = section
        self.used: set[str] = set()

    def take(self, job: JobRecord | None) -> JobRecord | None:
        if job is not None:
            self.used.add(job.key)
        return job

    def label(self, job: JobRecord | None) -> LabelRecord | None:
        return None if job is None else self.bought.get(job.key)

    def price(self, job: JobRecord | None, stored: object) -> float | None:
        """The stored cost, else the job's price (None: neither)."""
        cost = _number(stored)
        if cost is not None or job is None:
            return cost
        return fidelity_cost(job.kind, self.section)

    def acquired(
        self, a: AcquisitionRecord, job: JobRecord | None, event: EventRecord | None
    ) -> Decision:
        cost = self.price(job, a.cost)
        fidelity = a.fidelity if a.fidelity is not None else (job.kind if job else None)
        if event is None:
            return Decision(a.round_index, ACQUIRED, a.acquisition, a.acquisition, fidelity,
                            a.value, cost, job, self.label(job), a.reason)  # fmt: skip
        code = str(event.payload.get("reason") or "?")
        return Decision(a.round_index, ESCALATED, code, a.acquisition, fidelity, a.value, cost,
                        job, self.label(job), f"{a.acquisition} pick: {a.reason}")  # fmt: skip

    def escalated(self, e: EventRecord, job: JobRecord | None) -> Decision:
        p = e.payload
        code = str(p.get("reason") or "?")
        return Decision(
            e.round_index, ESCALATED, code, code, job.kind if job else None,
            _number(p.get("value")), self.price(job, p.get("cost")), job, self.label(job),
            str(p.get("detail") or ""),
        )  # fmt: skip

    def job_only(self, j: JobRecord) -> Decision:
        return Decision(j.round_index, JOB_ONLY, "—", "", j.kind, None, self.price(j, None), j,
                        self.label(j), "a job no acquisition or escalation names")  # fmt: skip


def labels_bought(labels: Iterable[L]) -> dict[str, L]:
    """Job key -> the label that job bought (the newest, should a job have several)."""
    return {lab.job_key: lab for lab in labels if lab.job_key is not None}
