"""The wheel maps loop/ surrogate/ oracles/ store/ under the `alloop` namespace, migrations
included, and puts no generic top-level package (`store`, `loop`, ...) into site-packages."""

from __future__ import annotations

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
        "alloop/loop/cli.py",
        "alloop/store/models.py",
        "alloop/store/migrations/env.py",
        "alloop/store/migrations/script.py.mako",
        "alloop/store/migrations/versions/0001_initial_schema.py",
        "alloop/surrogate/__init__.py",
        "alloop/oracles/__init__.py",
    ):
        assert needed in names, needed
    assert "alloop/__init__.py" not in names  # a namespace package
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "alloop = alloop.loop.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


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
