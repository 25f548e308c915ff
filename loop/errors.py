"""Errors of the campaign engine and its configuration."""

from __future__ import annotations


class LoopError(Exception):
    """Base class for errors raised by `alloop.loop`."""


class ConfigError(LoopError):
    """A configuration file or value is invalid; the message names `field.path: problem`."""
