"""Pre-norm transformer layer over a padded set of tokens (adsorbate, slab, top-layer atoms)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from alloop.surrogate.errors import SurrogateError

__all__ = ["TokenSelfAttentionLayer"]


class TokenSelfAttentionLayer(nn.Module):
    """``x <- x + MHA(LN(x)); x <- x + FFN(LN(x))`` with a key padding mask.

    Permutation-equivariant over tokens, so the order of the top-layer atoms does not matter.
    """

    def __init__(self, hidden_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if hidden_dim % num_heads:
            raise SurrogateError(
                f"hidden_dim={hidden_dim} is not divisible by num_heads={num_heads}"
            )
        self.hidden_dim, self.num_heads = hidden_dim, num_heads
        self.head_dim = hidden_dim // num_heads
        self.norm1 = nn.LayerNorm(hidden_dim)
        self.qkv = nn.Linear(hidden_dim, 3 * hidden_dim)
        self.out_proj = nn.Linear(hidden_dim, hidden_dim)
        self.norm2 = nn.LayerNorm(hidden_dim)
        self.ffn = nn.Sequential(
            nn.Linear(hidden_dim, 2 * hidden_dim), nn.SiLU(), nn.Linear(2 * hidden_dim, hidden_dim)
        )
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in (self.qkv, self.out_proj, *self.ffn):
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """`P x T x H` tokens, `P x T` bool mask (True = real) → `P x T x H`."""
        p, t, _ = tokens.shape
        q, k, v = (
            x.reshape(p, t, self.num_heads, self.head_dim).transpose(1, 2)
            for x in self.qkv(self.norm1(tokens)).chunk(3, dim=-1)
        )
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        att = att.transpose(1, 2).reshape(p, t, self.hidden_dim)
        tokens = tokens + self.dropout(self.out_proj(att))
        return tokens + self.dropout(self.ffn(self.norm2(tokens)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hidden_dim={self.hidden_dim}, num_heads={self.num_heads})"
