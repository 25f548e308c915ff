"""Adsorbate descriptor vector from SMILES: the 208 RDKit descriptors AdsMT uses.

AdsMT featurises an adsorbate with the 208 entries that ``rdkit.Chem.Descriptors._descList``
held in RDKit 2022/2023, ``Ipc`` taken as ``Ipc(avg=True)``. Newer RDKit lists more (217 in
2026.09: ``SPS``, ``AvgIpc``, ``NumAmideBonds``, ``NumAtomStereoCenters``,
``NumBridgeheadAtoms``, ``NumHeterocycles``, ``NumSpiroAtoms``,
``NumUnspecifiedAtomStereoCenters`` and ``Phi`` were added) and moved ``MaxAbsEStateIndex``
first. :data:`ADSMT_DESCRIPTOR_NAMES` is the AdsMT order, fixed here and not read from the
installed RDKit; it was identified by matching all 25 × 208 values of ``ads_des`` in the
published ``examples.json`` (every value agrees within 4e-6, the float32 rounding of the file).

2D descriptors cannot tell E/Z isomers apart, which share a graph but not a GMAE. With
``stereo=True`` two counts are appended, the E and the Z double bonds of the isomeric SMILES
(:data:`STEREO_FEATURE_NAMES`). R/S centres are deliberately left out: enantiomers on an achiral
surface have the same adsorption energy, so an R/S count would only let the model fit noise.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors
from rdkit.rdBase import BlockLogs

from alloop.surrogate.errors import FeaturisationError

__all__ = [
    "ADSMT_DESCRIPTOR_NAMES",
    "STEREO_FEATURE_NAMES",
    "adsorbate_descriptors",
    "descriptor_names",
    "descriptor_spec_hash",
]

logger = logging.getLogger(__name__)

_ESTATE = ("MaxEStateIndex", "MinEStateIndex", "MaxAbsEStateIndex", "MinAbsEStateIndex")
# fmt: off
ADSMT_DESCRIPTOR_NAMES: tuple[str, ...] = (
    *_ESTATE, "qed", "MolWt", "HeavyAtomMolWt", "ExactMolWt", "NumValenceElectrons",
    "NumRadicalElectrons", "MaxPartialCharge", "MinPartialCharge", "MaxAbsPartialCharge",
    "MinAbsPartialCharge", "FpDensityMorgan1", "FpDensityMorgan2", "FpDensityMorgan3",
    "BCUT2D_MWHI", "BCUT2D_MWLOW", "BCUT2D_CHGHI", "BCUT2D_CHGLO", "BCUT2D_LOGPHI",
    "BCUT2D_LOGPLOW", "BCUT2D_MRHI", "BCUT2D_MRLOW", "BalabanJ", "BertzCT", "Chi0", "Chi0n",
    "Chi0v", "Chi1", "Chi1n", "Chi1v", "Chi2n", "Chi2v", "Chi3n", "Chi3v", "Chi4n", "Chi4v",
    "HallKierAlpha", "Ipc", "Kappa1", "Kappa2", "Kappa3", "LabuteASA",
    *(f"PEOE_VSA{i}" for i in (1, 10, 11, 12, 13, 14, 2, 3, 4, 5, 6, 7, 8, 9)),
    *(f"SMR_VSA{i}" for i in (1, 10, 2, 3, 4, 5, 6, 7, 8, 9)),
    *(f"SlogP_VSA{i}" for i in (1, 10, 11, 12, 2, 3, 4, 5, 6, 7, 8, 9)),
    "TPSA",
    *(f"EState_VSA{i}" for i in (1, 10, 11, 2, 3, 4, 5, 6, 7, 8, 9)),
    *(f"VSA_EState{i}" for i in (1, 10, 2, 3, 4, 5, 6, 7, 8, 9)),
    "FractionCSP3", "HeavyAtomCount", "NHOHCount", "NOCount", "NumAliphaticCarbocycles",
    "NumAliphaticHeterocycles", "NumAliphaticRings", "NumAromaticCarbocycles",
    "NumAromaticHeterocycles", "NumAromaticRings", "NumHAcceptors", "NumHDonors",
    "NumHeteroatoms", "NumRotatableBonds", "NumSaturatedCarbocycles",
    "NumSaturatedHeterocycles", "NumSaturatedRings", "RingCount", "MolLogP", "MolMR",
)
# fmt: on
STEREO_FEATURE_NAMES: tuple[str, ...] = ("n_double_bonds_E", "n_double_bonds_Z")


def _fragment_names() -> tuple[str, ...]:
    # The 85 fr_* functional-group counts close the AdsMT list, in RDKit's order.
    return tuple(n for n, _ in Descriptors._descList if n.startswith("fr_"))


ADSMT_DESCRIPTOR_NAMES = ADSMT_DESCRIPTOR_NAMES + _fragment_names()


def _functions() -> dict[str, Callable[[Chem.Mol], float]]:
    table = dict(Descriptors._descList)
    missing = [n for n in ADSMT_DESCRIPTOR_NAMES if n not in table]
    if missing or len(ADSMT_DESCRIPTOR_NAMES) != 208:
        raise FeaturisationError(
            f"installed RDKit lacks AdsMT descriptors {missing} "
            f"(or the list has {len(ADSMT_DESCRIPTOR_NAMES)} != 208 names)"
        )
    table["Ipc"] = lambda mol: Descriptors.Ipc(mol, avg=True)
    return {n: table[n] for n in ADSMT_DESCRIPTOR_NAMES}


_FUNCTIONS = _functions()


def descriptor_names(stereo: bool) -> tuple[str, ...]:
    """Names of the descriptor vector's entries, in order (208, plus 2 with ``stereo``)."""
    return ADSMT_DESCRIPTOR_NAMES + (STEREO_FEATURE_NAMES if stereo else ())


def descriptor_spec_hash(stereo: bool) -> str:
    """Short hash of the descriptor definition, stored in checkpoints to refuse mismatches."""
    text = "|".join(descriptor_names(stereo)) + "|Ipc(avg=True)"
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _stereo_counts(mol: Chem.Mol) -> list[float]:
    Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
    n_e = n_z = 0
    for bond in mol.GetBonds():
        stereo = bond.GetStereo()
        if stereo in (Chem.BondStereo.STEREOE, Chem.BondStereo.STEREOTRANS):
            n_e += 1
        elif stereo in (Chem.BondStereo.STEREOZ, Chem.BondStereo.STEREOCIS):
            n_z += 1
    return [float(n_e), float(n_z)]


def adsorbate_descriptors(smiles: str, stereo: bool = False) -> np.ndarray:
    """Raw (unstandardised) descriptor vector of one adsorbate.

    Args:
        smiles: adsorbate SMILES; radicals such as ``[CH]`` are accepted as written.
        stereo: append the E and Z double-bond counts (:data:`STEREO_FEATURE_NAMES`).

    Returns:
        `D` float64 array, `D` = 208 (210 with ``stereo``), in :func:`descriptor_names` order.
        Non-finite values (e.g. ``BalabanJ`` of a single atom in some RDKit versions) become 0.

    Raises:
        FeaturisationError: RDKit cannot parse ``smiles``.
    """
    blocker = BlockLogs()  # the parse error is reported below
    mol = Chem.MolFromSmiles(smiles)
    del blocker
    if mol is None:
        raise FeaturisationError(f"RDKit cannot parse adsorbate SMILES {smiles!r}")
    # the descriptors do not block RDKit's log: the fr_* counts search substructures, and a
    # Ctrl-C that RDKit takes during a search shows only as a log notice
    # (alloop.loop.bridges.rdkit_log)
    try:
        values = [float(fn(mol)) for fn in _FUNCTIONS.values()]
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        raise FeaturisationError(f"descriptors failed for SMILES {smiles!r}: {exc}") from exc
    if stereo:
        values += _stereo_counts(Chem.Mol(mol))
    out = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        names = [n for n, b in zip(descriptor_names(stereo), bad, strict=True) if b]
        logger.debug("non-finite descriptors %s for %s set to 0", names, smiles)
        out[bad] = 0.0
    return out
