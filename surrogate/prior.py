"""A scaling-relation prior mean for small data: the ensemble learns the residual over it.

Adsorption energies of one adsorbate on different metals are close to linear in a per-metal
descriptor (the linear scaling relations behind d-band and volcano plots). The prior is the
lowest-rank model of that kind that a few dozen labels can fit::

    gmae(s, m) ≈ c + a_s + b_s · (w · d_m) + u_m

with a per-surface offset ``a_s`` and slope ``b_s``, one adsorbate score ``w · d_m`` shared by
every surface (``d_m``: the ensemble's standardised descriptor vector of the adsorbate) and a
per-adsorbate offset ``u_m`` (what a labelled adsorbate's descriptors miss, carried to its
other surfaces), fit by least squares with L2 penalties on ``w`` and ``u`` (the two strengths)
and weak pulls of ``a`` to 0 and ``b`` to 1 (so a surface with few labels borrows from the
rest). A surface the prior never saw gets ``a = 0, b = 1``, an adsorbate ``u = 0``. Measured
on the FG-GMAE stand-in (`benchmarks/surrogate/learning_curve.py`).

The strength is chosen by K-fold cross-validation on the same labels (:func:`choose_strength`),
so the prior sizes itself to the data each round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from alloop.surrogate.errors import SurrogateError

__all__ = [
    "PRIOR_MEANS",
    "STRENGTH_GRIDS",
    "PriorLabels",
    "ScalingPrior",
    "choose_strength",
    "fit_scaling_prior",
]

PRIOR_MEANS: tuple[str, ...] = ("none", "scaling", "scaling_ads")
#: (weights, adsorbate offsets) L2 strengths that cross-validation chooses from, by prior
#: mean; an infinite strength leaves the adsorbate offsets out (``u = 0``). ``scaling_ads``
#: (with offsets) fit the random-pair learning curve a little better but held-out molecules
#: much worse (the offsets take the signal the descriptors should learn): measured in
#: benchmarks/results/surrogate_learning_curve.md.
STRENGTH_GRIDS: dict[str, tuple[tuple[float, float], ...]] = {
    "scaling": ((0.03, math.inf), (0.1, math.inf), (0.3, math.inf), (1.0, math.inf)),
    "scaling_ads": ((0.1, 1e-3), (0.1, 1e-2), (0.3, 1e-3), (0.3, 1e-2), (1.0, 1e-1)),
}
#: pulls of the per-surface offsets to 0 and slopes to 1
_SURFACE_PULL = 1e-3


@dataclass(frozen=True)
class ScalingPrior:
    """A fitted prior: surfaces by content key, parameters as float64 tensors.

    Attributes:
        slab_keys: `S` slab content keys, the order of ``offset`` and ``slope``.
        intercept: ``c`` (eV).
        offset, slope: `S` per-surface ``a_s`` (eV) and ``b_s``.
        weights: `D` adsorbate weights ``w`` (eV per standardised descriptor unit).
        smiles: `M` adsorbates by SMILES, the order of ``ads_offset`` (`M` eV).
        strength: the (weights, adsorbate offsets) L2 strengths it was fit with.
    """

    slab_keys: tuple[str, ...]
    intercept: float
    offset: Tensor
    slope: Tensor
    weights: Tensor
    smiles: tuple[str, ...]
    ads_offset: Tensor
    strength: tuple[float, float]

    def predict(
        self,
        slab_keys: Sequence[str],
        slab_idx: Tensor,
        smiles: Sequence[str],
        desc: Tensor,
        ads_idx: Tensor,
    ) -> Tensor:
        """`P` prior GMAE (eV, float64, CPU) of pairs ``(slab_idx[p], ads_idx[p])``.

        Args:
            slab_keys: `S` content keys of the slabs ``slab_idx`` (`P` long) points into.
            smiles, desc: `A` SMILES and their `A x D` standardised descriptors, which
                ``ads_idx`` (`P` long) points into.
        """
        pos = {k: i for i, k in enumerate(self.slab_keys)}
        offset = torch.tensor([float(self.offset[pos[k]]) if k in pos else 0.0 for k in slab_keys])
        slope = torch.tensor([float(self.slope[pos[k]]) if k in pos else 1.0 for k in slab_keys])
        mol = {k: i for i, k in enumerate(self.smiles)}
        ads = torch.tensor([float(self.ads_offset[mol[k]]) if k in mol else 0.0 for k in smiles])
        idx, a_idx = slab_idx.cpu(), ads_idx.cpu()
        score = (desc.detach().cpu().double() @ self.weights)[a_idx]
        return (
            self.intercept
            + offset.double()[idx]
            + slope.double()[idx] * score
            + ads.double()[a_idx]
        )

    def to_state(self) -> dict[str, object]:
        """Plain tensors, floats and strings (a ``weights_only`` checkpoint can hold them)."""
        return {
            "slab_keys": list(self.slab_keys),
            "intercept": float(self.intercept),
            "offset": self.offset.clone(),
            "slope": self.slope.clone(),
            "weights": self.weights.clone(),
            "smiles": list(self.smiles),
            "ads_offset": self.ads_offset.clone(),
            "strength": [float(x) for x in self.strength],
        }

    @classmethod
    def from_state(cls, state: dict[str, object]) -> ScalingPrior:
        try:
            return cls(
                slab_keys=tuple(str(k) for k in state["slab_keys"]),  # type: ignore[attr-defined]
                intercept=float(state["intercept"]),  # type: ignore[arg-type]
                offset=torch.as_tensor(state["offset"], dtype=torch.float64),
                slope=torch.as_tensor(state["slope"], dtype=torch.float64),
                weights=torch.as_tensor(state["weights"], dtype=torch.float64),
                smiles=tuple(str(k) for k in state["smiles"]),  # type: ignore[attr-defined]
                ads_offset=torch.as_tensor(state["ads_offset"], dtype=torch.float64),
                strength=tuple(float(x) for x in state["strength"]),  # type: ignore[arg-type,attr-defined]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SurrogateError(f"malformed prior state: {exc}") from exc


@dataclass(frozen=True)
class PriorLabels:
    """`P` labelled pairs as the prior reads them.

    Attributes:
        slab_keys, slab_idx: `S` slab content keys and the `P` long index into them.
        smiles, desc, ads_idx: `A` SMILES, their `A x D` standardised descriptors and the `P`
            long index into them.
        y_ev: `P` labels (eV).
    """

    slab_keys: Sequence[str]
    slab_idx: Tensor
    smiles: Sequence[str]
    desc: Tensor
    ads_idx: Tensor
    y_ev: Tensor

    def subset(self, idx: Tensor) -> PriorLabels:
        """The labels at ``idx`` (long positions or a `P` bool mask)."""
        return replace(self, slab_idx=self.slab_idx[idx], ads_idx=self.ads_idx[idx],
                       y_ev=self.y_ev[idx])  # fmt: skip

    def predict(self, prior: ScalingPrior) -> Tensor:
        """``prior``'s `P` predictions (eV) of these pairs."""
        return prior.predict(self.slab_keys, self.slab_idx, self.smiles, self.desc, self.ads_idx)


def fit_scaling_prior(labels: PriorLabels, strength: tuple[float, float]) -> ScalingPrior:
    """Fit the prior on ``labels`` (full-batch L-BFGS in float64; deterministic).

    Args:
        strength: L2 penalties (per unit of mean squared error) on the adsorbate weights and
            on the adsorbate offsets (infinite: no offsets).

    Raises:
        SurrogateError: no labels, mismatched lengths, or a non-positive strength.
    """
    slab_keys, smiles, desc = labels.slab_keys, labels.smiles, labels.desc
    n = int(labels.slab_idx.shape[0])
    n_ads, n_y = labels.ads_idx.shape[0], labels.y_ev.shape[0]
    if n == 0 or n_ads != n or n_y != n or desc.shape[0] != len(smiles):
        raise SurrogateError(
            f"prior needs equally many slab indices, adsorbate indices and labels (> 0), and a "
            f"descriptor row per SMILES; got {n}, {n_ads}, {n_y}, "
            f"{desc.shape[0]} rows for {len(smiles)} SMILES"
        )
    if not all(x > 0 for x in strength) or math.isinf(strength[0]):
        raise SurrogateError(f"prior strengths must be > 0, got {strength}")
    idx, a_idx = labels.slab_idx.cpu().long(), labels.ads_idx.cpu().long()
    x = desc.detach().cpu().double()
    y = labels.y_ev.detach().cpu().double()
    intercept = torch.tensor([float(y.mean())], dtype=torch.float64, requires_grad=True)
    offset = torch.zeros(len(slab_keys), dtype=torch.float64, requires_grad=True)
    slope = torch.ones(len(slab_keys), dtype=torch.float64, requires_grad=True)
    weights = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    with_ads = not math.isinf(strength[1])
    ads = torch.zeros(len(smiles), dtype=torch.float64, requires_grad=with_ads)
    params = [intercept, offset, slope, weights] + ([ads] if with_ads else [])
    opt = torch.optim.LBFGS(params, max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        score = (x @ weights)[a_idx]
        pred = intercept + offset[idx] + slope[idx] * score + ads[a_idx]
        loss = ((pred - y) ** 2).mean() + strength[0] * (weights**2).sum()
        if with_ads:
            loss = loss + strength[1] * (ads**2).sum()
        loss = loss + _SURFACE_PULL * ((offset**2).sum() + ((slope - 1.0) ** 2).sum())
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    return ScalingPrior(
        slab_keys=tuple(slab_keys),
        intercept=float(intercept.detach()),
        offset=offset.detach().clone(),
        slope=slope.detach().clone(),
        weights=weights.detach().clone(),
        smiles=tuple(smiles),
        ads_offset=ads.detach().clone(),
        strength=(float(strength[0]), float(strength[1])),
    )


def choose_strength(
    labels: PriorLabels,
    folds: Tensor,
    grid: Sequence[tuple[float, float]] = STRENGTH_GRIDS["scaling"],
) -> tuple[float, float]:
    """The strengths in ``grid`` with the lowest cross-validated MAE over ``folds``.

    Args:
        folds: `P` long fold index of each label; a fold's labels are predicted by the prior
            fit on the others. With fewer than two folds the middle of the grid is returned.
    """
    fold_ids = sorted(int(f) for f in torch.unique(folds))
    if len(fold_ids) < 2:
        return grid[len(grid) // 2]
    best, best_mae = grid[0], float("inf")
    for strength in grid:
        abs_err = torch.zeros(len(labels.y_ev), dtype=torch.float64)
        for f in fold_ids:
            held = folds == f
            prior = fit_scaling_prior(labels.subset(~held), strength)
            out = labels.subset(held)
            abs_err[held] = (out.predict(prior) - out.y_ev.double()).abs()
        mae = float(abs_err.mean())
        if mae < best_mae:
            best, best_mae = strength, mae
    return best
