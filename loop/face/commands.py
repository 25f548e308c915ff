"""Plain functions behind the CLI commands: no printing, no Typer, easy to test."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path

from alloop.loop.agent.labels import labels_that_count
from alloop.loop.bridges.pool import build_pool
from alloop.loop.config import AlloopConfig, load_config
from alloop.loop.face.answers import Answers, campaign_answers, write_ranking_csv
from alloop.loop.face.decisions import (
    PairDecisions,
    acquisition_job,
    labels_bought,
    pair_decisions,
)
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
    JobRecord,
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


def campaign_status(
    campaign: str,
) -> tuple[CampaignStatus, dict[str, float], Standing, Answers]:
    """The campaign's counts, its cost spent by job kind (`campaign_costs`), where it stands
    (running or not, finished and why, budget used) and its answers, strongest first
    (`answers.campaign_answers`: DFT level in a multi-fidelity campaign)."""
    holder = lock_holder(campaign)
    with CampaignStore.open(campaign) as store:
        answers = campaign_answers(store)
        status = status_of(store, answers=answers)
        return status, campaign_costs(store), standing_of(store, holder), answers


def status_of(
    store: CampaignStore, n_best: int = 5, answers: Answers | None = None
) -> CampaignStatus:
    """`store.status()` with its strongest pairs ranked by the campaign's answers
    (`answers.campaign_answers`: the label that counts; at DFT level in a multi-fidelity
    campaign, a pair with only an MLIP label at the model's DFT-level μ, source "predicted"),
    so neither a superseded MLIP label nor a raw one is reported as the pair's value."""
    answers = campaign_answers(store) if answers is None else answers
    return replace(store.status(n_best), best=answers.best(n_best))


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
    # the label this pick bought (its job's, `decisions.acquisition_job`; without provenance),
    # None while pending; a pick that made no job (added by hand): the pair's label that counts
    label: LabelSummary | None
    counted: LabelSummary | None = None  # the pair's label that counts now


def campaign_history(
    campaign: str,
    *,
    round_index: int | None = None,
    surface: str | None = None,
    adsorbate: str | None = None,
) -> list[HistoryRow]:
    """Acquisitions (filtered), each with the label it bought and the label its pair counts
    now (a later DFT label is that round's, not this one's)."""
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
        summaries = store.label_summaries()
        jobs: dict[tuple[int | None, str], list[JobRecord]] = {}
        for j in store.jobs():
            jobs.setdefault((j.round_index, j.pair_key), []).append(j)
    counting = labels_that_count(summaries, strict=False)
    bought = labels_bought(summaries)
    rows = []
    for a in acqs:
        job = acquisition_job(a, jobs.get((a.round_index, a.pair_key), []))
        label = counting.get(a.pair_key) if job is None else bought.get(job.key)
        rows.append(HistoryRow(a, label, counting.get(a.pair_key)))
    return rows


def export_campaign(
    campaign: str, fmt: str, out: Path | None, *, neutralise_formulas: bool = NEUTRALISE_FORMULAS
) -> list[tuple[Path, str]]:
    """Export as ``fmt`` (csv: labels, acquisitions and the ranking by the campaign's answers,
    `answers.write_ranking_csv`; asedb: the structures labels store, refused when none does);
    CSV text cells that a spreadsheet would run as formulas are neutralised when
    ``neutralise_formulas`` (`alloop.store.exports`). Returns (file, what it holds)."""
    with CampaignStore.open(campaign) as store:
        name = store.campaign().name
        if fmt == "csv":
            out_dir = out or Path(f"{name}-export")
            if not out_dir.exists():
                if not out_dir.parent.is_dir():
                    raise StoreError(f"cannot write into {out_dir}: parent directory missing")
                out_dir.mkdir()
            labels, acqs = export_csv(store, out_dir, neutralise_formulas=neutralise_formulas)
            answers = campaign_answers(store)
            ranking = write_ranking_csv(store, answers, out_dir,
                                        neutralise_formulas=neutralise_formulas)  # fmt: skip
            level = "at DFT level, " if answers.multi_fidelity else ""
            ranked = f"{len(answers.rows)} pairs ranked {level}strongest first"
            return [(labels, "every label"), (acqs, "every acquisition"), (ranking, ranked)]
        if fmt == "asedb":
            path = out or Path(f"{name}.db")
            n = export_asedb(store, path)
            return [(path, f"{n} structures")]
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
