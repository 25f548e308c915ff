"""Rich tables for `alloop check` and `alloop recover`: pure functions of their reports."""

from __future__ import annotations

from rich.table import Table

from alloop.loop.face.safe_text import safe_text
from alloop.store.integrity import IntegrityReport
from alloop.store.recover import RecoveryReport


def check_table(report: IntegrityReport) -> Table:
    """One row per table: rows readable, and the first error a full scan met."""
    table = Table(title=f"integrity of {safe_text(str(report.path))}", title_justify="left")
    table.add_column("table")
    table.add_column("rows read", justify="right")
    table.add_column("state")
    for t in report.tables:
        damaged = f"[red]damaged:[/] {safe_text(t.error or '')}"
        state = "[green]readable[/]" if t.error is None else damaged
        table.add_row(safe_text(t.table), str(t.rows), state)
    for problem in report.problems[:5]:
        table.add_row("[dim]sqlite[/]", "", f"[red]{safe_text(problem)}[/]")
    return table


def salvage_table(report: RecoveryReport) -> Table:
    """One row per table: rows kept, rows refused, whether damaged pages were skipped."""
    table = Table(title=f"salvaged from {safe_text(str(report.source))}", title_justify="left")
    table.add_column("table")
    table.add_column("kept", justify="right")
    table.add_column("refused", justify="right")
    table.add_column("damaged pages")
    for t in report.tables:
        table.add_row(safe_text(t.table), str(t.kept), str(t.lost),
                      "[red]skipped[/]" if t.damaged else "")  # fmt: skip
    return table
