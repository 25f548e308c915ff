"""AdsGT: the slab graph encoder of AdsMT (element embedding + stacked AdsGT layers)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from alloop.surrogate.errors import FeaturisationError
from alloop.surrogate.layer_adsgt import AdsGTLayer
from alloop.surrogate.layer_gaussian import GaussianSmearing

__all__ = ["AdsGTEncoder"]


class AdsGTEncoder(nn.Module):
    """Slab graph → per-atom features.

    Element embedding, Gaussian-expanded distances (computed once, shared by the layers), then
    ``num_layers`` :class:`AdsGTLayer`. Uses only interatomic
    distances, so it is invariant to rotations, translations and atom permutations.
    """

    def __init__(
        self,
        hidden_dim: int,
        num_layers: int,
        num_heads: int,
        num_distance_basis: int,
        cutoff_ang: float,
        max_atomic_number: int = 100,
        dropout: float = 0.0,
        atom_feature_dim: int = 0,
    ) -> None:
        super().__init__()
        self.hidden_dim, self.num_layers, self.cutoff_ang = hidden_dim, num_layers, cutoff_ang
        self.max_atomic_number = max_atomic_number
        self.embedding = nn.Embedding(max_atomic_number + 1, hidden_dim)
        # frozen MLIP per-atom features (graph field ``x_mlip``), added to the element embedding
        self.atom_proj = nn.Linear(atom_feature_dim, hidden_dim) if atom_feature_dim else None
        self.distance_basis = GaussianSmearing(0.0, cutoff_ang, num_distance_basis)
        self.layers = nn.ModuleList(
            AdsGTLayer(hidden_dim, num_heads, num_distance_basis, dropout)
            for _ in range(num_layers)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=1.0)
        if self.atom_proj is not None:
            nn.init.xavier_uniform_(self.atom_proj.weight)
            nn.init.zeros_(self.atom_proj.bias)
        self.distance_basis.reset_parameters()
        for layer in self.layers:
            layer.reset_parameters()  # type: ignore[operator]

    def edge_terms(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """The edges' distance basis (`E x B`) and cutoff envelope (`E`), in the model's dtype.

        They depend on the geometry only, never on weights: a training loop that encodes the
        same batch every step computes them once and attaches them to the batch as
        ``edge_basis`` and ``edge_envelope`` (:meth:`attach_edge_terms`)."""
        dist = batch.edge_dist_ang.to(self.embedding.weight.dtype)
        envelope = 0.5 * (torch.cos(math.pi * dist / self.cutoff_ang) + 1.0)
        envelope = envelope * (dist < self.cutoff_ang)
        return self.distance_basis(dist), envelope

    def forward(self, batch: Batch) -> Tensor:
        """``Batch`` of slab graphs (fields of :func:`build_slab_graph`) → `n x H` features.

        Uses the batch's ``edge_basis``/``edge_envelope`` when it carries them."""
        z = batch.z
        if int(z.max()) > self.max_atomic_number:
            raise FeaturisationError(
                f"atomic number {int(z.max())} > max_atomic_number={self.max_atomic_number}"
            )
        if "edge_basis" in batch and "edge_envelope" in batch:
            basis, envelope = batch.edge_basis, batch.edge_envelope
        else:
            basis, envelope = self.edge_terms(batch)
        h = self.embedding(z)
        if self.atom_proj is not None:
            h = h + self.atom_proj(batch.x_mlip.to(h.dtype))
        for layer in self.layers:
            h = layer(h, batch.edge_index, basis, envelope)
        return h

    def attach_edge_terms(self, batch: Batch) -> Batch:
        """Compute :meth:`edge_terms` once and store them on ``batch`` (returned), so that
        every later forward pass over this batch reuses them."""
        with torch.no_grad():
            batch.edge_basis, batch.edge_envelope = self.edge_terms(batch)
        return batch

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(hidden_dim={self.hidden_dim}, num_layers={self.num_layers}, "
            f"cutoff_ang={self.cutoff_ang:g})"
        )
