"""AdsMTEnsemble: K AdsMT members trained as a deep ensemble, with a BoTorch posterior.

Steps of :meth:`AdsMTEnsemble.fit`:

1. featurise the distinct slabs (by content) and SMILES of train and val (cached);
2. fit the descriptor and target standardisers on the training split (a warm start keeps the
   checkpoint's, so its weights stay meaningful);
3. train each member with its own seed (``seed * 1009 + k``): L1 (plus the optional site loss
   on the attention, toward each sample's ``binding_atoms``), AdamW, plateau schedule,
   best-validation weights, early stopping;
4. choose the scalar that calibrates the ensemble spread on the validation split.

Inference encodes each distinct slab once per member (and caches the encoding until the next
fit), each distinct adsorbate once, and then scores pairs in chunks.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from ase import Atoms
from botorch.posteriors.ensemble import EnsemblePosterior
from torch import Tensor

from alloop.surrogate.calibration import (
    MAX_UNLABELLED_PAIRS,
    calibrated_std,
    fit_spread_calibration,
)
from alloop.surrogate.checkpoint import CheckpointState, load_checkpoint, save_checkpoint
from alloop.surrogate.crossfit import fit_member_priors, split_members
from alloop.surrogate.errors import CheckpointError, SurrogateError, TrainingError
from alloop.surrogate.featurizer import Featurizer
from alloop.surrogate.fidelity import LOW_FIDELITY, TARGET_FIDELITY
from alloop.surrogate.inference import (
    cat_encodings,
    check_pair_index,
    encode_slabs_chunked,
    predict_member,
    predict_member_uncached,
    split_encoding,
)
from alloop.surrogate.metrics import fit_std_scale
from alloop.surrogate.model import AdsMT, SlabEncoding
from alloop.surrogate.normalizers import Standardizer
from alloop.surrogate.prior import ScalingPrior
from alloop.surrogate.site_loss import site_targets
from alloop.surrogate.training import PairIndex, TrainConfig, train_member
from alloop.surrogate.types import EnsembleConfig, FitReport, Prediction, SurrogateSample

__all__ = ["AdsMTEnsemble"]

logger = logging.getLogger(__name__)


#: target-fidelity validation samples needed to calibrate on them alone
MIN_TARGET_VAL = 3


def _low_or_nan(sample: SurrogateSample) -> float:
    return sample.low_fidelity_ev if sample.low_fidelity_ev is not None else math.nan


def _resolve_device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class AdsMTEnsemble:
    """Deep ensemble of AdsMT models predicting GMAE (eV) with uncertainty and site scores.

    Args:
        config: featuriser, model, training and inference settings.
        seed: base seed; member k uses ``seed * 1009 + k``.
        featurizer: share a featuriser (and its caches) with the caller; must use
            ``config.featurizer``.
    """

    def __init__(
        self,
        config: EnsembleConfig | None = None,
        seed: int = 0,
        featurizer: Featurizer | None = None,
    ) -> None:
        self.config = config or EnsembleConfig()
        self.seed = int(seed)
        if featurizer is not None and featurizer.config != self.config.featurizer:
            raise SurrogateError(
                f"featurizer config {featurizer.config} differs from {self.config.featurizer}"
            )
        self.featurizer = featurizer or Featurizer(self.config.featurizer)
        self.device = _resolve_device(self.config.device)
        self.dtype = torch.float64 if self.config.dtype == "float64" else torch.float32
        dim = self.featurizer.descriptor_dim
        self.desc_norm = Standardizer(dim, clip=self.config.descriptor_clip)
        self.y_norm = Standardizer(1)
        self.std_scale = 1.0
        self.std_floor_ev = 0.0
        #: the last cross-fitted calibration's (out-of-fold residuals, unlabelled spreads), eV
        self.calibration_inputs: tuple[np.ndarray, np.ndarray] | None = None
        self.priors: list[ScalingPrior] = []
        self.members: list[AdsMT] = []
        self._enc_cache: list[dict[str, SlabEncoding]] = []

    def __repr__(self) -> str:
        state = "fitted" if self.members else "unfitted"
        return (
            f"AdsMTEnsemble(K={self.config.ensemble_size}, {state}, device={self.device}, "
            f"std_scale={self.std_scale:.3g}, {self.featurizer!r})"
        )

    # ----------------------------------------------------------------- construction helpers
    def _new_member(self, seed: int) -> AdsMT:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AdsMT(
                self.config.member_model(),
                self.featurizer.descriptor_dim,
                self.config.featurizer.cutoff_ang,
                self.featurizer.atom_feature_dim,
            )
            if self.config.prior_mean != "none":  # start as "no residual": the prior alone
                last = model.head[-1]
                assert isinstance(last, torch.nn.Linear)
                torch.nn.init.zeros_(last.weight)
                torch.nn.init.zeros_(last.bias)
        return model.to(device=self.device, dtype=self.dtype)

    def _transform(self, raw: Tensor) -> Tensor:
        """Optional ``sign(x) log1p(|x|)`` before standardising (tames heavy-tailed columns)."""
        if self.config.descriptor_transform == "signed_log1p":
            return torch.sign(raw) * torch.log1p(raw.abs())
        return raw

    def _member_seed(self, k: int) -> int:
        return self.seed * 1009 + k

    def _index(
        self, slabs: Sequence[Atoms], smiles: Sequence[str]
    ) -> tuple[list[str], list[int], list[str], list[int]]:
        """Deduplicate slabs (by content) and SMILES; return unique keys and per-item indices."""
        slab_keys: dict[str, int] = {}
        slab_idx = [
            slab_keys.setdefault(self.featurizer.slab_key(a), len(slab_keys)) for a in slabs
        ]
        smi_keys: dict[str, int] = {}
        ads_idx = [smi_keys.setdefault(s, len(smi_keys)) for s in smiles]
        return list(slab_keys), slab_idx, list(smi_keys), ads_idx

    # ------------------------------------------------------------------------------- fit
    def fit(
        self,
        train: Sequence[SurrogateSample],
        val: Sequence[SurrogateSample] = (),
        warm_start: bytes | None = None,
        *,
        pretrained: bytes | None = None,
    ) -> FitReport:
        """Train all members on ``train``, early-stopping and calibrating on ``val``
        (``split: holdout``), or on ``train`` and ``val`` pooled, each member holding out its
        own fold (``split: cross_fit``: ``val`` may be empty; at least 2 samples).

        Samples of both fidelities are used as ``config.fidelity_mode`` says (prepare them with
        :func:`alloop.surrogate.fidelity.prepare_samples`); the spread is calibrated and
        ``val_mae_ev`` measured on the target-fidelity validation samples when there are at
        least ``MIN_TARGET_VAL`` of them, else on all.

        Args:
            warm_start: bytes of an earlier checkpoint (same featuriser and model config):
                members start from its weights and keep its normalisers (``holdout`` only;
                ``cross_fit`` members always start fresh, see below).
            pretrained: bytes of a checkpoint trained on none of these labels (e.g. on MLIP
                labels of other pairs; the same featuriser, model config and fidelity mode):
                every member starts from it under either split and keeps its normalisers, and
                fine-tunes with the learning rate × ``transfer_lr_factor``. Cross-fitting's
                reason to start fresh (a member that saw its fold's labels) does not apply to
                weights that saw no label of this fit.

        Raises:
            TrainingError: empty split. CheckpointError: incompatible warm start.
            SurrogateError: both ``warm_start`` and ``pretrained``, or ``pretrained`` with
                ``fidelity_mode: transfer`` (which pretrains within the fit).
        """
        if pretrained is not None and (
            warm_start is not None or self.config.fidelity_mode == "transfer"
        ):
            raise SurrogateError(
                "pretrained cannot be combined with a warm_start or with fidelity_mode "
                f"'transfer' (got warm_start={'bytes' if warm_start else None}, "
                f"fidelity_mode={self.config.fidelity_mode!r})"
            )
        if self.config.split == "cross_fit":
            # Cross-fitted members start fresh: last round's member k was trained on labels
            # that fold k now holds out, so its weights would make out-of-fold residuals small.
            warm_start = None
            if len(train) + len(val) < 2:
                raise TrainingError(
                    f"cross-fitting needs at least 2 samples, got {len(train) + len(val)}"
                )
        elif not train or not val:
            raise TrainingError(f"fit needs non-empty train and val, got {len(train)}, {len(val)}")
        if pretrained is not None:
            cfg = self.config.train
            cfg = replace(cfg, learning_rate=cfg.learning_rate * self.config.transfer_lr_factor)
            return self._fit_stage(train, val, pretrained, cfg)
        if self.config.fidelity_mode == "transfer":
            return self._fit_transfer(train, val, warm_start)
        return self._fit_stage(train, val, warm_start, self.config.train)

    def _fit_transfer(
        self,
        train: Sequence[SurrogateSample],
        val: Sequence[SurrogateSample],
        warm_start: bytes | None,
    ) -> FitReport:
        """Pretrain on the low-fidelity labels, fine-tune on the target ones (lr scaled by
        ``transfer_lr_factor``); a stage without both a train and a val sample is skipped."""
        start = time.perf_counter()
        stages: list[FitReport] = []
        for fid in (LOW_FIDELITY, TARGET_FIDELITY):
            tr = [s for s in train if s.fidelity == fid]
            va = [s for s in val if s.fidelity == fid]
            if (len(tr) + len(va) < 2) if self.config.split == "cross_fit" else (not tr or not va):
                continue
            cfg = self.config.train
            if stages:  # fine-tuning: from the pretrained weights, gently
                warm_start = self.to_bytes()
                cfg = replace(cfg, learning_rate=cfg.learning_rate * self.config.transfer_lr_factor)
            stages.append(self._fit_stage(tr, va, warm_start, cfg))
        if not stages:
            raise TrainingError(
                "transfer needs train and val samples of one fidelity at least, got "
                f"{len(train)} train and {len(val)} val samples across fidelities"
            )
        return replace(stages[-1], wall_s=time.perf_counter() - start)

    def _fit_stage(
        self,
        train: Sequence[SurrogateSample],
        val: Sequence[SurrogateSample],
        warm_start: bytes | None,
        train_config: TrainConfig,
    ) -> FitReport:
        start = time.perf_counter()
        samples = list(train) + list(val)
        cross = self.config.split == "cross_fit"
        by_key = {self.featurizer.slab_key(s.slab): s.slab for s in samples}
        keys, slab_idx, smiles, ads_idx = self._index(
            [s.slab for s in samples], [s.smiles for s in samples]
        )
        graphs = [self.featurizer.slab_graph(by_key[k]) for k in keys]
        raw = self._transform(self.featurizer.descriptors(smiles))
        y = torch.tensor([s.gmae_ev for s in samples], dtype=torch.float64)
        n_tr = len(samples) if cross else len(train)
        member_parts = split_members(
            samples, n_tr, self.config.split, self.config.ensemble_size, self.seed
        )
        fidelity = torch.tensor([s.fidelity for s in samples])
        s_t, a_t = torch.tensor(slab_idx), torch.tensor(ads_idx)
        ckpt = self._check_warm_start(warm_start) if warm_start is not None else None
        if ckpt is None:
            self.desc_norm.fit(raw[a_t[:n_tr]])
        else:
            self._load_normalisers(ckpt)
        desc_cpu = self.desc_norm(raw).double()
        self.priors = []
        if self.config.prior_mean != "none":
            self.priors = fit_member_priors(
                keys, s_t, smiles, desc_cpu, a_t, y, fidelity, member_parts, self.seed,
                self.config.prior_mean,
            )  # fmt: skip
        if ckpt is None:  # standardise what the members learn: the label, or its residual
            base = self.priors[0].predict(keys, s_t, smiles, desc_cpu, a_t) if self.priors else 0.0
            self.y_norm.fit((y - base)[:n_tr])
        desc = desc_cpu.to(device=self.device, dtype=self.dtype)
        low_ev = torch.tensor([_low_or_nan(s) for s in samples], dtype=torch.float64)
        targets = None
        if train_config.site_loss != "none":
            n_max = max(len(by_key[k]) for k in keys)  # the widest slab: attention's padding
            binding = [s.binding_atoms for s in samples]
            targets = site_targets(binding, [n_max] * len(samples)).to(self.device)
        self.members, self._enc_cache, reports = [], [], []
        for k in range(self.config.ensemble_size):
            prior = self.priors[k] if self.priors else None
            base = prior.predict(keys, s_t, smiles, desc_cpu, a_t) if prior is not None else 0.0
            y_std = self.y_norm((y - base).unsqueeze(-1)).squeeze(-1).to(self.device)
            fid, low = self._fidelity_inputs(fidelity, low_ev - base)
            every = PairIndex(
                s_t.to(self.device), a_t.to(self.device), y_std, fid, low, targets
            )  # fmt: skip
            tr_idx, va_idx = member_parts[k]
            model = self._new_member(self._member_seed(k))
            if ckpt is not None:
                model.load_state_dict(ckpt.members[k % len(ckpt.members)])
            reports.append(
                train_member(
                    model,
                    graphs,
                    desc,
                    every.subset(tr_idx.to(self.device)),
                    every.subset(va_idx.to(self.device)),
                    train_config,
                    self._member_seed(k),
                    self.device,
                )
            )
            self.members.append(model)
        self._enc_cache = [{} for _ in self.members]
        grid = ([by_key[k] for k in keys], slab_idx, smiles, ads_idx)
        n_val, val_mae = self._calibrate(samples, n_tr, member_parts, grid)
        return FitReport(
            members=tuple(reports),
            n_train=n_tr,
            n_val=n_val,
            val_mae_ev=val_mae,
            std_scale=self.std_scale,
            std_floor_ev=self.std_floor_ev,
            wall_s=time.perf_counter() - start,
            device=str(self.device),
            warm_started=ckpt is not None,
        )

    def _calibrate(
        self,
        samples: Sequence[SurrogateSample],
        n_tr: int,
        member_parts: list[tuple[Tensor, Tensor]],
        grid: tuple[list[Atoms], list[int], list[str], list[int]],
    ) -> tuple[int, float]:
        """Set the spread calibration; return (labels it used, their MAE in eV).

        ``holdout``: one scale on the validation split (its target-fidelity samples when there
        are ``MIN_TARGET_VAL``). ``cross_fit``: scale and floor from every label's out-of-fold
        residual (the member that held it out), target-fidelity labels when there are
        ``MIN_TARGET_VAL``."""
        self.std_scale, self.std_floor_ev = 1.0, 0.0
        pool = list(range(n_tr)) if self.config.split == "cross_fit" else list(
            range(n_tr, len(samples))
        )  # fmt: skip
        target = [i for i in pool if samples[i].fidelity == TARGET_FIDELITY]
        calib = target if len(target) >= MIN_TARGET_VAL else pool
        pred = self.predict_samples([samples[i] for i in calib])
        y_val = np.array([samples[i].gmae_ev for i in calib])
        if self.config.split == "holdout":
            mean = pred.mean_ev.numpy()
            if self.config.calibrate_std and len(self.members) > 1:
                self.std_scale = fit_std_scale(mean, pred.std_ev.numpy(), y_val)
            return len(calib), float(np.mean(np.abs(mean - y_val)))
        holder = torch.empty(len(samples), dtype=torch.long)
        for k, (_, va_idx) in enumerate(member_parts):
            holder[va_idx] = k  # with more members than folds the last holder is kept
        oof = pred.member_ev[holder[calib], torch.arange(len(calib))].numpy()
        resid = y_val - oof
        if self.config.calibrate_std:
            self.calibration_inputs = (resid, self._unlabelled_spread(*grid))
            self.std_scale, self.std_floor_ev = fit_spread_calibration(*self.calibration_inputs)
        return len(calib), float(np.mean(np.abs(resid)))

    def _unlabelled_spread(
        self, slabs: list[Atoms], slab_idx: list[int], smiles: list[str], ads_idx: list[int]
    ) -> np.ndarray:
        """The raw member spread (eV) at up to ``MAX_UNLABELLED_PAIRS`` seeded combinations of
        the labelled surfaces and adsorbates that carry no label (what calibration pairs the
        out-of-fold residuals with); one zero when every combination is labelled (σ is then
        the floor alone). ``slabs``, ``smiles`` and the per-label indices are the fit's own
        deduplicated index (`_index`), not recomputed here."""
        labelled = set(zip(slab_idx, ads_idx, strict=True))
        free = [
            (i, j) for i in range(len(slabs)) for j in range(len(smiles)) if (i, j) not in labelled
        ]
        if not free or len(self.members) < 2:
            return np.zeros(1)
        rng = np.random.default_rng(self.seed)
        if len(free) > MAX_UNLABELLED_PAIRS:
            free = [free[i] for i in rng.choice(len(free), MAX_UNLABELLED_PAIRS, replace=False)]
        pred = self.predict(slabs, smiles, torch.tensor(free))
        return pred.member_ev.std(dim=0).numpy()

    def _fidelity_inputs(
        self, fidelity: Tensor, low_ev: Tensor
    ) -> tuple[Tensor | None, Tensor | None]:
        """The model's multi-fidelity inputs on the device: `P` fidelity indices (None for a
        one-fidelity model) and `P` standardised low-fidelity labels, NaN where a pair has
        none or the prediction is not at the target (None without a delta head)."""
        model = self.config.member_model()
        fid = fidelity.to(self.device) if model.num_fidelities > 1 else None
        low = None
        if model.delta_head:
            low_ev = torch.where(fidelity == TARGET_FIDELITY, low_ev, torch.nan)
            low = self.y_norm(low_ev.unsqueeze(-1)).squeeze(-1)
            low = low.to(device=self.device, dtype=self.dtype)
        return fid, low

    def _check_warm_start(self, data: bytes) -> CheckpointState:
        ckpt = load_checkpoint(data)
        if ckpt.config.fidelity_mode != self.config.fidelity_mode:
            raise CheckpointError(
                f"warm start from fidelity_mode {ckpt.config.fidelity_mode!r}, this ensemble "
                f"uses {self.config.fidelity_mode!r}"
            )
        if ckpt.featurizer_version != self.config.featurizer.version:
            raise CheckpointError(
                f"warm start from featuriser {ckpt.featurizer_version!r}, this ensemble uses "
                f"{self.config.featurizer.version!r}"
            )
        if ckpt.config.model != self.config.model:
            raise CheckpointError(
                f"warm start model config {ckpt.config.model} differs from {self.config.model}"
            )
        return ckpt

    def _load_normalisers(self, ckpt: CheckpointState) -> None:
        self.desc_norm.mean.copy_(ckpt.desc_mean)
        self.desc_norm.std.copy_(ckpt.desc_std)
        self.y_norm.mean.copy_(ckpt.y_mean)
        self.y_norm.std.copy_(ckpt.y_std)

    # ------------------------------------------------------------------------- predict
    def _encode(self, k: int, keys: list[str], slabs_by_key: dict[str, Atoms]) -> SlabEncoding:
        """Member k's encoding of the slabs ``keys``; each slab encoded once until next fit."""
        cache = self._enc_cache[k]
        missing = [key for key in keys if key not in cache]
        if missing:
            graphs = [self.featurizer.slab_graph(slabs_by_key[key]) for key in missing]
            enc = encode_slabs_chunked(
                self.members[k], graphs, self.device, self.config.chunk_slabs
            )
            cache.update(zip(missing, split_encoding(enc), strict=True))
        return cat_encodings([cache[key] for key in keys])

    def clear_caches(self, features: bool = True) -> None:
        """Forget cached slab encodings (and, with ``features``, graphs and descriptors)."""
        self._enc_cache = [{} for _ in self.members]
        if features:
            self.featurizer.clear()

    def _require_fitted(self) -> None:
        if not self.members:
            raise SurrogateError("the ensemble is not fitted: call fit() or from_bytes() first")

    @torch.inference_mode()
    def predict(
        self,
        slabs: Sequence[Atoms],
        smiles: Sequence[str],
        pair_index: Tensor | None = None,
        *,
        with_site_scores: bool = False,
        with_embeddings: bool = False,
        reuse_slab_encodings: bool = True,
        fidelity: int | Tensor = TARGET_FIDELITY,
        low_fidelity_ev: Tensor | None = None,
    ) -> Prediction:
        """Predict GMAE for pairs of ``slabs`` and ``smiles`` (at the target fidelity unless
        ``fidelity`` says otherwise).

        Args:
            slabs: `S` clean slabs (duplicates by content are encoded once).
            smiles: `A` adsorbate SMILES.
            pair_index: `P x 2` long, column 0 indexes ``slabs``, column 1 ``smiles``; None
                scores the full grid, slab-major (`P = S * A`, pair ``s * A + a``).
            with_site_scores / with_embeddings: also return those (memory `P x N_max`,
                `P x 2H`).
            reuse_slab_encodings: False re-encodes the slab for every pair (the naive path,
                only for measuring what the cache saves).
            fidelity: the fidelity to predict, one for all pairs or a `P` long tensor (used by
                ``token`` and ``delta`` models; 0 is the target).
            low_fidelity_ev: `P` float, each pair's low-fidelity label in eV, NaN where it has
                none (used by ``delta`` models for target predictions; None: none known).
        """
        self._require_fitted()
        pair_index = check_pair_index(len(slabs), len(smiles), pair_index)
        n_pairs = pair_index.shape[0]
        fid_all = torch.as_tensor(fidelity, dtype=torch.long).expand(n_pairs)
        low_all = (
            torch.full((n_pairs,), torch.nan, dtype=torch.float64)
            if low_fidelity_ev is None
            else torch.as_tensor(low_fidelity_ev, dtype=torch.float64).reshape(n_pairs)
        )
        keys, slab_pos, smi_keys, smi_pos = self._index(slabs, smiles)
        first = dict(zip(reversed(slab_pos), reversed(range(len(slabs))), strict=True))
        slabs_by_key = {k: slabs[first[i]] for i, k in enumerate(keys)}
        s_idx = torch.tensor(slab_pos, dtype=torch.long)[pair_index[:, 0]].to(self.device)
        a_idx = torch.tensor(smi_pos, dtype=torch.long)[pair_index[:, 1]].to(self.device)
        desc = self.desc_norm(self._transform(self.featurizer.descriptors(smi_keys)))
        desc = desc.to(device=self.device, dtype=self.dtype)
        member_std, site_sum, emb_sum = [], None, None
        # each member's prior mean (eV): its network predicts the residual over it, and a
        # delta head reads the low-fidelity label as a residual over the same prior
        priors = self._prior_means(keys, s_idx, smi_keys, desc, a_idx)
        for k, model in enumerate(self.members):
            fid_t, low_t = self._fidelity_inputs(fid_all, low_all - priors[k])
            model.eval()
            if reuse_slab_encodings:
                out = predict_member(
                    model,
                    self._encode(k, keys, slabs_by_key),
                    desc,
                    s_idx,
                    a_idx,
                    self.config.chunk_pairs,
                    with_site_scores,
                    with_embeddings,
                    fid_t,
                    low_t,
                )
                pred, sites, emb = out
            else:
                graphs = [self.featurizer.slab_graph(slabs_by_key[key]) for key in keys]
                pred, sites, emb = predict_member_uncached(
                    model,
                    graphs,
                    desc,
                    s_idx,
                    a_idx,
                    self.config.chunk_pairs,
                    with_site_scores,
                    with_embeddings,
                )
            member_std.append(pred.double().cpu())
            if sites is not None:
                site_sum = sites.double().cpu() if site_sum is None else site_sum + sites.cpu()
            if emb is not None:
                emb_sum = emb.double().cpu() if emb_sum is None else emb_sum + emb.cpu()
        member_ev = self.y_norm.inverse(torch.stack(member_std).unsqueeze(-1)).squeeze(-1)
        member_ev = member_ev + priors
        n_k = len(self.members)
        std = member_ev.std(dim=0) if n_k > 1 else torch.zeros(member_ev.shape[1])
        n_atoms = torch.tensor([len(slabs_by_key[key]) for key in keys])[s_idx.cpu()]
        return Prediction(
            mean_ev=member_ev.mean(dim=0),
            std_ev=calibrated_std(std, self.std_scale, self.std_floor_ev),
            member_ev=member_ev,
            n_atoms=n_atoms,
            site_scores=None if site_sum is None else (site_sum / n_k).float(),
            embeddings=None if emb_sum is None else (emb_sum / n_k).float(),
        )

    def _prior_means(
        self, keys: list[str], s_idx: Tensor, smiles: list[str], desc: Tensor, a_idx: Tensor
    ) -> Tensor:
        """`K x P` prior means (eV, float64, CPU); zeros without a prior."""
        if not self.priors:
            return torch.zeros(len(self.members), s_idx.shape[0], dtype=torch.float64)
        s_cpu, a_cpu, d_cpu = s_idx.cpu(), a_idx.cpu(), desc.cpu()
        return torch.stack([p.predict(keys, s_cpu, smiles, d_cpu, a_cpu) for p in self.priors])

    def predict_samples(self, samples: Sequence[SurrogateSample], **kwargs: bool) -> Prediction:
        """Predict the pairs of ``samples`` (their ``gmae_ev`` is ignored), in order."""
        idx = torch.arange(len(samples))
        return self.predict(
            [s.slab for s in samples],
            [s.smiles for s in samples],
            torch.stack([idx, idx], dim=1),
            fidelity=torch.tensor([s.fidelity for s in samples], dtype=torch.long),
            low_fidelity_ev=torch.tensor([_low_or_nan(s) for s in samples], dtype=torch.float64),
            **kwargs,
        )

    def posterior(
        self, slabs: Sequence[Atoms], smiles: Sequence[str], pair_index: Tensor | None = None
    ) -> EnsemblePosterior:
        """Joint BoTorch ``EnsemblePosterior`` over `P` pairs (see `pool_posterior`)."""
        return self.pool_posterior(self.predict(slabs, smiles, pair_index))

    def pool_posterior(self, pred: Prediction) -> EnsemblePosterior:
        """The one way from a prediction to an acquisition model: a joint BoTorch
        ``EnsemblePosterior`` over the `P` predicted pairs, values `K x P x 1` (eV).

        The member spread around the mean is stretched pair by pair to the calibrated σ, so
        the posterior's mean equals ``pred.mean_ev`` and its std ``pred.std_ev``.
        """
        mean = pred.mean_ev.unsqueeze(0)
        raw = pred.member_ev.std(dim=0) if pred.member_ev.shape[0] > 1 else None
        if raw is None:
            factor = torch.full_like(pred.mean_ev, self.std_scale)
        else:
            factor = torch.where(raw > 0, pred.std_ev / raw.clamp_min(1e-12), self.std_scale)
        values = mean + factor.unsqueeze(0) * (pred.member_ev - mean)  # K x P
        return EnsemblePosterior(values.unsqueeze(-1))

    def site_scores(
        self, slabs: Sequence[Atoms], smiles: Sequence[str], pair_index: Tensor | None = None
    ) -> list[Tensor]:
        """Per-pair cross-attention over slab atoms: `P` tensors of `n_atoms` (each sums to 1)."""
        pred = self.predict(slabs, smiles, pair_index, with_site_scores=True)
        assert pred.site_scores is not None  # requested above
        return [pred.site_scores[p, : int(n)] for p, n in enumerate(pred.n_atoms)]

    # ---------------------------------------------------------------------- checkpoints
    def to_bytes(self) -> bytes:
        """Checkpoint: weights, config, normalisers, calibration, featuriser version."""
        self._require_fitted()
        return save_checkpoint(
            CheckpointState(
                config=self.config,
                seed=self.seed,
                featurizer_version=self.config.featurizer.version,
                descriptor_dim=self.featurizer.descriptor_dim,
                std_scale=self.std_scale,
                std_floor_ev=self.std_floor_ev,
                priors=tuple(p.to_state() for p in self.priors),
                desc_mean=self.desc_norm.mean,
                desc_std=self.desc_norm.std,
                y_mean=self.y_norm.mean,
                y_std=self.y_norm.std,
                members=tuple(m.state_dict() for m in self.members),
            )
        )

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        device: str | None = None,
        featurizer: Featurizer | None = None,
        dtype: str | None = None,
    ) -> AdsMTEnsemble:
        """Load a checkpoint (``torch.load(weights_only=True)``).

        ``device`` (None = CUDA when available) and ``dtype`` (``"float32"``/``"float64"``,
        None = as saved) override the saved settings.

        Raises:
            CheckpointError: unreadable, or written by an incompatible featuriser.
        """
        ckpt = load_checkpoint(data)
        config = ckpt.config
        # The saving machine's device may not exist here: choose afresh.
        config = replace(config, device=device, dtype=dtype or config.dtype)
        ens = cls(config, seed=ckpt.seed, featurizer=featurizer)
        ens._load_normalisers(ckpt)
        ens.std_scale = ckpt.std_scale
        ens.std_floor_ev = ckpt.std_floor_ev
        ens.priors = [ScalingPrior.from_state(p) for p in ckpt.priors]
        for k, state in enumerate(ckpt.members):
            model = ens._new_member(ens._member_seed(k))
            model.load_state_dict(state)
            model.eval()
            ens.members.append(model)
        ens._enc_cache = [{} for _ in ens.members]
        return ens
