"""Frozen MLIP features as surrogate inputs: the real SevenNet-0 from the ``sevenn`` wheel."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from alloop.surrogate.errors import FeaturisationError
from alloop.surrogate.featurizer import Featurizer, FeaturizerConfig
from alloop.surrogate.mlip_features import (
    MLIP_FEATURE_DIM,
    mlip_atom_features,
    molecule_from_smiles,
)
from tests.surrogate.conftest import TINY_SMILES, tiny_config, tiny_samples, tiny_slabs

MLIP = "sevennet-0"
WIDTH = MLIP_FEATURE_DIM[MLIP]


def test_molecule_from_smiles_is_a_deterministic_3d_molecule() -> None:
    a, b = molecule_from_smiles("CCO"), molecule_from_smiles("CCO")
    assert a.get_chemical_formula() == "C2H6O"
    np.testing.assert_array_equal(a.positions, b.positions)
    # a real 3D geometry: C-C and C-O bonds near 1.5 and 1.4 Å
    d = a.get_all_distances()
    heavy = [i for i, s in enumerate(a.get_chemical_symbols()) if s != "H"]
    bonds = sorted(d[i, j] for i in heavy for j in heavy if i < j)[:2]
    assert 1.35 < bonds[0] < 1.45 and 1.45 < bonds[1] < 1.6
    with pytest.raises(FeaturisationError, match="cannot parse"):
        molecule_from_smiles("C(((")


def test_atom_features_have_the_model_width_and_see_chemistry() -> None:
    x = mlip_atom_features(molecule_from_smiles("CCO"), MLIP)
    assert x.shape == (9, WIDTH) and x.dtype == np.float64 and np.isfinite(x).all()
    slab = tiny_slabs()["Pt"]
    s = mlip_atom_features(slab, MLIP)
    assert s.shape == (len(slab), WIDTH)
    # equivalent atoms (one layer of a periodic slab) share features; the surface layer and
    # the middle layer differ (the bottom layer is a surface too)
    z = slab.positions[:, 2]
    top = z > z.max() - 0.5
    middle = (z < z.max() - 0.5) & (z > z.min() + 0.5)
    np.testing.assert_allclose(s[top], np.broadcast_to(s[top][0], s[top].shape), atol=1e-5)
    assert np.abs(s[top][0] - s[middle][0]).max() > 1e-2
    # another metal, other features
    cu = mlip_atom_features(tiny_slabs()["Cu"], MLIP)
    assert np.abs(cu[top][0] - s[top][0]).max() > 1e-2


def test_a_first_call_from_inference_mode_leaves_the_mlip_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A campaign may first need features while it scores the pool under
    ``torch.inference_mode``; the MLIP loaded there must still take forces later (a resumed
    campaign failed with "Inference tensors cannot be saved for backward")."""
    import alloop.surrogate.mlip_features as mf

    monkeypatch.setattr(mf, "_MODELS", {})  # load it afresh, inside inference mode
    monkeypatch.setenv(mf.CACHE_ENV, "")  # and run it every time (no disk cache)
    molecule = molecule_from_smiles("CO")
    with torch.inference_mode():
        first = mlip_atom_features(molecule, MLIP)
    with torch.no_grad():
        np.testing.assert_allclose(mlip_atom_features(molecule, MLIP), first, atol=1e-6)
    np.testing.assert_allclose(mlip_atom_features(molecule, MLIP), first, atol=1e-6)


def test_features_are_kept_on_disk_by_content_and_a_damaged_file_is_recomputed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import alloop.surrogate.mlip_features as mf

    monkeypatch.setenv(mf.CACHE_ENV, str(tmp_path / "cache"))
    molecule = molecule_from_smiles("CCO")
    first = mlip_atom_features(molecule, MLIP)
    (kept,) = (tmp_path / "cache").glob(f"{MLIP}-*.npy")
    np.testing.assert_array_equal(np.load(kept), first)
    # read back without running the MLIP again (the one mock: the model call itself)
    real_compute = mf._compute

    def must_not_run(atoms: object, mlip: str) -> np.ndarray:
        raise AssertionError("the MLIP ran although its features were on disk")

    monkeypatch.setattr(mf, "_compute", must_not_run)
    np.testing.assert_array_equal(mlip_atom_features(molecule.copy(), MLIP), first)
    moved = molecule.copy()  # other content, other key
    moved.positions[0, 0] += 0.05
    with pytest.raises(AssertionError, match="MLIP ran"):
        mlip_atom_features(moved, MLIP)
    # a damaged or foreign file is data, never trusted: recomputed and replaced
    monkeypatch.setattr(mf, "_compute", real_compute)
    for junk in (b"not an array", _npy(np.zeros((2, 2))), _npy(np.full(first.shape, np.nan))):
        kept.write_bytes(junk)
        with caplog.at_level("WARNING", logger=mf.__name__):
            np.testing.assert_allclose(mlip_atom_features(molecule, MLIP), first, atol=1e-6)
        assert "ignoring" in caplog.text
        caplog.clear()
        np.testing.assert_allclose(np.load(kept), first, atol=1e-6)
    # turned off: nothing written
    monkeypatch.setenv(mf.CACHE_ENV, "")
    assert mf.feature_cache_dir() is None
    mlip_atom_features(molecule_from_smiles("CC"), MLIP)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_a_cache_folder_that_cannot_be_written_only_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import alloop.surrogate.mlip_features as mf

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(mf.CACHE_ENV, str(blocker / "cache"))
    with caplog.at_level("WARNING", logger=mf.__name__):
        x = mlip_atom_features(molecule_from_smiles("C"), MLIP)
    assert x.shape == (5, WIDTH) and "cannot keep MLIP features" in caplog.text


def _npy(x: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, x)
    return buf.getvalue()


def test_unknown_mlip_and_empty_structure_are_refused() -> None:
    from ase import Atoms

    with pytest.raises(FeaturisationError, match="unknown MLIP"):
        mlip_atom_features(molecule_from_smiles("C"), "mace")
    with pytest.raises(FeaturisationError, match="empty"):
        mlip_atom_features(Atoms(), MLIP)
    with pytest.raises(FeaturisationError, match="mlip_features must be one of"):
        FeaturizerConfig(mlip_features="mace")


def test_featurizer_appends_molecule_features_and_adds_slab_node_features() -> None:
    plain = Featurizer(FeaturizerConfig(cutoff_ang=4.0, max_neighbors=12, mlip_features="none"))
    feat = Featurizer(FeaturizerConfig(cutoff_ang=4.0, max_neighbors=12, mlip_features=MLIP))
    assert FeaturizerConfig().mlip_features == MLIP  # the shipped default
    # "none" keeps the version string of before, so older checkpoints still load
    assert ";mlip=" not in plain.config.version and f";mlip={MLIP}" in feat.config.version
    assert feat.descriptor_dim == plain.descriptor_dim + WIDTH == 210 + WIDTH
    rows = feat.descriptors(list(TINY_SMILES))
    assert rows.shape == (len(TINY_SMILES), feat.descriptor_dim)
    torch.testing.assert_close(rows[:, :210], plain.descriptors(list(TINY_SMILES)))
    # E- and Z-2-butene: one 2D graph, two 3D conformers, two MLIP vectors
    z_row, e_row = rows[TINY_SMILES.index(r"C/C=C\C")], rows[TINY_SMILES.index("C/C=C/C")]
    assert (z_row[210:] - e_row[210:]).abs().max() > 1e-3
    slab = tiny_slabs()["Ru"]
    graph = feat.slab_graph(slab)
    assert graph.x_mlip.shape == (len(slab), WIDTH)
    assert not hasattr(plain.slab_graph(slab), "x_mlip")


def test_ensemble_with_mlip_features_trains_predicts_and_round_trips() -> None:
    from alloop.surrogate.ensemble import AdsMTEnsemble

    cfg = tiny_config(ensemble_size=2, max_epochs=2)
    cfg = replace(cfg, featurizer=replace(cfg.featurizer, mlip_features=MLIP))
    samples = tiny_samples()
    ens = AdsMTEnsemble(cfg, seed=3)
    ens.fit(samples[::2], samples[1::2])
    slabs = list(tiny_slabs().values())
    a = ens.predict(slabs, list(TINY_SMILES))
    assert torch.isfinite(a.mean_ev).all() and (a.std_ev > 0).all()
    again = AdsMTEnsemble.from_bytes(ens.to_bytes())
    assert again.featurizer.atom_feature_dim == WIDTH
    b = again.predict(slabs, list(TINY_SMILES))
    torch.testing.assert_close(a.mean_ev, b.mean_ev)
    # the slab features reach the prediction: same element, other MLIP features, other output
    member = again.members[0]
    graph = again.featurizer.slab_graph(slabs[0])
    assert member.graph_encoder.atom_proj is not None
    from alloop.surrogate.inference import collate_slabs

    batch = collate_slabs([graph], torch.device("cpu"))
    h0 = member.graph_encoder(batch)
    batch.x_mlip = batch.x_mlip + 1.0
    assert (member.graph_encoder(batch) - h0).abs().max() > 1e-4
