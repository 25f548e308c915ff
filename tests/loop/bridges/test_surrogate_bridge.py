"""loop/bridges/surrogate.py: the campaign's surrogate section → a trained ensemble."""

from __future__ import annotations

import logging

import pytest

from alloop.loop.bridges.surrogate import (
    ChosenLabel,
    PoolView,
    ensemble_config,
    fit_ensemble,
    surrogate_samples,
)
from alloop.loop.config import SurrogateSection
from alloop.store.records import AdsorbateRecord, PairRecord
from tests.surrogate.conftest import tiny_samples

TINY = dict(
    ensemble_size=1, hidden_dim=8, num_graph_layers=1, max_epochs=2, batch_size=8,
    cutoff_ang=4.0, max_neighbors=12, split="holdout", prior_mean="none",
    fidelity_mode="supersede", val_fraction=0.3, device="cpu",
)  # fmt: skip


def test_section_choices_reach_the_ensemble() -> None:
    cfg = ensemble_config(SurrogateSection(**TINY, mlip_features="sevennet-0"))
    assert (cfg.split, cfg.prior_mean) == ("holdout", "none")
    assert cfg.featurizer.mlip_features == "sevennet-0"


def test_site_loss_reaches_training_and_sites_outside_the_slab_are_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = dict(site_loss="binding_mass", site_loss_weight=2)
    cfg = ensemble_config(SurrogateSection(**TINY, mlip_features="none", **site))
    assert (cfg.train.site_loss, cfg.train.site_loss_weight) == ("binding_mass", 2.0)
    plain = ensemble_config(SurrogateSection(**TINY, mlip_features="none"))
    assert plain.train.site_loss == "none"

    slab = tiny_samples()[0].slab
    pair = PairRecord(1, "Pt|CO", "Pt", "CO")
    ads = AdsorbateRecord(1, "CO", "CO", "[C-]#[O+]", (0,), "h")
    pool = PoolView([pair], {"Pt": slab}, {"CO": ads})
    inside, outside = len(slab) - 1, len(slab)
    ((_, ok),) = surrogate_samples(pool, [ChosenLabel(1, -1.0, False, (0, inside))])
    assert ok.binding_atoms == (0, inside)
    with caplog.at_level(logging.WARNING, logger="alloop.loop.bridges.surrogate"):
        ((_, dropped),) = surrogate_samples(pool, [ChosenLabel(1, -1.0, False, (outside,))])
    assert dropped.binding_atoms is None and "outside its" in caplog.text


def test_warm_start_from_a_model_with_other_inputs_starts_fresh(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A holdout campaign made before `mlip_features` changed its default: last round's
    checkpoint has no MLIP inputs, this round's model has them. The round trains from scratch
    (and says so) instead of stopping the campaign."""
    samples = tiny_samples()
    old, _ = fit_ensemble(SurrogateSection(**TINY, mlip_features="none"), samples, 1, None)
    new_section = SurrogateSection(**TINY, mlip_features="sevennet-0")
    with caplog.at_level(logging.WARNING, logger="alloop.loop.bridges.surrogate"):
        new, report = fit_ensemble(new_section, samples, 2, old.to_bytes())
    assert "not warm-starting" in caplog.text and "featuriser" in caplog.text
    assert new.featurizer.atom_feature_dim > 0 and report.val_mae_ev >= 0
    # a compatible checkpoint still warm-starts, silently
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="alloop.loop.bridges.surrogate"):
        fit_ensemble(new_section, samples, 3, new.to_bytes())
    assert "not warm-starting" not in caplog.text
