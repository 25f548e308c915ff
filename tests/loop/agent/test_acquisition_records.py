"""What a pick was chosen with is stored as fields of its acquisition row, on real campaigns:
μ, σ, the believer's σ, the acquisition's value and its parts (EI, threshold, cost), the
fidelity asked for; the dashboard, `show` and `history` read those fields and never the reason
text. Also `acquisition.top_k` for the single-fidelity `ei` acquisition."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alloop.loop.agent.acquisition import AcquisitionContext, kth_best, shortlist
from alloop.loop.config import parse_config
from alloop.loop.errors import ConfigError
from alloop.loop.face import explore
from alloop.loop.face.cli import app
from alloop.loop.face.model_view import pool_scores
from alloop.store import CampaignStore
from alloop.store.records import AcquisitionRecord
from tests.conftest import FG_ROOT

runner = CliRunner()
WIDE = {"COLUMNS": "250"}
# a tiny model without the MLIP inputs: these tests read the stored fields, not the model
SURROGATE = (
    "surrogate: {ensemble_size: 2, hidden_dim: 16, num_graph_layers: 1, max_epochs: 4,\n"
    "            early_stop_patience: 2, batch_size: 16, mlip_features: none}\n"
)


def run(directory: Path, name: str, body: str, rounds: int = 2, metals: str = "Pt, Ru") -> Path:
    cfg = directory / f"{name}.yaml"
    cfg.write_text(
        f"campaign: {{name: {name}, seed: 4}}\n"
        f"pool:\n  fg: {{root: {FG_ROOT}, metals: [{metals}], max_molecules: 8}}\n"
        + SURROGATE
        + body
        + f"budget: {{max_rounds: {rounds}}}\nbackup: {{every_rounds: 0}}\n"
    )
    target = directory / f"{name}.alloop"
    result = runner.invoke(app, ["run", str(cfg), "--campaign", str(target), "-q"])
    assert result.exit_code == 0, result.output
    return target


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("records")
    single = "oracle: {kind: replay}\n"
    return {
        "ei": run(
            d,
            "ei",
            single + "acquisition: {name: ei, batch_size: 4, "
            "initial_batch_size: 5, explore_fraction: 0.25}\n",
        ),  # fmt: skip
        "ei_top3": run(
            d,
            "ei_top3",
            single + "acquisition: {name: ei, batch_size: 4, initial_batch_size: 5, top_k: 3}\n",
        ),  # fmt: skip
        "mf": run(
            d,
            "mf",
            "oracle: {kind: mf_replay}\n"
            "acquisition: {batch_size: 3, initial_batch_size: 5, top_k: 2}\n"
            "escalation: {enabled: true, policy: cost_aware, mode: relax, per_round: 2}\n"
            "cost: {mlip: 1, dft: 10}\n",
            rounds=3,
            metals="Pt, Ru, Cu",  # two DFT labels anchor two surfaces: one gap is unknown
        ),  # fmt: skip
    }


def rows(path: Path, round_index: int) -> list[AcquisitionRecord]:
    with CampaignStore.open(path) as store:
        return store.acquisitions(round_index=round_index)


def best_before(path: Path, round_index: int, k: int = 1) -> float:
    """The k-th lowest label of the campaign when round ``round_index`` began (replay: one
    label per pair)."""
    with CampaignStore.open(path) as store:
        earlier = {j.key for j in store.jobs() if j.round_index < round_index}
        values = sorted(lab.gmae_ev for lab in store.labels() if lab.job_key in earlier
                        and lab.gmae_ev is not None)  # fmt: skip
    return values[k - 1]


def test_a_single_fidelity_batch_stores_its_facts(campaigns):
    cold = rows(campaigns["ei"], 0)
    assert {(a.value, a.ei_ev, a.believer_sigma_ev) for a in cold} == {(None, None, None)}
    assert {(a.fidelity, a.cost) for a in cold} == {("replay", 100.0)}  # cost.dft prices replay
    found = rows(campaigns["ei"], 1)
    assert [a.acquisition for a in found] == ["ei", "ei", "ei", "uncertainty"]
    for a in found:
        assert a.value == a.score and (a.fidelity, a.cost) == ("replay", 100.0)
        assert a.believer_sigma_ev is not None and a.sigma_ev is not None
        assert a.believer_sigma_ev <= a.sigma_ev + 1e-9  # the believer only lowers σ
    ei = [a for a in found if a.acquisition == "ei"]
    assert ei[0].believer_sigma_ev == pytest.approx(ei[0].sigma_ev)  # nothing believed yet
    for a in ei:
        assert a.ei_ev == pytest.approx(math.exp(a.score))
    # the incumbent is the best label, and the believer only ever lowers it
    assert ei[0].threshold_ev == pytest.approx(best_before(campaigns["ei"], 1))
    thresholds = [a.threshold_ev for a in ei]
    assert thresholds == sorted(thresholds, reverse=True)
    explore_row = found[-1]  # max σ: no EI, no threshold
    assert (explore_row.ei_ev, explore_row.threshold_ev) == (None, None)


def test_top_k_moves_single_fidelity_ei_to_the_kth_best_label(campaigns):
    first = rows(campaigns["ei_top3"], 1)[0]
    assert first.threshold_ev == pytest.approx(best_before(campaigns["ei_top3"], 1, k=3))
    assert first.threshold_ev > best_before(campaigns["ei_top3"], 1, k=1)
    assert first.ei_ev == pytest.approx(math.exp(first.score))


def test_a_cost_aware_batch_stores_value_ei_threshold_and_cost(campaigns):
    with CampaignStore.open(campaigns["mf"]) as store:
        metrics = {r.index: r.metrics for r in store.rounds()}
    seen = set()
    for index in (1, 2):
        for a in rows(campaigns["mf"], index):
            seen.add(a.fidelity)
            assert a.acquisition == "mf_ei" and a.fidelity in ("mlip", "dft_relax")
            assert a.cost == {"mlip": 1.0, "dft_relax": 10.0}[a.fidelity]
            assert a.score == pytest.approx(a.value / a.cost)
            assert a.threshold_ev == pytest.approx(metrics[index]["ei_threshold_ev"])
            assert a.ei_ev is not None and a.ei_ev >= 0.0 and a.believer_sigma_ev is None
            if a.fidelity == "dft_relax":  # DFT settles the value: it is the plain EI
                assert a.value == pytest.approx(a.ei_ev)
            elif a.value > 1e-12:  # an MLIP label removes part of σ: a share of the EI
                assert a.value < a.ei_ev
    assert seen == {"mlip", "dft_relax"}
    # a pick that asked for DFT itself: the batch screen names the event's code only (the
    # reason says why already), decided by the stored fidelity, not by comparing texts
    with CampaignStore.open(campaigns["mf"]) as store:
        batch = [row for i in (1, 2) for row in explore.round_batch(store, i)]
    dft = [row for row in batch if row.rank is not None and row.fidelity == "dft_relax"]
    assert dft and all(row.reason.endswith("; escalated: VALUE_PER_COST") for row in dft)


def test_dashboard_show_and_history_read_the_fields_not_the_reason(campaigns, tmp_path):
    path = tmp_path / "tampered.alloop"
    path.write_bytes(campaigns["ei"].read_bytes())
    # the pick whose σ the believed labels of the earlier picks lowered most
    later = min(rows(path, 1), key=lambda a: a.believer_sigma_ev - a.sigma_ev)  # type: ignore[operator]
    assert later.believer_sigma_ev is not None and later.sigma_ev is not None
    assert later.believer_sigma_ev < later.sigma_ev - explore.BELIEVER_SIGMA_TOLERANCE_EV
    conn = sqlite3.connect(path)  # a reason that lies: nothing may read a number out of it
    conn.execute("UPDATE acquisition SET reason = 'sigma=9.999, EI 7 eV'")
    conn.commit()
    conn.close()
    with CampaignStore.open(path) as store:
        detail = explore.pair_detail(store, later.pair_key)
    (pick,) = [p for p in detail.picks if p.acquisition.round_index == 1]
    assert pick.believed_sigma_ev == pytest.approx(later.believer_sigma_ev)
    show = runner.invoke(app, ["show", str(path), later.pair_key], env=WIDE)
    assert show.exit_code == 0, show.output
    assert f"believer σ {later.believer_sigma_ev:.3f}" in show.output
    assert f"EI {later.ei_ev:.3g} eV below {later.threshold_ev:+.3f} eV" in show.output
    assert "replay, cost 100" in show.output
    history = runner.invoke(app, ["history", str(path), "--wide", "--round", "1"], env=WIDE)
    assert history.exit_code == 0, history.output
    assert "chosen with" in history.output and f"value {later.value:.4g}" in history.output


def test_a_pick_without_a_believer_sigma_shows_none():
    def pick(believer: float | None, sigma: float | None) -> explore.Pick:
        acq = AcquisitionRecord(2, "Pt|a", "Pt", "a", 1, 0.5, -1.0, sigma, "lcb",
                                "sigma=0.100 (a reason is never read)",
                                believer_sigma_ev=believer)  # fmt: skip
        return explore.Pick(acq, 10, -1.2, "mlip")

    assert pick(0.167, 0.211).believed_sigma_ev == pytest.approx(0.167)
    assert pick(0.2112, 0.2111).believed_sigma_ev is None  # not lowered: nothing to show
    assert pick(None, 0.211).believed_sigma_ev is None  # a row written before the field
    assert pick(0.1, None).believed_sigma_ev is None
    assert pick(0.1, 0.2).improvement_ev == pytest.approx(-1.2 - -1.0)


def test_shortlist_and_the_believed_kth_best():
    assert shortlist([-2.0, -1.0, -0.5], [-3.0], 2) == [-2.0, -1.0]  # enough labels
    assert shortlist([-2.0], [-3.0, -1.5, 0.5], 3) == [-3.0, -2.0, -1.5]
    assert kth_best([-2.0], [-3.0, -1.5, 0.5], 3) == -1.5
    plain = AcquisitionContext(best_label_ev=-1.0)
    assert plain.believing(-1.4).best_label_ev == -1.4
    assert plain.believing(-0.2).best_label_ev == -1.0
    assert AcquisitionContext().believing(0.3).best_label_ev == 0.3
    top3 = AcquisitionContext(best_label_ev=-1.0, shortlist_ev=(-2.0, -1.5, -1.0))
    moved = top3.believing(-1.8)  # a believed label enters the shortlist: the 3rd best moves
    assert (moved.best_label_ev, moved.shortlist_ev) == (-1.5, (-2.0, -1.8, -1.5))
    assert top3.believing(-0.5).best_label_ev == -1.0  # below the shortlist: nothing moves


def test_top_k_is_refused_where_nothing_measures_improvement():
    base = {"campaign": {"name": "t"}, "pool": {"fg": {}}, "oracle": {"kind": "replay"}}
    assert parse_config({**base, "acquisition": {"name": "ei", "top_k": 5}}).acquisition.top_k == 5
    with pytest.raises(ConfigError, match=r"acquisition.top_k: 5 applies to expected improvement "
                       r"only; use name: ei .*acquisition 'lcb' ignores it"):  # fmt: skip
        parse_config({**base, "acquisition": {"name": "lcb", "top_k": 5}})


def test_the_dashboard_shows_the_posterior_the_planner_chose_with(campaigns):
    """One DFT-level posterior (`agent.mf_posterior`): the pool view of round i shows, for the
    pairs that round picked for MLIP labels, the μ and σ stored with the picks, the σ grown by
    the unknown fidelity gap of a surface no DFT label has anchored yet included."""
    path = campaigns["mf"]
    with CampaignStore.open(path) as store:
        pairs = store.pairs()
        acqs = store.acquisitions()
        metrics = {r.index: r.metrics for r in store.rounds()}
        surface = {p.key: p.surface_key for p in pairs}
        anchored = {surface[j.pair_key] for j in store.jobs()
                    if j.kind == "dft_relax" and j.round_index == 0}  # fmt: skip
    assert metrics[1]["surface_gap_sigma_ev"] is not None  # the gap term is in play
    assert len(anchored) == 2  # round 1 planned with Cu's gap unknown
    for index in (1, 2):
        scores = pool_scores(str(path), index)
        assert scores is not None and scores.round_index == index
        earlier = {a.pair_key for a in acqs if a.round_index < index}
        shown = {
            p.key: (mu, sigma)
            for p, mu, sigma in zip(
                [p for p in pairs if p.key not in earlier], scores.mu_ev, scores.sigma_ev,
                strict=True,
            )
        }  # fmt: skip
        picked = [a for a in acqs if a.round_index == index and a.fidelity == "mlip"]
        assert picked
        for a in picked:  # float32 ensemble: the same posterior to a few ulp (threads differ)
            assert shown[a.pair_key] == pytest.approx((a.mu_ev, a.sigma_ev), rel=1e-6, abs=1e-6)
        if index == 1:  # a pick whose σ carries the gap term, shown with it
            assert any(a.surface_key not in anchored for a in picked)
