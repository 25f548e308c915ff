"""The site loss: its value on hand-made attention, and that training with it moves the
cross-attention onto the given binding atoms (a no-op loss would fail the last test)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from ase.build import fcc111

from alloop.surrogate.errors import SurrogateError, TrainingError
from alloop.surrogate.site_loss import binding_mass_loss, site_loss, site_targets
from alloop.surrogate.training import TrainConfig
from alloop.surrogate.types import SurrogateSample

from .conftest import TINY_SMILES, tiny_config


def test_binding_mass_loss_values() -> None:
    weights = torch.tensor([[0.25, 0.25, 0.25, 0.25, 0.0], [0.7, 0.1, 0.1, 0.1, 0.0]])
    targets = site_targets([(0,), (0, 2)], [4, 5])
    assert targets.tolist() == [[True, False, False, False, False],
                                [True, False, True, False, False]]  # fmt: skip
    expected = (-math.log(0.25) - math.log(0.8)) / 2
    assert float(binding_mass_loss(weights, targets)) == pytest.approx(expected, rel=1e-6)
    # pairs without binding atoms are left out, and none at all gives 0 with a gradient
    none = site_targets([None, ()], [4, 5])
    w = weights.clone().requires_grad_(True)
    zero = binding_mass_loss(w, none)
    zero.backward()
    assert float(zero.detach()) == 0.0 and w.grad is not None
    one = site_targets([(1,), None], [4, 5])
    assert float(site_loss("binding_mass", weights, one)) == pytest.approx(-math.log(0.25))


def test_site_loss_errors() -> None:
    with pytest.raises(SurrogateError, match="outside its 4-atom slab"):
        site_targets([(4,)], [4])
    with pytest.raises(SurrogateError, match="2 binding-atom lists for 1 pairs"):
        site_targets([(0,), (1,)], [4])
    with pytest.raises(SurrogateError, match="beyond the attention's width"):
        binding_mass_loss(torch.full((1, 2), 0.5), site_targets([(3,)], [4]))
    with pytest.raises(SurrogateError, match="unknown; valid: binding_mass"):
        site_loss("kl", torch.full((1, 2), 0.5), site_targets([(1,)], [2]))
    with pytest.raises(TrainingError, match="site_loss 'kl' is unknown; valid: none, binding"):
        TrainConfig(site_loss="kl")
    with pytest.raises(TrainingError, match="site_loss_weight must be >= 0"):
        TrainConfig(site_loss_weight=-1.0)
    slab = fcc111("Cu", size=(2, 2, 2), vacuum=5.0)
    with pytest.raises(SurrogateError, match=r"binding_atoms \[8\] outside the 8-atom slab"):
        SurrogateSample("Cu", slab, "CO", -1.0, binding_atoms=(8,))


def _alloy_samples() -> list[SurrogateSample]:
    """Three Cu(111) 2x2x3 slabs, each with one Pt at another place in the top layer (indices
    8-11); the binding atom is that Pt, an atom the made-up GMAE gives no reason to attend to.
    (Not a Cu beside it: in a 2x2 cell the three top Cu atoms are equivalent, and attention
    can give one of them at most a third of the mass.)"""
    samples = []
    for k, pt in enumerate((8, 9, 10)):
        slab = fcc111("Cu", size=(2, 2, 3), vacuum=6.0)
        slab[pt].symbol = "Pt"
        for i, smi in enumerate(TINY_SMILES):
            samples.append(SurrogateSample(f"CuPt{k}", slab, smi, -0.5 - 0.1 * i - 0.2 * k,
                                           binding_atoms=(pt,)))  # fmt: skip
    return samples


def _mass_on_targets(site_loss_name: str) -> float:
    from alloop.surrogate.ensemble import AdsMTEnsemble

    samples = _alloy_samples()
    cfg = tiny_config(ensemble_size=1, max_epochs=40)
    cfg = replace(cfg, train=replace(cfg.train, site_loss=site_loss_name, site_loss_weight=1.0))
    ens = AdsMTEnsemble(cfg, seed=3)
    ens.fit(samples, samples)  # validation = training: early stopping keeps a trained epoch
    scores = ens.site_scores([s.slab for s in samples], [s.smiles for s in samples],
                             torch.tensor([[i, i] for i in range(len(samples))]))  # fmt: skip
    masses = [
        float(sc[list(s.binding_atoms or ())].sum()) for sc, s in zip(scores, samples, strict=True)
    ]
    return sum(masses) / len(masses)


def test_training_with_the_loss_moves_attention_onto_the_binding_atoms() -> None:
    without = _mass_on_targets("none")
    with_loss = _mass_on_targets("binding_mass")
    # 12 atoms a slab: uniform attention puts 1/12 on the target (measured: 0.12 without the
    # loss, 0.9999 with it)
    assert without < 0.25
    assert with_loss > 0.5 and with_loss > 3 * without
