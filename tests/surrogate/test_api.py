from __future__ import annotations

import subprocess
import sys

import pytest

import alloop.surrogate as surrogate


def test_every_exported_name_resolves() -> None:
    for name in surrogate.__all__:
        assert getattr(surrogate, name) is not None, name


def test_unknown_name() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        surrogate.Nope  # noqa: B018


def test_fg_readers_do_not_import_torch() -> None:
    code = "import sys, alloop.surrogate.fg; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
