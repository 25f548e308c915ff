"""Refusals that name the fix: close matches for a mistyped name and a truncated list of what
is valid, the same wording wherever a name is looked up (config keys, pair, surface and
adsorbate keys, pool pairs outside an oracle's table)."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

#: how many values a one-line message lists before it says how many more there are
SHOWN_VALUES = 5


def quoted(value: object) -> str:
    """``'value'`` as given, not repr'd: the face shows it through its safe-text rule, which
    drops an escape sequence with its payload (repr would print the payload as text)."""
    return f"'{value}'"


def name_some(values: Iterable[object], limit: int = SHOWN_VALUES) -> str:
    """``'a', 'b', 'c' (+12 more)``: the first `limit` values quoted, then the count left."""
    items = list(values)
    shown = ", ".join(quoted(v) for v in items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def close_matches(value: str, valid: Sequence[str], n: int = 3) -> list[str]:
    """Up to `n` valid names that look like `value`: equal but for case first, then names it
    begins (``Au`` -> ``Au(111)``), then difflib's closest."""
    low = value.lower()
    first = [v for v in valid if v.lower() == low and v != value]
    first += [v for v in valid if v.lower().startswith(low) and low and v not in first]
    rest = difflib.get_close_matches(value, list(valid), n=n, cutoff=0.6)
    return (first + [v for v in rest if v not in first and v != value])[:n]


def did_you_mean(value: str, valid: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` (or ``'x' or 'y'``); empty when nothing is close."""
    matches = close_matches(value, valid)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(quoted(m) for m in matches) + "?)"


def not_found(what: str, value: str, valid: Sequence[str]) -> str:
    """``no pair 'pt|x' in this campaign; did you mean 'Pt|x'? valid: 'Au|x', ... (+3 more)``."""
    valid = sorted(valid)
    listed = f"; valid: {name_some(valid)}" if valid else f"; it has no {what}s"
    return f"no {what} {quoted(value)} in this campaign{did_you_mean(value, valid)}{listed}"


def keys_at(model: type[BaseModel], loc: Sequence[object]) -> list[str]:
    """The field names of the pydantic section that `loc` (a validation error's location,
    without the key itself) points into: ``("budget",)`` -> BudgetSection's fields. List
    indices and union wrappers are stepped over; an unknown path gives no names."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            continue  # a list index or a pydantic tag such as `function-after[...]`
        current = _section_of(field.annotation)
    return sorted(current.model_fields) if current is not None else []


def _section_of(annotation: object) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (`X`, `X | None`, `tuple[X, ...]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for inner in typing.get_args(annotation):
        found = _section_of(inner)
        if found is not None:
            return found
    return None
