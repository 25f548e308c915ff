"""`surrogate.site_loss` in a campaign: the binding atoms each MLIP label's minimum found (its
provenance) reach the samples a round trains on, and the round's model is trained with the loss.

A real campaign on real EMT (2 surfaces x 3 adsorbates, two rounds), a real SQLite file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alloop.loop.agent.engine import CampaignEngine
from alloop.loop.agent.training import training_samples
from alloop.loop.bridges.surrogate import PoolView, load_ensemble
from alloop.loop.config import ConfigError, load_config
from alloop.loop.face.commands import create_campaign
from alloop.store import CampaignStore

CONFIG = """\
campaign: {{name: sites, seed: 5}}
pool:
  surfaces: [{{bulk: Cu, min_ab_ang: 4.0}}, {{bulk: Pt, min_ab_ang: 4.0}}]
  adsorbates: [{{name: '*O'}}, {{name: '*OH'}}, {{name: '*N'}}]
oracle: {{kind: mlip, calculator: emt, max_placements: 2, patience: 1, fmax_ev_per_ang: 0.1,
         max_steps: 60}}
surrogate: {{ensemble_size: 2, hidden_dim: 16, num_graph_layers: 1, max_epochs: 3,
            early_stop_patience: 2, batch_size: 16, mlip_features: none{site}}}
acquisition: {{name: lcb, batch_size: 2, initial_batch_size: 3}}
budget: {{max_rounds: 2}}
"""


def run(tmp_path: Path, site: str) -> Path:
    config = tmp_path / "sites.yaml"
    config.write_text(CONFIG.format(site=site))
    cfg = load_config(config)
    campaign = tmp_path / "sites.alloop"
    with create_campaign(cfg, str(campaign)) as store:
        CampaignEngine(store, cfg).run()
    return campaign


def test_binding_atoms_of_the_labels_train_the_attention(tmp_path: Path) -> None:
    campaign = run(tmp_path, ", site_loss: binding_mass, site_loss_weight: 0.5")
    with CampaignStore.open(campaign) as store:
        labels = [lab for lab in store.labels() if lab.status == "ok"]
        assert len(labels) >= 3
        named = {lab.pair_key: tuple(lab.provenance["binding_surface_atoms"]) for lab in labels}
        assert all(named.values()), named  # every relaxed minimum is bound to some slab atom
        pool = PoolView.load(store)
        with_sites = training_samples(store, pool, "supersede", sites=True)
        assert {p.key: s.binding_atoms for p, s in with_sites} == named
        # without a site loss the samples carry none (the provenance is not read)
        assert {s.binding_atoms for _, s in training_samples(store, pool)} == {None}
        (ckpt,) = store.checkpoints(max(r.index for r in store.rounds()))
    ensemble = load_ensemble(ckpt.blob)
    assert (ensemble.config.train.site_loss, ensemble.config.train.site_loss_weight) == (
        "binding_mass",
        0.5,
    )


def test_an_unknown_site_loss_is_refused_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(CONFIG.format(site=", site_loss: attention"))
    with pytest.raises(ConfigError, match="site_loss") as err:
        load_config(config)
    assert "binding_mass" in str(err.value)
