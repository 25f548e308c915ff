"""alloop.store — one SQLite file (or PostgreSQL database) per campaign holds all its state.

Public API: `CampaignStore` (create/open a campaign, pool, rounds, acquisitions, jobs, labels,
checkpoints, events), the frozen records in `alloop.store.records`, the enums in
`alloop.store.enums`, the errors in `alloop.store.errors`, exports in `alloop.store.exports`.
"""

from alloop.store.campaign import CampaignStore, pair_key
from alloop.store.enums import Fidelity, JobState, LabelStatus, RoundState
from alloop.store.errors import StoreError

__all__ = [
    "CampaignStore",
    "Fidelity",
    "JobState",
    "LabelStatus",
    "RoundState",
    "StoreError",
    "pair_key",
]
