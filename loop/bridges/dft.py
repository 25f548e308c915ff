"""From the `escalation` section to the DFT oracle, and from stored MLIP labels to its starts.

Which pairs go to DFT is the agent's decision (`alloop.loop.agent.escalation_plan`,
`mf_planning`); this module builds the oracle (`DFTOracleSettings` from the section, or the FG
table for `mf_replay`), hands the agent the oracle's mode -> fidelity mapping
(`DFT_MODE_FIDELITY`), and finds each DFT job's start: the pair's latest ``ok`` MLIP label.

`EscalatingOracle` turns "escalate this pair from its stored MLIP minimum" into the `Oracle`
protocol the executors take, so DFT jobs fan out like labelling jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alloop.loop.config import AlloopConfig, EscalationSection
from alloop.loop.errors import LoopError
from alloop.oracles.dft_settings import DFT_MODE_FIDELITY, DFTOracleSettings
from alloop.oracles.types import EscalationOracle, OraclePair, OracleResult
from alloop.store import CampaignStore
from alloop.store.enums import Fidelity, LabelStatus
from alloop.store.records import LabelRecord
from alloop.store.structures import atoms_from_json

__all__ = [
    "DFT_MODE_FIDELITY",
    "EscalatingOracle",
    "EscalationOracle",
    "build_dft_oracle",
    "dft_settings",
    "mlip_start",
    "start_result",
]


def dft_settings(section: EscalationSection) -> DFTOracleSettings:
    return DFTOracleSettings.from_dict({**section.dft, "mode": section.mode})


def build_dft_oracle(cfg: AlloopConfig) -> EscalationOracle:
    """The DFT oracle of escalations: the FG table for `mf_replay`, else a real DFT code."""
    if cfg.oracle.kind == "mf_replay":
        from alloop.loop.bridges.oracle import replay_root
        from alloop.oracles.lowfi_replay import DFTReplayOracle
        from alloop.oracles.replay import ReplayOracle

        return DFTReplayOracle(ReplayOracle(replay_root(cfg), load_structures=False))
    from alloop.oracles.dft import DFTOracle

    return DFTOracle(dft_settings(cfg.escalation))


def start_result(label: LabelRecord) -> OracleResult:
    """The MLIP `OracleResult` a stored label came from (best structure out of provenance)."""
    provenance = dict(label.provenance)
    text = provenance.pop("best_structure", None)
    return OracleResult(
        label.pair_key,
        label.gmae_ev,
        label.status,  # type: ignore[arg-type]  # the store's CHECK keeps it a Status
        label.fidelity,  # type: ignore[arg-type]
        provenance,
        atoms_from_json(text) if text else None,
    )


def mlip_start(store: CampaignStore, pair_key: str) -> OracleResult:
    """The start of a DFT job: the pair's latest ``ok`` MLIP label."""
    found = [
        lab
        for lab in store.labels(pair_key)
        if lab.fidelity == Fidelity.MLIP and lab.status == LabelStatus.OK
    ]
    if not found:
        raise LoopError(f"DFT job for {pair_key!r} but the pair has no ok MLIP label to start from")
    return start_result(found[-1])


@dataclass(frozen=True)
class EscalatingOracle:
    """An `Oracle` that labels a pair by ``dft.escalate(pair, starts[pair.key])``.

    ``dft``: a `DFTOracle` or any other `EscalationOracle`; ``starts``:
    pair key -> the MLIP result to start from. Picklable when ``dft`` is, so process and Dask
    executors can run it.
    """

    dft: EscalationOracle
    starts: Mapping[str, OracleResult]

    @property
    def fidelity(self) -> str:
        """What the executors stamp on results they make up (time limit, dead worker)."""
        return str(self.dft.fidelity)

    def label(self, pair: OraclePair) -> OracleResult:
        return self.dft.escalate(pair, self.starts[pair.key])
