"""Plain functions behind the CLI commands: no printing, no Typer, easy to test."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path

from alloop.loop.agent.labels import labels_that_count
from alloop.loop.bridges.pool import build_pool
from alloop.loop.config import AlloopConfig, load_config
from alloop.loop.face.decisions import PairDecisions, pair_decisions
from alloop.loop.face.entry import campaign_file_for
from alloop.loop.face.standing import Standing, lock_holder, standing_of
from alloop.loop.hints import not_found
from alloop.store import CampaignStore
from alloop.store.errors import (
    CampaignExistsError,
    CampaignNotFoundError,
    NotACampaignError,
    StoreError,
)
from alloop.store.exports import NEUTRALISE_FORMULAS, export_asedb, export_csv
from alloop.store.records import (
    AcquisitionRecord,
    CampaignStatus,
    LabelRecord,
    LabelSummary,
)


def default_campaign_path(cfg: AlloopConfig) -> Path:
    return campaign_file_for(cfg.campaign.name)


def require(what: str, key: str, valid: list[str]) -> None:
    """Refuse a key the campaign does not have, with close matches and the valid ones."""
    if key not in valid:
        raise StoreError(not_found(what, key, valid))


def where_it_stands(store: CampaignStore) -> str:
    """`at round 4, step labelled` (the last committed step; `after round 4 closed` between
    rounds), for the interruption line."""
    try:
        rounds = store.rounds()
    except StoreError:
        return "(state unreadable)"
    if not rounds:
        return "before round 0"
    last = rounds[-1]
    if last.state == "closed":
        return f"after round {last.index} closed"
    return f"at round {last.index}, step {last.state}"


def init_campaign(config_path: Path, campaign: str | None) -> tuple[str, CampaignStatus]:
    """Create a campaign from a config file; returns where it is and its status.

    The config is validated and the pool built (structures made, SMILES checked) before the
    campaign file is touched, so a bad config leaves nothing behind.
    """
    cfg = load_config(config_path)
    target = campaign or str(default_campaign_path(cfg))
    if "://" not in target and Path(target).exists():
        raise CampaignExistsError(f"{target} exists already; choose another path or remove it")
    with create_campaign(cfg, target) as store:
        return target, status_of(store)


def create_campaign(cfg: AlloopConfig, target: str) -> CampaignStore:
    """Build the pool (structures, SMILES) and check that the oracle can label it, then
    create the campaign; returned locked."""
    from alloop.loop.bridges.oracle import refuse_pairs_outside_table

    pool = build_pool(cfg.pool, cfg.campaign.seed)
    refuse_pairs_outside_table(
        cfg, [s.key for s in pool.surfaces], [a.key for a in pool.adsorbates]
    )
    return CampaignStore.create(
        target,
        name=cfg.campaign.name,
        config=cfg.resolved(),
        seed=cfg.campaign.seed,
        surfaces=pool.surfaces,
        adsorbates=pool.adsorbates,
    )


def campaign_status(campaign: str) -> tuple[CampaignStatus, dict[str, float], Standing]:
    """The campaign's counts, its cost spent by job kind (`campaign_costs`) and where it
    stands (running or not, finished and why, budget used)."""
    holder = lock_holder(campaign)
    with CampaignStore.open(campaign) as store:
        return status_of(store), campaign_costs(store), standing_of(store, holder)


def status_of(store: CampaignStore, n_best: int = 5) -> CampaignStatus:
    """`store.status()` with its strongest pairs ranked by the label that counts per pair
    (`alloop.loop.agent.labels`), so an MLIP label superseded by DFT is not reported."""
    counting = labels_that_count(store.label_summaries(), strict=False).values()
    ok = sorted(
        (lab for lab in counting if lab.status == "ok" and lab.gmae_ev is not None),
        key=lambda lab: (lab.gmae_ev, lab.pair_key),
    )
    best = tuple((lab.pair_key, float(lab.gmae_ev), lab.fidelity) for lab in ok[:n_best])  # type: ignore[arg-type]
    return replace(store.status(n_best), best=best)


def campaign_costs(store: CampaignStore) -> dict[str, float]:
    """Cost units spent per job kind, priced by the campaign's stored `cost` section (older
    campaigns have none: the defaults)."""
    from alloop.loop.agent.costs import cost_by_fidelity
    from alloop.loop.config import CostSection

    section = CostSection.model_validate(store.campaign().config.get("cost", {}))
    return cost_by_fidelity(store.jobs(), section)


@dataclass(frozen=True)
class HistoryRow:
    acquisition: AcquisitionRecord
    label: LabelSummary | None  # the label that counts, without its provenance (cheap)


def campaign_history(
    campaign: str,
    *,
    round_index: int | None = None,
    surface: str | None = None,
    adsorbate: str | None = None,
) -> list[HistoryRow]:
    """Acquisitions (filtered), each with the best-fidelity label its pair has so far."""
    with CampaignStore.open(campaign) as store:
        if surface is not None:
            require("surface", surface, [s.key for s in store.surfaces()])
        if adsorbate is not None:
            require("adsorbate", adsorbate, [a.key for a in store.adsorbates()])
        if round_index is not None and round_index not in {r.index for r in store.rounds()}:
            rounds = [r.index for r in store.rounds()]
            span = f"rounds {rounds[0]} to {rounds[-1]}" if rounds else "no rounds yet"
            raise StoreError(f"no round {round_index} in this campaign (it has {span})")
        acqs = store.acquisitions(round_index=round_index, surface=surface, adsorbate=adsorbate)
        counting = labels_that_count(store.label_summaries(), strict=False)
    return [HistoryRow(a, counting.get(a.pair_key)) for a in acqs]


def export_campaign(
    campaign: str, fmt: str, out: Path | None, *, neutralise_formulas: bool = NEUTRALISE_FORMULAS
) -> list[Path]:
    """Export as ``fmt`` (csv, asedb); CSV text cells that a spreadsheet would run as formulas
    are neutralised when ``neutralise_formulas`` (`alloop.store.exports`)."""
    with CampaignStore.open(campaign) as store:
        name = store.campaign().name
        if fmt == "csv":
            out_dir = out or Path(f"{name}-export")
            if not out_dir.exists():
                if not out_dir.parent.is_dir():
                    raise StoreError(f"cannot write into {out_dir}: parent directory missing")
                out_dir.mkdir()
            return list(export_csv(store, out_dir, neutralise_formulas=neutralise_formulas))
        if fmt == "asedb":
            path = out or Path(f"{name}.db")
            export_asedb(store, path)
            return [path]
    raise StoreError(f"unknown export format {fmt!r}; valid: csv, asedb")


def open_for_run(config_path: Path, campaign: str | None) -> tuple[CampaignStore, AlloopConfig]:
    """Create the campaign of `config_path`, or reopen it (locked) when it exists.

    Reopening refuses a config that differs from the stored one outside the fields that may
    change (budget, executor); allowed changes are stored before the run continues. A database
    URL whose database holds no campaign yet (an empty PostgreSQL database) is created.
    """
    from alloop.loop.config import ConfigError, check_config_change, parse_config

    cfg = load_config(config_path)
    target = campaign or str(default_campaign_path(cfg))
    if "://" in target or Path(target).exists():
        try:
            store = CampaignStore.open(target, write=True)
        except (CampaignNotFoundError, NotACampaignError):
            if "://" not in target:  # a file that is not a campaign: never overwritten
                raise
            return create_campaign(cfg, target), cfg  # refuses a database holding one
        try:
            stored = store.campaign().config
            with contextlib.suppress(ConfigError):  # keys added since compare at defaults
                stored = parse_config(stored).resolved()
            changed = check_config_change(stored, cfg.resolved(), target)
            if changed:
                store.update_config(cfg.resolved())
        except BaseException:
            store.close()
            raise
        return store, cfg
    return create_campaign(cfg, target), cfg


def open_for_resume(campaign: str) -> tuple[CampaignStore, AlloopConfig]:
    """Reopen a campaign (locked) with the config stored in it."""
    from alloop.loop.config import parse_config

    store = CampaignStore.open(campaign, write=True)
    try:
        cfg = parse_config(store.campaign().config, f"{campaign} (stored config)")
    except BaseException:
        store.close()
        raise
    return store, cfg


@dataclass(frozen=True)
class TopSites:
    """The slab atoms the surrogate's attention scored highest when a pair was acquired."""

    round_index: int
    atoms: list[tuple[int, str, float]]  # (atom index, element, score), best first


def pair_site_scores(campaign: str, pair: str, n_top: int = 5) -> list[TopSites]:
    """The `n_top` best-scored slab atoms of each acquisition of `pair` that stored site
    scores (`agent.planning.SITE_SCORES_EVENT`), oldest first."""
    from alloop.loop.agent.planning import SITE_SCORES_EVENT

    with CampaignStore.open(campaign) as store:
        record = store.pair(pair)
        symbols = store.surface_atoms(record.surface_key).get_chemical_symbols()
        out = []
        for e in store.events():
            if e.kind != SITE_SCORES_EVENT or e.payload.get("pair") != pair:
                continue
            scores = list(enumerate(e.payload["scores"]))
            best = sorted(scores, key=lambda x: -x[1])[:n_top]
            out.append(TopSites(e.round_index or 0, [(i, symbols[i], s) for i, s in best]))
        return out


def pair_story(
    campaign: str, pair: str
) -> tuple[list[AcquisitionRecord], list[LabelRecord], PairDecisions]:
    """Every acquisition of `pair`, every label it has (oldest first), and every decision
    about it with what each bought and the label that counts (`decisions.pair_decisions`)."""
    with CampaignStore.open(campaign) as store:
        require("pair", pair, [p.key for p in store.pairs()])
        acqs = [a for a in store.acquisitions() if a.pair_key == pair]
        return acqs, store.labels(pair), pair_decisions(store, pair)
