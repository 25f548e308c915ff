"""CSV and ASE-database exports."""

from __future__ import annotations

import csv
import json

import ase.db
import pytest
from ase.build import add_adsorbate, fcc111

from alloop.store.errors import StoreError
from alloop.store.exports import export_asedb, export_csv
from alloop.store.records import NewAcquisition, NewLabel
from alloop.store.structures import atoms_to_json


def _filled(make_store):
    store = make_store()
    store.begin_round(0, "closed")
    store.record_acquisitions(0, [NewAcquisition("Pt(111)|CO", 0, 2.0, -1.0, 0.2, "lcb", "why")])
    best = fcc111("Pt", (2, 2, 3), vacuum=6.0)
    add_adsorbate(best, "C", 1.8, "ontop")
    prov = {"calculator": "emt", "force_calls": 12, "best_structure": atoms_to_json(best)}
    store.add_label("Pt(111)|CO", NewLabel(-1.1, "ok", "mlip", prov))
    store.add_label("Cu(111)|CO", NewLabel(None, "failed", "mlip", {"error": "NaN energy"}))
    return store


def test_csv_export(make_store, tmp_path):
    store = _filled(make_store)
    out = tmp_path / "out"
    out.mkdir()
    labels_path, acq_path = export_csv(store, out)
    rows = list(csv.DictReader(labels_path.open()))
    assert [(r["pair"], r["gmae_ev"], r["status"]) for r in rows] == [
        ("Pt(111)|CO", "-1.100000", "ok"),
        ("Cu(111)|CO", "", "failed"),
    ]
    assert rows[0]["calculator"] == "emt"
    assert "best_structure" not in json.loads(rows[0]["provenance"])
    (acq,) = list(csv.DictReader(acq_path.open()))
    assert (acq["round"], acq["pair"], acq["mu_ev"], acq["reason"]) == (
        "0",
        "Pt(111)|CO",
        "-1.000000",
        "why",
    )
    with pytest.raises(StoreError, match="exists already; not overwritten"):
        export_csv(store, out)


def test_asedb_export(make_store, tmp_path):
    store = _filled(make_store)
    path = tmp_path / "best.db"
    assert export_asedb(store, path) == 1
    with ase.db.connect(path) as con:
        (row,) = list(con.select())
        assert row.pair == "Pt(111)|CO" and row.gmae_ev == pytest.approx(-1.1)
        assert row.prov_calculator == "emt" and row.prov_force_calls == 12
        assert row.data["provenance"]["calculator"] == "emt"
        assert row.toatoms().get_chemical_formula() == "CPt12"
