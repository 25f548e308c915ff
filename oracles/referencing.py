"""Energy referencing: how E(slab+ads) becomes an adsorption energy, stated with every label.

Two schemes, never mixed silently (:func:`compatibility_key` / :func:`check_compatible`):

``gas_phase_molecule``  E_ads = E(slab+ads) - E(slab) - E(gas), the FG definition; E(gas) is the
                        molecule relaxed in a periodic box with the *same* calculator.
``atomic``              E_ads = E(slab+ads) - E(slab) - sum_i n_i mu_i with per-element
                        references mu_i (eV). ``AtomicReference.from_molecules`` derives them
                        with the same calculator from H2, H2O, CO, N2 and H2S
                        (mu_H = E(H2)/2, mu_O = E(H2O) - E(H2), mu_C = E(CO) - mu_O,
                        mu_N = E(N2)/2, mu_S = E(H2S) - E(H2)), the OC20 convention; or they are
                        given explicitly (and named) by the user.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import molecule

from alloop.oracles.errors import OracleConfigError, OracleError
from alloop.oracles.types import OracleResult

logger = logging.getLogger(__name__)

REFERENCE_SCHEMES: tuple[str, ...] = ("gas_phase_molecule", "atomic")
#: gas molecules each element's atomic reference is derived from (OC20 convention)
MOLECULE_RECIPES: dict[str, tuple[str, ...]] = {
    "H": ("H2",),
    "O": ("H2", "H2O"),
    "C": ("H2", "H2O", "CO"),
    "N": ("N2",),
    "S": ("H2", "H2S"),
}
#: smallest edge of the cubic periodic box molecules are relaxed in (Å); the box is also at
#: least the molecule's extent plus 10 Å, so images stay beyond MLIP cutoffs
GAS_BOX_ANG = 15.0


def gas_box(atoms: Atoms, box_ang: float = GAS_BOX_ANG) -> Atoms:
    """The molecule centred in a periodic cubic box (every calculator here accepts that)."""
    boxed = atoms.copy()
    boxed.set_constraint()
    boxed.set_tags(0)
    extent = float(np.ptp(boxed.positions, axis=0).max()) if len(boxed) else 0.0
    boxed.cell = [max(box_ang, extent + 10.0)] * 3
    boxed.pbc = True
    boxed.center()
    return boxed


@dataclass(frozen=True)
class AtomicReference:
    """Per-element reference energies ``mu_ev`` (eV per atom) and where they came from."""

    mu_ev: dict[str, float]
    source: str
    details: dict[str, Any] = field(default_factory=dict)

    def energy_ev(self, atoms: Atoms) -> float:
        """sum_i n_i mu_i for the composition of ``atoms``."""
        counts = Counter(atoms.get_chemical_symbols())
        missing = sorted(set(counts) - set(self.mu_ev))
        if missing:
            raise OracleError(
                f"atomic reference {self.source!r} has no mu for {missing}; it covers "
                f"{sorted(self.mu_ev)}"
            )
        return float(sum(n * self.mu_ev[el] for el, n in counts.items()))

    def describe(self) -> dict[str, Any]:
        return {
            "scheme": "atomic",
            "source": self.source,
            "mu_ev": dict(self.mu_ev),
            **self.details,
        }

    @classmethod
    def from_molecules(
        cls,
        gas_energy_ev: Callable[[Atoms], float],
        source: str,
        elements: tuple[str, ...] = ("H", "O", "C", "N"),
    ) -> AtomicReference:
        """Derive mu_H, mu_O, mu_C, mu_N, mu_S from relaxed H2, H2O, CO, N2, H2S.

        ``gas_energy_ev(molecule)`` returns the relaxed energy of a molecule with the label's
        calculator (the oracle passes its cached gas relaxation); ``source`` names it.
        """
        unknown = sorted(set(elements) - set(MOLECULE_RECIPES))
        if unknown:
            raise OracleConfigError(
                f"no molecular recipe for elements {unknown}; supported: "
                f"{sorted(MOLECULE_RECIPES)}; give atomic_mu_ev explicitly instead"
            )
        wanted = sorted({m for el in elements for m in MOLECULE_RECIPES[el]})
        # ASE's G2 collection names hydrogen sulfide "SH2"
        e = {
            name: float(gas_energy_ev(molecule("SH2" if name == "H2S" else name)))
            for name in wanted
        }
        mu: dict[str, float] = {}
        if "H2" in e:
            mu["H"] = e["H2"] / 2
        if "H2O" in e:
            mu["O"] = e["H2O"] - e["H2"]
        if "CO" in e:
            mu["C"] = e["CO"] - mu["O"]
        if "N2" in e:
            mu["N"] = e["N2"] / 2
        if "H2S" in e:
            mu["S"] = e["H2S"] - e["H2"]
        mu = {el: mu[el] for el in sorted(set(elements))}
        return cls(mu, f"molecules:{source}", {"molecule_energies_ev": e})


def compatibility_key(result: OracleResult) -> tuple[str, str | None, str | None, str]:
    """What must match for two labels to be compared or pooled: fidelity, calculator, weights
    hash and reference scheme (with its id, e.g. the atomic reference source)."""
    prov = result.provenance
    scheme = str(prov.get("reference_scheme"))
    ref_id = prov.get("reference_id")
    return (
        result.fidelity,
        prov.get("calculator"),
        prov.get("weights_hash"),
        f"{scheme}:{ref_id}" if ref_id else scheme,
    )


def check_compatible(results: list[OracleResult]) -> None:
    """Raise :class:`OracleError` naming the differences if the labels cannot be pooled."""
    keys = {compatibility_key(r) for r in results if r.status == "ok"}
    if len(keys) > 1:
        listed = "; ".join(
            f"fidelity={k[0]}, calculator={k[1]}, weights={str(k[2])[:12]}, reference={k[3]}"
            for k in sorted(keys, key=str)
        )
        raise OracleError(
            f"labels come from {len(keys)} incompatible sources and must not be mixed: {listed}"
        )
