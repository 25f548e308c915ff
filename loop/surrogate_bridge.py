"""From campaign state to the surrogate: ensemble config, training samples, predictions.

Training uses one label per pair, the one of highest fidelity (`escalation.training_labels`):
a DFT label supersedes the MLIP label of the same pair, and both stay in the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from alloop.loop.config import SurrogateSection
from alloop.loop.errors import LoopError
from alloop.loop.escalation import training_labels
from alloop.store import CampaignStore
from alloop.store.records import AdsorbateRecord, PairRecord
from alloop.surrogate.ensemble import AdsMTEnsemble
from alloop.surrogate.featurizer import FeaturizerConfig
from alloop.surrogate.model import AdsMTConfig
from alloop.surrogate.training import TrainConfig
from alloop.surrogate.types import EnsembleConfig, FitReport, SurrogateSample


def ensemble_config(section: SurrogateSection) -> EnsembleConfig:
    return EnsembleConfig(
        num_members=section.ensemble_size,
        featurizer=FeaturizerConfig(
            cutoff_ang=section.cutoff_ang, max_neighbors=section.max_neighbors
        ),
        model=AdsMTConfig(hidden_dim=section.hidden_dim, num_graph_layers=section.num_graph_layers),
        train=TrainConfig(
            max_epochs=section.max_epochs,
            batch_size=section.batch_size,
            lr=section.learning_rate,
            early_stop_patience=section.early_stop_patience,
        ),
        device=None if section.device == "auto" else section.device,
    )


@dataclass
class PoolView:
    """The campaign's pool in the order of `pairs`, with structures loaded once."""

    pairs: list[PairRecord]
    slabs: dict[str, Atoms]  # surface key -> clean slab
    adsorbates: dict[str, AdsorbateRecord]

    @classmethod
    def load(cls, store: CampaignStore) -> PoolView:
        slabs = {s.key: store.surface_atoms(s.key) for s in store.surfaces()}
        return cls(store.pairs(), slabs, {a.key: a for a in store.adsorbates()})

    def smiles(self, pair: PairRecord) -> str:
        smiles = self.adsorbates[pair.adsorbate_key].smiles
        if not smiles:  # `alloop init` derives one for every adsorbate; a hand-made store may not
            raise LoopError(
                f"adsorbate {pair.adsorbate_key!r} has no SMILES, which the surrogate needs"
            )
        return smiles

    def index_tensors(
        self, pairs: Sequence[PairRecord]
    ) -> tuple[list[Atoms], list[str], torch.Tensor]:
        """Unique slabs, unique SMILES and the `P x 2` pair index the ensemble takes."""
        slab_keys = sorted({p.surface_key for p in pairs})
        smiles = sorted({self.smiles(p) for p in pairs})
        s_pos = {k: i for i, k in enumerate(slab_keys)}
        a_pos = {k: i for i, k in enumerate(smiles)}
        index = torch.tensor(
            [[s_pos[p.surface_key], a_pos[self.smiles(p)]] for p in pairs], dtype=torch.long
        ).reshape(-1, 2)
        return [self.slabs[k] for k in slab_keys], smiles, index


def training_samples(
    store: CampaignStore, pool: PoolView
) -> list[tuple[PairRecord, SurrogateSample]]:
    """One sample per labelled pair (highest fidelity wins), in pair-id order."""
    by_id = {p.id: p for p in pool.pairs}
    chosen = training_labels(
        (lab.pair_id, lab.fidelity, lab.gmae_ev, lab.status) for lab in store.label_summaries()
    )
    out = []
    for pair_id, lab in chosen.items():
        pair = by_id[pair_id]
        out.append(
            (pair, SurrogateSample(pair.surface_key, pool.slabs[pair.surface_key],
                                   pool.smiles(pair), lab.gmae_ev))
        )  # fmt: skip
    return out


def split_train_val(
    samples: Sequence[SurrogateSample], val_fraction: float, seed: int
) -> tuple[list[SurrogateSample], list[SurrogateSample]]:
    """A seeded split; at least one validation and one training sample."""
    if len(samples) < 2:
        raise ValueError(f"training needs at least 2 labels, have {len(samples)}")
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = min(max(1, round(val_fraction * len(samples))), len(samples) - 1)
    val = [samples[i] for i in sorted(order[:n_val])]
    train = [samples[i] for i in sorted(order[n_val:])]
    return train, val


def fit_ensemble(
    section: SurrogateSection,
    samples: Sequence[SurrogateSample],
    seed: int,
    warm_start: bytes | None,
) -> tuple[AdsMTEnsemble, FitReport]:
    train, val = split_train_val(samples, section.val_fraction, seed)
    ensemble = AdsMTEnsemble(ensemble_config(section), seed=seed)
    report = ensemble.fit(train, val, warm_start=warm_start)
    return ensemble, report
