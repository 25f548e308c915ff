"""A pretrained checkpoint (trained on none of a fit's labels) as every member's start,
cross-fitted or not: `AdsMTEnsemble.fit(..., pretrained=...)`."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from alloop.surrogate.errors import CheckpointError, SurrogateError
from alloop.surrogate.types import SurrogateSample

from .conftest import tiny_config, tiny_samples


def _rough(samples: list[SurrogateSample]) -> list[SurrogateSample]:
    """Made-up rough labels of the same pairs: shifted and stretched."""
    return [replace(s, gmae_ev=1.3 * s.gmae_ev + 0.2) for s in samples]


@pytest.fixture(scope="module")
def pretrained_bytes() -> bytes:
    from alloop.surrogate.ensemble import AdsMTEnsemble

    cfg = replace(tiny_config(max_epochs=4), split="cross_fit")
    ens = AdsMTEnsemble(cfg, seed=3)
    ens.fit(_rough(tiny_samples()))
    return ens.to_bytes()


def _distance(a: dict, b: dict) -> float:
    return float(sum((a[k].double() - b[k].double()).norm() ** 2 for k in a) ** 0.5)


def test_cross_fitted_members_start_from_a_pretrained_checkpoint(pretrained_bytes: bytes) -> None:
    """Unlike last round's weights (see test_calibration), pretrained weights saw no label of
    this fit: each member starts from them, one epoch stays near them, and the checkpoint's
    normalisers are kept."""
    from alloop.surrogate.ensemble import AdsMTEnsemble

    ckpt = AdsMTEnsemble.from_bytes(pretrained_bytes, device="cpu")
    cfg = replace(tiny_config(max_epochs=1), split="cross_fit")
    ens = AdsMTEnsemble(cfg, seed=5)
    report = ens.fit(tiny_samples()[::2], pretrained=pretrained_bytes)
    assert report.warm_started
    assert torch.equal(ens.y_norm.mean, ckpt.y_norm.mean)
    assert torch.equal(ens.desc_norm.std, ckpt.desc_norm.std)
    fresh = AdsMTEnsemble(cfg, seed=5)
    for k, member in enumerate(ens.members):
        start = ckpt.members[k].state_dict()
        new = fresh._new_member(fresh._member_seed(k)).state_dict()
        assert _distance(member.state_dict(), start) < 0.2 * _distance(new, start)
    # without it the same cross-fitted fit starts fresh
    assert not AdsMTEnsemble(cfg, seed=5).fit(tiny_samples()[::2]).warm_started


def test_pretrained_fine_tunes_at_the_transfer_learning_rate(
    pretrained_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import alloop.surrogate.ensemble as ensemble

    seen: list[float] = []
    real = ensemble.train_member

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.append(args[5].learning_rate)
        return real(*args, **kwargs)

    monkeypatch.setattr(ensemble, "train_member", spy)
    cfg = replace(tiny_config(max_epochs=1), split="cross_fit", transfer_lr_factor=0.25)
    ensemble.AdsMTEnsemble(cfg, seed=1).fit(tiny_samples()[::2], pretrained=pretrained_bytes)
    assert seen == pytest.approx([0.25 * cfg.train.learning_rate] * cfg.ensemble_size)


def test_pretrained_refuses_a_warm_start_transfer_mode_or_another_model(
    pretrained_bytes: bytes,
) -> None:
    from alloop.surrogate.ensemble import AdsMTEnsemble

    cfg = replace(tiny_config(max_epochs=1), split="cross_fit")
    samples = tiny_samples()[::2]
    with pytest.raises(SurrogateError, match="pretrained cannot be combined with a warm_start"):
        AdsMTEnsemble(cfg).fit(samples, warm_start=pretrained_bytes, pretrained=pretrained_bytes)
    with pytest.raises(SurrogateError, match="fidelity_mode='transfer'"):
        AdsMTEnsemble(replace(cfg, fidelity_mode="transfer")).fit(
            samples, pretrained=pretrained_bytes
        )
    other = replace(cfg, model=replace(cfg.model, hidden_dim=8))
    with pytest.raises(CheckpointError, match="model config"):
        AdsMTEnsemble(other).fit(samples, pretrained=pretrained_bytes)
