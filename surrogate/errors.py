"""Error hierarchy of ``alloop.surrogate``.

Every error raised on purpose by this package is a :class:`SurrogateError`; the subclasses say
which stage failed so that callers can react (e.g. the loop refuses a stale checkpoint but
records a featurisation failure of one pair).
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "DataError",
    "FeaturisationError",
    "SurrogateError",
    "TrainingError",
]


class SurrogateError(Exception):
    """Base class of all errors raised by ``alloop.surrogate``."""


class FeaturisationError(SurrogateError):
    """A structure or SMILES could not be turned into model input (bond perception, RDKit)."""


class DataError(SurrogateError):
    """A reference data set (FG table, LMDB) is missing, malformed or inconsistent."""


class CheckpointError(SurrogateError):
    """A checkpoint is corrupt or was written by an incompatible featuriser/model version."""


class TrainingError(SurrogateError):
    """Training could not run (empty split, non-finite loss, bad configuration)."""
