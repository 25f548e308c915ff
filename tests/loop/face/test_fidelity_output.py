"""What a campaign tells its user about fidelities and decisions (issue 20, items 4 and 5), on
hand-made campaigns (real SQLite files) and a real multi-fidelity replay campaign (MLIP labels
from the shipped table, DFT from the FG table): `show` lists every acquisition and escalation of
a pair with its reason code, value, cost and round and marks the label that counts; `status`,
the dashboard and the CSV export rank at DFT level (predicted values marked); `history` shows
the label each round bought; `report` never mixes fidelities; an ASE-database export with no
structure to write says so and exits 1."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from alloop.loop.agent.labels import (
    LOW_FIDELITIES,
    TARGET_FIDELITIES,
    counted_energies,
    labels_that_count,
)
from alloop.loop.agent.mf_posterior import dft_level_posterior
from alloop.loop.bridges.surrogate import PoolView
from alloop.loop.config import EscalationSection
from alloop.loop.face import numbers
from alloop.loop.face.answers import PREDICTED, campaign_answers
from alloop.loop.face.cli import app
from alloop.loop.face.commands import status_of
from alloop.loop.face.decisions import ACQUIRED, ESCALATED, JOB_ONLY, pair_decisions
from alloop.loop.face.model_view import stored_ensemble
from alloop.loop.face.report import label_values, parity_points
from alloop.loop.face.views import status_panel
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


# ------------------------------------------------- item 4: DFT-level answers, fidelity marked
def test_answers_rank_at_dft_level_with_predictions_marked(mf_campaign):
    """DFT label where a pair has one; else the model's DFT-level μ ± σ (the latest stored
    ensemble, the MLIP label as its input), marked predicted; never a raw MLIP label."""
    with CampaignStore.open(mf_campaign) as store:
        found = campaign_answers(store)
        summaries = store.label_summaries()
        target = counted_energies(summaries, fidelities=TARGET_FIDELITIES)
        low = counted_energies(summaries, fidelities=LOW_FIDELITIES)
        pool = PoolView.load(store)
        model_round, ensemble = stored_ensemble(store)
        keys = {p.id: p.key for p in pool.pairs}
    assert found.multi_fidelity and found.model_round == model_round and found.unranked == 0
    only_low = [p for p in pool.pairs if p.id in low and p.id not in target]
    as_run = EscalationSection(enabled=True, policy="cost_aware", mode="relax", per_round=2)
    post = dft_level_posterior(ensemble, pool, only_low, target, low, escalation=as_run)
    want = {keys[i]: (v, None, "dft_relax") for i, v in target.items()}
    want |= {p.key: (float(post.mean_ev[i]), float(post.std_ev[i]), PREDICTED)
             for i, p in enumerate(only_low)}  # fmt: skip
    assert only_low and target  # both kinds are ranked
    got = {a.pair_key: (a.value_ev, a.sigma_ev, a.source) for a in found.rows}
    assert got.keys() == want.keys()
    for key, (value, sigma, source) in want.items():
        assert got[key][2] == source
        assert got[key][0] == pytest.approx(value, abs=1e-6)
        assert (got[key][1] is None) is (sigma is None)
    values = [a.value_ev for a in found.rows]
    assert values == sorted(values)
    assert {a.pair_key: a.mlip_ev for a in found.rows} == {keys[i]: low.get(i) for i in
                                                           set(target) | set(low)}  # fmt: skip


def strongest_rows(output: str) -> list[list[str]]:
    """The rows of the 'strongest binding so far (DFT level)' table of a status panel."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "strongest binding so far" in line)
    return [cells(line)[1:-1] for line in lines[start + 3 :] if line.count("│") == 6]


def test_status_and_dashboard_rank_at_dft_level_and_show_each_rows_fidelity(mf_campaign):
    with CampaignStore.open(mf_campaign) as store:
        found = campaign_answers(store)
    status = runner.invoke(app, ["status", str(mf_campaign)], env=WIDE)
    assert status.exit_code == 0, status.output
    assert "strongest binding so far (DFT level)" in status.output
    rows = strongest_rows(status.output)
    assert [r[0] for r in rows] == [a.pair_key for a in found.rows[:5]]
    for row, a in zip(rows, found.rows, strict=False):
        assert row[1] == numbers.ev(a.value_ev) and row[3] == a.source
        assert row[2] == ("" if a.sigma_ev is None else numbers.sigma(a.sigma_ev))
        assert row[4] == numbers.ev(a.mlip_ev)
    assert "mlip" not in {r[3] for r in rows}  # a raw MLIP label is never ranked
    if any(a.predicted for a in found.rows[:5]):
        assert "predicted: the model's DFT-level μ ± σ" in " ".join(status.output.split())
    frame = runner.invoke(app, ["dashboard", str(mf_campaign), "--once"], env=WIDE)
    assert frame.exit_code == 0, frame.output
    assert "strongest binding so far (DFT level)" in frame.output
    assert found.rows[0].pair_key in frame.output and found.rows[0].source in frame.output


def test_csv_export_ranks_at_dft_level(mf_campaign, tmp_path):
    result = runner.invoke(app, ["export", str(mf_campaign), "-o", str(tmp_path / "x")], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "ranking.csv" in result.output and "ranked at DFT level" in result.output
    with (tmp_path / "x" / "ranking.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with CampaignStore.open(mf_campaign) as store:
        found = campaign_answers(store)
    assert [r["pair"] for r in rows] == [a.pair_key for a in found.rows]
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    values = [float(r["gmae_ev"]) for r in rows]
    assert values == sorted(values)
    assert {r["fidelity"] for r in rows} == {"dft_relax", PREDICTED}
    for r in rows:
        assert (r["predicted"] == "true") is (r["fidelity"] == PREDICTED) is (r["sigma_ev"] != "")
        assert r["mlip_label_ev"] != ""  # every pair here was screened by MLIP first


def test_history_shows_the_label_each_round_bought(mf_campaign):
    result = runner.invoke(app, ["history", str(mf_campaign), "--format", "tsv"])
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.output), delimiter="\t"))
    with CampaignStore.open(mf_campaign) as store:
        bought = {lab.job_key: lab for lab in store.labels()}
        acqs = store.acquisitions()
        cold = {
            e.payload["pair"] for e in store.events() if e.payload.get("reason") == "COLD_START"
        }
    assert len(table) == len(acqs) and cold
    for row, a in zip(table, acqs, strict=True):
        lab = bought[f"r{a.round_index}:{a.fidelity}:{a.pair_key}"]
        assert (row["label (eV)"], row["fidelity"]) == (numbers.ev(lab.gmae_ev), lab.fidelity)
    # a round-0 pick later escalated: round 0 bought its MLIP label; its DFT label counts now
    first = [r for r in table if r["round"] == "0" and f"{r['surface']}|{r['adsorbate']}" in cold]
    assert first and {r["fidelity"] for r in first} == {"mlip"}
    assert all(r["counts now"].endswith(" dft_relax") for r in first)


def test_report_separates_fidelities(mf_campaign, tmp_path):
    with CampaignStore.open(mf_campaign) as store:
        points = parity_points(store)
        values = label_values(store)
        summaries = store.label_summaries()
        predicted = [a for a in store.acquisitions() if a.mu_ev is not None]
    target = labels_that_count(summaries, fidelities=TARGET_FIDELITIES, usable=True)
    dft_values = {lab.gmae_ev for lab in target.values()}
    assert points.what == "DFT labels vs DFT-level μ" and points.label_name == "DFT label"
    assert len(points.y) and set(points.y.tolist()) <= dft_values  # never an MLIP label
    assert points.left_out == sum(a.pair_key not in target for a in predicted)
    assert points.left_out > 0
    assert len(points.y) + points.left_out == len(predicted)
    assert sorted(values["DFT labels"]) == sorted(dft_values)
    only_mlip = labels_that_count(summaries, usable=True)
    assert len(values["MLIP labels"]) == sum(lab.fidelity == "mlip" for lab in only_mlip.values())
    result = runner.invoke(app, ["report", str(mf_campaign), "-o", str(tmp_path / "r")])
    assert result.exit_code == 0 and (tmp_path / "r" / "parity.png").exists()


def test_asedb_export_without_structures_says_so_and_writes_nothing(mf_campaign, tmp_path):
    target = tmp_path / "best.db"
    result = runner.invoke(app, ["export", str(mf_campaign), "-f", "asedb", "-o", str(target)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no structures to export"), lines
    assert "dft_relax, mlip" in lines[0] and not target.exists()


def test_a_campaign_with_only_mlip_labels_and_no_model_ranks_nothing_raw(make_store):
    store = make_store(config={"escalation": {"enabled": True}})
    pairs = [p.key for p in store.pairs()[:2]]
    for key, value in zip(pairs, (-1.5, -0.5), strict=True):
        store.add_label(key, NewLabel(value, "ok", "mlip"))
    found = campaign_answers(store)
    assert (found.rows, found.multi_fidelity, found.unranked) == ((), True, 2)
    panel = status_panel(status_of(store, answers=found), "x.alloop", answers=found)
    console = Console(width=200, record=True)
    console.print(panel)
    text = console.export_text()
    assert "2 pairs with only an MLIP label are not ranked" in text
    assert "-1.500" not in text


def test_a_single_fidelity_campaign_ranks_its_labels(make_store):
    store = make_store()
    pairs = [p.key for p in store.pairs()[:3]]
    for key, value in zip(pairs, (-0.2, -1.1, None), strict=True):
        store.add_label(key, NewLabel(value, "ok" if value else "failed", "replay"))
    found = campaign_answers(store)
    assert not found.multi_fidelity
    assert [(a.pair_key, a.value_ev, a.source) for a in found.rows] == [
        (pairs[1], -1.1, "replay"),
        (pairs[0], -0.2, "replay"),
    ]
    assert status_of(store, answers=found).best == found.best(5)
