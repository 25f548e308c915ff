"""Step 5 of a round: DFT escalation through the campaign engine.

A small campaign labels pairs with the MLIP oracle on real EMT; the DFT oracle is a substitute
(MLIP minimum + 0.1 eV, fidelity ``dft_single_point``) so the bookkeeping around it is tested
fast. One test (marked ``dft``) runs a real GPAW escalation through the engine.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from ase.build import fcc111
from ase.io import write
from typer.testing import CliRunner

from alloop.loop.agent.engine import CampaignEngine
from alloop.loop.agent.escalation_plan import plan_round
from alloop.loop.agent.training import training_samples
from alloop.loop.bridges.dft import EscalatingOracle
from alloop.loop.bridges.surrogate import PoolView
from alloop.loop.config import EscalationSection, load_config
from alloop.loop.face.cli import app
from alloop.loop.face.commands import create_campaign
from alloop.oracles.dft import DFTOracle
from alloop.oracles.dft_settings import DFTOracleSettings
from alloop.oracles.types import OraclePair, OracleResult
from alloop.store import CampaignStore, JobState
from alloop.store.records import NewAcquisition, NewJob, NewLabel

DFT_SHIFT_EV = 0.1

# 2 surfaces x 4 adsorbates; 3 + 2 + 2 pairs over three rounds. Escalation: at most 2 per
# round, 3 in all: round 0 is capped by per_round (3 candidates), round 1 by the budget.
CONFIG = """\
campaign: {{name: esc, seed: 3}}
pool:
  surfaces: [{{bulk: Cu, min_ab_ang: 4.0}}, {{bulk: Pt, min_ab_ang: 4.0}}]
  adsorbates: [{{name: '*H'}}, {{name: '*O'}}, {{name: '*OH'}}, {{name: '*N'}}]
oracle: {{kind: mlip, calculator: emt, max_placements: 2, patience: 1, fmax_ev_per_ang: 0.1,
         max_steps: 60}}
surrogate: {{ensemble_size: 2, hidden_dim: 16, num_graph_layers: 1, max_epochs: 4,
            early_stop_patience: 2, batch_size: 16}}
acquisition: {{name: lcb, batch_size: 2, initial_batch_size: 3}}
escalation: {{enabled: true, dft_budget: {budget}, per_round: 2}}
budget: {{max_rounds: 3}}
"""


class Killed(BaseException):
    """Stands for a kill: not an `Exception`, so no oracle guard turns it into a result."""


class SubstituteDFT:
    """Deterministic stand-in for `DFTOracle.escalate`: the MLIP minimum's energy + 0.1 eV."""

    fidelity = "dft_single_point"

    def __init__(self, kill_on_call: int | None = None) -> None:
        self.kill_on_call = kill_on_call
        self.calls: list[str] = []

    def escalate(self, pair: OraclePair, start: OracleResult) -> OracleResult:
        self.calls.append(pair.key)
        if len(self.calls) == self.kill_on_call:
            raise Killed(pair.key)
        # the start is the stored MLIP label, rebuilt: structure out of provenance
        assert start.fidelity == "mlip" and start.status == "ok"
        assert start.provenance["calculator"] == "emt"
        assert "best_structure" not in start.provenance
        assert start.best_structure is not None and (start.best_structure.get_tags() == 2).any()
        assert start.gmae_ev is not None
        return OracleResult(
            pair.key, start.gmae_ev + DFT_SHIFT_EV, "ok", "dft_single_point",
            {"calculator": "substitute", "start_gmae_ev": start.gmae_ev}, start.best_structure,
        )  # fmt: skip


def make_config(directory: Path, budget: int = 3) -> Path:
    path = directory / "esc.yaml"
    path.write_text(CONFIG.format(budget=budget))
    return path


def run_campaign(config: Path, campaign: Path, dft: SubstituteDFT) -> None:
    cfg = load_config(config)
    store = (
        CampaignStore.open(campaign, write=True)
        if campaign.exists()
        else create_campaign(cfg, str(campaign))
    )
    with store:
        CampaignEngine(store, cfg, dft_oracle=dft).run()


def canonical_state(path: Path) -> dict[str, Any]:
    """What the campaign decided, without timings, attempts or timestamps."""
    with CampaignStore.open(path) as store:
        return {
            "rounds": [
                (r.index, r.state, {k: v for k, v in r.metrics.items() if k != "timing"})
                for r in store.rounds()
            ],
            "acquisitions": [
                (a.round_index, a.rank, a.pair_key, a.mu_ev, a.sigma_ev)
                for a in store.acquisitions()
            ],
            "labels": sorted(
                (lab.pair_key, lab.job_key, lab.gmae_ev, lab.status, lab.fidelity)
                for lab in store.labels()
            ),
            "jobs": [(j.key, j.kind, j.state) for j in store.jobs()],
            "escalated": [
                (e.round_index, e.payload) for e in store.events() if e.kind == "escalated"
            ],
        }


def assert_same(got: Any, want: Any, path: str = "state") -> None:
    """Equal structure and values; floats to 1e-5 relative (training with several CPU threads
    is not bit-reproducible across runs in one process)."""
    if isinstance(want, float) and isinstance(got, float):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-8), path
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), path
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list | tuple):
        assert type(got) is type(want) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    else:
        assert got == want, path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, SubstituteDFT]:
    """An uninterrupted three-round campaign: (config, campaign, the DFT substitute)."""
    root = tmp_path_factory.mktemp("esc")
    config, campaign, dft = make_config(root), root / "ref.alloop", SubstituteDFT()
    run_campaign(config, campaign, dft)
    return config, campaign, dft


def test_escalations_follow_the_policy_and_budgets(reference):
    _, campaign, dft = reference
    state = canonical_state(campaign)
    dft_jobs = [j for j in state["jobs"] if j[1] == "dft_single_point"]
    # per_round=2 caps round 0 (three strong binders), the budget of 3 round 1, round 2 gets 0
    per_round = [sum(j[0].startswith(f"r{i}:") for j in dft_jobs) for i in range(3)]
    assert per_round == [2, 1, 0]
    metrics = [m for _, _, m in state["rounds"]]
    assert [(m["escalation_enabled"], m["n_escalated"], m["dft_spent"]) for m in metrics] == [
        (True, 2, 2), (True, 1, 3), (True, 0, 3),
    ]  # fmt: skip
    assert all(j[2] == JobState.DONE.value for j in dft_jobs)
    # one event per job, in decision order, with the pair, the reason code and a detail
    events = state["escalated"]
    assert [(r, p["pair"]) for r, p in events] == [
        (int(k.split(":")[0][1:]), k.split(":", 2)[2]) for k, _, _ in dft_jobs
    ]
    assert all(set(p) == {"pair", "reason", "detail"} for _, p in events)
    assert [p["reason"] for _, p in events] == ["STRONG_BINDER"] * 3
    assert "ranks 1 of the 3 strongest" in events[0][1]["detail"]
    # round 0 escalates its two strongest MLIP labels, strongest first
    round0 = {p for r, a, p, _, _ in state["acquisitions"] if r == 0}
    mlip = {lab[0]: lab[2] for lab in state["labels"] if lab[4] == "mlip"}
    assert [p["pair"] for r, p in events if r == 0] == sorted(round0, key=mlip.__getitem__)[:2]
    # no pair twice, and the substitute ran once per job
    assert len({p["pair"] for _, p in events}) == 3
    assert dft.calls == [p["pair"] for _, p in events]


def test_both_labels_kept_and_training_uses_dft(reference):
    _, campaign, _ = reference
    with CampaignStore.open(campaign) as store:
        escalated = [j.pair_key for j in store.jobs() if j.kind == "dft_single_point"]
        for pair in escalated:
            labels = store.labels(pair)
            assert [lab.fidelity for lab in labels] == ["mlip", "dft_single_point"]
            mlip, dft = labels
            assert dft.gmae_ev == pytest.approx(mlip.gmae_ev + DFT_SHIFT_EV)
            assert (dft.job_key or "").endswith(f":dft_single_point:{pair}")
            assert "best_structure" in dft.provenance
        samples = {p.key: s.gmae_ev for p, s in training_samples(store, PoolView.load(store))}
        for lab in store.label_summaries():
            want = lab.fidelity == ("dft_single_point" if lab.pair_key in escalated else "mlip")
            assert (samples.get(lab.pair_key) == lab.gmae_ev) is want
        # the round's best label is the training label: the DFT one where there is one
        best = min(samples.values())
        assert store.rounds()[-1].metrics["best_gmae_ev"] == pytest.approx(best)
    # `alloop show` lists both labels of an escalated pair
    shown = CliRunner().invoke(app, ["show", str(campaign), escalated[0]], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "dft_single_point" in shown.output and "mlip" in shown.output


def test_kill_between_jobs_proposed_and_done_resumes_identically(reference, tmp_path):
    config, ref_campaign, _ = reference
    campaign = tmp_path / "killed.alloop"
    with pytest.raises(Killed):
        run_campaign(config, campaign, SubstituteDFT(kill_on_call=1))
    with CampaignStore.open(campaign) as store:
        assert store.rounds()[-1].state == "labelled"
        jobs = [(j.key, j.state) for j in store.jobs() if j.kind == "dft_single_point"]
        assert [s for _, s in jobs] == ["RUNNING", "SUBMITTED"]  # planned, committed, running
        assert len([e for e in store.events() if e.kind == "escalated"]) == 2
        assert not [lab for lab in store.label_summaries() if lab.fidelity != "mlip"]
    resumed = SubstituteDFT()
    run_campaign(config, campaign, resumed)
    assert_same(canonical_state(campaign), canonical_state(ref_campaign))
    assert len(resumed.calls) == 3  # the two round-0 jobs (one re-queued), then round 1's
    with CampaignStore.open(campaign) as store:
        attempts = {j.key: j.attempts for j in store.jobs() if j.kind == "dft_single_point"}
    assert attempts[jobs[0][0]] == 2 and attempts[jobs[1][0]] == 1


def test_plan_round_reads_window_disagreement_and_spent_budget(make_store):
    store = make_store()
    store.begin_round(0, "started")
    acq = [  # (pair, μ, σ): Pt|CO in a window with small σ, Cu|H2O confident but outside
        NewAcquisition("Pt(111)|CO", 0, None, -0.5, 0.05, "lcb"),
        NewAcquisition("Pt(111)|H2O", 1, None, -0.2, 0.50, "lcb"),
        NewAcquisition("Cu(111)|H2O", 2, None, 1.50, 0.01, "lcb"),
        NewAcquisition("Cu(111)|CO", 3, None, 0.10, 0.90, "lcb"),
        NewAcquisition("Pt(111)|ethanol", 4, None, 0.00, 0.10, "lcb"),
    ]
    jobs = [NewJob(f"r0:mlip:{a.pair_key}", a.pair_key, "mlip") for a in acq]
    store.record_batch(0, acq, jobs, "acquired")
    labels = {  # (value, status, committee disagreement)
        "Pt(111)|CO": (-0.4, "ok", None),
        "Pt(111)|H2O": (0.3, "ok", 0.8),
        "Cu(111)|H2O": (1.2, "ok", None),
        "Cu(111)|CO": (-2.0, "ok", None),
        "Pt(111)|ethanol": (None, "anomalous", None),
    }
    for job in jobs:
        value, status, spread = labels[job.pair_key]
        store.transition_job(job.key, JobState.SUBMITTED)
        store.transition_job(job.key, JobState.RUNNING)
        store.complete_job(job.key, NewLabel(value, status, "mlip", {"uncertainty_ev": spread}))
    section = EscalationSection(
        enabled=True, dft_budget=10, per_round=10, target_window_ev=(-1.0, 0.0), strong_binder_k=1
    )
    pair_keys = {p.id: p.key for p in store.pairs()}
    planned, events = plan_round(store, section, 0, pair_keys)
    assert [(e[1]["pair"], e[1]["reason"]) for e in events] == [
        ("Pt(111)|CO", "IN_WINDOW_CONFIDENT"),
        ("Cu(111)|CO", "STRONG_BINDER"),
        ("Pt(111)|H2O", "ORACLE_DISAGREEMENT"),
    ]  # the anomalous label has no structure to start DFT from: not a candidate
    assert [j.key for j in planned] == [f"r0:dft_single_point:{e[1]['pair']}" for e in events]
    # a DFT job of any state spends budget and marks its pair escalated
    store.propose_jobs(0, [NewJob("r0:dft_relax:Cu(111)|CO", "Cu(111)|CO", "dft_relax")])
    tight = section.model_copy(update={"dft_budget": 3, "mode": "relax"})
    planned, events = plan_round(store, tight, 0, pair_keys)
    assert [j.key for j in planned] == ["r0:dft_relax:Pt(111)|CO", "r0:dft_relax:Pt(111)|H2O"]


def test_escalating_oracle_pickles_for_process_executors(tmp_path):
    dft = DFTOracle(DFTOracleSettings(cache_dir=str(tmp_path)))
    oracle = pickle.loads(pickle.dumps(EscalatingOracle(dft, {})))
    assert oracle.fidelity == "dft_single_point"
    assert oracle.dft.settings == dft.settings


@pytest.mark.slow
@pytest.mark.dft
def test_real_gpaw_escalation_through_the_engine(tmp_path):
    """H on a 1x1 Al(111) slab of two layers: an EMT label, then GPAW at its minimum."""
    write(tmp_path / "al.traj", fcc111("Al", size=(1, 1, 2), vacuum=4.0, a=4.05))
    (tmp_path / "gpaw.yaml").write_text(
        "campaign: {name: gpaw}\n"
        "pool: {surfaces: [{file: al.traj, key: Al}], adsorbates: [{name: '*H'}]}\n"
        "oracle: {kind: mlip, calculator: emt, reference: atomic, max_placements: 2,"
        " patience: 1}\n"
        "acquisition: {initial_batch_size: 1}\n"
        "escalation: {enabled: true, dft_budget: 1, dft: {cutoff_ev: 250, kpts: [4, 4, 1],"
        " gas_box_ang: 6.0, reference_scheme: atomic, cache_dir: dft-cache}}\n"
        "budget: {max_rounds: 1}\n"
    )
    cfg = load_config(tmp_path / "gpaw.yaml")
    with create_campaign(cfg, str(tmp_path / "gpaw.alloop")) as store:
        CampaignEngine(store, cfg).run()
        mlip, dft = store.labels("Al|*H")
        events = [e.payload for e in store.events() if e.kind == "escalated"]
    assert events == [{"pair": "Al|*H", "reason": "STRONG_BINDER",
                       "detail": events[0]["detail"]}]  # fmt: skip
    assert mlip.fidelity == "mlip" and mlip.status == "ok"
    assert dft.fidelity == "dft_single_point" and dft.status == "ok", dft.provenance.get("error")
    prov = dft.provenance
    assert prov["calculator"] == "gpaw-pbe" and prov["dft_settings"]["cutoff_ev"] == 250
    assert prov["start"] == {**prov["start"], "calculator": "emt", "gmae_ev": mlip.gmae_ev}
    ref = prov["reference_energies_ev"]
    e_total = prov["placements"][0]["e_total_ev"]
    assert e_total - ref["slab"] - ref["adsorbate"] == pytest.approx(dft.gmae_ev)
    assert -1.5 < (dft.gmae_ev or 0.0) < 2.0  # H on 1 ML Al(111) against 1/2 H2: sane range
    assert (tmp_path / "dft-cache").is_dir()  # relative to the config file
