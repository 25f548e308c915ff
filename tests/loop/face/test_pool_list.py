"""`alloop pool --list`: the FG metals and families a `pool.fg` section may name, counted from
the data folder itself; refusals are one line."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from alloop.loop.config import FG_METALS
from alloop.loop.face.cli import app
from tests.conftest import FG_ROOT

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def test_pool_list_names_every_metal_and_family_with_its_molecules():
    result = runner.invoke(app, ["pool", "--list", "--root", str(FG_ROOT)], env=WIDE)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"metals ({len(FG_METALS)}): {' '.join(FG_METALS)}" in out
    families = {d.name[len("gas_"):]: len(list((d / "structures").glob("*.contcar")))
                for d in FG_ROOT.glob("gas_*") if d.is_dir()}  # fmt: skip
    assert len(families) >= 10
    assert f"families ({len(families)}, {sum(families.values())} molecules)" in out
    for family, n in families.items():
        name = re.escape(family)
        assert re.search(rf"^ {name} +│ +{n} │ {name}/", out, re.M), family
    assert "in a config: pool: {fg: {metals: [" in out


def test_pool_without_list_and_with_a_bad_root_is_one_line(tmp_path):
    bare = runner.invoke(app, ["pool"], env=WIDE)
    assert bare.exit_code == 1 and bare.output.strip().splitlines() == [
        "error: say what to do: `alloop pool --list` lists the FG metals and families"
    ]
    bad = runner.invoke(app, ["pool", "--list", "--root", str(tmp_path)], env=WIDE)
    assert bad.exit_code == 1
    (line,) = bad.output.strip().splitlines()
    assert line.startswith("error: ") and f"no FG reference table at {tmp_path}" in line
