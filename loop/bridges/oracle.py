"""From campaign state to the oracles: oracle construction, oracle pairs, results as labels."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alloop.loop.config import AlloopConfig
from alloop.loop.errors import LoopError
from alloop.oracles import factory
from alloop.oracles.factory import ExecutorSettings, ReplayOracleSettings
from alloop.oracles.fg_data import fg_data_root
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.types import AdsorbateSpec, Oracle, OraclePair, OracleResult
from alloop.store.records import NewLabel, PairRecord
from alloop.store.structures import atoms_to_json


def mlip_settings(cfg: AlloopConfig) -> MLIPOracleSettings:
    section = cfg.oracle
    return MLIPOracleSettings.from_dict(
        {
            "calculator": section.calculator,
            "checkpoint_path": str(section.checkpoint) if section.checkpoint else None,
            "fmax_ev_per_ang": section.fmax_ev_per_ang,
            "max_steps": section.max_steps,
            "placement_cap": section.max_placements,
            "patience": section.patience,
            "tolerance_ev": section.tolerance_ev,
            "committee_calculator": section.committee,
            "reference_scheme": section.reference,
            "time_limit_s": section.time_limit_s,
            "seed": cfg.campaign.seed,
        }
    )


def build_oracle(cfg: AlloopConfig) -> Oracle:
    """The labelling oracle the config names (`replay`, `mlip` or `mf_replay`)."""
    if cfg.oracle.kind == "replay":
        return factory.build_oracle(ReplayOracleSettings(str(replay_root(cfg))))
    if cfg.oracle.kind == "mf_replay":
        from alloop.oracles.lowfi_replay import LowFidelityReplayOracle

        return LowFidelityReplayOracle(cfg.oracle.lowfi_table)
    return factory.build_oracle(mlip_settings(cfg))


def replay_root(cfg: AlloopConfig) -> Path:
    """The FG table a replay oracle reads: `oracle.fg_root`, else the pool's, else the default."""
    return cfg.oracle.fg_root or (cfg.pool.fg.root if cfg.pool.fg else None) or fg_data_root()


def build_executor(cfg: AlloopConfig) -> Any:
    section = cfg.executor
    return factory.build_executor(
        ExecutorSettings(
            kind=section.kind,
            n_workers=section.workers,
            job_timeout_s=section.job_timeout_s,
            address=section.address,
        )
    )


def oracle_fidelity(cfg: AlloopConfig) -> str:
    """The fidelity of the labelling oracle's jobs (step 4)."""
    return "replay" if cfg.oracle.kind == "replay" else "mlip"


def oracle_pairs(
    pairs: Sequence[PairRecord],
    slabs: dict,
    adsorbates: dict,
    adsorbate_atoms: dict,
    site_scores: dict[str, tuple[float, ...]] | None = None,
) -> list[OraclePair]:
    out = []
    for p in pairs:
        ads = adsorbates[p.adsorbate_key]
        spec = AdsorbateSpec(
            name=ads.name,
            smiles=ads.smiles,
            atoms=adsorbate_atoms.get(p.adsorbate_key),
            binding_atoms=tuple(ads.binding_atoms),
        )
        out.append(
            OraclePair(
                key=p.key,
                surface_key=p.surface_key,
                adsorbate_key=p.adsorbate_key,
                slab=slabs[p.surface_key],
                adsorbate=spec,
                site_scores=(site_scores or {}).get(p.key),
            )
        )
    return out


def result_to_label(result: OracleResult) -> NewLabel:
    """An oracle result as the store records it; the best structure goes into provenance."""
    provenance = dict(result.provenance)
    if result.best_structure is not None:
        provenance["best_structure"] = atoms_to_json(result.best_structure)
    try:
        json.dumps(provenance)
    except (TypeError, ValueError) as exc:
        raise LoopError(f"oracle provenance for {result.pair_key} is not JSON: {exc}") from exc
    return NewLabel(result.gmae_ev, result.status, result.fidelity, provenance)
