"""Site-supervised attention: an auxiliary loss that pulls the cross-attention toward the slab
atoms the adsorbate is bound to in the labelled minimum.

The AdsMT cross-attention (one query per pair over the slab's atoms,
:class:`~alloop.surrogate.layer_cross_attention.CrossModalAttention`) is trained by the GMAE
loss alone; its weights are the per-atom site scores the oracle may use to order its placement
search. The oracle knows, for every label, which slab atoms the minimum structure's adsorbate is
bonded to (``binding_surface_atoms`` in an MLIP label's provenance). With a site loss named in
``TrainConfig.site_loss`` those atoms become a second training target:

``binding_mass``  ``-log`` of the attention mass (head average, the site scores) on the binding
                  atoms, averaged over the pairs that have them. Any split of the mass among the
                  binding atoms is as good, so symmetry-equivalent atoms (which an invariant
                  encoder cannot tell apart) do not fight each other.

The total loss is ``L1(GMAE) + site_loss_weight x site loss``; pairs without binding atoms add
nothing. Early stopping still watches the GMAE validation error alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from alloop.surrogate.errors import SurrogateError

__all__ = ["SITE_LOSSES", "binding_mass_loss", "site_loss", "site_targets"]

#: names ``TrainConfig.site_loss`` accepts; ``none`` trains on the GMAE alone
SITE_LOSSES: tuple[str, ...] = ("none", "binding_mass")
#: a floor on the attention mass, so the loss stays finite where the mass underflows
_MIN_MASS = 1e-8


def site_targets(binding: Sequence[Sequence[int] | None], n_atoms: Sequence[int]) -> Tensor:
    """`P x N_max` bool: True on each pair's binding atoms (slab atom order), all False for a
    pair without them (``None`` or empty). ``n_atoms``: each pair's slab size."""
    if len(binding) != len(n_atoms):
        raise SurrogateError(f"{len(binding)} binding-atom lists for {len(n_atoms)} pairs")
    out = torch.zeros(len(binding), max(n_atoms, default=0), dtype=torch.bool)
    for p, (atoms, n) in enumerate(zip(binding, n_atoms, strict=True)):
        for j in atoms or ():
            if not 0 <= j < n:
                raise SurrogateError(f"binding atom {j} of pair {p} is outside its {n}-atom slab")
            out[p, j] = True
    return out


def binding_mass_loss(weights: Tensor, targets: Tensor) -> Tensor:
    """Mean ``-log`` attention mass on the binding atoms over the pairs that have some.

    Args:
        weights: `P x N` attention per slab atom (rows sum to 1; padding carries 0).
        targets: `P x M` bool binding atoms, `M >= N` allowed when the columns past `N` are
            False (padding of the widest slab of the whole training set).
    Returns:
        a scalar (0 with no supervised pair, still part of the graph).
    """
    n = weights.shape[1]
    if targets.shape[1] > n and bool(targets[:, n:].any()):
        raise SurrogateError("binding atoms beyond the attention's width: wrong slab padding")
    t = targets[:, :n]
    has = t.any(dim=1)
    if not bool(has.any()):
        return weights.sum() * 0.0
    mass = (weights * t.to(weights.dtype)).sum(dim=1)[has]
    return -torch.log(mass.clamp_min(_MIN_MASS)).mean()


def site_loss(name: str, weights: Tensor, targets: Tensor) -> Tensor:
    """The site loss ``name`` (one of ``SITE_LOSSES`` but ``none``) of `P x N` attention."""
    if name == "binding_mass":
        return binding_mass_loss(weights, targets)
    raise SurrogateError(f"site loss {name!r} is unknown; valid: {', '.join(SITE_LOSSES[1:])}")
