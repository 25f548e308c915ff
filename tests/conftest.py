"""Shared fixtures: tiny hand-made structures and campaign stores on real SQLite files."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ase.build import fcc111, molecule

from alloop.oracles.fg_data import fg_data_root
from alloop.store import CampaignStore
from alloop.store.records import NewAdsorbate, NewSurface
from tests.pg import PgServer, start_pg_server

REPO = Path(__file__).resolve().parents[1]
#: the FG data of this run: $ALLOOP_FG_ROOT, the full set beside the checkout, or the compact
#: copy alloop ships (one rule: alloop.oracles.fg_data.fg_data_root)
FG_ROOT = fg_data_root()


def file_digest(path: Path) -> str | None:
    """sha256 of a file's bytes, or None when it does not exist."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def replay_config(path: Path, rounds: int = 2, root: Path | None = FG_ROOT) -> Path:
    """A small replay campaign config (FG Pt and Au, 8 molecules, LCB, ``rounds`` rounds) at
    ``path``; ``root=None`` leaves the FG root to `fg_data_root`."""
    where = f"root: {root}, " if root is not None else ""
    path.write_text(
        "campaign: {name: standing, seed: 5}\n"
        f"pool:\n  fg: {{{where}metals: [Pt, Au], max_molecules: 8}}\n"
        "oracle: {kind: replay}\n"
        "surrogate: {ensemble_size: 2, hidden_dim: 16, num_graph_layers: 1, max_epochs: 4,\n"
        "            early_stop_patience: 2, batch_size: 16}\n"
        "acquisition: {name: lcb, batch_size: 3, initial_batch_size: 4}\n"
        f"budget: {{max_rounds: {rounds}, max_cost: 5000}}\n"
    )
    return path


@pytest.fixture(scope="session", autouse=True)
def _feature_cache_of_this_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """MLIP feature vectors kept in this run's own folder (shared by its subprocesses), never in
    the user's cache, so every run of the suite computes them at least once."""
    from alloop.surrogate.mlip_features import CACHE_ENV

    folder = tmp_path_factory.mktemp("mlip-features")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(scope="session")
def fg_root() -> Path:
    return FG_ROOT


@pytest.fixture
def tiny_surfaces() -> list[NewSurface]:
    return [
        NewSurface("Pt(111)", fcc111("Pt", (2, 2, 3), vacuum=6.0), "ase.build", "1,1,1"),
        NewSurface("Cu(111)", fcc111("Cu", (2, 2, 3), vacuum=6.0), "ase.build", "1,1,1"),
    ]


@pytest.fixture
def tiny_adsorbates() -> list[NewAdsorbate]:
    return [
        NewAdsorbate("CO", "CO", "[C-]#[O+]", molecule("CO"), (0,)),
        NewAdsorbate("H2O", "H2O", "O", molecule("H2O"), (0,)),
        NewAdsorbate("ethanol", "ethanol", "CCO", None, ()),
    ]


@pytest.fixture
def make_store(
    tmp_path: Path, tiny_surfaces: list[NewSurface], tiny_adsorbates: list[NewAdsorbate]
) -> Iterator[Callable[..., CampaignStore]]:
    opened: list[CampaignStore] = []

    def factory(name: str = "t", path: Path | None = None, **kw: object) -> CampaignStore:
        store = CampaignStore.create(
            path or tmp_path / f"{name}.alloop",
            name=name,
            config=kw.pop("config", {"k": 1}),  # type: ignore[arg-type]
            seed=int(kw.pop("seed", 7)),  # type: ignore[call-overload]
            surfaces=kw.pop("surfaces", tiny_surfaces),  # type: ignore[arg-type]
            adsorbates=kw.pop("adsorbates", tiny_adsorbates),  # type: ignore[arg-type]
        )
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server for the session (`tests.pg`); skips where none can start."""
    yield from start_pg_server()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A SQLAlchemy URL of an empty PostgreSQL database."""
    return pg_server.fresh_database()
