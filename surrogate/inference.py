"""Batched two-stage inference of one AdsMT member: slabs once, then pairs in chunks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Batch, Data

from alloop.surrogate.errors import SurrogateError
from alloop.surrogate.model import AdsMT, SlabEncoding

__all__ = [
    "MemberOutput",
    "cat_encodings",
    "collate_slabs",
    "encode_slabs_chunked",
    "pad_cat",
    "check_pair_index",
    "predict_member",
    "predict_member_uncached",
    "split_encoding",
]


class MemberOutput(NamedTuple):
    prediction: Tensor  # P, standardised
    site_weights: Tensor | None  # P x N_max
    embedding: Tensor | None  # P x 2H


def collate_slabs(graphs: Sequence[Data], device: torch.device) -> Batch:
    """PyG ``Batch`` of slab graphs on ``device``."""
    return Batch.from_data_list(list(graphs)).to(device)


def pad_cat(parts: list[Tensor], dim: int) -> Tensor:
    """Concatenate along dim 0 after zero-padding dimension ``dim`` to the largest size."""
    size = max(p.shape[dim] for p in parts)
    padded = []
    for p in parts:
        pad = [0, 0] * (p.dim() - dim - 1) + [0, size - p.shape[dim]]
        padded.append(F.pad(p, pad))
    return torch.cat(padded, dim=0)


def encode_slabs_chunked(
    model: AdsMT, graphs: Sequence[Data], device: torch.device, chunk_slabs: int = 64
) -> SlabEncoding:
    """Encode `S` slabs, ``chunk_slabs`` graphs at a time, padded to a common atom count."""
    pieces = [
        model.encode_slabs(collate_slabs(graphs[i : i + chunk_slabs], device))
        for i in range(0, len(graphs), chunk_slabs)
    ]
    return cat_encodings(pieces)


def cat_encodings(parts: Sequence[SlabEncoding]) -> SlabEncoding:
    """Stack encodings of disjoint slab sets, padding atoms and top atoms (False-masked)."""
    if len(parts) == 1:
        return parts[0]
    return SlabEncoding(
        pooled=torch.cat([p.pooled for p in parts]),
        keys=pad_cat([p.keys for p in parts], dim=2),
        values=pad_cat([p.values for p in parts], dim=2),
        mask=pad_cat([p.mask for p in parts], dim=1),
        top_tokens=pad_cat([p.top_tokens for p in parts], dim=1),
        top_mask=pad_cat([p.top_mask for p in parts], dim=1),
    )


def split_encoding(enc: SlabEncoding) -> list[SlabEncoding]:
    """One unpadded single-slab encoding per slab of ``enc`` (for caching by slab)."""
    out = []
    for i in range(enc.pooled.shape[0]):
        n, t = int(enc.mask[i].sum()), int(enc.top_mask[i].sum())
        out.append(
            SlabEncoding(
                enc.pooled[i : i + 1],
                enc.keys[i : i + 1, :, :n],
                enc.values[i : i + 1, :, :n],
                enc.mask[i : i + 1, :n],
                enc.top_tokens[i : i + 1, :t],
                enc.top_mask[i : i + 1, :t],
            )
        )
    return out


@torch.no_grad()
def predict_member(
    model: AdsMT,
    slabs: SlabEncoding,
    descriptors: Tensor,
    slab_idx: Tensor,
    ads_idx: Tensor,
    chunk_pairs: int = 4096,
    with_sites: bool = False,
    with_embedding: bool = False,
    fidelity: Tensor | None = None,
    low_fidelity: Tensor | None = None,
) -> MemberOutput:
    """Predict `P` pairs in eval mode from encoded slabs.

    Args:
        slabs: encoding of every slab ``slab_idx`` points into.
        descriptors: `A x D` standardised descriptors, in the model's dtype and device.
        slab_idx, ads_idx: `P` long indices.
        chunk_pairs: pairs per chunk (bounds the `chunk x heads x N x d` gathers).
        fidelity, low_fidelity: `P` per-pair multi-fidelity inputs (see `AdsMT.forward_pairs`).
    """
    ads = model.encode_adsorbates(descriptors)
    preds, sites, embs = [], [], []
    for i in range(0, len(slab_idx), chunk_pairs):
        part = slice(i, i + chunk_pairs)
        out = model.forward_pairs(
            slabs,
            ads,
            slab_idx[part],
            ads_idx[part],
            None if fidelity is None else fidelity[part],
            None if low_fidelity is None else low_fidelity[part],
        )
        preds.append(out.prediction)
        if with_sites:
            sites.append(out.site_weights)
        if with_embedding:
            embs.append(out.embedding)
    empty = torch.zeros(0, dtype=descriptors.dtype, device=descriptors.device)
    return MemberOutput(
        torch.cat(preds) if preds else empty,
        torch.cat(sites) if sites else None,
        torch.cat(embs) if embs else None,
    )


@torch.no_grad()
def predict_member_uncached(
    model: AdsMT,
    graphs: Sequence[Data],
    descriptors: Tensor,
    slab_idx: Tensor,
    ads_idx: Tensor,
    chunk_pairs: int,
    with_sites: bool = False,
    with_embedding: bool = False,
) -> MemberOutput:
    """The naive path, kept to measure what reuse saves: every pair re-encodes its own slab.

    Same arguments and outputs as :func:`predict_member`, with ``graphs`` in place of encoded
    slabs; site weights are padded to the largest slab of ``graphs``.
    """
    device = descriptors.device
    ads = model.encode_adsorbates(descriptors)
    preds, sites, embs = [], [], []
    n_max = max(g.num_nodes for g in graphs)
    for i in range(0, len(slab_idx), chunk_pairs):
        sl = slab_idx[i : i + chunk_pairs]
        enc = model.encode_slabs(collate_slabs([graphs[int(j)] for j in sl], device))
        local = torch.arange(len(sl), device=device)
        out = model.forward_pairs(enc, ads, local, ads_idx[i : i + chunk_pairs])
        preds.append(out.prediction)
        if with_sites:
            w = out.site_weights
            sites.append(F.pad(w, (0, n_max - w.shape[1])))
        if with_embedding:
            embs.append(out.embedding)
    return MemberOutput(
        torch.cat(preds),
        torch.cat(sites) if with_sites else None,
        torch.cat(embs) if with_embedding else None,
    )


def check_pair_index(n_slabs: int, n_smiles: int, pair_index: Tensor | None) -> Tensor:
    """Validate a `P x 2` (slab, SMILES) index on CPU, or build the full slab-major grid.

    Raises:
        SurrogateError: no slab or SMILES, wrong shape/dtype, or an index out of range.
    """
    if n_slabs == 0 or n_smiles == 0:
        raise SurrogateError(f"need at least one slab and one SMILES, got {n_slabs}, {n_smiles}")
    if pair_index is None:
        s = torch.arange(n_slabs).repeat_interleave(n_smiles)
        return torch.stack([s, torch.arange(n_smiles).repeat(n_slabs)], dim=1)
    pair_index = torch.as_tensor(pair_index).cpu()
    if pair_index.dim() != 2 or pair_index.shape[1] != 2 or pair_index.is_floating_point():
        raise SurrogateError(
            f"pair_index must be an integer P x 2 tensor, got {tuple(pair_index.shape)} "
            f"{pair_index.dtype}"
        )
    for col, n, what in ((0, n_slabs, "slab"), (1, n_smiles, "SMILES")):
        bad = (pair_index[:, col] < 0) | (pair_index[:, col] >= n)
        if bad.any():
            raise SurrogateError(
                f"pair_index column {col} has {what} index {int(pair_index[bad, col][0])} "
                f"outside [0, {n})"
            )
    return pair_index.long()
