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
by slab content. Measured on the FG-GMAE stand-in: 207 molecules in 13 s, 14 slabs of 48 atoms
in 7 s (one core). Whether it helps is measured in benchmarks/results/surrogate_learning_curve.md.

``MLIP_FEATURES`` names the choices; ``"none"`` (no MLIP) is the default.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
import torch
from ase import Atoms

from alloop.surrogate.errors import FeaturisationError

__all__ = ["MLIP_FEATURES", "MLIP_FEATURE_DIM", "mlip_atom_features", "molecule_from_smiles"]

#: names a campaign or benchmark may choose from; ``sevennet-0``: SevenNet-0 (11Jul2024), whose
#: weights ship inside the ``sevenn`` wheel (no download)
MLIP_FEATURES: tuple[str, ...] = ("none", "sevennet-0")
#: width of the per-atom feature vector of each MLIP (the scalars fed to its energy readout)
MLIP_FEATURE_DIM: dict[str, int] = {"none": 0, "sevennet-0": 128}

_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()


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
        x = captured.pop("x").to("cpu").double().numpy()
    if x.shape != (len(atoms), MLIP_FEATURE_DIM[mlip]) or not np.isfinite(x).all():
        raise FeaturisationError(
            f"{mlip} gave features of shape {x.shape} (or non-finite) for "
            f"{atoms.get_chemical_formula()}"
        )
    return x


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

    blocker = BlockLogs()
    try:
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            raise FeaturisationError(f"RDKit cannot parse adsorbate SMILES {smiles!r}")
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
    finally:
        del blocker
    atoms = Atoms(symbols, positions=positions)
    atoms.center(vacuum=vacuum_ang)
    atoms.pbc = False
    return atoms
