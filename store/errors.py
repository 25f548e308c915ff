"""Errors raised by the campaign store.

Every message names the file or value at fault so the CLI can print it as one line.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class for every store failure."""


class NotACampaignError(StoreError):
    """The path exists but is not an alloop campaign (not SQLite, corrupt, or foreign schema)."""


class CampaignExistsError(StoreError):
    """`create` was asked to write over an existing campaign file."""


class CampaignNotFoundError(StoreError):
    """No campaign file at the given path."""


class SchemaTooNewError(StoreError):
    """The campaign file was written by a newer alloop whose schema this one does not know."""


class CampaignLockedError(StoreError):
    """Another process is driving the campaign."""


class DuplicateResultError(StoreError):
    """A job's result was recorded twice; the second one is refused."""


class JobStateError(StoreError):
    """An illegal job state transition (e.g. DONE -> RUNNING)."""


class UnknownRecordError(StoreError):
    """A key (pair, surface, adsorbate, job, round) that the campaign does not hold."""


class CampaignDamagedError(StoreError):
    """The campaign file is damaged (SQLite reports corruption, or an integrity check fails)."""


class StorageFullError(StoreError):
    """The disk (or quota) holding the campaign is full."""


class CampaignReadOnlyError(StoreError):
    """The campaign file or its directory cannot be written."""


class CheckpointCorruptError(StoreError):
    """A stored checkpoint's bytes do not match their sha256 (derived state: retrain it)."""


class NothingToExportError(StoreError):
    """An export was asked for that the campaign holds nothing for (e.g. an ASE database of
    structures when no label stores one); nothing is written."""
