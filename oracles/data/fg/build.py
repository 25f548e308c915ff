"""Rebuild the compact FG copy in this folder from the full FG dataset.

    .venv/bin/python oracles/data/fg/build.py                 # from ../shared/data/fg
    .venv/bin/python oracles/data/fg/build.py --source DIR    # from another full copy

The copy is :func:`alloop.oracles.fg_data.compact_files` of the source, byte for byte (the
adsorbed configurations left out); ``README.md`` and this script stay as they are.
``tests/oracles/test_fg_data.py`` checks the copy against the source whenever the source is
present.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from alloop.oracles.fg_data import FG_TABLE_NAME, SHIPPED_FG_ROOT, compact_files

REPO = Path(__file__).resolve().parents[3]
KEEP = {"README.md", "build.py"}


def rebuild(source: Path, dest: Path = SHIPPED_FG_ROOT) -> int:
    """Replace the data files under ``dest`` by the compact part of ``source``; return the count."""
    files = compact_files(source)
    for old in sorted(dest.iterdir()):
        if old.name in KEEP:
            continue
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, dest / rel)
    return len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "fg")
    args = parser.parse_args()
    if not (args.source / FG_TABLE_NAME).is_file():
        parser.error(f"no {FG_TABLE_NAME} in {args.source}; give the full FG data with --source")
    n = rebuild(args.source)
    size = sum(p.stat().st_size for p in SHIPPED_FG_ROOT.rglob("*") if p.is_file())
    print(f"wrote {n} files from {args.source} to {SHIPPED_FG_ROOT} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
