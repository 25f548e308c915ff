"""Frozen dataclasses that cross the package boundary: samples in, reports and predictions out."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ase import Atoms
from torch import Tensor

from alloop.surrogate.defaults import SURROGATE_DEFAULTS
from alloop.surrogate.errors import SurrogateError
from alloop.surrogate.featurizer import FeaturizerConfig
from alloop.surrogate.model import AdsMTConfig
from alloop.surrogate.training import MemberReport, TrainConfig

__all__ = ["EnsembleConfig", "FitReport", "Prediction", "SurrogateSample"]


@dataclass(frozen=True)
class SurrogateSample:
    """One label of a pair: a clean slab, an adsorbate SMILES and its GMAE (eV).

    ``surface_key`` is for people and logs; caches key slabs by content, not by this name.
    ``fidelity``: 0 for the target fidelity (DFT), 1 for the low fidelity (MLIP); a pair may
    have one sample per fidelity. ``low_fidelity_ev``: on a target-fidelity sample, the same
    pair's low-fidelity label when it has one (the input of Δ-learning), else None.
    ``binding_atoms``: indices into ``slab`` of the atoms the adsorbate is bound to in the
    labelled minimum (an MLIP label's ``binding_surface_atoms``), the target of the optional
    site loss (:mod:`alloop.surrogate.site_loss`); None where unknown.
    """

    surface_key: str
    slab: Atoms
    smiles: str
    gmae_ev: float
    fidelity: int = 0
    low_fidelity_ev: float | None = None
    binding_atoms: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.binding_atoms is not None:
            atoms = tuple(int(i) for i in self.binding_atoms)
            if any(not 0 <= i < len(self.slab) for i in atoms):
                raise SurrogateError(
                    f"sample {self.surface_key}/{self.smiles}: binding_atoms {list(atoms)} "
                    f"outside the {len(self.slab)}-atom slab"
                )
            object.__setattr__(self, "binding_atoms", atoms)
        if not math.isfinite(self.gmae_ev):
            raise SurrogateError(
                f"sample {self.surface_key}/{self.smiles} has non-finite gmae_ev={self.gmae_ev}"
            )
        if self.fidelity not in (0, 1):
            raise SurrogateError(
                f"sample {self.surface_key}/{self.smiles}: fidelity must be 0 (target) or 1 "
                f"(low), got {self.fidelity!r}"
            )
        if self.low_fidelity_ev is not None and not math.isfinite(self.low_fidelity_ev):
            raise SurrogateError(
                f"sample {self.surface_key}/{self.smiles} has non-finite "
                f"low_fidelity_ev={self.low_fidelity_ev}"
            )


@dataclass(frozen=True)
class EnsembleConfig:
    """Everything that defines an ensemble: featuriser, model, training, and inference knobs.

    Attributes:
        ensemble_size: ensemble size K (AdsMT-style deep ensemble).
        descriptor_transform: ``"none"`` or ``"signed_log1p"`` (``sign(x) log1p(|x|)`` of the
            raw descriptors before standardising).
        descriptor_clip: bound on standardised descriptor values (None = no clipping).
        calibrate_std: rescale the ensemble spread on the validation split so that Gaussian
            intervals are calibrated (one scalar, chosen to minimise miscalibration area).
        device: ``"cuda"``, ``"cpu"`` or None (CUDA when available, else CPU).
        dtype: ``"float32"`` or ``"float64"``.
        chunk_pairs / chunk_slabs: inference chunk sizes (memory bound, not results).
        fidelity_mode: how labels of two fidelities train one model (``FIDELITY_MODES`` in
            :mod:`alloop.surrogate.fidelity`): ``supersede`` (one label per pair, the highest
            fidelity), ``token`` (a learned fidelity embedding, predictions at the target),
            ``delta`` (token, plus target = low-fidelity label + learned correction where the
            pair has one), ``transfer`` (pretrain on low-fidelity labels, fine-tune on target).
        transfer_lr_factor: ``transfer``'s fine-tuning learning rate, as a share of
            ``train.learning_rate``.
        split: ``"holdout"`` (every member early-stops on the validation split the caller
            passes, the spread is scaled on it) or ``"cross_fit"`` (train and val are pooled;
            member k early-stops on fold k of K, and the spread is calibrated on every label's
            out-of-fold residual; see :mod:`alloop.surrogate.calibration`).
        prior_mean: ``"none"``, ``"scaling"`` or ``"scaling_ads"`` (members learn the residual
            over a per-member scaling-relation prior fit on their training labels, the latter
            with per-adsorbate offsets; :mod:`alloop.surrogate.prior`).
    """

    ensemble_size: int = SURROGATE_DEFAULTS.ensemble_size
    featurizer: FeaturizerConfig = field(default_factory=FeaturizerConfig)
    model: AdsMTConfig = field(default_factory=AdsMTConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    descriptor_transform: str = "none"
    descriptor_clip: float | None = 10.0
    calibrate_std: bool = True
    device: str | None = None
    dtype: str = "float32"
    chunk_pairs: int = 4096
    chunk_slabs: int = 64
    fidelity_mode: str = "supersede"
    transfer_lr_factor: float = 0.3
    split: str = SURROGATE_DEFAULTS.split
    prior_mean: str = SURROGATE_DEFAULTS.prior_mean

    def __post_init__(self) -> None:
        from alloop.surrogate.fidelity import FIDELITY_MODES, SPLITS
        from alloop.surrogate.prior import PRIOR_MEANS

        if self.split not in SPLITS:
            raise SurrogateError(
                f"split {self.split!r} is unknown; valid splits: {', '.join(SPLITS)}"
            )
        if self.prior_mean not in PRIOR_MEANS:
            raise SurrogateError(
                f"prior_mean {self.prior_mean!r} is unknown; valid: {', '.join(PRIOR_MEANS)}"
            )

        if self.fidelity_mode not in FIDELITY_MODES:
            raise SurrogateError(
                f"fidelity_mode {self.fidelity_mode!r} is unknown; valid modes: "
                f"{', '.join(FIDELITY_MODES)}"
            )
        if not 0.0 < self.transfer_lr_factor <= 1.0:
            raise SurrogateError(
                f"transfer_lr_factor must be in (0, 1], got {self.transfer_lr_factor}"
            )
        if self.ensemble_size < 1:
            raise SurrogateError(f"ensemble_size must be >= 1, got {self.ensemble_size}")
        if self.descriptor_transform not in ("none", "signed_log1p"):
            raise SurrogateError(
                "descriptor_transform must be 'none' or 'signed_log1p', got "
                f"{self.descriptor_transform!r}"
            )
        if self.dtype not in ("float32", "float64"):
            raise SurrogateError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.device not in (None, "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise SurrogateError(f"device must be None, 'cpu' or 'cuda[:n]', got {self.device!r}")
        if self.chunk_pairs < 1 or self.chunk_slabs < 1:
            raise SurrogateError(
                f"chunk sizes must be >= 1, got chunk_pairs={self.chunk_pairs}, "
                f"chunk_slabs={self.chunk_slabs}"
            )

    def to_dict(self) -> dict[str, object]:
        return {
            "ensemble_size": self.ensemble_size,
            "featurizer": self.featurizer.to_dict(),
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "descriptor_transform": self.descriptor_transform,
            "descriptor_clip": self.descriptor_clip,
            "calibrate_std": self.calibrate_std,
            "device": self.device,
            "dtype": self.dtype,
            "chunk_pairs": self.chunk_pairs,
            "chunk_slabs": self.chunk_slabs,
            "fidelity_mode": self.fidelity_mode,
            "transfer_lr_factor": self.transfer_lr_factor,
            "split": self.split,
            "prior_mean": self.prior_mean,
        }

    def member_model(self) -> AdsMTConfig:
        """The model each member builds: ``model`` with the inputs ``fidelity_mode`` needs."""
        if self.fidelity_mode == "token":
            return replace(self.model, num_fidelities=2)
        if self.fidelity_mode == "delta":
            return replace(self.model, num_fidelities=2, delta_head=True)
        return self.model

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> EnsembleConfig:
        """Inverse of :meth:`to_dict`; unknown keys are errors. Checkpoints written before the
        library took the campaign config's names (``num_members``, ``train.lr``) still load, and
        so do those written before ``split`` and ``prior_mean`` existed (holdout, no prior)."""
        data = dict(data)
        data.setdefault("split", "holdout")
        data.setdefault("prior_mean", "none")
        if "num_members" in data:
            data["ensemble_size"] = data.pop("num_members")
        train_data = dict(data.pop("train", {}))  # type: ignore[call-overload]
        if "lr" in train_data:
            train_data["learning_rate"] = train_data.pop("lr")
        try:
            feat = FeaturizerConfig(**data.pop("featurizer", {}))  # type: ignore[arg-type]
            model = AdsMTConfig(**data.pop("model", {}))  # type: ignore[arg-type]
            train = TrainConfig(**train_data)
            return cls(featurizer=feat, model=model, train=train, **data)  # type: ignore[arg-type]
        except TypeError as exc:
            raise SurrogateError(f"bad ensemble config: {exc}") from exc


@dataclass(frozen=True)
class FitReport:
    """What :meth:`AdsMTEnsemble.fit` did."""

    members: tuple[MemberReport, ...]
    n_train: int
    n_val: int
    val_mae_ev: float
    std_scale: float
    wall_s: float
    device: str
    warm_started: bool
    std_floor_ev: float = 0.0


@dataclass(frozen=True)
class Prediction:
    """Ensemble prediction for `P` pairs (`K` members).

    Attributes:
        mean_ev: `P` predictive mean (eV).
        std_ev: `P` predictive standard deviation (eV): the members' unbiased std times the
            calibration scale (same as the BoTorch posterior's).
        member_ev: `K x P` member predictions (eV), uncalibrated.
        n_atoms: `P` atom count of each pair's slab.
        site_scores: `P x N_max` cross-attention per slab atom (slab atom order, averaged over
            heads and members; row p sums to 1 over its first ``n_atoms[p]`` entries, zero
            padding after), or None when not requested.
        embeddings: `P x 2H` member-averaged pair representations, or None.
    """

    mean_ev: Tensor
    std_ev: Tensor
    member_ev: Tensor
    n_atoms: Tensor
    site_scores: Tensor | None = None
    embeddings: Tensor | None = None
