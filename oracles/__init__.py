"""alloop.oracles: label (surface, adsorbate) pairs with a global-minimum adsorption energy.

Public entry points (heavy dependencies are imported lazily by the modules that need them):

* :mod:`alloop.oracles.types` — ``AdsorbateSpec``, ``OraclePair``, ``OracleResult``, ``Oracle``,
  ``EscalationOracle``
* :mod:`alloop.oracles.replay` — ``ReplayOracle`` (FG DFT table)
* :mod:`alloop.oracles.mlip_oracle` — ``MLIPOracle`` (placement search with an MLIP / EMT)
* :mod:`alloop.oracles.dft` — ``DFTOracle`` (GPAW / VASP / QE escalation)
* :mod:`alloop.oracles.factory` — ``build_oracle``, ``oracle_from_config``, ``build_executor``
* :mod:`alloop.oracles.executors`, :mod:`alloop.oracles.dask_executor` — fan-out
"""
