"""The interactive dashboard driven by Textual's headless Pilot, on real campaign files: a tiny
multi-fidelity FG replay campaign (MLIP + DFT labels, escalations, stored models), a
single-fidelity one, an empty one, a cold-start-only one and one with a failed label, built
with the store API."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import ase.io
import pytest
from ase.build import fcc111, molecule
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Static
from typer.testing import CliRunner

from alloop.loop.agent.labels import labels_that_count
from alloop.loop.face.app import DashboardApp, OverviewScreen, PlotsScreen, RoundsScreen
from alloop.loop.face.app_pair import BatchScreen, PairScreen
from alloop.loop.face.cli import app as cli
from alloop.loop.face.model_view import top_layer
from alloop.store import CampaignStore
from alloop.store.enums import JobState
from alloop.store.records import NewAcquisition, NewJob, NewLabel
from alloop.store.structures import atoms_to_json
from tests.conftest import FG_ROOT

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def fg_config(path: Path, name: str, rounds: int, mf: bool) -> Path:
    common = (
        f"campaign: {{name: {name}, seed: 3}}\n"
        f"pool:\n  fg: {{root: {FG_ROOT}, metals: [Pt, Ru], max_molecules: 8}}\n"
        "surrogate: {ensemble_size: 2, hidden_dim: 16, num_graph_layers: 1, max_epochs: 4,\n"
        "            early_stop_patience: 2, batch_size: 16"
    )
    if mf:
        path.write_text(
            common + ", fidelity_mode: delta}\n"
            "oracle: {kind: mf_replay}\n"
            "acquisition: {batch_size: 3, initial_batch_size: 5}\n"
            "escalation: {enabled: true, policy: cost_aware, mode: relax, per_round: 2}\n"
            "cost: {mlip: 1, dft: 10}\n"
            f"budget: {{max_rounds: {rounds}}}\n"
        )
    else:
        path.write_text(
            common + "}\noracle: {kind: replay}\n"
            "acquisition: {name: lcb, batch_size: 3, initial_batch_size: 4}\n"
            f"budget: {{max_rounds: {rounds}}}\n"
        )
    return path


def run_campaign(directory: Path, name: str, rounds: int, mf: bool) -> Path:
    cfg = fg_config(directory / f"{name}.yaml", name, rounds, mf)
    target = directory / f"{name}.alloop"
    result = runner.invoke(cli, ["run", str(cfg), "--campaign", str(target), "-q"])
    assert result.exit_code == 0, result.output
    return target


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real campaigns, made once for the module."""
    d = tmp_path_factory.mktemp("dash")
    empty = d / "empty.alloop"
    init = runner.invoke(cli, ["init", str(fg_config(d / "e.yaml", "empty", 1, False)),
                               "--campaign", str(empty)])  # fmt: skip
    assert init.exit_code == 0, init.output
    return {
        "mf": run_campaign(d, "mf", 3, mf=True),
        "single": run_campaign(d, "single", 3, mf=False),
        "cold": run_campaign(d, "cold", 1, mf=False),
        "empty": empty,
        "failed": failed_label_campaign(d / "failed.alloop"),
    }


def failed_label_campaign(path: Path) -> Path:
    """Round 0 of an MLIP campaign by hand: one ok label with placements (one anomalous) and a
    stored best structure, one failed label, one job still open; round 1 escalates the ok
    pair to DFT (rules policy: a job and an `escalated` event, no acquisition)."""
    slab = fcc111("Pt", (2, 2, 3), vacuum=6.0)
    from alloop.store.records import NewAdsorbate, NewSurface

    with CampaignStore.create(
        path, name="failed", config={}, seed=1,
        surfaces=[NewSurface("Pt(111)", slab, "ase.build", "1,1,1")],
        adsorbates=[NewAdsorbate(k, k, s, molecule(m), (0,)) for k, s, m in
                    (("CO", "[C-]#[O+]", "CO"), ("H2O", "O", "H2O"), ("NH3", "N", "NH3"))],
    ) as store:  # fmt: skip
        keys = [p.key for p in store.pairs()]
        store.begin_round(0, "started")
        acqs = [NewAcquisition(k, i, None, None, None, "random", "cold-start random")
                for i, k in enumerate(keys)]  # fmt: skip
        store.record_batch(0, acqs, [NewJob.for_round(0, k, "mlip") for k in keys], "acquired")
        best = slab.copy() + molecule("CO")
        ok_prov = {
            "calculator": "emt", "placements_tried": 2, "force_calls": 31, "wall_s": 1.5,
            "best_structure": atoms_to_json(best),
            "placements": [
                {"site_kind": "ontop", "orientation": "upright", "e_ads_ev": -1.2,
                 "force_calls": 14, "wall_s": 0.7, "anomaly_flags": []},
                {"site_kind": "hollow", "orientation": "flat", "e_ads_ev": -2.9,
                 "force_calls": 17, "wall_s": 0.8, "anomaly_flags": ["desorbed"]},
            ],
        }  # fmt: skip
        results = {
            keys[0]: NewLabel(-1.2, "ok", "mlip", ok_prov),
            keys[1]: NewLabel(None, "failed", "mlip", {"error": "time_limit: over 60 s"}),
        }
        for key, label in results.items():
            job = f"r0:mlip:{key}"
            store.transition_job(job, JobState.SUBMITTED)
            store.transition_job(job, JobState.RUNNING)
            store.complete_job(job, label)
        store.set_round_state(0, "closed")
        store.begin_round(1, "started")  # a rules escalation: a DFT job, no acquisition row
        detail = "label -1.200 eV among the 3 lowest"
        store.propose_jobs(1, [NewJob.for_round(1, keys[0], "dft_single_point")],
                           [("escalated", {"pair": keys[0], "reason": "STRONG_BINDER",
                                           "detail": detail})])  # fmt: skip
    return path


def drive(campaign: Path, steps: Callable[[Pilot[Any], DashboardApp], Awaitable[None]],
          size: tuple[int, int] = (160, 50), **kw: Any) -> DashboardApp:  # fmt: skip
    """Run the app headless on ``campaign`` and let ``steps`` press keys; an exception inside
    the app fails the test (run_test re-raises it)."""
    app = DashboardApp(str(campaign), **kw)

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await steps(pilot, app)

    asyncio.run(main())
    return app


def text_of(widget: Static, width: int = 200) -> str:
    console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(widget.content)
    return console.export_text()


def table_rows(table: DataTable[Any]) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


# ------------------------------------------------------------------------------ screens
def test_keys_move_between_screens(campaigns):
    seen: list[str] = []

    async def steps(pilot: Pilot[Any], app: DashboardApp) -> None:
        seen.append(type(app.screen).__name__)
        assert "16 pairs" in text_of(app.screen.query_one("#overview", Static))
        for keys in (["r"], ["enter"], ["enter"], ["escape"], ["escape"], ["p"], ["o"]):
            await pilot.press(*keys)
            await pilot.pause()
            seen.append(type(app.screen).__name__)
        await app.workers.wait_for_complete()
        await pilot.press("q")

    drive(campaigns["mf"], steps)
    assert seen == ["OverviewScreen", "RoundsScreen", "BatchScreen", "PairScreen", "BatchScreen",
                    "RoundsScreen", "PlotsScreen", "OverviewScreen"]  # fmt: skip


def test_a_rounds_batch_shows_its_stored_acquisitions(campaigns):
    with CampaignStore.open(campaigns["mf"]) as store:
        want = store.acquisitions(round_index=2)
        cold0 = store.acquisitions(round_index=0)
        counted = labels_that_count(store.labels())
    got: list[list[str]] = []

    async def steps(pilot: Pilot[Any], app: DashboardApp) -> None:
        await pilot.press("r", "down", "down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, BatchScreen) and app.screen.round_index == 2
        got.extend(table_rows(app.screen.query_one("#batch", DataTable)))
        head = text_of(app.screen.query_one("#batch-head", Static))
        assert "round 2 (closed)" in head and "batch MAE" in head
        await pilot.press("left_square_bracket", "left_square_bracket")  # back to round 0
        await pilot.pause()
        assert app.screen.round_index == 0
        cold.extend(table_rows(app.screen.query_one("#batch", DataTable)))

    cold: list[list[str]] = []
    drive(campaigns["mf"], steps)
    assert [(r[0], r[1]) for r in got] == [(str(a.rank), a.pair_key) for a in want]
    # round 0: random MLIP picks, two of them escalated to DFT at once (COLD_START events)
    escalated = [r for r in cold if r[6] == "mlip+dft_relax"]
    assert len(escalated) == 2 and len(cold) == len(cold0)
    assert all("; escalated: COLD_START: cold start" in r[9] for r in escalated)
    for row, a in zip(got, want, strict=True):
        assert row[2] == f"{a.mu_ev:+.3f}" and row[3] == f"{a.sigma_ev:.3f}"
        lab = counted[a.pair_key]  # the label that counts, and how wrong μ was about it
        assert f"{lab.fidelity} {lab.gmae_ev:+.3f}" in row[5]
        assert row[4] == f"{lab.gmae_ev - a.mu_ev:+.3f}"
        assert row[9].startswith(a.reason)


def test_sort_and_filter_the_batch(campaigns):
    async def steps(pilot: Pilot[Any], app: DashboardApp) -> None:
        await pilot.press("r", "down", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, BatchScreen)
        all_rows = list(screen.shown)
        await pilot.press("s")  # rank -> score, the best first
        await pilot.pause()
        scores = [r.score for r in screen.shown if r.score is not None]
        assert screen.sort_key == "score" and scores == sorted(scores, reverse=True)
        await pilot.press("v")
        await pilot.pause()
        scores = [r.score for r in screen.shown if r.score is not None]
        assert scores == sorted(scores)
        table = screen.query_one("#batch", DataTable)
        x = sum(c.get_render_width(table) for c in list(table.columns.values())[:2]) + 1
        await pilot.click("#batch", offset=(x, 0))  # the header of μ
        await pilot.pause()
        mus = [r.mu_ev for r in screen.shown if r.mu_ev is not None]
        assert screen.sort_key == "mu" and mus == sorted(mus)
        await pilot.press("slash", *"f:dft", "enter")
        await pilot.pause()
        table = screen.query_one("#batch", DataTable)
        assert 0 < table.row_count < len(all_rows)
        assert all("dft" in row[5] + row[6] for row in table_rows(table))
        await pilot.press("slash", *"s:Ru", "enter")
        await pilot.pause()
        assert all(r.surface_key == "Ru" for r in screen.shown)
        assert len(screen.shown) == sum(r.surface_key == "Ru" for r in all_rows)
        await pilot.press("slash", "escape")  # escape in the box clears the filter
        await pilot.pause()
        assert len(screen.shown) == len(all_rows)
        await pilot.press("slash", *"[/b]", "enter")  # markup-like text is only text
        await pilot.pause()
        assert screen.shown == [] and "filter: [/b]" in text_of(screen.query_one("#batch-head"))
        await pilot.press("slash", "ctrl+u", *"c:x", "enter")  # a bad field: told, not fatal
        await pilot.pause()
        assert len(screen.shown) == len(all_rows)

    drive(campaigns["mf"], steps)


def test_pair_screen_shows_why_labels_with_provenance_and_attention(campaigns):
    with CampaignStore.open(campaigns["mf"]) as store:
        both = {lab.pair_key for lab in store.labels() if lab.fidelity == "mlip"} & {
            lab.pair_key for lab in store.labels() if lab.fidelity == "dft_relax"
        }
        pair = sorted(both)[0]
    body: list[str] = []

    async def steps(pilot: Pilot[Any], app: DashboardApp) -> None:
        app.push_screen(PairScreen(pair))
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        body.append(text_of(app.screen.query_one("#pair-head", Static)))
        body.append(text_of(app.screen.query_one("#pair-body", Static)))
        body.append(text_of(app.screen.query_one("#sitemap", Static)))

    drive(campaigns["mf"], steps)
    head, text, sitemap = body
    assert pair in head and "label that counts: dft_relax" in head
    expected = ("why it was chosen", "mlip label", "dft_relax label  (counts)", "sevennet-mf-0",
                "vasp-pbe-d2", "escalations", "placements tried")  # fmt: skip
    for part in expected:
        assert part in text, part
    assert "COLD_START" in text or "VALUE_PER_COST" in text
    # cost-aware batches store no site scores: recomputed with the latest model
    assert "attention of the round-2 model over the top layer (recomputed)" in sitemap
    assert re.search(r"most attended: (Pt|Ru)#\d+ \d+%", sitemap)


def test_site_map_is_the_one_stored_with_the_acquisition(campaigns):
    """Single-fidelity batches store each pick's site scores (a `site_scores` event): the pair
    screen draws those, from the model that chose the pair."""
    with CampaignStore.open(campaigns["single"]) as store:
        pair = store.acquisitions(round_index=1)[0].pair_key
        stored = [
            e for e in store.events() if e.kind == "site_scores" and e.payload["pair"] == pair
        ]
        slab = store.surface_atoms(store.pair(pair).surface_key)
    assert stored
    top_atoms = top_layer(slab.get_tags(), slab.positions[:, 2])
    shown: list[str] = []

    async def steps(pilot: Pilot[Any], app: DashboardApp) -> None:
        app.push_screen(PairScreen(pair))
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown.append(text_of(app.screen.query_one("#sitemap", Static)))

    drive(campaigns["single"], steps)
    assert re.search(r"attention of the round-1 model over the top layer ─", shown[0]), shown[0]
    scores = stored[-1].payload["scores"]
    top = max(top_atoms, key=scores.__getitem__)  # the top-layer atom with the most attention
    assert f"#{top} " in shown[0].split("most attended: ")[1].split(",")[0]


def test_pair_screen_exports_the_best_structure_and_shows_failures(campaigns, tmp_path):
    with CampaignStore.open(campaigns["failed"]) as store:
        ok_pair, failed_pair, open_pair = (p.key for p in store.pairs())
    texts: list[str] = []

    async def steps(pilot: Pilot[Any], app: DashboardApp) -> None:
        for pair in (ok_pair, failed_pair, open_pair):
            app.push_screen(PairScreen(pair))
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            texts.append(text_of(app.screen.query_one("#pair-body", Static)))
            texts.append(text_of(app.screen.query_one("#sitemap", Static)))
            await pilot.press("x")
            await pilot.pause()
            await pilot.press("escape")

    drive(campaigns["failed"], steps, export_dir=tmp_path)
    ok_text, ok_map, failed_text, _, open_text, _ = texts
    assert "hollow" in ok_text and "desorbed" in ok_text and "-2.900" in ok_text
    assert "force calls" in ok_text and "31" in ok_text and "emt" in ok_text
    assert "no model stored yet" in ok_map
    assert "failed" in failed_text and "time_limit: over 60 s" in failed_text
    assert "no labels yet (1 job(s) open)" in open_text
    written = list(tmp_path.glob("*.extxyz"))  # only the ok pair stores a structure
    assert [p.name for p in written] == ["Pt_111_CO-mlip.extxyz"]
    assert len(ase.io.read(written[0])) == 12 + 2


def test_an_escalation_outside_the_batch_is_a_row_of_its_round(campaigns):
    rows: list[list[str]] = []

    async def steps(pilot: Pilot[Any], app: DashboardApp) -> None:
        app.push_screen(BatchScreen(1))
        await pilot.pause()
        rows.extend(table_rows(app.screen.query_one("#batch", DataTable)))

    drive(campaigns["failed"], steps)
    assert len(rows) == 1
    rank, pair, *_, fidelity, acquisition, _, reason = rows[0]
    assert (rank, pair, fidelity, acquisition) == ("esc.", "Pt(111)|CO", "dft_single_point",
                                                   "escalation")  # fmt: skip
    assert reason == "STRONG_BINDER: label -1.200 eV among the 3 lowest"


def test_a_refresh_while_the_screen_is_being_taken_down_is_skipped(campaigns):
    """The refresh timer can fire while the app closes and the screen's widgets are already
    gone (seen once on a loaded machine: NoMatches '#overview' at exit); it redraws nothing."""

    async def steps(pilot: Pilot[Any], app: DashboardApp) -> None:
        assert isinstance(app.screen, OverviewScreen) and app.screen.ready
        await app.screen.query_one("#overview", Static).remove()
        app.action_reload()  # raised NoMatches before
        await pilot.pause()

    drive(campaigns["single"], steps)


@pytest.mark.parametrize(
    ("name", "size"),
    [("empty", (80, 24)), ("cold", (200, 50)), ("failed", (80, 24)), ("mf", (80, 24)),
     ("single", (200, 50))],
)  # fmt: skip
def test_every_screen_renders_for_every_kind_of_campaign(campaigns, name, size):
    """Empty, cold-start-only, failed-label, escalated multi-fidelity and single-fidelity
    campaigns, in a small and a large terminal: every screen, every round's batch, the first
    pair of the last round, the plots."""
    with CampaignStore.open(campaigns[name]) as store:
        n_rounds = len(store.rounds())

    async def steps(pilot: Pilot[Any], app: DashboardApp) -> None:
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RoundsScreen)
        for i in range(n_rounds):
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, BatchScreen) and app.screen.round_index == i
            if i == n_rounds - 1:
                await pilot.press("enter")  # its first pair
                await pilot.pause()
                await app.workers.wait_for_complete()
                assert isinstance(app.screen, PairScreen)
                await pilot.press("escape")
            await pilot.press("escape", "down")
            await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        for key in "1234":
            await pilot.press(key)
            await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, PlotsScreen)
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)

    drive(campaigns[name], steps, size=size)


def test_plots_draw_the_learning_curves_and_the_pool(campaigns):
    drawn: dict[str, str] = {}

    async def steps(pilot: Pilot[Any], app: DashboardApp) -> None:
        await pilot.press("p")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        for wid in ("errors", "best-labels", "best-cost", "coverage", "pool"):
            plot = app.screen.query_one(f"#plot-{wid}")
            drawn[wid] = plot.plt.build()  # type: ignore[attr-defined]

    drive(campaigns["mf"], steps)
    assert "model error vs labels" in drawn["errors"] and "batch MAE" in drawn["errors"]
    assert "best GMAE vs labels" in drawn["best-labels"]
    assert "best GMAE vs cost units" in drawn["best-cost"]
    assert "95% coverage per round" in drawn["coverage"]
    assert "by the model of round 2" in drawn["pool"] and "batch of round 2" in drawn["pool"]


def test_a_campaign_written_by_another_process_appears_after_refresh(tmp_path):
    cfg = fg_config(tmp_path / "live.yaml", "live", 1, mf=False)
    target = tmp_path / "live.alloop"
    assert runner.invoke(cli, ["init", str(cfg), "--campaign", str(target)]).exit_code == 0
    seen: list[Any] = []

    async def steps(pilot: Pilot[Any], app: DashboardApp) -> None:
        await pilot.press("r")
        await pilot.pause()
        table = app.screen.query_one("#rounds", DataTable)
        seen.append(table.row_count)
        assert "none yet" in text_of(app.screen.query_one(".title", Static))
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "alloop.loop.face.cli", "resume", str(target), "-q"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        await pilot.press("ctrl+r")  # the timer would do the same within refresh_s
        await pilot.pause()
        seen.append(table.row_count)
        seen.append(table_rows(table)[0][1])
        assert "enter: the round's batch" in text_of(app.screen.query_one(".title", Static))
        await pilot.press("o")
        await pilot.pause()
        seen.append(text_of(app.screen.query_one("#overview", Static)))
        target.rename(target.with_suffix(".moved"))  # the file goes away: said, not fatal
        await pilot.press("ctrl+r")
        await pilot.pause()
        seen.append(app.sub_title)

    app = drive(target, steps, refresh_s=3600.0)
    assert app.refresh_s == 3600.0
    assert seen[:3] == [0, 1, "closed"]
    assert "current batch (round 0)" in seen[3] and "1 rounds" in seen[3]
    assert seen[4].startswith("cannot read the campaign: no campaign file at")


# ------------------------------------------------------------------------------ the CLI
def test_dashboard_prints_one_frame_when_not_a_terminal(campaigns):
    for args in (
        ["dashboard", str(campaigns["mf"])],
        ["dashboard", str(campaigns["mf"]), "--once"],
    ):
        result = runner.invoke(cli, args, env=WIDE)  # CliRunner's output is no terminal
        assert result.exit_code == 0, result.output
        assert "rounds" in result.output and "escalations" in result.output
    bad = runner.invoke(cli, ["dashboard", str(campaigns["mf"]), "--refresh", "0"])
    assert bad.exit_code == 1 and "--refresh must be a positive number" in bad.output
    missing = runner.invoke(cli, ["dashboard", "nope.alloop"])
    assert missing.exit_code == 1 and "Traceback" not in missing.output


def test_history_fits_80_columns_and_wide_shows_everything(campaigns):
    narrow = runner.invoke(cli, ["history", str(campaigns["mf"])], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0, narrow.output
    lines = narrow.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "pair" in line)
    for col in ("rnd", "#", "pair", "μ eV", "model σ", "label eV", "fidelity"):
        assert col in header
    assert "…" not in narrow.output and "dft_relax" in narrow.output
    wide = runner.invoke(cli, ["history", str(campaigns["mf"]), "--wide"], env=WIDE)
    for col in ("surface", "adsorbate", "acquisition", "value", "model σ", "reason", "mf_ei"):
        assert col in wide.output


def test_warp_start_up_noise_is_silenced_unless_debug():
    """nvalchemiops (fairchem's dependency) initialises Warp when imported, which prints the
    CUDA-driver warning from C on machines without a driver."""
    pytest.importorskip("nvalchemiops")
    code = (
        "import sys; from alloop.loop.face.quiet import silence_startup_noise; "
        "silence_startup_noise(); import nvalchemiops; print('after', file=sys.stderr)"
    )
    env = {k: v for k, v in os.environ.items() if k != "ALLOOP_DEBUG"}
    debug = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**env, "ALLOOP_DEBUG": "1"}, timeout=120)  # fmt: skip
    if "Warp CUDA warning" not in debug.stderr:
        pytest.skip("this machine has a CUDA driver: Warp prints no warning to silence")
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=120)  # fmt: skip
    assert quiet.returncode == 0
    assert quiet.stderr == "after\n"  # our own stderr still works once warp is imported
