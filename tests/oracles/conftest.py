"""Shared fixtures for the oracle tests: tiny real structures, never mocks."""

from __future__ import annotations

import pytest
from ase import Atoms
from ase.build import fcc111, molecule


@pytest.fixture()
def cu_slab() -> Atoms:
    """A 2x2x3 Cu(111) slab (12 atoms) tagged and with the bottom layer fixed."""
    from alloop.oracles.slabs import prepare_slab

    return prepare_slab(fcc111("Cu", size=(2, 2, 3), vacuum=6.0), n_fixed_layers=1)


@pytest.fixture()
def co_atoms() -> Atoms:
    return molecule("CO")
