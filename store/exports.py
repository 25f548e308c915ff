"""Exports: CSV of labels and acquisitions, and an ASE database of best structures.

Exports only read the campaign; they write new files next to nothing else and refuse to
overwrite an existing output. They keep the data as stored (escape sequences included: making
text safe to show is the display's job), with one exception: a CSV text cell that a spreadsheet
would run as a formula (it starts with `CSV_FORMULA_STARTS`) gets a leading single quote, the
OWASP advice against CSV injection, unless the caller asks to keep formulas. Numeric columns
are never changed (a GMAE of -1.23 stays -1.23).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import ase.db

from alloop.store.campaign import CampaignStore
from alloop.store.errors import NothingToExportError, StoreError
from alloop.store.faults import faults_as_store_errors, refuse_read_only
from alloop.store.structures import atoms_from_json

LABEL_COLUMNS = (
    "pair", "surface", "adsorbate", "gmae_ev", "status", "fidelity", "job", "calculator",
    "created_at", "provenance",
)  # fmt: skip
#: a text cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection)
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: whether `export_csv` neutralises formula cells unless told otherwise (`alloop export
#: --keep-formulas` turns it off)
NEUTRALISE_FORMULAS = True
ACQ_COLUMNS = (
    "round", "rank", "pair", "surface", "adsorbate", "acquisition", "score", "mu_ev", "sigma_ev",
    "believer_sigma_ev", "value", "ei_ev", "threshold_ev", "cost", "fidelity", "reason",
)  # fmt: skip


def fresh_output(path: Path) -> Path:
    """``path``, after refusing one that exists, lies in a missing folder or cannot be
    written."""
    if path.exists():
        raise StoreError(f"{path} exists already; not overwritten")
    if not path.parent.is_dir():
        raise StoreError(f"cannot write {path}: directory {path.parent} does not exist")
    refuse_read_only(path)
    return path


def neutralise_formula(cell: str) -> str:
    """``cell`` with a leading single quote when a spreadsheet would run it as a formula."""
    return "'" + cell if cell.startswith(CSV_FORMULA_STARTS) else cell


def export_csv(
    store: CampaignStore, out_dir: Path, *, neutralise_formulas: bool = NEUTRALISE_FORMULAS
) -> tuple[Path, Path]:
    """Write `labels.csv` and `acquisitions.csv` into `out_dir`; returns both paths.

    Text cells that start like a formula are neutralised (`neutralise_formula`) when
    ``neutralise_formulas``; numeric cells never are."""
    text = neutralise_formula if neutralise_formulas else str
    labels_path = fresh_output(out_dir / "labels.csv")
    acq_path = fresh_output(out_dir / "acquisitions.csv")
    pairs = {p.key: p for p in store.pairs()}
    with open(labels_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(LABEL_COLUMNS)
        for lab in store.labels():
            prov = {k: v for k, v in lab.provenance.items() if k != "best_structure"}
            p = pairs[lab.pair_key]
            w.writerow(
                [
                    text(lab.pair_key), text(p.surface_key), text(p.adsorbate_key),
                    "" if lab.gmae_ev is None else f"{lab.gmae_ev:.6f}",
                    text(lab.status), text(lab.fidelity), text(lab.job_key or ""),
                    text(str(prov.get("calculator", ""))), lab.created_at.isoformat(),
                    json.dumps(prov, sort_keys=True),
                ]
            )  # fmt: skip
    with open(acq_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(ACQ_COLUMNS)
        for a in store.acquisitions():
            w.writerow(
                [
                    a.round_index, a.rank, text(a.pair_key), text(a.surface_key),
                    text(a.adsorbate_key), text(a.acquisition), _num(a.score), _num(a.mu_ev),
                    _num(a.sigma_ev), _num(a.believer_sigma_ev), _num(a.value), _num(a.ei_ev),
                    _num(a.threshold_ev), _num(a.cost), text(a.fidelity or ""), text(a.reason),
                ]
            )  # fmt: skip
    return labels_path, acq_path


def export_asedb(store: CampaignStore, out_path: Path) -> int:
    """Write the best structure of every label that has one into an ASE database.

    Key-value pairs carry the provenance that fits ASE's rules (identifier keys, scalar values);
    the full provenance JSON goes in `data`. Returns the number of rows written.

    Raises:
        NothingToExportError: no label stores a structure (replay labels, read from a table,
            carry none); no file is written.
    """
    fresh_output(out_path)
    pairs = {p.key: p for p in store.pairs()}
    labels = store.labels()
    with_structure = [lab for lab in labels if lab.provenance.get("best_structure")]
    if not with_structure:
        kinds = ", ".join(sorted({lab.fidelity for lab in labels})) or "none yet"
        raise NothingToExportError(
            f"no structures to export: none of the campaign's {len(labels)} labels (fidelity: "
            f"{kinds}) stores one (labels a replay oracle reads from a table carry none); "
            f"{out_path} not written"
        )
    n = 0
    with (
        faults_as_store_errors(str(out_path)),
        ase.db.connect(out_path, type="db", append=False) as con,
    ):
        for lab in with_structure:
            text = lab.provenance["best_structure"]
            atoms = atoms_from_json(text if isinstance(text, str) else json.dumps(text))
            p = pairs[lab.pair_key]
            kv: dict[str, str | float | int | bool] = {
                "pair": lab.pair_key,
                "surface": p.surface_key,
                "adsorbate": p.adsorbate_key,
                "status": lab.status,
                "fidelity": lab.fidelity,
                "label_id": lab.id,
            }
            if lab.gmae_ev is not None:
                kv["gmae_ev"] = float(lab.gmae_ev)
            for key, value in lab.provenance.items():
                safe = re.sub(r"\W", "_", key)
                if key != "best_structure" and isinstance(value, str | int | float | bool):
                    kv.setdefault(f"prov_{safe}", value)
            prov = {k: v for k, v in lab.provenance.items() if k != "best_structure"}
            con.write(atoms, key_value_pairs=kv, data={"provenance": prov})
            n += 1
    return n


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.6f}"
