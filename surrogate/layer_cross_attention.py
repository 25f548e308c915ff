"""Cross-modal attention: one adsorbate-and-slab query over the slab's atoms."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from alloop.surrogate.errors import SurrogateError

__all__ = ["CrossModalAttention"]


class CrossModalAttention(nn.Module):
    """Multi-head attention of one query token per pair over the atoms of its slab.

    The query is built from ``[adsorbate embedding, pooled slab embedding]``; keys and values
    are the slab's atom embeddings plus their depth embeddings. Keys and values depend on the
    slab only, so :meth:`project_keys_values` runs once per slab and :meth:`forward` gathers
    them for each pair. The head-averaged attention weights are the per-atom site scores.
    """

    def __init__(self, query_dim: int, hidden_dim: int, num_heads: int) -> None:
        super().__init__()
        if hidden_dim % num_heads:
            raise SurrogateError(
                f"hidden_dim={hidden_dim} is not divisible by num_heads={num_heads}"
            )
        self.query_dim, self.hidden_dim, self.num_heads = query_dim, hidden_dim, num_heads
        self.head_dim = hidden_dim // num_heads
        self.q_proj = nn.Linear(query_dim, hidden_dim)
        self.kv_proj = nn.Linear(hidden_dim, 2 * hidden_dim)
        self.out_proj = nn.Linear(hidden_dim, hidden_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in (self.q_proj, self.kv_proj, self.out_proj):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    def project_keys_values(self, atoms: Tensor) -> tuple[Tensor, Tensor]:
        """`S x N x H` padded atom tokens → keys and values, each `S x heads x N x d`."""
        s, n, _ = atoms.shape
        k, v = self.kv_proj(atoms).chunk(2, dim=-1)
        shape = (s, n, self.num_heads, self.head_dim)
        return k.reshape(shape).transpose(1, 2), v.reshape(shape).transpose(1, 2)

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Attend.

        Args:
            query: `P x query_dim`, one token per pair.
            keys, values: `P x heads x N x d`, the pair's slab (gathered from
                :meth:`project_keys_values`).
            mask: `P x N` bool, True for real atoms, False for padding.

        Returns:
            ``(out, weights)``: `P x H` attended features and `P x N` attention weights averaged
            over heads (zero on padding, each row sums to 1).
        """
        p = query.shape[0]
        q = self.q_proj(query).view(p, self.num_heads, 1, self.head_dim)
        logits = (q @ keys.transpose(-1, -2)).squeeze(-2) / math.sqrt(self.head_dim)
        logits = logits.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(logits, dim=-1)  # P x heads x N
        out = (weights.unsqueeze(-2) @ values).reshape(p, self.hidden_dim)
        return self.out_proj(out), weights.mean(dim=1)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(query_dim={self.query_dim}, hidden_dim={self.hidden_dim}, "
            f"num_heads={self.num_heads})"
        )
