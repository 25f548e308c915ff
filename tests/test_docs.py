"""The README a newcomer reads in ten minutes, and the docs/ it links to: short, its first screen
gets from clone to a finished small campaign with its runtime, its minimal config is the shipped
file and valid, every command is named, and every relative link and anchor resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alloop.loop.config import load_config
from alloop.loop.face.cli import app

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
#: a README read in ten minutes: what it does, set-up, a first campaign, the commands, links
MAX_README_LINES = 120
#: what a terminal shows before the first scroll
FIRST_SCREEN_LINES = 50

LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped, spaces to -."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = re.match(r"^#{1,6} (.*)", line)
        if m and not fenced:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(doc):
    found = links(doc)
    assert doc != README or len(found) >= 10  # the README links to the docs
    for target in found:
        file, _, anchor = target.partition("#")
        where = (doc.parent / file).resolve() if file else doc
        assert where.exists(), f"{doc.name}: {target} -> {where} does not exist"
        if anchor:
            assert anchor in anchors(where), f"{doc.name}: no heading for #{anchor} in {where}"


def test_the_docs_are_all_linked_from_the_readme():
    linked = {(REPO / t.partition("#")[0]).resolve() for t in links(README)}
    assert DOCS and {d.resolve() for d in DOCS} <= linked


def test_readme_is_short_and_its_first_screen_runs_a_campaign_with_its_runtime():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES
    first = "\n".join(lines[:FIRST_SCREEN_LINES])
    for needed in ("make run", "make test", "alloop run configs/minimal.yaml",
                   "alloop status minimal.alloop"):  # fmt: skip
        assert needed in first, needed
    assert re.search(r"Runtime: \d+ s", first)
    assert "<!-- minimal config: end -->" in first


def test_readme_minimal_config_is_the_shipped_file_and_valid():
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- minimal config: start -->", "<!-- minimal config: end"
    block = re.search(rf"{start}\n```yaml\n(.*?)```\n{end}", text, flags=re.S)
    assert block is not None
    shipped = (REPO / "configs" / "minimal.yaml").read_text(encoding="utf-8").splitlines()
    body = [line for line in shipped if not line.startswith("#")]
    assert block.group(1).splitlines() == body
    cfg = load_config(REPO / "configs" / "minimal.yaml")
    assert cfg.oracle.kind == "replay" and cfg.budget.max_rounds == 4


def test_every_command_has_its_line_in_the_readme():
    text = README.read_text(encoding="utf-8")
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    assert "pool" in names
    for name in names:
        assert re.search(rf"^alloop {name}\b.*# ", text, flags=re.M), name
