"""The shipped MLIP oracle and executor: one source for the defaults the campaign config and the
library share (`MLIPOracleSettings`, `ExecutorSettings`, the executors, and the config's
`oracle` and `executor` sections; a test checks that they agree). Import-light, so reading a
campaign config does not import the MLIP stack.

Measured: the label-accuracy benchmark (`benchmarks/results/oracles_label_accuracy.md`:
SevenNet-MF-0 and CHGNet on 14 FG pairs, MAE 0.35 / 0.31 eV against DFT, 97-213 s per label)
ran the search with patience 3, at most 8 placements, 300 optimiser steps, fmax 0.05 eV/Å and
the 3,600 s pair limit; the search-efficiency benchmark
(`benchmarks/results/oracles_search_efficiency.md`, EMT, 50 pairs) found patience 3 as
successful as 5 (49/50 each) at 0.044 instead of 0.065 of a dense search's relaxations.
Not measured: `workers` (1: the safe choice; set it to the cores or nodes you have; the
throughput benchmark, `benchmarks/loop/campaign_throughput.py`, measures 1 vs 2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OracleDefaults:
    fmax_ev_per_ang: float = 0.05
    max_steps: int = 300
    max_placements: int = 8
    patience: int = 3
    tolerance_ev: float = 0.05
    time_limit_s: float | None = 3600.0
    workers: int = 1


ORACLE_DEFAULTS = OracleDefaults()
