"""Config validation, resolution and the may-this-change check."""

from __future__ import annotations

import pytest

from alloop.loop.config import (
    ESCALATION_REASONS,
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
    with pytest.raises(ConfigError, match=r"1 field\(s\) differ .* acquisition.beta \(stored 1.0"):
        check_config_change(old, changed)
    reseeded = parse_config({"campaign": {"name": "c", "seed": 5}, "pool": {"fg": {}}}).resolved()
    with pytest.raises(ConfigError, match=r"campaign.seed \(stored 0, given 5\)"):
        check_config_change(old, reseeded)


def test_a_refused_config_change_names_every_field_the_file_and_the_fix():
    old = parse_config(MINIMAL).resolved()
    both = parse_config({"campaign": {"name": "c", "seed": 5}, "pool": {"fg": {}},
                         "acquisition": {"beta": 2.0, "batch_size": 4}}).resolved()  # fmt: skip
    with pytest.raises(ConfigError) as info:
        check_config_change(old, both, "runs/c.alloop")
    text = str(info.value)
    assert text.startswith("runs/c.alloop: 3 field(s) differ")
    for part in ("acquisition.batch_size (stored 10, given 4)",
                 "acquisition.beta (stored 1.0, given 2.0)", "campaign.seed (stored 0, given 5)",
                 "--campaign NEW.alloop"):  # fmt: skip
        assert part in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("data", "message"),
    [({"budget": {"max_round": 3}},
      r"budget.max_round: unknown key \(did you mean 'max_rounds'\?\)"),
     ({"acquisition": {"bacth_size": 3}}, r"bacth_size: unknown key \(did you mean 'batch_size'"),
     ({"surogate": {}}, r"surogate: unknown key \(did you mean 'surrogate'\?\)"),
     ({"budget": {"zzz": 1}}, r"budget.zzz: unknown key$")],
)  # fmt: skip
def test_unknown_keys_suggest_the_nearest_valid_one(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({**MINIMAL, **data})


def test_escalation_defaults_resolve_against_the_acquisition_window():
    esc = parse_config(MINIMAL).escalation
    # no window anywhere: IN_WINDOW_CONFIDENT is dropped from the default reasons
    assert esc.reasons == ("STRONG_BINDER", "ORACLE_DISAGREEMENT", "ANOMALOUS")
    assert esc.target_window_ev is None and esc.strong_binder_k == 3 and esc.dft == {}
    windowed = parse_config({**MINIMAL, "acquisition": {"target_window_ev": [-1.0, -0.2]}})
    assert windowed.escalation.target_window_ev == (-1.0, -0.2)
    assert windowed.escalation.reasons == ESCALATION_REASONS
    own = parse_config({**MINIMAL, "escalation": {"target_window_ev": [0.0, 0.5]},
                        "acquisition": {"target_window_ev": [-1.0, -0.2]}})  # fmt: skip
    assert own.escalation.target_window_ev == (0.0, 0.5)
    # the stored (resolved) config reads back to the same config and counts as unchanged
    for cfg in (parse_config(MINIMAL), windowed, own):
        assert parse_config(cfg.resolved()) == cfg
        assert check_config_change(cfg.resolved(), parse_config(cfg.resolved()).resolved()) == []


def test_escalation_reasons_order_matches_the_policy():
    from alloop.loop.agent.escalation import EscalationReason

    assert tuple(r.value for r in EscalationReason) == ESCALATION_REASONS


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"reasons": ["STRONG_BINDER", "CHEAP"]},
         r"escalation.reasons: unknown reason\(s\) \['CHEAP'\]; valid: IN_WINDOW_CONFIDENT, "
         "STRONG_BINDER, ORACLE_DISAGREEMENT, ANOMALOUS"),
        ({"reasons": ["ANOMALOUS", "ANOMALOUS"]}, "escalation.reasons: reasons repeat"),
        ({"reasons": ["IN_WINDOW_CONFIDENT"]},
         "escalation.reasons: IN_WINDOW_CONFIDENT needs a target window"),
        ({"target_window_ev": [1.0, 0.0]}, "escalation.target_window_ev: target window"),
        ({"strong_binder_k": 0}, "escalation.strong_binder_k: Input should be greater"),
        ({"dft": {"cutof_ev": 300}},
         r"escalation.dft: unknown DFTOracleSettings keys \['cutof_ev'\]"),
        ({"dft": {"code": "abinit"}}, "escalation.dft: code 'abinit' is not valid"),
        ({"dft": {"kpts": [2, 2]}}, "escalation.dft: kpts must be three integers"),
        ({"dft": {"mode": "relax"}}, "escalation.dft: give the mode as escalation.mode"),
        ({"dft": "gpaw"}, "escalation.dft: Input should be a valid dictionary"),
    ],
)  # fmt: skip
def test_escalation_validation(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({**MINIMAL, "escalation": section})


def test_escalation_needs_an_mlip_oracle_and_keeps_dft_settings():
    with pytest.raises(ConfigError, match="escalation.enabled: the replay oracle's labels are DFT"):
        parse_config({**MINIMAL, "oracle": {"kind": "replay"}, "escalation": {"enabled": True}})
    dft = {"cutoff_ev": 300, "kpts": [2, 2, 1]}
    cfg = parse_config({**MINIMAL, "escalation": {"enabled": True, "mode": "relax", "dft": dft}})
    from alloop.loop.agent.escalation_plan import escalation_policy
    from alloop.loop.agent.labels import dft_fidelity
    from alloop.loop.bridges.dft import dft_settings

    settings = dft_settings(cfg.escalation)
    assert (settings.code, settings.mode, settings.cutoff_ev, settings.kpts) == (
        "gpaw", "relax", 300, (2, 2, 1),
    )  # fmt: skip
    assert dft_fidelity(cfg.escalation) == "dft_relax"
    assert escalation_policy(cfg.escalation).reasons[0].value == "STRONG_BINDER"
    # the DFT budget may grow on a later run; the DFT settings may not change
    more = parse_config({**MINIMAL, "escalation": {"enabled": True, "mode": "relax", "dft": dft,
                                                   "dft_budget": 9, "per_round": 3}})  # fmt: skip
    changed = check_config_change(cfg.resolved(), more.resolved())
    assert changed == ["escalation.dft_budget", "escalation.per_round"]
    other = parse_config({**MINIMAL, "escalation": {"enabled": True, "mode": "relax"}})
    with pytest.raises(ConfigError, match=r"escalation.dft.cutoff_ev \(stored 300, given None\)"):
        check_config_change(cfg.resolved(), other.resolved())


def test_relative_dft_cache_dir_resolves_against_the_config_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("campaign: {name: c}\npool: {fg: {}}\nescalation: {dft: {cache_dir: dft}}\n")
    assert load_config(path).escalation.dft["cache_dir"] == str((tmp_path / "dft").resolve())


def test_surrogate_section_defaults_are_the_librarys() -> None:
    """One source for the shipped surrogate: the campaign config's defaults build exactly the
    library's default ensemble (alloop.surrogate.defaults)."""
    from alloop.loop.bridges.surrogate import ensemble_config
    from alloop.surrogate.types import EnsembleConfig

    built = ensemble_config(AlloopConfig.model_validate(MINIMAL).surrogate).to_dict()
    library = EnsembleConfig().to_dict()
    for key in ("device", "fidelity_mode"):  # resolved per campaign, not model defaults
        built.pop(key), library.pop(key)
    assert built == library


def test_checkpoint_configs_with_the_old_names_still_load() -> None:
    from alloop.surrogate.types import EnsembleConfig

    old = EnsembleConfig(ensemble_size=3).to_dict()
    old["num_members"] = old.pop("ensemble_size")
    old["train"] = {**old["train"], "lr": 5e-4}  # type: ignore[dict-item]
    del old["train"]["learning_rate"]  # type: ignore[attr-defined]
    cfg = EnsembleConfig.from_dict(old)
    assert (cfg.ensemble_size, cfg.train.learning_rate) == (3, 5e-4)


def test_checkpoint_configs_from_before_cross_fitting_load_as_holdout() -> None:
    from alloop.surrogate.types import EnsembleConfig

    old = EnsembleConfig(split="cross_fit", prior_mean="scaling").to_dict()
    del old["split"], old["prior_mean"]
    cfg = EnsembleConfig.from_dict(old)
    assert (cfg.split, cfg.prior_mean) == ("holdout", "none")


def test_config_spells_splits_and_prior_means_as_the_surrogate_does() -> None:
    from typing import Literal, get_args, get_origin

    from alloop.loop.config import SurrogateSection
    from alloop.surrogate.fidelity import SPLITS
    from alloop.surrogate.mlip_features import MLIP_FEATURES
    from alloop.surrogate.prior import PRIOR_MEANS
    from alloop.surrogate.site_loss import SITE_LOSSES

    for field, names in (
        ("split", SPLITS),
        ("prior_mean", PRIOR_MEANS),
        ("mlip_features", MLIP_FEATURES),
        ("site_loss", SITE_LOSSES),
    ):
        annotation = SurrogateSection.model_fields[field].annotation
        if get_origin(annotation) is not Literal:  # Optional[Literal[...]]
            (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
        assert get_args(annotation) == names


def test_split_and_prior_resolve_to_what_was_measured_for_each_policy() -> None:
    """Single-fidelity campaigns get the library's measured levers; cost-aware campaigns keep
    holdout without a prior (what their benchmark measured); a config's own choice stands."""
    from alloop.loop.config import SurrogateSection
    from alloop.surrogate.defaults import SURROGATE_DEFAULTS

    plain = AlloopConfig.model_validate(MINIMAL).surrogate
    sd = SURROGATE_DEFAULTS
    assert plain.levers == (sd.split, sd.prior_mean, sd.mlip_features)
    chosen = AlloopConfig.model_validate(
        {
            **MINIMAL,
            "surrogate": {"split": "holdout", "prior_mean": "scaling", "mlip_features": "none"},
        }  # fmt: skip
    ).surrogate
    assert chosen.levers == ("holdout", "scaling", "none")
    with pytest.raises(ConfigError, match="unresolved"):
        _ = SurrogateSection().levers


def test_oracle_and_executor_defaults_are_the_librarys() -> None:
    """One source for the search and executor defaults (alloop.oracles.defaults): a config
    left at its defaults builds the library's default MLIP settings and executor settings."""
    from alloop.loop.bridges.oracle import mlip_settings
    from alloop.oracles.factory import ExecutorSettings
    from alloop.oracles.settings import MLIPOracleSettings

    cfg = AlloopConfig.model_validate(MINIMAL)
    built, library = mlip_settings(cfg), MLIPOracleSettings()
    for name in ("fmax_ev_per_ang", "max_steps", "max_placements", "patience", "tolerance_ev",
                 "time_limit_s", "calculator", "reference_scheme"):  # fmt: skip
        assert getattr(built, name) == getattr(library, name), name
    assert cfg.executor.workers == ExecutorSettings().workers


def test_a_bad_smiles_leaves_rdkit_logging_as_it_was():
    from rdkit import rdBase

    before = rdBase.LogStatus()
    bad = {**MINIMAL, "pool": {"surfaces": [{"bulk": "Pt"}], "adsorbates": [{"smiles": "C1CC("}]}}
    with pytest.raises(ConfigError, match="invalid SMILES 'C1CC\\('"):
        parse_config(bad)
    assert rdBase.LogStatus() == before
    assert "rdApp.error:enabled" in before
