"""Multi-fidelity replay: MLIP labels from the low-fidelity FG table, DFT labels from the FG table.

The low-fidelity table (``data/fg_mlip_sevennet_mf0.csv``, made by
``benchmarks/multifidelity/lowfi_table.py``) holds, for every FG pair, SevenNet-MF-0 single
points at the DFT geometries of its configurations (the pair's value is the minimum) and, for
a stratified subset, relaxations from them. :class:`LowFidelityReplayOracle` answers ``mlip``
labels from it; :class:`DFTReplayOracle` answers ``dft_relax`` labels from the FG DFT table and
can stand in for the DFT oracle of an escalation (``escalate(pair, start)``). Together they run
a whole multi-fidelity campaign offline and deterministically.

Keys as in :mod:`alloop.oracles.replay`: ``surface_key`` is the metal symbol,
``adsorbate_key`` is ``"family/mol_code"``.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from alloop.oracles.errors import OracleError
from alloop.oracles.replay import ReplayOracle
from alloop.oracles.types import OraclePair, OracleResult, failed_result

LOWFI_TABLE_NAME = "fg_mlip_sevennet_mf0.csv"
#: which value of the table a label takes: the single point at the DFT geometries (every
#: pair) or the relaxation from them (the stratified subset only)
LOWFI_VALUES = ("single_point", "relaxed")


def default_lowfi_table() -> Path:
    """The low-fidelity table that ships with alloop."""
    return Path(__file__).resolve().parent / "data" / LOWFI_TABLE_NAME


@dataclass(frozen=True)
class LowFiRow:
    """One pair of the low-fidelity table (eV); ``line`` is the 1-based file line."""

    line: int
    metal: str
    adsorbate_key: str
    single_point_ev: float | None
    best_config: str
    configs: str
    relaxed_ev: float | None
    # "" outside the relaxed subset; "ok" / "anomalous" / "failed" inside it
    relaxed_status: str = ""


def _float_or_none(text: str) -> float | None:
    return float(text) if text.strip() else None


def read_lowfi_table(path: Path) -> tuple[dict[tuple[str, str], LowFiRow], dict[str, Any]]:
    """Rows keyed ``(metal, "family/mol_code")`` and the sidecar's model identity.

    Raises :class:`OracleError` for a missing file or sidecar, a missing column or a repeated
    pair.
    """
    path = Path(path)
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        raise OracleError(
            f"low-fidelity table {path} (and its sidecar {sidecar.name}) not found; build it "
            "with benchmarks/multifidelity/lowfi_table.py"
        )
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        with path.open(newline="", encoding="utf-8") as handle:
            records = list(csv.DictReader(handle))
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise OracleError(f"low-fidelity table {path} or its sidecar is unreadable: {exc}") from exc
    if not isinstance(meta, dict):
        raise OracleError(f"{sidecar}: expected a JSON object")
    rows: dict[tuple[str, str], LowFiRow] = {}
    for line, rec in enumerate(records, start=2):
        try:
            row = LowFiRow(
                line=line,
                metal=rec["metal"],
                adsorbate_key=f"{rec['family']}/{rec['mol_code']}",
                single_point_ev=_float_or_none(rec["e_ads_min_sp_ev"]),
                best_config=rec["best_config_sp"],
                configs=rec["e_ads_all_sp_ev"],
                relaxed_ev=_float_or_none(rec["e_ads_min_relaxed_ev"]),
                relaxed_status=rec.get("relaxed_status") or "",
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:  # short or bad rows
            raise OracleError(f"{path} line {line}: cannot parse row ({exc})") from exc
        key = (row.metal, row.adsorbate_key)
        if key in rows:
            raise OracleError(f"{path} line {line}: duplicate pair {key}")
        rows[key] = row
    return rows, meta.get("model", {})


class LowFidelityReplayOracle:
    """Answer ``label(pair)`` with the pair's MLIP value from the low-fidelity table.

    ``value``: ``"single_point"`` (default; every pair) or ``"relaxed"`` (pairs outside the
    relaxed subset come back ``failed``). Labels have fidelity ``mlip`` and name the model
    and weights hash of the table's sidecar.
    """

    fidelity = "mlip"

    def __init__(self, table: Path | None = None, value: str = "single_point") -> None:
        if value not in LOWFI_VALUES:
            raise OracleError(f"value {value!r} is unknown; valid: {', '.join(LOWFI_VALUES)}")
        self.table = Path(table) if table is not None else default_lowfi_table()
        self.value = value
        self._rows, self._model = read_lowfi_table(self.table)

    def __repr__(self) -> str:
        return (
            f"LowFidelityReplayOracle(table={str(self.table)!r}, value={self.value!r}, "
            f"n_pairs={len(self._rows)})"
        )

    def value_of(self, surface_key: str, adsorbate_key: str) -> float | None:
        """The table's value for a pair (eV), None when it has none."""
        row = self._rows.get((surface_key, adsorbate_key))
        if row is None:
            return None
        return row.single_point_ev if self.value == "single_point" else row.relaxed_ev

    def label(self, pair: OraclePair) -> OracleResult:
        start = time.perf_counter()
        row = self._rows.get((pair.surface_key, pair.adsorbate_key))
        value = self.value_of(pair.surface_key, pair.adsorbate_key)
        base = {
            "calculator": self._model.get("calculator", "sevennet-mf-0"),
            "weights_hash": self._model.get("weights_hash"),
            "reference_scheme": "gas_phase_molecule",
            "anomaly_flags": [],
            "force_calls": 0,
            "source": str(self.table),
            "replay_value": self.value,
        }
        if row is None or value is None:
            why = (
                f"pair {pair.surface_key}:{pair.adsorbate_key} is not in {self.table.name}"
                if row is None
                else f"pair {pair.surface_key}:{pair.adsorbate_key} has no {self.value} value"
            )
            return failed_result(
                pair.key, "mlip", "unknown_pair" if row is None else "missing_value", why,
                placements=[], placements_tried=0,
                wall_s=time.perf_counter() - start, **base,
            )  # fmt: skip
        placements = [
            {"config": name, "e_ads_ev": float(v)}
            for name, v in (item.split(":") for item in row.configs.split(";") if item)
        ]
        provenance = {
            **base,
            "placements": placements,
            "placements_tried": len(placements),
            "best_config": row.best_config,
            "source_line": row.line,
            "wall_s": time.perf_counter() - start,
            "error": None,
        }
        return OracleResult(pair.key, value, "ok", "mlip", provenance, None)


@dataclass(frozen=True)
class DFTReplayOracle:
    """The FG DFT table as a DFT oracle: labels of fidelity ``dft_relax`` (the FG values are
    relaxed VASP minima), and ``escalate(pair, start)`` for DFT escalation (the start, an MLIP
    result, is not needed: the answer is looked up)."""

    replay: ReplayOracle
    fidelity: str = "dft_relax"

    def label(self, pair: OraclePair) -> OracleResult:
        return replace(self.replay.label(pair), fidelity=self.fidelity)  # type: ignore[arg-type]

    def escalate(self, pair: OraclePair, start: OracleResult) -> OracleResult:
        return self.label(pair)
