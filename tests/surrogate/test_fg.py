from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alloop.surrogate.errors import DataError, SurrogateError
from alloop.surrogate.fg import read_fg_molecules, read_fg_slabs, read_fg_table

METALS = {"Ag", "Au", "Cd", "Co", "Cu", "Fe", "Ir", "Ni", "Os", "Pd", "Pt", "Rh", "Ru", "Zn"}


def test_slabs(fg_slabs) -> None:  # noqa: ANN001
    assert set(fg_slabs) == METALS
    for metal, slab in fg_slabs.items():
        assert len(slab) == 48
        assert set(slab.get_chemical_symbols()) == {metal}


def test_molecules_keys_unique_across_families(fg_molecules) -> None:  # noqa: ANN001
    keys = [m.key for m in fg_molecules]
    assert len(keys) == len(set(keys)) == 207
    codes = [m.mol_code for m in fg_molecules]
    assert len(set(codes)) < len(codes)  # 3611, 4811, ... repeat across group2/group2b
    assert "group2b/3611" in keys and "group2/3611" in keys


def test_table_complete_grid(fg_root: Path) -> None:
    records = read_fg_table(fg_root)
    assert len(records) == 2898
    pairs = {(r.metal, r.molecule_key) for r in records}
    assert len(pairs) == 14 * 207
    gmae = [r.gmae_ev for r in records]
    assert min(gmae) == pytest.approx(-4.01, abs=0.01)
    assert max(gmae) == pytest.approx(0.82, abs=0.01)
    first = records[0]
    assert (first.metal, first.molecule_key, first.smiles) == ("Ag", "amides/13X1", "NC=O")
    assert first.gmae_ev == pytest.approx(-0.394987)
    assert first.structure_file == "amides/structures/ag-13X1-a.contcar"
    assert sum(r.n_configs == 2 for r in records) == 210
    # Each record owns its slab: editing one does not leak into another.
    first.slab.positions[0, 2] += 1.0
    other = next(r for r in records[1:] if r.metal == "Ag")
    assert other.slab.positions[0, 2] != first.slab.positions[0, 2]


def _mini_fg(src: Path, dst: Path, rows: list[str]) -> Path:
    (dst / "metal_surfaces" / "structures").mkdir(parents=True)
    slabs = dst / "metal_surfaces" / "structures"
    shutil.copy(src / "metal_surfaces/structures/pt-0000.contcar", slabs)
    (dst / "gas_amides" / "structures").mkdir(parents=True)
    shutil.copy(src / "gas_amides/structures/13X1.contcar", dst / "gas_amides/structures")
    header = "metal,family,mol_code,e_ads_min_eV,structure_file,n_configs\n"
    (dst / "fg_gmae_derived.csv").write_text(header + "".join(r + "\n" for r in rows))
    return dst


def test_mini_table_reads(fg_root: Path, tmp_path: Path) -> None:
    root = _mini_fg(fg_root, tmp_path, ["Pt,amides,13X1,-1.25,x.contcar,1"])
    (record,) = read_fg_table(root)
    assert (record.metal, record.smiles, record.gmae_ev) == ("Pt", "NC=O", -1.25)


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("Xx,amides,13X1,-1.0,x,1", "metal 'Xx' has no slab; have \\['Pt'\\]"),
        ("Pt,amides,99X9,-1.0,x,1", "molecule 'amides/99X9' has no gas-phase structure"),
        ("Pt,amides,13X1,abc,x,1", "bad number"),
    ],
)
def test_bad_rows_are_refused(fg_root: Path, tmp_path: Path, row: str, match: str) -> None:
    root = _mini_fg(fg_root, tmp_path, [row])
    with pytest.raises(DataError, match=match):
        read_fg_table(root)


def test_missing_column_is_refused(fg_root: Path, tmp_path: Path) -> None:
    root = _mini_fg(fg_root, tmp_path, [])
    (root / "fg_gmae_derived.csv").write_text("metal,family\nPt,amides\n")
    with pytest.raises(DataError, match="lacks columns"):
        read_fg_table(root)


def test_not_an_fg_directory(tmp_path: Path) -> None:
    for reader in (read_fg_slabs, read_fg_molecules, read_fg_table):
        with pytest.raises(SurrogateError, match=f"not an FG data directory: {tmp_path}"):
            reader(tmp_path)


def test_bad_molecule_structure_names_the_file(fg_root: Path, tmp_path: Path) -> None:
    root = _mini_fg(fg_root, tmp_path, [])
    bad = root / "gas_amides/structures/13X1.contcar"
    text = bad.read_text().replace("20.0000000000000000", "1.0000000000000000")
    bad.write_text(text)  # squash the box: atoms overlap and perception fails
    with pytest.raises(DataError, match="13X1.contcar"):
        read_fg_molecules(root)
