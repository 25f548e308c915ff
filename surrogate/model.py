"""AdsMT: slab graph encoder + adsorbate encoder + cross-modal encoder → GMAE.

Two stages so that inference never redoes work: :meth:`AdsMT.encode_slabs` depends on the slab
only (run once per distinct slab), :meth:`AdsMT.encode_adsorbates` on the descriptor vector only
(once per distinct adsorbate), and :meth:`AdsMT.forward_pairs` combines them per pair.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.utils import scatter, to_dense_batch

from alloop.surrogate.defaults import SURROGATE_DEFAULTS
from alloop.surrogate.errors import SurrogateError
from alloop.surrogate.graph_encoder import AdsGTEncoder
from alloop.surrogate.layer_cross_attention import CrossModalAttention
from alloop.surrogate.layer_gaussian import GaussianSmearing
from alloop.surrogate.layer_self_attention import TokenSelfAttentionLayer

__all__ = ["AdsMT", "AdsMTConfig", "PairOutput", "SlabEncoding"]


@dataclass(frozen=True)
class AdsMTConfig:
    """Model hyperparameters (the featuriser's cutoff and descriptor width come separately).

    The defaults are the configuration benchmarked on the FG-GMAE stand-in on CPU
    (``benchmarks/surrogate``); the published AdsMT is wider and deeper.
    """

    hidden_dim: int = SURROGATE_DEFAULTS.hidden_dim
    num_graph_layers: int = SURROGATE_DEFAULTS.num_graph_layers
    num_graph_heads: int = 4
    num_distance_basis: int = 50
    num_depth_basis: int = 16
    ads_hidden_dim: int = 256
    num_cross_heads: int = 4
    num_self_layers: int = 1
    num_self_heads: int = 4
    head_hidden_dim: int = 128
    dropout: float = 0.1
    max_atomic_number: int = 100
    num_fidelities: int = 1
    delta_head: bool = False

    def __post_init__(self) -> None:
        for name in (
            "hidden_dim",
            "num_graph_layers",
            "num_graph_heads",
            "ads_hidden_dim",
            "num_cross_heads",
            "num_self_heads",
            "head_hidden_dim",
        ):
            if getattr(self, name) < 1:
                raise SurrogateError(f"AdsMTConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_graph_heads", "num_cross_heads", "num_self_heads"):
            if self.hidden_dim % getattr(self, name):
                raise SurrogateError(
                    f"AdsMTConfig.hidden_dim={self.hidden_dim} not divisible by "
                    f"{name}={getattr(self, name)}"
                )
        if self.num_fidelities < 1:
            raise SurrogateError(
                f"AdsMTConfig.num_fidelities must be >= 1, got {self.num_fidelities}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise SurrogateError(f"AdsMTConfig.dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)


class SlabEncoding(NamedTuple):
    """Everything the pair stage needs from `S` slabs (padded to `N` atoms, `T` top atoms)."""

    pooled: Tensor  # S x H, mean of atom features
    keys: Tensor  # S x heads x N x d, cross-attention keys
    values: Tensor  # S x heads x N x d
    mask: Tensor  # S x N bool, real atoms
    top_tokens: Tensor  # S x T x H, top-layer atom tokens
    top_mask: Tensor  # S x T bool


class PairOutput(NamedTuple):
    prediction: Tensor  # P, standardised GMAE
    site_weights: Tensor  # P x N, cross-attention per slab atom (rows sum to 1)
    embedding: Tensor  # P x 2H, the representation the head reads


class AdsMT(nn.Module):
    """The AdsMT model (no adsorption-site input).

    Multi-fidelity inputs (both optional, see :mod:`alloop.surrogate.fidelity`):
    ``num_fidelities > 1`` adds a learned fidelity embedding to the adsorbate and graph tokens
    before self-attention, so one trunk predicts each fidelity (index 0 is the target, DFT);
    ``delta_head`` adds a head that predicts the target as ``low-fidelity label + correction``
    for pairs whose low-fidelity label is given.

    Args:
        config: hyperparameters.
        descriptor_dim: width `D` of the standardised adsorbate vector.
        cutoff_ang: the featuriser's neighbour cutoff (Å), for the distance basis.
        atom_feature_dim: width of the slab graphs' frozen MLIP per-atom features
            (``x_mlip``); 0 when the featuriser adds none.
    """

    def __init__(
        self,
        config: AdsMTConfig,
        descriptor_dim: int,
        cutoff_ang: float,
        atom_feature_dim: int = 0,
    ) -> None:
        super().__init__()
        c, h = config, config.hidden_dim
        self.config, self.descriptor_dim, self.cutoff_ang = config, descriptor_dim, cutoff_ang
        self.atom_feature_dim = atom_feature_dim
        self.graph_encoder = AdsGTEncoder(
            h,
            c.num_graph_layers,
            c.num_graph_heads,
            c.num_distance_basis,
            cutoff_ang,
            c.max_atomic_number,
            c.dropout,
            atom_feature_dim,
        )
        self.depth_basis = GaussianSmearing(0.0, 1.0, c.num_depth_basis)
        self.depth_proj = nn.Linear(c.num_depth_basis, h)
        self.ads_encoder = nn.Sequential(
            nn.Linear(descriptor_dim, c.ads_hidden_dim),
            nn.SiLU(),
            nn.Dropout(c.dropout),
            nn.Linear(c.ads_hidden_dim, h),
            nn.LayerNorm(h),
        )
        self.cross = CrossModalAttention(2 * h, h, c.num_cross_heads)
        self.graph_token_norm = nn.LayerNorm(h)
        self.token_type = nn.Parameter(torch.empty(3, h))  # adsorbate, graph, top atom
        self.self_layers = nn.ModuleList(
            TokenSelfAttentionLayer(h, c.num_self_heads, c.dropout)
            for _ in range(c.num_self_layers)
        )
        self.final_norm = nn.LayerNorm(h)
        self.head = nn.Sequential(
            nn.Linear(2 * h, c.head_hidden_dim),
            nn.SiLU(),
            nn.Dropout(c.dropout),
            nn.Linear(c.head_hidden_dim, 1),
        )
        self.fidelity_embed = nn.Embedding(c.num_fidelities, h) if c.num_fidelities > 1 else None
        self.delta = (
            nn.Sequential(
                nn.Linear(2 * h + 1, c.head_hidden_dim),
                nn.SiLU(),
                nn.Dropout(c.dropout),
                nn.Linear(c.head_hidden_dim, 1),
            )
            if c.delta_head
            else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.graph_encoder.reset_parameters()
        self.depth_basis.reset_parameters()
        delta = tuple(self.delta) if self.delta is not None else ()
        for module in (self.depth_proj, *self.ads_encoder, *self.head, *delta):
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()
        self.cross.reset_parameters()
        self.graph_token_norm.reset_parameters()
        nn.init.normal_(self.token_type, std=0.1)
        for layer in self.self_layers:
            layer.reset_parameters()  # type: ignore[operator]
        self.final_norm.reset_parameters()
        if self.fidelity_embed is not None:
            nn.init.normal_(self.fidelity_embed.weight, std=0.1)
        if self.delta is not None:  # start as "target = low-fidelity label"
            last = self.delta[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)

    def encode_slabs(self, batch: Batch) -> SlabEncoding:
        """Encode `S` slab graphs (a PyG ``Batch``) once for every pair that uses them."""
        h = self.graph_encoder(batch)
        dtype = h.dtype
        pooled = scatter(h, batch.batch, dim=0, dim_size=batch.num_graphs, reduce="mean")
        tokens = h + self.depth_proj(self.depth_basis(batch.depth.to(dtype)))
        dense, mask = to_dense_batch(tokens, batch.batch, batch_size=batch.num_graphs)
        keys, values = self.cross.project_keys_values(dense)
        top = batch.top_mask
        top_tokens, top_mask = to_dense_batch(
            tokens[top] + self.token_type[2], batch.batch[top], batch_size=batch.num_graphs
        )
        return SlabEncoding(pooled, keys, values, mask, top_tokens, top_mask)

    def encode_adsorbates(self, descriptors: Tensor) -> Tensor:
        """`A x D` standardised descriptors → `A x H` adsorbate embeddings."""
        return self.ads_encoder(descriptors)

    def forward_pairs(
        self,
        slabs: SlabEncoding,
        adsorbates: Tensor,
        slab_idx: Tensor,
        ads_idx: Tensor,
        fidelity: Tensor | None = None,
        low_fidelity: Tensor | None = None,
    ) -> PairOutput:
        """Predict `P` pairs given encoded slabs and adsorbates and `P` index pairs.

        Args:
            fidelity: `P` long fidelity index of each prediction (None: 0, the target);
                ignored by a model with one fidelity.
            low_fidelity: `P` standardised low-fidelity label of each pair, NaN where there is
                none; only a model with a delta head uses it (target = label + correction).
        """
        # index_select rather than x[idx]: the same values, and a backward (index_add) several
        # times faster on CPU than advanced indexing's (see AdsGTLayer.forward)
        ads = adsorbates.index_select(0, ads_idx)
        pooled = slabs.pooled.index_select(0, slab_idx)
        cross_out, weights = self.cross(
            torch.cat([ads, pooled], dim=-1),
            slabs.keys.index_select(0, slab_idx),
            slabs.values.index_select(0, slab_idx),
            slabs.mask[slab_idx],
        )
        graph_token = self.graph_token_norm(pooled + cross_out)
        ads_token, graph_token = ads + self.token_type[0], graph_token + self.token_type[1]
        if self.fidelity_embed is not None:
            if fidelity is None:
                fidelity = torch.zeros(len(slab_idx), dtype=torch.long, device=ads.device)
            fid = self.fidelity_embed(fidelity)
            ads_token, graph_token = ads_token + fid, graph_token + fid
        tokens = torch.cat(
            [
                ads_token.unsqueeze(1),
                graph_token.unsqueeze(1),
                slabs.top_tokens.index_select(0, slab_idx),
            ],
            dim=1,
        )
        ones = torch.ones(len(slab_idx), 2, dtype=torch.bool, device=tokens.device)
        mask = torch.cat([ones, slabs.top_mask[slab_idx]], dim=1)
        for layer in self.self_layers:
            tokens = layer(tokens, mask)
        embedding = self.final_norm(tokens[:, :2]).reshape(len(slab_idx), -1)
        prediction = self.head(embedding).squeeze(-1)
        if self.delta is not None and low_fidelity is not None:
            known = ~torch.isnan(low_fidelity)
            base = torch.where(known, low_fidelity, torch.zeros_like(low_fidelity))
            base = base.to(embedding.dtype)
            correction = self.delta(torch.cat([embedding, base.unsqueeze(-1)], dim=-1))
            prediction = torch.where(known, base + correction.squeeze(-1), prediction)
        return PairOutput(prediction, weights, embedding)

    def forward(
        self,
        batch: Batch,
        descriptors: Tensor,
        slab_idx: Tensor,
        ads_idx: Tensor,
        fidelity: Tensor | None = None,
        low_fidelity: Tensor | None = None,
    ) -> PairOutput:
        """Both stages at once (training): slabs in ``batch``, `A x D` descriptors."""
        return self.forward_pairs(
            self.encode_slabs(batch),
            self.encode_adsorbates(descriptors),
            slab_idx,
            ads_idx,
            fidelity,
            low_fidelity,
        )

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return (
            f"{type(self).__name__}(hidden_dim={self.config.hidden_dim}, "
            f"graph_layers={self.config.num_graph_layers}, "
            f"self_layers={self.config.num_self_layers}, descriptor_dim={self.descriptor_dim}, "
            f"cutoff_ang={self.cutoff_ang:g}, fidelities={self.config.num_fidelities}, "
            f"delta_head={self.config.delta_head}, parameters={n})"
        )
