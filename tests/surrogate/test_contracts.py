"""Contracts every surrogate model must honour (nequip-style), run on tiny trained ensembles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from alloop.surrogate.ensemble import AdsMTEnsemble
from alloop.surrogate.model import AdsMTConfig

from .conftest import TINY_SMILES, tiny_config, tiny_samples, tiny_slabs

VARIANTS = {
    "tiny": {},
    "deeper-no-stereo-log": {
        "model": {
            "num_graph_layers": 3,
            "num_self_layers": 2,
            "hidden_dim": 24,
            "num_graph_heads": 3,
            "num_cross_heads": 3,
            "num_self_heads": 3,
        },
        "stereo": False,
        "descriptor_transform": "signed_log1p",
    },
}


def _build(variant: str) -> AdsMTEnsemble:
    cfg = tiny_config(ensemble_size=2, max_epochs=2)
    spec = VARIANTS[variant]
    if "model" in spec:
        cfg = replace(cfg, model=replace(cfg.model, **spec["model"]))
    if spec.get("stereo") is False:
        cfg = replace(cfg, featurizer=replace(cfg.featurizer, stereo_features=False))
    if "descriptor_transform" in spec:
        cfg = replace(cfg, descriptor_transform=spec["descriptor_transform"])
    samples = tiny_samples()
    ens = AdsMTEnsemble(cfg, seed=3)
    ens.fit(samples[::2], samples[1::2])
    return ens


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def ensemble(request: pytest.FixtureRequest) -> AdsMTEnsemble:
    return _build(request.param)


def _grid(ens: AdsMTEnsemble, slabs: list, **kw: bool):  # noqa: ANN202
    return ens.predict(slabs, list(TINY_SMILES), with_site_scores=True, **kw)


def test_batching_does_not_change_predictions(ensemble: AdsMTEnsemble) -> None:
    slabs = list(tiny_slabs().values())
    full = _grid(ensemble, slabs)
    one_by_one = [
        ensemble.predict([slabs[s]], [TINY_SMILES[a]]).mean_ev.item()
        for s in range(len(slabs))
        for a in range(len(TINY_SMILES))
    ]
    torch.testing.assert_close(
        full.mean_ev, torch.tensor(one_by_one, dtype=torch.float64), atol=1e-5, rtol=0
    )
    small = replace(ensemble.config, chunk_pairs=1, chunk_slabs=1)
    ensemble.config, old = small, ensemble.config
    try:
        ensemble._enc_cache = [{} for _ in ensemble.members]
        chunked = _grid(ensemble, slabs)
    finally:
        ensemble.config = old
    torch.testing.assert_close(chunked.mean_ev, full.mean_ev, atol=1e-5, rtol=0)
    torch.testing.assert_close(chunked.site_scores, full.site_scores, atol=1e-6, rtol=0)
    naive = _grid(ensemble, slabs, reuse_slab_encodings=False)
    torch.testing.assert_close(naive.mean_ev, full.mean_ev, atol=1e-5, rtol=0)
    torch.testing.assert_close(naive.site_scores, full.site_scores, atol=1e-6, rtol=0)


def test_atom_permutation_does_not_change_predictions(ensemble: AdsMTEnsemble) -> None:
    slab = tiny_slabs()["Ru"]
    perm = np.random.default_rng(0).permutation(len(slab))
    ref = _grid(ensemble, [slab])
    got = _grid(ensemble, [slab[perm]])
    torch.testing.assert_close(got.mean_ev, ref.mean_ev, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.std_ev, ref.std_ev, atol=1e-5, rtol=0)
    # Site scores follow the atoms.
    torch.testing.assert_close(got.site_scores, ref.site_scores[:, perm], atol=1e-6, rtol=0)


@pytest.mark.parametrize("periodic_c", [False, True])
def test_rigid_translation_does_not_change_predictions(
    ensemble: AdsMTEnsemble, periodic_c: bool
) -> None:
    slab = tiny_slabs()["Pt"]
    slab.pbc = (True, True, periodic_c)
    ref = _grid(ensemble, [slab])
    moved = slab.copy()
    moved.translate([1.37, -0.81, 9.2 if periodic_c else 2.3])
    moved.wrap()
    got = _grid(ensemble, [moved])
    torch.testing.assert_close(got.mean_ev, ref.mean_ev, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.site_scores, ref.site_scores, atol=1e-5, rtol=0)


def test_float32_and_float64_agree(ensemble: AdsMTEnsemble) -> None:
    slabs = list(tiny_slabs().values())
    data = ensemble.to_bytes()
    p32 = _grid(AdsMTEnsemble.from_bytes(data, device="cpu", dtype="float32"), slabs)
    p64 = _grid(AdsMTEnsemble.from_bytes(data, device="cpu", dtype="float64"), slabs)
    torch.testing.assert_close(p32.mean_ev, p64.mean_ev, atol=2e-4, rtol=0)
    torch.testing.assert_close(p32.std_ev, p64.std_ev, atol=2e-4, rtol=0)
    torch.testing.assert_close(p32.site_scores, p64.site_scores, atol=1e-4, rtol=0)


def test_std_zero_for_identical_members_positive_otherwise(ensemble: AdsMTEnsemble) -> None:
    slabs = list(tiny_slabs().values())
    assert (_grid(ensemble, slabs).std_ev > 0).all()
    clone = AdsMTEnsemble.from_bytes(ensemble.to_bytes(), device="cpu")
    for member in clone.members[1:]:
        member.load_state_dict(clone.members[0].state_dict())
    same = _grid(clone, slabs)
    assert torch.equal(same.std_ev, torch.zeros_like(same.std_ev))
    assert clone.posterior(slabs, list(TINY_SMILES)).variance.abs().max() == 0.0


def test_site_scores_are_distributions(ensemble: AdsMTEnsemble) -> None:
    slabs = list(tiny_slabs().values())
    pred = _grid(ensemble, slabs)
    assert pred.site_scores is not None
    torch.testing.assert_close(
        pred.site_scores.sum(dim=1), torch.ones(len(pred.mean_ev)), atol=1e-5, rtol=0
    )
    assert (pred.site_scores >= 0).all()


def test_config_is_what_was_asked(ensemble: AdsMTEnsemble) -> None:
    assert isinstance(ensemble.config.model, AdsMTConfig)
    assert len(ensemble.members) == 2
