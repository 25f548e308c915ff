"""Every command and dashboard screen shown a hostile campaign file (`tests.loop.face.hostile`):
no control character from the file reaches the output, and its Rich markup shows as written."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alloop.loop.face.app import DashboardApp, OverviewScreen, PlotsScreen, RoundsScreen
from alloop.loop.face.app_pair import BatchScreen, PairScreen
from alloop.loop.face.cli import app as cli
from tests.loop.face.hostile import MARKUP, build_hostile_campaign, control_characters

runner = CliRunner()
#: wide enough that no table folds the planted markup across lines
WIDE = {"COLUMNS": "1000"}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("hostile") / "hostile.alloop"
    return path, build_hostile_campaign(path)


def invoke(args: list[str]) -> Any:
    return runner.invoke(cli, args, env=WIDE)


def assert_inert(output: str) -> None:
    assert control_characters(output) == [], repr(output[:2000])
    assert "pwned" not in output and "c1title" not in output  # a sequence's payload goes too
    assert "\x1b]8" not in output  # no hyperlink


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["history"],
        ["history", "--wide"],
        ["show", "{ok}"],
        ["show", "{failed}"],
        ["show", "{edited}"],
        ["dashboard", "--once"],
    ],
    ids=["status", "history", "history-wide", "show-ok", "show-failed", "show-edited",
         "dashboard-once"],  # fmt: skip
)
def test_commands_print_stored_text_inert(hostile, args):
    path, pairs = hostile
    args = [args[0], str(path), *(a.format(**pairs) for a in args[1:])]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert_inert(result.output)
    assert MARKUP in result.output  # shown as written, not interpreted


def test_show_prints_every_hostile_provenance_value_as_written(hostile):
    path, pairs = hostile
    out = invoke(["show", str(path), pairs["ok"]]).output
    assert_inert(out)
    # the campaign's planted calculator, error, and a hostile provenance key
    assert out.count(MARKUP) >= 6


def test_report_and_export_name_their_files_inert_and_keep_the_data(hostile, tmp_path):
    path, _ = hostile
    report_dir = tmp_path / "[bold red]report"
    result = invoke(["report", str(path), "--out", str(report_dir)])
    assert result.exit_code == 0, result.output
    assert_inert(result.output)
    assert "[bold red]report" in result.output and (report_dir / "parity.png").exists()
    out_dir = tmp_path / "[link=file:x]exp"
    result = invoke(["export", str(path), "--out", str(out_dir)])
    assert result.exit_code == 0, result.output
    assert_inert(result.output)
    assert "[link=file:x]exp" in result.output
    # exports keep the data as stored: the escape sequences are in the CSV, byte for byte
    assert "\x1b]0;pwned\x07" in (out_dir / "acquisitions.csv").read_text(encoding="utf-8")


def test_error_lines_quoting_the_file_or_the_input_are_inert(hostile, tmp_path):
    path, _ = hostile
    # the stored config holds a hostile unknown key: resume refuses it, quoting the key (a
    # file without edited rows: with them, it fails the integrity check first)
    intact = tmp_path / "intact.alloop"
    build_hostile_campaign(intact, edited=False)
    result = invoke(["resume", str(intact), "-q"])
    assert result.exit_code == 1
    assert_inert(result.output)
    assert "(stored config)" in result.output and MARKUP in result.output
    result = invoke(["history", str(path), "--surface", "\x1b]0;t\x07[bold red]x"])
    assert result.exit_code == 1
    assert_inert(result.output)
    assert "[bold red]x" in result.output
    result = invoke(["show", str(path), "\x9b2J[link=file:///etc/passwd]p[/link]"])
    assert result.exit_code == 1
    assert_inert(result.output)
    assert "[link=file:///etc/passwd]p[/link]" in result.output


def test_the_installed_script_prints_inert_text(hostile):
    path, _ = hostile  # (a pair key holding NUL cannot be an argument)
    alloop = Path(sys.executable).parent / "alloop"
    for args in (["history", "--wide"], ["dashboard", "--once"]):
        done = subprocess.run([str(alloop), args[0], str(path), *args[1:]], capture_output=True,
                              text=True, env={"PATH": "/usr/bin:/bin", "COLUMNS": "1000"},
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert_inert(done.stdout + done.stderr)
        assert MARKUP in done.stdout


# ------------------------------------------------------------------------------ the dashboard
def screen_output(app: DashboardApp) -> str:
    """What the app would write to the terminal for its whole screen now."""
    update = app.screen._compositor.render_full_update()
    return update.render_segments(app.console)


def test_every_dashboard_screen_is_inert(hostile, tmp_path):
    path, pairs = hostile
    seen: dict[str, str] = {}
    titles: list[str] = []

    async def main() -> None:
        app = DashboardApp(str(path), export_dir=tmp_path / "[bold red]missing")
        async with app.run_test(size=(300, 80), notifications=True) as pilot:

            async def capture(expected: type) -> None:
                await app.workers.wait_for_complete()
                await pilot.pause()
                assert isinstance(app.screen, expected), type(app.screen)
                seen[expected.__name__] = screen_output(app)
                titles.extend([app.title, app.sub_title])

            await pilot.pause()
            await capture(OverviewScreen)
            await pilot.press("r")
            await capture(RoundsScreen)
            await pilot.press("enter")
            await capture(BatchScreen)
            await pilot.press("enter")
            await capture(PairScreen)
            await pilot.press("x")  # export into a missing directory: an error notification
            await capture(PairScreen)
            seen["notification"] = seen.pop("PairScreen")
            await pilot.press("escape", "slash", *"[bold", "enter")  # a filter of markup
            await capture(BatchScreen)
            seen["filtered"] = seen.pop("BatchScreen")
            await pilot.press("p")
            await capture(PlotsScreen)
            await pilot.press("q")

    asyncio.run(main())
    assert set(seen) == {"OverviewScreen", "RoundsScreen", "notification", "filtered",
                         "PlotsScreen"}  # fmt: skip
    for name, output in seen.items():
        assert control_characters(output, terminal_output=True) == [], (name, repr(output))
        assert "\x1b]" not in output, name  # no OSC at all: no title, clipboard or hyperlink
    for name in ("OverviewScreen", "RoundsScreen", "notification", "filtered"):
        assert "[bold red]" in strip_sgr(seen[name]), name
    assert "cannot write" in strip_sgr(seen["notification"])
    assert all(control_characters(t) == [] for t in titles), titles


def strip_sgr(output: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;:?]*[A-Za-z]", "", output)
