"""loop/bridges/surrogate.py: the campaign's surrogate section → a trained ensemble."""

from __future__ import annotations

import logging

import pytest

from alloop.loop.bridges.surrogate import ensemble_config, fit_ensemble
from alloop.loop.config import SurrogateSection
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
