"""The `alloop` command line: thin Typer commands over `alloop.loop.face.commands`.

Domain errors (bad config, missing or foreign campaign file, locked campaign, ...) become one
red line on stderr and exit code 1; nothing is half-written, because the functions behind the
commands validate everything before they touch a file.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from alloop.loop.config import AlloopConfig
from alloop.loop.errors import LoopError
from alloop.loop.face import catalogue, commands, repair_views, views
from alloop.loop.face.dashboard import DEFAULT_REFRESH_S as DASHBOARD_REFRESH_S
from alloop.loop.face.entry import refuse_if_running
from alloop.loop.face.safe_text import safe_text
from alloop.store.errors import StoreError
from alloop.store.exports import NEUTRALISE_FORMULAS


def out() -> Console:
    """A console made per call, so that it sees the terminal (and COLUMNS) of this invocation."""
    return Console()


def err() -> Console:
    return Console(stderr=True)


app = typer.Typer(
    name="alloop",
    help="Active-learning closed-loop screening of adsorption energies (GMAE).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _domain_errors() -> tuple[type[BaseException], ...]:
    from alloop.loop.agent.acquisition import AcquisitionError
    from alloop.oracles.errors import OracleError
    from alloop.surrogate.errors import SurrogateError

    return (
        LoopError, StoreError, OracleError, SurrogateError, AcquisitionError, OSError,
        sqlite3.Error, SQLAlchemyError,
    )  # fmt: skip


def fail(message: str) -> typer.Exit:
    err().print(f"[bold red]error:[/] {safe_text(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Turn a domain error into one red line and exit code 1."""
    try:
        yield
    except _domain_errors() as exc:
        raise fail(_one_line(exc)) from None


def _one_line(exc: BaseException) -> str:
    """A domain error's first line; a database or file-system failure that escaped the store
    (full disk, read-only or damaged file) described by `alloop.store.faults`."""
    from alloop.store.faults import store_fault

    if isinstance(exc, OSError | sqlite3.Error | SQLAlchemyError):
        where = getattr(exc, "filename", None) or "the campaign"
        fault = store_fault(exc, str(where))
        if isinstance(exc, OSError) and type(fault) is StoreError:  # not full/read-only
            fault = None
        text = str(fault) if fault is not None else f"{getattr(exc, 'strerror', exc)}: {where}"
    else:
        text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


CampaignArg = Annotated[
    str,
    typer.Argument(help="Campaign file (e.g. demo.alloop) or database URL.", show_default=False),
]


@app.command()
def init(
    config: Annotated[Path, typer.Argument(help="YAML campaign config.", show_default=False)],
    campaign: Annotated[
        str | None,
        typer.Option("--campaign", "-c", help="Where to create it (default: NAME.alloop)."),
    ] = None,
) -> None:
    """Create a campaign (its pool of surface × adsorbate pairs) from a YAML config.

    Example: [bold]alloop init configs/fg-replay.yaml --campaign fg.alloop[/]
    """
    with guard():
        where, status = commands.init_campaign(config, campaign)
    out().print(f"[green]created[/] {safe_text(where)}")
    out().print(views.status_panel(status, where))


@app.command()
def status(campaign: CampaignArg) -> None:
    """Show a campaign's pool, labels, jobs, rounds and best pairs so far.

    In a multi-fidelity campaign the best pairs are ranked at DFT level: the DFT label, else
    the model's DFT-level μ ± σ (marked predicted); never a raw MLIP label.

    Example: [bold]alloop status fg.alloop[/]
    """
    with guard():
        st, costs, standing, answers = commands.campaign_status(campaign)
    out().print(views.status_panel(st, campaign, costs, standing, answers))


class HistoryFormat(StrEnum):
    table = "table"
    tsv = "tsv"
    csv = "csv"


#: the width `history --wide` lays its table out in when its output is not a terminal
WIDE_REDIRECTED_COLUMNS = 1000


@app.command()
def history(
    campaign: CampaignArg,
    round_index: Annotated[
        int | None, typer.Option("--round", "-r", help="Only this round.")
    ] = None,
    surface: Annotated[
        str | None, typer.Option("--surface", "-s", help="Only this surface key.")
    ] = None,
    adsorbate: Annotated[
        str | None, typer.Option("--adsorbate", "-a", help="Only this adsorbate key.")
    ] = None,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide", "-w", help="All columns: acquisition, value, what it was chosen with, reason."
        ),
    ] = False,
    fmt: Annotated[
        HistoryFormat,
        typer.Option("--format", "-f", help="table, or tsv/csv: one line per pick, every column."),
    ] = HistoryFormat.table,
) -> None:
    """Show the acquisition history: what was picked, when, why, and what it turned out to be.

    Fits 80 columns; --wide adds the acquisition, its value, what it was chosen with (stored
    fields) and the reason (one row per line when redirected); --format tsv or csv writes every
    column for scripts.
    Example: [bold]alloop history fg.alloop --round 2 --surface Pt[/]
    """
    with guard():
        rows = commands.campaign_history(
            campaign, round_index=round_index, surface=surface, adsorbate=adsorbate
        )
    if fmt is not HistoryFormat.table:
        sys.stdout.write(views.history_delimited(rows, "\t" if fmt is HistoryFormat.tsv else ","))
        return
    if not rows:
        out().print("no acquisitions match" if (round_index, surface, adsorbate) != (None,) * 3
                      else "no acquisitions yet")  # fmt: skip
        return
    console = out()
    if wide and not console.is_terminal:  # a file or a pipe: no width to fit, one row a line
        console = Console(width=WIDE_REDIRECTED_COLUMNS)
    console.print(views.history_table(rows, wide=wide))


class Interrupted(BaseException):
    """SIGTERM, raised in the main thread like SIGINT's KeyboardInterrupt (a BaseException, so
    that no `except Exception` on the way swallows it)."""


@contextlib.contextmanager
def interrupts_end_the_run(store: object) -> Iterator[None]:
    """SIGINT or SIGTERM during a run: the step under way is abandoned (its transaction rolls
    back; every committed step stays), one line says where the campaign stands and how to go
    on, and the process exits 130 (SIGINT) or 143 (SIGTERM)."""
    import signal

    def on_term(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    from alloop.loop.bridges.rdkit_log import rdkit_interrupts_reach_python

    previous = signal.signal(signal.SIGTERM, on_term), signal.getsignal(signal.SIGINT)
    try:
        with rdkit_interrupts_reach_python():  # a Ctrl-C during an RDKit search, too
            yield
    except (KeyboardInterrupt, Interrupted) as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the line
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        code = 143 if isinstance(exc, Interrupted) else 130
        where = store.target.display  # type: ignore[attr-defined]
        err().print(
            f"[bold yellow]interrupted[/] {safe_text(commands.where_it_stands(store))}; "  # type: ignore[arg-type]
            f"continue with: alloop resume {safe_text(where)}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=code) from None
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output (for scripts).")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", "-t", min=1, max=4096, show_default=False,
                 help="Torch/BLAS threads for training, scoring and in-process labels "
                 "(overrides executor.threads; default: cores ÷ workers, at most the free ones)."),
]  # fmt: skip


def _drive(store: object, cfg: AlloopConfig, quiet: bool, threads: int | None = None) -> None:
    from alloop.loop.agent.engine import CampaignEngine
    from alloop.loop.bridges.threads import with_threads
    from alloop.loop.face.progress import ProgressReporter
    from alloop.loop.face.standing import standing_of

    with interrupts_end_the_run(store), ProgressReporter(out(), quiet=quiet) as reporter:
        engine = CampaignEngine(store, with_threads(cfg, threads), observer=reporter)  # type: ignore[arg-type]
        decision = engine.run()
    standing = standing_of(store)  # type: ignore[arg-type]
    if not quiet:
        from alloop.loop.face.answers import campaign_answers

        costs = commands.campaign_costs(store)  # type: ignore[arg-type]
        answers = campaign_answers(store)  # type: ignore[arg-type]
        status = commands.status_of(store, answers=answers)  # type: ignore[arg-type]
        where = store.target.display  # type: ignore[attr-defined]
        out().print(views.status_panel(status, where, costs, standing, answers))
        out().print(f"[bold]stopped:[/] {safe_text(f'{decision.reason} — {decision.detail}')}")
    if standing.all_failed:  # the stop rule held, but the campaign learnt nothing
        # fail() makes the whole line inert
        raise fail(f"{standing.all_failed}; `alloop show FILE PAIR` shows a pair's error")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="YAML campaign config.", show_default=False)],
    campaign: Annotated[
        str | None,
        typer.Option("--campaign", "-c", help="Campaign file (default: NAME.alloop)."),
    ] = None,
    quiet: QuietOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Start a campaign from a config, or continue it if the file exists, until a stop rule.

    Example: [bold]alloop run configs/fg-replay.yaml --campaign fg.alloop[/]
    """
    with guard():
        refuse_if_running(campaign, config)  # also probed by the entry script
        store, cfg = commands.open_for_run(config, campaign)
        with store:
            _drive(store, cfg, quiet, threads)


@app.command()
def resume(campaign: CampaignArg, quiet: QuietOpt = False, threads: ThreadsOpt = None) -> None:
    """Continue a campaign with its stored config (e.g. after a crash or a kill).

    Example: [bold]alloop resume fg.alloop[/]
    """
    with guard():
        refuse_if_running(campaign)
        store, cfg = commands.open_for_resume(campaign)
        with store:
            _drive(store, cfg, quiet, threads)


@app.command()
def dashboard(
    campaign: CampaignArg,
    refresh_s: Annotated[
        float, typer.Option("--refresh", help="Seconds between reads of the campaign.")
    ] = DASHBOARD_REFRESH_S,
    once: Annotated[
        bool, typer.Option("--once", help="Print one frame and exit (also when not a terminal).")
    ] = False,
) -> None:
    """Interactive view of a campaign: overview, rounds and their batches, pairs, plots.

    Keys (shown in its footer): o overview, r rounds, enter open, / filter, s sort, p plots,
    x export a pair's structure, escape back, q quit. Works while `alloop run` drives the
    campaign in another process, and on finished ones.
    Example: [bold]alloop dashboard fg.alloop --refresh 1[/]
    """
    from alloop.loop.face.dashboard import render_static, snapshot

    if not refresh_s > 0:
        raise fail(f"--refresh must be a positive number of seconds, got {refresh_s:g}")
    with guard():
        snap = snapshot(campaign)
    console = out()
    if once or not console.is_terminal:
        console.print(render_static(snap, width=console.width))
        return
    from alloop.loop.face.app import DashboardApp

    DashboardApp(campaign, refresh_s).run()


@app.command()
def show(
    campaign: CampaignArg,
    pair: Annotated[str, typer.Argument(help="Pair key, e.g. 'Pt|group2/3611'.")],
) -> None:
    """Why a pair was chosen and escalated, and its labels (the one that counts marked).

    Lists every acquisition and escalation of the pair (round, reason code, value, cost, the
    label it bought), what each pick was chosen with, the slab atoms the surrogate's attention
    scored highest, and every label with its provenance.

    Example: [bold]alloop show fg.alloop 'Pt|group2/3611'[/]
    """
    with guard():
        acqs, labels, decided = commands.pair_story(campaign, pair)
        top = commands.pair_site_scores(campaign, pair)
    out().print(views.pair_panel(pair, acqs, labels, top, decided))


@app.command()
def report(
    campaign: CampaignArg,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Directory for the PNGs (default NAME-report)."),
    ] = None,
) -> None:
    """Write PNG plots: learning curve, parity, calibration, GMAE distribution.

    Example: [bold]alloop report fg.alloop --out fg-report[/]
    """
    from alloop.loop.face.report import write_report

    with guard():
        target = out_dir or Path(f"{Path(campaign).stem}-report")
        paths = write_report(campaign, target)
    for p in paths:
        out().print(f"[green]wrote[/] {safe_text(str(p))}")


class ExportFormat(StrEnum):
    csv = "csv"
    asedb = "asedb"


@app.command()
def export(
    campaign: CampaignArg,
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="csv or asedb.")] = (
        ExportFormat.csv
    ),
    out_path: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output directory (csv) or file (asedb)."),
    ] = None,
    neutralise: Annotated[
        bool,
        typer.Option(
            "--neutralise-formulas/--keep-formulas",
            help="CSV: prefix text cells starting with = + - @ with ' (spreadsheet formulas).",
        ),
    ] = NEUTRALISE_FORMULAS,
) -> None:
    """Export labels, acquisitions and the ranking as CSV, or structures as an ASE database.

    CSV: labels.csv, acquisitions.csv and ranking.csv (pairs strongest first; at DFT level in a
    multi-fidelity campaign, predicted values marked). ASE database: the structures the labels
    store; when none does it says so, writes nothing and exits 1.

    Data is kept as stored, but CSV text cells that a spreadsheet would run as a formula get a
    leading ' unless --keep-formulas.
    Example: [bold]alloop export fg.alloop --format asedb --out best.db[/]
    """
    with guard():
        written = commands.export_campaign(
            campaign, fmt.value, out_path, neutralise_formulas=neutralise
        )
    for p, what in written:  # one line per file, a long path included
        out().print(f"[green]wrote[/] {safe_text(f'{p}: {what}')}", soft_wrap=True)


app.command(name="pool")(catalogue.pool)


@app.command()
def check(campaign: CampaignArg) -> None:
    """Run SQLite's full integrity check and say how much of each table can still be read.

    Exit code 0 when the campaign is intact, 1 when it is damaged.
    Example: [bold]alloop check fg.alloop[/]
    """
    from alloop.store.integrity import check_campaign

    with guard():
        report = check_campaign(Path(campaign))
    out().print(repair_views.check_table(report))
    if not report.intact:
        first = report.problems[0] if report.problems else "rows that cannot be read"
        raise fail(
            f"{campaign} is damaged ({first}): `alloop restore {campaign}` puts back its newest "
            f"intact backup; `alloop recover {campaign} --out NEW` salvages what is readable"
        )
    out().print(f"[green]intact[/] {safe_text(campaign)}")


@app.command()
def recover(
    campaign: CampaignArg,
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="The new campaign file.", show_default=False)
    ],
) -> None:
    """Salvage every readable row of a damaged campaign (labels first) into a new campaign.

    The damaged file is only read. Continue the new one with `alloop resume NEW`.
    Example: [bold]alloop recover fg.alloop --out fg-recovered.alloop[/]
    """
    from alloop.store.recover import recover_campaign

    with guard():
        report = recover_campaign(Path(campaign), out_path)
    out().print(repair_views.salvage_table(report))
    out().print(
        "[green]recovered[/] into "
        + safe_text(f"{out_path}; continue with: alloop resume {out_path}")
    )


@app.command()
def restore(
    campaign: CampaignArg,
    backup: Annotated[
        Path | None,
        typer.Option("--backup", "-b", help="This backup file (default: the newest intact one)."),
    ] = None,
) -> None:
    """Put a backup (written at the end of rounds, `backup` config section) in place of the
    campaign; the file it replaces is kept as NAME.damaged-TIME.

    Example: [bold]alloop restore fg.alloop[/]
    """
    from alloop.store.backup import restore_campaign

    with guard():
        used, kept = restore_campaign(Path(campaign), backup)
    if kept is not None:
        out().print(safe_text(f"kept the replaced file as {kept}"))
    out().print(
        "[green]restored[/] "
        + safe_text(f"{campaign} from {used}; continue: alloop resume {campaign}")
    )


def main() -> None:
    """Console-script entry point: usage errors also end as one red line and exit code 1."""
    from alloop.loop.face.quiet import silence_startup_noise

    silence_startup_noise()  # e.g. Warp's CUDA-driver warning; ALLOOP_DEBUG=1 keeps it
    try:
        # outside standalone mode click returns a command's exit code instead of exiting
        code = app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err().print("[bold red]aborted[/]")
        sys.exit(130)
    except typer.TyperException as exc:  # click's usage errors, vendored by Typer
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            out().print(ctx.get_help())
            sys.exit(0)
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        err().print(f"[bold red]error:[/] {safe_text(message)}", highlight=False, soft_wrap=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
