"""Training of one AdsMT member: L1 on standardised targets (plus, optionally, a site loss on
the cross-attention, :mod:`alloop.surrogate.site_loss`), AdamW, plateau schedule,
best-validation checkpoint and early stopping, with explicit seeds."""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from alloop.surrogate.defaults import SURROGATE_DEFAULTS
from alloop.surrogate.errors import TrainingError
from alloop.surrogate.inference import collate_slabs, encode_slabs_chunked, predict_member
from alloop.surrogate.model import AdsMT
from alloop.surrogate.site_loss import SITE_LOSSES, site_loss

__all__ = ["MemberReport", "PairIndex", "TrainConfig", "train_member"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of every member.

    ``min_steps_per_epoch``: the mini-batch shrinks below ``batch_size`` so that an epoch takes
    at least this many optimiser steps (with 40 labels and batch 256 an epoch is one step, and
    60 epochs are 60 steps: too few to learn anything).

    ``site_loss``: an auxiliary loss on the cross-attention (``SITE_LOSSES``; ``none``: GMAE
    alone), weighted by ``site_loss_weight`` against the L1 on standardised GMAE; it needs
    pairs with binding atoms (`SurrogateSample.binding_atoms`) and ignores the others.

    ``encode_all_slabs_below``: when the training set has at most this many distinct slabs, each
    step encodes all of them in one pre-collated batch (cheap for the 14 FG slabs); above it,
    only the slabs of the mini-batch are collated and encoded.
    """

    max_epochs: int = SURROGATE_DEFAULTS.max_epochs
    batch_size: int = SURROGATE_DEFAULTS.batch_size
    learning_rate: float = SURROGATE_DEFAULTS.learning_rate
    weight_decay: float = 1e-4
    lr_factor: float = 0.5
    lr_patience: int = 10
    min_lr: float = 1e-5
    early_stop_patience: int = SURROGATE_DEFAULTS.early_stop_patience
    grad_clip: float = 5.0
    encode_all_slabs_below: int = 64
    min_steps_per_epoch: int = SURROGATE_DEFAULTS.min_steps_per_epoch
    site_loss: str = SURROGATE_DEFAULTS.site_loss
    site_loss_weight: float = SURROGATE_DEFAULTS.site_loss_weight

    def __post_init__(self) -> None:
        if self.site_loss not in SITE_LOSSES:
            raise TrainingError(
                f"site_loss {self.site_loss!r} is unknown; valid: {', '.join(SITE_LOSSES)}"
            )
        if not (math.isfinite(self.site_loss_weight) and self.site_loss_weight >= 0):
            raise TrainingError(f"site_loss_weight must be >= 0, got {self.site_loss_weight}")
        if self.max_epochs < 1 or self.batch_size < 1:
            raise TrainingError(
                f"max_epochs and batch_size must be >= 1, got {self.max_epochs}, {self.batch_size}"
            )
        if self.min_steps_per_epoch < 1:
            raise TrainingError(f"min_steps_per_epoch must be >= 1, got {self.min_steps_per_epoch}")
        if not self.learning_rate > 0:
            raise TrainingError(f"learning_rate must be > 0, got {self.learning_rate}")

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class PairIndex:
    """`P` pairs as indices into a slab list and a descriptor matrix, with optional targets."""

    slab_idx: Tensor  # P long
    ads_idx: Tensor  # P long
    y: Tensor | None = None  # P standardised targets
    fidelity: Tensor | None = None  # P long fidelity index (0 = target), None: all target
    low_fidelity: Tensor | None = None  # P standardised low-fidelity label, NaN where none
    site_target: Tensor | None = None  # P x N_max bool binding atoms (site_loss.site_targets)

    def subset(self, idx: Tensor) -> PairIndex:
        """The pairs at positions ``idx``."""

        def pick(t: Tensor | None) -> Tensor | None:
            return None if t is None else t[idx]

        return PairIndex(
            self.slab_idx[idx], self.ads_idx[idx], pick(self.y), pick(self.fidelity),
            pick(self.low_fidelity), pick(self.site_target),
        )  # fmt: skip

    def __len__(self) -> int:
        return int(self.slab_idx.shape[0])


@dataclass(frozen=True)
class MemberReport:
    seed: int
    best_epoch: int
    epochs_run: int
    best_val_l1_std: float
    train_seconds: float
    seconds_per_epoch: float


def _val_l1(
    model: AdsMT,
    graphs: Sequence[Data],
    desc: Tensor,
    val: PairIndex,
    y: Tensor,
    device: torch.device,
    full_batch: Batch | None = None,
) -> float:
    model.eval()
    with torch.no_grad():
        if full_batch is not None:  # every slab in one batch, edge terms attached
            enc = model.encode_slabs(full_batch)
        else:
            enc = encode_slabs_chunked(model, graphs, device)
        pred = predict_member(
            model, enc, desc, val.slab_idx, val.ads_idx,
            fidelity=val.fidelity, low_fidelity=val.low_fidelity,
        ).prediction  # fmt: skip
    return float((pred - y.to(pred.dtype)).abs().mean())


def train_member(
    model: AdsMT,
    graphs: Sequence[Data],
    descriptors: Tensor,
    train: PairIndex,
    val: PairIndex,
    config: TrainConfig,
    seed: int,
    device: torch.device,
) -> MemberReport:
    """Train ``model`` in place and leave it holding its best-validation weights.

    Args:
        graphs: slab graphs that ``slab_idx`` points into.
        descriptors: `A x D` standardised descriptors on ``device`` in the model's dtype.
        train, val: pairs with standardised targets on ``device``.
        seed: drives shuffling (a ``torch.Generator``) and dropout (a forked RNG state that
            does not leak into the caller's global state).

    Raises:
        TrainingError: empty split, missing targets, or a non-finite loss.
    """
    if len(train) == 0 or len(val) == 0 or train.y is None or val.y is None:
        raise TrainingError(
            f"need non-empty train and val splits with targets, got {len(train)} train, "
            f"{len(val)} val pairs"
        )
    dtype = next(model.parameters()).dtype
    y_train = train.y.to(dtype)
    gen = torch.Generator().manual_seed(seed)
    # fused: one kernel for all parameters instead of a Python loop over ~100 tensors per step
    # (4 % of a 2,000-label round on CPU)
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=device.type in ("cpu", "cuda"),
    )
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=config.lr_factor, patience=config.lr_patience, min_lr=config.min_lr
    )
    batch_size = min(config.batch_size, max(1, math.ceil(len(train) / config.min_steps_per_epoch)))
    encode_all = len(graphs) <= config.encode_all_slabs_below
    supervised = config.site_loss != "none" and config.site_loss_weight > 0
    full_batch = None
    if encode_all:  # the geometry's edge terms are computed once, not every step
        full_batch = model.graph_encoder.attach_edge_terms(collate_slabs(graphs, device))
    # epoch 0 competes too: a member that starts from a prior mean may do best untouched
    best = (
        _val_l1(model, graphs, descriptors, val, val.y, device, full_batch),
        0,
        copy.deepcopy(model.state_dict()),
    )
    start, epoch = time.perf_counter(), 0
    devices: list[int] = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)
        for epoch in range(1, config.max_epochs + 1):
            model.train()
            order = torch.randperm(len(train), generator=gen).to(device)
            for i in range(0, len(train), batch_size):
                idx = order[i : i + batch_size]
                part = train.subset(idx)
                s_idx, a_idx = part.slab_idx, part.ads_idx
                if full_batch is not None:
                    batch = full_batch
                else:
                    uniq, s_idx = torch.unique(s_idx, return_inverse=True)
                    batch = collate_slabs([graphs[int(u)] for u in uniq], device)
                local = torch.arange(len(idx), device=device)
                out = model(
                    batch, descriptors[a_idx], s_idx, local, part.fidelity, part.low_fidelity
                )
                loss = (out.prediction - y_train[idx]).abs().mean()
                if supervised and part.site_target is not None:
                    sites = site_loss(config.site_loss, out.site_weights, part.site_target)
                    loss = loss + config.site_loss_weight * sites
                if not torch.isfinite(loss):
                    raise TrainingError(f"non-finite training loss {float(loss)} at epoch {epoch}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                opt.step()
            val_l1 = _val_l1(model, graphs, descriptors, val, val.y, device, full_batch)
            sched.step(val_l1)
            logger.debug(
                "seed=%d epoch %d: val L1 %.4f (std units), lr %.2g",
                seed,
                epoch,
                val_l1,
                opt.param_groups[0]["lr"],
            )
            if val_l1 < best[0]:
                best = (val_l1, epoch, copy.deepcopy(model.state_dict()))
            elif epoch - best[1] >= config.early_stop_patience:
                break
    model.load_state_dict(best[2])
    model.eval()
    wall_s = time.perf_counter() - start
    logger.info(
        "member seed=%d: best val L1 %.4f (std units) at epoch %d of %d, %.1f s",
        seed,
        best[0],
        best[1],
        epoch,
        wall_s,
    )
    return MemberReport(seed, best[1], epoch, best[0], wall_s, wall_s / max(epoch, 1))
