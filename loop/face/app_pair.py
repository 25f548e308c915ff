"""The dashboard's batch and pair screens, and the pure Rich render functions behind them.

Batch: one round's picks (`explore.round_batch`) in a table, sortable (`explore.SORT_KEYS`) and
filtered with `/` (`explore.filter_rows` syntax: words, or ``surface:`` ``adsorbate:``
``fidelity:``). Pair: why it was chosen in each round that picked it, its labels by fidelity
with their provenance and placements, its escalations, the model's attention over the slab's
top layer (computed from the stored checkpoint in a worker thread), export of its best
structure with **x**.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Input, Static

from alloop.loop.face import explore, numbers
from alloop.loop.face.app import DashboardApp, Reloading, fmt
from alloop.loop.face.safe_text import plain_text, safe_rich, safe_text
from alloop.store import CampaignStore
from alloop.store.records import LabelRecord

#: a batch column's header -> the sort key a click on it chooses
SORT_BY_COLUMN = {"rank": "rank", "pair": "pair", "μ eV": "mu", "model σ": "sigma",
                  "label−μ": "error", "label(s) eV": "label", "value": "score"}  # fmt: skip
BATCH_COLUMNS = ("rank", "pair", "μ eV", "model σ", "label−μ", "label(s) eV", "fidelity",
                 "acquisition", "value", "reason")  # fmt: skip


def label_cell(row: explore.BatchRow) -> Text:
    """Every label of the pair, ``fidelity value``; the one that counts in bold."""
    if not row.labels:
        return Text("pending", style="dim")
    out = Text()
    for i, lab in enumerate(row.labels):
        if i:
            out.append(" · ")
        value = fmt(lab.gmae_ev) if lab.status == "ok" else lab.status
        style = "bold" if lab is row.counted else ("red" if lab.status != "ok" else "")
        out.append(plain_text(f"{lab.fidelity} {value}"), style=style)
    return out


def batch_cells(row: explore.BatchRow) -> tuple[Any, ...]:
    err = row.error_ev
    outside = err is not None and row.sigma_ev is not None and abs(err) > 1.96 * row.sigma_ev
    return (
        "esc." if row.rank is None else str(row.rank), safe_text(row.pair_key), fmt(row.mu_ev),
        numbers.sigma(row.sigma_ev), Text(fmt(err), style="yellow" if outside else ""),
        label_cell(row), safe_text(row.fidelity), safe_text(row.acquisition),
        numbers.acquisition_value(row.acquisition, row.score), safe_text(row.reason),
    )  # fmt: skip


class BatchScreen(Reloading):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "pair"),
        Binding("s", "sort", "sort"),
        Binding("v", "reverse", "reverse"),
        Binding("slash", "filter", "filter"),
        Binding("left_square_bracket", "step(-1)", "prev round"),
        Binding("right_square_bracket", "step(1)", "next round"),
        Binding("escape", "back", "back"),
    ]

    def __init__(self, round_index: int) -> None:
        super().__init__()
        self.round_index = round_index
        self.sort_key = explore.SORT_KEYS[0]
        self.descending = False
        self.query_text = ""
        self.rows: list[explore.BatchRow] = []
        self.shown: list[explore.BatchRow] = []
        self.round_info = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="batch-head")
        yield DataTable(id="batch", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="filter: Pt  amides  surface:Pt  adsorbate:amides  fidelity:dft",
                    id="filter")  # fmt: skip
        yield Footer()

    def load(self, campaign: str) -> None:
        with CampaignStore.open(campaign) as store:
            self.rows = explore.round_batch(store, self.round_index)
            rnd = next(r for r in store.rounds() if r.index == self.round_index)
        m = {k: explore.number(v) for k, v in rnd.metrics.items()}
        n = m.get("n_batch_scored")
        mae, cover = m.get("batch_mae_ev"), m.get("batch_coverage_95")
        self.round_info = (
            f"round {rnd.index} ({rnd.state})  ·  batch MAE "
            f"{numbers.metric(mae, n, numbers.sigma(mae))}"
            f"  ·  95% coverage {numbers.metric(cover, n, numbers.percent(cover))}"
            f"  ·  best {fmt(m.get('best_gmae_ev'))} eV"
        )
        self.redraw()

    def redraw(self) -> None:
        try:
            kept = explore.filter_rows(self.rows, self.query_text)
        except ValueError as exc:
            self.notify(plain_text(str(exc)), severity="error", markup=False)
            self.query_text, kept = "", list(self.rows)
        self.shown = explore.sort_rows(kept, self.sort_key, self.descending)
        table = self.query_one("#batch", DataTable)
        row = table.cursor_row
        table.clear(columns=not table.columns)
        if not table.columns:
            table.add_columns(*BATCH_COLUMNS)
        for i, r in enumerate(self.shown):
            table.add_row(*batch_cells(r), key=f"{i}:{r.pair_key}")
        if self.shown and row < len(self.shown):
            table.move_cursor(row=row)
        order = "descending" if self.descending else "ascending"
        shown = f"{len(self.shown)} of {len(self.rows)}" if self.query_text else len(self.rows)
        empty = "  ·  nothing picked in this round" if not self.rows else ""
        head = safe_rich(
            f"{self.round_info}\n{shown} rows  ·  sorted by {self.sort_key} ({order})"
            + (f"  ·  filter: {self.query_text}" if self.query_text else "")
            + empty
        )
        head.append("\nlabel−μ: label that counts − μ (yellow: beyond 1.96σ)  ·  enter: the pair",
                    style="dim")  # fmt: skip
        self.query_one("#batch-head", Static).update(head)

    def action_sort(self) -> None:
        keys = explore.SORT_KEYS
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self.descending = self.sort_key in explore.DESCENDING_FIRST
        self.redraw()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a sortable column's header sorts by it; again, the other way."""
        key = SORT_BY_COLUMN.get(str(event.label))
        if key is None:
            return
        if key == self.sort_key:
            self.descending = not self.descending
        else:
            self.sort_key, self.descending = key, key in explore.DESCENDING_FIRST
        self.redraw()

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self.redraw()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.value = self.query_text
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_text = event.value.strip()
        event.input.remove_class("shown")
        self.query_one("#batch", DataTable).focus()
        self.redraw()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("shown"):  # escape closes the filter box, clearing the filter
            box.remove_class("shown")
            self.query_text = ""
            self.query_one("#batch", DataTable).focus()
            self.redraw()
        else:
            self.app.pop_screen()

    def action_step(self, delta: int) -> None:
        with CampaignStore.open(self.app.campaign) as store:  # type: ignore[attr-defined]
            indices = [r.index for r in store.rounds()]
        pos = indices.index(self.round_index) + delta if self.round_index in indices else 0
        if 0 <= pos < len(indices):
            self.round_index = indices[pos]
            self.reload()

    def _open_row(self, row: int) -> None:
        if 0 <= row < len(self.shown):
            self.app.push_screen(PairScreen(self.shown[row].pair_key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._open_row(event.cursor_row)

    def action_open(self) -> None:
        self._open_row(self.query_one("#batch", DataTable).cursor_row)


# ---------------------------------------------------------------------------- the pair screen
def why_table(d: explore.PairDetail) -> RenderableType:
    """Each round that picked the pair: its rank in the batch, the acquisition value, μ, σ,
    the best label before that round and the gain the model expected (best − μ), the kriging
    believer's σ when earlier picks lowered it; then each pick's acquisition, fidelity and
    reason."""
    if not d.picks:
        return Text("never acquired (labelled outside any batch, or not yet)", style="dim")
    t = Table(
        title="why it was chosen",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        caption="best−μ > 0: the model expected a new best",
        caption_justify="left",
    )
    for col in ("round", "rank", "value", "μ eV", "model σ", "best before", "best−μ",
                "believer σ"):  # fmt: skip
        t.add_column(col, justify="right", no_wrap=True)
    for p in d.picks:
        a = p.acquisition
        believed = p.believed_sigma_ev
        t.add_row(
            str(a.round_index), f"{a.rank + 1}/{p.batch_size}",
            numbers.acquisition_value(a.acquisition, a.score), fmt(a.mu_ev),
            numbers.sigma(a.sigma_ev), fmt(p.best_before_ev), fmt(p.improvement_ev),
            "—" if believed is None else f"{numbers.sigma(a.sigma_ev)}→{numbers.sigma(believed)}",
        )  # fmt: skip
    reasons = Text()
    for p in d.picks:
        a = p.acquisition
        reasons.append(plain_text(f"round {a.round_index} ({a.acquisition}, {p.fidelity}): "),
                       style="bold")  # fmt: skip
        reasons.append(plain_text(f"{a.reason}\n"))
    return Group(t, reasons)


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def label_panel(lab: LabelRecord, counts: bool) -> Panel:
    """One label: value, status, provenance (calculator, cost, wall time, errors), then the
    placements its oracle tried with their energies and anomaly flags."""
    prov = lab.provenance
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("GMAE", f"{fmt(lab.gmae_ev)} eV  ({safe_text(lab.status)})")
    for key in ("calculator", "weights_hash", "reference_scheme", "placements_tried",
                "force_calls", "wall_s", "stop_reason", "anomaly_flags", "error", "source",
                "structure_file"):  # fmt: skip
        value = prov.get(key)
        if value in (None, "", []):
            continue
        shown = f"{value:.3g}" if key == "wall_s" and isinstance(value, float) else value
        grid.add_row(key.replace("_", " "), safe_text(_short(shown if key != "weights_hash"
                                                              else str(value)[:16])))  # fmt: skip
    grid.add_row("job", safe_text(lab.job_key or "— (added outside a job)"))
    grid.add_row("recorded", lab.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"))
    parts: list[RenderableType] = [grid]
    tried = explore.placements(lab)
    if tried:
        t = Table(title="placements tried", title_justify="left", show_edge=False)
        for col in ("#", "site", "orientation", "E_ads eV", "force calls", "wall s", "flags"):
            t.add_column(col)
        for i, p in enumerate(tried):
            flags = p.get("anomaly_flags") or []
            energy = p.get("e_ads_ev")
            t.add_row(
                str(i), safe_text(str(p.get("site_kind", p.get("config", "—")))),
                safe_text(str(p.get("orientation", "—"))),
                fmt(energy if isinstance(energy, int | float) else None),
                safe_text(str(p.get("force_calls", "—"))), fmt(p.get("wall_s"), ".1f")
                if isinstance(p.get("wall_s"), int | float) else "—",
                safe_rich(", ".join(map(str, flags)) or "—", style="yellow" if flags else ""),
            )  # fmt: skip
        parts.append(t)
    title = f"{safe_text(lab.fidelity)} label" + ("  (counts)" if counts else "")
    return Panel(Group(*parts), title=title, title_align="left",
                 border_style="green" if counts else "grey50")  # fmt: skip


def pair_renderable(d: explore.PairDetail) -> RenderableType:
    parts: list[RenderableType] = [why_table(d)]
    if d.escalations:
        t = Table(title="escalations", title_justify="left", show_edge=False)
        for col in ("round", "reason", "detail"):
            t.add_column(col)
        for e in d.escalations:
            t.add_row(str(e.round_index), safe_text(str(e.payload.get("reason", "?"))),
                      safe_text(_short(e.payload.get("detail") or "", 70)))  # fmt: skip
        parts.append(t)
    if d.labels:
        parts.extend(label_panel(lab, lab is d.counted) for lab in d.labels)
    else:
        pending = [j for j in d.jobs if j.state not in ("done", "failed")]
        parts.append(Text("no labels yet" + (f" ({len(pending)} job(s) open)" if pending
                                             else ""), style="dim"))  # fmt: skip
    return Group(*parts)


def best_structure_label(labels: Sequence[LabelRecord], counted: LabelRecord | None) -> Any:
    """The label whose best structure to export: the one that counts if it stores one, else the
    newest that does; None when none does."""
    stored = [lab for lab in labels if lab.provenance.get("best_structure")]
    if counted is not None and counted in stored:
        return counted
    return stored[-1] if stored else None


def export_best_structure(d: explore.PairDetail, out_dir: Path) -> Path | None:
    """Write the pair's best structure (`best_structure_label`) as extended XYZ into
    ``out_dir``; returns the file, or None when no label stores a structure."""
    import json

    import ase.io

    from alloop.store.structures import atoms_from_json

    lab = best_structure_label(d.labels, d.counted)
    if lab is None:
        return None
    text = lab.provenance["best_structure"]
    atoms = atoms_from_json(text if isinstance(text, str) else json.dumps(text))
    # extended XYZ holds scalar info only (e.g. not fairchem's adsorbate_info dict)
    atoms.info = {k: v for k, v in atoms.info.items() if isinstance(v, int | float | str | bool)}
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", d.pair_key)
    path = out_dir / f"{safe}-{lab.fidelity}.extxyz"
    ase.io.write(path, atoms, format="extxyz")
    return path


class PairScreen(Reloading):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "export", "export structure"),
        Binding("escape", "app.pop_screen", "back"),
    ]

    def __init__(self, pair_key: str) -> None:
        super().__init__()
        self.pair_key = pair_key
        self.detail: explore.PairDetail | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="pair-scroll"):
            yield Static(id="pair-head")
            yield Static(id="pair-body")
            yield Static("attention over the top layer: computing from the stored model…",
                         id="sitemap")  # fmt: skip
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.run_worker(self._site_map, thread=True, exclusive=True, group="sitemap")

    def load(self, campaign: str) -> None:
        with CampaignStore.open(campaign) as store:
            self.detail = d = explore.pair_detail(store, self.pair_key)
        counted = d.counted
        if counted is None:
            now = "no label yet"
        else:
            value = fmt(counted.gmae_ev) if counted.status == "ok" else counted.status
            now = f"{counted.fidelity} {value}"
        self.query_one("#pair-head", Static).update(Text.assemble(
            (plain_text(d.pair_key), "bold"), plain_text(f"   surface {d.surface_key} · "
            f"adsorbate {d.adsorbate_key} · label that counts: {now}")))  # fmt: skip
        self.query_one("#pair-body", Static).update(pair_renderable(d))

    def _site_map(self) -> None:
        from alloop.loop.face.model_view import render_site_map, site_map

        app: DashboardApp = self.app  # type: ignore[assignment]
        try:
            found = site_map(app.campaign, self.pair_key)
            shown: RenderableType = (
                Text("no model stored yet (cold start only): no attention to show", style="dim")
                if found is None else Panel(
                    render_site_map(found), title_align="left",
                    title=f"attention of the round-{found.round_index} model over the top layer"
                    + ("" if found.stored else " (recomputed)"),
                )
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - shown on the screen, the app keeps going
            shown = safe_rich(f"cannot compute the attention: {str(exc).splitlines()[0]}",
                              style="red")  # fmt: skip
        self.app.call_from_thread(self._show_site_map, shown)

    def _show_site_map(self, shown: RenderableType) -> None:
        if self.is_attached:  # else the user left the screen while the model was loading
            self.query_one("#sitemap", Static).update(shown)

    def action_export(self) -> None:
        if self.detail is None:
            return
        app: DashboardApp = self.app  # type: ignore[assignment]
        try:
            path = export_best_structure(self.detail, app.export_dir)
        except OSError as exc:
            self.notify(plain_text(f"cannot write: {exc}"), severity="error", markup=False)
            return
        if path is None:
            self.notify("no label of this pair stores a structure (replay labels carry none)",
                        severity="warning")  # fmt: skip
        else:
            self.notify(plain_text(f"wrote {path}"), markup=False)
