"""Gaussian basis expansion of a scalar (interatomic distance in Å, or relative depth)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from alloop.surrogate.errors import SurrogateError

__all__ = ["GaussianSmearing"]


class GaussianSmearing(nn.Module):
    """Expands a scalar onto ``num_basis`` fixed Gaussians evenly spaced on ``[start, stop]``.

    ``exp(-((x - mu_k) / width)^2 / 2)`` with ``width`` = the spacing of the centres. No
    learnable parameters; the centres are a buffer so they follow ``.to(dtype/device)``.
    """

    centers: Tensor

    def __init__(self, start: float, stop: float, num_basis: int) -> None:
        super().__init__()
        if num_basis < 2 or not stop > start:
            raise SurrogateError(
                f"GaussianSmearing needs num_basis >= 2 and stop > start, got "
                f"num_basis={num_basis}, start={start}, stop={stop}"
            )
        self.start, self.stop, self.num_basis = float(start), float(stop), int(num_basis)
        self.register_buffer("centers", torch.empty(num_basis))
        self.width = (self.stop - self.start) / (num_basis - 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.centers.copy_(torch.linspace(self.start, self.stop, self.num_basis))

    def forward(self, x: Tensor) -> Tensor:
        """`(...)` scalars → `(..., num_basis)` basis values in (0, 1]."""
        diff = (x.unsqueeze(-1) - self.centers) / self.width
        return torch.exp(-0.5 * diff * diff)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(start={self.start:g}, stop={self.stop:g}, "
            f"num_basis={self.num_basis})"
        )
