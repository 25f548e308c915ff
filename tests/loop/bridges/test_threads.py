"""One thread setting (`executor.threads`, `--threads`) for the campaign process, applied in a
context that restores the previous torch and BLAS values (`alloop.loop.bridges.threads`); unset,
the cores ÷ workers capped at the cores other processes leave free, read from /proc/stat."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_info
from typer.testing import CliRunner

from alloop.loop.bridges import threads as threads_module
from alloop.loop.bridges.oracle import mlip_settings
from alloop.loop.bridges.threads import (
    campaign_threads,
    cores_left,
    decide_threads,
    free_cores,
    labelling_threads,
    parse_cpu_times,
    threads_for,
    usable_cores,
    usable_cpus,
    with_threads,
)
from alloop.loop.config import ConfigError, parse_config
from alloop.loop.face.cli import app
from tests.conftest import replay_config

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


def test_the_default_is_capped_at_the_free_cores():
    # 2 cores, 2 other processes burning them: one thread, not two that wait for each other
    assert campaign_threads(config(), cores=2, free=0.05) == 1
    assert campaign_threads(config(), cores=2, free=1.9) == 2
    assert campaign_threads(config(), cores=8, free=3.4) == 3
    assert campaign_threads(config(), cores=8, free=3.5) == 4
    assert campaign_threads(config(), cores=8, free=0.0) == 1  # never below 1
    # the cap only lowers the share of the workers, and the count the process has
    assert campaign_threads(config(kind="process", workers=4), cores=8, free=8.0) == 2
    assert campaign_threads(config(), cores=8, current=2, free=6.0) == 2
    # an explicit setting always wins
    assert campaign_threads(config(threads=4), cores=2, free=0.0) == 4
    assert campaign_threads(with_threads(config(), 3), cores=2, free=0.0) == 3


STAT = """cpu  300 0 100 600 0 0 0 0 0 0
cpu0 100 0 50 300 0 0 0 0 0 0
cpu1 200 5 50 300 10 1 2 3 7 0
intr 880991 0 0
ctxt 789140
"""


def test_cpu_times_are_read_per_cpu_from_proc_stat():
    times = parse_cpu_times(STAT)
    assert times == {0: (450, 300), 1: (571, 310)}  # guest (7) is inside user already


def _after(ticks: dict[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """`parse_cpu_times(STAT)` advanced by ``cpu: (all, idle)`` ticks."""
    base = parse_cpu_times(STAT)
    return {c: (base[c][0] + ticks[c][0], base[c][1] + ticks[c][1]) for c in base}


def test_free_cores_count_the_time_other_processes_leave():
    before = parse_cpu_times(STAT)
    both_busy = _after({0: (20, 0), 1: (20, 0)})
    assert cores_left(before, both_busy, {0, 1}) == pytest.approx(0.0)
    # this process's own time is not someone else's work
    assert cores_left(before, both_busy, {0, 1}, own_ticks=20) == pytest.approx(1.0)
    assert cores_left(before, both_busy, {0, 1}, own_ticks=100) == pytest.approx(2.0)
    idle = _after({0: (20, 20), 1: (20, 20)})
    assert cores_left(before, idle, {0, 1}) == pytest.approx(2.0)
    half = _after({0: (20, 10), 1: (20, 20)})
    assert cores_left(before, half, {0, 1}) == pytest.approx(1.5)
    # only the CPUs this process may run on count
    assert cores_left(before, half, {1}) == pytest.approx(1.0)
    assert cores_left(before, half, {0}) == pytest.approx(0.5)
    assert cores_left(before, half, {7}) is None
    assert cores_left(before, before, {0, 1}) is None  # no tick passed


def test_free_cores_are_read_from_this_machine_or_unknown(monkeypatch, tmp_path):
    free = free_cores(0.05)
    stat = Path(threads_module.PROC_STAT)
    if stat.exists():
        cpus = usable_cpus() or set(parse_cpu_times(stat.read_text()))
        assert free is not None and 0.0 <= free <= len(cpus)
    monkeypatch.setattr(threads_module, "PROC_STAT", str(tmp_path / "no-such-file"))
    assert free_cores(0.01) is None
    # unknown free cores: the share of the workers alone
    assert campaign_threads(config(), cores=2, free=None) == 2


def test_the_free_cores_are_read_only_when_they_could_lower_the_count(monkeypatch):
    reads: list[int] = []

    def busy_machine(sample_s: float = 0.2) -> float:
        reads.append(1)
        return 0.0

    monkeypatch.setattr(threads_module, "free_cores", busy_machine)
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 4)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        assert decide_threads(config()) == 1 and reads == [1]
        assert decide_threads(config(threads=3)) == 3 and reads == [1]
        torch.set_num_threads(1)  # OMP_NUM_THREADS=1: nothing to lower
        assert decide_threads(config()) == 1 and reads == [1]
    finally:
        torch.set_num_threads(before)


def test_each_round_decides_its_threads_again(tmp_path, monkeypatch):
    from alloop.loop.agent import engine as engine_module

    free = iter([2.0, 0.0, 2.0])
    seen: list[int] = []
    real = engine_module.fit_ensemble

    def spying_fit(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(threads_module, "free_cores", lambda sample_s=0.2: next(free))
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    monkeypatch.setattr(engine_module, "fit_ensemble", spying_fit)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        cfg = replay_config(tmp_path / "c.yaml", rounds=3)
        result = runner.invoke(app, ["run", str(cfg), "-c", str(tmp_path / "c.alloop"), "-q"])
        assert result.exit_code == 0, result.output
        # round 0 is a cold start (no training); rounds 1 and 2 saw 0 and 2 free cores
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
