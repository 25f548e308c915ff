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
from alloop.loop.face.commands import campaign_costs, status_of
from alloop.loop.face.views import cost_line
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


def snapshot(campaign: str) -> Snapshot:
    with CampaignStore.open(campaign) as store:
        rounds = tuple(store.rounds())
        batch = tuple(store.acquisitions(round_index=rounds[-1].index)) if rounds else ()
        labels = labels_that_count(store.label_summaries())
        escalations = tuple(e for e in store.events() if e.kind == "escalated")
        costs = campaign_costs(store)
        status = status_of(store)
        return Snapshot(campaign, status, rounds, batch, labels, escalations, costs)


def _f(x: object, fmt: str = "+.3f") -> str:
    return "—" if not isinstance(x, int | float) else format(x, fmt)


def rounds_table(snap: Snapshot) -> Table:
    t = Table(title="rounds", expand=True)
    cols = ("#", "state", "wall s", "labels", "cost", "val MAE", "batch MAE", "95% cov.", "best eV")
    for col in cols:
        t.add_column(col, justify="left" if col == "state" else "right")
    for r in snap.rounds[-12:]:
        m = r.metrics
        end = r.finished_at or r.updated_at
        t.add_row(
            str(r.index), r.state, f"{(end - r.started_at).total_seconds():.1f}",
            _f(m.get("n_labels"), "d"), _f(m.get("cost_total"), ",.0f"),
            _f(m.get("val_mae_ev"), ".3f"),
            _f(m.get("batch_mae_ev"), ".3f"), _f(m.get("batch_coverage_95"), ".0%"),
            _f(m.get("best_gmae_ev")),
        )  # fmt: skip
    return t


def batch_table(snap: Snapshot) -> Table:
    index = snap.rounds[-1].index if snap.rounds else "—"
    t = Table(title=f"current batch (round {index})", expand=True)
    for col in ("rank", "pair", "μ eV", "σ eV", "score", "label eV"):
        t.add_column(col, justify="left" if col == "pair" else "right")
    for a in snap.batch[:15]:
        lab = snap.labels.get(a.pair_key)
        shown = (
            "pending" if lab is None else (_f(lab.gmae_ev) if lab.status == "ok" else lab.status)
        )
        t.add_row(str(a.rank), a.pair_key, _f(a.mu_ev), _f(a.sigma_ev, ".3f"),
                  _f(a.score, ".3g"), shown)  # fmt: skip
    return t


def counts_table(snap: Snapshot) -> Table:
    t = Table(title="labels and jobs", expand=True)
    t.add_column("what")
    t.add_column("count", justify="right")
    for (fid, st), n in sorted(snap.status.labels_by_fidelity_status.items()):
        t.add_row(f"label {fid}/{st}", str(n))
    for state, n in sorted(snap.status.jobs_by_state.items()):
        t.add_row(f"job {state}", str(n))
    return t


def best_table(snap: Snapshot) -> Table:
    t = Table(title="strongest binding so far", expand=True)
    for col in ("pair", "GMAE eV", "fidelity"):
        t.add_column(col)
    for key, gmae, fid in snap.status.best:
        t.add_row(key, _f(gmae), fid)
    return t


def escalations_table(snap: Snapshot) -> Table:
    t = Table(title="escalations", expand=True)
    for col in ("round", "pair", "reason", "value/cost"):
        t.add_column(col)
    reasons = Counter(str(e.payload.get("reason", "?")) for e in snap.escalations)
    for e in snap.escalations[-8:]:
        value, cost = e.payload.get("value"), e.payload.get("cost")
        priced = f"{value:.3g}/{cost:g}" if isinstance(value, float) and cost else "—"
        t.add_row(str(e.round_index), str(e.payload.get("pair", "")), str(e.payload.get("reason")),
                  priced)  # fmt: skip
    if not snap.escalations:
        t.add_row("—", "none yet", "")
    t.caption = ", ".join(f"{k}: {n}" for k, n in reasons.items()) or None
    return t


def _head(snap: Snapshot) -> str:
    s = snap.status
    return (
        f"[bold]{s.name}[/]  {snap.where}  ·  {s.n_pairs} pairs  ·  {s.n_labelled_pairs} labelled"
        f"  ·  {s.n_rounds} rounds  ·  cost {cost_line(snap.costs)}"
    )


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
