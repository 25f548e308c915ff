"""Which labels each ensemble member trains and early-stops on, and each member's prior mean.

``split_members`` gives member k its (train, early-stopping) positions: the caller's split for
``holdout``; for ``cross_fit``, fold k of a seeded, fidelity-stratified deal
(:func:`alloop.surrogate.fidelity.assign_folds`), so every label trains K - 1 members and is
held out by one, whose prediction is its out-of-fold residual (what
:mod:`alloop.surrogate.calibration` sizes σ on). ``fit_member_priors`` fits each member's
scaling prior (:mod:`alloop.surrogate.prior`) on that member's training labels only, so the
out-of-fold residual is honest about the prior too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from alloop.surrogate.fidelity import TARGET_FIDELITY, assign_folds
from alloop.surrogate.prior import (
    STRENGTH_GRIDS,
    PriorLabels,
    ScalingPrior,
    choose_strength,
    fit_scaling_prior,
)
from alloop.surrogate.types import SurrogateSample

__all__ = ["MIN_PRIOR_TARGET", "PRIOR_CV_FOLDS", "fit_member_priors", "split_members"]

#: target-fidelity training labels a member's prior needs to be fit on them alone
MIN_PRIOR_TARGET = 10
#: folds of the cross-validation that chooses the prior's strengths
PRIOR_CV_FOLDS = 5


def split_members(
    samples: Sequence[SurrogateSample], n_tr: int, split: str, n_members: int, seed: int
) -> list[tuple[Tensor, Tensor]]:
    """`n_members` pairs of long tensors: each member's train and early-stopping positions.

    ``holdout``: positions below ``n_tr`` train and the rest validate, for every member.
    ``cross_fit``: member k holds out fold ``k mod F`` of ``F = min(n_members, len(samples))``
    folds.
    """
    n = len(samples)
    if split == "holdout":
        parts = (torch.arange(n_tr), torch.arange(n_tr, n))
        return [parts] * n_members
    folds = torch.tensor(assign_folds(samples, min(n_members, n), seed))
    n_folds = int(folds.max()) + 1
    return [
        (torch.nonzero(folds != k % n_folds).squeeze(-1),
         torch.nonzero(folds == k % n_folds).squeeze(-1))
        for k in range(n_members)
    ]  # fmt: skip


def fit_member_priors(
    slab_keys: list[str],
    slab_idx: Tensor,
    smiles: list[str],
    desc: Tensor,
    ads_idx: Tensor,
    y_ev: Tensor,
    fidelity: Tensor,
    member_parts: list[tuple[Tensor, Tensor]],
    seed: int,
    prior_mean: str = "scaling",
) -> list[ScalingPrior]:
    """One prior per member, fit on its training part (its target-fidelity labels when there
    are ``MIN_PRIOR_TARGET`` of them, else all), with one pair of strengths chosen by
    ``PRIOR_CV_FOLDS``-fold cross-validation over every label.

    Args:
        slab_keys, slab_idx: `S` slab content keys and the `P` long index into them.
        smiles, desc, ads_idx: `A` SMILES, their `A x D` standardised descriptors, and the
            `P` long index into them.
        y_ev: `P` labels (eV); fidelity: `P` long (0 = target).
        prior_mean: ``scaling`` or ``scaling_ads`` (the strength grid: without or with
            adsorbate offsets).
    """

    def usable(idx: Tensor) -> Tensor:
        target = idx[fidelity[idx] == TARGET_FIDELITY]
        return target if len(target) >= MIN_PRIOR_TARGET else idx

    labels = PriorLabels(slab_keys, slab_idx, smiles, desc, ads_idx, y_ev)
    every = usable(torch.cat(member_parts[0]).unique())
    n_folds = max(1, min(PRIOR_CV_FOLDS, len(every)))
    cv_folds = torch.tensor(np.random.default_rng(seed).permutation(len(every)) % n_folds)
    strength = choose_strength(labels.subset(every), cv_folds, STRENGTH_GRIDS[prior_mean])
    return [fit_scaling_prior(labels.subset(usable(tr)), strength) for tr, _ in member_parts]
