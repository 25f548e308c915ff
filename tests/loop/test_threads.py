"""One thread setting (`executor.threads`, `--threads`) for the campaign process, applied in a
context that restores the previous torch and BLAS values (`alloop.loop.bridges.threads`)."""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_info
from typer.testing import CliRunner

from alloop.loop.bridges.oracle import mlip_settings
from alloop.loop.bridges.threads import (
    campaign_threads,
    labelling_threads,
    threads_for,
    usable_cores,
    with_threads,
)
from alloop.loop.config import ConfigError, parse_config
from alloop.loop.face.cli import app
from tests.loop.test_standing import replay_config

MINIMAL = {"campaign": {"name": "c"}, "pool": {"fg": {}}}
runner = CliRunner()


def config(**executor: object):
    return parse_config({**MINIMAL, "executor": executor})


def test_the_default_divides_the_cores_among_the_workers():
    assert campaign_threads(config(), cores=8) == 8
    assert campaign_threads(config(kind="process", workers=4), cores=8) == 2
    assert campaign_threads(config(kind="process", workers=16), cores=8) == 1
    assert campaign_threads(config(kind="process", workers=4, threads=3), cores=8) == 3
    assert campaign_threads(config()) == usable_cores() >= 1
    # the default only lowers what the process has (OMP_NUM_THREADS=1 stays 1)
    assert campaign_threads(config(kind="process", workers=2), cores=8, current=1) == 1
    assert campaign_threads(config(kind="process", workers=2), cores=8, current=16) == 4
    assert campaign_threads(config(threads=6), cores=8, current=1) == 6
    assert campaign_threads(with_threads(config(threads=3), 5)) == 5
    assert with_threads(config(threads=3), None).executor.threads == 3
    with pytest.raises(ConfigError, match="executor.threads: Input should be greater than"):
        config(threads=0)


def test_mlip_labels_keep_one_thread_unless_set_in_process():
    assert labelling_threads(config()) == 1
    assert labelling_threads(config(kind="process", workers=2, threads=4)) == 1
    assert labelling_threads(config(threads=4)) == 4
    assert mlip_settings(config(threads=4)).torch_threads == 4
    assert mlip_settings(config()).torch_threads == 1


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info()]


def test_threads_are_set_inside_the_block_and_restored_after_it():
    before_torch, before_blas = torch.get_num_threads(), _blas_threads()
    other = 1 if before_torch != 1 else 2
    with threads_for(config(threads=other)) as n:
        assert n == other and torch.get_num_threads() == other
        assert all(t == other for t in _blas_threads())
    assert torch.get_num_threads() == before_torch and _blas_threads() == before_blas
    with pytest.raises(RuntimeError), threads_for(config(threads=other)):
        raise RuntimeError("a failed round")
    assert torch.get_num_threads() == before_torch


def test_a_run_trains_with_the_threads_given_and_restores_them(tmp_path, monkeypatch):
    seen: list[int] = []
    from alloop.loop.agent import engine as engine_module

    real = engine_module.fit_ensemble

    def spying_fit(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "fit_ensemble", spying_fit)
    before = torch.get_num_threads()
    threads = 1 if before != 1 else 2
    cfg = replay_config(tmp_path / "c.yaml", rounds=2)
    result = runner.invoke(app, ["run", str(cfg), "-c", str(tmp_path / "c.alloop"), "-q",
                                 "--threads", str(threads)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen == [threads] and torch.get_num_threads() == before
    bad = runner.invoke(app, ["resume", str(tmp_path / "c.alloop"), "--threads", "0"])
    assert bad.exit_code != 0 and "--threads" in bad.output
