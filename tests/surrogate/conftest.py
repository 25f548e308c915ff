"""Shared fixtures of the surrogate tests: the FG reference data and tiny hand-made inputs.

``fg_root`` comes from ``tests/conftest.py`` (the one rule of :mod:`alloop.oracles.fg_data`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: a copy of shared/data/ocd_examples (AdsMT, MIT: see its LICENSE_AdsMT.txt)
_DEFAULT_OCD = Path(__file__).resolve().parents[1] / "data" / "ocd_examples"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():  # noqa: ANN202
    """Tiny models on a shared 2-core machine: extra OpenMP threads only spin (8 s vs 0.2 s)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def ocd_examples_path() -> Path:
    """``examples.json`` of the AdsMT OCD examples (``ALLOOP_OCD_EXAMPLES`` overrides)."""
    return Path(os.environ.get("ALLOOP_OCD_EXAMPLES", _DEFAULT_OCD / "examples.json"))


@pytest.fixture(scope="session")
def fg_molecules(fg_root: Path):  # noqa: ANN201 - list[FGMolecule]
    from alloop.surrogate.fg import read_fg_molecules

    return read_fg_molecules(fg_root)


@pytest.fixture(scope="session")
def fg_slabs(fg_root: Path):  # noqa: ANN201 - dict[str, Atoms]
    from alloop.surrogate.fg import read_fg_slabs

    return read_fg_slabs(fg_root)


# --------------------------------------------------------------------- tiny model inputs
TINY_SMILES = ("CCO", "C=O", "CC(C)=O", r"C/C=C\C", "C/C=C/C", "c1ccccc1")


def tiny_config(ensemble_size: int = 3, max_epochs: int = 3, dtype: str = "float32"):  # noqa: ANN201
    """An ensemble config small enough to train in about a second on one core."""
    from alloop.surrogate.featurizer import FeaturizerConfig
    from alloop.surrogate.model import AdsMTConfig
    from alloop.surrogate.training import TrainConfig
    from alloop.surrogate.types import EnsembleConfig

    return EnsembleConfig(
        ensemble_size=ensemble_size,
        # no MLIP features: tests of them build their own (tests/surrogate/test_mlip_features.py)
        featurizer=FeaturizerConfig(cutoff_ang=4.0, max_neighbors=12, mlip_features="none"),
        model=AdsMTConfig(
            hidden_dim=16,
            num_graph_layers=2,
            num_graph_heads=2,
            num_distance_basis=8,
            num_depth_basis=4,
            ads_hidden_dim=16,
            num_cross_heads=2,
            num_self_layers=1,
            num_self_heads=2,
            head_hidden_dim=16,
            dropout=0.0,
        ),
        train=TrainConfig(
            max_epochs=max_epochs, batch_size=8, learning_rate=3e-3, early_stop_patience=50
        ),
        device="cpu",
        dtype=dtype,
        split="holdout",  # the caller's split; tests of cross-fitting set it themselves
        prior_mean="none",
    )


def tiny_slabs() -> dict:
    """Three small slabs: fcc(111) Pt and Cu (2x2x3) and hcp(0001) Ru, with vacuum."""
    from ase.build import fcc111, hcp0001

    return {
        "Pt": fcc111("Pt", size=(2, 2, 3), vacuum=6.0),
        "Cu": fcc111("Cu", size=(2, 2, 3), vacuum=6.0),
        "Ru": hcp0001("Ru", size=(2, 2, 3), vacuum=6.0),
    }


def tiny_samples() -> list:
    """18 labelled pairs with a smooth made-up GMAE (eV), deterministic."""
    from alloop.surrogate.types import SurrogateSample

    shift = {"Pt": -0.8, "Cu": -0.3, "Ru": -1.2}
    out = []
    for metal, slab in tiny_slabs().items():
        for i, smi in enumerate(TINY_SMILES):
            out.append(SurrogateSample(metal, slab, smi, shift[metal] - 0.1 * i))
    return out


@pytest.fixture(scope="session")
def fitted_tiny_ensemble():  # noqa: ANN201 - (AdsMTEnsemble, FitReport)
    from alloop.surrogate.ensemble import AdsMTEnsemble

    samples = tiny_samples()
    ens = AdsMTEnsemble(tiny_config(), seed=7)
    report = ens.fit(samples[::2], samples[1::2])
    return ens, report
