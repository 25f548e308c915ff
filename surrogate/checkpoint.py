"""Ensemble checkpoints as bytes: tensors + JSON strings, loadable with ``weights_only=True``.

Layout (a dict saved with ``torch.save``)::

    format              "alloop.adsmt-ensemble/1"
    featurizer_version  FeaturizerConfig.version at save time
    config              EnsembleConfig.to_dict() as JSON
    seed, descriptor_dim, std_scale, std_floor_ev (absent before calibration floors: 0)
    desc_mean, desc_std, y_mean, y_std      float64 tensors (normalisers)
    members             list of K model state dicts
    priors              list of K prior states (tensors, floats, slab keys), or empty

No pickled Python objects, so loading never executes code from the file.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import torch
from torch import Tensor

from alloop.surrogate.errors import CheckpointError, SurrogateError
from alloop.surrogate.types import EnsembleConfig

__all__ = ["CHECKPOINT_FORMAT", "CheckpointState", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "alloop.adsmt-ensemble/1"


@dataclass(frozen=True)
class CheckpointState:
    config: EnsembleConfig
    seed: int
    featurizer_version: str
    descriptor_dim: int
    std_scale: float
    desc_mean: Tensor
    desc_std: Tensor
    y_mean: Tensor
    y_std: Tensor
    members: tuple[dict[str, Tensor], ...]
    std_floor_ev: float = 0.0
    priors: tuple[dict[str, object], ...] = ()


def save_checkpoint(state: CheckpointState) -> bytes:
    """Serialise to bytes (tensors moved to CPU)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "featurizer_version": state.featurizer_version,
        "config": json.dumps(state.config.to_dict(), sort_keys=True),
        "seed": int(state.seed),
        "descriptor_dim": int(state.descriptor_dim),
        "std_scale": float(state.std_scale),
        "desc_mean": state.desc_mean.detach().cpu(),
        "desc_std": state.desc_std.detach().cpu(),
        "y_mean": state.y_mean.detach().cpu(),
        "y_std": state.y_std.detach().cpu(),
        "members": [{k: v.detach().cpu() for k, v in m.items()} for m in state.members],
        "std_floor_ev": float(state.std_floor_ev),
        "priors": [dict(p) for p in state.priors],
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def load_checkpoint(data: bytes) -> CheckpointState:
    """Parse bytes from :func:`save_checkpoint` and refuse incompatible features.

    Raises:
        CheckpointError: not a checkpoint, another format, or written by a featuriser whose
            version differs from what this code computes for the same settings.
    """
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt input
        raise CheckpointError(f"not a readable checkpoint ({len(data)} bytes): {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"checkpoint format {got!r} is not {CHECKPOINT_FORMAT!r}")
    try:
        config = EnsembleConfig.from_dict(json.loads(payload["config"]))
        stored = payload["featurizer_version"]
    except (KeyError, TypeError, ValueError, SurrogateError) as exc:
        raise CheckpointError(f"checkpoint config is missing or malformed: {exc}") from exc
    if stored != config.featurizer.version:
        raise CheckpointError(
            f"checkpoint was written by featuriser {stored!r}, but this code featurises "
            f"the same settings as {config.featurizer.version!r}; retrain the ensemble"
        )
    try:
        return CheckpointState(
            config=config,
            seed=int(payload["seed"]),
            featurizer_version=stored,
            descriptor_dim=int(payload["descriptor_dim"]),
            std_scale=float(payload["std_scale"]),
            desc_mean=payload["desc_mean"],
            desc_std=payload["desc_std"],
            y_mean=payload["y_mean"],
            y_std=payload["y_std"],
            members=tuple(payload["members"]),
            std_floor_ev=float(payload.get("std_floor_ev", 0.0)),
            priors=tuple(payload.get("priors", [])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint is missing or has a malformed field: {exc}") from exc
