"""Every table written through the store reads back equal, on SQLite and PostgreSQL
(`any_store`)."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.store import CampaignStore, JobState
from alloop.store.errors import (
    CampaignExistsError,
    DuplicateResultError,
    JobStateError,
    StoreError,
    UnknownRecordError,
)
from alloop.store.records import NewAcquisition, NewJob, NewLabel


def test_campaign_and_pool_round_trip(any_store, tiny_surfaces):
    store = any_store(config={"acquisition": {"name": "lcb"}}, seed=11)
    camp = store.campaign()
    assert camp.name == "t" and camp.seed == 11
    assert camp.config == {"acquisition": {"name": "lcb"}}
    assert camp.created_at.tzinfo is not None

    surfaces = store.surfaces()
    assert [s.key for s in surfaces] == ["Pt(111)", "Cu(111)"]
    assert surfaces[0].composition == "Pt12" and surfaces[0].miller == "1,1,1"
    slab = store.surface_atoms("Pt(111)")
    np.testing.assert_allclose(slab.positions, tiny_surfaces[0].atoms.positions, atol=1e-10)
    np.testing.assert_allclose(slab.cell, tiny_surfaces[0].atoms.cell, atol=1e-10)
    assert list(slab.get_tags()) == list(tiny_surfaces[0].atoms.get_tags())

    ads = {a.key: a for a in store.adsorbates()}
    assert ads["CO"].smiles == "[C-]#[O+]" and ads["CO"].binding_atoms == (0,)
    assert store.adsorbate_atoms("ethanol") is None
    assert store.adsorbate_atoms("H2O").get_chemical_formula() == "H2O"

    pairs = store.pairs()
    assert len(pairs) == 6
    assert store.pair("Pt(111)|CO").surface_key == "Pt(111)"
    with pytest.raises(UnknownRecordError, match="no pair 'Pt\\(111\\)\\|XX'"):
        store.pair("Pt(111)|XX")


def test_rounds_acquisitions_checkpoints_events(any_store):
    store = any_store()
    store.begin_round(0, "training")
    rnd = store.set_round_state(0, "scored", metrics={"val_mae_ev": 0.2})
    assert rnd.state == "scored" and rnd.metrics == {"val_mae_ev": 0.2}
    rnd = store.set_round_state(0, "closed", metrics={"n": 3}, finished=True)
    assert rnd.metrics == {"val_mae_ev": 0.2, "n": 3} and rnd.finished_at is not None
    with pytest.raises(StoreError, match="round 0 exists already"):
        store.begin_round(0, "training")

    rows = [
        NewAcquisition("Pt(111)|CO", 0, 1.5, -1.2, 0.3, "lcb", "lcb=-1.5"),
        NewAcquisition("Cu(111)|H2O", 1, 0.5, -0.2, None, "lcb", ""),
    ]
    store.record_acquisitions(0, rows)
    got = store.acquisitions()
    assert [(a.pair_key, a.rank, a.score, a.mu_ev, a.sigma_ev) for a in got] == [
        ("Pt(111)|CO", 0, 1.5, -1.2, 0.3),
        ("Cu(111)|H2O", 1, 0.5, -0.2, None),
    ]
    assert [a.pair_key for a in store.acquisitions(surface="Cu(111)")] == ["Cu(111)|H2O"]
    assert store.acquisitions(adsorbate="ethanol") == []
    with pytest.raises(StoreError, match="repeat a pair or a rank"):
        store.record_acquisitions(0, [NewAcquisition("Pt(111)|ethanol", 0, 1, 0, 0, "lcb")])

    digest = store.save_checkpoint(0, 0, b"\x00weights", {"k": 5})
    store.save_checkpoint(0, 1, b"\x01weights", {"k": 5})
    cps = store.checkpoints()
    assert [(c.member, c.blob, c.round_index) for c in cps] == [
        (0, b"\x00weights", 0),
        (1, b"\x01weights", 0),
    ]
    assert cps[0].sha256 == digest
    with pytest.raises(StoreError, match="already has a checkpoint for member 0"):
        store.save_checkpoint(0, 0, b"x", {})

    store.log_event("note", {"x": [1, 2]}, round_index=0)
    events = store.events()
    assert events[0].kind == "campaign_created"
    assert events[-1].kind == "note" and events[-1].payload == {"x": [1, 2]}
    assert [e.id for e in store.events(after_id=events[-2].id)] == [events[-1].id]


def test_jobs_and_labels_round_trip(any_store):
    store = any_store()
    store.begin_round(0, "acquired")
    (job,) = store.propose_jobs(0, [NewJob("r0:Pt(111)|CO:mlip", "Pt(111)|CO", "mlip")])
    assert job.state == "PROPOSED" and job.attempts == 0 and job.round_index == 0
    # proposing the same key again is idempotent
    (again,) = store.propose_jobs(0, [NewJob("r0:Pt(111)|CO:mlip", "Pt(111)|CO", "mlip")])
    assert again.id == job.id
    store.transition_job(job.key, JobState.SUBMITTED)
    store.transition_job(job.key, JobState.RUNNING)
    provenance = {"calculator": "emt", "placements_tried": 3, "anomaly_flags": []}
    label = store.complete_job(job.key, NewLabel(-1.25, "ok", "mlip", provenance))
    assert (label.gmae_ev, label.status, label.fidelity, label.job_key) == (
        -1.25,
        "ok",
        "mlip",
        job.key,
    )
    assert label.provenance == provenance
    (stored,) = store.jobs()
    assert stored.state == "DONE" and stored.attempts == 1

    imported = store.add_label("Cu(111)|CO", NewLabel(None, "anomalous", "replay", {"why": "x"}))
    assert imported.job_key is None
    assert [lab.pair_key for lab in store.labels()] == ["Pt(111)|CO", "Cu(111)|CO"]
    assert store.labels("Cu(111)|CO")[0].status == "anomalous"

    status = store.status()
    assert status.n_labelled_pairs == 1
    assert status.labels_by_fidelity_status == {("mlip", "ok"): 1, ("replay", "anomalous"): 1}
    assert status.best == (("Pt(111)|CO", -1.25, "mlip"),)
    assert status.jobs_by_state == {"DONE": 1}


def test_label_summaries_read_binding_atoms_from_provenance_only_when_asked(any_store):
    store = any_store()
    store.add_label("Pt(111)|CO", NewLabel(-1.0, "ok", "mlip", {"binding_surface_atoms": [2, 7]}))
    store.add_label("Cu(111)|CO", NewLabel(-0.4, "ok", "replay", {"why": "no site"}))
    store.add_label(
        "Pt(111)|H2O", NewLabel(None, "failed", "mlip", {"binding_surface_atoms": None})
    )
    # what a hand-edited file may hold instead of indices: unknown, never an error
    for bad in ([1, -2], ["3"], {"a": 1}, [True], "0"):
        store.add_label("Cu(111)|H2O", NewLabel(-0.2, "ok", "mlip", {"binding_surface_atoms": bad}))
    plain = store.label_summaries()
    assert {lab.binding_atoms for lab in plain} == {None}
    sites = store.label_summaries(sites=True)
    assert [lab.binding_atoms for lab in sites] == [(2, 7), None, None] + [None] * 5
    # everything else is the same summary
    assert [lab.__class__(**{**vars(lab), "binding_atoms": None}) for lab in sites] == plain


def test_jobs_proposed_with_their_events_in_one_transaction(any_store):
    store = any_store()
    store.begin_round(0, "labelled")
    spec = NewJob("r0:dft_single_point:Pt(111)|CO", "Pt(111)|CO", "dft_single_point")
    event = ("escalated", {"pair": "Pt(111)|CO", "reason": "STRONG_BINDER", "detail": "d"})
    (job,) = store.propose_jobs(0, [spec], [event])
    assert job.kind == "dft_single_point" and job.state == "PROPOSED"
    assert [(e.kind, e.round_index, e.payload) for e in store.events()[-1:]] == [
        ("escalated", 0, event[1])
    ]
    n_events = len(store.events())
    bad = NewJob("r0:dft_single_point:Pt(111)|XX", "Pt(111)|XX", "dft_single_point")
    with pytest.raises(UnknownRecordError, match="unknown pair 'Pt\\(111\\)\\|XX'"):
        store.propose_jobs(0, [bad], [event])
    assert len(store.events()) == n_events and len(store.jobs()) == 1  # neither half landed


def test_a_pass_is_recorded_all_or_none(any_store):
    store = any_store()
    store.begin_round(0, "acquired")
    keys = [f"r0:{p}:mlip" for p in ("Pt(111)|CO", "Pt(111)|H2O", "Cu(111)|CO", "Cu(111)|H2O")]
    store.propose_jobs(0, [NewJob(k, k.split(":")[1], "mlip") for k in keys])
    store.transition_jobs(keys, JobState.SUBMITTED)
    store.record_pass(starting=keys[:3])
    assert [(j.state, j.attempts) for j in store.jobs()] == [("RUNNING", 1)] * 3 + [
        ("SUBMITTED", 1)
    ]
    store.complete_job(keys[0], NewLabel(-1.0, "ok", "mlip"))
    # a pass holding a job that has its result already: refused whole, nothing of it lands
    with pytest.raises(DuplicateResultError):
        store.record_pass(
            [keys[3]],
            [(keys[1], NewLabel(-0.3, "ok", "mlip")), (keys[0], NewLabel(-2.0, "ok", "mlip"))],
            [(keys[2], "worker_died: gone")],
        )
    assert [j.state for j in store.jobs()] == ["DONE", "RUNNING", "RUNNING", "SUBMITTED"]
    assert len(store.labels()) == 1
    store.record_pass(
        [keys[3]], [(keys[1], NewLabel(-0.3, "ok", "mlip"))], [(keys[2], "worker_died: x")]
    )
    assert [(j.state, j.error) for j in store.jobs()] == [
        ("DONE", None), ("DONE", None), ("FAILED", "worker_died: x"), ("RUNNING", None)
    ]  # fmt: skip
    assert sorted(lab.gmae_ev for lab in store.labels()) == [-1.0, -0.3]
    # an illegal transition anywhere in the list: none of the list moves
    with pytest.raises(JobStateError):
        store.transition_jobs([keys[2], keys[0]], JobState.SUBMITTED)
    assert [j.state for j in store.jobs()] == ["DONE", "DONE", "FAILED", "RUNNING"]


def test_reopen_reads_what_was_written(any_store):
    store = any_store()
    store.begin_round(0, "closed")
    store.add_label("Pt(111)|CO", NewLabel(-0.5, "ok", "replay"))
    store.close()
    with CampaignStore.open(store.target.url) as ro:
        assert ro.labels()[0].gmae_ev == -0.5
        assert ro.rounds()[0].state == "closed"


def test_create_refuses_existing_file_and_leaves_it(tmp_path, make_store):
    path = tmp_path / "x.alloop"
    path.write_text("precious")
    with pytest.raises(CampaignExistsError, match="exists already"):
        make_store(path=path)
    assert path.read_text() == "precious"


def test_failed_create_leaves_no_file(tmp_path, tiny_surfaces, tiny_adsorbates):
    path = tmp_path / "bad.alloop"
    dup = [tiny_surfaces[0], tiny_surfaces[0]]
    with pytest.raises(StoreError, match="repeats a surface"):
        CampaignStore.create(
            path, name="bad", config={}, seed=0, surfaces=dup, adsorbates=tiny_adsorbates
        )
    assert list(tmp_path.iterdir()) == []


def test_invalid_labels_refused(any_store):
    store = any_store()
    with pytest.raises(StoreError, match="status 'ok' needs a finite GMAE"):
        store.add_label("Pt(111)|CO", NewLabel(float("nan"), "ok", "mlip"))
    with pytest.raises(StoreError, match="fidelity one of"):
        store.add_label("Pt(111)|CO", NewLabel(-1.0, "ok", "guess"))
    with pytest.raises(UnknownRecordError, match="unknown pair"):
        store.add_label("nope|CO", NewLabel(-1.0, "ok", "mlip"))
    assert store.labels() == []
