"""`alloop history` readable when redirected: --wide keeps one row per line, --format tsv|csv
writes every column; the acquisition value agrees in sign with its reason; σ columns named."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from alloop.loop.face import numbers
from alloop.loop.face.cli import app
from alloop.loop.face.views import HISTORY_COLUMNS
from alloop.store import CampaignStore
from alloop.store.records import NewAcquisition, NewLabel
from tests.conftest import FG_ROOT

runner = CliRunner()
ALLOOP = str(Path(sys.executable).parent / "alloop")
LONG_REASON = "lcb=-1.230 eV (mu=-1.000, sigma=0.230) " + "and a long tail of prose " * 6


def make_history(tmp_path: Path) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"campaign: {{name: h}}\npool:\n  fg: {{root: {FG_ROOT}, metals: [Pt, Au], "
        "max_molecules: 4}\noracle: {kind: replay}\n"
    )
    target = tmp_path / "c.alloop"
    assert runner.invoke(app, ["init", str(cfg), "-c", str(target)]).exit_code == 0
    with CampaignStore.open(target, write=True) as store:
        pairs = [p.key for p in store.pairs()]
        store.begin_round(0, "closed")
        store.record_acquisitions(0, [
            NewAcquisition(pairs[0], 0, 1.23, -1.0, 0.23, "lcb", LONG_REASON),
            NewAcquisition(pairs[1], 1, 8.542e-07, -0.5, 0.0034386299998914183, "ei",
                           "log_ei=8.54e-07"),
        ])  # fmt: skip
        store.add_label(pairs[0], NewLabel(-0.9357, "ok", "replay"))
    return target


def test_wide_history_redirected_keeps_one_row_per_line(tmp_path):
    target = make_history(tmp_path)
    done = subprocess.run([ALLOOP, "history", str(target), "--wide"], capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "lcb" in line or "ei" in line.split()]
    assert len(rows) == 2, done.stdout  # not folded over many lines
    assert LONG_REASON.strip() in rows[0]
    header = next(line for line in done.stdout.splitlines() if "adsorbate" in line)
    assert "model σ (eV)" in header and "value" in header and "score" not in header


def test_history_as_tsv_and_csv(tmp_path):
    target = make_history(tmp_path)
    for fmt, delimiter in (("tsv", "\t"), ("csv", ",")):
        result = runner.invoke(app, ["history", str(target), "--format", fmt])
        assert result.exit_code == 0, result.output
        table = list(csv.reader(io.StringIO(result.output), delimiter=delimiter))
        assert table[0] == [name for name, _ in HISTORY_COLUMNS]
        first, second = (dict(zip(table[0], row, strict=True)) for row in table[1:])
        # the value as the reason states it (lcb=-1.230), 3 decimals, counts as integers
        assert first["value"] == "-1.230" and first["reason"].startswith("lcb=-1.230 eV")
        assert (first["round"], first["rank"], first["μ (eV)"]) == ("0", "0", "-1.000")
        assert (first["model σ (eV)"], first["label (eV)"]) == ("0.230", "-0.936")
        assert (second["value"], second["model σ (eV)"]) == ("<0.001", "0.003")
        assert second["label (eV)"] == "pending"
    bad = runner.invoke(app, ["history", str(target), "--format", "xml"])
    assert bad.exit_code != 0 and "xml" in bad.output


def test_negated_scores_match_the_acquisition_registry():
    from alloop.loop.agent.acquisition import ACQUISITIONS

    negated = {name for name in ACQUISITIONS.names() if "{neg" in ACQUISITIONS.get(name).reason}
    assert negated == numbers.NEGATED_SCORES
    for name in ACQUISITIONS.names():  # the shown value and the reason agree in sign
        reason = ACQUISITIONS.get(name).describe(1.5)
        shown = numbers.acquisition_value(name, 1.5)
        assert ("-1.5" in reason) == shown.startswith("-"), (name, reason, shown)
