"""Batch selection over the discrete pool: q distinct candidates, spread out, each with a reason.

Methods (``method=``):

* ``topk`` — the q best scores; no diversity (a baseline, and right for per-slot Thompson
  scores, whose rows already differ).
* ``kriging_believer`` — sequential greedy: after each pick x the ensemble is *conditioned* on
  the believed label y_x = μ_x (so μ is unchanged, the incumbent moves to μ_x if lower) and the
  acquisition is rescored. The ensemble's member-wise covariance Σ = CᵀC (C: weighted, centred
  members, ``K x N``) is treated as a Gaussian over a K-dimensional weight vector, so
  conditioning is exact and cheap (K x K algebra); candidates correlated with x across members
  lose σ in proportion to that correlation. The conditioned members C' = P^{-1/2} C keep the
  weighted mean, so the rescored posterior is still an ``EnsemblePosterior``.
  That covariance has rank K - 1, so after about K picks it has nothing left to condition and
  every σ collapses; when embeddings are given (the engine always passes the ensemble's) the
  believer instead uses a full-rank local kernel, Σ_xy = σ_x σ_y exp(-|e_x - e_y|² / 2ℓ²) in
  embedding space (ℓ = a fraction of the median pairwise distance): candidates near a pick lose
  σ, far ones keep it, for any batch size. Members are rescaled about μ to the conditioned σ.
* ``maxmin`` — sequential greedy by score, excluding candidates closer than ``min_distance`` in
  embedding space to any earlier pick; when every remaining candidate is excluded the rest of
  the batch is filled by score and the reason says so.
* ``random`` — cold start: seeded uniform sample.
* ``farthest_point`` — cold start, space filling: a seeded random first pick, then repeatedly
  the candidate farthest from every pick so far.

Everything is vectorised over N; the loops run q times. ``botorch.optim.optimize_acqf_discrete``
is not used: its sequential mode needs MC acquisition functions with ``X_pending``, while ours
are analytic and the believer update above is specific to ensembles.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from botorch.posteriors.ensemble import EnsemblePosterior
from torch import Tensor

from alloop.loop.agent.acquisition import (
    AcquisitionContext,
    AcquisitionError,
    AcquisitionSpec,
    PoolEnsembleModel,
)
from alloop.loop.agent.believer import condition_in_embedding_space, condition_on_believed

logger = logging.getLogger(__name__)

__all__ = [
    "BATCH_METHODS",
    "COLD_START_METHODS",
    "BatchPick",
    "BatchSelection",
    "condition_in_embedding_space",
    "condition_on_believed",
    "select_batch",
]

BATCH_METHODS: tuple[str, ...] = ("topk", "kriging_believer", "maxmin", "random", "farthest_point")
COLD_START_METHODS: tuple[str, ...] = ("random", "farthest_point")
# maxmin without an explicit radius: this fraction of the median pairwise embedding distance.
_AUTO_RADIUS_FRACTION = 0.1
# kriging believer in embedding space: kernel length scale as a fraction of that median distance
_AUTO_LENGTH_FRACTION = 0.25
_AUTO_RADIUS_SAMPLE = 512


@dataclass(frozen=True)
class BatchPick:
    """One chosen candidate.

    Attributes:
        index: Pool index (row of the posterior / embeddings).
        rank: Selection order, 0 first.
        score: Acquisition score that won the slot (after believer rescoring for
            ``kriging_believer``); ``None`` for cold-start picks.
        reason: Short human-readable reason, e.g. ``"lcb=-1.240 eV (mu=-1.000, sigma=0.120)"``;
            for people only: the facts are the fields.
        believer_sigma_ev: ``kriging_believer``: the σ the pick was scored with, lowered by the
            believed labels of the earlier picks (the model's σ for the first pick).
        threshold_ev: The incumbent (``context.best_label_ev``) the pick was scored against;
            ``kriging_believer`` moves it to a believed label below it.
    """

    index: int
    rank: int
    score: float | None
    reason: str
    believer_sigma_ev: float | None = None
    threshold_ev: float | None = None


@dataclass(frozen=True)
class BatchSelection:
    """The batch, in selection order."""

    method: str
    picks: tuple[BatchPick, ...]

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(p.index for p in self.picks)

    def __len__(self) -> int:
        return len(self.picks)


@dataclass
class _Pool:
    """Validated inputs shared by the selection methods."""

    n: int
    remaining: Tensor  # N bool, True = may still be picked
    acquisition: AcquisitionSpec | None
    mean: Tensor | None  # N, eV
    std: Tensor | None  # N, eV
    incumbent_ev: float | None = None  # the context's best label, eV


def select_batch(
    scores: Tensor | None,
    embeddings: Tensor | None,
    q: int,
    *,
    method: str,
    generator: torch.Generator | None = None,
    posterior: EnsemblePosterior | None = None,
    acquisition: AcquisitionSpec | None = None,
    context: AcquisitionContext | None = None,
    available: Tensor | None = None,
    min_distance: float | None = None,
    believer_noise_ev: float = 0.1,
) -> BatchSelection:
    """Pick up to ``q`` distinct pool indices.

    Args:
        scores: ``N`` acquisition scores (higher is better) or ``q' x N`` per-slot scores with
            ``q' >= q`` (row j ranks slot j). ``None`` for cold-start methods, or to have
            ``acquisition`` compute them from ``posterior`` and ``context``.
        embeddings: ``N x D`` candidate embeddings (ensemble latent space or descriptors);
            needed by ``maxmin`` and ``farthest_point``.
        q: Batch size; fewer are returned when fewer candidates are available.
        method: One of :data:`BATCH_METHODS`.
        generator: Seeded generator, needed by ``random`` and ``farthest_point``.
        posterior: Ensemble posterior over the pool (``K x N x 1``); needed by
            ``kriging_believer``, and used elsewhere to put μ and σ in the reasons.
        acquisition: The acquisition that produced ``scores``; names the score in reasons and
            is rescored by ``kriging_believer``.
        context: The context ``scores`` were computed with (``kriging_believer``).
        available: ``N`` bool mask of candidates that may be picked; default all.
        min_distance: ``maxmin`` exclusion radius in embedding units; default
            0.1 x the median pairwise distance of (up to 512 evenly spaced) candidates.
        believer_noise_ev: Noise std of the believed labels in ``kriging_believer``, eV;
            smaller spreads the batch harder.

    Returns:
        A :class:`BatchSelection` with one :class:`BatchPick` per chosen candidate.
    """
    if method not in BATCH_METHODS:
        raise AcquisitionError(f"unknown batch method {method!r}; valid: {list(BATCH_METHODS)}")
    if isinstance(q, bool) or not isinstance(q, int) or q < 1:
        raise AcquisitionError(f"q must be an integer >= 1, got {q!r}")
    if scores is None and acquisition is not None and method not in COLD_START_METHODS:
        if posterior is None or context is None:
            raise AcquisitionError("scoring via `acquisition` needs `posterior` and `context`")
        scores = acquisition(posterior, context)
    pool = _prepare_pool(scores, embeddings, posterior, acquisition, available)
    pool.incumbent_ev = context.best_label_ev if context is not None else None
    k = min(q, int(pool.remaining.sum()))
    if k < q:
        logger.info("only %d candidates available for a batch of %d", k, q)
    if k == 0:
        return BatchSelection(method, ())
    if method == "random":
        picks = _random(pool, k, _need_generator(generator, method))
    elif method == "farthest_point":
        emb = _need_embeddings(embeddings, method)
        picks = _farthest_point(pool, emb, k, _need_generator(generator, method))
    else:
        rows = _score_rows(scores, pool.n, q, method)
        if method == "topk":
            picks = _topk(pool, rows, k)
        elif method == "maxmin":
            emb = _need_embeddings(embeddings, method)
            picks = _maxmin(pool, rows, emb, k, min_distance)
        else:
            picks = _kriging_believer(
                pool, rows, k, posterior, acquisition, context, believer_noise_ev, embeddings
            )
    return BatchSelection(method, tuple(picks))


def _prepare_pool(
    scores: Tensor | None,
    embeddings: Tensor | None,
    posterior: EnsemblePosterior | None,
    acquisition: AcquisitionSpec | None,
    available: Tensor | None,
) -> _Pool:
    sizes: dict[str, int] = {}
    if scores is not None:
        sizes["scores"] = int(scores.shape[-1])
    if embeddings is not None:
        if embeddings.ndim != 2:
            raise AcquisitionError(f"embeddings must be N x D, got shape {tuple(embeddings.shape)}")
        if not torch.isfinite(embeddings).all():
            raise AcquisitionError("embeddings contain non-finite values")
        sizes["embeddings"] = int(embeddings.shape[0])
    mean = std = None
    if posterior is not None:
        mean, std = PoolEnsembleModel.from_posterior(posterior).mean_and_std()
        sizes["posterior"] = int(mean.shape[0])
    if available is not None:
        if available.dtype != torch.bool or available.ndim != 1:
            raise AcquisitionError(
                f"available must be a 1-D bool mask, got {available.dtype} {tuple(available.shape)}"
            )
        sizes["available"] = int(available.shape[0])
    if not sizes:
        raise AcquisitionError("cannot tell the pool size: pass scores, embeddings or available")
    if len(set(sizes.values())) != 1:
        raise AcquisitionError(f"inputs disagree on the pool size N: {sizes}")
    n = next(iter(sizes.values()))
    remaining = available.clone() if available is not None else torch.ones(n, dtype=torch.bool)
    return _Pool(n, remaining, acquisition, mean, std)


def _score_rows(scores: Tensor | None, n: int, q: int, method: str) -> Tensor:
    """``rows x N`` float64 scores, rows 1 (shared) or >= q (per slot); ±inf made finite."""
    if scores is None:
        raise AcquisitionError(
            f"batch method {method!r} needs scores (or acquisition + posterior + context); "
            f"cold-start methods without scores: {list(COLD_START_METHODS)}"
        )
    rows = scores.to(torch.float64)
    rows = rows.unsqueeze(0) if rows.ndim == 1 else rows
    if rows.ndim != 2 or (rows.shape[0] != 1 and rows.shape[0] < q):
        raise AcquisitionError(
            f"scores must be N or (rows >= q={q}) x N per slot, got shape {tuple(scores.shape)}"
        )
    if torch.isnan(rows).any():
        raise AcquisitionError(f"scores contain {int(torch.isnan(rows).sum())} NaN values")
    # Masked entries become -inf below; a genuine -inf score must still beat them.
    big = torch.finfo(torch.float64).max
    return rows.clamp(-big, big)


def _need_generator(generator: torch.Generator | None, method: str) -> torch.Generator:
    if generator is None:
        raise AcquisitionError(f"batch method {method!r} needs a seeded torch.Generator")
    return generator


def _need_embeddings(embeddings: Tensor | None, method: str) -> Tensor:
    if embeddings is None:
        raise AcquisitionError(f"batch method {method!r} needs embeddings (N x D)")
    return embeddings


def _describe(pool: _Pool, index: int, score: float, std: Tensor | None = None) -> str:
    acq = pool.acquisition
    text = acq.describe(score) if acq is not None else f"score={score:.4g}"
    std = pool.std if std is None else std
    if pool.mean is not None and std is not None:
        text += f" (mu={pool.mean[index].item():.3f}, sigma={std[index].item():.3f})"
    return text


def _argmax(row: Tensor, mask: Tensor) -> int:
    return int(torch.where(mask, row, -math.inf).argmax())


def _topk(pool: _Pool, rows: Tensor, k: int) -> list[BatchPick]:
    if rows.shape[0] == 1:
        idx = pool.remaining.nonzero().flatten()
        order = torch.sort(rows[0, idx], descending=True, stable=True).indices[:k]
        chosen = idx[order].tolist()
    else:
        chosen = []
        for j in range(k):
            i = _argmax(rows[j], pool.remaining)
            pool.remaining[i] = False
            chosen.append(i)
    out = []
    for rank, i in enumerate(chosen):
        s = rows[min(rank, rows.shape[0] - 1), i].item()
        out.append(BatchPick(i, rank, s, _describe(pool, i, s), threshold_ev=pool.incumbent_ev))
    return out


def _centred(emb: Tensor) -> tuple[Tensor, Tensor]:
    """Centred embeddings (input precision) and their squared norms.

    Centring keeps the norms small, so ``|a|² + |b|² − 2a·b`` loses little to cancellation even
    in float32, and we avoid a float64 copy of an ``N x D`` matrix.
    """
    emb = emb if emb.is_floating_point() else emb.to(torch.float64)
    emb = emb - emb.mean(dim=0)
    return emb, (emb * emb).sum(dim=1)


def _sq_dist_to(emb: Tensor, sq_norm: Tensor, i: int) -> Tensor:
    """``N`` squared distances (float64) from every embedding to embedding ``i``."""
    return (sq_norm + sq_norm[i] - 2.0 * (emb @ emb[i])).clamp_min(0.0).to(torch.float64)


def _auto_radius(emb: Tensor, mask: Tensor) -> float:
    idx = mask.nonzero().flatten()
    if idx.numel() > _AUTO_RADIUS_SAMPLE:  # evenly spaced: deterministic without a generator
        idx = idx[torch.linspace(0, idx.numel() - 1, _AUTO_RADIUS_SAMPLE).long()]
    sub = emb[idx]
    d = torch.cdist(sub, sub)
    upper = d[torch.triu(torch.ones_like(d, dtype=torch.bool), diagonal=1)]
    return _AUTO_RADIUS_FRACTION * float(upper.median()) if upper.numel() else 0.0


def _maxmin(
    pool: _Pool, rows: Tensor, emb: Tensor, k: int, min_distance: float | None
) -> list[BatchPick]:
    if min_distance is not None and not (0.0 <= min_distance < math.inf):
        raise AcquisitionError(f"min_distance must be finite and >= 0, got {min_distance!r}")
    emb, sq_norm = _centred(emb)
    radius = _auto_radius(emb, pool.remaining) if min_distance is None else min_distance
    min_d2 = torch.full((pool.n,), math.inf, dtype=torch.float64)
    out: list[BatchPick] = []
    for rank in range(k):
        row = rows[min(rank, rows.shape[0] - 1)]
        allowed = pool.remaining & (min_d2 > radius**2)
        exhausted = not bool(allowed.any())
        i = _argmax(row, pool.remaining if exhausted else allowed)
        spacing = "first pick" if rank == 0 else f"d_min={math.sqrt(min_d2[i].item()):.3g}"
        if exhausted:
            spacing += f" (radius {radius:.3g} exhausted)"
        s = row[i].item()
        reason = f"{_describe(pool, i, s)}; {spacing}"
        out.append(BatchPick(i, rank, s, reason, threshold_ev=pool.incumbent_ev))
        pool.remaining[i] = False
        min_d2 = torch.minimum(min_d2, _sq_dist_to(emb, sq_norm, i))
    return out


def _random(pool: _Pool, k: int, generator: torch.Generator) -> list[BatchPick]:
    idx = pool.remaining.nonzero().flatten()
    chosen = idx[torch.randperm(idx.numel(), generator=generator)[:k]].tolist()
    return [BatchPick(i, r, None, "cold-start random") for r, i in enumerate(chosen)]


def _farthest_point(
    pool: _Pool, emb: Tensor, k: int, generator: torch.Generator
) -> list[BatchPick]:
    emb, sq_norm = _centred(emb)
    idx = pool.remaining.nonzero().flatten()
    i = int(idx[torch.randint(idx.numel(), (1,), generator=generator)])
    out = [BatchPick(i, 0, None, "cold-start farthest-point seed (random)")]
    pool.remaining[i] = False
    min_d2 = _sq_dist_to(emb, sq_norm, i)
    for rank in range(1, k):
        i = _argmax(min_d2, pool.remaining)
        d = math.sqrt(min_d2[i].item())
        out.append(BatchPick(i, rank, None, f"cold-start farthest-point (d_min={d:.3g})"))
        pool.remaining[i] = False
        min_d2 = torch.minimum(min_d2, _sq_dist_to(emb, sq_norm, i))
    return out


def _kriging_believer(
    pool: _Pool,
    rows: Tensor,
    k: int,
    posterior: EnsemblePosterior | None,
    acquisition: AcquisitionSpec | None,
    context: AcquisitionContext | None,
    noise_ev: float,
    embeddings: Tensor | None = None,
) -> list[BatchPick]:
    if posterior is None or acquisition is None or context is None:
        raise AcquisitionError(
            "batch method 'kriging_believer' needs posterior, acquisition and context"
        )
    if acquisition.per_slot or not acquisition.conditionable or rows.shape[0] != 1:
        raise AcquisitionError(
            f"batch method 'kriging_believer' cannot rescore acquisition {acquisition.name!r}; "
            "use topk or maxmin for it"
        )
    if not (0.0 < noise_ev < math.inf):
        raise AcquisitionError(f"believer_noise_ev must be finite and > 0, got {noise_ev!r}")
    row, std = rows[0], pool.std
    length = None
    if embeddings is not None:
        length = (
            _AUTO_LENGTH_FRACTION / _AUTO_RADIUS_FRACTION * _auto_radius(embeddings, pool.remaining)
        )
    picked: list[int] = []
    out: list[BatchPick] = []
    for rank in range(k):
        i = _argmax(row, pool.remaining)
        s = row[i].item()
        believed_sigma = None if std is None else float(std[i])
        out.append(BatchPick(i, rank, s, _describe(pool, i, s, std), believed_sigma,
                             context.best_label_ev))  # fmt: skip
        pool.remaining[i] = False
        picked.append(i)
        if rank == k - 1:
            break
        if embeddings is not None and length:
            believed = condition_in_embedding_space(posterior, embeddings, picked, noise_ev, length)
        else:
            believed = condition_on_believed(posterior, picked, noise_ev)
        std = believed.variance.view(-1).clamp_min(0.0).sqrt()
        context = context.believing(believed.mean.view(-1)[i].item())
        row = acquisition(believed, context).to(torch.float64)
    return out
