"""Rich renderables built from store records by pure functions (no I/O, no console)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from alloop.loop.face import numbers
from alloop.loop.face.answers import PREDICTED, Answers
from alloop.loop.face.commands import HistoryRow, TopSites
from alloop.loop.face.decisions import Decision, PairDecisions
from alloop.loop.face.safe_text import safe_rich, safe_text
from alloop.loop.face.standing import BudgetUse, Standing
from alloop.store.records import AcquisitionRecord, CampaignStatus, LabelRecord, LabelSummary


def _ev(x: float | None) -> str:
    return numbers.ev(x)


def chosen_with(a: AcquisitionRecord) -> str:
    """What a pick was chosen with, from the acquisition's stored fields (never its reason
    text): value, expected improvement and its threshold, the believer's σ, the fidelity and
    cost asked for; "—" for a row written before these were stored. Plain text: show it
    through `safe_rich` (`acquisition_facts`), as every stored string."""
    parts = []
    if a.value is not None:
        parts.append(f"value {a.value:.4g}")
    if a.ei_ev is not None:
        below = "" if a.threshold_ev is None else f" below {a.threshold_ev:+.3f} eV"
        parts.append(f"EI {a.ei_ev:.3g} eV{below}")
    if a.believer_sigma_ev is not None:
        parts.append(f"believer σ {numbers.sigma(a.believer_sigma_ev)}")
    if a.fidelity is not None:
        parts.append(a.fidelity + ("" if a.cost is None else f", cost {a.cost:g}"))
    return " · ".join(parts) or numbers.MISSING


def acquisition_facts(a: AcquisitionRecord) -> Text:
    """`chosen_with` as a `Text` through `safe_rich`: a stored string is shown as data, never
    as markup."""
    return safe_rich(chosen_with(a))


def cost_line(costs: Mapping[str, float]) -> str:
    """``1,234 units (mlip 234, dft_relax 1,000)``: what the oracle jobs cost."""
    parts = ", ".join(f"{kind} {numbers.cost(value)}" for kind, value in sorted(costs.items()))
    return f"{numbers.cost(sum(costs.values()))} units ({parts})" if costs else "nothing yet"


def budget_line(budget: Sequence[BudgetUse]) -> str:
    """``cost 120 of 500 units · labels 30 (no limit) · rounds 3 of 3``."""
    parts = []
    for b in budget:
        unit = " units" if b.what == "cost" else ""
        used = numbers.cost(b.used)
        if b.allowed is None:
            parts.append(f"{b.what} {used}{unit} (no limit)")
        else:
            parts.append(f"{b.what} {used} of {numbers.cost(b.allowed)}{unit}")
    return " · ".join(parts)


def standing_line(standing: Standing) -> str:
    """``finished — MAX_ROUNDS: 3 rounds completed of 3``."""
    return f"{standing.state} — {standing.detail}"


def metrics_line(metrics: Mapping[str, object]) -> str | None:
    """A round's model metrics, each with its size when small (`numbers.metric`):
    ``val MAE 0.015 eV (n=1) · batch MAE 0.409 eV (n=4) · 95% coverage 20% (n=4)``."""
    n_val, n_batch = metrics.get("n_val_labels"), metrics.get("n_batch_scored")
    parts = [
        (name, numbers.metric(metrics.get(key), n, show(metrics.get(key))))
        for name, key, n, show in (
            ("val MAE", "val_mae_ev", n_val, lambda x: numbers.sigma(x) + " eV"),
            ("batch MAE", "batch_mae_ev", n_batch, lambda x: numbers.sigma(x) + " eV"),
            ("95% coverage", "batch_coverage_95", n_batch, numbers.percent),
        )
    ]
    shown = [f"{name} {text}" for name, text in parts if text != numbers.MISSING]
    return " · ".join(shown) or None


def strongest_table(answers: Answers, n: int, **table: Any) -> Table:
    """The ``n`` strongest answers (`answers.campaign_answers`). Multi-fidelity: at DFT level,
    each row's source (the DFT label's fidelity, or "predicted": the model's DFT-level μ ± σ
    for a pair with only an MLIP label) and that MLIP label beside it, never ranked."""
    if not answers.multi_fidelity:
        t = Table(title="strongest binding so far", **{"show_edge": False, **table})
        for col in ("pair", "GMAE (eV)", "fidelity"):
            t.add_column(col)
        for a in answers.rows[:n]:
            t.add_row(safe_text(a.pair_key), _ev(a.value_ev), safe_text(a.source))
        return t
    t = Table(title="strongest binding so far (DFT level)", **{"show_edge": False, **table})
    for col, just in (("pair", "left"), ("GMAE (eV)", "right"), ("± σ", "right"),
                      ("fidelity", "left"), ("MLIP label", "right")):  # fmt: skip
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for a in answers.rows[:n]:
        t.add_row(safe_text(a.pair_key), _ev(a.value_ev),
                  "" if a.sigma_ev is None else numbers.sigma(a.sigma_ev), safe_text(a.source),
                  _ev(a.mlip_ev))  # fmt: skip
    notes = []
    if any(a.predicted for a in answers.rows[:n]):
        notes.append(f"{PREDICTED}: the model's DFT-level μ ± σ (round {answers.model_round}'s "
                     "ensemble) of a pair with only an MLIP label")  # fmt: skip
    if answers.unranked:
        notes.append(f"{answers.unranked} pairs with only an MLIP label are not ranked: no "
                     "model is stored yet to put them at DFT level")  # fmt: skip
    t.caption = "; ".join(notes) or None
    return t


def status_panel(
    status: CampaignStatus,
    where: str,
    costs: Mapping[str, float] | None = None,
    standing: Standing | None = None,
    answers: Answers | None = None,
) -> Panel:
    pool = Table.grid(padding=(0, 2))
    pool.add_column(style="bold")
    pool.add_column()
    pool.add_row("campaign", f"{safe_text(status.name)}  (seed {status.seed})")
    pool.add_row("file", safe_text(where))
    if standing is not None:  # stored text as Text: data, never markup
        pool.add_row("state", safe_rich(standing_line(standing)))
        pool.add_row("budget", budget_line(standing.budget))
        if standing.all_failed:
            pool.add_row("[bold red]failed[/]", safe_rich(standing.all_failed))
    pool.add_row(
        "pool",
        f"{status.n_surfaces} surfaces × {status.n_adsorbates} adsorbates = {status.n_pairs} pairs",
    )
    pool.add_row("labelled", f"{status.n_labelled_pairs} pairs with an ok label")
    if costs is not None:
        pool.add_row("cost spent", safe_text(cost_line(costs)))
    last = status.last_round
    pool.add_row(
        "rounds",
        f"{status.n_rounds}"
        + (f" (last: #{last.index}, {safe_text(last.state)})" if last else " (none yet)"),
    )
    model = metrics_line(last.metrics) if last else None
    if model:
        pool.add_row("model", model)
    labels = Table(title="labels", show_edge=False)
    for col in ("fidelity", "status", "count"):
        labels.add_column(col, justify="right" if col == "count" else "left")
    for (fid, st), n in sorted(status.labels_by_fidelity_status.items()):
        labels.add_row(safe_text(fid), safe_text(st), str(n))
    jobs = Table(title="oracle jobs", show_edge=False)
    jobs.add_column("state")
    jobs.add_column("count", justify="right")
    for state, n in sorted(status.jobs_by_state.items()):
        jobs.add_row(safe_text(state), str(n))
    best = strongest_table(answers, len(status.best)) if answers is not None else None
    if best is None:
        best = Table(title="strongest binding so far", show_edge=False)
        for col in ("pair", "GMAE (eV)", "fidelity"):
            best.add_column(col)
        for key, gmae, fid in status.best:
            best.add_row(safe_text(key), _ev(gmae), safe_text(fid))
    parts: list[object] = [pool]
    if status.labels_by_fidelity_status:
        parts.append(labels)
    if status.jobs_by_state:
        parts.append(jobs)
    if status.best or (answers is not None and answers.unranked):
        parts.append(best)
    return Panel(Group(*parts), title="alloop status", expand=False)  # type: ignore[arg-type]


#: every column of the acquisition history (`--wide`, `--format tsv|csv`), with its justify;
#: "value" is the acquisition value with the sign its reason states (`numbers.acquisition_value`);
#: "label (eV)" and "fidelity" are the label the pick bought, "counts now" the label its pair
#: counts today (a later DFT label belongs to the round that bought it)
HISTORY_COLUMNS = (
    ("round", "right"), ("rank", "right"), ("surface", "left"), ("adsorbate", "left"),
    ("acquisition", "left"), ("value", "right"), ("μ (eV)", "right"), ("model σ (eV)", "right"),
    ("label (eV)", "right"), ("fidelity", "left"), ("counts now", "left"),
    ("chosen with", "left"), ("reason", "left"),
)  # fmt: skip
#: the narrow history (80 columns): indices into `HISTORY_COLUMNS`' cells, and the headers
NARROW_HISTORY = ((0, "rnd"), (1, "#"), (None, "pair"), (6, "μ eV"), (7, "model σ"),
                  (8, "label eV"), (9, "fidelity"))  # fmt: skip
BELIEVER_NOTE = (
    "model σ: the ensemble's; chosen with: the stored facts of the pick, under "
    "kriging_believer diversity the believer σ (conditioned on the picks before it)"
)


def _label_text(lab: LabelSummary | None) -> str:
    if lab is None:
        return "pending"
    return numbers.ev(lab.gmae_ev) if lab.status == "ok" else lab.status


def history_cells(row: HistoryRow) -> list[str]:
    """One acquisition as plain strings, in `HISTORY_COLUMNS` order (numbers by `numbers`)."""
    a, lab, now = row.acquisition, row.label, row.counted
    fidelity = lab.fidelity if lab is not None else (a.fidelity or "")
    counts_now = "" if now is None else f"{_label_text(now)} {now.fidelity}"
    return [
        numbers.count(a.round_index), numbers.count(a.rank), a.surface_key, a.adsorbate_key,
        a.acquisition, numbers.acquisition_value(a.acquisition, a.score), numbers.ev(a.mu_ev),
        numbers.sigma(a.sigma_ev), _label_text(lab), fidelity, counts_now, chosen_with(a),
        a.reason,
    ]  # fmt: skip


def history_table(rows: Sequence[HistoryRow], wide: bool = False) -> Table:
    """The acquisition history. Narrow (the default) fits 80 columns: round, rank, pair, μ,
    model σ, the label the pick bought and its fidelity; ``wide`` has every `HISTORY_COLUMNS`
    (the acquisition, its value, the label its pair counts now, what it was chosen with from
    stored fields, the reason)."""
    table = Table(title="acquisition history", box=box.SIMPLE_HEAD if not wide else box.HEAVY_HEAD,
                  pad_edge=wide, show_lines=False)  # fmt: skip
    justify = dict(HISTORY_COLUMNS)
    if wide:
        cols = list(HISTORY_COLUMNS)
    else:
        cols = [(name, justify[HISTORY_COLUMNS[i][0]] if i is not None else "left")
                for i, name in NARROW_HISTORY]  # fmt: skip
    for col, just in cols:
        # narrow: one line per pick (only a long pair key folds); wide: every cell folds
        # rather than lose its end to an ellipsis in a terminal too narrow for it
        table.add_column(col, justify=just, no_wrap=not wide and col != "pair",  # type: ignore[arg-type]
                         overflow="fold")  # fmt: skip
    for row in rows:
        cells = [safe_rich(c) for c in history_cells(row)]  # stored text: data, never markup
        if wide:
            table.add_row(*cells)
        else:
            pair = safe_rich(row.acquisition.pair_key)
            table.add_row(*[cells[i] if i is not None else pair for i, _ in NARROW_HISTORY])
    narrow = ("label: the one the pick bought; --wide: acquisition, value, the label that "
              "counts now, chosen with, reason")  # fmt: skip
    table.caption = BELIEVER_NOTE if wide else narrow
    return table


def history_delimited(rows: Sequence[HistoryRow], delimiter: str) -> str:
    """The history as TSV or CSV: a header, then one line per acquisition, every column."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow([name for name, _ in HISTORY_COLUMNS])
    for row in rows:
        cells = ["" if c == numbers.MISSING else " ".join(c.split()) for c in history_cells(row)]
        writer.writerow(cells)
    return buf.getvalue()


def top_sites_table(top: Sequence[TopSites]) -> Table:
    """Per acquisition, the slab atoms the surrogate's attention scored highest."""
    table = Table(title="top-scored slab atoms (surrogate attention)", show_edge=False)
    for col in ("round", "atoms: index element score"):
        table.add_column(col)
    for t in top:
        atoms = ", ".join(f"{i} {el} {score:.3f}" for i, el, score in t.atoms)
        table.add_row(str(t.round_index), safe_text(atoms))
    return table


#: the mark of the label that counts (`labels_that_count`) in `show`
COUNTS_MARK = "✓ counts"


def bought_text(d: Decision, counted: LabelRecord | None) -> str:
    """What a decision bought: ``-1.692 dft_relax ✓ counts``, a failed label's status, the
    state of a job with no result yet, or "—" when it made no job."""
    lab = d.label
    if lab is None:
        return numbers.MISSING if d.job is None else d.job.state.lower()
    shown = numbers.ev(lab.gmae_ev) if lab.status == "ok" else lab.status
    counts = counted is not None and lab.id == counted.id
    return f"{shown} {lab.fidelity}" + (f" {COUNTS_MARK}" if counts else "")


def decisions_table(decided: PairDecisions) -> Table:
    """Every acquisition and escalation of a pair: round, what was decided and its reason
    code, the fidelity asked for, the value (before cost weighting) and cost, what it bought
    (the label that counts marked), and why in words."""
    t = Table(title="decisions (acquisitions and escalations)", show_edge=False)
    for col, just in (("round", "right"), ("decision", "left"), ("code", "left"),
                      ("fidelity", "left"), ("value", "right"), ("cost", "right"),
                      ("label bought (eV)", "left"), ("why", "left")):  # fmt: skip
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for d in decided.decisions:
        value = numbers.acquisition_value(d.value_of, d.value)
        t.add_row(
            numbers.count(d.round_index), d.action, safe_rich(d.code),
            safe_rich(d.fidelity or numbers.MISSING), value, numbers.cost(d.cost),
            safe_rich(bought_text(d, decided.counted)), safe_rich(d.detail),
        )  # fmt: skip
    return t


def pair_panel(
    pair: str,
    acquisitions: Sequence[AcquisitionRecord],
    labels: Sequence[LabelRecord],
    top_sites: Sequence[TopSites] = (),
    decided: PairDecisions | None = None,
) -> Panel:
    """`alloop show`: the pair's decisions (`decisions_table`), what each pick was chosen
    with, the attention's top atoms, its labels (the one that counts marked) and their
    provenance."""
    acq = Table(title="what each pick was chosen with", show_edge=False, caption=BELIEVER_NOTE)
    for col in ("round", "rank", "acquisition", "μ (eV)", "model σ (eV)", "chosen with"):
        acq.add_column(col)
    for a in acquisitions:
        acq.add_row(
            numbers.count(a.round_index), numbers.count(a.rank), safe_rich(a.acquisition),
            _ev(a.mu_ev), numbers.sigma(a.sigma_ev), acquisition_facts(a),
        )  # fmt: skip
    counted = decided.counted if decided is not None else None
    labs = Table(title="labels", show_edge=False)
    for col in ("GMAE (eV)", "status", "fidelity", "job", "counts"):
        labs.add_column(col)
    for lab in labels:
        mark = "✓" if counted is not None and lab.id == counted.id else ""
        labs.add_row(_ev(lab.gmae_ev), safe_text(lab.status), safe_text(lab.fidelity),
                     safe_text(lab.job_key or "—"), mark)  # fmt: skip
    parts: list[object] = []
    if decided is not None and decided.decisions:
        parts.append(decisions_table(decided))
    parts.append(acq if acquisitions else "never acquired")
    if top_sites:
        parts.append(top_sites_table(top_sites))
    parts.append(labs if labels else "no labels yet")
    for lab in labels:  # scalar provenance; the full JSON is in `alloop export`
        prov = Table.grid(padding=(0, 2))
        prov.add_column(style="bold")
        prov.add_column()
        for key, value in lab.provenance.items():
            if isinstance(value, str | int | float | bool) and key != "best_structure":
                prov.add_row(safe_text(key), safe_text(str(value)[:80]))
        counts = " (counts)" if counted is not None and lab.id == counted.id else ""
        title = f"provenance of the {safe_text(lab.fidelity)} label{counts}"
        parts.append(Panel(prov, title=title, expand=False))
    return Panel(Group(*parts), title=safe_text(pair), expand=False)  # type: ignore[arg-type]
