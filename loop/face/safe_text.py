"""The one rule for showing text read from a campaign file: it is data, never terminal control
and never markup.

A campaign file travels (a colleague's `.alloop`, a run copied home from a cluster), so every
string in it (an acquisition's reason, a job's error, a label's provenance, a surface's key)
may hold escape sequences that retitle the window, clear the screen or write the clipboard
(OSC 52), or Rich markup that becomes a link. Before such a string reaches a terminal:

* `plain_text` removes whole escape sequences (CSI, OSC, DCS, SOS, PM, APC and two-character
  ESC sequences, in their 7-bit and 8-bit C1 forms, terminated or cut short), then every
  remaining C0/C1 control character and DEL, except newline and tab; and the Unicode
  bidirectional overrides and isolates, which reorder what the reader sees. Use it where the
  text is never parsed as markup: `rich.text.Text`, a Textual title, ``notify(markup=False)``.
* `safe_text` is `plain_text` with Rich markup escaped (`rich.markup.escape`): for every place
  a string is parsed as Rich markup (``console.print``, Rich table cells and titles, Textual
  `DataTable` string cells).

Textual's own markup (a `Static` given a string, ``notify``'s default) is not Rich's: it takes
``[C-]`` as a style and has no escape that round-trips, so stored text reaches a Textual widget
only as a `Text` (or a Rich renderable built with `safe_text`), never inside a markup string.
"""

from __future__ import annotations

import re

from rich.markup import escape
from rich.text import Text

# Whole sequences first, so that their parameters (an OSC's new window title, a CSI's
# arguments) go with them instead of being left behind as visible text.
_SEQUENCE = re.compile(
    # OSC, DCS, SOS, PM, APC: a string up to BEL or ST (ESC \ or 0x9c), or to the end
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    # CSI: parameters, intermediates, a final byte (absent when the text was cut short)
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    # any other escape: intermediates and a final byte (ESC c resets the terminal)
    r"|\x1b[ -/]*[0-~]?"
)
# C0 but newline and tab, DEL, C1; bidirectional embeddings, overrides and isolates
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain_text(text: str) -> str:
    """``text`` without escape sequences and control characters (newline and tab kept)."""
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


def safe_text(text: str) -> str:
    """``text`` as inert Rich markup: `plain_text`, then markup escaped, so that it shows
    exactly as `plain_text` gives it wherever Rich parses markup."""
    return escape(plain_text(text))


def safe_rich(text: str, style: str = "") -> Text:
    """``text`` as a Rich `Text` (never parsed as markup) after `plain_text`."""
    return Text(plain_text(text), style=style)
