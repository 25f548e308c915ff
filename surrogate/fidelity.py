"""Labels of two fidelities for one model: which samples train it, and how they are split.

A campaign labels pairs with a cheap, rough oracle (an MLIP: fidelity 1, "low") and a few with
an expensive, accurate one (DFT: fidelity 0, the *target*). The ensemble always predicts the
target fidelity; ``EnsembleConfig.fidelity_mode`` says how the low-fidelity labels help:

``supersede``  one label per pair, the highest fidelity it has (the baseline: an MLIP label
               counts as if it were DFT until the pair gets a DFT label).
``token``      every label trains one model with a learned fidelity embedding; predictions
               are made with the target's embedding.
``delta``      ``token``, plus a head that predicts target = low-fidelity label + correction
               for the pairs that have a low-fidelity label (Δ-learning); the others fall back
               to the target token.
``transfer``   pretrain on the low-fidelity labels, then fine-tune on the target labels with a
               smaller learning rate (the AdsMT paper's transfer recipe).

Pairs are identified by ``(surface_key, smiles)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from alloop.surrogate.errors import SurrogateError
from alloop.surrogate.types import SurrogateSample

__all__ = [
    "FIDELITY_MODES",
    "SPLITS",
    "LOW_FIDELITY",
    "TARGET_FIDELITY",
    "assign_folds",
    "attach_low_fidelity",
    "prepare_samples",
    "split_by_fidelity",
    "supersede",
]

FIDELITY_MODES: tuple[str, ...] = ("supersede", "token", "delta", "transfer")
#: how an ensemble uses its labels for early stopping and calibration (``EnsembleConfig.split``)
SPLITS: tuple[str, ...] = ("holdout", "cross_fit")
TARGET_FIDELITY = 0
LOW_FIDELITY = 1


def _pair(sample: SurrogateSample) -> tuple[str, str]:
    return (sample.surface_key, sample.smiles)


def supersede(samples: Sequence[SurrogateSample]) -> list[SurrogateSample]:
    """One sample per pair: its target-fidelity label if it has one, else its low one.

    A pure helper over samples: which stored label of a pair counts is the caller's rule (the
    campaign loop's is `alloop.loop.agent.labels`, which hands one sample per pair already).
    Order: each pair where it first appears. Two labels of the same pair and fidelity are an
    error (the caller chooses which counts).
    """
    chosen: dict[tuple[str, str], SurrogateSample] = {}
    seen: set[tuple[tuple[str, str], int]] = set()
    for s in samples:
        key = (_pair(s), s.fidelity)
        if key in seen:
            raise SurrogateError(
                f"pair {s.surface_key}/{s.smiles} has two labels of fidelity {s.fidelity}"
            )
        seen.add(key)
        held = chosen.get(_pair(s))
        if held is None or s.fidelity < held.fidelity:
            chosen[_pair(s)] = s
    return list(chosen.values())


def attach_low_fidelity(samples: Sequence[SurrogateSample]) -> list[SurrogateSample]:
    """Give each target-fidelity sample its pair's low-fidelity label (``low_fidelity_ev``)
    where the pair has one and the sample does not carry it yet."""
    low = {_pair(s): s.gmae_ev for s in samples if s.fidelity == LOW_FIDELITY}
    out = []
    for s in samples:
        if s.fidelity == TARGET_FIDELITY and s.low_fidelity_ev is None and _pair(s) in low:
            s = replace(s, low_fidelity_ev=low[_pair(s)])
        out.append(s)
    return out


def prepare_samples(samples: Sequence[SurrogateSample], mode: str) -> list[SurrogateSample]:
    """What a model of ``mode`` trains on: ``supersede`` keeps one label per pair; the other
    modes keep every label, with the low-fidelity label attached to target samples."""
    if mode not in FIDELITY_MODES:
        raise SurrogateError(
            f"fidelity_mode {mode!r} is unknown; valid modes: {', '.join(FIDELITY_MODES)}"
        )
    if mode == "supersede":
        return [replace(s, low_fidelity_ev=None) for s in supersede(samples)]
    return attach_low_fidelity(samples)


def split_by_fidelity(
    samples: Sequence[SurrogateSample], val_fraction: float, seed: int
) -> tuple[list[SurrogateSample], list[SurrogateSample]]:
    """A seeded train/validation split, stratified by fidelity.

    Each fidelity with at least two samples puts ``round(val_fraction * n)`` of them (at least
    one, at most ``n - 1``) into validation; a fidelity with one sample trains. So the target
    fidelity is validated (and the spread calibrated) as soon as it has two labels, however
    many low-fidelity labels there are. Samples keep their input order within each split.

    Raises:
        SurrogateError: fewer than two samples, or ``val_fraction`` outside (0, 1).
    """
    if len(samples) < 2:
        raise SurrogateError(f"training needs at least 2 labels, have {len(samples)}")
    if not 0.0 < val_fraction < 1.0:
        raise SurrogateError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    is_val = np.zeros(len(samples), dtype=bool)
    for fid in sorted({s.fidelity for s in samples}):
        members = np.array([i for i, s in enumerate(samples) if s.fidelity == fid])
        if len(members) < 2:
            continue
        n_val = min(max(1, round(val_fraction * len(members))), len(members) - 1)
        is_val[rng.permutation(members)[:n_val]] = True
    if not is_val.any():  # two samples of two fidelities: validate on the low one
        is_val[max(range(len(samples)), key=lambda i: samples[i].fidelity)] = True
    train = [s for i, s in enumerate(samples) if not is_val[i]]
    val = [s for i, s in enumerate(samples) if is_val[i]]
    return train, val


def assign_folds(samples: Sequence[SurrogateSample], n_folds: int, seed: int) -> list[int]:
    """A seeded fold index in ``[0, n_folds)`` for each sample, stratified by fidelity: within
    each fidelity, a random permutation dealt round-robin, so the folds differ in size by at
    most one per fidelity (the cross-fitted ensemble's member k validates on fold k).

    Raises:
        SurrogateError: ``n_folds`` below 2 or above the number of samples.
    """
    if not 2 <= n_folds <= len(samples):
        raise SurrogateError(
            f"cross-fitting needs 2 <= folds <= samples, got {n_folds} folds for "
            f"{len(samples)} samples"
        )
    rng = np.random.default_rng(seed)
    folds = [0] * len(samples)
    start = 0
    for fid in sorted({s.fidelity for s in samples}):
        members = np.array([i for i, s in enumerate(samples) if s.fidelity == fid])
        for j, i in enumerate(rng.permutation(members)):
            folds[int(i)] = (start + j) % n_folds
        start += len(members)  # the next fidelity continues where this one stopped
    return folds
