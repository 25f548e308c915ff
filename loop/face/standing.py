"""Where a campaign stands, for `status`, the dashboard and the end of `run`: running or not,
finished and why (the stored `STOPPED_EVENT`), the budget used against what the stored config
allows, and the cause when every label failed. Reads the store only; prints nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from alloop.loop.agent.costs import cost_by_fidelity
from alloop.loop.agent.events import STOPPED_EVENT
from alloop.loop.agent.labels import pairs_labelled
from alloop.loop.config import BudgetSection, CostSection
from alloop.store import CampaignStore
from alloop.store.errors import CampaignLockedError
from alloop.store.records import EventRecord, LabelSummary


@dataclass(frozen=True)
class BudgetUse:
    """One budget: how much is used and how much the config allows (None: no limit)."""

    what: str  # "cost" (units), "labels" (pairs), "rounds" (closed)
    used: float
    allowed: float | None


@dataclass(frozen=True)
class Standing:
    """``state``: running, finished, interrupted, paused or not started; ``detail``: why
    (the stop reason and its detail when finished)."""

    state: str
    detail: str
    budget: tuple[BudgetUse, ...]
    all_failed: str | None = None  # every label failed: the cause, else None


def lock_holder(campaign: str) -> str | None:
    """Who drives the campaign now (``PID 12 on host h (since ...)``), or None when no process
    holds its lock (or it is not a file: a database URL is not probed)."""
    from alloop.store.lock import refuse_if_locked

    if "://" in campaign:
        return None
    try:
        refuse_if_locked(Path(campaign))
    except CampaignLockedError as exc:
        text = str(exc).split(";")[0]
        return text.split(" is locked by ", 1)[-1]
    return None


def standing_of(
    store: CampaignStore, holder: str | None = None, events: Sequence[EventRecord] | None = None
) -> Standing:
    """The campaign's standing; ``holder``: the process driving it (`lock_holder`), if any;
    ``events``: the store's events when the caller has read them already."""
    config = store.campaign().config
    rounds = store.rounds()
    summaries = store.label_summaries()
    limits = BudgetSection.model_validate(config.get("budget", {}))
    costs = cost_by_fidelity(store.jobs(), CostSection.model_validate(config.get("cost", {})))
    budget = (
        BudgetUse("cost", sum(costs.values()), limits.max_cost),
        BudgetUse("labels", pairs_labelled(summaries), limits.max_labels),
        BudgetUse("rounds", sum(r.state == "closed" for r in rounds), limits.max_rounds),
    )
    failed = all_labels_failed(store, summaries)
    if holder is not None:
        return Standing("running", f"driven by {holder}", budget, failed)
    if not rounds:
        return Standing("not started", "no round yet: `alloop run` or `alloop resume`", budget)
    last = rounds[-1]
    if last.state != "closed":
        return Standing("interrupted", f"at round {last.index}, step {last.state}; "
                        "`alloop resume` continues it", budget, failed)  # fmt: skip
    stops = [e for e in (store.events() if events is None else events) if e.kind == STOPPED_EVENT]
    if stops and stops[-1].payload.get("rounds") == len(rounds):
        payload = stops[-1].payload
        detail = f"{payload.get('reason')}: {payload.get('detail')}"
        return Standing("finished", detail, budget, failed)
    return Standing("paused", f"after round {last.index} closed; `alloop resume` continues it",
                    budget, failed)  # fmt: skip


def all_labels_failed(
    store: CampaignStore, summaries: Sequence[LabelSummary] | None = None
) -> str | None:
    """When the campaign has labels and every one failed: ``N labels, all failed: KIND
    (n×), e.g. MESSAGE``; else None. A campaign like that has learnt nothing, whatever its
    stop rule says."""
    summaries = store.label_summaries() if summaries is None else summaries
    if not summaries or any(lab.status != "failed" for lab in summaries):
        return None
    provenance = [lab.provenance for lab in store.labels()]
    kinds = Counter(str(p.get("failure_kind") or "unknown") for p in provenance)
    kind, n = kinds.most_common(1)[0]
    example = next((str(p.get("error")) for p in provenance if p.get("error")), "no message")
    others = f" (other kinds: {', '.join(sorted(set(kinds) - {kind}))})" if len(kinds) > 1 else ""
    return (
        f"{len(summaries)} labels, all failed: {kind} ({n}×){others}, e.g. "
        f"{example.splitlines()[0][:200]}"
    )
