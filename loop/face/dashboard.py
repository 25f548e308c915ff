"""The overview frame of `alloop dashboard`: everything at a glance, from the campaign file.

`snapshot` reads everything the frame shows in one read-only pass (WAL lets it read while a
run writes); `render_static` is a pure function from that snapshot to Rich renderables. The
CLI prints one frame with `--once` or when its output is not a terminal; the interactive app
(`alloop.loop.face.app`) shows the same frame as its overview screen and re-reads the campaign
every `DEFAULT_REFRESH_S` seconds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from alloop.loop.agent.labels import labels_that_count
from alloop.loop.face import numbers
from alloop.loop.face.answers import Answers, campaign_answers
from alloop.loop.face.commands import campaign_costs, status_of
from alloop.loop.face.safe_text import safe_text
from alloop.loop.face.standing import Standing, lock_holder, standing_of
from alloop.loop.face.views import budget_line, cost_line, standing_line, strongest_table
from alloop.store import CampaignStore
from alloop.store.records import (
    AcquisitionRecord,
    CampaignStatus,
    EventRecord,
    LabelSummary,
    RoundRecord,
)

#: seconds between two reads of the campaign by the interactive dashboard (at most 2: a run
#: in another process shows up within that)
DEFAULT_REFRESH_S = 2.0


@dataclass(frozen=True)
class Snapshot:
    where: str
    status: CampaignStatus
    rounds: tuple[RoundRecord, ...]
    batch: tuple[AcquisitionRecord, ...]
    labels: dict[str, LabelSummary]  # the label that counts per pair, without provenance
    escalations: tuple[EventRecord, ...]
    costs: dict[str, float]
    standing: Standing | None = None
    answers: Answers | None = None  # strongest first (DFT level in a multi-fidelity campaign)


def snapshot(campaign: str) -> Snapshot:
    holder = lock_holder(campaign)
    with CampaignStore.open(campaign) as store:
        rounds = tuple(store.rounds())
        batch = tuple(store.acquisitions(round_index=rounds[-1].index)) if rounds else ()
        labels = labels_that_count(store.label_summaries(), strict=False)
        events = store.events()
        escalations = tuple(e for e in events if e.kind == "escalated")
        costs = campaign_costs(store)
        answers = campaign_answers(store)
        status = status_of(store, answers=answers)
        standing = standing_of(store, holder, events)
        return Snapshot(campaign, status, rounds, batch, labels, escalations, costs, standing,
                        answers)  # fmt: skip


def _f(x: object) -> str:
    return numbers.ev(x)


def rounds_table(snap: Snapshot) -> Table:
    t = Table(title="rounds", expand=True)
    cols = ("#", "state", "wall s", "labels", "cost", "val MAE", "batch MAE", "95% cov.", "best eV")
    for col in cols:
        t.add_column(col, justify="left" if col == "state" else "right", no_wrap=True)
    for r in snap.rounds[-12:]:
        m = r.metrics
        end = r.finished_at or r.updated_at
        n_val, n_batch = m.get("n_val_labels"), m.get("n_batch_scored")
        t.add_row(
            str(r.index), safe_text(r.state), numbers.seconds((end - r.started_at).total_seconds()),
            numbers.count(m.get("n_labels")), numbers.cost(m.get("cost_total")),
            numbers.metric(m.get("val_mae_ev"), n_val, numbers.sigma(m.get("val_mae_ev"))),
            numbers.metric(m.get("batch_mae_ev"), n_batch, numbers.sigma(m.get("batch_mae_ev"))),
            numbers.metric(m.get("batch_coverage_95"), n_batch,
                           numbers.percent(m.get("batch_coverage_95"))),
            numbers.ev(m.get("best_gmae_ev")),
        )  # fmt: skip
    t.caption = f"MAE and coverage from fewer than {numbers.MIN_METRIC_VALUES} labels carry (n=…)"
    return t


def batch_table(snap: Snapshot) -> Table:
    index = snap.rounds[-1].index if snap.rounds else "—"
    t = Table(title=f"current batch (round {index})", expand=True)
    for col in ("rank", "pair", "μ eV", "model σ", "value", "label eV (fidelity)"):
        t.add_column(col, justify="left" if col == "pair" else "right")
    for a in snap.batch[:15]:
        lab = snap.labels.get(a.pair_key)
        value = "" if lab is None else (_f(lab.gmae_ev) if lab.status == "ok" else lab.status)
        shown = "pending" if lab is None else f"{value} {lab.fidelity}"
        t.add_row(str(a.rank), safe_text(a.pair_key), _f(a.mu_ev), numbers.sigma(a.sigma_ev),
                  numbers.acquisition_value(a.acquisition, a.score), safe_text(shown))  # fmt: skip
    return t


def counts_table(snap: Snapshot) -> Table:
    t = Table(title="labels and jobs", expand=True)
    t.add_column("what")
    t.add_column("count", justify="right")
    for (fid, st), n in sorted(snap.status.labels_by_fidelity_status.items()):
        t.add_row(safe_text(f"label {fid}/{st}"), str(n))
    for state, n in sorted(snap.status.jobs_by_state.items()):
        t.add_row(safe_text(f"job {state}"), str(n))
    return t


def best_table(snap: Snapshot) -> Table:
    """The strongest answers (`views.strongest_table`: at DFT level in a multi-fidelity
    campaign, predicted ones marked)."""
    if snap.answers is not None:
        return strongest_table(snap.answers, len(snap.status.best), expand=True, show_edge=True)
    t = Table(title="strongest binding so far", expand=True)
    for col in ("pair", "GMAE eV", "fidelity"):
        t.add_column(col)
    for key, gmae, fid in snap.status.best:
        t.add_row(safe_text(key), _f(gmae), safe_text(fid))
    return t


def escalations_table(snap: Snapshot) -> Table:
    t = Table(title="escalations", expand=True)
    for col in ("round", "pair", "reason", "value/cost"):
        t.add_column(col)
    reasons = Counter(str(e.payload.get("reason", "?")) for e in snap.escalations)
    for e in snap.escalations[-8:]:
        value, cost = e.payload.get("value"), e.payload.get("cost")
        priced = numbers.MISSING
        if isinstance(value, float) and cost:
            priced = f"{numbers.ev(value)}/{numbers.cost(cost)}"
        t.add_row(str(e.round_index), safe_text(str(e.payload.get("pair", ""))),
                  safe_text(str(e.payload.get("reason"))), priced)  # fmt: skip
    if not snap.escalations:
        t.add_row("—", "none yet", "")
    t.caption = safe_text(", ".join(f"{k}: {n}" for k, n in reasons.items())) or None
    return t


def _head(snap: Snapshot) -> str:
    s = snap.status
    head = (
        f"[bold]{safe_text(s.name)}[/]  {safe_text(snap.where)}  ·  {s.n_pairs} pairs  ·  "
        f"{s.n_labelled_pairs} labelled  ·  {s.n_rounds} rounds  ·  "
        f"cost {safe_text(cost_line(snap.costs))}"
    )
    if snap.standing is not None:  # stored text (the stop detail): escaped, never markup
        st = snap.standing
        head += f"\n{safe_text(standing_line(st))}\nbudget: {budget_line(st.budget)}"
        if st.all_failed:
            head += f"\n[bold red]failed:[/] {safe_text(st.all_failed)}"
    return head


#: below this many columns the overview stacks its tables instead of two side by side
STACK_BELOW_COLUMNS = 120


def render_static(snap: Snapshot, width: int | None = None) -> Group:
    """One frame at its natural height (for `--once`, output that is not a terminal, and the
    interactive overview): two columns of tables, stacked into one below
    `STACK_BELOW_COLUMNS` columns of ``width``."""
    left = (rounds_table(snap), batch_table(snap))
    right = (counts_table(snap), best_table(snap), escalations_table(snap))
    if width is not None and width < STACK_BELOW_COLUMNS:
        return Group(Panel(_head(snap)), *left, *right)
    grid = Table.grid(expand=True, padding=(0, 1))
    grid.add_column(ratio=3)
    grid.add_column(ratio=2)
    grid.add_row(Group(*left), Group(*right))
    return Group(Panel(_head(snap)), grid)
