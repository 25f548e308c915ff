"""What the interactive dashboard shows, read from the store by plain functions (no Textual).

A round's batch (`round_batch`): every acquisition of the round with what its pair's labels
turned out to be, plus the round's DFT jobs that no acquisition row names (escalations), each
with the reason of its `escalated` event. A pair's story (`pair_detail`): why it was chosen in
each round it was picked (acquisition value, μ, σ, rank in the batch, predicted improvement
over the best label before that round, the kriging believer's σ reduction: stored fields of
the acquisition, never read from its reason text), every label by fidelity with its
provenance, its escalations. The learning curves (`curves`) come from the round metrics the
engine stores when it closes a round.

Which label of a pair counts is `alloop.loop.agent.labels.labels_that_count`, nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from alloop.loop.agent.labels import DFT_FIDELITIES, labels_that_count
from alloop.store import CampaignStore
from alloop.store.records import (
    AcquisitionRecord,
    EventRecord,
    JobRecord,
    LabelRecord,
    LabelSummary,
    RoundRecord,
)


@dataclass(frozen=True)
class BatchRow:
    """One line of a round's batch: an acquisition, or a DFT job no acquisition row names."""

    round_index: int
    rank: int | None  # None: an escalation outside the acquisition batch
    pair_key: str
    surface_key: str
    adsorbate_key: str
    fidelity: str  # the kinds of the pair's jobs this round ("mlip+dft_relax"): what it asked for
    acquisition: str
    score: float | None
    mu_ev: float | None
    sigma_ev: float | None
    labels: tuple[LabelSummary, ...]  # every label of the pair, oldest first
    counted: LabelSummary | None  # the label that counts (labels_that_count)
    reason: str

    @property
    def error_ev(self) -> float | None:
        """Label that counts minus μ (eV): how wrong the model was about this pick."""
        lab = self.counted
        if lab is None or lab.status != "ok" or lab.gmae_ev is None or self.mu_ev is None:
            return None
        return lab.gmae_ev - self.mu_ev

    @property
    def fidelities(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([self.fidelity, *(lab.fidelity for lab in self.labels)]))


#: sort keys of the batch screen, in the order the sort key cycles through them
SORT_KEYS: tuple[str, ...] = ("rank", "score", "mu", "sigma", "label", "error", "pair")
#: keys whose largest values matter most: sorted descending when first chosen
DESCENDING_FIRST = frozenset({"score", "sigma", "error"})


def sort_rows(rows: Sequence[BatchRow], key: str, descending: bool = False) -> list[BatchRow]:
    """Rows ordered by one of `SORT_KEYS`; rows without that value go last either way."""
    if key not in SORT_KEYS:
        raise ValueError(f"unknown sort key {key!r}; valid: {', '.join(SORT_KEYS)}")

    def value(row: BatchRow) -> Any:
        if key == "pair":
            return row.pair_key
        if key == "label":
            lab = row.counted
            return None if lab is None or lab.status != "ok" else lab.gmae_ev
        if key == "error":
            return None if row.error_ev is None else abs(row.error_ev)
        return {"rank": row.rank, "score": row.score, "mu": row.mu_ev, "sigma": row.sigma_ev}[key]

    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    return sorted(present, key=value, reverse=descending) + missing


_FIELDS = {"s": "surface", "surface": "surface", "a": "adsorbate", "adsorbate": "adsorbate",
           "f": "fidelity", "fidelity": "fidelity"}  # fmt: skip


def filter_rows(rows: Iterable[BatchRow], query: str) -> list[BatchRow]:
    """Rows matching every word of ``query`` (case-insensitive substrings).

    A word ``surface:Pt`` (or ``s:``), ``adsorbate:amides`` (``a:``) or ``fidelity:dft`` (``f:``)
    matches only that field; a bare word matches the surface, the adsorbate or a fidelity (the
    one asked for, or that of any label). An unknown ``field:`` raises ValueError naming the
    valid ones.
    """
    tests: list[tuple[str | None, str]] = []
    for word in query.split():
        name, sep, text = word.partition(":")
        if sep:
            if name.lower() not in _FIELDS:
                raise ValueError(f"unknown filter field {name!r}; valid: surface:, adsorbate:, "
                                 "fidelity: (or s:, a:, f:)")  # fmt: skip
            tests.append((_FIELDS[name.lower()], text.lower()))
        else:
            tests.append((None, word.lower()))

    def fields(row: BatchRow) -> dict[str, list[str]]:
        return {
            "surface": [row.surface_key.lower()],
            "adsorbate": [row.adsorbate_key.lower()],
            "fidelity": [f.lower() for f in row.fidelities],
        }

    out = []
    for row in rows:
        have = fields(row)
        if all(
            any(text in v for k, vs in have.items() if name in (None, k) for v in vs)
            for name, text in tests
        ):
            out.append(row)
    return out


def _jobs_by_round_pair(jobs: Iterable[JobRecord]) -> dict[tuple[int | None, str], list[JobRecord]]:
    out: dict[tuple[int | None, str], list[JobRecord]] = {}
    for job in jobs:
        out.setdefault((job.round_index, job.pair_key), []).append(job)
    return out


def _escalations(events: Iterable[EventRecord]) -> dict[tuple[int | None, str], EventRecord]:
    return {(e.round_index, str(e.payload.get("pair", ""))): e for e in events
            if e.kind == "escalated"}  # fmt: skip


def _labels_by_pair(labels: Iterable[LabelSummary]) -> dict[str, list[LabelSummary]]:
    out: dict[str, list[LabelSummary]] = {}
    for lab in labels:
        out.setdefault(lab.pair_key, []).append(lab)
    return out


def round_batch(store: CampaignStore, round_index: int) -> list[BatchRow]:
    """The batch of round ``round_index`` (module docstring), acquisitions in rank order, then
    the round's escalations that are not acquisition rows."""
    if round_index not in {r.index for r in store.rounds()}:
        raise ValueError(f"no round {round_index} in this campaign")
    acqs = store.acquisitions(round_index=round_index)
    labels = store.label_summaries()  # no provenance: a batch reloads every few seconds
    by_pair = _labels_by_pair(labels)
    counting = labels_that_count(labels, strict=False)
    jobs = _jobs_by_round_pair(store.jobs())
    escalated = _escalations(store.events())
    pairs = {p.key: p for p in store.pairs()}
    rows = []
    for a in acqs:
        kinds = "+".join(j.kind for j in jobs.get((round_index, a.pair_key), [])) or "—"
        event = escalated.get((round_index, a.pair_key))
        row = _row(a, kinds, by_pair, counting)
        if event is not None and event.payload.get("reason"):  # escalated in the same round
            # the pick itself asked for DFT (cost-aware): its reason says why already
            said = event.payload["reason"] if a.fidelity in DFT_FIDELITIES else None
            row = replace(row, reason=f"{row.reason}; escalated: {said or _escalation_text(event)}")
        rows.append(row)
    acquired = {a.pair_key for a in acqs}
    for (rnd, pair), found in sorted(jobs.items(), key=lambda kv: kv[1][0].id):
        if rnd != round_index or pair in acquired:
            continue
        event = escalated.get((round_index, pair))
        reason = "—" if event is None else _escalation_text(event)
        p = pairs[pair]
        rows.append(
            BatchRow(round_index, None, pair, p.surface_key, p.adsorbate_key, found[0].kind,
                     "escalation", number(event.payload.get("value")) if event else None,
                     number(event.payload.get("mu_ev")) if event else None,
                     number(event.payload.get("sigma_ev")) if event else None,
                     tuple(by_pair.get(pair, [])), counting.get(pair), reason)
        )  # fmt: skip
    return rows


def number(x: object) -> float | None:
    """A stored JSON value as a float, None when it is not a number."""
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _escalation_text(event: EventRecord) -> str:
    p = event.payload
    detail = p.get("detail")
    return f"{p.get('reason', '?')}" + (f": {detail}" if detail else "")


def _row(
    a: AcquisitionRecord,
    kind: str,
    by_pair: dict[str, list[LabelSummary]],
    counting: dict[str, LabelSummary],
) -> BatchRow:
    return BatchRow(
        a.round_index, a.rank, a.pair_key, a.surface_key, a.adsorbate_key, kind, a.acquisition,
        a.score, a.mu_ev, a.sigma_ev, tuple(by_pair.get(a.pair_key, [])),
        counting.get(a.pair_key), a.reason,
    )  # fmt: skip


# ---------------------------------------------------------------------------- a pair's story
#: a believer's σ closer than this to the model's (eV) is not shown as a reduction
BELIEVER_SIGMA_TOLERANCE_EV = 5e-4


@dataclass(frozen=True)
class Pick:
    """One acquisition of a pair, with what the round knew when it chose it."""

    acquisition: AcquisitionRecord
    batch_size: int
    best_before_ev: float | None  # best label that counted when the round began
    fidelity: str

    @property
    def improvement_ev(self) -> float | None:
        """Best label before the round minus μ: > 0 when the model expected a new best."""
        mu = self.acquisition.mu_ev
        return None if mu is None or self.best_before_ev is None else self.best_before_ev - mu

    @property
    def believed_sigma_ev(self) -> float | None:
        """The σ the kriging believer scored this pick with (the stored field), when it
        differs from the model's σ (earlier picks of the batch lowered it)."""
        believed = self.acquisition.believer_sigma_ev
        sigma = self.acquisition.sigma_ev
        if believed is None or sigma is None:
            return None
        return believed if abs(believed - sigma) > BELIEVER_SIGMA_TOLERANCE_EV else None


@dataclass(frozen=True)
class PairDetail:
    pair_key: str
    surface_key: str
    adsorbate_key: str
    picks: tuple[Pick, ...]
    labels: tuple[LabelRecord, ...]
    counted: LabelRecord | None
    escalations: tuple[EventRecord, ...]
    jobs: tuple[JobRecord, ...] = field(default=())


def pair_detail(store: CampaignStore, pair_key: str) -> PairDetail:
    """Everything the pair screen shows; an unknown pair raises the store's UnknownRecordError."""
    pair = store.pair(pair_key)
    rounds = store.rounds()
    acqs = store.acquisitions()
    jobs = [j for j in store.jobs() if j.pair_key == pair_key]
    sizes: dict[int, int] = {}
    for a in acqs:
        sizes[a.round_index] = sizes.get(a.round_index, 0) + 1
    picks = []
    for a in (a for a in acqs if a.pair_key == pair_key):
        kind = next((j.kind for j in jobs if j.round_index == a.round_index), "—")
        picks.append(Pick(a, sizes[a.round_index], best_before(rounds, a.round_index), kind))
    labels = tuple(store.labels(pair_key))
    counted = labels_that_count(labels, strict=False).get(pair_key)
    escalations = tuple(
        e for e in store.events() if e.kind == "escalated" and e.payload.get("pair") == pair_key
    )
    return PairDetail(pair_key, pair.surface_key, pair.adsorbate_key, tuple(picks), labels,
                      counted, escalations, tuple(jobs))  # fmt: skip


def best_before(rounds: Sequence[RoundRecord], index: int) -> float | None:
    """The best GMAE (eV) the last round closed before round ``index`` recorded."""
    earlier = [r for r in rounds if r.index < index and "best_gmae_ev" in r.metrics]
    value = earlier[-1].metrics["best_gmae_ev"] if earlier else None
    return float(value) if isinstance(value, int | float) else None


def placements(label: LabelRecord) -> list[dict[str, Any]]:
    """The placements a label's oracle tried (its provenance), each a dict; [] when none."""
    found = label.provenance.get("placements")
    return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


# ---------------------------------------------------------------------------- learning curves
@dataclass(frozen=True)
class Curves:
    """Per closed round (in order), from the round metrics: labels used, cost so far, the
    validation MAE of the round's model, the batch MAE and 95 % coverage of its predictions,
    the best GMAE and (multi-fidelity) the best target-fidelity GMAE. None where not recorded."""

    rounds: tuple[int, ...]
    n_labels: tuple[float | None, ...]
    cost_total: tuple[float | None, ...]
    val_mae_ev: tuple[float | None, ...]
    batch_mae_ev: tuple[float | None, ...]
    coverage_95: tuple[float | None, ...]
    best_gmae_ev: tuple[float | None, ...]
    best_target_ev: tuple[float | None, ...]
    # how many values the validation MAE and the batch metrics were computed on
    n_val: tuple[float | None, ...] = ()
    n_batch: tuple[float | None, ...] = ()


def curves(rounds: Sequence[RoundRecord]) -> Curves:
    closed = [r for r in rounds if r.finished_at is not None or "n_labels" in r.metrics]

    def col(key: str) -> tuple[float | None, ...]:
        return tuple(number(r.metrics.get(key)) for r in closed)

    return Curves(
        tuple(r.index for r in closed), col("n_labels"), col("cost_total"), col("val_mae_ev"),
        col("batch_mae_ev"), col("batch_coverage_95"), col("best_gmae_ev"), col("best_target_ev"),
        col("n_val_labels"), col("n_batch_scored"),
    )  # fmt: skip


def points(
    xs: Sequence[float | None], ys: Sequence[float | None]
) -> tuple[list[float], list[float]]:
    """The (x, y) pairs where both are known."""
    kept = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
    return [x for x, _ in kept], [y for _, y in kept]
