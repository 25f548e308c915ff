"""Errors raised by :mod:`alloop.oracles`.

Setup problems (a bad setting, a missing checkpoint, an unreadable structure file) raise an
:class:`OracleError` subclass at construction time, before any pair is labelled. Problems that
happen *while labelling one pair* (a calculator that crashes, a NaN energy, a relaxation that
does not converge, a time limit) are turned into a recorded ``status="failed"`` result by the
one guard in :mod:`alloop.oracles.guard`; the subclasses below carry a machine-readable
``kind`` so that the recorded failure says which of these it was.
"""

from __future__ import annotations


class OracleError(Exception):
    """Base class for every error raised by the oracles package."""

    #: short machine-readable reason recorded with a failed result
    kind: str = "oracle_error"


class OracleConfigError(OracleError):
    """A setting is invalid (unknown calculator, negative fmax, ...)."""

    kind = "config_error"


class StructureError(OracleError):
    """A structure cannot be built or read (bad file, untagged slab, unknown adsorbate)."""

    kind = "structure_error"


class CalculatorSetupError(OracleError):
    """A calculator cannot be constructed (package missing, checkpoint file absent)."""

    kind = "calculator_setup"


class CalculatorFailure(OracleError):
    """The calculator raised while computing energies or forces."""

    kind = "calculator_error"


class NonFiniteEnergyError(OracleError):
    """The calculator returned a NaN or infinite energy or force."""

    kind = "non_finite"


class NotConvergedError(OracleError):
    """A relaxation reached its step limit before the force criterion."""

    kind = "not_converged"


class OracleTimeoutError(OracleError):
    """A pair (or one job) exceeded its wall-clock limit."""

    kind = "time_limit"


class WorkerDiedError(OracleError):
    """The process running a job died (killed, segfault, out of memory)."""

    kind = "worker_died"


#: every failure kind a result can carry, for documentation and validation
FAILURE_KINDS: tuple[str, ...] = (
    OracleError.kind,
    OracleConfigError.kind,
    StructureError.kind,
    CalculatorSetupError.kind,
    CalculatorFailure.kind,
    NonFiniteEnergyError.kind,
    NotConvergedError.kind,
    OracleTimeoutError.kind,
    WorkerDiedError.kind,
    "unknown_pair",
    "no_valid_placement",
    "unexpected_error",
)
