"""Multi-fidelity campaigns: the cost rule, the cost-aware batch, and a real MF replay campaign
(MLIP labels from the shipped low-fidelity table, DFT labels from the FG table)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from alloop.loop.agent.acquisition import kth_best
from alloop.loop.agent.costs import cost_by_fidelity, cost_spent, fidelity_cost
from alloop.loop.agent.mf_acquisition import FidelityCandidate, plan_cost_aware
from alloop.loop.agent.training import training_samples
from alloop.loop.bridges.surrogate import PoolView
from alloop.loop.config import CostSection, parse_config
from alloop.loop.errors import ConfigError
from alloop.loop.face.cli import app
from alloop.loop.face.commands import status_of
from alloop.oracles.errors import OracleError
from alloop.oracles.lowfi_replay import LowFidelityReplayOracle
from alloop.store import CampaignStore
from tests.conftest import FG_ROOT

runner = CliRunner()


def mf_config(path: Path, name: str = "mf", rounds: int = 3, extra: str = "") -> Path:
    path.write_text(
        f"campaign: {{name: {name}, seed: 3}}\n"
        f"pool:\n  fg: {{root: {FG_ROOT}, metals: [Pt, Ru], max_molecules: 8}}\n"
        "oracle: {kind: mf_replay}\n"
        "surrogate: {ensemble_size: 2, hidden_dim: 16, num_graph_layers: 1, max_epochs: 4,\n"
        "            early_stop_patience: 2, batch_size: 16, fidelity_mode: delta}\n"
        "acquisition: {batch_size: 3, initial_batch_size: 5}\n"
        "escalation: {enabled: true, policy: cost_aware, mode: relax, per_round: 2}\n"
        "cost: {mlip: 1, dft: 10}\n"
        f"budget: {{max_rounds: {rounds}{extra}}}\n"
    )
    return path


# ------------------------------------------------------------------ the cost rule
def test_costs_price_mlip_jobs_at_mlip_and_everything_else_at_dft() -> None:
    section = CostSection(mlip=2.0, dft=50.0)
    assert fidelity_cost("mlip", section) == 2.0
    for kind in ("dft_relax", "dft_single_point", "replay"):
        assert fidelity_cost(kind, section) == 50.0


# ------------------------------------------------------------------ the cost-aware batch
def cand(key: str, fidelity: str, mu: float, sigma: float, cost: float) -> FidelityCandidate:
    return FidelityCandidate(key, fidelity, mu, sigma, cost)


def test_batch_spends_the_round_budget_by_value_per_cost() -> None:
    cands = [
        cand("a", "mlip", -1.0, 0.5, 1.0),  # uncertain, near the best: worth screening
        cand("b", "mlip", 1.0, 0.1, 1.0),  # far above the best: no value
        cand("c", "dft_relax", -1.3, 0.1, 10.0),  # predicted below the best: worth DFT
        cand("d", "dft_relax", -0.5, 0.1, 10.0),
    ]
    picks = plan_cost_aware(cands, best_ev=-1.2, round_cost=12.0)
    assert [p.candidate.pair_key for p in picks] == ["a", "c"]
    assert sum(p.candidate.cost for p in picks) <= 12.0
    assert [p.rank for p in picks] == [0, 1]
    assert all(p.score == pytest.approx(p.value / p.candidate.cost) for p in picks)
    # more budget buys the next DFT label only if it has value; "b" never does
    picks = plan_cost_aware(cands, best_ev=-1.2, round_cost=100.0)
    assert "b" not in [p.candidate.pair_key for p in picks]


def test_mlip_value_shrinks_when_an_mlip_label_would_leave_most_uncertainty() -> None:
    """The augmented-EI factor: with DFT candidates as uncertain as the MLIP ones (a large
    residual), screening is worth less than DFT per unit of value."""
    sure = [cand("m", "mlip", -1.0, 0.3, 1.0), cand("x", "dft_relax", -1.0, 0.05, 1.0)]
    vague = [cand("m", "mlip", -1.0, 0.3, 1.0), cand("x", "dft_relax", -1.0, 0.6, 1.0)]
    v_sure = plan_cost_aware(sure, -1.0, 1.0)[0]
    v_vague = next(p for p in plan_cost_aware(vague, -1.0, 2.0) if p.candidate.pair_key == "m")
    assert v_sure.candidate.pair_key == "m"
    assert v_vague.value < v_sure.value


def test_kth_best_is_the_shortlist_threshold() -> None:
    assert kth_best([-2.0, -1.0], [-3.0, 0.5], 1) == -2.0  # k = 1: the best DFT label
    assert kth_best([-2.0, -1.0, -0.5], [-3.0], 2) == -1.0  # enough DFT labels: theirs
    assert kth_best([-2.0], [-3.0, -1.5, 0.5], 3) == -1.5  # too few: predictions fill in
    assert kth_best([], [0.2, -0.4], 1) == -0.4
    assert kth_best([], [0.2], 5) == 0.2


def test_top_k_keeps_value_in_strong_candidates_behind_a_confirmed_best() -> None:
    """With a confirmed best far below, EI on the best sees no value in a strong, certain
    candidate; EI on the shortlist's k-th best does."""
    strong = cand("s", "dft_relax", -3.2, 0.05, 1.0)
    vague = cand("v", "dft_relax", -1.0, 0.9, 1.0)
    on_best = plan_cost_aware([strong, vague], best_ev=-4.0, round_cost=1.0)
    assert [p.candidate.pair_key for p in on_best] == ["v"]
    on_kth = plan_cost_aware([strong, vague], best_ev=-3.0, round_cost=1.0)
    assert [p.candidate.pair_key for p in on_kth] == ["s"]


def test_unaffordable_value_falls_back_to_what_the_budget_buys() -> None:
    """The end of a budget: only DFT has value but costs more than is left; the round spends
    the rest on the most uncertain MLIP labels instead of acquiring nothing."""
    cands = [cand("d", "dft_relax", -2.0, 0.2, 100.0), cand("m1", "mlip", 3.0, 0.3, 1.0),
             cand("m2", "mlip", 3.0, 0.1, 1.0)]  # fmt: skip
    picks = plan_cost_aware(cands, best_ev=-1.0, round_cost=46.0)
    assert [p.candidate.pair_key for p in picks] == ["m1", "m2"]


def test_mlip_cap_leaves_the_budget_to_dft() -> None:
    cands = [cand(f"m{i}", "mlip", -1.0, 0.5, 1.0) for i in range(20)]
    cands.append(cand("d", "dft_relax", -1.3, 0.1, 10.0))
    uncapped = plan_cost_aware(cands, best_ev=-1.2, round_cost=15.0)
    assert all(p.candidate.fidelity == "mlip" for p in uncapped) and len(uncapped) == 15
    capped = plan_cost_aware(cands, best_ev=-1.2, round_cost=15.0, caps={"mlip": 5})
    assert [p.candidate.fidelity for p in capped].count("mlip") == 5
    assert "d" in [p.candidate.pair_key for p in capped]


def test_batch_takes_each_pair_once_and_falls_back_to_sigma() -> None:
    cands = [cand("a", "mlip", 5.0, 0.01, 1.0), cand("a", "dft_relax", 5.0, 0.02, 1.0),
             cand("b", "mlip", 5.0, 0.03, 1.0)]  # fmt: skip
    picks = plan_cost_aware(cands, best_ev=-3.0, round_cost=10.0)  # no EI anywhere
    keys = [p.candidate.pair_key for p in picks]
    assert sorted(keys) == ["a", "b"] and keys[0] == "b"  # largest σ per cost first
    assert plan_cost_aware([], -1.0, 10.0) == []


# ------------------------------------------------------------------ config
@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"oracle": {"kind": "mlip"}, "escalation": {"policy": "cost_aware"}},
         "cost_aware needs escalation.enabled: true"),
        ({"oracle": {"kind": "mf_replay"}, "escalation": {"enabled": True}},
         "use mode: relax"),
        ({"oracle": {"kind": "replay", "lowfi_table": "x.csv"}},
         "only the mf_replay oracle reads it"),
        ({"surrogate": {"fidelity_mode": "fusion"}}, "surrogate.fidelity_mode"),
        ({"cost": {"dft": 0}}, "cost.dft"),
        ({"budget": {"max_cost": -1}}, "budget.max_cost"),
    ],
)  # fmt: skip
def test_bad_multifidelity_configs_are_refused(section: dict, message: str) -> None:
    data = {"campaign": {"name": "x"}, "pool": {"fg": {}}, **section}
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


# ------------------------------------------------------------------ the replay oracles
def test_low_fidelity_replay_answers_the_shipped_table() -> None:
    from ase.build import fcc111

    from alloop.oracles.lowfi_replay import DFTReplayOracle
    from alloop.oracles.replay import ReplayOracle
    from alloop.oracles.types import AdsorbateSpec, OraclePair

    low = LowFidelityReplayOracle()
    dft = DFTReplayOracle(ReplayOracle(FG_ROOT, load_structures=False))

    def fg_pair(metal: str, ads: str) -> OraclePair:  # replay looks pairs up by key only
        spec = AdsorbateSpec(name=ads, smiles="C", atoms=None, binding_atoms=())
        return OraclePair(f"{metal}|{ads}", metal, ads, fcc111("Pt", (1, 1, 3), vacuum=5), spec)

    ok = low.label(fg_pair("Pt", "amides/13X1"))
    assert ok.status == "ok" and ok.fidelity == "mlip"
    assert ok.gmae_ev == pytest.approx(low.value_of("Pt", "amides/13X1"))
    assert ok.provenance["calculator"] == "sevennet-mf-0"
    assert len(ok.provenance["weights_hash"]) == 64
    truth = dft.label(fg_pair("Pt", "amides/13X1"))
    assert truth.fidelity == "dft_relax" and truth.status == "ok"
    assert truth.gmae_ev == pytest.approx(dft.replay.row("Pt", "amides/13X1").e_ads_min_ev)
    assert truth.gmae_ev != pytest.approx(ok.gmae_ev, abs=1e-3)  # two fidelities, two values
    unknown = low.label(fg_pair("Xx", "amides/13X1"))
    assert unknown.status == "failed" and "unknown_pair" in unknown.provenance["error"]


# ------------------------------------------------------------------ a real MF campaign
def test_mf_replay_campaign_end_to_end(tmp_path: Path) -> None:
    cfg = mf_config(tmp_path / "mf.yaml")
    campaign = tmp_path / "mf.alloop"
    result = runner.invoke(app, ["run", str(cfg), "-c", str(campaign), "-q"])
    assert result.exit_code == 0, result.output
    with CampaignStore.open(campaign) as store:
        labels = store.labels()
        jobs = store.jobs()
        rounds = store.rounds()
        events = [e for e in store.events() if e.kind == "escalated"]
        site_scored = {
            (e.round_index, e.payload["pair"]) for e in store.events() if e.kind == "site_scores"
        }
        samples = training_samples(store, PoolView.load(store), "delta")
        acquisitions = store.acquisitions()
        best = status_of(store, n_best=50).best
    fids = {lab.fidelity for lab in labels}
    assert fids == {"mlip", "dft_relax"}
    mlip_ok = {lab.pair_key for lab in labels if lab.fidelity == "mlip" and lab.status == "ok"}
    dft = [lab for lab in labels if lab.fidelity == "dft_relax"]
    # DFT only where an MLIP label was there to start from; both labels kept
    assert dft and all(lab.pair_key in mlip_ok for lab in dft)
    # round 0: 5 MLIP + the cold-start DFT pair(s); every DFT job has one event with its price
    assert [e.payload["reason"] for e in events][:2] == ["COLD_START", "COLD_START"]
    assert sorted(e.payload["pair"] for e in events) == sorted(lab.pair_key for lab in dft)
    assert all(e.payload["cost"] == 10.0 for e in events)
    later = [e for e in events if e.payload["reason"] == "VALUE_PER_COST"]
    assert all(e.payload["value"] > 0 for e in later)
    # cost per round and in total, by the one rule
    section = CostSection(mlip=1, dft=10)
    assert [r.metrics["cost_round"] for r in rounds] == [
        cost_spent(jobs, section, r.index) for r in rounds
    ]
    assert rounds[-1].metrics["cost_total"] == cost_spent(jobs, section)
    assert rounds[-1].metrics["cost_by_fidelity"] == cost_by_fidelity(jobs, section)
    # later rounds were chosen by value per cost over (pair, fidelity); their MLIP jobs carry
    # the ensemble's site scores, stored with the acquisition
    assert {a.acquisition for a in acquisitions if a.round_index > 0} == {"mf_ei"}
    mlip_later = {(j.round_index, j.pair_key) for j in jobs if j.kind == "mlip" and j.round_index}
    assert mlip_later and site_scored == mlip_later
    # the strongest pairs are reported by the label that counts: DFT where there is one
    with_dft = {lab.pair_key for lab in dft if lab.status == "ok"}
    assert {fid for key, _, fid in best if key in with_dft} == {"dft_relax"}
    assert len(best) == len(mlip_ok)
    # the surrogate trained on both fidelities
    assert {s.fidelity for _, s in samples} == {0, 1}
    status = runner.invoke(app, ["status", str(campaign)])
    assert status.exit_code == 0 and "cost spent" in status.output
    assert f"{cost_spent(jobs, section):,.0f} units" in status.output
    shown = runner.invoke(app, ["show", str(campaign), dft[0].pair_key])
    assert shown.exit_code == 0 and "dft_relax" in shown.output and "mlip" in shown.output
    dash = runner.invoke(app, ["dashboard", str(campaign), "--once"])
    assert dash.exit_code == 0 and "COLD_START" in dash.output


def test_cost_budget_stops_the_campaign(tmp_path: Path) -> None:
    cfg = mf_config(tmp_path / "mf.yaml", name="cheap", rounds=10, extra=", max_cost: 40")
    campaign = tmp_path / "cheap.alloop"
    result = runner.invoke(app, ["run", str(cfg), "-c", str(campaign)])
    assert result.exit_code == 0, result.output
    assert "COST_BUDGET" in result.output
    with CampaignStore.open(campaign) as store:
        spent = store.rounds()[-1].metrics["cost_total"]
        n_rounds = len(store.rounds())
    # stopped once what is left (4 units) buys nothing still open (DFT labels, 10 each)
    assert 40 - 10 < spent <= 40 and n_rounds < 10


def test_fidelity_mode_default_follows_the_policy() -> None:
    base = {"campaign": {"name": "x"}, "pool": {"fg": {}}}
    mf = {**base, "oracle": {"kind": "mf_replay"},
          "escalation": {"enabled": True, "policy": "cost_aware", "mode": "relax"}}  # fmt: skip
    assert parse_config(mf).resolved()["surrogate"]["fidelity_mode"] == "delta"
    rules = {**base, "oracle": {"kind": "mlip"}, "escalation": {"enabled": True}}
    assert parse_config(rules).surrogate.fidelity_mode == "supersede"
    chosen = {**mf, "surrogate": {"fidelity_mode": "token"}}
    assert parse_config(chosen).surrogate.fidelity_mode == "token"
    # cost-aware campaigns keep the split and prior their benchmark measured
    assert parse_config(mf).surrogate.levers == ("holdout", "none", "none")


def test_low_fidelity_table_mistakes_are_one_line(tmp_path: Path) -> None:
    cfg = mf_config(tmp_path / "mf.yaml", name="bad")
    cfg.write_text(
        cfg.read_text().replace(
            "oracle: {kind: mf_replay}", "oracle: {kind: mf_replay, lowfi_table: nope.csv}"
        )
    )
    result = runner.invoke(app, ["run", str(cfg), "-c", str(tmp_path / "bad.alloop")])
    assert result.exit_code == 1 and "oracle.lowfi_table: no file at" in result.output
    assert not (tmp_path / "bad.alloop").exists()  # nothing half-written
    table = tmp_path / "t.csv"
    table.write_bytes(b"\xff\xfe\x00garbage")
    table.with_suffix(".json").write_text("{not json")
    with pytest.raises(OracleError, match="unreadable"):
        LowFidelityReplayOracle(table)
    table.with_suffix(".json").write_text("{}")
    table.write_text("metal,family\nPt\n")
    with pytest.raises(OracleError, match="line 2: cannot parse row"):
        LowFidelityReplayOracle(table)


def test_config_spells_the_surrogate_modes_as_the_surrogate_does() -> None:
    from typing import get_args

    from alloop.loop.config import SurrogateSection
    from alloop.surrogate.fidelity import FIDELITY_MODES

    annotation = SurrogateSection.model_fields["fidelity_mode"].annotation
    (literal,) = [a for a in get_args(annotation) if a is not type(None)]
    assert get_args(literal) == FIDELITY_MODES


def test_surface_gap_sigma_is_the_spread_of_the_surfaces_mean_gaps() -> None:
    from alloop.loop.agent.mf_posterior import surface_gap_sigma

    assert surface_gap_sigma({}) is None
    assert surface_gap_sigma({"Pt": [0.3]}) is None  # one gap: nothing to spread
    # one surface, several gaps: their spread
    assert surface_gap_sigma({"Pt": [0.1, 0.5]}) == pytest.approx(0.2828, abs=1e-4)
    # several surfaces: the spread of their means (Fe's +1.7 eV dominates), not of all gaps
    sigma = surface_gap_sigma({"Ru": [-0.6, -0.5], "Fe": [1.6, 1.8], "Pt": [0.0]})
    assert sigma == pytest.approx(float(torch.tensor([-0.55, 1.7, 0.0]).double().std()))


def test_first_dft_labels_anchor_distinct_surfaces(tmp_path: Path) -> None:
    """Anchored cold start: the MLIP-strongest pair of each surface, every surface once before
    any gets a second; without anchoring, random MLIP-labelled pairs."""
    from alloop.loop.agent.mf_planning import cold_start_dft

    text = mf_config(tmp_path / "mf.yaml", rounds=1).read_text()
    labels_only = text.replace(
        "escalation: {enabled: true, policy: cost_aware, mode: relax, per_round: 2}",
        "escalation: {enabled: false}",
    )
    labels_only = labels_only.replace("initial_batch_size: 5", "initial_batch_size: 12")
    (tmp_path / "mlip.yaml").write_text(labels_only)
    campaign = tmp_path / "c.alloop"
    result = runner.invoke(app, ["run", str(tmp_path / "mlip.yaml"), "-c", str(campaign), "-q"])
    assert result.exit_code == 0, result.output
    with CampaignStore.open(campaign) as store:
        surface = {p.key: p.surface_key for p in store.pairs()}
        mlip = {lab.pair_key: lab.gmae_ev for lab in store.labels() if lab.status == "ok"}
        assert len({surface[k] for k in mlip}) == 2  # Pt and Ru both have MLIP labels
        picked = {}
        for anchor in (True, False):
            cfg = parse_config(yaml_of(text, anchor=anchor, per_round=3))
            jobs, events = cold_start_dft(store, cfg, 1, torch.Generator().manual_seed(0))
            picked[anchor] = ([j.pair_key for j in jobs], [e[1]["detail"] for e in events])
    chosen, details = picked[True]
    assert len(set(chosen)) == 3 and all("surface" in d for d in details)
    ranked = {s: sorted((v, k) for k, v in mlip.items() if surface[k] == s) for s in ("Pt", "Ru")}
    firsts = {ranked[s][0][1] for s in ranked}  # the strongest of each surface
    assert firsts <= set(chosen)
    (extra,) = set(chosen) - firsts  # the third: a surface's second strongest
    assert extra in {ranked[s][1][1] for s in ranked}
    chosen, details = picked[False]
    assert len(set(chosen)) == 3 and all("random" in d for d in details)


def yaml_of(text: str, anchor: bool, per_round: int) -> dict:
    import yaml

    data = yaml.safe_load(text)
    data["escalation"] |= {"anchor_surfaces": anchor, "per_round": per_round}
    return data


def test_cost_aware_ei_is_botorchs_on_the_dft_level_posterior() -> None:
    """`expected_improvement` is BoTorch's analytic EI on `PoolGaussianModel`: at μ = best it is
    σ φ(0); far below best with a small σ it is best − μ; far above, nothing."""
    import math

    from alloop.loop.agent.mf_acquisition import expected_improvement
    from alloop.loop.agent.mf_posterior import PoolGaussianModel

    mu = torch.tensor([-1.0, -3.0, 2.0], dtype=torch.float64)
    sigma = torch.tensor([0.2, 0.01, 0.1], dtype=torch.float64)
    ei = expected_improvement(mu, sigma, best=-1.0)
    assert ei.dtype == torch.float64 and ei.shape == (3,)
    assert float(ei[0]) == pytest.approx(0.2 / math.sqrt(2 * math.pi), rel=1e-12)
    assert float(ei[1]) == pytest.approx(2.0, rel=1e-12)
    assert float(ei[2]) < 1e-12
    model = PoolGaussianModel(mu, sigma)
    post = model.posterior(model.candidates)
    assert torch.allclose(post.mean.view(-1), mu)
    assert torch.allclose(post.variance.view(-1), sigma**2)
