"""Where the FG reference data comes from: one rule for the whole project.

The FG dataset (GAME-Net, Pablo-García et al. 2023, MIT) comes in two sizes with one layout:

* the **full set** (``shared/data/fg``, 27 MB): the table, the 14 clean slabs, the 207 gas-phase
  molecules and the 3,108 adsorbed configurations ``<family>/structures/*.contcar``;
* the **compact copy** shipped inside ``alloop.oracles`` (``data/fg/``, under 1 MB): the same
  files minus the adsorbed configurations, byte for byte (:func:`compact_files` names them;
  ``data/fg/build.py`` rebuilds it). Pools, replay energies, the surrogate's readers and the
  tests need nothing more; best DFT structures need the full set.

:func:`fg_data_root` decides which one a run uses: ``$ALLOOP_FG_ROOT`` if set, else
``../shared/data/fg`` beside a source checkout if it holds the table, else the compact copy.
"""

from __future__ import annotations

import os
from pathlib import Path

from alloop.oracles.errors import OracleError

__all__ = [
    "FG_ROOT_ENV",
    "FG_TABLE_NAME",
    "SHIPPED_FG_ROOT",
    "compact_files",
    "fg_data_root",
    "holds_configurations",
    "require_configurations",
]

#: environment variable naming an FG data directory; it wins over every other place
FG_ROOT_ENV = "ALLOOP_FG_ROOT"
FG_TABLE_NAME = "fg_gmae_derived.csv"
#: the compact copy inside the package (slabs, gas molecules, table; no adsorbed configurations)
SHIPPED_FG_ROOT = Path(__file__).resolve().parent / "data" / "fg"
#: files of the source that the compact copy keeps besides the structures
_COMPACT_TOP_FILES = (FG_TABLE_NAME, "LICENSE_GAME-Net.txt")

_CHECKOUT = Path(__file__).resolve().parents[1]


def fg_data_root() -> Path:
    """The FG data directory this process uses.

    1. ``$ALLOOP_FG_ROOT`` when set (used as given, so a wrong path fails loudly, not silently);
    2. ``../shared/data/fg`` beside the source checkout, when it holds ``fg_gmae_derived.csv``;
    3. the compact copy shipped with the package (:data:`SHIPPED_FG_ROOT`).
    """
    env = os.environ.get(FG_ROOT_ENV)
    if env:
        return Path(env)
    sibling = _CHECKOUT.parent / "shared" / "data" / "fg"
    if (_CHECKOUT / "pyproject.toml").is_file() and (sibling / FG_TABLE_NAME).is_file():
        return sibling
    return SHIPPED_FG_ROOT


def holds_configurations(root: Path) -> bool:
    """Whether ``root`` has adsorbed configurations (``<family>/structures/`` beside
    ``gas_<family>/``), i.e. is not the compact copy."""
    families = [gas.name[len("gas_") :] for gas in Path(root).glob("gas_*")]
    return any((Path(root) / family / "structures").is_dir() for family in families)


def require_configurations(root: Path, needed_by: str) -> None:
    """Raise one clear :class:`OracleError` line when ``root`` lacks adsorbed configurations.

    ``needed_by`` names what needs them, e.g. ``"ReplayOracle(load_structures=True)"``.
    """
    if not holds_configurations(root):
        shipped = Path(root).resolve() == SHIPPED_FG_ROOT
        what = "the compact copy alloop ships" if shipped else "no configurations"
        raise OracleError(
            f"{needed_by} needs the adsorbed configurations (<family>/structures/*.contcar) of "
            f"the full FG dataset, but {root} has {what}; set ${FG_ROOT_ENV} to the full FG data"
        )


def compact_files(full_root: Path) -> list[Path]:
    """Paths, relative to ``full_root``, of the files the compact copy holds (sorted).

    The table and licence, ``metal_surfaces/`` (14 slabs and their energies) and every
    ``gas_<family>/`` (207 molecules and their energies): everything but the adsorbed
    configurations.
    """
    full_root = Path(full_root)
    missing = [name for name in _COMPACT_TOP_FILES if not (full_root / name).is_file()]
    if missing or not holds_configurations(full_root):
        raise OracleError(
            f"{full_root} is not the full FG dataset (missing {missing or 'the configurations'})"
        )
    files = [Path(name) for name in _COMPACT_TOP_FILES]
    for folder in [full_root / "metal_surfaces", *sorted(full_root.glob("gas_*"))]:
        files.extend(p.relative_to(full_root) for p in folder.rglob("*") if p.is_file())
    return sorted(files)
