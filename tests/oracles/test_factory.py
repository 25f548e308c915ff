from __future__ import annotations

from pathlib import Path

import pytest

from alloop.oracles.calculators import CALCULATOR_NAMES, CalculatorSpec, calculator_identity
from alloop.oracles.dft import DFTOracle
from alloop.oracles.dft_settings import DFTOracleSettings, build_dft_calculator
from alloop.oracles.errors import CalculatorSetupError, OracleConfigError
from alloop.oracles.executors import InProcessExecutor, LocalProcessExecutor
from alloop.oracles.factory import (
    ExecutorSettings,
    ReplayOracleSettings,
    build_executor,
    build_oracle,
    executor_settings_from_dict,
    oracle_from_config,
)
from alloop.oracles.mlip_oracle import MLIPOracle
from alloop.oracles.replay import ReplayOracle
from alloop.oracles.settings import MLIPOracleSettings


def test_build_each_oracle_kind(fg_root: Path) -> None:
    assert isinstance(build_oracle(MLIPOracleSettings(calculator="emt")), MLIPOracle)
    dft = build_oracle(DFTOracleSettings(), start=MLIPOracleSettings(calculator="emt"))
    assert isinstance(dft, DFTOracle) and isinstance(dft.start_oracle, MLIPOracle)
    assert isinstance(build_oracle(ReplayOracleSettings(str(fg_root))), ReplayOracle)
    assert isinstance(oracle_from_config({"kind": "replay", "fg_root": str(fg_root)}), ReplayOracle)
    cfg = {
        "kind": "dft",
        "mode": "relax",
        "kpts": [2, 2, 1],
        "start": {"calculator": "emt", "max_placements": 4},
    }
    oracle = oracle_from_config(cfg)
    assert isinstance(oracle, DFTOracle) and oracle.fidelity == "dft_relax"
    assert oracle.settings.kpts == (2, 2, 1)


def test_default_is_the_measured_offline_model() -> None:
    assert MLIPOracleSettings().calculator == "sevennet-mf-0"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"calculator": "mace"},
            "calculator 'mace' is not valid; choose one of emt, sevennet-mf-0",
        ),
        ({"fmax_ev_per_ang": -0.1}, "fmax_ev_per_ang must be finite and > 0, got -0.1"),
        ({"max_placements": 0}, "max_placements must be an integer >= 1, got 0"),
        ({"patience": 2.5}, "patience must be an integer >= 1, got 2.5"),
        ({"reference_scheme": "oc20"}, "reference_scheme 'oc20' is not valid"),
        ({"optimizer": "sd"}, "optimizer 'sd' is not valid"),
        ({"time_limit_s": 0}, "time_limit_s must be finite and > 0"),
        ({"calculator": "emt", "committee_calculator": "emt"}, "a committee needs a second"),
        ({"calculator": "fairchem"}, "calculator 'fairchem' needs checkpoint_path"),
        ({"atomic_mu_ev": {"H": -3.0}}, "atomic_mu_ev is only used with reference_scheme='atomic'"),
    ],
)
def test_mlip_settings_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(OracleConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MLIPOracleSettings(**overrides)  # type: ignore[arg-type]


def test_unknown_keys_list_valid_ones() -> None:
    with pytest.raises(
        OracleConfigError,
        match=r"unknown MLIPOracleSettings keys \['fmax'\]; valid keys: .*fmax_ev_per_ang",
    ):
        MLIPOracleSettings.from_dict({"fmax": 0.05})
    with pytest.raises(OracleConfigError, match=r"unknown AnomalySettings keys \['depth'\]"):
        MLIPOracleSettings.from_dict({"anomaly": {"depth": 1.0}})
    with pytest.raises(OracleConfigError, match="oracle kind 'vasp' is not valid"):
        oracle_from_config({"kind": "vasp"})
    with pytest.raises(OracleConfigError, match="'start' is only valid for kind 'dft'"):
        oracle_from_config({"kind": "mlip", "start": {}})
    with pytest.raises(OracleConfigError, match=r"unknown DFTOracleSettings keys \['encut'\]"):
        DFTOracleSettings.from_dict({"encut": 400})
    settings = MLIPOracleSettings.from_dict(
        {"calculator": "emt", "anomaly": {"intercalation_depth_ang": 1.0}}
    )
    assert settings.anomaly.intercalation_depth_ang == 1.0
    assert MLIPOracleSettings.from_dict(settings.to_dict()) == settings


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"code": "castep"}, "code 'castep' is not valid; choose one of gpaw, vasp, espresso"),
        ({"mode": "md"}, "mode 'md' is not valid; choose one of single_point, relax"),
        ({"kpts": (0, 1, 1)}, "kpts must be three integers >= 1"),
        ({"cutoff_ev": 0}, "cutoff_ev must be a finite number > 0"),
    ],
)
def test_dft_settings_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(OracleConfigError, match=message):
        DFTOracleSettings(**overrides)  # type: ignore[arg-type]


@pytest.mark.dft
def test_gpaw_calculator_builds_from_settings(tmp_path: Path) -> None:
    """Needs GPAW (the `dft` extra, built by `make dft-env`); run by `make test-slow`."""
    gpaw_calc = build_dft_calculator(
        DFTOracleSettings(cutoff_ev=300, kpts=(3, 3, 1)), True, str(tmp_path)
    )
    assert type(gpaw_calc).__module__.startswith("gpaw")


def test_dft_calculators_build_from_settings(tmp_path: Path) -> None:
    vasp = build_dft_calculator(DFTOracleSettings(code="vasp", cutoff_ev=450), True, str(tmp_path))
    assert vasp.parameters["encut"] == 450 and tuple(vasp.parameters["kpts"]) == (4, 4, 1)
    with pytest.raises(
        CalculatorSetupError, match="code 'espresso' needs code_kwargs with command"
    ):
        build_dft_calculator(DFTOracleSettings(code="espresso"), True, str(tmp_path))
    qe = build_dft_calculator(
        DFTOracleSettings(
            code="espresso",
            code_kwargs={
                "command": "pw.x",
                "pseudo_dir": str(tmp_path),
                "pseudopotentials": {"Cu": "Cu.upf"},
            },
        ),
        False,
        str(tmp_path),
    )
    assert qe.parameters["kpts"] == (1, 1, 1)


def test_calculator_identity_records_weights_hash() -> None:
    ident = calculator_identity(CalculatorSpec("sevennet-mf-0"))
    assert ident["calculator"] == "sevennet-mf-0" and len(ident["weights_hash"]) == 64
    assert ident["modal"] == "PBE" and ident["package_version"]
    assert calculator_identity(CalculatorSpec("chgnet"))["weights_hash"] != ident["weights_hash"]
    assert calculator_identity(CalculatorSpec("emt"))["weights_hash"] is None
    assert set(CALCULATOR_NAMES) == {"emt", "sevennet-mf-0", "sevennet-0", "chgnet", "fairchem"}


def test_build_executor() -> None:
    assert isinstance(build_executor(ExecutorSettings()), InProcessExecutor)
    pool = build_executor(
        executor_settings_from_dict({"kind": "process", "workers": 2, "job_timeout_s": 30})
    )
    assert isinstance(pool, LocalProcessExecutor) and pool.job_timeout_s == 30
    with pytest.raises(OracleConfigError, match="executor kind 'slurm' is not valid"):
        ExecutorSettings(kind="slurm")
    with pytest.raises(OracleConfigError, match="address and jobqueue need kind='dask'"):
        ExecutorSettings(kind="process", address="tcp://x:8786")
    with pytest.raises(OracleConfigError, match=r"unknown executor keys \['n_workers'\]"):
        executor_settings_from_dict({"n_workers": 2})  # one name, the config's: workers


def _checkpoint(tmp_path: Path) -> tuple[Path, str]:
    import hashlib

    path = tmp_path / "uma.pt"
    path.write_bytes(b"not a real checkpoint, never to be unpickled")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_pinned_checkpoint_with_another_digest_is_refused_unread(tmp_path: Path) -> None:
    from alloop.oracles.calculators import build_calculator

    path, digest = _checkpoint(tmp_path)
    other = "0" * 64
    spec = CalculatorSpec("fairchem", str(path), checkpoint_sha256=other)
    with pytest.raises(CalculatorSetupError, match=rf"sha256 {digest}, not the pinned {other}"):
        build_calculator(spec)


def test_pinned_checkpoint_with_its_digest_goes_on_to_load(tmp_path: Path) -> None:
    from alloop.oracles.calculators import build_calculator

    pytest.importorskip("fairchem.core")
    path, digest = _checkpoint(tmp_path)
    with pytest.raises(CalculatorSetupError, match="cannot load fairchem checkpoint"):
        build_calculator(CalculatorSpec("fairchem", str(path), checkpoint_sha256=digest))


@pytest.mark.parametrize("pin", ["abc", "G" * 64, "A" * 64])
def test_checkpoint_pin_must_be_a_sha256(tmp_path: Path, pin: str) -> None:
    path, _ = _checkpoint(tmp_path)
    with pytest.raises(OracleConfigError, match="must be 64 lowercase hex digits"):
        CalculatorSpec("fairchem", str(path), checkpoint_sha256=pin)
