"""The campaign engine: the closed loop, one committed step at a time.

Steps of one round, each a state recorded on the round row before the next begins:

  0. ``started``   the round row exists.
  1. ``trained``   the AdsMT ensemble is fitted on every usable label (highest fidelity per
                   pair), warm-started from the previous round's checkpoint; the new checkpoint
                   is stored. Round 0 (and any round with fewer than two labels) is a cold
                   start and skips training.
  2./3. ``acquired``  the unlabelled pool is scored (μ, σ, embeddings), a diverse batch chosen
                   by the configured acquisition, and the acquisitions with their PROPOSED
                   oracle jobs are committed in one transaction. Under
                   `escalation.policy: cost_aware` the batch is over (pair, fidelity): MLIP
                   jobs for unlabelled pairs and DFT jobs (with their `escalated` events) for
                   MLIP-labelled ones, chosen by value per cost (`loop/agent/mf_planning.py`).
  4. ``labelled``  the jobs run through the executor; each result is ingested exactly once
                   (`CampaignStore.complete_job`) as it arrives.
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

import torch
from botorch.posteriors.ensemble import EnsemblePosterior

from alloop.loop.agent.acquisition import AcquisitionContext, get_acquisition
from alloop.loop.agent.batch import select_batch
from alloop.loop.agent.costs import cost_by_fidelity, cost_spent, fidelity_cost
from alloop.loop.agent.escalation import training_labels
from alloop.loop.agent.mf_planning import cold_start_dft, mf_candidates, plan_mf_batch
from alloop.loop.agent.stopping import StopDecision, StopRules, StopState, check_stop
from alloop.loop.bridges.dft import (
    EscalatingOracle,
    build_dft_oracle,
    dft_fidelity,
    is_dft_job,
    mlip_start,
    plan_round,
)
from alloop.loop.bridges.oracle import (
    build_executor,
    build_oracle,
    oracle_fidelity,
    oracle_pairs,
    result_to_label,
)
from alloop.loop.bridges.surrogate import (
    PoolView,
    fit_ensemble,
    labels_by_fidelity,
    training_samples,
)
from alloop.loop.config import AlloopConfig
from alloop.store import CampaignStore, JobState
from alloop.store.enums import TERMINAL_JOB_STATES
from alloop.store.records import JobRecord, NewAcquisition, NewJob, PairRecord, RoundRecord
from alloop.surrogate.ensemble import AdsMTEnsemble

logger = logging.getLogger(__name__)

Observer = Callable[[str, dict[str, Any]], None]
DIVERSITY_METHOD = {"kriging_believer": "kriging_believer", "maxmin": "maxmin", "none": "topk"}
COLD_START_METHOD = {"random": "random", "space_filling": "farthest_point"}


def round_generator(seed: int, index: int) -> torch.Generator:
    """The seeded generator of round ``index``'s acquisition (cold start included)."""
    return torch.Generator().manual_seed(seed * 7919 + index)


class CampaignEngine:
    """Drives one campaign (opened for writing) until a stopping rule fires."""

    def __init__(
        self,
        store: CampaignStore,
        cfg: AlloopConfig,
        *,
        observer: Observer | None = None,
        oracle: Any | None = None,
        executor: Any | None = None,
        dft_oracle: Any | None = None,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.seed = store.campaign().seed
        self.pool = PoolView.load(store)
        self.adsorbate_atoms = {k: store.adsorbate_atoms(k) for k in self.pool.adsorbates}
        self.by_key = {p.key: p for p in self.pool.pairs}
        self.notify: Observer = observer or (lambda kind, info: None)
        self._oracle = oracle
        self._executor = executor
        self._dft_oracle = dft_oracle
        self._ensemble: tuple[int, AdsMTEnsemble] | None = None

    # ------------------------------------------------------------------ the loop
    def run(self) -> StopDecision:
        try:
            while True:
                rnd = self._unfinished_round()
                if rnd is None:
                    decision = self.stop_decision()
                    if decision.stop:
                        self.notify(
                            "stopped", {"reason": decision.reason, "detail": decision.detail}
                        )
                        return decision
                    index = len(self.store.rounds())
                    rnd = self.store.begin_round(index, "started")
                    self.notify("round", {"index": index})
                self._advance(rnd)
        finally:
            if self._executor is not None:
                self._executor.close()

    def _unfinished_round(self) -> RoundRecord | None:
        rounds = self.store.rounds()
        return rounds[-1] if rounds and rounds[-1].state != "closed" else None

    def _advance(self, rnd: RoundRecord) -> None:
        steps = {
            "started": self._train,
            "trained": self._acquire,
            "acquired": self._label,
            "labelled": self._escalate,
            "escalated": self._close,
        }
        state = rnd.state
        while state != "closed":
            step = steps.get(state)
            if step is None:
                raise RuntimeError(f"round {rnd.index} is in unknown state {state!r}")
            state = step(rnd.index)

    # ------------------------------------------------------------------ 1. train
    def _train(self, index: int) -> str:
        mode = self.cfg.surrogate.mode
        samples = [s for _, s in training_samples(self.store, self.pool, mode)]
        if len(samples) < 2:
            return self._cold_start(index)
        t0 = time.perf_counter()
        if not self.store.checkpoints(index):
            warm = self._previous_checkpoint(index)
            self.notify("training", {"index": index, "n_labels": len(samples)})
            ensemble, report = fit_ensemble(
                self.cfg.surrogate, samples, seed=self.seed * 1000 + index, warm_start=warm
            )
            blob = ensemble.to_bytes()
            self.store.save_checkpoint(
                index, 0, blob, {"kind": "ensemble", "members": ensemble.config.num_members}
            )
            self._ensemble = (index, ensemble)
            metrics = {
                "n_train_labels": len(samples),
                "val_mae_ev": report.val_mae_ev,
                "std_scale": report.std_scale,
                "warm_started": report.warm_started,
                "timing": {"train_s": time.perf_counter() - t0},
            }
        else:  # trained before a crash: the stored checkpoint is the result
            metrics = {}
        self.store.set_round_state(index, "trained", metrics=metrics)
        return "trained"

    def _previous_checkpoint(self, index: int) -> bytes | None:
        for earlier in range(index - 1, -1, -1):
            found = self.store.checkpoints(earlier)
            if found:
                return found[0].blob
        return None

    def _ensemble_for(self, index: int) -> AdsMTEnsemble:
        if self._ensemble is None or self._ensemble[0] != index:
            (ckpt,) = self.store.checkpoints(index)
            self._ensemble = (index, AdsMTEnsemble.from_bytes(ckpt.blob))
        return self._ensemble[1]

    # ------------------------------------------------------------------ 2./3. acquire
    def candidates(self) -> list[PairRecord]:
        """Pairs with no label and no job: what the next batch may pick."""
        taken = {lab.pair_key for lab in self.store.label_summaries()}
        taken |= {job.pair_key for job in self.store.jobs()}
        return [p for p in self.pool.pairs if p.key not in taken]

    def _batch_size(self, first: bool) -> int:
        acq = self.cfg.acquisition
        q = (acq.initial_batch_size or acq.batch_size) if first else acq.batch_size
        budget = self.cfg.budget.max_labels
        if budget is not None:
            q = min(q, max(0, budget - self._labels_used()))
        return max(q, 1)

    def _generator(self, index: int) -> torch.Generator:
        return round_generator(self.seed, index)

    def _cold_start(self, index: int) -> str:
        t0 = time.perf_counter()
        cands = self.candidates()
        method = COLD_START_METHOD[self.cfg.acquisition.cold_start]
        embeddings = self._descriptor_embeddings(cands) if method == "farthest_point" else None
        selection = select_batch(
            None, embeddings, self._batch_size(first=True), method=method,
            generator=self._generator(index), available=torch.ones(len(cands), dtype=torch.bool),
        )  # fmt: skip
        rows = [
            NewAcquisition(cands[p.index].key, p.rank, p.score, None, None, method, p.reason)
            for p in selection.picks
        ]
        self._commit_batch(index, rows, {"timing": {"acquire_s": time.perf_counter() - t0}})
        return "acquired"

    def _descriptor_embeddings(self, cands: Sequence[PairRecord]) -> torch.Tensor:
        """Surface one-hot ⊕ standardised adsorbate descriptors: a space to spread a cold start."""
        from alloop.loop.bridges.surrogate import ensemble_config
        from alloop.surrogate.featurizer import Featurizer

        featurizer = Featurizer(ensemble_config(self.cfg.surrogate).featurizer)
        smiles = sorted({self.pool.smiles(p) for p in cands})
        desc = featurizer.descriptors(smiles).double()
        desc = (desc - desc.mean(0)) / desc.std(0).clamp_min(1e-8)
        surfaces = sorted({p.surface_key for p in cands})
        eye = torch.eye(len(surfaces), dtype=torch.float64) * 3.0
        s_pos = {k: i for i, k in enumerate(surfaces)}
        a_pos = {k: i for i, k in enumerate(smiles)}
        return torch.stack(
            [
                torch.cat([eye[s_pos[p.surface_key]], desc[a_pos[self.pool.smiles(p)]]])
                for p in cands
            ]
        )

    @property
    def cost_aware(self) -> bool:
        return self.cfg.escalation.cost_aware

    def _acquire_cost_aware(self, index: int) -> str:
        t0 = time.perf_counter()
        batch = plan_mf_batch(self.store, self.pool, self._ensemble_for(index), self.cfg, index)
        self.store.record_batch(index, batch.acquisitions, batch.jobs, "acquired", batch.events)
        timing = {"acquire_s": time.perf_counter() - t0}
        self._merge_timing(index, "acquired", {**batch.metrics, "timing": timing})
        self.notify("acquired", {"index": index, "n": len(batch.acquisitions)})
        return "acquired"

    def _acquire(self, index: int) -> str:
        if self.cost_aware:
            return self._acquire_cost_aware(index)
        t0 = time.perf_counter()
        ensemble = self._ensemble_for(index)
        cands = self.candidates()
        slabs, smiles, pair_index = self.pool.index_tensors(cands)
        t_score = time.perf_counter()
        pred = ensemble.predict(slabs, smiles, pair_index, with_embeddings=True)
        score_s = time.perf_counter() - t_score
        mean = pred.mean_ev.unsqueeze(0)
        values = mean + ensemble.std_scale * (pred.member_ev - mean)  # K x N
        posterior = EnsemblePosterior(values.unsqueeze(-1))
        acq_cfg = self.cfg.acquisition
        acquisition = get_acquisition(acq_cfg.name)
        generator = self._generator(index)
        q = self._batch_size(first=False)
        context = AcquisitionContext(
            best_label_ev=self.best_label(), target_window_ev=acq_cfg.target_window_ev,
            beta=acq_cfg.beta, q=q, generator=generator,
        )  # fmt: skip
        n_explore = min(q - 1, round(acq_cfg.explore_fraction * q)) if q > 1 else 0
        picks = self._select(acquisition, posterior, pred.embeddings, q - n_explore,
                             replace(context, q=q - n_explore), generator, None)  # fmt: skip
        named = [(p, acq_cfg.name) for p in picks]
        if n_explore:  # the explore share: max σ among what the exploit part left
            available = torch.ones(len(cands), dtype=torch.bool)
            available[[p.index for p in picks]] = False
            more = self._select(get_acquisition("uncertainty"), posterior, pred.embeddings,
                                n_explore, replace(context, q=n_explore), generator,
                                available)  # fmt: skip
            named += [(replace(p, rank=len(picks) + p.rank), "uncertainty") for p in more]
        rows = [
            NewAcquisition(
                cands[p.index].key, p.rank, p.score, float(pred.mean_ev[p.index]),
                float(pred.std_ev[p.index]), name, p.reason,
            )
            for p, name in named
        ]  # fmt: skip
        total = time.perf_counter() - t0
        timing = {"score_s": score_s, "acquire_s": total, "n_scored": len(cands)}
        self._commit_batch(index, rows, {"timing": timing})
        return "acquired"

    def _select(
        self,
        acquisition: Any,
        posterior: EnsemblePosterior,
        embeddings: torch.Tensor | None,
        q: int,
        context: AcquisitionContext,
        generator: torch.Generator,
        available: torch.Tensor | None,
    ) -> list[Any]:
        if q <= 0:
            return []
        method = DIVERSITY_METHOD[self.cfg.acquisition.diversity]
        if method == "kriging_believer" and (acquisition.per_slot or not acquisition.conditionable):
            # Thompson slots are diverse by construction; random cannot be rescored by belief
            method = "topk" if acquisition.per_slot else "maxmin"
        selection = select_batch(
            None, embeddings, q, method=method, generator=generator, posterior=posterior,
            acquisition=acquisition, context=context, available=available,
        )  # fmt: skip
        return list(selection.picks)

    def _commit_batch(
        self, index: int, rows: list[NewAcquisition], metrics: dict[str, Any]
    ) -> None:
        kind = oracle_fidelity(self.cfg)
        jobs = [NewJob.for_round(index, row.pair_key, kind) for row in rows]
        self.store.record_batch(index, rows, jobs, "acquired")
        self._merge_timing(index, "acquired", metrics)
        self.notify("acquired", {"index": index, "n": len(rows)})

    def _merge_timing(self, index: int, state: str, metrics: dict[str, Any]) -> None:
        current = next(r for r in self.store.rounds() if r.index == index).metrics
        timing = {**current.get("timing", {}), **metrics.pop("timing", {})}
        self.store.set_round_state(index, state, metrics={**metrics, "timing": timing})

    # ------------------------------------------------------------------ 4. label
    def _label(self, index: int) -> str:
        t0 = time.perf_counter()
        self._run_jobs(index, oracle_fidelity(self.cfg), self._labelling_oracle,
                      ("labelling", "labelled"))  # fmt: skip
        self._merge_timing(index, "labelled", {"timing": {"label_s": time.perf_counter() - t0}})
        return "labelled"

    def _labelling_oracle(self, jobs: Sequence[JobRecord]) -> Any:
        self._oracle = self._oracle or build_oracle(self.cfg)
        return self._oracle

    def _run_jobs(
        self,
        index: int,
        kind: str,
        oracle_for: Callable[[Sequence[JobRecord]], Any],
        progress: tuple[str, str],
    ) -> None:
        """Run round `index`'s unfinished jobs of `kind` through the executor, ingesting each
        result exactly once; `oracle_for(jobs)` gives the oracle (built only if there are any)."""
        todo = [j for j in self.store.jobs() if j.round_index == index and j.kind == kind
                and JobState(j.state) not in TERMINAL_JOB_STATES]  # fmt: skip
        if not todo:
            return
        for job in todo:
            if job.state in (JobState.PROPOSED.value, JobState.RUNNING.value):
                self.store.transition_job(job.key, JobState.SUBMITTED)  # RUNNING: a re-run
        oracle = oracle_for(todo)
        if self._executor is None:
            self._executor = build_executor(self.cfg)
        width = max(1, self.cfg.executor.workers)
        done = 0
        starting, each = progress
        self.notify(starting, {"index": index, "total": len(todo), "done": 0})
        for start in range(0, len(todo), width):
            chunk = todo[start : start + width]
            for job in chunk:
                self.store.transition_job(job.key, JobState.RUNNING)
            pairs = oracle_pairs(
                [self.by_key[j.pair_key] for j in chunk], self.pool.slabs,
                self.pool.adsorbates, self.adsorbate_atoms,
            )  # fmt: skip
            for job, result in zip(chunk, self._executor.map(oracle, pairs), strict=True):
                self.store.complete_job(job.key, result_to_label(result))
                done += 1
                info = {"index": index, "total": len(todo), "done": done, "pair": job.pair_key}
                self.notify(each, {**info, "status": result.status})

    # ------------------------------------------------------------------ 5. escalate
    def _escalate(self, index: int) -> str:
        esc = self.cfg.escalation
        if not esc.enabled:
            self.store.set_round_state(index, "escalated", metrics={"escalation_enabled": False})
            return "escalated"
        t0 = time.perf_counter()
        kind = dft_fidelity(esc)
        if not any(is_dft_job(j) and j.round_index == index for j in self.store.jobs()):
            if self.cost_aware:
                jobs, events = cold_start_dft(self.store, self.cfg, index, self._generator(index))
                if jobs:
                    self.store.propose_jobs(index, jobs, events)
            else:
                self._plan_escalations(index)
        self._run_jobs(index, kind, self._escalating_oracle, ("escalating", "dft_labelled"))
        dft_jobs = [j for j in self.store.jobs() if is_dft_job(j)]
        metrics = {
            "escalation_enabled": True,
            "n_escalated": sum(j.round_index == index for j in dft_jobs),
            "dft_spent": len(dft_jobs),
            "timing": {"escalate_s": time.perf_counter() - t0},
        }
        self._merge_timing(index, "escalated", metrics)
        return "escalated"

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
    def _close(self, index: int) -> str:
        rnd = next(r for r in self.store.rounds() if r.index == index)
        labels = self._training_labels()
        target, _ = labels_by_fidelity(self.store)
        if self.cfg.surrogate.mode != "supersede" or self.cost_aware:
            # μ, σ are DFT-level predictions: score them against DFT-level labels only
            keys = {p.id: p.key for p in self.pool.pairs}
            labels = {keys[pair_id]: ev for pair_id, ev in target.items()}
        errors, covered = [], 0
        for acq in self.store.acquisitions(round_index=index):
            label_ev = labels.get(acq.pair_key)
            if label_ev is None or acq.mu_ev is None or acq.sigma_ev is None:
                continue
            err = abs(acq.mu_ev - label_ev)
            errors.append(err)
            covered += err <= 1.96 * acq.sigma_ev
        jobs = self.store.jobs()
        metrics: dict[str, Any] = {
            "n_labels": self._labels_used(),
            "best_gmae_ev": self.best_label(),
            "n_target_labels": len(target),
            "best_target_ev": min(target.values(), default=None),
            "cost_round": cost_spent(jobs, self.cfg.cost, index),
            "cost_total": cost_spent(jobs, self.cfg.cost),
            "cost_by_fidelity": cost_by_fidelity(jobs, self.cfg.cost),
        }
        if errors:
            metrics["batch_mae_ev"] = sum(errors) / len(errors)
            metrics["batch_coverage_95"] = covered / len(errors)
        timing = rnd.metrics.get("timing", {})
        spent = sum(timing.get(k, 0.0) for k in ("train_s", "label_s", "escalate_s"))
        total = time.time() - rnd.started_at.timestamp()
        metrics["timing"] = {**timing, "overhead_s": max(0.0, total - spent)}
        self.store.set_round_state(index, "closed", metrics=metrics, finished=True)
        self.notify("closed", {"index": index, **metrics})
        return "closed"

    # ------------------------------------------------------------------ stop rules
    def _training_labels(self) -> dict[str, float]:
        """Pair key -> the label it trains on (highest usable fidelity: DFT over MLIP), eV."""
        summaries = self.store.label_summaries()
        keys = {lab.pair_id: lab.pair_key for lab in summaries}
        chosen = training_labels((lab.pair_id, lab.fidelity, lab.gmae_ev, lab.status)
                                 for lab in summaries)  # fmt: skip
        return {keys[pair_id]: t.gmae_ev for pair_id, t in chosen.items()}

    def best_label(self) -> float | None:
        return min(self._training_labels().values(), default=None)

    def _labels_used(self) -> int:
        return len({lab.pair_key for lab in self.store.label_summaries()})

    def _open_options(self) -> tuple[int, float]:
        """What a next batch could still pick, and what the cheapest of it costs: unlabelled
        pairs (at the labelling fidelity's cost), and under the cost-aware policy also
        MLIP-labelled pairs that DFT has not labelled (at DFT's)."""
        label_cost = fidelity_cost(oracle_fidelity(self.cfg), self.cfg.cost)
        if not self.cost_aware:
            return len(self.candidates()), label_cost
        for_mlip, for_dft, _ = mf_candidates(self.store, self.pool)
        dft_cost = fidelity_cost(dft_fidelity(self.cfg.escalation), self.cfg.cost)
        costs = [label_cost] * bool(for_mlip) + [dft_cost] * bool(for_dft)
        return len(for_mlip) + len(for_dft), min(costs, default=0.0)

    def stop_decision(self) -> StopDecision:
        closed = [r for r in self.store.rounds() if r.state == "closed"]
        budget = self.cfg.budget
        remaining, cheapest = self._open_options()
        state = StopState(
            rounds_completed=len(closed),
            labels_used=self._labels_used(),
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
