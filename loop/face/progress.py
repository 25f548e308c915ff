"""Progress output for `alloop run`: the engine's events drawn with Rich.

On a terminal, oracle jobs get a live progress bar; otherwise (a pipe, a log file) each event is
one plain line. `quiet` prints no progress. The engine never prints: it calls this observer.
While it is entered, the library's warnings (``alloop.*`` loggers: a pair that failed, a worker
that died, a dropped checkpoint) go to stderr through `InertLogHandler`, since they quote pair
keys and errors read from the campaign; without it Python's last-resort handler would print
them raw. (Warnings logged inside worker processes are outside its reach.)
"""

from __future__ import annotations

import logging
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from alloop.loop.face import numbers
from alloop.loop.face.safe_text import plain_text, safe_text

#: the logger whose records `ProgressReporter` shows: every module of alloop logs under it
LIBRARY_LOGGER = "alloop"


class InertLogHandler(logging.Handler):
    """Warnings and errors as plain lines on ``console``, made inert (`plain_text`)."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = plain_text(self.format(record))
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging's own rule: a handler never raises
            self.handleError(record)


class ProgressReporter:
    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self._progress: Progress | None = None
        self._task: Any = None
        self._log_handler = InertLogHandler(Console(stderr=True))

    def __enter__(self) -> ProgressReporter:
        logging.getLogger(LIBRARY_LOGGER).addHandler(self._log_handler)
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=self.console, transient=True,
            )  # fmt: skip
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(LIBRARY_LOGGER).removeHandler(self._log_handler)
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        if self.quiet:
            return
        line = _describe(kind, info)
        if (kind in _BAR_STARTS or kind in _BAR_STEPS) and self._progress is not None:
            total = info.get("total", 0)
            if kind in _BAR_STARTS:
                what = _BAR_STARTS[kind]
                self._task = self._progress.add_task(f"round {info['index']}: {what}", total=total)
            elif self._task is not None:
                self._progress.update(self._task, completed=info.get("done", 0))
            return
        if line:
            self.console.print(line, highlight=False)


# jobs drawn as a progress bar: the event that starts one (-> its title), the one per job
_BAR_STARTS = {"labelling": "oracle", "escalating": "DFT"}
_BAR_STEPS = frozenset({"labelled", "dft_labelled"})


def _pair_status(info: dict[str, Any]) -> str:
    """``pair: status`` of a job event; both are read from the campaign, so made inert."""
    return safe_text(f"{info['pair']}: {info['status']}")


def _describe(kind: str, info: dict[str, Any]) -> str | None:
    index = info.get("index")
    if kind == "round":
        return f"[bold]round {index}[/]"
    if kind == "training":
        return f"  training the ensemble on {info['n_labels']} labels"
    if kind == "acquired":
        return f"  acquired {info['n']} pairs"
    if kind == "labelling":
        return f"  labelling {info['total']} pairs"
    if kind == "labelled":
        return f"  {info['done']}/{info['total']} {_pair_status(info)}"
    if kind == "escalated":
        return f"  escalating {info['n']} pairs to DFT" if info["n"] else "  no DFT escalation"
    if kind == "escalating":
        return f"  DFT on {info['total']} pairs"
    if kind == "dft_labelled":
        return f"  DFT {info['done']}/{info['total']} {_pair_status(info)}"
    if kind == "closed":
        best = info.get("best_gmae_ev")
        mae = info.get("batch_mae_ev")
        text = f"  closed: {numbers.count(info['n_labels'])} labels, best GMAE "
        text += numbers.MISSING if best is None else f"{numbers.ev(best)} eV"
        if mae is not None:
            shown = numbers.sigma(mae) + " eV"
            text += f", batch MAE {numbers.metric(mae, info.get('n_batch_scored'), shown)}"
        return text
    if kind == "retrying":
        n, what = info["n"], safe_text(str(info["kind"]))
        return f"  re-running {n} {what} job(s) of round {index} lost with their worker"
    if kind == "checkpoint_dropped":
        reason = safe_text(str(info["reason"]))
        return f"  [yellow]warning:[/] {reason}; retraining round {index} from the labels"
    if kind == "stopped":
        return None
    return None
