"""configs/reference.yaml lists every key of a campaign config with its default: checked
against the models in loop/config.py, so the reference cannot drift from the code."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from alloop.loop.config import AlloopConfig, load_config

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "configs" / "reference.yaml"
#: required keys: the reference shows an example value instead of a default
EXAMPLES = {"campaign.name"}
#: keys documented in comments (a list's or an optional section's item keys must be named
#: there too; `escalation.reasons` cannot be written out: its default depends on the window)
IN_COMMENTS = {"pool.surfaces", "pool.adsorbates", "executor.jobqueue", "escalation.reasons"}


def section_model(annotation: Any) -> type[BaseModel] | None:
    for t in (annotation, *typing.get_args(annotation)):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
        for inner in typing.get_args(t):  # tuple[Spec, ...]
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def leaves(model: type[BaseModel], prefix: str = "") -> dict[str, tuple[Any, type | None]]:
    """Dotted key -> (default, item model for documented-in-comments keys)."""
    out: dict[str, tuple[Any, type | None]] = {}
    for name, field in model.model_fields.items():
        key = prefix + name
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        sub = section_model(field.annotation)
        if key in IN_COMMENTS:
            out[key] = (default, sub)
        elif sub is not None and (field.is_required() or isinstance(default, BaseModel)
                                  or key == "pool.fg"):  # fmt: skip
            out |= leaves(sub, key + ".")
        else:
            out[key] = (default, None)
    return out


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict) and v and f"{prefix}{k}" not in ("escalation.dft",):
            out |= flatten(v, f"{prefix}{k}.")
        else:
            out[prefix + k] = v
    return out


def normal(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [normal(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


def test_reference_lists_every_key_with_its_default() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    given = flatten(yaml.safe_load(text))
    expected = leaves(AlloopConfig)
    documented = {k for k in expected if k in IN_COMMENTS}
    assert set(given) | documented == set(expected), (
        f"missing: {sorted(set(expected) - set(given) - documented)}; "
        f"unknown: {sorted(set(given) - set(expected))}"
    )
    wrong = {
        k: (given[k], normal(default))
        for k, (default, _) in expected.items()
        if k in given and k not in EXAMPLES and normal(given[k]) != normal(default)
    }
    assert not wrong, f"reference value != default: {wrong}"
    comments = "\n".join(line.split("#", 1)[1] for line in text.splitlines() if "#" in line)
    for key in documented:  # named in comments, with every item key of a list or section
        _, item = expected[key]
        names = [key.rsplit(".", 1)[1]] if item is None else list(item.model_fields)
        missing = [f for f in names if f"{f}:" not in comments]
        assert not missing, f"{key}: item keys {missing} not documented in comments"


def test_reference_is_a_valid_config(tmp_path: Path) -> None:
    cfg = load_config(REFERENCE)
    assert cfg.campaign.name == "my-campaign"
