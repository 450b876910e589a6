"""Lightning modules for the two tasks: a U-Net, its loss, validation metrics and sample images.

Depth: the network outputs ``log(depth_mm / depth_scale_mm)``; :meth:`DepthModule.predict_depth` returns
millimetres. ``depth_scale_mm`` (by default the median valid depth of the training set) is a plain Python
float, not a tensor buffer: Lightning casts every buffer to the run's precision (``bf16-true`` keeps ~3
significant digits), which would bias every predicted millimetre. It is saved in every checkpoint's
``checkpoint["simreal"]["config"]["model"]["depth_scale_mm"]`` and restored from there, so a prediction
needs nothing else. Predicting the log keeps
depth positive and makes the SILog / gradient terms act on the network's own output scale.

Segmentation: the network outputs (B, C, H, W) logits; class ids come from the argmax.

Every checkpoint carries ``checkpoint["simreal"] = {"task", "config"}`` so that a checkpoint of the
wrong task is refused by name (:func:`checkpoint_task`).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torchmetrics import MeanMetric

from simreal.data.images import write_png
from simreal.data.torch_dataset import Batch
from simreal.errors import SimrealError
from simreal.nets.unet import UNet
from simreal.tasks.config import TrainConfig
from simreal.tasks.losses import DepthLoss, SegLoss
from simreal.tasks.visual import sample_grid

# exp() of the raw output is clamped so that an untrained network cannot overflow float16/32.
_LOG_CLAMP = 12.0


def depth_metrics_per_image(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image depth figures over valid pixels (target > 0): the ones experiments report.

    Validation computes the figures that are reported, so that epochs, checkpoints and recipes can be
    chosen on validation and the test set is looked at once. The definitions follow
    :mod:`simreal.metrics.depth` (``simreal eval depth``, the reference for reported results): ``abs_rel``
    is ``mean(|p - t| / t)`` with no scaling (metric depth); ``abs_rel_median`` and ``delta1_median``
    first scale the prediction by ``median(t) / median(p)`` of that image (the usual protocol for
    monocular endoscopic depth). They differ from the reference only in running at the training size and
    in clamping the prediction at 1e-6 mm.

    Args:
        pred, target: (B, 1, H, W) depth in mm.

    Returns:
        abs_rel, abs_rel_median, delta1_median, rmse_mm: (B,) float32 each; NaN for an image with no
        valid pixel.
    """
    out: dict[str, list[torch.Tensor]] = {"abs_rel": [], "abs_rel_median": [], "delta1_median": [], "rmse_mm": []}
    nan = torch.tensor(float("nan"), device=pred.device)
    for p_img, t_img in zip(pred.float(), target.float()):
        valid = t_img > 0
        if not bool(valid.any()):
            for values in out.values():
                values.append(nan)
            continue
        p, t = p_img[valid].clamp(min=1e-6), t_img[valid]
        scaled = p * (t.median() / p.median())
        out["abs_rel"].append(((p - t).abs() / t).mean())
        out["abs_rel_median"].append(((scaled - t).abs() / t).mean())
        out["delta1_median"].append((torch.maximum(scaled / t, t / scaled) < 1.25).float().mean())
        out["rmse_mm"].append(((p - t) ** 2).mean().sqrt())
    return {k: torch.stack(v) for k, v in out.items()}


def dice_per_image(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, C-1) Dice of each foreground class in each image; NaN where the class is absent from the target.

    The reported segmentation figure is the mean Dice over the frames that show the class (e.g. "polyp
    Dice, frames with a polyp"), so validation scores exactly those pairs; a prediction of the class on
    a frame without it is not in this figure (it costs the loss, and ``simreal eval seg`` reports it).

    Args:
        pred, target: (B, H, W) class ids.
    """
    rows = []
    for c in range(1, num_classes):
        p, t = (pred == c).flatten(1), (target == c).flatten(1)
        inter = (p & t).sum(1).float()
        size_t = t.sum(1).float()
        dice = 2 * inter / (p.sum(1).float() + size_t).clamp(min=1)
        rows.append(torch.where(size_t > 0, dice, torch.full_like(dice, float("nan"))))
    return torch.stack(rows, dim=1)


def cosine_factor(step: int, total: int, min_ratio: float) -> float:
    """Learning-rate factor at ``step`` of ``total``: 1 at the start, ``min_ratio`` at the end."""
    progress = min(step, total) / total
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + float(np.cos(np.pi * progress)))


def flip_batch_(batch: Batch, generator: torch.Generator | None = None, *, total: int | None = None, offset: int = 0) -> None:
    """Flip each sample left-right and/or up-down (probability 1/2 each), image and labels together.

    Args:
        batch: flipped in place.
        generator: where the coin flips come from (training passes one seeded by seed, epoch and batch
            index, so a resumed run flips exactly as an uninterrupted one whatever else drew random numbers).
        total, offset: the batch is images ``offset ..`` of a global batch of ``total`` (one process's share
            in a multi-process run): the flips of the whole global batch are drawn and this share's are
            used, so every image flips as it would in one process. Default: the batch is the whole batch.
    """
    n = batch.image.shape[0]
    flips = (torch.rand(n if total is None else total, 2, generator=generator) < 0.5)[offset : offset + n]
    for i, (lr, ud) in enumerate(flips.tolist()):
        dims = [d for d, on in ((-1, lr), (-2, ud)) if on]
        if not dims:
            continue
        batch.image[i] = batch.image[i].flip(dims)
        if batch.depth is not None:
            batch.depth[i] = batch.depth[i].flip(dims)
        if batch.mask is not None:
            batch.mask[i] = batch.mask[i].flip(dims)


class TaskModule(L.LightningModule):
    """Shared parts: the U-Net, the optimiser, checkpoint tags and validation sample images."""

    task = ""

    def __init__(self, config: TrainConfig, out_channels: int):
        super().__init__()
        self.config = config
        m = config.model
        self.net = UNet(out_channels=out_channels, channels=m.channels, norm=m.norm, act=m.act, dropout=m.dropout)
        self._samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def configure_optimizers(self) -> Any:
        o = self.config.optim
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        if o.schedule == "constant":
            return optimizer
        total = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_factor(step, total, o.min_lr_ratio))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        if self.config.data.augment:
            key = np.random.SeedSequence([self.config.seed, self.current_epoch, batch_idx]).generate_state(1)[0]
            n, world = batch.image.shape[0], self.trainer.world_size
            flip_batch_(batch, torch.Generator().manual_seed(int(key)), total=n * world, offset=self.global_rank * n)

    def transfer_batch_to_device(self, batch: Batch, device: torch.device, dataloader_idx: int) -> Batch:
        # Lightning's generic collection walker cannot rebuild the frozen Camera dataclasses; a Batch
        # moves itself.
        return batch.to(device)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["simreal"] = {"task": self.task, "config": self.config.to_dict()}

    def on_validation_epoch_start(self) -> None:
        self._samples = []

    def _keep_samples(self, batch: Batch, target: torch.Tensor, pred: torch.Tensor) -> None:
        room = self.config.n_sample_images - sum(len(s[0]) for s in self._samples)
        if room > 0:
            k = slice(0, room)
            self._samples.append(
                (batch.image[k].float().cpu().numpy(), target[k].float().cpu().numpy(), pred[k].float().cpu().numpy())
            )

    def on_validation_epoch_end(self) -> None:
        if not self._samples or self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        images, targets, preds = (np.concatenate(x) for x in zip(*self._samples))
        grid = sample_grid(images, targets, preds, self.task)
        write_png(Path(self.config.out) / "samples" / f"val_epoch{self.current_epoch:04d}.png", grid)


class DepthModule(TaskModule):
    """Monocular depth in mm: U-Net -> log(depth / scale)."""

    task = "depth"

    def __init__(self, config: TrainConfig, depth_scale_mm: float | None = None):
        super().__init__(config, out_channels=1)
        scale = depth_scale_mm if depth_scale_mm is not None else config.model.depth_scale_mm
        if scale is None or not scale > 0:
            raise SimrealError(f"depth module needs a positive depth scale in mm, got {scale}")
        # A Python float, not a buffer: it must not follow the module's dtype (see the module docstring).
        self.depth_scale_mm = float(scale)
        lo = config.loss
        self.loss_fn = DepthLoss(
            l1_weight=lo.l1_weight, log_l1_weight=lo.log_l1_weight, silog_weight=lo.silog_weight, grad_weight=lo.grad_weight,
            silog_lambda=lo.silog_lambda, grad_scales=lo.grad_scales, scale_mm=float(scale),
        )
        self.val_figures = torch.nn.ModuleDict(
            {k: MeanMetric() for k in ("abs_rel", "abs_rel_median", "delta1_median", "rmse_mm")}
        )

    def predict_depth(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 1, H, W) depth in mm (float32)."""
        raw = self.net(image).float().clamp(-_LOG_CLAMP, _LOG_CLAMP)
        return torch.exp(raw) * self.depth_scale_mm

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The weights belong to the scale they were trained with: take it from the checkpoint's config.
        scale = checkpoint.get("simreal", {}).get("config", {}).get("model", {}).get("depth_scale_mm")
        if scale is not None:
            self.depth_scale_mm = float(scale)
            self.loss_fn.scale_mm = float(scale)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        # Checkpoints written before the scale left the state dict hold it as a buffer; the config has it.
        if "depth_scale_mm" in state_dict:
            meta = getattr(state_dict, "_metadata", None)
            state_dict = OrderedDict((k, v) for k, v in state_dict.items() if k != "depth_scale_mm")
            if meta is not None:
                state_dict._metadata = meta  # type: ignore[attr-defined]  # per-module versions
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _step(self, batch: Batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        if batch.depth is None:
            raise SimrealError("depth training needs batches with depth")
        pred = self.predict_depth(batch.image)
        loss, terms = self.loss_fn(pred, batch.depth)
        on_step = stage == "train"
        bs = batch.image.shape[0]
        # sync_dist: batch-size-weighted means over all processes (a no-op with one process)
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True)
        for k, v in terms.items():
            self.log(f"{stage}/{k}", v, on_step=False, on_epoch=True, batch_size=bs, sync_dist=True)
        return loss, pred

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        _, pred = self._step(batch, "val")
        for k, v in depth_metrics_per_image(pred, batch.depth).items():
            v = v[~v.isnan()]
            if v.numel():
                self.val_figures[k].update(v)
        self._keep_samples(batch, batch.depth[:, 0], pred[:, 0])

    def on_validation_epoch_end(self) -> None:
        # Means over validation IMAGES (not over batches); MeanMetric also reduces across processes, so with
        # several every process computes (a collective), and a figure no image had (NaN) is not logged.
        for k, metric in self.val_figures.items():
            if metric.update_count or self.trainer.world_size > 1:
                value = metric.compute()
                if not bool(value.isnan()):
                    self.log(f"val/{k}", value, prog_bar=k == "abs_rel_median", sync_dist=True)
            metric.reset()
        super().on_validation_epoch_end()


class SegModule(TaskModule):
    """Semantic segmentation: U-Net -> (B, C, H, W) logits."""

    task = "seg"

    def __init__(self, config: TrainConfig):
        num_classes = config.model.num_classes
        if num_classes is None:
            raise SimrealError("segmentation module needs num_classes (resolved from the training set)")
        super().__init__(config, out_channels=num_classes)
        self.num_classes = num_classes
        self.loss_fn = SegLoss(num_classes=num_classes, dice_weight=config.loss.dice_weight, ce_weight=config.loss.ce_weight)
        self.val_dice = MeanMetric()

    def predict_logits(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image).float()

    def _step(self, batch: Batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        if batch.mask is None:
            raise SimrealError("segmentation training needs batches with masks")
        logits = self.predict_logits(batch.image)
        loss = self.loss_fn(logits, batch.mask)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=batch.image.shape[0],
                 sync_dist=True)
        return loss, logits

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        _, logits = self._step(batch, "val")
        labels = logits.argmax(1)
        dice = dice_per_image(labels, batch.mask, self.num_classes)
        present = dice[~dice.isnan()]
        if present.numel():
            self.val_dice.update(present)
        self._keep_samples(batch, batch.mask, labels)

    def on_validation_epoch_end(self) -> None:
        # Mean over (frame, class) pairs whose frame shows the class; NaN when no validation frame does.
        several = self.trainer.world_size > 1  # then compute() is a collective every process joins
        value = self.val_dice.compute() if self.val_dice.update_count or several else torch.tensor(float("nan"))
        self.log("val/dice", value, prog_bar=True, sync_dist=True)
        self.val_dice.reset()
        super().on_validation_epoch_end()


def build_module(config: TrainConfig, depth_scale_mm: float | None = None) -> TaskModule:
    """The Lightning module for ``config.task``."""
    if config.task == "depth":
        return DepthModule(config, depth_scale_mm)
    return SegModule(config)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by a simreal run (CPU tensors); raise SimrealError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise SimrealError("checkpoint not found", path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise SimrealError(f"cannot read checkpoint ({exc.__class__.__name__}: {exc})", path) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "simreal" not in ckpt:
        raise SimrealError("not a simreal training checkpoint (no 'simreal' tag)", path)
    return ckpt


def checkpoint_task(ckpt: dict[str, Any]) -> str:
    return str(ckpt["simreal"]["task"])
