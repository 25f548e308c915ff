"""The slab encoder's building blocks: the distance basis and one AdsGT layer."""

from __future__ import annotations

import pytest
import torch

from alloop.surrogate.layer_adsgt import AdsGTLayer
from alloop.surrogate.layer_gaussian import UNDERFLOW_EXPONENT, GaussianSmearing


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_basis_has_no_subnormal_values(dtype: torch.dtype) -> None:
    # 50 Gaussians on [0, 6] Å, the shipped distance basis: far from a centre, exp(-x²/2)
    # would be subnormal in float32 (< 1.2e-38), which made training's matrix products slow
    basis = GaussianSmearing(0.0, 6.0, 50).to(dtype)
    dist = torch.linspace(0.0, 6.0, 997, dtype=dtype)
    values = basis(dist)
    diff = (dist.unsqueeze(-1) - basis.centers) / basis.width
    exponent = 0.5 * diff * diff
    far = exponent > UNDERFLOW_EXPONENT
    assert far.any() and (~far).any()
    assert torch.equal(values[far], torch.zeros_like(values[far]))
    torch.testing.assert_close(values[~far], torch.exp(-exponent[~far]), rtol=0, atol=0)
    tiny = torch.finfo(torch.float32).tiny
    assert not ((values > 0) & (values < tiny)).any()
    assert float(values.max()) == pytest.approx(1.0)


def test_adsgt_layer_gradients_are_exact() -> None:
    # the layer gathers with index_select (a faster backward than x[idx]); its gradients must
    # still be the true ones: finite differences in float64 on a small random graph
    torch.manual_seed(0)
    n, e, hidden, heads, nb = 6, 20, 8, 2, 5
    layer = AdsGTLayer(hidden, heads, nb, dropout=0.0).double()
    h = torch.randn(n, hidden, dtype=torch.float64, requires_grad=True)
    edge_index = torch.randint(0, n, (2, e))
    basis = torch.rand(e, nb, dtype=torch.float64)
    envelope = torch.rand(e, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: layer(x, edge_index, basis, envelope), (h,))


def test_attached_edge_terms_give_the_same_encoding_and_gradients() -> None:
    # training computes the distance basis and envelope once per fit and attaches them to the
    # batch it encodes every step: the encoding and its gradients must be those computed afresh
    from ase.build import fcc111

    from alloop.surrogate.graph_encoder import AdsGTEncoder
    from alloop.surrogate.inference import collate_slabs
    from alloop.surrogate.slab_graph import build_slab_graph

    torch.manual_seed(0)
    slabs = [fcc111(m, size=(2, 2, 3), vacuum=8.0) for m in ("Pt", "Cu")]
    graphs = [build_slab_graph(s, cutoff_ang=5.0, max_neighbors=12) for s in slabs]
    encoder = AdsGTEncoder(16, 2, 2, 10, cutoff_ang=5.0)
    fresh = collate_slabs(graphs, torch.device("cpu"))
    attached = encoder.attach_edge_terms(collate_slabs(graphs, torch.device("cpu")))
    assert "edge_basis" in attached and "edge_basis" not in fresh
    assert not attached.edge_basis.requires_grad
    out_fresh, out_attached = encoder(fresh), encoder(attached)
    torch.testing.assert_close(out_attached, out_fresh, rtol=0, atol=0)
    grads = []
    for out in (out_fresh, out_attached):
        encoder.zero_grad()
        (out**2).sum().backward(retain_graph=True)
        grads.append([p.grad.clone() for p in encoder.parameters() if p.grad is not None])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
