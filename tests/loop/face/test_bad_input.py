"""User mistakes: each gives one red line, exit code 1, and leaves every file untouched.

An existing campaign sits in the working directory through every case; its bytes (and those of
its lock file) are hashed before and after, and no new file may appear.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alloop.loop.face.cli import app
from tests.conftest import FG_ROOT, file_digest

runner = CliRunner()

GOOD_POOL = "pool:\n  surfaces: [{bulk: Pt}]\n  adsorbates: [{smiles: CO}]\n"


# billion laughs inside the free-form escalation.dft.code_kwargs: 9 levels of 9 aliases, 9^9
# strings once expanded; refused before anything expands it
ALIAS_BOMB = (
    "escalation:\n  dft:\n    code_kwargs:\n"
    "      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"      l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
)

# (case id, config text or None for no file, extra argv, expected message fragment)
CONFIG_CASES = [
    ("missing-file", None, [], "config file missing.yaml does not exist"),
    ("invalid-yaml", "campaign: {name: x\npool: [", [], "invalid YAML at line"),
    ("empty-file", "", [], "the file is empty"),
    ("top-level-list", "- a\n- b\n", [], "the top level must be a mapping"),
    ("unknown-section", "campaign: {name: x}\n" + GOOD_POOL + "colour: red\n", [],
     "colour: unknown key"),
    ("unknown-nested-key", "campaign: {name: x}\n" + GOOD_POOL + "acquisition: {bacth_size: 3}\n",
     [], "acquisition.bacth_size: unknown key"),
    ("negative-batch", "campaign: {name: x}\n" + GOOD_POOL + "acquisition: {batch_size: -5}\n", [],
     "acquisition.batch_size: Input should be greater than or equal to 1"),
    ("wrong-type-seed", "campaign: {name: x, seed: many}\n" + GOOD_POOL, [],
     "campaign.seed: Input should be a valid integer"),
    ("missing-campaign", GOOD_POOL, [], "campaign: Field required"),
    ("bad-campaign-name", "campaign: {name: 'a/b c'}\n" + GOOD_POOL, [],
     "campaign.name: String should match pattern"),
    ("empty-pool", "campaign: {name: x}\npool: {surfaces: [], adsorbates: []}\n", [],
     "pool: empty pool"),
    ("unknown-element", "campaign: {name: x}\npool:\n  surfaces: [{bulk: Xq}]\n"
     "  adsorbates: [{smiles: CO}]\n", [], "pool.surfaces.0.bulk: unknown element 'Xq'"),
    ("unknown-adsorbate", "campaign: {name: x}\npool:\n  surfaces: [{bulk: Pt}]\n"
     "  adsorbates: [{name: '*XYZ'}]\n", [], "unknown adsorbate '*XYZ'"),
    ("invalid-smiles", "campaign: {name: x}\npool:\n  surfaces: [{bulk: Pt}]\n"
     "  adsorbates: [{smiles: 'C1CC('}]\n", [], "invalid SMILES 'C1CC('"),
    ("unknown-acquisition", "campaign: {name: x}\n" + GOOD_POOL + "acquisition: {name: magic}\n",
     [], "unknown acquisition 'magic'; valid:"),
    ("inverted-window", "campaign: {name: x}\n" + GOOD_POOL
     + "acquisition: {target_window_ev: [1.0, -1.0]}\n", [], "with low < high"),
    ("fg-unknown-metal", "campaign: {name: x}\npool: {fg: {metals: [Pt, Unobtainium]}}\n", [],
     "pool.fg.metals: metal(s) ['Unobtainium'] not in the FG table"),
    ("fg-missing-root", "campaign: {name: x}\npool: {fg: {root: /nonexistent/fg}}\n", [],
     "pool.fg.root: no FG reference table at /nonexistent/fg"),
    ("fairchem-no-checkpoint", "campaign: {name: x}\n" + GOOD_POOL
     + "oracle: {calculator: fairchem}\n", [], "needs 'checkpoint'"),
    ("zero-ensemble", "campaign: {name: x}\n" + GOOD_POOL + "surrogate: {ensemble_size: 0}\n", [],
     "surrogate.ensemble_size: Input should be greater than or equal to 1"),
    ("escalation-unknown-reason", "campaign: {name: x}\n" + GOOD_POOL
     + "escalation: {reasons: [CHEAP]}\n", [],
     "escalation.reasons: unknown reason(s) ['CHEAP']; valid: IN_WINDOW_CONFIDENT, STRONG_BINDER"),
    ("escalation-window-missing", "campaign: {name: x}\n" + GOOD_POOL
     + "escalation: {reasons: [IN_WINDOW_CONFIDENT]}\n", [],
     "escalation.reasons: IN_WINDOW_CONFIDENT needs a target window"),
    ("escalation-dft-unknown-key", "campaign: {name: x}\n" + GOOD_POOL
     + "escalation: {dft: {cutof_ev: 300}}\n", [],
     "escalation.dft: unknown DFTOracleSettings keys ['cutof_ev']; valid keys:"),
    ("escalation-dft-bad-code", "campaign: {name: x}\n" + GOOD_POOL
     + "escalation: {dft: {code: abinit}}\n", [],
     "escalation.dft: code 'abinit' is not valid; choose one of gpaw, vasp, espresso"),
    ("escalation-with-replay", "campaign: {name: x}\n" + GOOD_POOL
     + "oracle: {kind: replay}\nescalation: {enabled: true}\n", [],
     "escalation.enabled: the replay oracle's labels are DFT already"),
    ("huge-hidden-dim", "campaign: {name: x}\n" + GOOD_POOL + "surrogate: {hidden_dim: 1.0e+12}\n",
     [], "surrogate.hidden_dim: Input should be less than or equal to 4096"),
    ("seed-beyond-64-bits", "campaign: {name: x, seed: 123456789012345678901234567890}\n"
     + GOOD_POOL, [], "campaign.seed: Input should be less than or equal to 4294967295"),
    ("huge-epochs", "campaign: {name: x}\n" + GOOD_POOL + "surrogate: {max_epochs: 10000000000}\n",
     [], "surrogate.max_epochs: Input should be less than or equal to 1000000"),
    ("alias-bomb", "campaign: {name: x}\n" + GOOD_POOL + ALIAS_BOMB, [],
     "bad.yaml: the YAML expands to more than 100,000 nodes"),
    ("recursive-alias", "campaign: &c {name: x, again: *c}\n" + GOOD_POOL, [],
     "bad.yaml: a YAML alias refers to itself"),
    ("oversized-config", "campaign: {name: x}\n" + GOOD_POOL + "# " + "x" * 1_000_001 + "\n", [],
     "bad.yaml: larger than 1,000,000 bytes"),
    ("surface-file-not-a-structure", "campaign: {name: x}\npool:\n  surfaces: [{file: bad.yaml}]\n"
     "  adsorbates: [{smiles: CO}]\n", [], "bad.yaml is not a structure file ASE can read"),
    ("checkpoint-pin-malformed", "campaign: {name: x}\n" + GOOD_POOL
     + "oracle: {calculator: fairchem, checkpoint: uma.pt, checkpoint_sha256: abc}\n", [],
     "oracle.checkpoint_sha256: String should match pattern"),
    ("checkpoint-pin-without-checkpoint", "campaign: {name: x}\n" + GOOD_POOL
     + "oracle: {checkpoint_sha256: '" + "0" * 64 + "'}\n", [],
     "'checkpoint_sha256' pins a checkpoint: give 'checkpoint' too"),
    ("unknown-key-nearest", "campaign: {name: x}\n" + GOOD_POOL + "budget: {max_round: 3}\n", [],
     "budget.max_round: unknown key (did you mean 'max_rounds'?)"),
    ("replay-pool-outside-table", "campaign: {name: x}\n" + GOOD_POOL + "oracle: {kind: replay}\n",
     [], "oracle.kind: replay answers only pairs in the FG table at "),
    ("replay-table-missing", "campaign: {name: x}\n" + GOOD_POOL
     + "oracle: {kind: replay, fg_root: /nonexistent/fg}\n", [],
     "oracle.kind: replay: FG table not found at /nonexistent/fg/fg_gmae_derived.csv"),
    ("mf-replay-pool-outside-table", "campaign: {name: x}\n" + GOOD_POOL
     + "oracle: {kind: mf_replay}\n", [],
     "the pool's 1 pairs are not in it: 'Pt(111)|CO'; use pool.fg for FG pairs, or oracle.kind"),
    ("campaign-exists", "campaign: {name: x}\npool: {fg: {metals: [Pt], max_molecules: 1}}\n",
     ["--campaign", "existing.alloop"], "existing.alloop exists already"),
    ("campaign-dir-missing", "campaign: {name: x}\npool: {fg: {metals: [Pt], max_molecules: 1}}\n",
     ["--campaign", "no/such/dir/c.alloop"], "directory no/such/dir does not exist"),
]  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, request) -> Path:
    """A directory holding one real campaign, `existing.alloop`."""
    root = tmp_path_factory.mktemp("bad")
    (root / "seed.yaml").write_text(
        f"campaign: {{name: existing}}\npool: {{fg: {{root: {FG_ROOT}, metals: [Pt], "
        "max_molecules: 2}}\n"
    )
    result = runner.invoke(
        app, ["init", str(root / "seed.yaml"), "-c", str(root / "existing.alloop")]
    )
    assert result.exit_code == 0, result.output
    (root / "seed.yaml").unlink()
    return root


def _snapshot(root: Path) -> dict[str, str | None]:
    return {p.name: file_digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_one_red_line(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), lines[0]
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("text", "extra", "fragment"),
    [c[1:] for c in CONFIG_CASES],
    ids=[c[0] for c in CONFIG_CASES],
)
def test_bad_config(workdir, monkeypatch, text, extra, fragment):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("ALLOOP_FG_ROOT", str(FG_ROOT))
    name = "missing.yaml" if text is None else "bad.yaml"
    if text is not None:
        (workdir / name).write_text(text)
    before = _snapshot(workdir)
    try:
        result = runner.invoke(app, ["init", name, *extra], env={"COLUMNS": "300"})
        _assert_one_red_line(result, fragment)
        assert _snapshot(workdir) == before
        assert not (workdir / "x.alloop").exists()
    finally:
        (workdir / "bad.yaml").unlink(missing_ok=True)


def test_config_is_a_directory(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    (workdir / "adir").mkdir()
    before = _snapshot(workdir)
    result = runner.invoke(app, ["init", "adir"], env={"COLUMNS": "300"})
    _assert_one_red_line(result, "config path adir is not a file")
    assert _snapshot(workdir) == before
    (workdir / "adir").rmdir()


def test_binary_config(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    (workdir / "bin.yaml").write_bytes(b"\xff\xfe\x00\x81garbage")
    before = _snapshot(workdir)
    result = runner.invoke(app, ["init", "bin.yaml"], env={"COLUMNS": "300"})
    _assert_one_red_line(result, "bin.yaml: not a text file")
    assert _snapshot(workdir) == before
    (workdir / "bin.yaml").unlink()


def _make_truncated(root: Path) -> str:
    data = (root / "existing.alloop").read_bytes()
    (root / "truncated.alloop").write_bytes(data[:200])
    return "truncated.alloop"


def _make_foreign(root: Path) -> str:
    conn = sqlite3.connect(root / "foreign.sqlite")
    conn.execute("CREATE TABLE notes (x TEXT)")
    conn.commit()
    conn.close()
    return "foreign.sqlite"


def _make_future(root: Path) -> str:
    shutil.copy(root / "existing.alloop", root / "future.alloop")
    conn = sqlite3.connect(root / "future.alloop")
    conn.execute("UPDATE alembic_version SET version_num = 'fff_future'")
    conn.commit()
    conn.close()
    return "future.alloop"


def _make_text(root: Path) -> str:
    (root / "notes.txt").write_text("not a database\n")
    return "notes.txt"


def _make_dir(root: Path) -> str:
    (root / "a_dir.alloop").mkdir(exist_ok=True)
    return "a_dir.alloop"


PATH_CASES = [
    ("status-missing", ["status", "nowhere.alloop"], None, "no campaign file at nowhere.alloop"),
    ("status-text-file", ["status", "{f}"], _make_text, "not an SQLite database"),
    ("status-directory", ["status", "{f}"], _make_dir, "a_dir.alloop is not a file"),
    ("status-foreign-sqlite", ["status", "{f}"], _make_foreign, "missing tables"),
    ("status-truncated", ["status", "{f}"], _make_truncated, "not a readable alloop campaign"),
    ("status-newer-schema", ["status", "{f}"], _make_future, "written by a newer alloop"),
    ("history-missing", ["history", "gone.alloop"], None, "no campaign file at gone.alloop"),
    ("history-unknown-surface", ["history", "existing.alloop", "-s", "Xx"], None,
     "no surface 'Xx'"),
    ("history-unknown-round", ["history", "existing.alloop", "-r", "7"], None, "no round 7"),
    ("export-bad-format", ["export", "existing.alloop", "-f", "xml"], None, "'xml' is not one of"),
    ("export-missing-dir", ["export", "existing.alloop", "-f", "asedb", "-o", "no/dir/x.db"], None,
     "directory no/dir does not exist"),
    ("export-existing-target",
     ["export", "existing.alloop", "-f", "asedb", "-o", "existing.alloop"],
     None, "existing.alloop exists already; not overwritten"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "make", "fragment"), [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES]
)
def test_bad_campaign_paths(workdir, monkeypatch, argv, make, fragment):
    from alloop.loop.face.cli import main

    monkeypatch.chdir(workdir)
    made = make(workdir) if make else None
    argv = [a.format(f=made) for a in argv]
    before = _snapshot(workdir)
    # through main(), the console-script entry point, which also turns usage errors into one line
    monkeypatch.setattr("sys.argv", ["alloop", *argv])
    out, errs = io.StringIO(), io.StringIO()
    monkeypatch.setenv("COLUMNS", "300")
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(errs),
        pytest.raises(SystemExit) as info,
    ):
        main()
    assert info.value.code == 1, out.getvalue() + errs.getvalue()
    lines = [ln for ln in (out.getvalue() + errs.getvalue()).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert _snapshot(workdir) == before
