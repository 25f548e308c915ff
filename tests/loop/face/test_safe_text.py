"""The one safe-text rule: stored strings lose escape sequences and control characters, and show
as written wherever Rich parses markup."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text

from alloop.loop.face.progress import _describe
from alloop.loop.face.safe_text import plain_text, safe_rich, safe_text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\x1b]0;pwned\x07b", "ab"),  # OSC 0 (window title), BEL-terminated
        ("a\x1b]2;t\x1b\\b", "ab"),  # OSC 2, ST-terminated
        ("\x1b]52;c;cHduZWQ=\x07clip", "clip"),  # OSC 52: the clipboard
        ("\x1b]8;;file:///etc/passwd\x1b\\ln\x1b]8;;\x1b\\", "ln"),  # OSC 8 hyperlink
        ("a\x1b]0;cut short", "a"),  # an unterminated OSC runs to the end
        ("x\x1b[2Jy", "xy"),  # CSI: clear screen
        ("x\x1b[38;5;196mred\x1b[0m", "xred"),
        ("x\x1b[?1049h", "x"),  # alternate screen
        ("c1\x9b31mred", "c1red"),  # 8-bit CSI
        ("c1\x9d0;title\x9cafter", "c1after"),  # 8-bit OSC and ST
        ("\x90dcs\x1b\\d", "d"),  # 8-bit DCS
        ("\x1bPq#0\x1b\\s", "s"),  # DCS (sixel)
        ("\x1b_apc\x1b\\a", "a"),  # APC
        ("\x1bcRESET", "RESET"),  # full reset
        ("\x1b(Bok", "ok"),  # charset selection
        ("lone\x1b", "lone"),
        ("nul\x00bel\x07bs\x08cr\rdel\x7fc1\x85", "nulbelbscrdelc1"),
        ("tab\tnewline\n", "tab\tnewline\n"),  # kept
        ("bidi\u202eevil\u2066x\u2069", "bidievilx"),  # bidirectional overrides
        ("Pt(111)|[C-]#[O+] μ σ ✓", "Pt(111)|[C-]#[O+] μ σ ✓"),  # ordinary text untouched
    ],
)
def test_plain_text_drops_sequences_and_controls(raw, shown):
    assert plain_text(raw) == shown


@pytest.mark.parametrize(
    "raw",
    ["[link=file:///etc/passwd]x[/link]", "[bold red]R", "[@click=app.quit]q[/]",
     "a\\[b]", "[/]", "[#ff0000]x"],  # fmt: skip
)
def test_safe_text_shows_markup_as_written(raw):
    text = Text.from_markup(safe_text(raw))
    assert text.plain == raw and text.spans == []
    assert safe_rich(raw).plain == raw


def test_safe_text_inside_markup_does_not_leak_into_the_surrounding_tags():
    text = Text.from_markup(f"[bold]{safe_text('x[/bold][link=file:///e]y')}[/bold] z")
    assert text.plain == "x[/bold][link=file:///e]y z"
    assert all(span.style == "bold" for span in text.spans)


_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(max_codepoint=0x2070), st.sampled_from("[]/\\=#@\x1b\x9b\x9c\x9d\x07")
    ),
    max_size=60,
)


@given(_TEXT)
def test_no_control_character_survives(raw):
    out = plain_text(raw)
    assert not any(
        (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in out
    )
    assert plain_text(out) == out  # nothing left to remove


@given(_TEXT)
def test_rich_shows_safe_text_as_plain_text(raw):
    want = plain_text(raw)
    text = Text.from_markup(safe_text(raw))
    assert text.spans == []
    # rich.markup.escape doubles a final backslash, so that it cannot escape a tag after it
    assert text.plain == (want + "\\" if want.endswith("\\") and not want.endswith("\\\\")
                          else want)  # fmt: skip


def test_progress_lines_quote_stored_pairs_inert():
    line = _describe("labelled", {"done": 1, "total": 2, "pair": "Pt\x1b]0;t\x07[bold]x",
                                  "status": "ok\x9b2J"})  # fmt: skip
    assert line is not None
    assert Text.from_markup(line).plain == "  1/2 Pt[bold]x: ok"


def test_library_warnings_during_a_run_reach_stderr_inert(capsys):
    import io

    from ase.build import fcc111
    from rich.console import Console

    from alloop.loop.face.progress import ProgressReporter
    from alloop.oracles.guard import guarded_label
    from alloop.oracles.types import AdsorbateSpec, OraclePair

    key = "Pt\x1b]0;pwned\x07|CO\x9b2J[bold]x"
    pair = OraclePair(key, "Pt", "CO", fcc111("Pt", (1, 1, 2), vacuum=5.0),
                      AdsorbateSpec("CO", "[C-]#[O+]", None, ()))  # fmt: skip

    def broken(p: OraclePair) -> None:
        raise ValueError(f"cannot label {p.key}")

    with ProgressReporter(Console(file=io.StringIO()), quiet=True):
        result = guarded_label(broken, pair, "mlip", {})  # logs the failure with its traceback
    assert result.status == "failed"
    err = capsys.readouterr().err
    assert "pair Pt|CO[bold]x failed with an unexpected error" in err
    assert "ValueError: cannot label Pt|CO[bold]x" in err
    assert not any(ord(c) < 0x20 and c not in "\n\t" or 0x7F <= ord(c) <= 0x9F for c in err)
