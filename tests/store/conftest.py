"""The store's contract runs on both backends: `any_store` makes campaigns on a real SQLite file
and in a real PostgreSQL database (`tests.pg`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alloop.store import CampaignStore
from alloop.store.records import NewAdsorbate, NewSurface


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tiny_surfaces: list[NewSurface],
    tiny_adsorbates: list[NewAdsorbate],
) -> Iterator[Callable[..., CampaignStore]]:
    """Like `make_store`, on each backend; reopen a store with ``store.target.url``."""
    opened: list[CampaignStore] = []

    def factory(name: str = "t", **kw: object) -> CampaignStore:
        if request.param == "sqlite":
            target = str(tmp_path / f"{name}.alloop")
        else:
            target = request.getfixturevalue("pg_server").fresh_database()
        store = CampaignStore.create(
            target,
            name=name,
            config=kw.pop("config", {"k": 1}),  # type: ignore[arg-type]
            seed=int(kw.pop("seed", 7)),  # type: ignore[call-overload]
            surfaces=tiny_surfaces,
            adsorbates=tiny_adsorbates,
        )
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
