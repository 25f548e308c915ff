"""The import rules of CONTRACTS.md, read from the source with `ast` (imports inside functions
count too): surrogate/, oracles/ and store/ never import one another or loop/; loop/ wires them.
Nothing imports the folders by their bare names (`store`, `loop`, ...): they install as
`alloop.<package>`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("loop", "surrogate", "oracles", "store")
#: which alloop packages each package may import besides itself
ALLOWED: dict[str, set[str]] = {
    "loop": {"surrogate", "oracles", "store"},
    "surrogate": set(),
    "oracles": set(),
    "store": set(),
}


def imported_modules(source: str) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``source`` (relative ones skipped:
    they cannot leave the package)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if node.module == "alloop":  # `from alloop import store`
                found += [(node.lineno, f"alloop.{alias.name}") for alias in node.names]
    return sorted(found)


def violations(package: str, source: str, where: str) -> list[str]:
    """The imports in ``source`` (a module of ``package``) that break the rules."""
    bad = []
    for line, name in imported_modules(source):
        parts = name.split(".")
        if parts[0] in PACKAGES:
            bad.append(f"{where}:{line} imports {name} by its folder name; use alloop.{name}")
        elif parts[0] == "alloop" and parts[1:2] and parts[1] not in {package} | ALLOWED[package]:
            bad.append(f"{where}:{line} imports {name}: {package}/ must not import {parts[1]}/")
    return bad


def test_checker_catches_what_the_rules_forbid() -> None:
    source = (
        "import alloop.oracles.types\n"
        "from alloop.store.records import NewLabel\n"
        "def f():\n    from alloop import loop\n"
        "from store import x\n"
        "from alloop.surrogate.fg import read_fg_table\n"
        "from .fg import read_fg_slabs\n"
    )
    assert violations("surrogate", source, "m.py") == [
        "m.py:1 imports alloop.oracles.types: surrogate/ must not import oracles/",
        "m.py:2 imports alloop.store.records: surrogate/ must not import store/",
        "m.py:4 imports alloop.loop: surrogate/ must not import loop/",
        "m.py:5 imports store by its folder name; use alloop.store",
    ]
    assert violations("loop", source.replace("from store import x\n", ""), "m.py") == []


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_follow_the_rules(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    bad = []
    for path in files:
        where = str(path.relative_to(REPO))
        bad += violations(package, path.read_text(encoding="utf-8"), where)
    assert not bad, "\n".join(bad)


#: inside loop/: which sub-packages may import which (config and errors are shared by all)
LOOP_PARTS: dict[str, set[str]] = {
    "agent": {"agent", "bridges"},
    "bridges": {"bridges"},
    "face": {"face", "agent", "bridges"},
}


@pytest.mark.parametrize("part", sorted(LOOP_PARTS))
def test_loop_parts_import_downwards(part: str) -> None:
    """The agent and the bridges never import the face (a screen or a command can change
    without touching what a campaign decides), the bridges never import the agent (they
    translate and decide nothing), and the agent reaches the surrogate and the oracles only
    through the bridges."""
    files = sorted((REPO / "loop" / part).rglob("*.py"))
    assert files
    bad = []
    for path in files:
        for line, name in imported_modules(path.read_text(encoding="utf-8")):
            parts = name.split(".")
            inner = parts[:2] == ["alloop", "loop"] and parts[2:3] and parts[2] in LOOP_PARTS
            if inner and parts[2] not in LOOP_PARTS[part]:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
            if (
                part == "agent"
                and parts[0] == "alloop"
                and parts[1:2] in (["surrogate"], ["oracles"])
            ):
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}: use loop/bridges/")
    assert not bad, "\n".join(bad)
