"""`alloop dashboard`: an interactive terminal app (Textual) over one campaign file.

Screens (keys in the footer): **o** overview (the Rich frame of `dashboard.render_static`),
**r** rounds → **enter** a round's batch (sort **s**, reverse **v**, filter **/**, rounds
**[ ]**) → **enter** a pair (why it was chosen, labels with provenance, the model's attention
over the slab, export **x**), **p** plots (learning curves, coverage, μ/σ of the pool),
**escape** back, **q** quit. Every `refresh_s` seconds (and on **ctrl+r**) the screen on top
re-reads the campaign: a read-only connection, so a run writing the file in another process
(SQLite WAL) shows up as it goes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy.exc import SQLAlchemyError
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from alloop.loop.errors import LoopError
from alloop.loop.face import explore, numbers, plots
from alloop.loop.face.dashboard import DEFAULT_REFRESH_S, render_static, snapshot
from alloop.loop.face.safe_text import plain_text, safe_text
from alloop.store import CampaignStore
from alloop.store.errors import StoreError


def fmt(x: float | None, spec: str = "+.3f") -> str:
    """An energy by `numbers.ev` (the default), other quantities by ``spec``."""
    if spec == "+.3f":
        return numbers.ev(x)
    return numbers.MISSING if x is None else format(x, spec)


class Reloading(Screen[None]):
    """A screen that re-reads the campaign in `load` (on mount and on every app refresh)."""

    #: set once the first load ran: the app's timer leaves a screen still mounting alone
    ready = False

    def on_mount(self) -> None:
        self.reload()
        self.ready = True

    def reload(self) -> None:
        app: DashboardApp = self.app  # type: ignore[assignment]
        try:
            self.load(app.campaign)
        except (StoreError, LoopError, OSError, sqlite3.Error, SQLAlchemyError) as exc:
            # e.g. the file went away or was damaged: said on top, the app keeps going
            app.sub_title = plain_text(f"cannot read the campaign: {str(exc).splitlines()[0]}")
        else:
            app.sub_title = plain_text(app.campaign)

    def load(self, campaign: str) -> None:  # pragma: no cover - every screen overrides
        raise NotImplementedError


class OverviewScreen(Reloading):
    """Rounds, the current batch, labels by fidelity and status, jobs, best pairs, cost spent,
    escalations: the frame `alloop dashboard --once` prints."""

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="overview-scroll"):
            yield Static(id="overview")
        yield Footer()

    def load(self, campaign: str) -> None:
        self.snap = snapshot(campaign)
        self._draw()

    def _draw(self) -> None:
        # the scrollbar takes two columns
        frame = render_static(self.snap, width=self.app.size.width - 2)
        self.query_one("#overview", Static).update(frame)

    def on_resize(self) -> None:
        if hasattr(self, "snap"):
            self._draw()


class RoundsScreen(Reloading):
    """Every round with its state, timings and metrics; enter opens its batch."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "batch", show=True),
        Binding("escape", "app.pop_screen", "back"),
    ]
    COLUMNS = ("#", "state", "picked", "acquisition", "labels", "cost", "val MAE", "batch MAE",
               "95% cov.", "best eV", "started", "wall s", "train s", "label s")  # fmt: skip

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("rounds — enter: the round's batch", classes="title")
        yield DataTable(id="rounds", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def load(self, campaign: str) -> None:
        with CampaignStore.open(campaign) as store:
            rounds = store.rounds()
            picked: dict[int, list[str]] = {}
            for a in store.acquisitions():
                picked.setdefault(a.round_index, []).append(a.acquisition)
        table = self.query_one("#rounds", DataTable)
        row = table.cursor_row
        table.clear(columns=not table.columns)
        if not table.columns:
            table.add_columns(*self.COLUMNS)
        for r in rounds:
            m, t = r.metrics, r.metrics.get("timing", {})
            end = r.finished_at or r.updated_at
            names = picked.get(r.index, [])
            table.add_row(
                str(r.index), safe_text(r.state), str(len(names)),
                safe_text("+".join(dict.fromkeys(names)) or "—"),
                fmt(explore.number(m.get("n_labels")), ".0f"),
                fmt(explore.number(m.get("cost_total")), ",.0f"),
                numbers.metric(m.get("val_mae_ev"), m.get("n_val_labels"),
                               numbers.sigma(m.get("val_mae_ev"))),
                numbers.metric(m.get("batch_mae_ev"), m.get("n_batch_scored"),
                               numbers.sigma(m.get("batch_mae_ev"))),
                numbers.metric(m.get("batch_coverage_95"), m.get("n_batch_scored"),
                               numbers.percent(m.get("batch_coverage_95"))),
                fmt(explore.number(m.get("best_gmae_ev"))), r.started_at.strftime("%H:%M:%S"),
                f"{(end - r.started_at).total_seconds():.1f}", fmt(t.get("train_s"), ".1f"),
                fmt(t.get("label_s"), ".1f"), key=str(r.index),
            )  # fmt: skip
        title = "rounds — enter: the round's batch" if rounds else "rounds — none yet"
        self.query_one(".title", Static).update(title)
        if rounds and row < len(rounds):
            table.move_cursor(row=row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from alloop.loop.face.app_pair import BatchScreen

        self.app.push_screen(BatchScreen(int(str(event.row_key.value))))

    def action_open(self) -> None:
        table = self.query_one("#rounds", DataTable)
        if table.row_count:
            from alloop.loop.face.app_pair import BatchScreen

            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
            self.app.push_screen(BatchScreen(int(str(key.value))))


class PlotsScreen(Reloading):
    """Learning curves from the round metrics; μ/σ of the last scored pool (recomputed from the
    stored model in a worker thread)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "tab('errors')", "errors"),
        Binding("2", "tab('best')", "best GMAE"),
        Binding("3", "tab('coverage')", "coverage"),
        Binding("4", "tab('pool')", "pool μ/σ"),
        Binding("escape", "app.pop_screen", "back"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="errors"):
            with TabPane("1 errors", id="errors"):
                yield PlotextPlot(id="plot-errors")
            with TabPane("2 best GMAE", id="best"), Horizontal():
                yield PlotextPlot(id="plot-best-labels")
                yield PlotextPlot(id="plot-best-cost")
            with TabPane("3 coverage", id="coverage"):
                yield PlotextPlot(id="plot-coverage")
            with TabPane("4 pool μ/σ", id="pool"):
                yield PlotextPlot(id="plot-pool")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        plots.draw_pool(self.query_one("#plot-pool", PlotextPlot).plt, None, "scoring the pool…")
        self.run_worker(self._score_pool, thread=True, exclusive=True, group="pool")

    def _score_pool(self) -> None:
        from alloop.loop.face.model_view import pool_scores

        app: DashboardApp = self.app  # type: ignore[assignment]
        try:
            scores = pool_scores(app.campaign)
            why = "no model stored yet (cold start only)"
        except Exception as exc:  # noqa: BLE001 - shown in the plot, the app keeps going
            scores, why = None, plain_text(f"cannot score the pool: {str(exc).splitlines()[0]}")
        self.app.call_from_thread(self._show_pool, scores, why)

    def _show_pool(self, scores: Any, why: str) -> None:
        if not self.is_attached:  # the user left the screen while the pool was scored
            return
        plot = self.query_one("#plot-pool", PlotextPlot)
        plots.draw_pool(plot.plt, scores, why)
        plot.refresh()

    def load(self, campaign: str) -> None:
        with CampaignStore.open(campaign) as store:
            curves = explore.curves(store.rounds())
        drawings = {
            "#plot-errors": lambda p: plots.draw_errors(p, curves),
            "#plot-best-labels": lambda p: plots.draw_best(p, curves, "labels"),
            "#plot-best-cost": lambda p: plots.draw_best(p, curves, "cost"),
            "#plot-coverage": lambda p: plots.draw_coverage(p, curves),
        }
        for wid, draw in drawings.items():
            plot = self.query_one(wid, PlotextPlot)
            draw(plot.plt)
            plot.refresh()

    def action_tab(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane


class DashboardApp(App[None]):
    """The interactive dashboard of one campaign (module docstring)."""

    TITLE = "alloop dashboard"
    CSS = """
    .title { padding: 0 1; text-style: bold; }
    #batch-head, #pair-head { padding: 0 1; }
    #filter { dock: bottom; display: none; }
    #filter.shown { display: block; }
    DataTable { height: 1fr; }
    TabPane { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "overview", "overview"),
        Binding("r", "rounds", "rounds"),
        Binding("p", "plots", "plots"),
        Binding("ctrl+r", "reload", "refresh"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self,
        campaign: str,
        refresh_s: float = DEFAULT_REFRESH_S,
        export_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.campaign = campaign
        self.refresh_s = refresh_s
        self.export_dir = export_dir or Path.cwd()

    def on_mount(self) -> None:
        self.sub_title = plain_text(self.campaign)
        self.push_screen(OverviewScreen())
        self.set_interval(self.refresh_s, self.action_reload)

    def action_reload(self) -> None:
        if isinstance(self.screen, Reloading) and self.screen.ready:
            # the timer may fire while the screen's widgets are being removed (the app
            # closing): then there is nothing left to redraw
            with contextlib.suppress(NoMatches):
                self.screen.reload()

    def _to_base(self) -> None:
        while len(self.screen_stack) > 2:  # [default, overview, ...]
            self.pop_screen()

    def action_overview(self) -> None:
        self._to_base()
        self.action_reload()

    def action_rounds(self) -> None:
        if not isinstance(self.screen, RoundsScreen):
            self._to_base()
            self.push_screen(RoundsScreen())

    def action_plots(self) -> None:
        if not isinstance(self.screen, PlotsScreen):
            self._to_base()
            self.push_screen(PlotsScreen())

    async def action_pop_screen(self) -> None:
        if len(self.screen_stack) > 2:
            self.pop_screen()
