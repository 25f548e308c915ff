"""From campaign state to the oracles: oracle construction, oracle pairs, results as labels."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from alloop.loop.bridges.threads import labelling_threads
from alloop.loop.config import AlloopConfig
from alloop.loop.errors import ConfigError, LoopError
from alloop.loop.hints import name_some
from alloop.oracles import factory
from alloop.oracles.executors import RETRYABLE_FAILURES as RETRYABLE_FAILURES  # for agent/
from alloop.oracles.executors import Executor as Executor  # for agent/
from alloop.oracles.executors import is_retryable as is_retryable  # for agent/
from alloop.oracles.factory import ExecutorSettings, ReplayOracleSettings
from alloop.oracles.fg_data import fg_data_root
from alloop.oracles.settings import MLIPOracleSettings
from alloop.oracles.types import AdsorbateSpec, OraclePair, OracleResult
from alloop.oracles.types import Oracle as Oracle  # for agent/
from alloop.store import CampaignStore
from alloop.store.enums import Fidelity
from alloop.store.records import NewLabel, PairRecord
from alloop.store.structures import atoms_to_json

#: the folder beside a campaign file that keeps its relaxed slabs and gas references
ORACLE_CACHE_SUFFIX = ".oracle-cache"


def oracle_cache_dir(store: CampaignStore) -> Path:
    """Where a campaign's MLIP oracle keeps relaxed slabs and gas references (shared by every
    worker, run and resume): ``<campaign file>.oracle-cache`` beside a SQLite campaign, else
    ``<campaign name>.oracle-cache`` in the working folder. Workers on other machines (SLURM,
    PBS) need it on a shared file system."""
    path = store.target.path
    if path is not None:
        path = path.resolve()  # workers elsewhere (other cwd, other nodes) find it too
        return path.with_name(path.name + ORACLE_CACHE_SUFFIX)
    return Path.cwd() / f"{store.campaign().name}{ORACLE_CACHE_SUFFIX}"


def mlip_settings(cfg: AlloopConfig, cache_dir: Path | None = None) -> MLIPOracleSettings:
    section = cfg.oracle
    return MLIPOracleSettings.from_dict(
        {
            "calculator": section.calculator,
            "checkpoint_path": str(section.checkpoint) if section.checkpoint else None,
            "checkpoint_sha256": section.checkpoint_sha256,
            "fmax_ev_per_ang": section.fmax_ev_per_ang,
            "max_steps": section.max_steps,
            "max_placements": section.max_placements,
            "patience": section.patience,
            "tolerance_ev": section.tolerance_ev,
            "committee_calculator": section.committee,
            "reference_scheme": section.reference,
            "time_limit_s": section.time_limit_s,
            "seed": cfg.campaign.seed,
            "slab_cache_dir": str(cache_dir) if cache_dir is not None else None,
            "torch_threads": labelling_threads(cfg),
        }
    )


def build_oracle(cfg: AlloopConfig, cache_dir: Path | None = None) -> Oracle:
    """The labelling oracle the config names (`replay`, `mlip` or `mf_replay`); ``cache_dir``:
    where the MLIP oracle keeps its reference relaxations (`oracle_cache_dir`)."""
    if cfg.oracle.kind == "replay":
        return factory.build_oracle(ReplayOracleSettings(str(replay_root(cfg))))
    if cfg.oracle.kind == "mf_replay":
        from alloop.oracles.lowfi_replay import LowFidelityReplayOracle

        return LowFidelityReplayOracle(cfg.oracle.lowfi_table)
    return factory.build_oracle(mlip_settings(cfg, cache_dir))


def replay_root(cfg: AlloopConfig) -> Path:
    """The FG table a replay oracle reads: `oracle.fg_root`, else the pool's, else the default."""
    return cfg.oracle.fg_root or (cfg.pool.fg.root if cfg.pool.fg else None) or fg_data_root()


def refuse_pairs_outside_table(
    cfg: AlloopConfig, surface_keys: Sequence[str], adsorbate_keys: Sequence[str]
) -> None:
    """A replay oracle answers only the pairs its table holds (`replay`: the FG table;
    `mf_replay`: the low-fidelity table and, when it escalates, the FG table): a pool
    with others would fail every one of them, so it is refused before a campaign is made, in
    one line naming the first few and how many."""
    if cfg.oracle.kind not in ("replay", "mf_replay"):
        return
    from alloop.oracles.errors import OracleError
    from alloop.oracles.lowfi_replay import default_lowfi_table, read_lowfi_table
    from alloop.oracles.replay import read_fg_rows
    from alloop.store.campaign import pair_key

    root = replay_root(cfg)
    try:
        tables = []
        if cfg.oracle.kind == "replay" or cfg.escalation.enabled:
            tables.append(("the FG table at " + str(root), set(read_fg_rows(root))))
        if cfg.oracle.kind == "mf_replay":
            path = cfg.oracle.lowfi_table or default_lowfi_table()
            tables.insert(0, (f"the low-fidelity table {path}", set(read_lowfi_table(path)[0])))
    except OracleError as exc:
        raise ConfigError(f"oracle.kind: {cfg.oracle.kind}: {exc}") from exc
    for where, known in tables:
        outside = [pair_key(s, a) for s in surface_keys for a in adsorbate_keys
                   if (s, a) not in known]  # fmt: skip
        if outside:
            n_pairs = len(surface_keys) * len(adsorbate_keys)
            raise ConfigError(
                f"oracle.kind: {cfg.oracle.kind} answers only pairs in {where}; "
                f"{len(outside)} of the pool's {n_pairs} pairs are not in it: "
                f"{name_some(outside)}; use pool.fg for FG pairs, or oracle.kind: mlip"
            )


def build_executor(cfg: AlloopConfig) -> Executor:
    section = cfg.executor
    return factory.build_executor(
        ExecutorSettings(
            kind=section.kind,
            workers=section.workers,
            job_timeout_s=section.job_timeout_s,
            address=section.address,
            jobqueue=section.jobqueue.model_dump() if section.jobqueue is not None else None,
        )
    )


def oracle_fidelity(cfg: AlloopConfig) -> str:
    """The fidelity of the labelling oracle's jobs (step 4)."""
    return Fidelity.REPLAY.value if cfg.oracle.kind == "replay" else Fidelity.MLIP.value


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
