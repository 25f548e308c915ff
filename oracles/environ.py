"""Environment variables an oracle needs for its own work only, set in a block and restored.

A library call must not change process-wide state for good: `HF_HUB_OFFLINE` (no model
downloads while fairchem loads a local checkpoint) and `OMP_NUM_THREADS` (GPAW's OpenMP threads
during a DFT escalation) hold inside the block, and afterwards each variable is back to its
value before it, or unset again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scoped_environ(**values: str) -> Iterator[None]:
    """Set the environment variables ``values`` inside the block; restore them after it, also
    when the block raises."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
