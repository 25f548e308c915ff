"""The wheel maps loop/ surrogate/ oracles/ store/ under the `alloop` namespace, migrations
included, and puts no generic top-level package (`store`, `loop`, ...) into site-packages."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_layout(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("alloop-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.startswith("alloop-")}
    assert top == {"alloop"}
    for needed in (
        "alloop/loop/face/cli.py",
        "alloop/loop/agent/engine.py",
        "alloop/loop/bridges/oracle.py",
        "alloop/store/models.py",
        "alloop/store/migrations/env.py",
        "alloop/store/migrations/script.py.mako",
        "alloop/store/migrations/versions/0001_initial_schema.py",
        "alloop/surrogate/__init__.py",
        "alloop/oracles/__init__.py",
        "alloop/oracles/data/fg/fg_gmae_derived.csv",
        "alloop/oracles/data/fg/LICENSE_GAME-Net.txt",
        "alloop/oracles/data/fg/metal_surfaces/structures/pt-0000.contcar",
        "alloop/oracles/data/fg/gas_group2b/structures/3611.contcar",
    ):
        assert needed in names, needed
    assert "alloop/__init__.py" not in names  # a namespace package
    fg = [n for n in names if n.startswith("alloop/oracles/data/fg/")]
    assert sum(n.endswith(".contcar") for n in fg) == 14 + 207  # no adsorbed configurations
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "alloop = alloop.loop.face.entry:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_wheel_install_runs_migrations(tmp_path):
    """Install the wheel into a fresh target dir and create a campaign from there."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "w"), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "w").glob("alloop-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import alloop.store as s; assert s.__file__.startswith(sys.argv[1]), s.__file__;"
        "from ase.build import fcc111, molecule;"
        "from alloop.store.records import NewSurface, NewAdsorbate;"
        "st = s.CampaignStore.create(sys.argv[2], name='w', config={}, seed=0,"
        " surfaces=[NewSurface('Pt', fcc111('Pt', (1, 1, 2), vacuum=5), 'x')],"
        " adsorbates=[NewAdsorbate('CO', 'CO', 'C#O', None)]); print(len(st.pairs()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(target), str(tmp_path / "w.alloop")],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    # installed, not a checkout: the FG data is the copy inside the wheel, and it serves a pool
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from alloop.oracles.fg_data import fg_data_root;"
        "from alloop.surrogate.fg import read_fg_slabs; root = fg_data_root();"
        "assert str(root).startswith(sys.argv[1]), root; print(len(read_fg_slabs(root)))"
    )
    env = {k: v for k, v in os.environ.items() if k != "ALLOOP_FG_ROOT"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "14"
