"""The one place where an exception while labelling a pair becomes a recorded failure.

Every oracle's ``label`` goes through :func:`guarded_label`, so a crash in one pair (a
calculator error, NaN, a time limit, or a bug) is a ``status="failed"`` result whose
``provenance["error"]`` says ``"<kind>: <message>"``; the caller's loop never stops.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from alloop.oracles.errors import OracleError
from alloop.oracles.types import Fidelity, OraclePair, OracleResult, failed_result

logger = logging.getLogger(__name__)


def empty_provenance(calculator: str, reference_scheme: str, **extra: Any) -> dict[str, Any]:
    """Provenance of a label before any placement ran: what a failed result carries."""
    return {
        "calculator": calculator,
        "weights_hash": None,
        "reference_scheme": reference_scheme,
        "placements": [],
        "placements_tried": 0,
        "anomaly_flags": [],
        "force_calls": 0,
        **extra,
    }


def guarded_label(
    compute: Callable[[OraclePair], OracleResult],
    pair: OraclePair,
    fidelity: Fidelity,
    provenance: dict[str, Any],
) -> OracleResult:
    """Run ``compute(pair)``; any exception becomes a failed result with ``provenance`` added."""
    start = time.perf_counter()
    try:
        return compute(pair)
    except OracleError as exc:
        logger.warning("pair %s failed (%s): %s", pair.key, exc.kind, exc)
        return failed_result(
            pair.key, fidelity, exc.kind, str(exc), wall_s=time.perf_counter() - start, **provenance
        )
    except Exception as exc:  # noqa: BLE001 - the single guard: a bug must not stop the loop
        logger.exception("pair %s failed with an unexpected error", pair.key)
        return failed_result(
            pair.key,
            fidelity,
            "unexpected_error",
            f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(limit=8),
            wall_s=time.perf_counter() - start,
            **provenance,
        )
