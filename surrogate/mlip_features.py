"""Frozen foundation-MLIP representations as extra surrogate inputs (lever (c) of issue 16).

A pretrained interatomic potential has already learnt, from millions of DFT structures, which
local environments are alike. Its per-atom invariant features (the scalars the last interaction
block hands to the energy readout) are read here, never trained:

* **adsorbate**: the molecule's mean per-atom feature vector, appended to its RDKit descriptors.
  The molecule is built from its SMILES (RDKit ETKDG conformer, seed 0, then MMFF94 where it has
  parameters), so a campaign needs nothing beyond the SMILES; a 3D conformer also tells E/Z
  isomers apart, which the 2D descriptors cannot.
* **slab**: the per-atom feature vector of every slab atom, an extra node input of the slab
  graph (projected and added to the element embedding).

One forward pass per molecule and per distinct slab; the featuriser caches both by SMILES and
by slab content within a process, and every vector is also kept on disk
(`feature_cache_dir`: ``$ALLOOP_FEATURE_CACHE``, else ``$XDG_CACHE_HOME/alloop/mlip-features``
or ``~/.cache/alloop/mlip-features``; an empty ``ALLOOP_FEATURE_CACHE`` turns it off), keyed by
the MLIP, the ``sevenn`` version and the structure's content, so a resumed campaign, the
dashboard and other campaigns on the same surfaces do not run the MLIP again. Measured on the
FG-GMAE stand-in: 207 molecules in 13 s, 14 slabs of 48 atoms in 7 s (one core). Whether it
helps is measured in benchmarks/results/surrogate_learning_curve.md.

``MLIP_FEATURES`` names the choices; the shipped default is in `alloop.surrogate.defaults`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import threading
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from alloop.surrogate.errors import FeaturisationError

__all__ = [
    "CACHE_ENV",
    "MLIP_FEATURES",
    "MLIP_FEATURE_DIM",
    "feature_cache_dir",
    "mlip_atom_features",
    "molecule_from_smiles",
]

#: names a campaign or benchmark may choose from; ``sevennet-0``: SevenNet-0 (11Jul2024), whose
#: weights ship inside the ``sevenn`` wheel (no download)
MLIP_FEATURES: tuple[str, ...] = ("none", "sevennet-0")
#: width of the per-atom feature vector of each MLIP (the scalars fed to its energy readout)
MLIP_FEATURE_DIM: dict[str, int] = {"none": 0, "sevennet-0": 128}

_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()
logger = logging.getLogger(__name__)
#: the environment variable that moves (or, set empty, turns off) the on-disk feature cache
CACHE_ENV = "ALLOOP_FEATURE_CACHE"


def feature_cache_dir() -> Path | None:
    """Where MLIP feature vectors are kept between processes; None when turned off."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return Path(chosen).expanduser() if chosen.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "alloop" / "mlip-features"


@functools.cache
def _sevenn_version() -> str:
    """The installed ``sevenn`` version, read once per process (not once per structure)."""
    try:
        return metadata.version("sevenn")
    except metadata.PackageNotFoundError:
        return "?"


def _cache_key(atoms: Atoms, mlip: str) -> str:
    """The MLIP, its package version and the structure (elements, positions to 1e-6 Å, cell,
    periodicity): what the features depend on."""
    h = hashlib.sha256(f"{mlip};{_sevenn_version()};".encode())
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.round(np.asarray(atoms.positions, dtype=np.float64), 6).tobytes())
    h.update(np.round(np.asarray(atoms.cell.array, dtype=np.float64), 6).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=np.bool_).tobytes())
    return h.hexdigest()


def _cached(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The stored vectors, or None when absent or not what this structure needs (a damaged or
    foreign file is data: read without pickle, checked, and then ignored)."""
    try:
        x = np.load(path, allow_pickle=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring the unreadable MLIP feature cache file %s: %s", path, exc)
        return None
    if x.shape != shape or x.dtype != np.float64 or not np.isfinite(x).all():
        logger.warning("ignoring the MLIP feature cache file %s: not %s finite floats", path, shape)
        return None
    return x


def _keep(path: Path, x: np.ndarray) -> None:
    """Write atomically (a reader never sees half a file); a cache that cannot be written is
    skipped with a warning, never an error."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.save(fh, x, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning("cannot keep MLIP features in %s: %s", path.parent, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _sevennet() -> Any:
    """SevenNet-0's ASE calculator with a hook that keeps the readout's input (built once)."""
    try:
        from sevenn import _const
        from sevenn.calculator import SevenNetCalculator
    except ImportError as exc:
        raise FeaturisationError(
            f"MLIP features need the sevenn package ({exc}): install alloop[mlip], or set "
            "surrogate.mlip_features: none"
        ) from exc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "no tensor product accelerator" on CPU
        try:
            calc = SevenNetCalculator(str(_const.SEVENNET_0_11Jul2024), device="cpu")
        except (ValueError, RuntimeError, KeyError, OSError) as exc:
            raise FeaturisationError(f"cannot load SevenNet-0 for MLIP features: {exc}") from exc
    readout = calc.model._modules.get("reduce_input_to_hidden")
    if readout is None:
        raise FeaturisationError(
            "this sevenn version has no 'reduce_input_to_hidden' block to read features from"
        )
    captured: dict[str, Any] = {}

    def keep(_module: Any, inputs: tuple[Any, ...]) -> None:
        captured["x"] = inputs[0]["x"].detach()

    readout.register_forward_pre_hook(keep)
    return calc, captured


def mlip_atom_features(atoms: Atoms, mlip: str) -> np.ndarray:
    """`n x F` float64 per-atom features of ``atoms`` from the frozen MLIP ``mlip``.

    Raises:
        FeaturisationError: unknown ``mlip``, empty structure, or the MLIP failed on it.
    """
    if mlip not in MLIP_FEATURES or mlip == "none":
        raise FeaturisationError(
            f"unknown MLIP for features {mlip!r}; choose from {', '.join(MLIP_FEATURES[1:])}"
        )
    if len(atoms) == 0:
        raise FeaturisationError("cannot compute MLIP features of an empty structure")
    shape = (len(atoms), MLIP_FEATURE_DIM[mlip])
    folder = feature_cache_dir()
    path = None if folder is None else folder / f"{mlip}-{_cache_key(atoms, mlip)}.npy"
    if path is not None and (x := _cached(path, shape)) is not None:
        return x
    x = _compute(atoms, mlip)
    if x.shape != shape or not np.isfinite(x).all():
        raise FeaturisationError(
            f"{mlip} gave features of shape {x.shape} (or non-finite) for "
            f"{atoms.get_chemical_formula()}"
        )
    if path is not None:
        _keep(path, x)
    return x


def _compute(atoms: Atoms, mlip: str) -> np.ndarray:
    """One forward pass of the MLIP over ``atoms``; the readout's input per atom."""
    with _LOCK:  # one calculator, one hook: calls from threads take turns
        # the MLIP takes forces by autograd, also when called from a no-grad or inference
        # context; its weights must not be loaded as inference tensors either
        with torch.inference_mode(False), torch.enable_grad():
            if mlip not in _MODELS:
                _MODELS[mlip] = _sevennet()
            calc, captured = _MODELS[mlip]
            calc.reset()  # ASE would skip the model for atoms equal to the last ones
            probe = atoms.copy()
            probe.calc = calc
            try:
                probe.get_potential_energy()
            except (ValueError, RuntimeError, KeyError, IndexError) as exc:
                raise FeaturisationError(
                    f"{mlip} failed on {atoms.get_chemical_formula()}: {exc}"
                ) from exc
        return np.asarray(captured.pop("x").to("cpu").double().numpy())


def molecule_from_smiles(smiles: str, vacuum_ang: float = 8.0) -> Atoms:
    """A 3D gas-phase molecule (hydrogens explicit) from ``smiles``: RDKit ETKDG v3 with seed 0,
    then MMFF94 where it has parameters; centred in a box with ``vacuum_ang`` around it,
    non-periodic. Deterministic for a given RDKit version.

    Raises:
        FeaturisationError: RDKit cannot parse the SMILES or embed a conformer.
    """
    from rdkit import Chem
    from rdkit.Chem import rdDistGeom, rdForceFieldHelpers
    from rdkit.rdBase import BlockLogs

    blocker = BlockLogs()  # the parse error is reported below
    mol = Chem.MolFromSmiles(smiles)
    del blocker
    if mol is None:
        raise FeaturisationError(f"RDKit cannot parse adsorbate SMILES {smiles!r}")
    # the embedding does not block RDKit's log: ETKDG searches substructures, and a Ctrl-C that
    # RDKit takes during a search shows only as a log notice (alloop.loop.bridges.rdkit_log)
    mol = Chem.AddHs(mol)
    params = rdDistGeom.ETKDGv3()
    # rdkit's stubs type every EmbedParameters field as EmbedParameters
    params.randomSeed = 0  # type: ignore[assignment]
    if rdDistGeom.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True  # type: ignore[assignment]
        if rdDistGeom.EmbedMolecule(mol, params) != 0:
            raise FeaturisationError(f"RDKit cannot build a 3D conformer of {smiles!r}")
    if rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol):
        rdForceFieldHelpers.MMFFOptimizeMolecule(mol, maxIters=500)
    symbols = [a.GetSymbol() for a in mol.GetAtoms()]
    positions = mol.GetConformer().GetPositions()
    atoms = Atoms(symbols, positions=positions)
    atoms.center(vacuum=vacuum_ang)
    atoms.pbc = False
    return atoms
