"""A hostile campaign file: terminal escape sequences, C1 controls and Rich markup planted in
every text column and in provenance and event JSON, as someone handing over a campaign could.

Built with the store API where it takes the text, and with plain SQL where the store validates
a column (a label's status and fidelity), which is what an edited file looks like.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from ase.build import fcc111, molecule

from alloop.store import CampaignStore, JobState
from alloop.store.records import NewAcquisition, NewAdsorbate, NewJob, NewLabel, NewSurface
from alloop.store.structures import atoms_to_json

#: what must never reach a terminal: the window title (OSC 0), a screen clear, the clipboard
#: (OSC 52), 8-bit CSI and OSC, a hyperlink (OSC 8), a full reset, CR and BS overwriting
ATTACK = (
    "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;cHduZWQ=\x07\x9b31m\x9d0;c1title\x9c"
    "\x1b]8;;file:///etc/passwd\x1b\\ln\x1b]8;;\x1b\\\x1bc\r\x08\x00"
)
#: Rich markup that must be shown as written, never interpreted
MARKUP = "[link=file:///etc/passwd]x[/link][bold red]R"
HOSTILE = ATTACK + MARKUP


def hostile(tag: str) -> str:
    """A distinct hostile string (keys are unique)."""
    return f"{tag}{HOSTILE}"


# What an output may legitimately contain: Textual's own SGR colours and cursor moves.
_OWN_SEQUENCES = re.compile(r"\x1b\[[0-9;:?]*[mHlhJK]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def control_characters(text: str, *, terminal_output: bool = False) -> list[str]:
    """The control characters of ``text`` (newline and tab allowed); with ``terminal_output``
    the SGR and cursor sequences a Textual screen draws with are allowed too, so what is
    left came from data."""
    if terminal_output:
        text = _OWN_SEQUENCES.sub("", text)
    return _CONTROL.findall(text)


def build_hostile_campaign(path: Path, edited: bool = True) -> dict[str, str]:
    """Write the hostile campaign at ``path``; returns its pair keys by role (``ok``: a label
    with placements and a best structure, ``failed``: a failed job, ``edited``: a label whose
    status and fidelity were edited in the file, when ``edited``: such a file fails the
    integrity check that opening it for writing runs)."""
    slab = fcc111("Pt", (2, 2, 3), vacuum=6.0)
    with CampaignStore.create(
        path,
        name=hostile("camp"),
        config={MARKUP + ATTACK: hostile("value")},  # markup first: error lines end at \r
        seed=1,
        surfaces=[NewSurface(hostile("Pt"), slab, hostile("src"), "1,1,1")],
        adsorbates=[
            NewAdsorbate(hostile(k), hostile("name"), s, molecule(m), (0,))
            for k, s, m in (("CO", "[C-]#[O+]", "CO"), ("H2O", "O", "H2O"), ("NH3", "N", "NH3"))
        ],
    ) as store:
        ok, failed, other = (p.key for p in store.pairs())
        store.begin_round(0, "started")
        acqs = [
            NewAcquisition(k, i, 1.5 - i, -1.0, 0.1, hostile("lcb"), hostile("reason"))
            for i, k in enumerate((ok, failed, other))
        ]
        jobs = [NewJob(hostile("job-ok"), ok, "mlip"), NewJob(hostile("job-bad"), failed,
                hostile("mlip"))]  # fmt: skip
        store.record_batch(0, acqs, jobs, "acquired", [("note", {"text": HOSTILE})])
        prov = {
            "calculator": hostile("calc"), "weights_hash": HOSTILE, "error": hostile("err"),
            "stop_reason": HOSTILE, "anomaly_flags": [HOSTILE], hostile("k"): hostile("v"),
            "best_structure": atoms_to_json(slab.copy() + molecule("CO")),
            "placements": [{"site_kind": HOSTILE, "orientation": HOSTILE, "e_ads_ev": -1.23,
                            "force_calls": HOSTILE, "anomaly_flags": [HOSTILE]}],
        }  # fmt: skip
        for job, label in ((jobs[0].key, NewLabel(-1.23, "ok", "mlip", prov)),):
            store.transition_job(job, JobState.SUBMITTED)
            store.transition_job(job, JobState.RUNNING)
            store.complete_job(job, label)
        store.transition_job(jobs[1].key, JobState.SUBMITTED)
        store.transition_job(jobs[1].key, JobState.FAILED, error=hostile("error"))
        store.add_label(other, NewLabel(None, "failed", "mlip", {"error": HOSTILE}))
        store.log_event(
            "escalated",
            {"pair": ok, "reason": hostile("why"), "detail": HOSTILE, "value": 0.5, "cost": 10},
            round_index=0,
        )
        store.set_round_state(0, "closed", metrics={"n_labels": 1, "best_gmae_ev": -1.23},
                              finished=True)  # fmt: skip
        store.begin_round(1, hostile("state"))
    if not edited:
        return {"ok": ok, "failed": failed, "edited": other}
    # what the store's API and the schema's CHECKs refuse, an edited file can still hold
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute(
            "UPDATE label SET status = ?, fidelity = ? WHERE pair_id = "
            "(SELECT id FROM pair WHERE key = ?)",
            (hostile("status"), hostile("fid"), other),
        )
    conn.close()
    return {"ok": ok, "failed": failed, "edited": other}
