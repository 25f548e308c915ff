"""Multi-fidelity training: which samples count, the stratified split, and the four modes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from alloop.surrogate.ensemble import AdsMTEnsemble
from alloop.surrogate.errors import CheckpointError, SurrogateError
from alloop.surrogate.fidelity import (
    FIDELITY_MODES,
    prepare_samples,
    split_by_fidelity,
    supersede,
)
from alloop.surrogate.model import AdsMT, AdsMTConfig
from alloop.surrogate.types import EnsembleConfig, SurrogateSample
from tests.surrogate.conftest import tiny_config, tiny_samples

#: a systematic low-fidelity error per metal, as an MLIP has (eV)
OFFSET_EV = {"Pt": -0.6, "Cu": 0.5, "Ru": -0.9}


def two_fidelity_samples() -> tuple[list[SurrogateSample], list[SurrogateSample]]:
    """Low-fidelity labels on all 18 tiny pairs (target + metal offset), target labels on
    every other pair; and the target samples of the remaining pairs, to test on."""
    target = tiny_samples()
    low = [replace(s, gmae_ev=s.gmae_ev + OFFSET_EV[s.surface_key], fidelity=1) for s in target]
    known = target[::2]
    pairs = zip(target, low, strict=True)
    held_out = [replace(s, low_fidelity_ev=lo.gmae_ev) for s, lo in pairs][1::2]
    return low + known, held_out


def test_supersede_keeps_the_highest_fidelity_per_pair() -> None:
    samples, _ = two_fidelity_samples()
    chosen = supersede(samples)
    assert len(chosen) == 18
    by_pair = {(s.surface_key, s.smiles): s for s in chosen}
    for s in samples:
        if s.fidelity == 0:
            assert by_pair[(s.surface_key, s.smiles)] is s
    assert sum(s.fidelity == 0 for s in chosen) == 9
    with pytest.raises(SurrogateError, match="two labels of fidelity 1"):
        supersede([samples[0], samples[0]])


def test_prepare_attaches_the_low_label_to_target_samples() -> None:
    samples, _ = two_fidelity_samples()
    for mode in ("token", "delta", "transfer"):
        prepared = prepare_samples(samples, mode)
        assert len(prepared) == 27
        for s in prepared:
            if s.fidelity == 0:
                expected = s.gmae_ev + OFFSET_EV[s.surface_key]
                assert s.low_fidelity_ev == pytest.approx(expected)
    assert all(s.low_fidelity_ev is None for s in prepare_samples(samples, "supersede"))
    with pytest.raises(SurrogateError, match="valid modes: supersede, token, delta, transfer"):
        prepare_samples(samples, "fusion")


def test_split_is_stratified_by_fidelity() -> None:
    low = [replace(s, fidelity=1) for s in tiny_samples() * 5][:90]
    target = tiny_samples()[:3]
    train, val = split_by_fidelity(low + target, 0.1, seed=3)
    assert sum(s.fidelity == 0 for s in val) == 1  # round(0.3) -> at least one
    assert sum(s.fidelity == 1 for s in val) == 9
    assert len(train) + len(val) == 93


def test_split_of_one_fidelity_is_the_plain_seeded_split() -> None:
    samples = tiny_samples()
    train, val = split_by_fidelity(samples, 0.2, seed=11)
    order = np.random.default_rng(11).permutation(len(samples))
    n_val = round(0.2 * len(samples))
    assert val == [samples[i] for i in sorted(order[:n_val])]
    assert train == [samples[i] for i in sorted(order[n_val:])]


def test_delta_head_starts_as_the_low_fidelity_label() -> None:
    cfg = tiny_config()
    model = AdsMT(replace(cfg.model, num_fidelities=2, delta_head=True), 4, 4.0).eval()
    enc_slab = _one_slab_encoding(model)
    ads = model.encode_adsorbates(torch.randn(3, 4))
    slab_idx, ads_idx = torch.zeros(3, dtype=torch.long), torch.arange(3)
    low = torch.tensor([0.7, float("nan"), -1.2])
    with torch.no_grad():
        plain = model.forward_pairs(enc_slab, ads, slab_idx, ads_idx).prediction
        out = model.forward_pairs(enc_slab, ads, slab_idx, ads_idx, None, low).prediction
    assert out[0] == pytest.approx(0.7) and out[2] == pytest.approx(-1.2)
    assert out[1] == pytest.approx(float(plain[1]))  # no low label: the target token's head


def test_fidelity_token_changes_the_prediction() -> None:
    cfg = tiny_config()
    model = AdsMT(replace(cfg.model, num_fidelities=2), 4, 4.0).eval()
    enc_slab = _one_slab_encoding(model)
    ads = model.encode_adsorbates(torch.randn(2, 4))
    slab_idx, ads_idx = torch.zeros(2, dtype=torch.long), torch.arange(2)
    with torch.no_grad():
        at_target = model.forward_pairs(enc_slab, ads, slab_idx, ads_idx).prediction
        at_low = model.forward_pairs(
            enc_slab, ads, slab_idx, ads_idx, torch.ones(2, dtype=torch.long)
        ).prediction
    assert not torch.allclose(at_target, at_low)


def _one_slab_encoding(model: AdsMT):  # noqa: ANN202
    from alloop.surrogate.featurizer import Featurizer
    from alloop.surrogate.inference import collate_slabs
    from tests.surrogate.conftest import tiny_slabs

    graph = Featurizer(tiny_config().featurizer).slab_graph(tiny_slabs()["Pt"])
    with torch.no_grad():
        return model.encode_slabs(collate_slabs([graph], torch.device("cpu")))


def _fit(
    mode: str, samples: list[SurrogateSample], epochs: int = 80, shipped_levers: bool = False
) -> AdsMTEnsemble:
    """``shipped_levers``: cross-fitted members with the scaling prior (the shipped split and
    prior) instead of the tiny config's holdout without a prior."""
    cfg = replace(tiny_config(ensemble_size=2, max_epochs=epochs), fidelity_mode=mode)
    prepared = prepare_samples(samples, mode)
    ens = AdsMTEnsemble(cfg, seed=5)
    if shipped_levers:
        ens = AdsMTEnsemble(replace(cfg, split="cross_fit", prior_mean="scaling"), seed=5)
        ens.fit(prepared)
        return ens
    train, val = split_by_fidelity(prepared, 0.2, seed=0)
    ens.fit(train, val)
    return ens


def _target_mae(ens: AdsMTEnsemble, held_out: list[SurrogateSample]) -> float:
    pred = ens.predict_samples(held_out)
    return float(np.mean(np.abs(pred.mean_ev.numpy() - [s.gmae_ev for s in held_out])))


@pytest.mark.parametrize("shipped_levers", [False, True])
def test_delta_learns_the_systematic_low_fidelity_error(shipped_levers: bool) -> None:
    """Pairs without a target label: the supersession baseline predicts the biased MLIP
    value; Δ-learning corrects it from the target labels of the other pairs (with a prior
    mean too: the delta head then reads the MLIP label as a residual over the prior)."""
    samples, held_out = two_fidelity_samples()
    baseline = _target_mae(_fit("supersede", samples, shipped_levers=shipped_levers), held_out)
    delta = _target_mae(_fit("delta", samples, shipped_levers=shipped_levers), held_out)
    mean_offset = float(np.mean([abs(OFFSET_EV[s.surface_key]) for s in held_out]))
    if shipped_levers:  # the prior's surface offsets already absorb part of the bias
        assert delta < min(baseline, 0.5 * mean_offset)
        return
    assert baseline > 0.5 * mean_offset  # the baseline inherits most of the MLIP error
    assert delta < 0.5 * baseline


@pytest.mark.parametrize("mode", ["token", "transfer"])
def test_every_mode_trains_and_round_trips(mode: str) -> None:
    samples, held_out = two_fidelity_samples()
    ens = _fit(mode, samples, epochs=5)
    again = AdsMTEnsemble.from_bytes(ens.to_bytes(), device="cpu")
    assert again.config.fidelity_mode == mode
    a, b = ens.predict_samples(held_out), again.predict_samples(held_out)
    assert torch.allclose(a.mean_ev, b.mean_ev, atol=1e-6)
    other = AdsMTEnsemble(replace(ens.config, fidelity_mode="supersede"), seed=5)
    train, val = split_by_fidelity(supersede(samples), 0.2, seed=0)
    with pytest.raises(CheckpointError, match="fidelity_mode"):
        other.fit(train, val, warm_start=ens.to_bytes())


def test_transfer_fine_tunes_on_target_labels() -> None:
    samples, held_out = two_fidelity_samples()
    low_only = [s for s in samples if s.fidelity == 1]
    pretrained = _target_mae(_fit("transfer", low_only), held_out)
    tuned = _target_mae(_fit("transfer", samples), held_out)
    assert tuned < pretrained


def test_config_refuses_unknown_modes() -> None:
    assert FIDELITY_MODES == ("supersede", "token", "delta", "transfer")
    with pytest.raises(SurrogateError, match="fidelity_mode 'fusion' is unknown"):
        EnsembleConfig(fidelity_mode="fusion")
    assert EnsembleConfig(fidelity_mode="delta").member_model() == AdsMTConfig(
        num_fidelities=2, delta_head=True
    )
