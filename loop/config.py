"""Typed, validated campaign configuration, read from YAML.

Every section forbids unknown keys. Validation errors come back as one `ConfigError` whose
message lists each problem as `field.path: message`. The resolved config (defaults filled in,
paths made absolute) is stored in the campaign; a later run may change only the fields in
`MUTABLE_FIELDS` (budgets, executor), and is told which field differs otherwise.
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import yaml
from ase.data import chemical_symbols
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alloop.loop.errors import ConfigError
from alloop.loop.hints import did_you_mean, keys_at
from alloop.loop.yaml_guard import MAX_CONFIG_BYTES, load_bounded_yaml
from alloop.oracles.defaults import ORACLE_DEFAULTS as _OD
from alloop.surrogate.defaults import SURROGATE_DEFAULTS as _SD

#: LCB/UCB exploration weight: the value the active-learning benchmark ran LCB with
#: (benchmarks/loop/agents.py, benchmarks/results/loop_al.md); the library default too
LCB_BETA = 1.0

PositiveInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
# Upper bounds: a value past them is a typo or an attack (`hidden_dim: 1e12` would allocate
# terabytes); each message names its bound. Seeds fit 32 bits: every generator takes them.
MAX_SEED = 2**32 - 1
Count = Annotated[int, Field(ge=1, le=1_000_000)]  # epochs, steps, batch sizes, budgets
NonNegCount = Annotated[int, Field(ge=0, le=1_000_000)]
ELEMENTS = frozenset(chemical_symbols[1:])


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def check_window(v: tuple[float, float] | None) -> tuple[float, float] | None:
    if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
        raise ValueError(f"target window {list(v)} must be [low, high] with low < high (eV)")
    return v


class CampaignSection(Section):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0


class SurfaceSpec(Section):
    """A surface from bulk + Miller index (`bulk: Pt`) or from a structure file (`file: x.traj`)."""

    bulk: str | None = None
    miller: tuple[int, int, int] = (1, 1, 1)
    min_ab_ang: Annotated[float, Field(ge=4.0, le=40.0)] = 8.0
    shift_index: NonNegInt = 0
    file: Path | None = None
    key: str | None = None

    @field_validator("bulk")
    @classmethod
    def _element(cls, v: str | None) -> str | None:
        if v is not None and v not in ELEMENTS:
            raise ValueError(f"unknown element {v!r}")
        return v

    @field_validator("miller")
    @classmethod
    def _miller(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if v == (0, 0, 0):
            raise ValueError("Miller index (0, 0, 0) is not a plane")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> SurfaceSpec:
        if (self.bulk is None) == (self.file is None):
            raise ValueError("give exactly one of 'bulk' (element + miller) or 'file'")
        return self

    @property
    def resolved_key(self) -> str:
        if self.key:
            return self.key
        if self.bulk is not None:
            return f"{self.bulk}({''.join(str(i) for i in self.miller)})"
        assert self.file is not None
        return self.file.stem


class AdsorbateSpec(Section):
    """An adsorbate by fairchem database name (`*OH`), by SMILES, or from a structure file."""

    name: str | None = None
    smiles: str | None = None
    file: Path | None = None
    key: str | None = None
    binding_atoms: tuple[NonNegInt, ...] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AdsorbateSpec:
        given = [x for x in (self.name, self.smiles, self.file) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'name' (fairchem database), 'smiles' or 'file'")
        if self.smiles is not None:
            _check_smiles(self.smiles)
        if self.name is not None and self.name not in fairchem_adsorbate_names():
            raise ValueError(
                f"unknown adsorbate {self.name!r}; fairchem names look like '*O', '*OH', '*CO'"
            )
        return self

    @property
    def resolved_key(self) -> str:
        if self.key:
            return self.key
        if self.name is not None:
            return self.name
        if self.smiles is not None:
            return self.smiles
        assert self.file is not None
        return self.file.stem


FG_METALS = ("Ag", "Au", "Cd", "Co", "Cu", "Fe", "Ir", "Ni", "Os", "Pd", "Pt", "Rh", "Ru", "Zn")


class FGPoolSpec(Section):
    """The FG reference table as a ready-made pool (14 metals x 207 molecules at most)."""

    root: Path | None = None
    metals: tuple[str, ...] | None = None
    families: tuple[str, ...] | None = None
    max_molecules: PositiveInt | None = None

    @field_validator("metals")
    @classmethod
    def _metals(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("empty list of metals")
        bad = [m for m in v if m not in FG_METALS]
        if bad:
            raise ValueError(f"metal(s) {bad} not in the FG table ({', '.join(FG_METALS)})")
        return v


class PoolSection(Section):
    surfaces: tuple[SurfaceSpec, ...] = ()
    adsorbates: tuple[AdsorbateSpec, ...] = ()
    fg: FGPoolSpec | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> PoolSection:
        if self.fg is None and (not self.surfaces or not self.adsorbates):
            raise ValueError("empty pool: give surfaces and adsorbates, or 'fg'")
        if self.fg is not None and (self.surfaces or self.adsorbates):
            raise ValueError("give either 'fg' or surfaces + adsorbates, not both")
        for kind, specs in (("surface", self.surfaces), ("adsorbate", self.adsorbates)):
            keys = [s.resolved_key for s in specs]
            dup = sorted({k for k in keys if keys.count(k) > 1})
            if dup:
                raise ValueError(f"{kind} key(s) {dup} given twice")
        return self


class Levers(NamedTuple):
    """The surrogate's small-data choices, resolved (`SurrogateSection.levers`)."""

    split: str
    prior_mean: str
    mlip_features: str


class SurrogateSection(Section):
    """AdsMT ensemble settings (see `alloop.surrogate`). Defaults: the measured model,
    `alloop.surrogate.defaults.SURROGATE_DEFAULTS` (one source for the library and this
    section); the rest keep the surrogate's defaults."""

    ensemble_size: Annotated[int, Field(ge=1, le=64)] = _SD.ensemble_size
    hidden_dim: Annotated[int, Field(ge=1, le=4096)] = _SD.hidden_dim
    num_graph_layers: Annotated[int, Field(ge=1, le=64)] = _SD.num_graph_layers
    max_epochs: Count = _SD.max_epochs
    early_stop_patience: Count = _SD.early_stop_patience
    learning_rate: Annotated[float, Field(gt=0, le=10.0, allow_inf_nan=False)] = _SD.learning_rate
    batch_size: Count = _SD.batch_size
    cutoff_ang: Annotated[float, Field(gt=0, le=30.0, allow_inf_nan=False)] = _SD.cutoff_ang
    max_neighbors: Annotated[int, Field(ge=1, le=1000)] = _SD.max_neighbors
    # at least this many optimiser steps per epoch (the mini-batch shrinks at small data)
    min_steps_per_epoch: Annotated[int, Field(ge=1, le=10_000)] = _SD.min_steps_per_epoch
    # a frozen MLIP whose per-atom features are extra inputs (`alloop.surrogate.mlip_features`;
    # the names are its `MLIP_FEATURES`, a test checks they agree); `none`: RDKit descriptors
    # and the slab graph only. Left out: the library's measured default (`SURROGATE_DEFAULTS`),
    # except under `escalation.policy: cost_aware` (`none`, as its campaigns were measured);
    # `AlloopConfig` fills it in.
    mlip_features: Literal["none", "sevennet-0"] | None = None
    # `holdout`: members early-stop on `val_fraction` of the labels and the spread is scaled
    # there; `cross_fit`: member k holds out fold k, every label trains, and the spread is
    # calibrated on out-of-fold residuals (`alloop.surrogate.calibration`). The names are
    # `alloop.surrogate.fidelity.SPLITS` (a test checks they agree).
    split: Literal["holdout", "cross_fit"] | None = None
    # `scaling`: members learn the residual over a scaling-relation prior mean
    # (`alloop.surrogate.prior`, names: `PRIOR_MEANS`; `scaling_ads` adds per-adsorbate
    # offsets); `none`: they learn the label itself.
    # Both left out: the library's measured defaults (`SURROGATE_DEFAULTS`, the learning curve
    # in benchmarks/results/surrogate_learning_curve.md), except under `escalation.policy:
    # cost_aware`, whose campaigns were measured with `holdout` and `none` and keep them until
    # re-measured; `AlloopConfig` fills them in.
    prior_mean: Literal["none", "scaling", "scaling_ads"] | None = None
    # an auxiliary loss pulling the cross-attention toward the surface atoms each MLIP label's
    # minimum is bound to (`alloop.surrogate.site_loss`, names: `SITE_LOSSES`, a test checks
    # they agree); `none`: GMAE alone. Pairs whose labels name no binding atoms (replay and
    # DFT-only pairs) train on the GMAE alone. The weight is against the L1 on standardised GMAE.
    site_loss: Literal["none", "binding_mass"] = _SD.site_loss  # type: ignore[assignment]
    site_loss_weight: Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)] = (
        _SD.site_loss_weight
    )
    val_fraction: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.1
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # how MLIP and DFT labels train one model (`alloop.surrogate.fidelity`); predictions are
    # always at DFT level. Left out: `delta` under `escalation.policy: cost_aware` (the best in
    # benchmarks/results/multifidelity_supervised.md), else `supersede` (one label per pair, as
    # campaigns before multi-fidelity learning ran); `AlloopConfig` fills it in. The names are
    # `alloop.surrogate.fidelity.FIDELITY_MODES`, spelled out so reading a config does not
    # import torch (a test checks they agree).
    fidelity_mode: Literal["supersede", "token", "delta", "transfer"] | None = None

    @property
    def mode(self) -> str:
        """``fidelity_mode`` as `AlloopConfig` resolved it."""
        if self.fidelity_mode is None:
            raise ConfigError("surrogate.fidelity_mode: unresolved (build the whole config)")
        return self.fidelity_mode

    @property
    def levers(self) -> Levers:
        """``(split, prior_mean, mlip_features)`` as `AlloopConfig` resolved them."""
        if self.split is None or self.prior_mean is None or self.mlip_features is None:
            raise ConfigError(
                "surrogate.split/prior_mean/mlip_features: unresolved (build the whole config)"
            )
        return Levers(self.split, self.prior_mean, self.mlip_features)


class AcquisitionSection(Section):
    name: str = "lcb"
    batch_size: Count = 10
    initial_batch_size: Count | None = None
    beta: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = LCB_BETA
    target_window_ev: tuple[float, float] | None = None
    diversity: Literal["kriging_believer", "maxmin", "none"] = "kriging_believer"
    cold_start: Literal["random", "space_filling"] = "random"
    # share of every batch picked by pure uncertainty (max σ) after the named acquisition has
    # picked the rest: explore and exploit in the same batch
    explore_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    # the shortlist a campaign is after: expected improvement (the `ei` acquisition, or the
    # cost-aware policy's value) is measured against the k-th best target-level value instead
    # of the best (`alloop.loop.agent.acquisition.shortlist`); 1: the best
    top_k: Annotated[int, Field(ge=1, le=100_000)] = 1

    @field_validator("target_window_ev")
    @classmethod
    def _window(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        return check_window(v)

    @model_validator(mode="after")
    def _known(self) -> AcquisitionSection:
        valid = acquisition_names()
        if self.name not in valid:
            raise ValueError(f"unknown acquisition {self.name!r}; valid: {', '.join(valid)}")
        if self.name == "target_window" and self.target_window_ev is None:
            raise ValueError("acquisition 'target_window' needs target_window_ev: [low, high]")
        return self


class OracleSection(Section):
    """Who labels the batch. ``replay``: DFT values from the FG table; ``mlip``: the live MLIP
    oracle; ``mf_replay``: MLIP labels from the shipped low-fidelity table (SevenNet-MF-0 at
    the FG DFT geometries, ``lowfi_table`` overrides it) and DFT escalations from the FG
    table, so a multi-fidelity campaign runs offline and deterministically."""

    kind: Literal["replay", "mlip", "mf_replay"] = "mlip"
    lowfi_table: Path | None = None
    calculator: Literal["sevennet-mf-0", "sevennet-0", "chgnet", "fairchem", "emt"] = (
        "sevennet-mf-0"
    )
    checkpoint: Path | None = None
    # the sha256 the checkpoint must have to be loaded (`sha256sum FILE`): loading a fairchem
    # checkpoint unpickles it, so a file from an untrusted source could run code
    checkpoint_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    fg_root: Path | None = None
    # search defaults: alloop.oracles.defaults (one source with the library, measured there)
    fmax_ev_per_ang: PositiveFloat = _OD.fmax_ev_per_ang
    max_steps: Count = _OD.max_steps
    max_placements: Count = _OD.max_placements
    patience: Count = _OD.patience
    tolerance_ev: PositiveFloat = _OD.tolerance_ev
    time_limit_s: PositiveFloat | None = _OD.time_limit_s
    committee: Literal["sevennet-mf-0", "sevennet-0", "chgnet", "emt"] | None = None
    reference: Literal["gas_phase_molecule", "atomic"] = "gas_phase_molecule"
    # order placement sites by the surrogate's cross-attention scores of the acquired pair
    # (stored with the acquisition either way). Off: on 35 held-out EMT pairs they found the
    # minimum later and less often (docs/oracles.md, "Site scores";
    # benchmarks/oracles/site_scores.py)
    use_site_scores: bool = False

    @model_validator(mode="after")
    def _checkpoint(self) -> OracleSection:
        if self.calculator == "fairchem" and self.checkpoint is None:
            raise ValueError("calculator 'fairchem' needs 'checkpoint': a local UMA/eSEN file")
        if self.checkpoint_sha256 is not None and self.checkpoint is None:
            raise ValueError("'checkpoint_sha256' pins a checkpoint: give 'checkpoint' too")
        return self


class EscalationReason(StrEnum):
    """Escalation reason codes, highest default priority first, stored with every escalation
    (`alloop.loop.agent.escalation` decides them; they live here so that reading a config does
    not import torch)."""

    IN_WINDOW_CONFIDENT = "IN_WINDOW_CONFIDENT"  # μ in the target window with σ <= sigma_max_ev
    STRONG_BINDER = "STRONG_BINDER"  # among the k lowest usable labels
    ORACLE_DISAGREEMENT = "ORACLE_DISAGREEMENT"  # committee / placement spread > disagreement_ev
    ANOMALOUS = "ANOMALOUS"  # the MLIP oracle flagged the label anomalous


ESCALATION_REASONS: tuple[str, ...] = tuple(r.value for r in EscalationReason)


class EscalationSection(Section):
    """DFT escalation (step 5 of a round); see `alloop.loop.agent.escalation` for the reasons.

    ``reasons``: enabled reason codes, highest priority first. Left out, all four, minus
    ``IN_WINDOW_CONFIDENT`` when no target window is known. ``target_window_ev`` defaults to
    ``acquisition.target_window_ev`` (both filled in by `parse_config`). ``dft``: settings of
    the DFT oracle (`DFTOracleSettings` keys except ``mode``; empty means GPAW defaults).
    """

    enabled: bool = False
    # `rules`: the reason-coded policy below, in step 5. `cost_aware`: step 3 chooses MLIP and
    # DFT jobs together by value per cost (`alloop.loop.agent.mf_acquisition`); the first DFT
    # labels go to `per_round` MLIP-labelled pairs (see anchor_surfaces). dft_budget/reasons apply
    # to `rules`.
    policy: Literal["rules", "cost_aware"] = "rules"
    # cost_aware: the first DFT labels anchor the surfaces (the MLIP-strongest pair of each), and
    # a pair on a surface with no DFT label yet gets the spread of the surfaces' mean MLIP-DFT
    # gaps added to its σ (`mf_posterior.surface_gap_sigma`); false: random first DFT labels,
    # σ as the ensemble gives it
    anchor_surfaces: bool = True
    dft_budget: NonNegCount = 0
    per_round: NonNegCount = 1
    mode: Literal["single_point", "relax"] = "single_point"
    reasons: tuple[str, ...] = ESCALATION_REASONS
    sigma_max_ev: PositiveFloat = 0.15
    disagreement_ev: PositiveFloat = 0.3
    strong_binder_k: Count = 3
    target_window_ev: tuple[float, float] | None = None
    dft: dict[str, Any] = Field(default_factory=dict)

    @property
    def cost_aware(self) -> bool:
        """Step 3 plans MLIP and DFT jobs together by value per cost."""
        return self.enabled and self.policy == "cost_aware"

    @field_validator("reasons")
    @classmethod
    def _reasons(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [r for r in v if r not in ESCALATION_REASONS]
        if bad:
            raise ValueError(f"unknown reason(s) {bad}; valid: {', '.join(ESCALATION_REASONS)}")
        if len(set(v)) != len(v):
            raise ValueError(f"reasons repeat: {list(v)}")
        return v

    @field_validator("target_window_ev")
    @classmethod
    def _window(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        return check_window(v)

    @field_validator("dft")
    @classmethod
    def _dft(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from alloop.oracles.dft_settings import DFTOracleSettings
        from alloop.oracles.errors import OracleConfigError

        if "mode" in v:
            raise ValueError("give the mode as escalation.mode, not inside escalation.dft")
        if "mode" in info.data:  # a bad mode is reported on its own
            try:
                DFTOracleSettings.from_dict({**v, "mode": info.data["mode"]})
            except (OracleConfigError, TypeError) as exc:
                raise ValueError(str(exc)) from None
        return v


class CostSection(Section):
    """What one label costs, in cost units, by fidelity (`alloop.loop.agent.costs`).

    Not measured at scale here: on this machine's CPU an MLIP label (full placement search,
    SevenNet-MF-0) took 97-213 s on average (docs/oracles.md, label accuracy), while a DFT
    relaxation of a 48-atom slab with an adsorbate takes hours, so DFT is set to 100 MLIP
    labels. ``dft`` prices replay labels too: they stand in for DFT.
    """

    mlip: PositiveFloat = 1.0
    dft: PositiveFloat = 100.0


class BudgetSection(Section):
    max_labels: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    max_rounds: Count | None = 3
    no_improvement_rounds: Count | None = None
    # stop once the oracle jobs spent this many cost units (`cost` section)
    max_cost: PositiveFloat | None = None


class JobqueueSection(Section):
    """A SLURM or PBS cluster started through dask-jobqueue (``executor.kind: dask``).

    ``jobs``: batch jobs requested at start (each runs ``cluster.processes`` workers);
    ``cluster``: keyword arguments of ``dask_jobqueue.SLURMCluster`` / ``PBSCluster`` (queue,
    account, cores, processes, memory, walltime, job_script_prologue, ...; see
    ``configs/dask-slurm.example.yaml``), each key checked against the class.
    """

    kind: Literal["slurm", "pbs"]
    jobs: NonNegCount = 1
    cluster: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cluster_keys(self) -> JobqueueSection:
        from alloop.oracles.dask_executor import jobqueue_keys
        from alloop.oracles.errors import OracleConfigError

        try:
            valid = jobqueue_keys(self.kind)
        except OracleConfigError as exc:
            raise ValueError(str(exc)) from None
        unknown = sorted(set(self.cluster) - valid)
        if unknown:
            raise ValueError(
                f"cluster: unknown {self.kind} key(s) {unknown}; valid: {', '.join(sorted(valid))}"
            )
        return self


class ExecutorSection(Section):
    """Where oracle jobs (MLIP labels and DFT escalations alike) run. ``inprocess``: one after
    another in the campaign process; ``process``: ``workers`` local processes; ``dask``: a
    LocalCluster of ``workers`` processes, the scheduler at ``address``, or the SLURM/PBS
    cluster of ``jobqueue``. Results stream back as each job finishes."""

    kind: Literal["inprocess", "process", "dask"] = "inprocess"
    workers: Annotated[int, Field(ge=1, le=4096)] = _OD.workers
    # torch/BLAS threads of the campaign process (training, scoring, in-process labelling);
    # null: its cores ÷ workers, capped each round at the cores other processes leave free
    # (`alloop.loop.bridges.threads`); `--threads` overrides it
    threads: Annotated[int, Field(ge=1, le=4096)] | None = None
    address: str | None = None
    job_timeout_s: PositiveFloat | None = None
    jobqueue: JobqueueSection | None = None

    @model_validator(mode="after")
    def _where(self) -> ExecutorSection:
        if (self.address is not None or self.jobqueue is not None) and self.kind != "dask":
            which = "address" if self.address is not None else "jobqueue"
            raise ValueError(f"{which} needs kind: dask, not {self.kind}")
        if self.address is not None and self.jobqueue is not None:
            raise ValueError("give a Dask scheduler address or a jobqueue cluster, not both")
        return self


class BackupSection(Section):
    """Backups of an SQLite campaign beside it (`alloop.store.backup`, restored with `alloop
    restore`): a consistent copy when every ``every_rounds``-th round closes (0: none), the
    newest ``keep`` kept. Each is a full copy of the file (cost: docs/reliability.md)."""

    every_rounds: Annotated[int, Field(ge=0, le=1_000_000)] = 1
    keep: Annotated[int, Field(ge=1, le=1000)] = 2


class AlloopConfig(Section):
    campaign: CampaignSection
    pool: PoolSection
    surrogate: SurrogateSection = Field(default_factory=SurrogateSection)
    acquisition: AcquisitionSection = Field(default_factory=AcquisitionSection)
    oracle: OracleSection = Field(default_factory=OracleSection)
    escalation: EscalationSection = Field(default_factory=EscalationSection)
    cost: CostSection = Field(default_factory=CostSection)
    budget: BudgetSection = Field(default_factory=BudgetSection)
    executor: ExecutorSection = Field(default_factory=ExecutorSection)
    backup: BackupSection = Field(default_factory=BackupSection)

    @model_validator(mode="after")
    def _escalation_fits(self) -> AlloopConfig:
        esc = self.escalation
        if esc.enabled and self.oracle.kind == "replay":
            raise ValueError(
                "escalation.enabled: the replay oracle's labels are DFT already; escalation "
                "needs oracle.kind: mlip or mf_replay"
            )
        if esc.policy == "cost_aware" and not esc.enabled:
            raise ValueError("escalation.policy: cost_aware needs escalation.enabled: true")
        if self.oracle.kind == "mf_replay" and esc.enabled and esc.mode != "relax":
            raise ValueError(
                "escalation.mode: the mf_replay oracle's DFT labels are relaxed minima from the "
                "FG table; use mode: relax"
            )
        if self.oracle.kind != "mf_replay" and self.oracle.lowfi_table is not None:
            raise ValueError("oracle.lowfi_table: only the mf_replay oracle reads it")
        acq = self.acquisition
        if acq.top_k > 1 and not esc.cost_aware and acq.name not in improvement_acquisitions():
            raise ValueError(
                f"acquisition.top_k: {acq.top_k} applies to expected improvement only; use "
                f"name: {' or '.join(improvement_acquisitions())} (or escalation.policy: "
                f"cost_aware), or drop top_k (acquisition {acq.name!r} ignores it)"
            )
        window = esc.target_window_ev or self.acquisition.target_window_ev
        if (
            "IN_WINDOW_CONFIDENT" in esc.reasons
            and window is None
            and ("reasons" in esc.model_fields_set)
        ):
            raise ValueError(
                "escalation.reasons: IN_WINDOW_CONFIDENT needs a target window; set "
                "escalation.target_window_ev or acquisition.target_window_ev, or drop the reason"
            )
        return self

    @model_validator(mode="after")
    def _escalation_defaults(self) -> AlloopConfig:
        """Fill in the escalation defaults that depend on other sections, however the config
        is built, so the stored config says what runs and validates again as it is: the
        target window (from `acquisition`) and the reasons (without IN_WINDOW_CONFIDENT when
        there is no window and the reasons were not listed)."""
        esc = self.escalation
        window = esc.target_window_ev or self.acquisition.target_window_ev
        reasons = esc.reasons
        if window is None:  # _escalation_fits refused an explicit IN_WINDOW_CONFIDENT
            reasons = tuple(r for r in reasons if r != "IN_WINDOW_CONFIDENT")
        if (window, reasons) != (esc.target_window_ev, esc.reasons):
            update = {"target_window_ev": window, "reasons": reasons}
            # frozen: set once, while validating
            object.__setattr__(self, "escalation", esc.model_copy(update=update))
        return self

    @model_validator(mode="after")
    def _fidelity_mode(self) -> AlloopConfig:
        """Fill in `surrogate.fidelity_mode`, `split`, `prior_mean` and `mlip_features` (see
        `SurrogateSection`) however the config is built, so the stored config says what
        trains."""
        update: dict[str, str] = {}
        if self.surrogate.fidelity_mode is None:
            update["fidelity_mode"] = "delta" if self.escalation.cost_aware else "supersede"
        measured = (
            ("holdout", "none", "none")
            if self.escalation.cost_aware
            else (_SD.split, _SD.prior_mean, _SD.mlip_features)
        )
        for name, value in zip(("split", "prior_mean", "mlip_features"), measured, strict=True):
            if getattr(self.surrogate, name) is None:
                update[name] = value
        if update:
            surrogate = self.surrogate.model_copy(update=update)
            object.__setattr__(self, "surrogate", surrogate)  # frozen: set once, while validating
        return self

    def resolved(self) -> dict[str, Any]:
        """JSON-ready dict with every default filled in (what the campaign stores)."""
        return self.model_dump(mode="json")


# Fields a later run may change without being refused (dotted prefixes).
MUTABLE_FIELDS = (
    "budget", "executor", "backup", "escalation.dft_budget", "escalation.per_round",
)  # fmt: skip


def parse_config(data: Any, source: str = "config") -> AlloopConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    try:
        return AlloopConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation_error(exc, AlloopConfig)}") from None


def load_config(path: Path) -> AlloopConfig:
    """Read and validate a YAML config; relative paths inside it are relative to the file."""
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"config path {path} is not a file")
    try:
        with open(path, encoding="utf-8") as fh:  # a bounded read: a huge file is refused
            data = load_bounded_yaml(fh.read(MAX_CONFIG_BYTES + 1), str(path))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty")
    cfg = _absolutise(parse_config(data, str(path)), path.parent.resolve())
    table = cfg.oracle.lowfi_table
    if table is not None and not table.is_file():  # frozen once stored: refuse it up front
        raise ConfigError(f"{path}: oracle.lowfi_table: no file at {table}")
    return cfg


def _absolutise(cfg: AlloopConfig, base: Path) -> AlloopConfig:
    def fix(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else (base / p).resolve())

    pool = cfg.pool.model_copy(
        update={
            "surfaces": tuple(
                s.model_copy(update={"file": fix(s.file)}) for s in cfg.pool.surfaces
            ),
            "adsorbates": tuple(
                a.model_copy(update={"file": fix(a.file)}) for a in cfg.pool.adsorbates
            ),
            "fg": cfg.pool.fg.model_copy(update={"root": fix(cfg.pool.fg.root)})
            if cfg.pool.fg
            else None,
        }
    )
    oracle = cfg.oracle.model_copy(
        update={
            "checkpoint": fix(cfg.oracle.checkpoint),
            "fg_root": fix(cfg.oracle.fg_root),
            "lowfi_table": fix(cfg.oracle.lowfi_table),
        }
    )
    dft = dict(cfg.escalation.dft)
    if dft.get("cache_dir"):
        dft["cache_dir"] = str(fix(Path(dft["cache_dir"])))
    escalation = cfg.escalation.model_copy(update={"dft": dft})
    return cfg.model_copy(update={"pool": pool, "oracle": oracle, "escalation": escalation})


def format_validation_error(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """Each problem as ``field.path: message``; an unknown key of `model`'s sections with the
    nearest valid one (``budget.max_round: unknown key (did you mean 'max_rounds'?)``)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith("function-"))
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            valid = keys_at(model, err["loc"][:-1]) if model is not None else []
            msg = "unknown key" + did_you_mean(str(err["loc"][-1]), valid)
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def diff_configs(stored: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths where two resolved configs differ."""
    out: list[str] = []
    for key in sorted(set(stored) | set(new)):
        path = f"{prefix}{key}"
        a, b = stored.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(diff_configs(a, b, path + "."))
        elif a != b:
            out.append(path)
    return out


def check_config_change(
    stored: dict[str, Any], new: dict[str, Any], where: str = "the campaign"
) -> list[str]:
    """Refuse a config that differs from the stored one outside `MUTABLE_FIELDS`.

    Returns the (allowed) changed paths; raises ConfigError naming the campaign (`where`),
    every forbidden field with its stored and given value, and how to run the config anyway.
    """
    changed = diff_configs(stored, new)
    forbidden = [
        p for p in changed if not any(p == f or p.startswith(f + ".") for f in MUTABLE_FIELDS)
    ]
    if forbidden:
        fields = "; ".join(
            f"{p} (stored {_short(_value_at(stored, p))}, given {_short(_value_at(new, p))})"
            for p in forbidden
        )
        raise ConfigError(
            f"{where}: {len(forbidden)} field(s) differ from the config stored in it and may "
            f"not change: {fields}; only {', '.join(MUTABLE_FIELDS)} may; to run this config, "
            "start a new campaign with --campaign NEW.alloop"
        )
    return changed


def _value_at(config: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        config = config.get(key) if isinstance(config, dict) else None  # type: ignore[assignment]
    return config


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_smiles(smiles: str) -> None:
    from rdkit import Chem
    from rdkit.rdBase import BlockLogs

    blocker = BlockLogs()  # RDKit's parse errors, for this check only: the message says it
    try:
        parsed = Chem.MolFromSmiles(smiles) if smiles.strip() else None
    finally:
        del blocker
    if parsed is None:
        raise ValueError(f"invalid SMILES {smiles!r}")


def fairchem_adsorbate_names() -> frozenset[str]:
    """Names in fairchem-data-oc's adsorbate database (`*O`, `*OH`, ...)."""
    from alloop.oracles.adsorbates import database_names

    return frozenset(database_names())


def acquisition_names() -> list[str]:
    from alloop.loop.agent.acquisition import ACQUISITIONS

    return list(ACQUISITIONS.names())


def improvement_acquisitions() -> list[str]:
    """The acquisitions whose score is expected improvement (what ``top_k`` moves)."""
    from alloop.loop.agent.acquisition import ACQUISITIONS

    return [spec.name for spec in ACQUISITIONS if spec.log_ei]
