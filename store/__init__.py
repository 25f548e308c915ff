"""alloop.store — one SQLite file (or PostgreSQL database) per campaign holds all its state.

Public API: `CampaignStore` (create/open a campaign, pool, rounds, acquisitions, jobs, labels,
checkpoints, events), the frozen records in `alloop.store.records`, the enums in
`alloop.store.enums`, the errors in `alloop.store.errors`, exports in `alloop.store.exports`.

The names below are imported on first use (PEP 562), so that a light submodule such as
`alloop.store.lock` can be imported without SQLAlchemy's models and ASE: the console script
probes a campaign's lock before anything heavy is loaded (`alloop.loop.face.entry`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alloop.store.campaign import CampaignStore, pair_key
    from alloop.store.enums import Fidelity, JobState, LabelStatus, RoundState
    from alloop.store.errors import StoreError

_WHERE = {
    "CampaignStore": "alloop.store.campaign",
    "pair_key": "alloop.store.campaign",
    "Fidelity": "alloop.store.enums",
    "JobState": "alloop.store.enums",
    "LabelStatus": "alloop.store.enums",
    "RoundState": "alloop.store.enums",
    "StoreError": "alloop.store.errors",
}

__all__ = [
    "CampaignStore",
    "Fidelity",
    "JobState",
    "LabelStatus",
    "RoundState",
    "StoreError",
    "pair_key",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'alloop.store' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
