"""From campaign state to the surrogate: ensemble config, training samples, predictions.

Which labels train is the agent's decision (`alloop.loop.agent.training`, by the one label
rule); this module turns the chosen labels into the surrogate's samples, fits and loads
ensembles, and builds the cold start's descriptor space.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from ase import Atoms

from alloop.loop.config import SurrogateSection
from alloop.loop.errors import LoopError
from alloop.store import CampaignStore
from alloop.store.records import AdsorbateRecord, PairRecord
from alloop.surrogate.ensemble import AdsMTEnsemble
from alloop.surrogate.errors import CheckpointError
from alloop.surrogate.featurizer import Featurizer, FeaturizerConfig
from alloop.surrogate.fidelity import (
    LOW_FIDELITY,
    TARGET_FIDELITY,
    prepare_samples,
    split_by_fidelity,
)
from alloop.surrogate.model import AdsMTConfig
from alloop.surrogate.training import TrainConfig
from alloop.surrogate.types import EnsembleConfig, FitReport, SurrogateSample

logger = logging.getLogger(__name__)


def ensemble_config(section: SurrogateSection) -> EnsembleConfig:
    return EnsembleConfig(
        ensemble_size=section.ensemble_size,
        featurizer=FeaturizerConfig(
            cutoff_ang=section.cutoff_ang,
            max_neighbors=section.max_neighbors,
            mlip_features=section.levers.mlip_features,
        ),
        model=AdsMTConfig(hidden_dim=section.hidden_dim, num_graph_layers=section.num_graph_layers),
        train=TrainConfig(
            max_epochs=section.max_epochs,
            batch_size=section.batch_size,
            learning_rate=section.learning_rate,
            early_stop_patience=section.early_stop_patience,
            min_steps_per_epoch=section.min_steps_per_epoch,
            site_loss=section.site_loss,
            site_loss_weight=section.site_loss_weight,
        ),
        device=None if section.device == "auto" else section.device,
        fidelity_mode=section.mode,
        split=section.levers.split,
        prior_mean=section.levers.prior_mean,
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


@dataclass(frozen=True)
class ChosenLabel:
    """A label the agent chose for training (`alloop.loop.agent.training`): the pair, its
    GMAE (eV), whether it is of the low (MLIP) fidelity, and the pair's binding atoms (the
    site loss's target; None where unknown)."""

    pair_id: int
    gmae_ev: float
    low_fidelity: bool
    binding_atoms: tuple[int, ...] | None = None


def surrogate_samples(
    pool: PoolView, chosen: Sequence[ChosenLabel]
) -> list[tuple[PairRecord, SurrogateSample]]:
    """The surrogate's samples of ``chosen``, in that order: fidelity index 1 (low) for MLIP,
    0 (target) otherwise (`alloop.surrogate.fidelity`)."""
    by_id = {p.id: p for p in pool.pairs}
    out = []
    for lab in chosen:
        pair = by_id[lab.pair_id]
        fidelity = LOW_FIDELITY if lab.low_fidelity else TARGET_FIDELITY
        slab = pool.slabs[pair.surface_key]
        binding = lab.binding_atoms
        if binding is not None and any(i >= len(slab) for i in binding):
            logger.warning(
                "pair %s: binding atoms %s outside its %d-atom slab; trained without a site",
                pair.key, list(binding), len(slab),
            )  # fmt: skip
            binding = None
        sample = SurrogateSample(
            pair.surface_key, slab, pool.smiles(pair), lab.gmae_ev, fidelity, binding_atoms=binding
        )
        out.append((pair, sample))
    return out


def fit_ensemble(
    section: SurrogateSection,
    samples: Sequence[SurrogateSample],
    seed: int,
    warm_start: bytes | None,
) -> tuple[AdsMTEnsemble, FitReport]:
    """Fit the configured ensemble on ``samples`` (``holdout``: split by fidelity, seeded;
    ``cross_fit``: the ensemble deals its own folds over all of them)."""
    prepared = prepare_samples(samples, section.mode)
    train: list[SurrogateSample]
    val: list[SurrogateSample] = []
    if section.levers.split == "cross_fit":
        train = prepared
    else:
        train, val = split_by_fidelity(prepared, section.val_fraction, seed)
    ensemble = AdsMTEnsemble(ensemble_config(section), seed=seed)
    try:
        report = ensemble.fit(train, val, warm_start=warm_start)
    except CheckpointError as exc:
        if warm_start is None:
            raise
        # last round's model has other inputs (a campaign made before a featuriser default
        # changed, e.g. `mlip_features`): this round starts fresh instead of stopping
        logger.warning("not warm-starting from the previous round's model: %s", exc)
        ensemble = AdsMTEnsemble(ensemble_config(section), seed=seed)
        report = ensemble.fit(train, val)
    return ensemble, report


def load_ensemble(blob: bytes) -> AdsMTEnsemble:
    """An ensemble from a stored checkpoint."""
    return AdsMTEnsemble.from_bytes(blob)


def descriptor_space(
    section: SurrogateSection, pool: PoolView, cands: Sequence[PairRecord]
) -> torch.Tensor:
    """Surface one-hot (x3) ⊕ standardised adsorbate descriptors, one row per candidate: a
    space in which to spread a cold start before any model exists."""
    featurizer = Featurizer(ensemble_config(section).featurizer)
    smiles = sorted({pool.smiles(p) for p in cands})
    desc = featurizer.descriptors(smiles).double()
    desc = (desc - desc.mean(0)) / desc.std(0).clamp_min(1e-8)
    surfaces = sorted({p.surface_key for p in cands})
    eye = torch.eye(len(surfaces), dtype=torch.float64) * 3.0
    s_pos = {k: i for i, k in enumerate(surfaces)}
    a_pos = {k: i for i, k in enumerate(smiles)}
    return torch.stack(
        [torch.cat([eye[s_pos[p.surface_key]], desc[a_pos[pool.smiles(p)]]]) for p in cands]
    )
