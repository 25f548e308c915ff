from __future__ import annotations

import io
from dataclasses import replace

import pytest
import torch
from botorch.posteriors.ensemble import EnsemblePosterior

from alloop.surrogate.checkpoint import CHECKPOINT_FORMAT
from alloop.surrogate.ensemble import AdsMTEnsemble
from alloop.surrogate.errors import CheckpointError, SurrogateError, TrainingError
from alloop.surrogate.types import EnsembleConfig, SurrogateSample

from .conftest import TINY_SMILES, tiny_config, tiny_samples, tiny_slabs


def test_fit_report(fitted_tiny_ensemble) -> None:  # noqa: ANN001
    ens, report = fitted_tiny_ensemble
    assert len(report.members) == 3
    assert (report.n_train, report.n_val) == (9, 9)
    assert report.device == "cpu"
    assert not report.warm_started
    assert report.std_scale > 0
    assert all(1 <= m.best_epoch <= m.epochs_run <= 3 for m in report.members)
    assert len({m.seed for m in report.members}) == 3
    assert "K=3, fitted" in repr(ens)


def test_posterior_matches_predict(fitted_tiny_ensemble) -> None:  # noqa: ANN001
    ens, _ = fitted_tiny_ensemble
    slabs = list(tiny_slabs().values())
    pairs = torch.tensor([[0, 0], [2, 5], [1, 3], [0, 0]])
    post = ens.posterior(slabs, list(TINY_SMILES), pairs)
    pred = ens.predict(slabs, list(TINY_SMILES), pairs, with_embeddings=True)
    assert isinstance(post, EnsemblePosterior)
    assert post.values.shape == (3, 4, 1)  # joint over the pool: K x P x 1
    torch.testing.assert_close(post.mean.reshape(-1), pred.mean_ev)
    torch.testing.assert_close(post.variance.sqrt().reshape(-1), pred.std_ev)
    torch.testing.assert_close(pred.mean_ev[0], pred.mean_ev[3])
    assert pred.embeddings is not None and pred.embeddings.shape == (4, 32)
    assert pred.member_ev.shape == (3, 4)


def test_site_scores_per_pair(fitted_tiny_ensemble) -> None:  # noqa: ANN001
    ens, _ = fitted_tiny_ensemble
    slabs = list(tiny_slabs().values())
    scores = ens.site_scores(slabs, ["CCO"])
    assert [len(s) for s in scores] == [len(s) for s in slabs]
    for s in scores:
        assert float(s.sum()) == pytest.approx(1.0, abs=1e-5)


def test_encodings_reused_between_calls(fitted_tiny_ensemble) -> None:  # noqa: ANN001
    ens, _ = fitted_tiny_ensemble
    slabs = list(tiny_slabs().values())
    ens.predict(slabs, ["CCO"])
    cached = dict(ens._enc_cache[0])
    ens.predict(slabs[:1], ["C=O"])
    assert all(ens._enc_cache[0][k] is v for k, v in cached.items())


def test_checkpoint_round_trip(fitted_tiny_ensemble) -> None:  # noqa: ANN001
    ens, _ = fitted_tiny_ensemble
    slabs = list(tiny_slabs().values())
    data = ens.to_bytes()
    payload = torch.load(io.BytesIO(data), weights_only=True)
    assert payload["format"] == CHECKPOINT_FORMAT
    assert payload["featurizer_version"] == ens.config.featurizer.version
    again = AdsMTEnsemble.from_bytes(data)
    assert again.config == replace(ens.config, device=None)
    a = ens.predict(slabs, list(TINY_SMILES))
    b = again.predict(slabs, list(TINY_SMILES))
    torch.testing.assert_close(a.mean_ev, b.mean_ev)
    torch.testing.assert_close(a.std_ev, b.std_ev)


def _tamper(data: bytes, **changes: object) -> bytes:
    payload = torch.load(io.BytesIO(data), weights_only=True)
    payload.update(changes)
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def test_incompatible_featurizer_is_refused(fitted_tiny_ensemble) -> None:  # noqa: ANN001
    ens, _ = fitted_tiny_ensemble
    old = _tamper(ens.to_bytes(), featurizer_version="adsmt-feat-0;cutoff_ang=4")
    with pytest.raises(CheckpointError, match="written by featuriser 'adsmt-feat-0;cutoff_ang=4'"):
        AdsMTEnsemble.from_bytes(old)
    with pytest.raises(CheckpointError, match="retrain"):
        AdsMTEnsemble(ens.config).fit(tiny_samples()[:4], tiny_samples()[4:6], warm_start=old)


def test_bad_checkpoints_are_refused() -> None:
    with pytest.raises(CheckpointError, match="not a readable checkpoint \\(5 bytes\\)"):
        AdsMTEnsemble.from_bytes(b"hello")
    buf = io.BytesIO()
    torch.save({"format": "something/9"}, buf)
    with pytest.raises(CheckpointError, match="format 'something/9'"):
        AdsMTEnsemble.from_bytes(buf.getvalue())


def test_warm_start_keeps_weights_and_normalisers(fitted_tiny_ensemble) -> None:  # noqa: ANN001
    ens, _ = fitted_tiny_ensemble
    slabs = list(tiny_slabs().values())
    frozen = replace(ens.config, train=replace(ens.config.train, learning_rate=1e-12, max_epochs=1))
    samples = tiny_samples()
    shifted = [SurrogateSample(s.surface_key, s.slab, s.smiles, s.gmae_ev + 5.0) for s in samples]
    warm = AdsMTEnsemble(frozen, seed=99)
    report = warm.fit(shifted[::3], shifted[1::3], warm_start=ens.to_bytes())
    assert report.warm_started
    torch.testing.assert_close(
        warm.predict(slabs, list(TINY_SMILES)).member_ev,
        ens.predict(slabs, list(TINY_SMILES)).member_ev,
        atol=1e-5,
        rtol=0,
    )
    other_model = replace(frozen, model=replace(frozen.model, hidden_dim=32))
    with pytest.raises(CheckpointError, match="warm start model config"):
        AdsMTEnsemble(other_model).fit(samples[:4], samples[4:6], warm_start=ens.to_bytes())


def test_seeds_make_training_reproducible() -> None:
    samples = tiny_samples()
    cfg = tiny_config(ensemble_size=1, max_epochs=2)
    runs = []
    for _ in range(2):
        ens = AdsMTEnsemble(cfg, seed=5)
        ens.fit(samples[::2], samples[1::2])
        runs.append(ens.predict(list(tiny_slabs().values()), ["CCO"]).mean_ev)
    torch.testing.assert_close(runs[0], runs[1], atol=0, rtol=0)
    ens = AdsMTEnsemble(cfg, seed=6)
    ens.fit(samples[::2], samples[1::2])
    assert not torch.equal(ens.predict(list(tiny_slabs().values()), ["CCO"]).mean_ev, runs[0])


def test_error_paths(fitted_tiny_ensemble) -> None:  # noqa: ANN001
    ens, _ = fitted_tiny_ensemble
    slabs = list(tiny_slabs().values())
    with pytest.raises(SurrogateError, match="not fitted"):
        AdsMTEnsemble(tiny_config()).predict(slabs, ["CCO"])
    with pytest.raises(TrainingError, match="non-empty train and val, got 0, 1"):
        AdsMTEnsemble(tiny_config()).fit([], tiny_samples()[:1])
    with pytest.raises(SurrogateError, match="column 0 has slab index 3 outside \\[0, 3\\)"):
        ens.predict(slabs, ["CCO"], torch.tensor([[3, 0]]))
    with pytest.raises(SurrogateError, match="integer P x 2 tensor"):
        ens.predict(slabs, ["CCO"], torch.tensor([[0.0, 0.0]]))
    with pytest.raises(SurrogateError, match="non-finite gmae_ev=nan"):
        SurrogateSample("Pt", slabs[0], "CCO", float("nan"))
    with pytest.raises(SurrogateError, match="ensemble_size must be >= 1, got 0"):
        EnsembleConfig(ensemble_size=0)
    with pytest.raises(SurrogateError, match="dtype must be 'float32' or 'float64', got 'half'"):
        EnsembleConfig(dtype="half")
    with pytest.raises(SurrogateError, match="descriptor_transform must be .* got 'log'"):
        EnsembleConfig(descriptor_transform="log")
    with pytest.raises(SurrogateError, match="bad ensemble config"):
        EnsembleConfig.from_dict({"nonsense": 1})
