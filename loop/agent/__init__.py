"""The agent: what a campaign decides and in which order.

The round state machine (`engine`), batch planning and acquisition (`acquisition`, `batch`,
`believer`, `mf_acquisition`, `mf_planning`), escalation to DFT (`escalation`), stopping
(`stopping`) and the rules every other part asks about labels and prices (`labels`, `costs`).
It reaches the oracles and the pool builders through `alloop.loop.bridges`, and never imports
`alloop.loop.face`.
"""
