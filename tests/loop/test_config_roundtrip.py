"""A validated config's own dump validates again to the same config: the stored config of a
campaign (`AlloopConfig.resolved`) is a config, for every shipped one and the reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from alloop.loop.config import AlloopConfig, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_a_shipped_config_survives_dump_and_validate(path: Path) -> None:
    cfg = load_config(path)
    dumped = cfg.model_dump(mode="json")
    again = AlloopConfig.model_validate(dumped)
    assert again == cfg
    assert again.model_dump(mode="json") == dumped


def test_a_plain_config_validated_directly_survives_too() -> None:
    """No target window and no listed reasons: the default reasons drop IN_WINDOW_CONFIDENT
    however the config is built, so the dump does not list a reason it cannot run."""
    cfg = AlloopConfig.model_validate(
        {"campaign": {"name": "t"}, "pool": {"fg": {}}, "oracle": {"kind": "replay"}}
    )
    assert "IN_WINDOW_CONFIDENT" not in cfg.escalation.reasons
    assert AlloopConfig.model_validate(cfg.model_dump(mode="json")) == cfg
