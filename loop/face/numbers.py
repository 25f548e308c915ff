"""How every screen writes a number: energies in eV with 3 decimals, counts as integers, costs
in whole units, shares in percent, and a metric computed on fewer than `MIN_METRIC_VALUES`
values marked as such (one rule for `status`, `history`, `show`, the dashboard and `report`).
"""

from __future__ import annotations

import math

#: a metric (MAE, coverage) computed on fewer values than this is shown with its n, or as
#: "too few labels", never as a bare number: one label's error says nothing about the model
MIN_METRIC_VALUES = 10

MISSING = "—"
TOO_FEW = "too few labels"


def _finite(x: object) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def ev(x: object, signed: bool = True) -> str:
    """An energy (or a value in eV, such as an acquisition score): ``+1.230``; a nonzero value
    that would round to zero says so (``<0.001``) rather than print ``+0.000``."""
    v = _finite(x)
    if v is None:
        return MISSING
    if v != 0 and abs(v) < 0.0005:
        return ("<" if v > 0 else ">-") + "0.001"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


#: acquisitions whose score (higher picks first) is the negated energy their reason names
#: (``lcb=-1.230 eV`` for score +1.230): spelled out so that showing a history does not import
#: torch; a test checks them against the registry's reason templates
NEGATED_SCORES = frozenset({"lcb", "thompson"})


def acquisition_value(name: str, score: object) -> str:
    """A pick's acquisition value as its reason states it (same sign): the negated score of
    `NEGATED_SCORES`, the score itself otherwise; eV-style, 3 decimals."""
    v = _finite(score)
    if v is None:
        return MISSING
    return ev(-v if name in NEGATED_SCORES else v)


def sigma(x: object) -> str:
    """A standard deviation in eV: ``0.123`` (never signed)."""
    return ev(x, signed=False)


def _shown(x: object, spec: str) -> str:
    """``x`` formatted by ``spec`` when it is a finite number, else :data:`MISSING`."""
    v = _finite(x)
    return MISSING if v is None else format(v, spec)


def count(x: object) -> str:
    """A count: ``1,234``."""
    v = _finite(x)
    return MISSING if v is None else f"{round(v):,d}"


def cost(x: object) -> str:
    """Cost units, whole: ``1,234``."""
    return _shown(x, ",.0f")


def percent(x: object) -> str:
    """A share (0..1) in percent: ``95%``."""
    return _shown(x, ".0%")


def seconds(x: object) -> str:
    """A duration: ``12.3``."""
    return _shown(x, ".1f")


def size(n: object) -> str:
    """A sample size: ``n=3``, ``n=?`` when not recorded."""
    return "n=?" if _finite(n) is None else f"n={count(n)}"


def enough(n: object) -> bool:
    """True when `n` values are enough to show a metric bare (`MIN_METRIC_VALUES`)."""
    v = _finite(n)
    return v is not None and v >= MIN_METRIC_VALUES


def metric(value: object, n: object, shown: str) -> str:
    """A metric (already formatted as `shown`) with its size: bare from `MIN_METRIC_VALUES`
    values on, ``0.015 (n=1)`` below, ``0.015 (n=?)`` when the campaign did not record n
    (rounds of an older alloop), ``too few labels`` for n = 0."""
    if _finite(value) is None:
        return MISSING
    v = _finite(n)
    if v == 0:
        return TOO_FEW
    return shown if enough(n) else f"{shown} ({size(n)})"
