"""Rich renderables built from store records by pure functions (no I/O, no console)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from alloop.loop.face.commands import HistoryRow, TopSites
from alloop.store.records import AcquisitionRecord, CampaignStatus, LabelRecord


def _ev(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:+.{digits}f}"


def acquisition_facts(a: AcquisitionRecord) -> Text:
    """What a pick was chosen with, from the acquisition's stored fields (never its reason
    text): value, expected improvement and its threshold, the believer's σ, the fidelity and
    cost asked for; "—" for a row written before these were stored. A `Text`: a stored string
    is shown as it is, never as markup."""
    parts = []
    if a.value is not None:
        parts.append(f"value {a.value:.4g}")
    if a.ei_ev is not None:
        below = "" if a.threshold_ev is None else f" below {a.threshold_ev:+.3f} eV"
        parts.append(f"EI {a.ei_ev:.3g} eV{below}")
    if a.believer_sigma_ev is not None:
        parts.append(f"believer σ {a.believer_sigma_ev:.3f}")
    if a.fidelity is not None:
        parts.append(a.fidelity + ("" if a.cost is None else f", cost {a.cost:g}"))
    return Text(" · ".join(parts) or "—")


def cost_line(costs: Mapping[str, float]) -> str:
    """``1,234 units (mlip 234, dft_relax 1,000)``: what the oracle jobs cost."""
    parts = ", ".join(f"{kind} {value:,.0f}" for kind, value in sorted(costs.items()))
    return f"{sum(costs.values()):,.0f} units ({parts})" if costs else "nothing yet"


def status_panel(
    status: CampaignStatus, where: str, costs: Mapping[str, float] | None = None
) -> Panel:
    pool = Table.grid(padding=(0, 2))
    pool.add_column(style="bold")
    pool.add_column()
    pool.add_row("campaign", f"{status.name}  (seed {status.seed})")
    pool.add_row("file", where)
    pool.add_row(
        "pool",
        f"{status.n_surfaces} surfaces × {status.n_adsorbates} adsorbates = {status.n_pairs} pairs",
    )
    pool.add_row("labelled", f"{status.n_labelled_pairs} pairs with an ok label")
    if costs is not None:
        pool.add_row("cost spent", cost_line(costs))
    last = status.last_round
    pool.add_row(
        "rounds",
        f"{status.n_rounds}" + (f" (last: #{last.index}, {last.state})" if last else " (none yet)"),
    )
    labels = Table(title="labels", show_edge=False)
    for col in ("fidelity", "status", "count"):
        labels.add_column(col, justify="right" if col == "count" else "left")
    for (fid, st), n in sorted(status.labels_by_fidelity_status.items()):
        labels.add_row(fid, st, str(n))
    jobs = Table(title="oracle jobs", show_edge=False)
    jobs.add_column("state")
    jobs.add_column("count", justify="right")
    for state, n in sorted(status.jobs_by_state.items()):
        jobs.add_row(state, str(n))
    best = Table(title="strongest binding so far", show_edge=False)
    for col in ("pair", "GMAE (eV)", "fidelity"):
        best.add_column(col)
    for key, gmae, fid in status.best:
        best.add_row(key, _ev(gmae), fid)
    parts: list[object] = [pool]
    if status.labels_by_fidelity_status:
        parts.append(labels)
    if status.jobs_by_state:
        parts.append(jobs)
    if status.best:
        parts.append(best)
    return Panel(Group(*parts), title="alloop status", expand=False)  # type: ignore[arg-type]


def history_table(rows: Sequence[HistoryRow], wide: bool = False) -> Table:
    """The acquisition history. Narrow (the default) fits 80 columns: round, rank, pair, μ, σ,
    the label that counts and its fidelity; ``wide`` adds the acquisition, its score, what it
    was chosen with (`acquisition_facts`) and the reason, and splits the pair into surface and
    adsorbate."""
    table = Table(title="acquisition history", box=box.SIMPLE_HEAD if not wide else box.HEAVY_HEAD,
                  pad_edge=wide, show_lines=False)  # fmt: skip
    cols: tuple[tuple[str, str], ...]
    if wide:
        cols = (("round", "right"), ("rank", "right"), ("surface", "left"),
                ("adsorbate", "left"), ("acquisition", "left"), ("score", "right"),
                ("μ (eV)", "right"), ("σ (eV)", "right"), ("label (eV)", "right"),
                ("fidelity", "left"), ("chosen with", "left"), ("reason", "left"))  # fmt: skip
    else:
        cols = (("rnd", "right"), ("#", "right"), ("pair", "left"), ("μ eV", "right"),
                ("σ eV", "right"), ("label eV", "right"), ("fidelity", "left"))  # fmt: skip
    for col, justify in cols:
        # narrow: one line per pick (only a long pair key folds); wide: every cell folds
        # rather than lose its end to an ellipsis in a terminal too narrow for it
        table.add_column(col, justify=justify, no_wrap=not wide and col != "pair",  # type: ignore[arg-type]
                         overflow="fold")  # fmt: skip
    for row in rows:
        a, lab = row.acquisition, row.label
        label_text = (
            "pending" if lab is None else (_ev(lab.gmae_ev) if lab.status == "ok" else lab.status)
        )
        sigma = "—" if a.sigma_ev is None else f"{a.sigma_ev:.3f}"
        fidelity = "" if lab is None else lab.fidelity
        if wide:
            table.add_row(
                str(a.round_index), str(a.rank), a.surface_key, a.adsorbate_key, a.acquisition,
                "—" if a.score is None else f"{a.score:.4g}", _ev(a.mu_ev), sigma, label_text,
                fidelity, acquisition_facts(a), a.reason,
            )  # fmt: skip
        else:
            table.add_row(str(a.round_index), str(a.rank), a.pair_key, _ev(a.mu_ev), sigma,
                          label_text, fidelity)  # fmt: skip
    if not wide:
        table.caption = "--wide: acquisition, score, what it was chosen with, reason"
    return table


def top_sites_table(top: Sequence[TopSites]) -> Table:
    """Per acquisition, the slab atoms the surrogate's attention scored highest."""
    table = Table(title="top-scored slab atoms (surrogate attention)", show_edge=False)
    for col in ("round", "atoms: index element score"):
        table.add_column(col)
    for t in top:
        atoms = ", ".join(f"{i} {el} {score:.3f}" for i, el, score in t.atoms)
        table.add_row(str(t.round_index), atoms)
    return table


def pair_panel(
    pair: str,
    acquisitions: Sequence[AcquisitionRecord],
    labels: Sequence[LabelRecord],
    top_sites: Sequence[TopSites] = (),
) -> Panel:
    acq = Table(title="acquisitions", show_edge=False)
    for col in ("round", "rank", "acquisition", "score", "μ (eV)", "σ (eV)", "chosen with",
                "reason"):  # fmt: skip
        acq.add_column(col)
    for a in acquisitions:
        acq.add_row(
            str(a.round_index), str(a.rank), a.acquisition,
            "—" if a.score is None else f"{a.score:.4g}", _ev(a.mu_ev),
            "—" if a.sigma_ev is None else f"{a.sigma_ev:.3f}", acquisition_facts(a), a.reason,
        )  # fmt: skip
    labs = Table(title="labels", show_edge=False)
    for col in ("GMAE (eV)", "status", "fidelity", "job"):
        labs.add_column(col)
    for lab in labels:
        labs.add_row(_ev(lab.gmae_ev), lab.status, lab.fidelity, lab.job_key or "—")
    parts: list[object] = [acq if acquisitions else "never acquired"]
    if top_sites:
        parts.append(top_sites_table(top_sites))
    parts.append(labs if labels else "no labels yet")
    for lab in labels:  # scalar provenance; the full JSON is in `alloop export`
        prov = Table.grid(padding=(0, 2))
        prov.add_column(style="bold")
        prov.add_column()
        for key, value in lab.provenance.items():
            if isinstance(value, str | int | float | bool) and key != "best_structure":
                prov.add_row(key, str(value)[:80])
        parts.append(Panel(prov, title=f"provenance of the {lab.fidelity} label", expand=False))
    return Panel(Group(*parts), title=pair, expand=False)  # type: ignore[arg-type]
