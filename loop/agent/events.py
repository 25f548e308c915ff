"""Names of events the agent stores and the face reads back, in a module that imports
nothing heavy (`status` and the dashboard load it without torch)."""

from __future__ import annotations

#: stored when a stop rule ends a run; payload: ``reason`` (a `stopping.StopReason` code),
#: ``detail`` (prose for people) and ``rounds`` (rounds the campaign had then)
STOPPED_EVENT = "stopped"

#: stored when a pair is sent to DFT (step 5, or a cost-aware DFT pick); payload: ``pair``,
#: ``reason`` (a reason code: `config.EscalationReason`, ``COLD_START``, ``VALUE_PER_COST``),
#: ``detail`` (prose), and for cost-aware decisions ``value``, ``cost``, ``mu_ev``, ``sigma_ev``
ESCALATED_EVENT = "escalated"
