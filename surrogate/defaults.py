"""The shipped surrogate: one source for every default the campaign config and the library share.

Torch-free, so that reading a campaign config does not import torch. `EnsembleConfig`,
`AdsMTConfig`, `TrainConfig` and `FeaturizerConfig` take their defaults from here, and so does
the campaign config's `surrogate` section (`alloop.loop.config.SurrogateSection`); a test checks
that they agree.

The values are the model `benchmarks/surrogate/run.py` measured
(`benchmarks/results/surrogate.md`: FG random 80/10/10 split, 5 seeds, test MAE
0.076 ± 0.012 eV, 80 % within 0.1 eV, miscalibration area 0.040; about 0.76 s per epoch per
member on one core at ~2,300 training labels, 228 s for the whole ensemble). The campaign config
used to ship a larger model (hidden 128, 3 graph layers, 50 neighbours, 300 epochs) that no
benchmark had measured.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SurrogateDefaults:
    ensemble_size: int = 5
    hidden_dim: int = 64
    num_graph_layers: int = 2
    cutoff_ang: float = 6.0
    max_neighbors: int = 24
    max_epochs: int = 60
    early_stop_patience: int = 30
    batch_size: int = 256
    learning_rate: float = 2e-3
    min_steps_per_epoch: int = 1
    split: str = "cross_fit"
    prior_mean: str = "scaling"
    mlip_features: str = "sevennet-0"
    # the auxiliary loss on the cross-attention toward the labelled binding atoms
    # (`alloop.surrogate.site_loss`): off, because on the site-attention pool it left the GMAE
    # MAE level (0.120 vs 0.118 eV, 2 seeds) and the placement search did not use the sharper
    # attention to save relaxations (docs/surrogate.md, "Site-supervised attention"); the
    # weight is the one that benchmark measured
    site_loss: str = "none"
    site_loss_weight: float = 0.1


SURROGATE_DEFAULTS = SurrogateDefaults()
