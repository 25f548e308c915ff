"""alloop.loop: the campaign.

Three parts, one sub-package each: `agent` (the round state machine and every decision it
makes), `bridges` (to the surrogate, the oracles and the pool builders) and `face` (CLI,
dashboard, report). `config` and `errors` are shared by all three.
"""
