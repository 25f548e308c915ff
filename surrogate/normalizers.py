"""Standardisation of descriptors and targets with statistics from the training set."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from alloop.surrogate.errors import TrainingError

__all__ = ["Standardizer"]


class Standardizer(nn.Module):
    """``(x - mean) / std`` per column, optionally clipped; inverse for targets.

    Columns constant in the training set (std below ``min_std``) get std 1, so they become 0
    everywhere instead of exploding. ``clip`` bounds standardised values (descriptors of an
    unseen molecule can lie far outside the training range, e.g. ``Ipc``).
    """

    mean: Tensor
    std: Tensor

    def __init__(self, dim: int, clip: float | None = None, min_std: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.clip, self.min_std = dim, clip, min_std
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("std", torch.ones(dim, dtype=torch.float64))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.mean.zero_()
        self.std.fill_(1.0)

    def fit(self, x: Tensor) -> Standardizer:
        """Fit on `n x dim` (or `n` when dim == 1) training values."""
        x = x.reshape(x.shape[0], -1).to(torch.float64)
        if x.shape[0] < 2 or x.shape[1] != self.dim:
            raise TrainingError(
                f"Standardizer(dim={self.dim}) needs >= 2 rows of width {self.dim}, got "
                f"shape {tuple(x.shape)}"
            )
        std = x.std(dim=0)
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(torch.where(std < self.min_std, torch.ones_like(std), std))
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Standardise `... x dim` (float64 statistics, result in x's dtype)."""
        out = (x.to(torch.float64) - self.mean) / self.std
        if self.clip is not None:
            out = out.clamp(-self.clip, self.clip)
        return out.to(x.dtype)

    def inverse(self, x: Tensor) -> Tensor:
        """Undo standardisation (no clipping)."""
        return (x.to(torch.float64) * self.std + self.mean).to(x.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, clip={self.clip})"
