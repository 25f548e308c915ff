"""Bridges from the agent to the other three packages.

`surrogate` (store labels -> ensemble samples, predictions back), `oracle` (jobs -> MLIP or
replay oracles, executors), `dft` (DFT escalation jobs and their codes) and `pool` (a campaign
config's pool -> surfaces and adsorbates in the store). The agent imports these, never
`alloop.surrogate` or `alloop.oracles` directly.
"""
