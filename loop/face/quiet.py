"""Keep native start-up noise of third-party libraries off the user's terminal.

NVIDIA Warp (imported by fairchem through nvalchemiops, which calls ``warp.init()`` when it is
imported) prints ``Warp CUDA warning: Could not find or load the NVIDIA CUDA driver...`` from C
straight to file descriptor 2 on every machine without a GPU driver, before any output of
ours. Python's ``sys.stderr`` never sees it, so the CLI silences descriptor 2 while those
modules are first imported, and only then; ``ALLOOP_DEBUG=1`` (`DEBUG_ENV`) keeps it.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

#: set to 1 (or anything but 0/empty) to see every library's start-up output
DEBUG_ENV = "ALLOOP_DEBUG"
#: top-level modules whose first import prints native noise
NOISY_MODULES = frozenset({"warp", "nvalchemiops"})


def debug_requested() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


@contextlib.contextmanager
def fd2_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (C-level writes included)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with fd2_silenced():
            self.inner.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self.inner, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds `NOISY_MODULES` as usual, then runs their top-level code with fd 2 silenced."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in NOISY_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _QuietLoader(spec.loader)  # type: ignore[arg-type]
                return spec
        return None


def silence_startup_noise() -> bool:
    """Install the quiet import hook once per process, unless `DEBUG_ENV` asks for debug
    output; returns whether it is installed."""
    if debug_requested():
        return False
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
    return True
