"""What the campaign's stored surrogate says, recomputed for the dashboard from a checkpoint.

The engine stores each round's ensemble (its checkpoint), the batch's μ and σ and the acquired
pairs' site scores (`site_scores` events), not the scores of the whole pool. The dashboard
takes a pair's stored site scores where it has them and otherwise recomputes them, as it does
μ, σ over the pool a round scored (`pool_scores`), from the stored checkpoint on demand
(seconds, in a worker thread).

`render_site_map` draws the top layer as a small map: each atom at its (x, y), its element
letter shaded by its share of the attention.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.text import Text

from alloop.loop.config import EscalationSection
from alloop.store import CampaignStore

#: an atom within this height of the highest slab atom is in the top layer (when untagged)
TOP_LAYER_DEPTH_ANG = 1.0
#: top-layer shares within this fraction of their mean count as one uniform share
UNIFORM_SPREAD = 0.02
_SHADES = ("grey50", "blue", "cyan", "green", "yellow", "dark_orange", "red")


@dataclass(frozen=True)
class SiteMap:
    """Attention over the top layer of a pair's slab, from the ensemble of ``round_index``.

    ``xy_ang``: `n x 2` positions (Å) of the `n` top-layer atoms, ``symbols``: their elements,
    ``atom_index``: their indices in the slab, ``scores``: their attention, renormalised to sum
    to 1 over the top layer.
    """

    pair_key: str
    round_index: int
    xy_ang: np.ndarray
    symbols: tuple[str, ...]
    atom_index: tuple[int, ...]
    scores: np.ndarray
    stored: bool = False  # True: as stored with the acquisition; False: recomputed
    top_share: float = 1.0  # the top layer's share of the attention over the whole slab
    n_atoms: int = 0  # atoms in the slab


@dataclass(frozen=True)
class PoolScores:
    """μ, σ (eV) the ensemble of ``round_index`` gives the pairs still unacquired when that
    round chose its batch, and the batch's stored μ, σ."""

    round_index: int
    mu_ev: tuple[float, ...]
    sigma_ev: tuple[float, ...]
    batch_mu_ev: tuple[float, ...]
    batch_sigma_ev: tuple[float, ...]


#: checkpoint sha256 -> loaded ensemble: moving from pair to pair reloads nothing
_LOADED: dict[str, Any] = {}
_LOADED_MAX = 2


def stored_ensemble(
    store: CampaignStore, round_index: int | None = None
) -> tuple[int, Any] | None:
    """(round, ensemble) of the given round's checkpoint, or the latest stored; None if none."""
    from alloop.surrogate.ensemble import AdsMTEnsemble

    found = store.checkpoints(round_index)
    if not found:
        return None
    ckpt = found[0]
    if ckpt.sha256 not in _LOADED:
        while len(_LOADED) >= _LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[ckpt.sha256] = AdsMTEnsemble.from_bytes(ckpt.blob, device="cpu")
    return ckpt.round_index, _LOADED[ckpt.sha256]


def stored_escalation(store: CampaignStore) -> EscalationSection:
    """The `escalation` section of the campaign's stored config: the one its planner ran
    with, which says how the DFT-level posterior is built (`agent.mf_posterior`)."""
    return EscalationSection.model_validate(store.campaign().config.get("escalation", {}))


def top_layer(tags: np.ndarray, z_ang: np.ndarray) -> np.ndarray:
    """Indices of the top-layer atoms: those tagged surface (1), or within
    `TOP_LAYER_DEPTH_ANG` of the highest atom when the slab carries no tags."""
    if (tags == 1).any():
        return np.flatnonzero(tags == 1)
    return np.flatnonzero(z_ang > z_ang.max() - TOP_LAYER_DEPTH_ANG)


def site_map(campaign: str, pair_key: str) -> SiteMap | None:
    """The attention over ``pair_key``'s top layer: as stored with its latest acquisition
    (the model that chose it), else recomputed with the latest stored ensemble; None when
    neither exists (a cold start) or the adsorbate has no SMILES."""
    from alloop.loop.agent.planning import stored_site_scores

    with CampaignStore.open(campaign) as store:
        pair = store.pair(pair_key)
        smiles = next(a.smiles for a in store.adsorbates() if a.key == pair.adsorbate_key)
        slab = store.surface_atoms(pair.surface_key)
        picked = sorted({a.round_index for a in store.acquisitions() if a.pair_key == pair_key})
        stored = next(
            ((i, found[pair_key]) for i in reversed(picked)
             if pair_key in (found := stored_site_scores(store, i))),
            None,
        )  # fmt: skip
        loaded = None if stored is not None or not smiles else stored_ensemble(store)
    if stored is not None:
        round_index, all_scores = stored[0], np.asarray(stored[1], dtype=float)
    elif loaded is not None:
        round_index, ens = loaded
        (scores,) = ens.site_scores([slab], [smiles])
        all_scores = scores.double().numpy()
    else:
        return None
    top = top_layer(np.asarray(slab.get_tags()), slab.positions[:, 2])
    share = all_scores[top]
    total = float(all_scores.sum())
    top_share = float(share.sum()) / total if total > 0 else 0.0
    share = share / share.sum() if share.sum() > 0 else share
    symbols = tuple(slab.get_chemical_symbols()[i] for i in top)
    return SiteMap(pair_key, round_index, slab.positions[top, :2].copy(), symbols,
                   tuple(int(i) for i in top), share, stored is not None, top_share,
                   len(slab))  # fmt: skip


def render_site_map(m: SiteMap, width: int = 36, height: int = 10, n_top: int = 3) -> Text:
    """The top layer seen from above: each atom's element letter at its (x, y), coloured from
    grey (little attention) to red (most), then the ``n_top`` atoms with the most attention."""
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * width for _ in range(height)]
    xy = m.xy_ang
    lo, span = xy.min(axis=0), np.ptp(xy, axis=0)
    span[span == 0] = 1.0
    peak = float(m.scores.max()) if len(m.scores) else 1.0
    for (x, y), sym, score in zip(xy, m.symbols, m.scores, strict=True):
        col = int(round((x - lo[0]) / span[0] * (width - 2)))
        row = height - 1 - int(round((y - lo[1]) / span[1] * (height - 1)))
        shade = _SHADES[min(len(_SHADES) - 1, int(score / peak * (len(_SHADES) - 1) + 0.5))]
        grid[row][col] = (sym[0], f"bold {shade}")
        if len(sym) > 1 and col + 1 < width and grid[row][col + 1][0] == " ":
            grid[row][col + 1] = (sym[1], shade)
    text = Text()
    for line in grid:
        for ch, style in line:
            text.append(ch, style=style or None)
        text.append("\n")
    text.append("low ", style="grey50")
    for shade in _SHADES:
        text.append("█", style=shade)
    text.append(" high attention\n")
    order = np.argsort(-m.scores)[:n_top]
    tops = ", ".join(f"{m.symbols[i]}#{m.atom_index[i]} {m.scores[i]:.0%}" for i in order)
    text.append(f"most attended: {tops}\n")
    if m.n_atoms:
        text.append(f"the {len(m.scores)} top-layer atoms hold {m.top_share:.0%} of the "
                    f"attention over all {m.n_atoms} slab atoms")  # fmt: skip
    if len(m.scores) and float(np.ptp(m.scores)) <= UNIFORM_SPREAD * float(m.scores.mean()):
        text.append("; every top-layer atom gets the same share (equivalent sites on this slab)")
    return text


def pool_scores(campaign: str, round_index: int | None = None) -> PoolScores | None:
    """μ, σ of the pool round ``round_index`` (default: the latest with a checkpoint) scored:
    every pair not acquired in an earlier round, from the labels of the earlier rounds, as the
    DFT-level posterior the planner read (`agent.mf_posterior`: MLIP labels as the model's input
    where a pair has one, σ with the unknown surface gap under `escalation.anchor_surfaces`).
    None when no round has a checkpoint."""
    from alloop.loop.agent.labels import LOW_FIDELITIES, TARGET_FIDELITIES, counted_energies
    from alloop.loop.agent.mf_posterior import dft_level_posterior
    from alloop.loop.bridges.surrogate import PoolView

    with CampaignStore.open(campaign) as store:
        loaded = stored_ensemble(store, round_index)
        if loaded is None:
            return None
        index, ens = loaded
        acqs = store.acquisitions()
        earlier = {a.pair_key for a in acqs if a.round_index < index}
        batch = [a for a in acqs if a.round_index == index and a.mu_ev is not None]
        pool = PoolView.load(store)
        before = {(j.pair_key, j.kind) for j in store.jobs()
                  if j.round_index is not None and j.round_index < index}  # fmt: skip
        summaries = [lab for lab in store.label_summaries()
                     if (lab.pair_key, lab.fidelity) in before]  # fmt: skip
        escalation = stored_escalation(store)
    low = counted_energies(summaries, fidelities=LOW_FIDELITIES)
    target = counted_energies(summaries, fidelities=TARGET_FIDELITIES)
    pairs = [p for p in pool.pairs if p.key not in earlier]
    if not pairs:
        return PoolScores(index, (), (), (), ())
    post = dft_level_posterior(ens, pool, pairs, target, low, escalation=escalation)
    return PoolScores(
        index, tuple(post.mean_ev.tolist()), tuple(post.std_ev.tolist()),
        _floats(a.mu_ev for a in batch), _floats(a.sigma_ev for a in batch),
    )  # fmt: skip


def _floats(values: Iterable[float | None]) -> tuple[float, ...]:
    return tuple(float(v) for v in values if v is not None)
