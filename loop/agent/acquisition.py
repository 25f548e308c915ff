"""Named acquisition functions over a discrete pool of candidate pairs, scored through BoTorch.

Layers, as in BoTorch: the surrogate's ensemble hands us an ``EnsemblePosterior`` over the
unlabelled pool; :class:`PoolEnsembleModel` turns it back into a BoTorch ``Model`` whose inputs
are candidate indices; BoTorch acquisition functions (``UpperConfidenceBound``,
``LogExpectedImprovement``, ``PosteriorMean``, ``PosteriorStandardDeviation``) evaluate that
model on every candidate; ``alloop.loop.agent.batch.select_batch`` turns the scores into a batch.

The target is the global minimum adsorption energy (GMAE, eV) and we *minimise* it (lower =
stronger binding). Every acquisition function returns scores where **higher is more
desirable**: shape ``N`` (one score per candidate, shared by every batch slot) or, for
per-slot functions (Thompson sampling), ``q x N`` (row ``j`` ranks the candidates for slot
``j``).

Gaussian approximation: ``lcb``, ``ucb``, ``ei`` and ``target_window`` use the ensemble's
weighted mean μ and (unbiased, weighted) standard deviation σ as BoTorch's analytic functions
do for an ``EnsemblePosterior``. With the ensemble sizes we train (K ≈ 5) the empirical
fractions of members would give only K + 1 distinct values and zero for every candidate whose
members all miss (typical early in a campaign), so a smooth Gaussian score ranks better.
``thompson`` uses the members themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import torch
from botorch.acquisition.analytic import (
    AnalyticAcquisitionFunction,
    LogExpectedImprovement,
    PosteriorMean,
    PosteriorStandardDeviation,
    UpperConfidenceBound,
)
from botorch.models.ensemble import EnsembleModel
from botorch.posteriors.ensemble import EnsemblePosterior
from botorch.utils.probability.utils import log_prob_normal_in
from torch import Tensor

from alloop.loop.config import LCB_BETA
from alloop.loop.errors import LoopError

logger = logging.getLogger(__name__)

ThompsonDraw = Literal["member", "gaussian"]
_THOMPSON_DRAWS: tuple[str, ...] = ("member", "gaussian")


class AcquisitionError(LoopError, ValueError):
    """Bad input to acquisition, batch selection, escalation or stopping; names the bad value."""


@dataclass(frozen=True)
class AcquisitionContext:
    """What an acquisition function needs besides the posterior.

    Attributes:
        best_label_ev: Lowest (strongest-binding) GMAE labelled so far, eV; ``ei`` improves on
            it. ``None`` before the first label.
        target_window_ev: ``(lo, hi)`` GMAE window in eV for ``target_window``, ``lo < hi``.
        beta: Multiplier of σ in ``lcb`` (μ − beta·σ) and ``ucb`` (μ + beta·σ). BoTorch's
            ``UpperConfidenceBound`` takes ``beta**2`` (it multiplies σ by √β).
        q: Batch slots; per-slot functions (``thompson``) return ``q x N`` scores.
        thompson_draw: ``"member"`` (each slot follows one ensemble member drawn by weight) or
            ``"gaussian"`` (each slot draws N(μ, σ²) independently per candidate).
        generator: Seeded generator for ``random`` and ``thompson``; global random state is
            never used.
        shortlist_ev: With ``acquisition.top_k = k > 1``: the k lowest values known, ascending
            (`shortlist`); ``best_label_ev`` is then its last, the k-th best.
            Empty: ``best_label_ev`` is the best label.
    """

    best_label_ev: float | None = None
    target_window_ev: tuple[float, float] | None = None
    beta: float = LCB_BETA
    q: int = 1
    thompson_draw: ThompsonDraw = "member"
    generator: torch.Generator | None = None
    shortlist_ev: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not (self.beta >= 0.0 and self.beta < float("inf")):
            raise AcquisitionError(f"beta must be finite and >= 0, got {self.beta!r}")
        if self.q < 1:
            raise AcquisitionError(f"q must be >= 1, got {self.q!r}")
        if self.thompson_draw not in _THOMPSON_DRAWS:
            raise AcquisitionError(
                f"unknown thompson_draw {self.thompson_draw!r}; valid: {list(_THOMPSON_DRAWS)}"
            )
        if self.target_window_ev is not None:
            lo, hi = self.target_window_ev
            if not lo < hi:
                raise AcquisitionError(
                    f"target_window_ev must be (lo, hi) with lo < hi, got {self.target_window_ev!r}"
                )
        if self.best_label_ev is not None and self.best_label_ev != self.best_label_ev:
            raise AcquisitionError("best_label_ev is NaN; pass None when there is no label yet")

    def believing(self, value_ev: float) -> AcquisitionContext:
        """The context after a believed label ``value_ev`` (kriging believer): the incumbent
        moves to it when it is lower; with a shortlist, to the new k-th best."""
        if not self.shortlist_ev:
            best = self.best_label_ev
            return replace(self, best_label_ev=value_ev if best is None else min(best, value_ev))
        kept = tuple(sorted((*self.shortlist_ev, value_ev))[: len(self.shortlist_ev)])
        return replace(self, best_label_ev=kept[-1], shortlist_ev=kept)

    def require_generator(self, name: str) -> torch.Generator:
        if self.generator is None:
            raise AcquisitionError(
                f"acquisition {name!r} needs AcquisitionContext.generator (a seeded "
                "torch.Generator); global random state is never used"
            )
        return self.generator


def shortlist(target_ev: Sequence[float], predicted_ev: Sequence[float], k: int) -> list[float]:
    """The k lowest target-level values known, ascending: labels where there are k of them,
    else labels and the candidates' predicted μ together (so a threshold exists before k
    pairs are labelled); fewer than k when fewer values exist."""
    if len(target_ev) >= k:
        return sorted(target_ev)[:k]
    return sorted([*target_ev, *predicted_ev])[:k]


def kth_best(target_ev: Sequence[float], predicted_ev: Sequence[float], k: int) -> float:
    """The k-th lowest target-level value known (the last of `shortlist`): what expected
    improvement is measured against with ``acquisition.top_k = k``."""
    values = shortlist(target_ev, predicted_ev, k)
    if not values:
        raise AcquisitionError("kth_best needs at least one value")
    return values[-1]


def pool_members(posterior: EnsemblePosterior) -> tuple[Tensor, Tensor]:
    """Per-member predictions and normalised weights from an ensemble posterior over the pool.

    One layout for ``N`` candidates and ``K`` members: ``K x N x 1``, one joint posterior over
    the pool (BoTorch's ``s x q x m``), as `AdsMTEnsemble.pool_posterior` makes it.

    Returns:
        ``members``: ``K x N`` GMAE predictions in eV (float64); ``weights``: ``K`` summing to 1.
    """
    if not isinstance(posterior, EnsemblePosterior):
        raise AcquisitionError(
            f"expected a botorch EnsemblePosterior, got {type(posterior).__name__}"
        )
    values = posterior.values
    shape = tuple(values.shape)
    if values.ndim != 3 or shape[-1] != 1:
        raise AcquisitionError(
            f"ensemble posterior values have shape {shape}; expected K x N x 1 (joint over "
            "the pool, one output: AdsMTEnsemble.pool_posterior)"
        )
    members = values[..., 0]
    if members.shape[1] == 0:
        raise AcquisitionError("the candidate pool is empty (N = 0)")
    members = members.to(torch.float64)
    if not torch.isfinite(members).all():
        bad = (~torch.isfinite(members)).any(dim=0).nonzero().flatten()[:5].tolist()
        raise AcquisitionError(f"non-finite ensemble predictions at candidates {bad}")
    return members, posterior.weights.to(members)


class PoolEnsembleModel(EnsembleModel):
    """A BoTorch ensemble model over a fixed pool whose inputs are candidate indices.

    The surrogate evaluates the pool once; this model re-serves those per-member predictions so
    that BoTorch acquisition functions can be evaluated on ``X = candidates``: a
    ``b x q x 1`` tensor of pool indices (stored as float64).

    Args:
        members: ``K x N`` per-member GMAE predictions in eV.
        weights: ``K`` member weights (normalised by BoTorch); ``None`` for uniform.
    """

    members: Tensor

    def __init__(self, members: Tensor, weights: Tensor | None = None) -> None:
        super().__init__(weights=weights)
        self.register_buffer("members", members)
        self._num_outputs = 1

    @classmethod
    def from_posterior(cls, posterior: EnsemblePosterior) -> PoolEnsembleModel:
        members, weights = pool_members(posterior)
        return cls(members, weights)

    @property
    def ensemble_size(self) -> int:
        return int(self.members.shape[0])

    @property
    def pool_size(self) -> int:
        return int(self.members.shape[1])

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size([])

    @property
    def candidates(self) -> Tensor:
        """``N x 1 x 1`` indices: every candidate as its own t-batch (analytic, q = 1)."""
        return torch.arange(self.pool_size, dtype=self.members.dtype).view(-1, 1, 1)

    def forward(self, X: Tensor) -> Tensor:
        """``b x q x 1`` candidate indices -> ``b x K x q x 1`` member predictions (eV)."""
        idx = X[..., 0].long()
        return self.members[:, idx].unsqueeze(-1).movedim(0, -3)

    def mean_and_std(self) -> tuple[Tensor, Tensor]:
        """Ensemble mean μ and standard deviation σ (eV), each ``N``, as BoTorch computes them."""
        post = self.posterior(self.candidates)
        return post.mean.view(-1), post.variance.clamp_min(0.0).sqrt().view(-1)


class LogProbabilityInWindow(AnalyticAcquisitionFunction):
    """log P(lo <= Y <= hi) under the Gaussian approximation N(μ, σ²) of the posterior.

    Catalysts want binding neither too weak nor too strong (Sabatier); the log keeps candidates
    far outside the window ranked instead of all tied at probability 0.
    """

    def __init__(self, model: EnsembleModel, lo: float, hi: float) -> None:
        super().__init__(model=model)
        self.lo = lo
        self.hi = hi

    def forward(self, X: Tensor) -> Tensor:
        """``b x 1 x d`` candidates (t-batches of one point) -> ``b`` log-probabilities."""
        if X.ndim != 3 or X.shape[-2] != 1:
            raise AcquisitionError(f"expected b x 1 x d candidates, got shape {tuple(X.shape)}")
        mean, sigma = self._mean_and_sigma(X)
        if sigma is None:  # only None when compute_sigma=False
            raise AcquisitionError("posterior gave no standard deviation")
        return log_prob_normal_in((self.lo - mean) / sigma, (self.hi - mean) / sigma).view(
            X.shape[:-2]
        )


AcquisitionFn = Callable[[PoolEnsembleModel, AcquisitionContext], Tensor]


@dataclass(frozen=True)
class AcquisitionSpec:
    """A registered acquisition function and what it needs.

    Attributes:
        name: Registry name.
        fn: ``(model, context) -> scores``; higher is more desirable.
        per_slot: Returns ``q x N`` (one score row per batch slot) instead of ``N``.
        needs_spread: Needs K >= 2 members (σ or member draws carry the information).
        conditionable: Rescoring it on a fantasised (kriging-believer) posterior is meaningful.
        description: One line for ``alloop`` help and the dashboard.
        reason: Template for a pick's reason; ``{score}`` is the score, ``{neg}`` its negation
            (for scores that negate a GMAE, so the reason shows the energy itself).
        log_ei: The score is log expected improvement below ``context.best_label_ev``, so a
            pick's EI (eV) is ``exp(score)`` and the incumbent is its threshold.
    """

    name: str
    fn: AcquisitionFn
    per_slot: bool
    needs_spread: bool
    conditionable: bool
    description: str
    reason: str = "{name}={score:.4g}"
    log_ei: bool = False

    def describe(self, score: float) -> str:
        """A pick's reason for ``score``, e.g. ``"lcb=-1.240 eV"``."""
        return self.reason.format(name=self.name, score=score, neg=-score)

    def __call__(self, posterior: EnsemblePosterior, context: AcquisitionContext) -> Tensor:
        """Score the pool.

        Args:
            posterior: Ensemble posterior over the ``N`` pool candidates (see :func:`pool_members`).
            context: Incumbent, window, beta, batch size, generator.

        Returns:
            ``N`` scores, or ``q x N`` for per-slot functions; float64, higher is better.
        """
        model = PoolEnsembleModel.from_posterior(posterior)
        if self.needs_spread and model.ensemble_size < 2:
            raise AcquisitionError(
                f"acquisition {self.name!r} needs an ensemble of >= 2 members, got "
                f"{model.ensemble_size}; use one that needs no spread (greedy, random)"
            )
        with torch.no_grad():
            scores = self.fn(model, context)
        expected = (context.q, model.pool_size) if self.per_slot else (model.pool_size,)
        if tuple(scores.shape) != expected:
            raise AcquisitionError(
                f"acquisition {self.name!r} returned shape {tuple(scores.shape)}, "
                f"expected {expected}"
            )
        if torch.isnan(scores).any():
            raise AcquisitionError(f"acquisition {self.name!r} produced NaN scores")
        return scores


class AcquisitionRegistry:
    """Name -> :class:`AcquisitionSpec`; refuses duplicates, lists valid names on a miss."""

    def __init__(self) -> None:
        self._specs: dict[str, AcquisitionSpec] = {}

    def register(
        self,
        name: str,
        *,
        description: str,
        per_slot: bool = False,
        needs_spread: bool = True,
        conditionable: bool = True,
        reason: str = "{name}={score:.4g}",
        log_ei: bool = False,
    ) -> Callable[[AcquisitionFn], AcquisitionFn]:
        """Decorator registering ``fn`` under ``name``; a second registration of a name raises."""
        if not name or not name.isidentifier():
            raise AcquisitionError(f"acquisition name must be an identifier, got {name!r}")
        if name in self._specs:
            raise AcquisitionError(
                f"acquisition {name!r} is already registered; registered: {self.names()}"
            )

        def decorator(fn: AcquisitionFn) -> AcquisitionFn:
            if name in self._specs:
                raise AcquisitionError(f"acquisition {name!r} is already registered")
            self._specs[name] = AcquisitionSpec(
                name, fn, per_slot, needs_spread, conditionable, description, reason, log_ei
            )
            return fn

        return decorator

    def get(self, name: str) -> AcquisitionSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise AcquisitionError(
                f"unknown acquisition {name!r}; valid: {list(self.names())}"
            ) from None

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._specs))

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[AcquisitionSpec]:
        return iter(self._specs[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"AcquisitionRegistry({list(self.names())})"


ACQUISITIONS = AcquisitionRegistry()
register_acquisition = ACQUISITIONS.register
get_acquisition = ACQUISITIONS.get


def score_pool(name: str, posterior: EnsemblePosterior, context: AcquisitionContext) -> Tensor:
    """Score the pool with the registered acquisition ``name`` (``N`` or ``q x N``)."""
    return get_acquisition(name)(posterior, context)


@register_acquisition(
    "uncertainty", description="pure exploration: largest ensemble σ", reason="sigma={score:.3f} eV"
)
def _uncertainty(model: PoolEnsembleModel, context: AcquisitionContext) -> Tensor:
    return PosteriorStandardDeviation(model)(model.candidates)


@register_acquisition(
    "lcb", description="optimistic for minimisation: lowest μ − beta·σ", reason="lcb={neg:.3f} eV"
)
def _lcb(model: PoolEnsembleModel, context: AcquisitionContext) -> Tensor:
    # maximize=False gives −μ + √β·σ = −(μ − beta·σ): the lowest lower bound scores highest.
    return UpperConfidenceBound(model, beta=context.beta**2, maximize=False)(model.candidates)


@register_acquisition(
    "ucb", description="highest μ + beta·σ (seeks weak binding)", reason="ucb={score:.3f} eV"
)
def _ucb(model: PoolEnsembleModel, context: AcquisitionContext) -> Tensor:
    return UpperConfidenceBound(model, beta=context.beta**2, maximize=True)(model.candidates)


@register_acquisition(
    "ei",
    description="log expected improvement below the best label (the k-th best with top_k)",
    reason="log_ei={score:.3g}",
    log_ei=True,
)
def _ei(model: PoolEnsembleModel, context: AcquisitionContext) -> Tensor:
    if context.best_label_ev is None:
        raise AcquisitionError(
            "acquisition 'ei' needs context.best_label_ev (lowest GMAE labelled so far); "
            "none yet — start with a cold-start batch or another acquisition"
        )
    acqf = LogExpectedImprovement(model, best_f=context.best_label_ev, maximize=False)
    return acqf(model.candidates)


@register_acquisition(
    "target_window",
    description="log P(GMAE in target window), Gaussian",
    reason="log_p_window={score:.3g}",
)
def _target_window(model: PoolEnsembleModel, context: AcquisitionContext) -> Tensor:
    if context.target_window_ev is None:
        raise AcquisitionError(
            "acquisition 'target_window' needs context.target_window_ev = (lo, hi) in eV"
        )
    lo, hi = context.target_window_ev
    return LogProbabilityInWindow(model, lo, hi)(model.candidates)


@register_acquisition(
    "greedy", description="exploitation: lowest μ", needs_spread=False, reason="greedy"
)
def _greedy(model: PoolEnsembleModel, context: AcquisitionContext) -> Tensor:
    return PosteriorMean(model, maximize=False)(model.candidates)


@register_acquisition(
    "random", description="uniform random scores (seeded)", needs_spread=False, conditionable=False
)
def _random(model: PoolEnsembleModel, context: AcquisitionContext) -> Tensor:
    gen = context.require_generator("random")
    return torch.rand(model.pool_size, generator=gen, dtype=torch.float64)


@register_acquisition(
    "thompson",
    description="Thompson sampling: slot j takes the argmin of one member / Gaussian draw",
    per_slot=True,
    conditionable=False,
    reason="thompson draw={neg:.3f} eV",
)
def _thompson(model: PoolEnsembleModel, context: AcquisitionContext) -> Tensor:
    gen = context.require_generator("thompson")
    q = context.q
    if context.thompson_draw == "member":
        post = model.posterior(model.candidates.view(-1, 1))  # joint: K x N x 1
        draw = torch.multinomial(post.weights, q, replacement=True, generator=gen)
        samples = post.rsample_from_base_samples(torch.Size([q]), base_samples=draw)[..., 0]
    else:
        mean, std = model.mean_and_std()
        noise = torch.randn(q, model.pool_size, generator=gen, dtype=mean.dtype)
        samples = mean + std * noise
    return -samples  # q x N: a low sampled GMAE is desirable
