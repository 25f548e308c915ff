"""The answer a campaign gives for each labelled pair, at the fidelity the campaign asks about.

A single-fidelity campaign (replay, or MLIP labels with no DFT escalation) answers with the
label that counts (`agent.labels.labels_that_count`). A multi-fidelity campaign (it has MLIP
labels, and DFT escalation is enabled or a DFT label exists) answers at the DFT level: the
pair's target label that counts where it has one; else the model's DFT-level μ ± σ
(`agent.mf_posterior.dft_level_posterior` with the latest stored ensemble, the pair's MLIP label
as its input, the same posterior the planner and the pool view read), marked predicted. Raw
MLIP labels are never ranked beside DFT values: a pair with only an MLIP label and no stored
model yet is left unranked and counted.

`status`, the dashboard and `export` (`write_ranking_csv`: ranking.csv) rank by these answers,
strongest first. Reads the store and writes only the file it is asked to; prints nothing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from alloop.loop.agent.labels import (
    LOW_FIDELITIES,
    TARGET_FIDELITIES,
    labels_that_count,
)
from alloop.loop.face.model_view import stored_ensemble, stored_escalation
from alloop.store import CampaignStore
from alloop.store.records import LabelSummary

__all__ = [
    "PREDICTED",
    "RANKING_COLUMNS",
    "Answer",
    "Answers",
    "campaign_answers",
    "write_ranking_csv",
]

#: the source of an answer the model predicted (a label's source is its fidelity)
PREDICTED = "predicted"


@dataclass(frozen=True)
class Answer:
    """One pair's answer: ``value_ev`` (a label, or the predicted DFT-level μ), ``sigma_ev``
    (the model's σ of a predicted answer; None for a label), ``source`` (the label's fidelity,
    or `PREDICTED`), ``mlip_ev`` (the pair's MLIP label that counts, in a multi-fidelity
    campaign; None otherwise)."""

    pair_key: str
    value_ev: float
    sigma_ev: float | None
    source: str
    mlip_ev: float | None = None

    @property
    def predicted(self) -> bool:
        return self.source == PREDICTED


@dataclass(frozen=True)
class Answers:
    """Every labelled pair's answer, strongest first; ``unranked``: pairs with only an MLIP
    label while no model is stored (no DFT-level value to rank them by); ``model_round``: the
    round whose ensemble predicted (None: no prediction was needed or possible)."""

    rows: tuple[Answer, ...]
    multi_fidelity: bool
    unranked: int = 0
    model_round: int | None = None

    def best(self, n: int) -> tuple[tuple[str, float, str], ...]:
        """The ``n`` strongest as `CampaignStatus.best` holds them: (pair, eV, source)."""
        return tuple((a.pair_key, a.value_ev, a.source) for a in self.rows[:n])


def is_multi_fidelity(store: CampaignStore, summaries: list[LabelSummary]) -> bool:
    """MLIP labels, and DFT escalation enabled in the stored config or a target label."""
    if not any(lab.fidelity in LOW_FIDELITIES for lab in summaries):
        return False
    if any(lab.fidelity in TARGET_FIDELITIES for lab in summaries):
        return True
    return stored_escalation(store).enabled


def _usable(
    summaries: list[LabelSummary], fidelities: frozenset[str] | None = None
) -> dict[str, LabelSummary]:
    """Pair key -> its usable label that counts (of ``fidelities``), by the one rule; a
    hand-edited ``ok`` label without a value is left out (the face reads leniently)."""
    counted = labels_that_count(summaries, fidelities=fidelities, usable=True, strict=False)
    return {k: lab for k, lab in counted.items() if lab.gmae_ev is not None}


def campaign_answers(store: CampaignStore) -> Answers:
    """The campaign's answers (module docstring)."""
    summaries = store.label_summaries()
    if not is_multi_fidelity(store, summaries):
        counted = _usable(summaries)
        rows = [Answer(k, float(lab.gmae_ev), None, lab.fidelity)  # type: ignore[arg-type]
                for k, lab in counted.items()]  # fmt: skip
        return Answers(_ranked(rows), multi_fidelity=False)
    target = _usable(summaries, TARGET_FIDELITIES)
    low = _usable(summaries, LOW_FIDELITIES)
    rows = [Answer(k, float(lab.gmae_ev), None, lab.fidelity, _value(low.get(k)))  # type: ignore[arg-type]
            for k, lab in target.items()]  # fmt: skip
    only_low = [k for k in low if k not in target]
    predicted = _predict(store, target, low, only_low) if only_low else None
    if predicted is None:
        return Answers(_ranked(rows), True, unranked=len(only_low))
    model_round, by_pair = predicted
    rows += [Answer(k, mu, sigma, PREDICTED, _value(low[k])) for k, (mu, sigma) in by_pair.items()]
    return Answers(_ranked(rows), True, unranked=0, model_round=model_round)


def _value(lab: LabelSummary | None) -> float | None:
    return None if lab is None or lab.gmae_ev is None else float(lab.gmae_ev)


def _ranked(rows: list[Answer]) -> tuple[Answer, ...]:
    return tuple(sorted(rows, key=lambda a: (a.value_ev, a.pair_key)))


#: predictions by (checkpoint sha256, the labels they were predicted with): the dashboard asks
#: every few seconds, and a prediction only changes with the model or the labels
_PREDICTED: dict[tuple[object, ...], tuple[int, dict[str, tuple[float, float]]]] = {}
_PREDICTED_MAX = 4


def _predict(
    store: CampaignStore,
    target: dict[str, LabelSummary],
    low: dict[str, LabelSummary],
    pairs: list[str],
) -> tuple[int, dict[str, tuple[float, float]]] | None:
    """(round of the model, pair -> DFT-level (μ, σ)) of ``pairs`` from the latest stored
    ensemble; None when no round stored one."""
    found = store.checkpoints()
    if not found:
        return None
    key = (
        found[0].sha256,
        tuple(sorted((k, lab.gmae_ev) for k, lab in target.items())),
        tuple(sorted((k, lab.gmae_ev) for k, lab in low.items())),
    )
    if key not in _PREDICTED:
        from alloop.loop.agent.mf_posterior import dft_level_posterior
        from alloop.loop.bridges.surrogate import PoolView

        loaded = stored_ensemble(store)
        if loaded is None:
            return None
        model_round, ensemble = loaded
        pool = PoolView.load(store)
        by_key = {p.key: p for p in pool.pairs}
        chosen = [by_key[k] for k in pairs]
        post = dft_level_posterior(
            ensemble, pool, chosen,
            {lab.pair_id: float(lab.gmae_ev) for lab in target.values()},  # type: ignore[arg-type]
            {lab.pair_id: float(lab.gmae_ev) for lab in low.values()},  # type: ignore[arg-type]
            escalation=stored_escalation(store),
        )  # fmt: skip
        mu, sigma = post.mean_ev.tolist(), post.std_ev.tolist()
        while len(_PREDICTED) >= _PREDICTED_MAX:
            _PREDICTED.pop(next(iter(_PREDICTED)))
        _PREDICTED[key] = (model_round, {k: (mu[i], sigma[i]) for i, k in enumerate(pairs)})
    return _PREDICTED[key]


#: the columns of ranking.csv (`alloop export`): strongest first; ``gmae_ev`` at DFT level in a
#: multi-fidelity campaign, ``sigma_ev`` only for a predicted value
RANKING_COLUMNS = ("rank", "pair", "surface", "adsorbate", "gmae_ev", "sigma_ev", "fidelity",
                   "predicted", "mlip_label_ev")  # fmt: skip


def write_ranking_csv(
    store: CampaignStore, answers: Answers, out_dir: Path, *, neutralise_formulas: bool
) -> Path:
    """Write ranking.csv (`RANKING_COLUMNS`, one row per ranked pair) into ``out_dir``; text
    cells are neutralised like the other CSV exports (`store.exports.neutralise_formula`)."""
    from alloop.store.exports import fresh_output, neutralise_formula

    text = neutralise_formula if neutralise_formulas else str
    path = fresh_output(out_dir / "ranking.csv")
    pairs = {p.key: p for p in store.pairs()}
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(RANKING_COLUMNS)
        for rank, a in enumerate(answers.rows, start=1):
            p = pairs[a.pair_key]
            w.writerow([rank, text(a.pair_key), text(p.surface_key), text(p.adsorbate_key),
                        _num(a.value_ev), _num(a.sigma_ev), text(a.source),
                        str(a.predicted).lower(), _num(a.mlip_ev)])  # fmt: skip
    return path


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.6f}"
