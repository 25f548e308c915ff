"""Frozen records that cross the oracles package boundary.

``OraclePair`` goes in (an ``ase.Atoms`` slab plus an ``AdsorbateSpec``), ``OracleResult`` comes
out. Both are frozen dataclasses; the ``ase.Atoms`` they hold are private copies taken at
construction, so mutating the caller's object afterwards cannot change a stored record.

Provenance keys every oracle writes (JSON-serialisable values only):

``calculator``        the model/code that produced the energy (``"emt"``, ``"sevennet-mf-0"``, ...)
``weights_hash``      sha256 of the weights file, or ``None`` for parameter-free calculators
``reference_scheme``  how E_ads was referenced (``"gas_phase_molecule"``, ``"atomic"``, ...)
``placements``        list of per-placement dicts (site, energies, anomaly flags, force calls, ...)
``placements_tried``  number of relaxations attempted
``anomaly_flags``     union of the anomaly flags seen over all placements
``force_calls``       total energy/force evaluations
``wall_s``            wall-clock seconds spent on the pair
``error``             ``None``, or ``"<kind>: <message>"`` when ``status == "failed"``

Written by the MLIP oracle only (older labels lack it; readers use ``.get``):

``binding_surface_atoms``  slab atom indices (the pair's slab order) bonded to the adsorbate in
                           the minimum structure, or ``None`` without one
                           (:func:`alloop.oracles.surface_local.binding_surface_atoms`)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args, runtime_checkable

from ase import Atoms

from alloop.oracles.errors import OracleError

Status = Literal["ok", "anomalous", "failed"]
Fidelity = Literal["replay", "mlip", "dft_single_point", "dft_relax"]

# The campaign store spells the same names (`alloop.store.enums`; it may not import this
# package, nor this package it): tests/loop/agent/test_labels.py checks that they agree.
STATUSES: tuple[str, ...] = get_args(Status)
FIDELITIES: tuple[str, ...] = get_args(Fidelity)
#: provenance keys every `OracleResult` carries, whatever its status (the Oracle contract)
PROVENANCE_KEYS: tuple[str, ...] = (
    "calculator",
    "weights_hash",
    "reference_scheme",
    "placements",
    "placements_tried",
    "anomaly_flags",
    "force_calls",
    "wall_s",
    "error",
)

#: tag values used on every structure the package produces (fairchem / OC20 convention)
TAG_SUBSURFACE = 0
TAG_SURFACE = 1
TAG_ADSORBATE = 2


@dataclass(frozen=True)
class AdsorbateSpec:
    """An adsorbate: a name plus a SMILES string and/or explicit 3D atoms.

    ``binding_atoms`` are indices into ``atoms`` (or, when only ``smiles`` is given, into the
    RDKit embedding of it, heavy atoms first in SMILES order) of the atoms allowed to bind to
    the surface. An empty tuple means "choose by the documented rule" (see
    :mod:`alloop.oracles.adsorbates`).
    """

    name: str
    smiles: str | None
    atoms: Atoms | None
    binding_atoms: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.name:
            raise OracleError("AdsorbateSpec.name must be a non-empty string")
        if self.smiles is None and self.atoms is None:
            raise OracleError(
                f"AdsorbateSpec {self.name!r} needs smiles or atoms (or both); got neither"
            )
        if self.atoms is not None:
            if len(self.atoms) == 0:
                raise OracleError(f"AdsorbateSpec {self.name!r}: atoms is empty")
            object.__setattr__(self, "atoms", _private_copy(self.atoms))
            bad = [i for i in self.binding_atoms if not 0 <= i < len(self.atoms)]
            if bad:
                raise OracleError(
                    f"AdsorbateSpec {self.name!r}: binding_atoms {bad} out of range "
                    f"0..{len(self.atoms) - 1}"
                )
        object.__setattr__(self, "binding_atoms", tuple(int(i) for i in self.binding_atoms))


@dataclass(frozen=True)
class OraclePair:
    """One (surface, adsorbate) pair to label.

    ``slab``: the clean slab, `n_slab` atoms, positions in Å, tags 0 = subsurface /
    1 = surface, bottom layers fixed with ``FixAtoms`` (see :mod:`alloop.oracles.slabs`).
    ``site_scores``: optional per-slab-atom score (e.g. the surrogate's cross-attention),
    length `n_slab`; higher means "try sites near this atom first".
    """

    key: str
    surface_key: str
    adsorbate_key: str
    slab: Atoms
    adsorbate: AdsorbateSpec
    site_scores: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "slab", _private_copy(self.slab))
        if self.site_scores is not None:
            scores = tuple(float(s) for s in self.site_scores)
            if len(scores) != len(self.slab):
                raise OracleError(
                    f"OraclePair {self.key!r}: site_scores has {len(scores)} entries but the "
                    f"slab has {len(self.slab)} atoms; give one score per slab atom or None"
                )
            if not all(math.isfinite(s) for s in scores):
                raise OracleError(f"OraclePair {self.key!r}: site_scores contain NaN/inf")
            object.__setattr__(self, "site_scores", scores)


@dataclass(frozen=True)
class OracleResult:
    """The label an oracle returns for one pair.

    ``gmae_ev``: global-minimum adsorption energy in eV (``None`` unless ``status == "ok"``).
    ``provenance``: JSON-serialisable dict, keys documented in the module docstring.
    ``best_structure``: the slab+adsorbate geometry of the minimum (tags 0/1/2), or ``None``.
    """

    pair_key: str
    gmae_ev: float | None
    status: Status
    fidelity: Fidelity
    provenance: dict[str, Any] = field(default_factory=dict)
    best_structure: Atoms | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise OracleError(f"status {self.status!r} is not one of {list(STATUSES)}")
        if self.fidelity not in FIDELITIES:
            raise OracleError(f"fidelity {self.fidelity!r} is not one of {list(FIDELITIES)}")
        if self.status == "ok":
            if self.gmae_ev is None or not math.isfinite(self.gmae_ev):
                raise OracleError(
                    f"result {self.pair_key!r}: status 'ok' needs a finite gmae_ev, "
                    f"got {self.gmae_ev!r}"
                )
            object.__setattr__(self, "gmae_ev", float(self.gmae_ev))
        elif self.gmae_ev is not None:
            raise OracleError(
                f"result {self.pair_key!r}: status {self.status!r} must have gmae_ev=None, "
                f"got {self.gmae_ev!r}"
            )
        if self.status == "failed" and not self.provenance.get("error"):
            raise OracleError(
                f"result {self.pair_key!r}: a failed result needs provenance['error']"
            )
        try:
            # round trip: stores and exports rely on provenance being plain JSON
            object.__setattr__(self, "provenance", json.loads(json.dumps(self.provenance)))
        except (TypeError, ValueError) as exc:
            raise OracleError(
                f"result {self.pair_key!r}: provenance is not JSON-serialisable ({exc})"
            ) from exc
        if self.best_structure is not None:
            object.__setattr__(self, "best_structure", _private_copy(self.best_structure))

    @property
    def error(self) -> str | None:
        """The recorded failure reason (``"<kind>: <message>"``), or ``None``."""
        return self.provenance.get("error")


def failed_result(
    pair_key: str, fidelity: Fidelity, kind: str, message: str, **provenance: Any
) -> OracleResult:
    """Build a ``status="failed"`` result whose ``provenance["error"]`` is ``"kind: message"``."""
    prov = dict(provenance)
    prov["error"] = f"{kind}: {message}"
    prov["failure_kind"] = kind
    return OracleResult(pair_key, None, "failed", fidelity, prov, None)


@runtime_checkable
class Oracle(Protocol):
    """Anything that labels a pair. A failure of one pair is a result, never an exception."""

    def label(self, pair: OraclePair) -> OracleResult:  # pragma: no cover - protocol
        """Return the label of ``pair``."""
        ...


class EscalationOracle(Protocol):
    """Anything that labels a pair at a higher fidelity starting from an earlier result of it
    (``DFTOracle`` from an MLIP minimum; ``DFTReplayOracle`` from the FG table). As with
    :class:`Oracle`, a failure of one pair is a result, never an exception."""

    @property
    def fidelity(self) -> str:  # pragma: no cover - protocol
        """The fidelity of the labels it gives (a DFT level)."""
        ...

    def escalate(
        self, pair: OraclePair, start: OracleResult
    ) -> OracleResult:  # pragma: no cover - protocol
        """Return the label of ``pair``, computed from ``start`` (the pair's earlier result)."""
        ...


def _private_copy(atoms: Atoms) -> Atoms:
    """Copy ``atoms`` without its calculator (calculators are neither frozen nor picklable)."""
    if not isinstance(atoms, Atoms):
        raise OracleError(f"expected ase.Atoms, got {type(atoms).__name__}")
    copy = atoms.copy()
    copy.calc = None
    return copy
