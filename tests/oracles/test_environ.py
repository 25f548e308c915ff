"""Environment variables an oracle sets hold inside its block only."""

from __future__ import annotations

import os

import pytest

from alloop.oracles.environ import scoped_environ


def test_set_inside_restored_or_removed_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOOP_TEST_KEPT", "before")
    monkeypatch.delenv("ALLOOP_TEST_NEW", raising=False)
    with scoped_environ(ALLOOP_TEST_KEPT="inside", ALLOOP_TEST_NEW="1"):
        assert os.environ["ALLOOP_TEST_KEPT"] == "inside"
        assert os.environ["ALLOOP_TEST_NEW"] == "1"
    assert os.environ["ALLOOP_TEST_KEPT"] == "before"
    assert "ALLOOP_TEST_NEW" not in os.environ


def test_restored_when_the_block_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOOP_TEST_KEPT", "before")
    with pytest.raises(RuntimeError, match="boom"), scoped_environ(ALLOOP_TEST_KEPT="inside"):
        raise RuntimeError("boom")
    assert os.environ["ALLOOP_TEST_KEPT"] == "before"
