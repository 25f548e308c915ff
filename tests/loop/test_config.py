"""Config validation, resolution and the may-this-change check."""

from __future__ import annotations

import pytest

from alloop.loop.config import (
    AlloopConfig,
    check_config_change,
    load_config,
    parse_config,
)
from alloop.loop.errors import ConfigError

MINIMAL = {"campaign": {"name": "c"}, "pool": {"fg": {}}}


def test_defaults_are_filled_and_resolved_is_json():
    cfg = parse_config(MINIMAL)
    assert isinstance(cfg, AlloopConfig)
    resolved = cfg.resolved()
    assert resolved["surrogate"]["ensemble_size"] == 5
    assert resolved["acquisition"]["name"] == "lcb"
    assert resolved["campaign"]["seed"] == 0


def test_errors_name_every_field_path():
    bad = {
        "campaign": {"name": "c", "seed": -1},
        "pool": {"fg": {}},
        "acquisition": {"batch_size": 0, "colour": "red"},
    }
    with pytest.raises(ConfigError) as info:
        parse_config(bad, "x.yaml")
    msg = str(info.value)
    assert msg.startswith("x.yaml: ")
    assert "campaign.seed: Input should be greater than or equal to 0" in msg
    assert "acquisition.batch_size: Input should be greater than or equal to 1" in msg
    assert "acquisition.colour: unknown key" in msg


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        ({"surfaces": [{"bulk": "Pt"}], "adsorbates": []}, "empty pool"),
        ({"surfaces": [{"bulk": "Qq"}], "adsorbates": [{"smiles": "C"}]}, "unknown element 'Qq'"),
        ({"surfaces": [{"bulk": "Pt", "miller": [0, 0, 0]}], "adsorbates": [{"smiles": "C"}]},
         "not a plane"),
        ({"surfaces": [{"bulk": "Pt", "file": "x.cif"}], "adsorbates": [{"smiles": "C"}]},
         "exactly one of 'bulk'"),
        ({"surfaces": [{"bulk": "Pt"}], "adsorbates": [{"name": "*Nope"}]},
         "unknown adsorbate '\\*Nope'"),
        ({"surfaces": [{"bulk": "Pt"}], "adsorbates": [{"smiles": "C1CC"}]}, "invalid SMILES"),
        ({"surfaces": [{"bulk": "Pt"}, {"bulk": "Pt"}], "adsorbates": [{"smiles": "C"}]},
         "surface key\\(s\\) \\['Pt\\(111\\)'\\] given twice"),
        ({"fg": {"metals": ["Pt", "Xx"]}}, "not in the FG table"),
        ({"fg": {}, "adsorbates": [{"smiles": "C"}]}, "either 'fg' or surfaces"),
    ],
)  # fmt: skip
def test_pool_validation(pool, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"campaign": {"name": "c"}, "pool": pool})


def test_known_adsorbate_names_accepted():
    cfg = parse_config(
        {"campaign": {"name": "c"}, "pool": {"surfaces": [{"bulk": "Cu", "miller": [1, 0, 0]}],
                                             "adsorbates": [{"name": "*OH"}, {"smiles": "CCO"}]}}
    )  # fmt: skip
    assert [a.resolved_key for a in cfg.pool.adsorbates] == ["*OH", "CCO"]
    assert cfg.pool.surfaces[0].resolved_key == "Cu(100)"


def test_acquisition_validation():
    with pytest.raises(ConfigError, match="unknown acquisition 'magic'; valid: .*lcb"):
        parse_config({**MINIMAL, "acquisition": {"name": "magic"}})
    with pytest.raises(ConfigError, match="needs target_window_ev"):
        parse_config({**MINIMAL, "acquisition": {"name": "target_window"}})
    with pytest.raises(ConfigError, match="low < high"):
        parse_config({**MINIMAL, "acquisition": {"target_window_ev": [0.5, -0.5]}})


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "c.yaml"
    path.write_text("campaign: {name: c}\npool: {fg: {root: ../data}}\n")
    cfg = load_config(path)
    assert cfg.pool.fg is not None and cfg.pool.fg.root == (tmp_path / "data").resolve()


def test_config_change_rules():
    old = parse_config(MINIMAL).resolved()
    new = parse_config({**MINIMAL, "budget": {"max_labels": 99}}).resolved()
    assert check_config_change(old, new) == ["budget.max_labels"]
    changed = parse_config({**MINIMAL, "acquisition": {"beta": 2.0}}).resolved()
    with pytest.raises(ConfigError, match="acquisition.beta: differs from the campaign's stored"):
        check_config_change(old, changed)
    reseeded = parse_config({"campaign": {"name": "c", "seed": 5}, "pool": {"fg": {}}}).resolved()
    with pytest.raises(ConfigError, match="campaign.seed: differs"):
        check_config_change(old, reseeded)
