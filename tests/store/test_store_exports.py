"""CSV and ASE-database exports."""

from __future__ import annotations

import csv
import json

import ase.db
import pytest
from ase.build import add_adsorbate, fcc111

from alloop.store.errors import NothingToExportError, StoreError
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


def test_asedb_export_refuses_a_campaign_whose_labels_store_no_structure(make_store, tmp_path):
    store = make_store()
    store.add_label("Pt(111)|CO", NewLabel(-1.1, "ok", "replay", {"source": "table"}))
    path = tmp_path / "best.db"
    with pytest.raises(NothingToExportError, match=r"none of the campaign's 1 labels \(fidelity: "
                       r"replay\) stores one.*best.db not written"):  # fmt: skip
        export_asedb(store, path)
    assert not path.exists()


def _formulas(make_store):
    store = make_store()
    store.begin_round(0, "closed")
    store.record_acquisitions(0, [
        NewAcquisition("Pt(111)|CO", 0, -2.5, -1.23, 0.2, "=cmd|' /C calc'!A0", "+1+1"),
        NewAcquisition("Cu(111)|CO", 1, 0.5, -0.5, None, "@SUM(A1:A2)", "-2+3"),
        NewAcquisition("Pt(111)|H2O", 2, 0.1, 0.25, 0.1, "lcb", "\t=1\x1b]0;t\x07"),
    ])  # fmt: skip
    store.add_label("Pt(111)|CO", NewLabel(-1.23, "ok", "mlip", {"calculator": "=HYPERLINK(1)"}))
    return store


def test_csv_export_neutralises_formula_text_cells_only(make_store, tmp_path):
    store = _formulas(make_store)
    labels_path, acq_path = export_csv(store, tmp_path)
    rows = list(csv.DictReader(acq_path.open(newline="", encoding="utf-8")))
    assert [(r["acquisition"], r["reason"]) for r in rows] == [
        ("'=cmd|' /C calc'!A0", "'+1+1"),
        ("'@SUM(A1:A2)", "'-2+3"),
        ("lcb", "'\t=1\x1b]0;t\x07"),  # otherwise as stored, escape sequence included
    ]
    # numbers stay numbers: negative scores and energies are not text cells
    assert [(r["score"], r["mu_ev"]) for r in rows] == [
        ("-2.500000", "-1.230000"), ("0.500000", "-0.500000"), ("0.100000", "0.250000"),
    ]  # fmt: skip
    (lab,) = list(csv.DictReader(labels_path.open(newline="", encoding="utf-8")))
    assert (lab["gmae_ev"], lab["calculator"]) == ("-1.230000", "'=HYPERLINK(1)")
    assert json.loads(lab["provenance"]) == {"calculator": "=HYPERLINK(1)"}  # JSON as stored


def test_csv_export_keeps_formulas_when_asked(make_store, tmp_path):
    store = _formulas(make_store)
    _, acq_path = export_csv(store, tmp_path, neutralise_formulas=False)
    rows = list(csv.DictReader(acq_path.open(newline="", encoding="utf-8")))
    assert [r["reason"] for r in rows] == ["+1+1", "-2+3", "\t=1\x1b]0;t\x07"]
