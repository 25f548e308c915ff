"""Read-only aggregate queries: campaign status for the CLI and the dashboard."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alloop.store import convert
from alloop.store import models as m
from alloop.store.enums import LabelStatus
from alloop.store.records import CampaignStatus


def campaign_status(s: Session, n_best: int) -> CampaignStatus:
    camp = s.scalar(select(m.CampaignRow))
    assert camp is not None  # the store refuses to open a file without one
    count = lambda model: s.scalar(select(func.count()).select_from(model)) or 0  # noqa: E731
    by_fs = {
        (fid, st): n
        for fid, st, n in s.execute(
            select(m.LabelRow.fidelity, m.LabelRow.status, func.count()).group_by(
                m.LabelRow.fidelity, m.LabelRow.status
            )
        ).all()
    }
    jobs = dict(s.execute(select(m.JobRow.state, func.count()).group_by(m.JobRow.state)).all())
    n_labelled = (
        s.scalar(
            select(func.count(func.distinct(m.LabelRow.pair_id))).where(
                m.LabelRow.status == LabelStatus.OK.value
            )
        )
        or 0
    )
    last = s.scalar(select(m.RoundRow).order_by(m.RoundRow.index.desc()).limit(1))
    best_rows = s.execute(
        select(m.PairRow.key, m.LabelRow.gmae_ev, m.LabelRow.fidelity)
        .join(m.PairRow, m.LabelRow.pair_id == m.PairRow.id)
        .where(m.LabelRow.status == LabelStatus.OK.value)
        .order_by(m.LabelRow.gmae_ev.asc())
        .limit(n_best)
    ).all()
    return CampaignStatus(
        name=camp.name,
        seed=camp.seed,
        n_surfaces=count(m.SurfaceRow),
        n_adsorbates=count(m.AdsorbateRow),
        n_pairs=count(m.PairRow),
        n_labelled_pairs=n_labelled,
        labels_by_fidelity_status=by_fs,
        jobs_by_state=jobs,
        n_rounds=count(m.RoundRow),
        last_round=convert.round_(last) if last is not None else None,
        best=tuple((k, float(e), f) for k, e, f in best_rows if e is not None),  # ok: never None
    )
