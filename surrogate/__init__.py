"""alloop.surrogate — the AdsMT deep-ensemble surrogate for global minimum adsorption energy.

Public API (what the loop uses)::

    from alloop.surrogate import AdsMTEnsemble, EnsembleConfig, SurrogateSample

    ens = AdsMTEnsemble(EnsembleConfig(ensemble_size=5), seed=0)
    report = ens.fit(train, val, warm_start=last_round_bytes)  # -> FitReport
    pred = ens.predict(slabs, smiles, pair_index,               # -> Prediction
                       with_site_scores=True, with_embeddings=True)
    #   pred.mean_ev, pred.std_ev: `P` (eV); pred.site_scores: `P x N_max` (rows sum to 1)
    post = ens.posterior(slabs, smiles, pair_index)             # BoTorch EnsemblePosterior
    scores = ens.site_scores(slabs, smiles, pair_index)         # list of `n_atoms` tensors
    blob = ens.to_bytes(); ens = AdsMTEnsemble.from_bytes(blob)

* ``train``/``val``: sequences of :class:`SurrogateSample` (frozen: ``surface_key``, clean
  ``slab`` Atoms, adsorbate ``smiles``, ``gmae_ev``). No adsorption-site information goes in.
* ``slabs``: `S` clean slabs (ase.Atoms); ``smiles``: `A` SMILES; ``pair_index``: `P x 2` long
  tensor (slab position, SMILES position), or None for the full `S x A` grid (slab-major).
* Featurised slabs (by structure content) and adsorbates (by SMILES) are cached in
  ``ens.featurizer``, and slab encodings per member until the next ``fit``; keep the ensemble
  (or pass a shared :class:`Featurizer`) across rounds so the pool is not refeaturised.
* Checkpoints are bytes readable with ``torch.load(weights_only=True)``; one written by an
  incompatible featuriser is refused with :class:`CheckpointError`.

Also here: :func:`smiles_from_atoms` (RDKit bond perception), the FG readers
(:func:`read_fg_table`, :func:`read_fg_molecules`, :func:`read_fg_slabs`), the AdsMT LMDB
reader (:func:`read_adsmt_lmdb`), the 208 AdsMT descriptors (:func:`adsorbate_descriptors`) and
uncertainty metrics (:mod:`alloop.surrogate.metrics`).

Names are imported lazily, so ``import alloop.surrogate.smiles`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AdsMTEnsemble": "alloop.surrogate.ensemble",
    "EnsembleConfig": "alloop.surrogate.types",
    "FitReport": "alloop.surrogate.types",
    "Prediction": "alloop.surrogate.types",
    "SurrogateSample": "alloop.surrogate.types",
    "AdsMTConfig": "alloop.surrogate.model",
    "TrainConfig": "alloop.surrogate.training",
    "MemberReport": "alloop.surrogate.training",
    "Featurizer": "alloop.surrogate.featurizer",
    "FeaturizerConfig": "alloop.surrogate.featurizer",
    "adsorbate_descriptors": "alloop.surrogate.descriptors",
    "ADSMT_DESCRIPTOR_NAMES": "alloop.surrogate.descriptors",
    "build_slab_graph": "alloop.surrogate.slab_graph",
    "smiles_from_atoms": "alloop.surrogate.smiles",
    "read_fg_table": "alloop.surrogate.fg",
    "read_fg_molecules": "alloop.surrogate.fg",
    "read_fg_slabs": "alloop.surrogate.fg",
    "FGRecord": "alloop.surrogate.fg",
    "FGMolecule": "alloop.surrogate.fg",
    "read_adsmt_lmdb": "alloop.surrogate.lmdb_io",
    "LmdbRecord": "alloop.surrogate.lmdb_io",
    "SurrogateError": "alloop.surrogate.errors",
    "FeaturisationError": "alloop.surrogate.errors",
    "DataError": "alloop.surrogate.errors",
    "CheckpointError": "alloop.surrogate.errors",
    "TrainingError": "alloop.surrogate.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'alloop.surrogate' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
