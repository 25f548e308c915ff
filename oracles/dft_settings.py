"""Settings of the DFT oracle and the ASE calculators they build (GPAW, VASP, Quantum ESPRESSO).

GPAW is the tested default (built from PyPI, PAW setups from the ``gpaw-data`` wheel, run with
one OpenMP thread per job). VASP and Quantum ESPRESSO go through their ASE calculators when the
user configures them (``code_kwargs`` is passed through: e.g. ``command``/``pp`` for VASP,
``command``/``pseudo_dir``/``pseudopotentials`` for ESPRESSO); they are not run in this
project's tests because neither binary is available here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from alloop.oracles.errors import CalculatorSetupError, OracleConfigError
from alloop.oracles.referencing import REFERENCE_SCHEMES
from alloop.oracles.relax import OPTIMIZERS, EnergyForcesCalculator

DFT_CODES: tuple[str, ...] = ("gpaw", "vasp", "espresso")
#: the fidelity of the labels each mode makes (the loop asks here too)
DFT_MODE_FIDELITY: Mapping[str, str] = MappingProxyType(
    {"single_point": "dft_single_point", "relax": "dft_relax"}
)
DFT_MODES: tuple[str, ...] = tuple(DFT_MODE_FIDELITY)


@dataclass(frozen=True)
class DFTOracleSettings:
    """How a pair is escalated to DFT (units in the names).

    ``mode``: ``single_point`` at the MLIP minimum (AdsorbML-style verification, fidelity
    ``dft_single_point``) or ``relax`` from it (``dft_relax``). References (clean slab, gas
    molecule or atomic-reference molecules) are always DFT-relaxed, once per slab/molecule.
    ``kpts``: k-point mesh of slab calculations; molecules use the Gamma point.
    ``smearing_ev``: Fermi-Dirac width. ``gas_box_ang``: cubic box edge for molecules.
    """

    code: str = "gpaw"
    mode: str = "single_point"
    xc: str = "PBE"
    cutoff_ev: float = 400.0
    kpts: tuple[int, int, int] = (4, 4, 1)
    smearing_ev: float = 0.1
    spinpol: bool = False
    gas_box_ang: float = 12.0
    fmax_ev_per_ang: float = 0.05
    max_steps: int = 100
    optimizer: str = "bfgs"
    reference_scheme: str = "gas_phase_molecule"
    atomic_mu_ev: dict[str, float] | None = None
    time_limit_s: float | None = None
    cache_dir: str | None = None
    omp_threads: int = 1
    code_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, valid in (
            ("code", DFT_CODES),
            ("mode", DFT_MODES),
            ("optimizer", tuple(OPTIMIZERS)),
            ("reference_scheme", REFERENCE_SCHEMES),
        ):
            value = getattr(self, name)
            if value not in valid:
                raise OracleConfigError(
                    f"{name} {value!r} is not valid; choose one of {', '.join(valid)}"
                )
        for name in ("cutoff_ev", "smearing_ev", "gas_box_ang", "fmax_ev_per_ang"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise OracleConfigError(f"{name} must be a finite number > 0, got {value!r}")
        kpts = tuple(self.kpts)
        if len(kpts) != 3 or any(not isinstance(k, int) or k < 1 for k in kpts):
            raise OracleConfigError(f"kpts must be three integers >= 1, got {self.kpts!r}")
        object.__setattr__(self, "kpts", kpts)
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise OracleConfigError(f"max_steps must be an integer >= 1, got {self.max_steps!r}")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise OracleConfigError(f"time_limit_s must be > 0 or None, got {self.time_limit_s!r}")
        if self.omp_threads < 1:
            raise OracleConfigError(f"omp_threads must be >= 1, got {self.omp_threads}")

    @property
    def fidelity(self) -> str:
        return DFT_MODE_FIDELITY[self.mode]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["kpts"] = list(self.kpts)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DFTOracleSettings:
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise OracleConfigError(
                f"unknown DFTOracleSettings keys {unknown}; valid keys: {', '.join(sorted(valid))}"
            )
        values = dict(data)
        if "kpts" in values:
            values["kpts"] = tuple(values["kpts"])
        return cls(**values)


def build_dft_calculator(
    settings: DFTOracleSettings, periodic_slab: bool, directory: str
) -> EnergyForcesCalculator:
    """The ASE calculator for a slab (``periodic_slab=True``: ``kpts``) or a molecule (Gamma).
    Its OpenMP threads are the caller's to scope (`DFTOracle` runs every calculation inside
    ``OMP_NUM_THREADS = omp_threads``, restored after it)."""
    kpts = settings.kpts if periodic_slab else (1, 1, 1)
    if settings.code == "gpaw":
        try:
            from gpaw import GPAW, PW, FermiDirac
        except ImportError as exc:
            raise CalculatorSetupError(
                "GPAW is not installed; see oracles/NOTES_FOR_LEAD.md for the CC=g++ pip build "
                "and the gpaw-data setups"
            ) from exc
        kwargs = {
            "mode": PW(settings.cutoff_ev),
            "xc": settings.xc,
            "kpts": kpts,
            "occupations": FermiDirac(settings.smearing_ev),
            "spinpol": settings.spinpol,
            "txt": None,
            **settings.code_kwargs,
        }
        return GPAW(**kwargs)
    if settings.code == "vasp":
        from ase.calculators.vasp import Vasp

        return Vasp(
            directory=directory,
            xc=settings.xc,
            encut=settings.cutoff_ev,
            kpts=kpts,
            ismear=-1,
            sigma=settings.smearing_ev,
            ispin=2 if settings.spinpol else 1,
            **settings.code_kwargs,
        )
    from ase.calculators.espresso import Espresso, EspressoProfile

    extra = dict(settings.code_kwargs)
    command = extra.pop("command", None)
    pseudo_dir = extra.pop("pseudo_dir", None)
    if not command or not pseudo_dir or "pseudopotentials" not in extra:
        raise CalculatorSetupError(
            "code 'espresso' needs code_kwargs with command (e.g. 'pw.x'), pseudo_dir and "
            "pseudopotentials ({element: file})"
        )
    input_data = {
        "system": {
            "ecutwfc": settings.cutoff_ev / 13.605693,
            "occupations": "smearing",
            "smearing": "fd",
            "degauss": settings.smearing_ev / 13.605693,
            "nspin": 2 if settings.spinpol else 1,
            "input_dft": settings.xc,
        }
    }
    return Espresso(
        profile=EspressoProfile(command=command, pseudo_dir=pseudo_dir),
        directory=directory,
        kpts=kpts,
        input_data=input_data,
        **extra,
    )


def dft_identity(settings: DFTOracleSettings) -> dict[str, Any]:
    """Code, version and the settings that define the level of theory."""
    version = None
    if settings.code == "gpaw":
        try:
            import gpaw

            version = gpaw.__version__
        except ImportError:
            version = None
    return {
        "calculator": f"{settings.code}-{settings.xc.lower()}",
        "code": settings.code,
        "code_version": version,
        "xc": settings.xc,
        "cutoff_ev": settings.cutoff_ev,
        "kpts": list(settings.kpts),
        "smearing_ev": settings.smearing_ev,
        "spinpol": settings.spinpol,
        "mode": settings.mode,
    }
