from __future__ import annotations

import pytest
from ase.build import molecule

from alloop.oracles.errors import OracleConfigError, OracleError
from alloop.oracles.referencing import AtomicReference, check_compatible, compatibility_key, gas_box
from alloop.oracles.types import OracleResult


def _result(
    key: str, calculator: str, scheme: str, fidelity: str = "mlip", ref_id: str | None = None
) -> OracleResult:
    return OracleResult(
        key,
        -1.0,
        "ok",
        fidelity,
        {  # type: ignore[arg-type]
            "calculator": calculator,
            "weights_hash": f"h-{calculator}",
            "reference_scheme": scheme,
            "reference_id": ref_id,
        },
    )


def test_labels_from_different_sources_are_not_mixed() -> None:
    same = [
        _result("a", "sevennet-mf-0", "gas_phase_molecule"),
        _result("b", "sevennet-mf-0", "gas_phase_molecule"),
    ]
    check_compatible(same)
    with pytest.raises(
        OracleError, match="2 incompatible sources.*calculator=chgnet.*calculator=sevennet-mf-0"
    ):
        check_compatible(same + [_result("c", "chgnet", "gas_phase_molecule")])
    with pytest.raises(OracleError, match="reference=atomic:explicit"):
        check_compatible(same + [_result("d", "sevennet-mf-0", "atomic", ref_id="explicit")])
    with pytest.raises(OracleError, match="fidelity=dft_single_point"):
        check_compatible(
            same
            + [_result("e", "sevennet-mf-0", "gas_phase_molecule", fidelity="dft_single_point")]
        )
    failed = OracleResult("f", None, "failed", "mlip", {"error": "x: y", "calculator": "emt"})
    check_compatible(same + [failed])  # failures carry no energy to mix
    assert compatibility_key(same[0]) == (
        "mlip",
        "sevennet-mf-0",
        "h-sevennet-mf-0",
        "gas_phase_molecule",
    )


def test_atomic_reference_sums_composition() -> None:
    ref = AtomicReference({"H": -3.0, "O": -7.0, "C": -8.0}, "explicit")
    assert ref.energy_ev(molecule("CH3OH")) == pytest.approx(4 * -3.0 - 7.0 - 8.0)
    with pytest.raises(OracleError, match=r"has no mu for \['N'\]; it covers \['C', 'H', 'O'\]"):
        ref.energy_ev(molecule("NH3"))


def test_atomic_reference_from_molecules_recipes() -> None:
    energies = {"H2": -6.0, "H2O": -14.0, "CO": -15.0, "N2": -16.0, "H2S": -11.0}
    # molecules arrive as structures: identify them by formula (ASE writes H2S as H2S)
    ref = AtomicReference.from_molecules(
        lambda mol: energies[mol.get_chemical_formula()], "table", ("C", "H", "N", "O", "S")
    )
    assert ref.mu_ev == pytest.approx({"H": -3.0, "O": -8.0, "C": -7.0, "N": -8.0, "S": -5.0})
    with pytest.raises(OracleConfigError, match=r"no molecular recipe for elements \['Cl'\]"):
        AtomicReference.from_molecules(lambda mol: 0.0, "table", ("Cl",))


def test_gas_box_is_large_enough() -> None:
    small = gas_box(molecule("CO"))
    assert small.cell.lengths() == pytest.approx([15.0] * 3) and small.pbc.all()
    long = molecule("CO")
    long.positions[1, 2] += 12.0
    extent = long.positions[:, 2].max() - long.positions[:, 2].min()
    assert gas_box(long).cell.lengths() == pytest.approx([extent + 10.0] * 3)
