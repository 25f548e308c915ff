"""The allocator thresholds every label sets first (`alloop.oracles.allocator`), with glibc's
real allocator in fresh processes (the settings are per process and cannot be undone)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="needs glibc"
)

# How: set the thresholds (or not), then malloc, touch and free a 20 MiB buffer twice and count
# the minor page faults of the second round. Under glibc's own thresholds a 20 MiB buffer is
# mapped afresh (or the heap regrown) and faulted in page by page every time; with them fixed
# the freed memory stays with the process and the second round faults (almost) nothing.
SCRIPT = r"""
import ctypes, resource, sys
from types import SimpleNamespace
from alloop.oracles import allocator
from alloop.oracles.executors import label_guarded

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 20 << 20

class Echo:  # an oracle that labels nothing: only the executor's path around it matters
    def label(self, pair):
        return "labelled " + pair.key

how = sys.argv[1]
if how == "label":
    assert label_guarded(Echo(), SimpleNamespace(key="pair")) == "labelled pair"
    fixed = allocator.keep_freed_memory()  # already applied by the label: True, no-op
elif how == "direct":
    fixed = allocator.keep_freed_memory()
else:
    fixed = False

def faults_of_one_round():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    p = libc.malloc(SIZE)
    ctypes.memset(p, 1, SIZE)
    libc.free(p)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults_of_one_round()
print(int(fixed), faults_of_one_round())
"""


def _run(how: str, **env: str) -> tuple[bool, int]:
    environ = {k: v for k, v in os.environ.items() if k != "ALLOOP_MALLOC"} | env
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, how], capture_output=True, text=True, env=environ, check=True
    ).stdout.split()
    return bool(int(out[-2])), int(out[-1])


def test_fixed_thresholds_keep_freed_memory_for_the_next_round() -> None:
    pages = (20 << 20) // 4096
    fixed, faults = _run("direct")
    assert fixed
    assert faults < pages // 20
    default, faults_default = _run("none")
    assert not default
    assert faults_default > pages // 2  # the behaviour the fix removes, seen on this machine


def test_every_label_fixes_them_first_unless_told_not_to() -> None:
    fixed, faults = _run("label")
    assert fixed and faults < (20 << 20) // 4096 // 20
    kept, _ = _run("label", ALLOOP_MALLOC="glibc")
    assert not kept
