"""The surrogate on CUDA (marker `gpu`: deselected by default, run by benchmarks/gpu/check.sh on a
machine with a GPU; skipped where torch sees none). Nothing else depends on a GPU."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tests.surrogate.conftest import TINY_SMILES, tiny_config, tiny_samples, tiny_slabs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device"),
]


def test_trains_on_cuda_and_its_checkpoint_predicts_the_same_on_cpu() -> None:
    from alloop.surrogate.ensemble import AdsMTEnsemble

    samples = tiny_samples()
    ens = AdsMTEnsemble(replace(tiny_config(max_epochs=5), device="cuda"), seed=3)
    report = ens.fit(samples[::2], samples[1::2])
    assert report.device.startswith("cuda")
    slabs = list(tiny_slabs().values())
    on_gpu = ens.predict(slabs, list(TINY_SMILES))
    on_cpu = AdsMTEnsemble.from_bytes(ens.to_bytes(), device="cpu").predict(
        slabs, list(TINY_SMILES)
    )
    torch.testing.assert_close(on_gpu.mean_ev.cpu(), on_cpu.mean_ev, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(on_gpu.std_ev.cpu(), on_cpu.std_ev, atol=1e-4, rtol=1e-4)


def test_pool_posterior_from_cuda_feeds_acquisition() -> None:
    from alloop.loop.agent.acquisition import AcquisitionContext, score_pool
    from alloop.surrogate.ensemble import AdsMTEnsemble

    samples = tiny_samples()
    ens = AdsMTEnsemble(replace(tiny_config(max_epochs=3), device="cuda"), seed=4)
    ens.fit(samples[::2], samples[1::2])
    pred = ens.predict(list(tiny_slabs().values()), list(TINY_SMILES))
    scores = score_pool("ei", ens.pool_posterior(pred), AcquisitionContext(best_label_ev=-1.0, q=2))
    assert scores.shape == (len(TINY_SMILES) * 3,) and torch.isfinite(scores).all()
