"""The same store code on PostgreSQL: a real server the test session starts (`tests.pg`:
pgserver, or the server `ALLOOP_TEST_PG_URL` names)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from alloop.store import CampaignStore, JobState
from alloop.store.errors import CampaignExistsError, CampaignLockedError, DuplicateResultError
from alloop.store.records import NewJob, NewLabel


def test_postgres_campaign_life_cycle(pg_url, tiny_surfaces, tiny_adsorbates):
    store = CampaignStore.create(
        pg_url, name="pg", config={"a": 1}, seed=1, surfaces=tiny_surfaces,
        adsorbates=tiny_adsorbates,
    )  # fmt: skip
    try:
        with pytest.raises(CampaignLockedError, match="locked by alloop pid="):
            CampaignStore.open(pg_url, write=True)
        assert len(store.pairs()) == 6
        store.begin_round(0, "acquired")
        store.propose_jobs(0, [NewJob("j", "Pt(111)|CO", "mlip")])
        store.transition_job("j", JobState.SUBMITTED)
        store.transition_job("j", JobState.RUNNING)
        store.complete_job("j", NewLabel(-1.0, "ok", "mlip", {"calculator": "emt"}))
        with pytest.raises(DuplicateResultError):
            store.complete_job("j", NewLabel(-1.0, "ok", "mlip"))
        store.save_checkpoint(0, 0, b"w" * 1000, {})
        assert store.checkpoints()[0].blob == b"w" * 1000
    finally:
        store.close()
    with CampaignStore.open(pg_url, write=True) as again:
        assert [lab.gmae_ev for lab in again.labels()] == [-1.0]
        assert again.status().best == (("Pt(111)|CO", -1.0, "mlip"),)
    with pytest.raises(CampaignExistsError):
        CampaignStore.create(
            pg_url, name="pg2", config={}, seed=0, surfaces=tiny_surfaces,
            adsorbates=tiny_adsorbates,
        )  # fmt: skip
    engine = create_engine(pg_url)
    with engine.connect() as conn, pytest.raises(Exception, match="append-only"):
        conn.execute(text("DELETE FROM event"))
    engine.dispose()
