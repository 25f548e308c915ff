"""Where FG data comes from (`alloop.oracles.fg_data`), and the compact copy that ships."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from alloop.oracles import fg_data
from alloop.oracles.errors import OracleError
from alloop.oracles.fg_data import (
    FG_ROOT_ENV,
    SHIPPED_FG_ROOT,
    compact_files,
    fg_data_root,
    holds_configurations,
    require_configurations,
)
from tests.conftest import FG_ROOT

#: files of the shipped folder that are not copies of the source
NOT_DATA = {"README.md", "build.py"}


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data_files(root: Path) -> list[Path]:
    return sorted(
        p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.name not in NOT_DATA
    )


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$ALLOOP_FG_ROOT, else ../shared/data/fg beside a checkout, else the shipped copy: run on
    the real module copied into a made-up checkout."""
    checkout = tmp_path / "checkout"
    (checkout / "oracles").mkdir(parents=True)
    shutil.copyfile(fg_data.__file__, checkout / "oracles" / "fg_data.py")
    sibling = tmp_path / "shared" / "data" / "fg"
    sibling.mkdir(parents=True)
    module = _load(checkout / "oracles" / "fg_data.py", "fg_data_in_a_checkout")
    shipped = checkout / "oracles" / "data" / "fg"
    monkeypatch.delenv(FG_ROOT_ENV, raising=False)

    assert module.fg_data_root() == shipped  # no table beside it, no pyproject.toml
    (sibling / "fg_gmae_derived.csv").write_text("metal\n")
    assert module.fg_data_root() == shipped  # not a source checkout (an installed package)
    (checkout / "pyproject.toml").write_text("")
    assert module.fg_data_root() == sibling
    monkeypatch.setenv(FG_ROOT_ENV, str(tmp_path / "elsewhere"))
    assert module.fg_data_root() == tmp_path / "elsewhere"  # as given, even if absent


def test_this_checkout_resolves_to_existing_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FG_ROOT_ENV, raising=False)
    root = fg_data_root()
    assert (root / "fg_gmae_derived.csv").is_file()
    assert root == SHIPPED_FG_ROOT or holds_configurations(root)


def test_shipped_copy_is_compact_and_complete_for_the_readers() -> None:
    from alloop.surrogate.fg import read_fg_table

    size = sum((SHIPPED_FG_ROOT / p).stat().st_size for p in _data_files(SHIPPED_FG_ROOT))
    assert size < 2_000_000
    assert not holds_configurations(SHIPPED_FG_ROOT)
    assert (SHIPPED_FG_ROOT / "LICENSE_GAME-Net.txt").read_text().startswith("MIT License")
    records = read_fg_table(SHIPPED_FG_ROOT)
    assert len(records) == 2898 and len({r.metal for r in records}) == 14
    assert len({r.molecule_key for r in records}) == 207


def test_what_needs_configurations_says_so_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(OracleError, match="the compact copy alloop ships") as info:
        require_configurations(SHIPPED_FG_ROOT, "the benchmark")
    assert str(info.value).startswith("the benchmark needs the adsorbed configurations")
    assert "\n" not in str(info.value) and FG_ROOT_ENV in str(info.value)
    with pytest.raises(OracleError, match=f"{tmp_path} has no configurations"):
        require_configurations(tmp_path, "x")
    with pytest.raises(OracleError, match="is not the full FG dataset"):
        compact_files(SHIPPED_FG_ROOT)


@pytest.mark.skipif(
    not holds_configurations(FG_ROOT),
    reason=f"compares the shipped copy with the full FG set, and {FG_ROOT} is the shipped copy",
)
def test_shipped_copy_is_what_build_makes_from_the_full_set(tmp_path: Path) -> None:
    build = _load(SHIPPED_FG_ROOT / "build.py", "fg_build")
    n = build.rebuild(FG_ROOT, tmp_path)
    rebuilt = _data_files(tmp_path)
    assert rebuilt == compact_files(FG_ROOT) and len(rebuilt) == n == 235
    assert _data_files(SHIPPED_FG_ROOT) == rebuilt
    for rel in rebuilt:
        assert (SHIPPED_FG_ROOT / rel).read_bytes() == (FG_ROOT / rel).read_bytes(), rel
