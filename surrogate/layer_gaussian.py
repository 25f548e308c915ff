"""Gaussian basis expansion of a scalar (interatomic distance in Å, or relative depth)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from alloop.surrogate.errors import SurrogateError

__all__ = ["UNDERFLOW_EXPONENT", "GaussianSmearing"]

#: basis values ``exp(-e)`` with ``e`` above this are set to 0 (see ``GaussianSmearing.forward``)
UNDERFLOW_EXPONENT = 60.0


class GaussianSmearing(nn.Module):
    """Expands a scalar onto ``num_basis`` fixed Gaussians evenly spaced on ``[start, stop]``.

    ``exp(-((x - mu_k) / width)^2 / 2)`` with ``width`` = the spacing of the centres, 0 where
    that is below ``exp(-UNDERFLOW_EXPONENT)``. No
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
        """`(...)` scalars → `(..., num_basis)` basis values in [0, 1]; a value below
        ``exp(-UNDERFLOW_EXPONENT)`` is exactly 0."""
        diff = (x.unsqueeze(-1) - self.centers) / self.width
        exponent = 0.5 * diff * diff
        # A Gaussian many widths from its centre would be a subnormal float (below 1.2e-38 in
        # float32); matrix products over subnormals ran ~40x slower on this CPU, and a
        # training round spent most of its time there. Zero them: the value dropped is < 1e-26.
        far = exponent > UNDERFLOW_EXPONENT
        return torch.exp(-exponent.masked_fill(far, UNDERFLOW_EXPONENT)).masked_fill(far, 0.0)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(start={self.start:g}, stop={self.stop:g}, "
            f"num_basis={self.num_basis})"
        )
