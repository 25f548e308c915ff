"""What a campaign tells its user about fidelities and decisions (issue 20, items 4 and 5):
`show` lists every acquisition and escalation of a pair with its reason code, value, cost and
round and marks the label that counts; on a hand-made campaign (real SQLite file) and on a real
multi-fidelity replay campaign (MLIP labels from the shipped table, DFT from the FG table)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from alloop.loop.face.cli import app
from alloop.loop.face.decisions import ACQUIRED, ESCALATED, JOB_ONLY, pair_decisions
from alloop.store import CampaignStore
from alloop.store.enums import JobState
from alloop.store.records import NewAcquisition, NewJob, NewLabel
from tests.conftest import FG_ROOT

runner = CliRunner()
WIDE = {"COLUMNS": "250"}


def cells(line: str) -> list[str]:
    """A table row of the `show` panel, cell by cell (the panel's border is cell 0)."""
    return [c.strip() for c in line.split("│")]


def done(store: CampaignStore, job: NewJob, label: NewLabel) -> None:
    for state in (JobState.SUBMITTED, JobState.RUNNING):
        store.transition_job(job.key, state)
    store.complete_job(job.key, label)


@pytest.fixture
def decided(make_store) -> tuple[CampaignStore, str]:
    """A pair acquired (round 0, a row written before facts were stored: no cost, no
    fidelity), escalated by the rules policy in round 0 (its DFT label counts), escalated
    again in round 1 (job still proposed), and a job nobody decided."""
    store = make_store(config={"cost": {"mlip": 2, "dft": 50}})
    pair = store.pairs()[0].key
    store.begin_round(0, "closed")
    store.record_acquisitions(0, [NewAcquisition(pair, 0, 0.7, -0.4, 0.2, "lcb", "lcb=-0.700")])
    mlip = NewJob.for_round(0, pair, "mlip")
    dft = NewJob.for_round(0, pair, "dft_relax")
    store.propose_jobs(0, [mlip])
    store.propose_jobs(
        0,
        [dft],
        [
            (
                "escalated",
                {
                    "pair": pair,
                    "reason": "STRONG_BINDER",
                    "detail": "label ranks 1 of the 1 strongest",
                },
            )
        ],
    )
    done(store, mlip, NewLabel(-0.5, "ok", "mlip"))
    done(store, dft, NewLabel(-0.3, "ok", "dft_relax"))
    store.begin_round(1, "closed")
    again = NewJob.for_round(1, pair, "dft_single_point")
    store.propose_jobs(
        1,
        [again],
        [
            (
                "escalated",
                {"pair": pair, "reason": "ORACLE_DISAGREEMENT", "detail": "spread 0.6 > 0.3 eV"},
            )
        ],
    )
    store.propose_jobs(1, [NewJob("by-hand", pair, "mlip")])
    return store, pair


def test_decisions_list_each_acquisition_and_escalation_with_what_it_bought(decided):
    store, pair = decided
    found = pair_decisions(store, pair)
    got = [(d.round_index, d.action, d.code, d.fidelity, d.value, d.cost) for d in found.decisions]
    assert got == [
        (0, ACQUIRED, "lcb", "mlip", None, 2.0),  # cost priced from the job: none was stored
        (0, ESCALATED, "STRONG_BINDER", "dft_relax", None, 50.0),
        (1, ESCALATED, "ORACLE_DISAGREEMENT", "dft_single_point", None, 50.0),
        (1, JOB_ONLY, "—", "mlip", None, 2.0),
    ]
    bought = [d.label.gmae_ev if d.label else None for d in found.decisions]
    assert bought == [-0.5, -0.3, None, None]
    # the DFT label counts, not the newer proposal nor the MLIP label
    assert found.counted is not None and found.counted.fidelity == "dft_relax"
    assert found.decisions[1].label == found.counted


def test_show_lists_decisions_and_marks_the_label_that_counts(decided):
    store, pair = decided
    path = store.target.display
    store.close()
    shown = runner.invoke(app, ["show", path, pair], env=WIDE)
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert "decisions (acquisitions and escalations)" in out
    rows = [cells(line) for line in out.splitlines() if line.count("│") >= 8]
    decisions = [r[1:8] for r in rows if r[2] in (ACQUIRED, ESCALATED, JOB_ONLY)]
    assert decisions == [
        ["0", ACQUIRED, "lcb", "mlip", "—", "2", "-0.500 mlip"],
        ["0", ESCALATED, "STRONG_BINDER", "dft_relax", "—", "50", "-0.300 dft_relax ✓ counts"],
        ["1", ESCALATED, "ORACLE_DISAGREEMENT", "dft_single_point", "—", "50", "proposed"],
        ["1", JOB_ONLY, "—", "mlip", "—", "2", "proposed"],
    ]
    assert "label ranks 1 of the 1 strongest" in out
    assert "provenance of the dft_relax label (counts)" in out


# ---------------------------------------------------------------------- a real MF campaign
@pytest.fixture(scope="module")
def mf_campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mf_output")
    cfg = d / "mf.yaml"
    cfg.write_text(
        "campaign: {name: mf, seed: 3}\n"
        f"pool:\n  fg: {{root: {FG_ROOT}, metals: [Pt, Ru, Cu], max_molecules: 8}}\n"
        "oracle: {kind: mf_replay}\n"
        "surrogate: {ensemble_size: 2, hidden_dim: 16, num_graph_layers: 1, max_epochs: 4,\n"
        "            early_stop_patience: 2, batch_size: 16}\n"
        "acquisition: {batch_size: 3, initial_batch_size: 5}\n"
        "escalation: {enabled: true, policy: cost_aware, mode: relax, per_round: 2}\n"
        "cost: {mlip: 1, dft: 10}\n"
        "budget: {max_rounds: 3}\nbackup: {every_rounds: 0}\n"
    )
    target = d / "mf.alloop"
    result = runner.invoke(app, ["run", str(cfg), "--campaign", str(target), "-q"])
    assert result.exit_code == 0, result.output
    return target


def test_show_names_the_cold_start_and_value_per_cost_escalations(mf_campaign):
    with CampaignStore.open(mf_campaign) as store:
        events = [e for e in store.events() if e.kind == "escalated"]
        cold = next(e for e in events if e.payload["reason"] == "COLD_START")
        paid = next(e for e in events if e.payload["reason"] == "VALUE_PER_COST")
        decided = pair_decisions(store, paid.payload["pair"])
    (esc,) = [d for d in decided.decisions if d.action == ESCALATED]
    assert (esc.round_index, esc.code, esc.cost) == (paid.round_index, "VALUE_PER_COST", 10.0)
    assert esc.value == pytest.approx(paid.payload["value"])
    assert esc.label is not None and esc.label == decided.counted
    shown = runner.invoke(app, ["show", str(mf_campaign), cold.payload["pair"]], env=WIDE)
    assert shown.exit_code == 0, shown.output
    row = cells(next(line for line in shown.output.splitlines() if "COLD_START" in line))
    assert row[1:4] == [str(cold.round_index), ESCALATED, "COLD_START"]
    assert row[6] == "10" and row[7].endswith("dft_relax ✓ counts") and "cold start" in row[8]
