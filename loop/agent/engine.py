"""The campaign engine: the round state machine, one committed step at a time.

The engine only sequences the steps; batch planning is `planning` (and `mf_planning` under the
cost-aware policy), job running `jobs`, round metrics `metrics`, the states `RoundState`.

Steps of one round, each a state recorded on the round row before the next begins:

  0. ``started``   the round row exists.
  1. ``trained``   the AdsMT ensemble is fitted on every usable label (highest fidelity per
                   pair), warm-started from the previous round's checkpoint; the new checkpoint
                   is stored. Round 0 (and any round with fewer than three labels) is a cold
                   start and skips training.
  2./3. ``acquired``  the unlabelled pool is scored (μ, σ, embeddings), a diverse batch chosen
                   by the configured acquisition, and the acquisitions with their PROPOSED
                   oracle jobs are committed in one transaction. Under
                   `escalation.policy: cost_aware` the batch is over (pair, fidelity): MLIP
                   jobs for unlabelled pairs and DFT jobs (with their `escalated` events) for
                   MLIP-labelled ones, chosen by value per cost (`loop/agent/mf_planning.py`).
  4. ``labelled``  the jobs run through the executor; each result is ingested exactly once
                   as it arrives, a pass of the executor at a time (`CampaignStore.record_pass`).
  5. ``escalated`` when `escalation.enabled`: the rules policy (`loop/agent/escalation.py`) picks
                   pairs with an ok MLIP label for DFT within the per-round and campaign budgets
                   (the cost-aware policy planned its DFT jobs in step 3 and only gives a
                   campaign its first DFT labels here, `mf_planning.cold_start_dft`);
                   their PROPOSED DFT jobs (kind = the DFT fidelity) and one ``escalated``
                   event per decision (pair, reason code, detail) are committed in one
                   transaction, then the jobs run through the executor from the stored MLIP
                   minima and each DFT label is ingested exactly once. Both labels stay;
                   training and the metrics use the DFT one.
  6. ``closed``    round metrics (against each pair's highest-fidelity label; the cost spent,
                   `loop/agent/costs.py`) and the stop check.

Resuming after a crash re-enters the unfinished round at its recorded state. Every step is a
pure function of the committed state and the seed (training and acquisition seeds derive from
the campaign seed and the round index), so a run killed anywhere and resumed ends in the same
state as one that never stopped: no label lost, none ingested twice (jobs are keyed), no round
half-applied. Jobs that were running at the kill are re-queued and run again. A round whose
DFT jobs exist is never re-planned, so a resumed round escalates the same pairs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from alloop.loop.agent.costs import cost_spent, fidelity_cost
from alloop.loop.agent.escalation_plan import plan_round
from alloop.loop.agent.events import STOPPED_EVENT
from alloop.loop.agent.jobs import JobRunner
from alloop.loop.agent.labels import dft_fidelity, is_dft_job
from alloop.loop.agent.metrics import best_label, close_metrics, counted_labels, labels_used
from alloop.loop.agent.mf_planning import cold_start_dft, mf_candidates, plan_mf_batch
from alloop.loop.agent.planning import (
    PlannedBatch,
    batch_size,
    plan_batch,
    plan_cold_start,
    round_generator,
)
from alloop.loop.agent.stopping import StopDecision, StopRules, StopState, check_stop
from alloop.loop.agent.training import training_samples
from alloop.loop.bridges.dft import (
    EscalatingOracle,
    EscalationOracle,
    build_dft_oracle,
    mlip_start,
)
from alloop.loop.bridges.oracle import (
    Executor,
    Oracle,
    build_oracle,
    oracle_cache_dir,
    oracle_fidelity,
)
from alloop.loop.bridges.surrogate import (
    AdsMTEnsemble,
    PoolView,
    fit_ensemble,
    load_ensemble,
)
from alloop.loop.bridges.threads import threads_for
from alloop.loop.config import AlloopConfig
from alloop.store import CampaignStore, RoundState
from alloop.store.backup import backup_if_due
from alloop.store.errors import CheckpointCorruptError
from alloop.store.records import CheckpointRecord, JobRecord, NewJob, PairRecord, RoundRecord

logger = logging.getLogger(__name__)

Observer = Callable[[str, dict[str, Any]], None]

__all__ = ["CampaignEngine", "round_generator"]

#: fewer labels than this and a round is a cold start: training needs two rows to standardise
#: the descriptors on and one to validate on (two labels used to crash the second round)
MIN_TRAINING_LABELS = 3


class CampaignEngine:
    """Drives one campaign (opened for writing) until a stopping rule fires."""

    def __init__(
        self,
        store: CampaignStore,
        cfg: AlloopConfig,
        *,
        observer: Observer | None = None,
        oracle: Oracle | None = None,
        executor: Executor | None = None,
        dft_oracle: EscalationOracle | None = None,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.seed = store.campaign().seed
        self.pool = PoolView.load(store)
        self.notify: Observer = observer or (lambda kind, info: None)
        self.jobs = JobRunner(store, cfg, self.pool, self.notify, executor)
        self._oracle = oracle
        self._dft_oracle = dft_oracle
        self._ensemble: tuple[int, AdsMTEnsemble] | None = None
        self._steps: dict[RoundState, Callable[[int], RoundState]] = {
            RoundState.STARTED: self._train,
            RoundState.TRAINED: self._acquire,
            RoundState.ACQUIRED: self._label,
            RoundState.LABELLED: self._escalate,
            RoundState.ESCALATED: self._close,
        }

    # ------------------------------------------------------------------ the state machine
    def run(self) -> StopDecision:
        """Run rounds until a stop rule holds, each with the campaign's torch/BLAS threads
        (`bridges.threads`: decided at the round's start, as the machine's load changes during a
        campaign, and restored after it)."""
        try:
            return self._run_rounds()
        finally:
            self.jobs.close()

    def _run_rounds(self) -> StopDecision:
        self._retry_lost()
        while True:
            rnd = self._unfinished_round()
            if rnd is None:
                decision = self.stop_decision()
                if decision.stop:
                    self._record_stop(decision)
                    self.notify("stopped", {"reason": decision.reason, "detail": decision.detail})
                    return decision
                index = len(self.store.rounds())
                rnd = self.store.begin_round(index, RoundState.STARTED)
                self.notify("round", {"index": index})
            with threads_for(self.cfg):
                self._advance(rnd)

    def _record_stop(self, decision: StopDecision) -> None:
        """Store why the run stopped (`STOPPED_EVENT`), for `status` and the dashboard; once
        per decision, so a run of a finished campaign adds nothing."""
        rounds = len(self.store.rounds())
        payload = {"reason": str(decision.reason), "detail": decision.detail, "rounds": rounds}
        last = [e for e in self.store.events() if e.kind == STOPPED_EVENT][-1:]
        if not last or last[0].payload != payload:
            self.store.log_event(STOPPED_EVENT, payload, round_index=rounds - 1 if rounds else None)

    def _retry_lost(self) -> None:
        """Run again the jobs a dead worker lost in an earlier run (`JobRunner.lost`)."""
        kinds = sorted({j.kind for j in self.jobs.lost()})
        if not kinds:
            return
        with threads_for(self.cfg):
            for kind in kinds:
                if kind == oracle_fidelity(self.cfg):
                    self.jobs.retry_lost(kind, self._labelling_oracle, ("labelling", "labelled"))
                else:
                    self.jobs.retry_lost(
                        kind, self._escalating_oracle, ("escalating", "dft_labelled")
                    )

    def _unfinished_round(self) -> RoundRecord | None:
        rounds = self.store.rounds()
        return rounds[-1] if rounds and rounds[-1].state != RoundState.CLOSED else None

    def _advance(self, rnd: RoundRecord) -> None:
        try:
            state = RoundState(rnd.state)
        except ValueError:
            raise RuntimeError(f"round {rnd.index} is in unknown state {rnd.state!r}") from None
        while state != RoundState.CLOSED:
            state = self._steps[state](rnd.index)

    # ------------------------------------------------------------------ 1. train
    def _train(self, index: int) -> RoundState:
        samples = self._training_samples()
        if len(samples) < MIN_TRAINING_LABELS:
            return self._cold_start(index)
        if not self._usable_checkpoints(index):
            self._fit(index, samples, RoundState.TRAINED)
        else:  # trained before a crash (older alloop): the stored checkpoint is the result
            self.store.set_round_state(index, RoundState.TRAINED)
        return RoundState.TRAINED

    def _training_samples(self) -> list[Any]:
        """What this round trains on (`training_samples`), with binding atoms when a site loss
        is configured."""
        section = self.cfg.surrogate
        pairs = training_samples(
            self.store, self.pool, section.mode, sites=section.site_loss != "none"
        )
        return [sample for _, sample in pairs]

    def _fit(self, index: int, samples: list[Any], state: RoundState) -> AdsMTEnsemble:
        """Train round `index`'s ensemble; its checkpoint, the training metrics and `state`
        are committed in one transaction."""
        t0 = time.perf_counter()
        warm = self._previous_checkpoint(index)
        self.notify("training", {"index": index, "n_labels": len(samples)})
        ensemble, report = fit_ensemble(
            self.cfg.surrogate, samples, seed=self.seed * 1000 + index, warm_start=warm
        )
        metrics = {
            "n_train_labels": len(samples),
            "val_mae_ev": report.val_mae_ev,
            # the labels val_mae_ev was computed on (out-of-fold: all of them; holdout: the
            # validation split's target-fidelity labels when it has 3): the size the face shows
            "n_val_labels": report.n_val,
            "std_scale": report.std_scale,
            "std_floor_ev": report.std_floor_ev,
            "warm_started": report.warm_started,
            "timing": {"train_s": time.perf_counter() - t0},
        }
        self.store.save_checkpoint(
            index, 0, ensemble.to_bytes(),
            {"kind": "ensemble", "members": ensemble.config.ensemble_size},
            state=state, metrics=metrics,
        )  # fmt: skip
        self._ensemble = (index, ensemble)
        return ensemble

    def _usable_checkpoints(self, index: int) -> list[CheckpointRecord]:
        """Round `index`'s checkpoints; a damaged one (derived state) is dropped with a
        `checkpoint_dropped` event, so the round retrains from the labels instead of stopping.
        (A damaged page, rather than damaged bytes in an intact page, is refused when the
        campaign is opened: `alloop recover` leaves such checkpoints out.)"""
        try:
            return self.store.checkpoints(index)
        except CheckpointCorruptError as exc:
            logger.warning("round %d: %s; retraining from the labels", index, exc)
            self.store.drop_checkpoints(index, str(exc))
            self.notify("checkpoint_dropped", {"index": index, "reason": str(exc)})
            return []

    def _previous_checkpoint(self, index: int) -> bytes | None:
        """The newest earlier round's checkpoint to warm-start from (None: a cold start)."""
        for earlier in range(index - 1, -1, -1):
            found = self._usable_checkpoints(earlier)
            if found:
                return found[0].blob
        return None

    def _ensemble_for(self, index: int) -> AdsMTEnsemble:
        if self._ensemble is None or self._ensemble[0] != index:
            found = self._usable_checkpoints(index)
            if not found:  # damaged or missing: retrain this round's model, state unchanged
                rnd = next(r for r in self.store.rounds() if r.index == index)
                return self._fit(index, self._training_samples(), RoundState(rnd.state))
            self._ensemble = (index, load_ensemble(found[0].blob))
        return self._ensemble[1]

    # ------------------------------------------------------------------ 2./3. acquire
    def candidates(self) -> list[PairRecord]:
        """Pairs with no label and no job: what the next batch may pick."""
        taken = {lab.pair_key for lab in self.store.label_summaries()}
        taken |= {job.pair_key for job in self.store.jobs()}
        return [p for p in self.pool.pairs if p.key not in taken]

    def _cold_start(self, index: int) -> RoundState:
        q = batch_size(self.cfg, labels_used(self.store), first=True)
        batch = plan_cold_start(
            self.cfg, self.pool, self.candidates(), q, round_generator(self.seed, index)
        )
        self._commit_batch(index, batch)
        return RoundState.ACQUIRED

    def _acquire(self, index: int) -> RoundState:
        if self.cfg.escalation.cost_aware:  # over (pair, fidelity), its jobs planned with it
            batch = plan_mf_batch(self.store, self.pool, self._ensemble_for(index), self.cfg, index)
        else:
            q = batch_size(self.cfg, labels_used(self.store), first=False)
            batch = plan_batch(
                self.cfg, self._ensemble_for(index), self.pool, self.candidates(), q,
                list(counted_labels(self.store).values()), round_generator(self.seed, index),
            )  # fmt: skip
        self._commit_batch(index, batch)
        return RoundState.ACQUIRED

    def _commit_batch(self, index: int, batch: PlannedBatch) -> None:
        """The acquisitions and their PROPOSED jobs, in one transaction: the batch's own jobs
        (the cost-aware policy's), else one labelling job per row, the row given the fidelity
        and cost of the job it asks for."""
        rows, jobs = batch.acquisitions, batch.jobs
        if jobs is None:
            kind = oracle_fidelity(self.cfg)
            cost = fidelity_cost(kind, self.cfg.cost)
            rows = [replace(row, fidelity=kind, cost=cost) for row in rows]
            jobs = [NewJob.for_round(index, row.pair_key, kind) for row in rows]
        self.store.record_batch(index, rows, jobs, RoundState.ACQUIRED, batch.events)
        self._merge_metrics(index, RoundState.ACQUIRED, dict(batch.metrics))
        self.notify("acquired", {"index": index, "n": len(rows)})

    def _merge_metrics(self, index: int, state: RoundState, metrics: dict[str, Any]) -> None:
        """Record ``state`` with ``metrics``, their ``timing`` merged into the round's."""
        current = next(r for r in self.store.rounds() if r.index == index).metrics
        timing = {**current.get("timing", {}), **metrics.pop("timing", {})}
        self.store.set_round_state(index, state, metrics={**metrics, "timing": timing})

    # ------------------------------------------------------------------ 4. label
    def _label(self, index: int) -> RoundState:
        t0 = time.perf_counter()
        self.jobs.run(index, oracle_fidelity(self.cfg), self._labelling_oracle,
                      ("labelling", "labelled"))  # fmt: skip
        timing = {"label_s": time.perf_counter() - t0}
        self._merge_metrics(index, RoundState.LABELLED, {"timing": timing})
        return RoundState.LABELLED

    def _labelling_oracle(self, jobs: Sequence[JobRecord]) -> Oracle:
        self._oracle = self._oracle or build_oracle(self.cfg, oracle_cache_dir(self.store))
        return self._oracle

    # ------------------------------------------------------------------ 5. escalate
    def _escalate(self, index: int) -> RoundState:
        esc = self.cfg.escalation
        if not esc.enabled:
            self.store.set_round_state(
                index, RoundState.ESCALATED, metrics={"escalation_enabled": False}
            )
            return RoundState.ESCALATED
        t0 = time.perf_counter()
        kind = dft_fidelity(esc)
        if not any(is_dft_job(j) and j.round_index == index for j in self.store.jobs()):
            if esc.cost_aware:
                jobs, events = cold_start_dft(
                    self.store, self.cfg, index, round_generator(self.seed, index)
                )
                if jobs:
                    self.store.propose_jobs(index, jobs, events)
            else:
                self._plan_escalations(index)
        self.jobs.run(index, kind, self._escalating_oracle, ("escalating", "dft_labelled"))
        dft_jobs = [j for j in self.store.jobs() if is_dft_job(j)]
        metrics = {
            "escalation_enabled": True,
            "n_escalated": sum(j.round_index == index for j in dft_jobs),
            "dft_spent": len(dft_jobs),
            "timing": {"escalate_s": time.perf_counter() - t0},
        }
        self._merge_metrics(index, RoundState.ESCALATED, metrics)
        return RoundState.ESCALATED

    def _plan_escalations(self, index: int) -> None:
        """Commit this round's DFT jobs with their `escalated` events in one transaction: a
        resumed round finds them and does not plan again."""
        pair_keys = {p.id: p.key for p in self.pool.pairs}
        jobs, events = plan_round(self.store, self.cfg.escalation, index, pair_keys)
        if jobs:
            self.store.propose_jobs(index, jobs, events)
        self.notify("escalated", {"index": index, "n": len(jobs)})

    def _escalating_oracle(self, jobs: Sequence[JobRecord]) -> EscalatingOracle:
        if self._dft_oracle is None:
            self._dft_oracle = build_dft_oracle(self.cfg)
        starts = {j.pair_key: mlip_start(self.store, j.pair_key) for j in jobs}
        return EscalatingOracle(self._dft_oracle, starts)

    # ------------------------------------------------------------------ 6. close
    def _close(self, index: int) -> RoundState:
        rnd = next(r for r in self.store.rounds() if r.index == index)
        metrics = close_metrics(self.store, self.cfg, self.pool, rnd)
        self.store.set_round_state(index, RoundState.CLOSED, metrics=metrics, finished=True)
        self.notify("closed", {"index": index, **metrics})
        section = self.cfg.backup
        done = backup_if_due(self.store.target.path, index, section.every_rounds, section.keep)
        if done is not None:
            payload = {"path": str(done[0]), "wall_s": done[1]}
            self.store.log_event("backup_written", payload, round_index=index)
        return RoundState.CLOSED

    # ------------------------------------------------------------------ stop rules
    def best_label(self) -> float | None:
        return best_label(self.store)

    def _open_options(self) -> tuple[int, float]:
        """What a next batch could still pick, and what the cheapest of it costs: unlabelled
        pairs (at the labelling fidelity's cost), and under the cost-aware policy also
        MLIP-labelled pairs that DFT has not labelled (at DFT's)."""
        label_cost = fidelity_cost(oracle_fidelity(self.cfg), self.cfg.cost)
        if not self.cfg.escalation.cost_aware:
            return len(self.candidates()), label_cost
        for_mlip, for_dft, _, _ = mf_candidates(self.store, self.pool)
        dft_cost = fidelity_cost(dft_fidelity(self.cfg.escalation), self.cfg.cost)
        costs = [label_cost] * bool(for_mlip) + [dft_cost] * bool(for_dft)
        return len(for_mlip) + len(for_dft), min(costs, default=0.0)

    def stop_decision(self) -> StopDecision:
        closed = [r for r in self.store.rounds() if r.state == RoundState.CLOSED]
        budget = self.cfg.budget
        remaining, cheapest = self._open_options()
        state = StopState(
            rounds_completed=len(closed),
            labels_used=labels_used(self.store),
            pool_remaining=remaining,
            best_label_history_ev=tuple(r.metrics.get("best_gmae_ev") for r in closed),
            cost_spent=cost_spent(self.store.jobs(), self.cfg.cost),
            min_label_cost=cheapest,
            last_batch_empty=bool(closed) and closed[-1].index > 0
            and not self.store.acquisitions(round_index=closed[-1].index),
        )  # fmt: skip
        rules = StopRules(
            max_labels=budget.max_labels, max_rounds=budget.max_rounds,
            no_improvement_rounds=budget.no_improvement_rounds, max_cost=budget.max_cost,
        )  # fmt: skip
        return check_stop(state, rules)
