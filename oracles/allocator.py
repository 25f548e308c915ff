"""glibc's allocator in a process that runs MLIP labels: freed buffers kept for the next call.

An MLIP's energy+forces call allocates and frees the same tensor buffers every time. Under
glibc's defaults the buffers above its mmap threshold are mapped and unmapped on every call,
and freed memory at the top of the heap beyond its trim threshold goes back to the system, so
the next call faults it back in page by page: 14,500-24,000 minor page faults per SevenNet-MF-0
call on a 42-atom slab in this project's measurements (`benchmarks/loop/dask_label_profile.py`).
:func:`keep_freed_memory` fixes both thresholds once per process (``mallopt``), which also stops
glibc adapting them: allocations up to :data:`MMAP_THRESHOLD_BYTES` come from the heap, and up
to :data:`TRIM_THRESHOLD_BYTES` of freed memory stays with the process for the next call.

Every executor runs its labels through :func:`alloop.oracles.executors.label_guarded`, which
calls it first: a process-pool or Dask worker, and the campaign's own process when it labels
in-process. Where the C library is not glibc (macOS, musl) nothing changes. Setting
``ALLOOP_MALLOC=glibc`` in the environment keeps glibc's own behaviour (the benchmarks'
baseline).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

__all__ = ["ENV_VAR", "MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "keep_freed_memory"]

logger = logging.getLogger(__name__)

#: allocations above this are mapped on their own (glibc's adaptive threshold stops at 32 MiB)
MMAP_THRESHOLD_BYTES = 32 << 20
#: freed memory at the heap's top beyond this goes back to the system
TRIM_THRESHOLD_BYTES = 256 << 20
#: ``ALLOOP_MALLOC=glibc`` leaves the allocator as glibc sets it
ENV_VAR = "ALLOOP_MALLOC"

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_applied = False  # a forked child inherits the settings and this flag alike


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds in this process (module docstring), once.

    Returns whether they are fixed now: False where ``ALLOOP_MALLOC=glibc`` is set or the C
    library has no ``mallopt`` (not glibc)."""
    global _applied
    if _applied:
        return True
    if os.environ.get(ENV_VAR, "").strip().lower() == "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if not _is_glibc(libc):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
    if not ok:
        logger.debug("mallopt refused the allocator thresholds; glibc's defaults stay")
        return False
    _applied = True
    return True


def _is_glibc(libc: ctypes.CDLL) -> bool:
    try:
        version = libc.gnu_get_libc_version
    except AttributeError:
        return False
    version.restype = ctypes.c_char_p
    return bool(version())
