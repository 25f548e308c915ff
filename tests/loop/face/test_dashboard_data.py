"""The dashboard's plain functions (`alloop.loop.face.explore`, `plots`, `model_view`): filters,
sorting, learning curves, the site map (what a pick was chosen with:
tests/loop/agent/test_acquisition_records.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import plotext
import pytest

from alloop.loop.face import explore, plots
from alloop.loop.face.model_view import SiteMap, render_site_map, top_layer
from alloop.store.records import LabelSummary, RoundRecord

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def label(pair: str, fidelity: str, gmae: float | None, status: str = "ok") -> LabelSummary:
    return LabelSummary(0, pair, gmae, status, fidelity)


def row(rank: int | None, pair: str, fidelity: str, score: float | None, mu: float | None,
        sigma: float | None, *labels: LabelSummary) -> explore.BatchRow:  # fmt: skip
    surface, adsorbate = pair.split("|")
    counted = next((lab for lab in reversed(labels) if lab.status == "ok"), None)
    return explore.BatchRow(0, rank, pair, surface, adsorbate, fidelity, "lcb", score, mu, sigma,
                            labels, counted, "r")  # fmt: skip


ROWS = [
    row(0, "Pt|amides/1", "mlip", 0.9, -1.0, 0.2, label("Pt|amides/1", "mlip", -1.3)),
    row(1, "Ru|amides/2", "mlip+dft_relax", 0.5, -0.8, 0.1,
        label("Ru|amides/2", "mlip", -0.7), label("Ru|amides/2", "dft_relax", -0.6)),
    row(2, "Ru|ketones/3", "mlip", None, None, None, label("Ru|ketones/3", "mlip", None, "failed")),
    row(None, "Pt|ketones/4", "dft_relax", 0.7, -0.5, 0.3),
]  # fmt: skip


def keys(rows: list[explore.BatchRow]) -> list[str]:
    return [r.pair_key for r in rows]


def test_filter_by_words_and_fields():
    assert keys(explore.filter_rows(ROWS, "")) == keys(ROWS)
    assert keys(explore.filter_rows(ROWS, "ru")) == ["Ru|amides/2", "Ru|ketones/3"]
    assert keys(explore.filter_rows(ROWS, "surface:Pt ketones")) == ["Pt|ketones/4"]
    assert keys(explore.filter_rows(ROWS, "a:amides f:dft")) == ["Ru|amides/2"]
    # a fidelity matches what was asked for and what came back
    assert keys(explore.filter_rows(ROWS, "fidelity:dft")) == ["Ru|amides/2", "Pt|ketones/4"]
    assert explore.filter_rows(ROWS, "surface:amides") == []  # the field is honoured
    with pytest.raises(ValueError, match="unknown filter field 'colour'; valid: surface:"):
        explore.filter_rows(ROWS, "colour:red")


def test_sort_puts_rows_without_the_value_last_either_way():
    assert keys(explore.sort_rows(ROWS, "score")) == [
        "Ru|amides/2", "Pt|ketones/4", "Pt|amides/1", "Ru|ketones/3"]  # fmt: skip
    assert keys(explore.sort_rows(ROWS, "score", descending=True))[-1] == "Ru|ketones/3"
    assert keys(explore.sort_rows(ROWS, "rank"))[-1] == "Pt|ketones/4"  # the escalation row
    # error = the label that counts (DFT over MLIP) minus μ
    assert ROWS[1].error_ev == pytest.approx(-0.6 - -0.8)
    assert keys(explore.sort_rows(ROWS, "error", descending=True))[:2] == [
        "Pt|amides/1", "Ru|amides/2"]  # fmt: skip
    with pytest.raises(ValueError, match="unknown sort key 'size'"):
        explore.sort_rows(ROWS, "size")


def rnd(index: int, **metrics: object) -> RoundRecord:
    return RoundRecord(index, "closed", NOW, NOW, NOW, dict(metrics))


def test_curves_and_best_before_come_from_the_round_metrics():
    rounds = [
        rnd(0, n_labels=5, best_gmae_ev=-0.8, cost_total=25.0),
        rnd(1, n_labels=8, best_gmae_ev=-1.1, val_mae_ev=0.3, batch_mae_ev=0.4,
            batch_coverage_95=0.5, cost_total=48.0),
    ]  # fmt: skip
    c = explore.curves(rounds)
    assert c.rounds == (0, 1) and c.val_mae_ev == (None, 0.3) and c.coverage_95 == (None, 0.5)
    assert explore.points(c.n_labels, c.val_mae_ev) == ([8.0], [0.3])
    assert explore.best_before(rounds, 1) == -0.8 and explore.best_before(rounds, 0) is None
    plotext.clf()
    plots.draw_errors(plotext, c)
    assert "model error vs labels" in plotext.build()
    plotext.clf()
    plots.draw_coverage(plotext, explore.curves([rnd(0, n_labels=5)]))
    assert "no closed round records this yet" in plotext.build()


def test_site_map_marks_the_most_attended_top_layer_atom():
    xy = np.array([[0.0, 0.0], [2.8, 0.0], [1.4, 2.4], [4.2, 2.4]])
    m = SiteMap("Pt|CO", 3, xy, ("Pt",) * 4, (8, 9, 10, 11), np.array([0.1, 0.6, 0.2, 0.1]),
                True, 0.4, 16)  # fmt: skip
    text = render_site_map(m).plain
    assert "most attended: Pt#9 60%, Pt#10 20%" in text
    assert "the 4 top-layer atoms hold 40% of the attention over all 16" in text
    assert "same share" not in text
    even = SiteMap("Pt|CO", 3, xy, ("Pt",) * 4, (8, 9, 10, 11), np.full(4, 0.25), True, 0.4, 16)
    assert "every top-layer atom gets the same share" in render_site_map(even).plain
    # untagged slabs: the top layer by height
    z = np.array([0.0, 0.1, 2.3, 2.4, 4.6, 4.7])
    assert list(top_layer(np.zeros(6, dtype=int), z)) == [4, 5]
    assert list(top_layer(np.array([0, 0, 0, 1, 1, 0]), z)) == [3, 4]
