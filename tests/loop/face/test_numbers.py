"""One way to write numbers (`alloop.loop.face.numbers`), and metrics from too few values
shown with their n in `status`, the dashboard and `report`."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

from alloop.loop.face import numbers
from alloop.loop.face.cli import app
from alloop.loop.face.report import draw_learning_curve, parity_title
from alloop.loop.face.views import metrics_line
from alloop.store.records import RoundRecord
from tests.loop.face.test_standing import WIDE, finished  # noqa: F401 - the shared campaign

runner = CliRunner()


@pytest.mark.parametrize(
    ("value", "ev", "sigma"),
    [(1.23, "+1.230", "1.230"), (-0.9357, "-0.936", "-0.936"), (8.542e-07, "<0.001", "<0.001"),
     (-0.0034386299998914183, "-0.003", "-0.003"), (None, "—", "—"), (float("nan"), "—", "—"),
     (True, "—", "—")],
)  # fmt: skip
def test_energies_have_one_format(value, ev, sigma):
    assert (numbers.ev(value), numbers.sigma(value)) == (ev, sigma)


def test_counts_costs_and_shares_have_one_format():
    assert [numbers.count(x) for x in (7, 7.0, 1234, None)] == ["7", "7", "1,234", "—"]
    assert [numbers.cost(x) for x in (700.0, 12345.6)] == ["700", "12,346"]
    assert numbers.percent(0.2) == "20%" and numbers.size(3.0) == "n=3"


def test_a_metric_from_few_values_carries_its_n():
    assert numbers.MIN_METRIC_VALUES == 10
    assert numbers.metric(0.015, 1, "0.015") == "0.015 (n=1)"
    assert numbers.metric(0.015, 9, "0.015") == "0.015 (n=9)"
    assert numbers.metric(0.015, 10, "0.015") == "0.015"
    assert numbers.metric(0.015, None, "0.015") == "0.015 (n=?)"  # an older campaign's round
    assert numbers.metric(0.2, 0, "0.200") == "too few labels"
    assert numbers.metric(None, 4, "—") == "—"
    line = metrics_line({"val_mae_ev": 0.015, "n_val_labels": 1, "batch_mae_ev": 0.409,
                         "n_batch_scored": 12, "batch_coverage_95": 0.2})  # fmt: skip
    assert line == "val MAE 0.015 eV (n=1) · batch MAE 0.409 eV · 95% coverage 20%"


def _round(index: int, **metrics: object) -> RoundRecord:
    now = datetime.now(UTC)
    return RoundRecord(index, "closed", now, now, now, dict(metrics))


def test_the_learning_curve_marks_points_from_few_values_with_n():
    rounds = [
        _round(0, n_labels=4),
        _round(1, n_labels=7, val_mae_ev=0.015, n_val_labels=1, batch_mae_ev=0.4,
               n_batch_scored=3),
        _round(2, n_labels=120, val_mae_ev=0.2, n_val_labels=12, batch_mae_ev=0.3,
               n_batch_scored=30),
        _round(3, n_labels=130, val_mae_ev=0.2),  # an older alloop recorded no n
    ]  # fmt: skip
    ax = Figure().subplots()
    draw_learning_curve(ax, rounds)
    assert sorted(t.get_text() for t in ax.texts) == ["n=1", "n=3", "n=?"]
    assert "< 10 values" in ax.get_title()
    assert parity_title(np.zeros(3), np.ones(3)) == "parity (MAE 1.000 eV, n=3: too few labels)"
    assert parity_title(np.zeros(12), np.ones(12)) == "parity (MAE 1.000 eV, n=12)"


def test_status_and_dashboard_show_small_sample_metrics_with_n(finished):  # noqa: F811
    out = runner.invoke(app, ["status", str(finished)], env=WIDE).output
    # seven labels: the validation split and the batch are far below ten values
    assert re.search(r"val MAE \d\.\d{3} eV \(n=\d\)", out), out
    assert re.search(r"batch MAE \d\.\d{3} eV \(n=3\)", out), out
    frame = runner.invoke(app, ["dashboard", str(finished), "--once"], env=WIDE).output
    assert re.search(r"\d\.\d{3} \(n=\d\)", frame), frame
    assert "fewer than 10 labels" in frame
