"""Losses for monocular depth (endoscopy) and segmentation.

Depth losses take predicted and target depth as (B, 1, H, W) positive tensors (any consistent unit) and a
boolean ``valid`` mask of the same shape (target depth 0 = no surface is never valid). Each is a pure
function returning a scalar (mean over the images of the batch); :class:`DepthLoss` is a thin weighted
sum of them. Images with no valid pixel contribute 0.

- :func:`l1_depth_loss`: mean absolute error on valid pixels (pass depth / scale for a unitless value).
- :func:`log_l1_loss`: mean ``|log pred - log target|``, to first order the relative error ``|p - t| / t``
  (abs_rel) that depth is judged by; metric like L1, but a far pixel weighs no more than a near one.
- :func:`silog_loss`: scale-invariant log error (Eigen et al. 2014), per image
  ``mean(d^2) - lam * mean(d)^2`` with ``d = log pred - log target``; ``lam = 1`` makes it blind to a
  global scale of the prediction (monocular depth has no absolute scale), ``lam = 0`` is plain log-MSE.
  The squared form is used rather than its square root because the root has an infinite gradient at 0.
- :func:`gradient_matching_loss`: multi-scale gradient of the log-depth residual (Li & Snavely 2018,
  MiDaS), which sharpens depth edges and is also scale invariant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from simreal.errors import SimrealError
from simreal.tasks.config import LossConfig

_EPS = 1e-6


def _check(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if pred.ndim != 4 or pred.shape[1] != 1:
        raise SimrealError(f"depth prediction must be (B, 1, H, W), got {tuple(pred.shape)}")
    if target.shape != pred.shape:
        raise SimrealError(f"depth target shape {tuple(target.shape)} does not match prediction {tuple(pred.shape)}")
    if valid is None:
        return target > 0
    if valid.shape != pred.shape:
        raise SimrealError(f"valid mask shape {tuple(valid.shape)} does not match prediction {tuple(pred.shape)}")
    return valid.bool() & (target > 0)


def _per_image_mean(x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``x`` over each image's valid pixels -> ((B,), (B,) count)."""
    w = valid.float()
    n = w.flatten(1).sum(1)
    return (x * w).flatten(1).sum(1) / n.clamp(min=1), n


def l1_depth_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean |pred - target| over valid pixels, averaged over images. Units of the inputs."""
    valid = _check(pred, target, valid)
    per_image, _ = _per_image_mean((pred - target).abs(), valid)
    return per_image.mean()


def log_l1_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ``|log pred - log target|`` over valid pixels, averaged over images (unitless)."""
    valid = _check(pred, target, valid)
    d = torch.where(valid, torch.log(pred.clamp(min=_EPS)) - torch.log(target.clamp(min=_EPS)), 0.0)
    per_image, _ = _per_image_mean(d.abs(), valid)
    return per_image.mean()


def silog_loss(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, lam: float = 0.85
) -> torch.Tensor:
    """Scale-invariant log error ``mean(d^2) - lam mean(d)^2``, ``d = log pred - log target`` (per image).

    Args:
        pred, target: (B, 1, H, W) positive depth (pred is clamped to 1e-6 before the log).
        valid: (B, 1, H, W) bool, or None for ``target > 0``.
        lam: 0 = log-MSE, 1 = fully invariant to a global scale of ``pred``.
    """
    if not 0.0 <= lam <= 1.0:
        raise SimrealError(f"SILog lambda must be in [0, 1], got {lam}")
    valid = _check(pred, target, valid)
    d = torch.where(valid, torch.log(pred.clamp(min=_EPS)) - torch.log(target.clamp(min=_EPS)), 0.0)
    mean_d2, _ = _per_image_mean(d * d, valid)
    mean_d, _ = _per_image_mean(d, valid)
    # mean(d^2) >= mean(d)^2 always; clamp only absorbs rounding.
    return (mean_d2 - lam * mean_d * mean_d).clamp(min=0).mean()


def gradient_matching_loss(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, scales: int = 4
) -> torch.Tensor:
    """Multi-scale gradient matching on the log-depth residual ``r = log pred - log target``.

    At each scale s (image subsampled by 2^s) the loss is the mean of ``|dr/dx| + |dr/dy|`` over pixel
    pairs whose two ends are both valid; scales are averaged. Zero when pred = c * target.
    """
    if scales < 1:
        raise SimrealError(f"gradient matching needs scales >= 1, got {scales}")
    valid = _check(pred, target, valid)
    r = torch.where(valid, torch.log(pred.clamp(min=_EPS)) - torch.log(target.clamp(min=_EPS)), 0.0)
    m = valid.float()
    total = pred.new_zeros(())
    used = 0
    for s in range(scales):
        step = 2**s
        rs, ms = r[..., ::step, ::step], m[..., ::step, ::step]
        if rs.shape[-1] < 2 and rs.shape[-2] < 2:
            break
        gx = (rs[..., :, 1:] - rs[..., :, :-1]).abs() * ms[..., :, 1:] * ms[..., :, :-1]
        gy = (rs[..., 1:, :] - rs[..., :-1, :]).abs() * ms[..., 1:, :] * ms[..., :-1, :]
        n = (ms[..., :, 1:] * ms[..., :, :-1]).flatten(1).sum(1) + (ms[..., 1:, :] * ms[..., :-1, :]).flatten(1).sum(1)
        per_image = (gx.flatten(1).sum(1) + gy.flatten(1).sum(1)) / n.clamp(min=1)
        total = total + per_image.mean()
        used += 1
    return total / max(used, 1)


class DepthLoss(nn.Module):
    """Weighted sum ``w_l1 L1(pred/scale, target/scale) + w_logl1 LogL1 + w_silog SILog + w_grad GradMatch``.

    Args (defaults: :class:`~simreal.tasks.config.LossConfig`'s):
        l1_weight, log_l1_weight, silog_weight, grad_weight: term weights (0 disables a term).
        silog_lambda: SILog's lambda.
        grad_scales: number of scales of the gradient term.
        scale_mm: depth divided by this before L1, so L1 is unitless and comparable across datasets.

    ``forward`` returns (total, dict of the terms) for logging.
    """

    def __init__(
        self,
        *,
        l1_weight: float = LossConfig.l1_weight,
        silog_weight: float = LossConfig.silog_weight,
        grad_weight: float = LossConfig.grad_weight,
        log_l1_weight: float = LossConfig.log_l1_weight,
        silog_lambda: float = LossConfig.silog_lambda,
        grad_scales: int = LossConfig.grad_scales,
        scale_mm: float = 1.0,
    ):
        super().__init__()
        weights = {"l1": l1_weight, "log_l1": log_l1_weight, "silog": silog_weight, "grad": grad_weight}
        if min(weights.values()) < 0 or sum(weights.values()) <= 0:
            raise SimrealError("depth loss weights must be >= 0 and not all 0")
        if scale_mm <= 0:
            raise SimrealError(f"depth scale must be positive, got {scale_mm}")
        self.weights = weights
        self.silog_lambda = silog_lambda
        self.grad_scales = grad_scales
        self.scale_mm = scale_mm

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms: dict[str, torch.Tensor] = {}
        if self.weights["l1"] > 0:
            terms["l1"] = l1_depth_loss(pred / self.scale_mm, target / self.scale_mm, valid)
        if self.weights["log_l1"] > 0:
            terms["log_l1"] = log_l1_loss(pred, target, valid)
        if self.weights["silog"] > 0:
            terms["silog"] = silog_loss(pred, target, valid, lam=self.silog_lambda)
        if self.weights["grad"] > 0:
            terms["grad"] = gradient_matching_loss(pred, target, valid, scales=self.grad_scales)
        total = sum(self.weights[k] * v for k, v in terms.items())
        return total, terms


class SegLoss(nn.Module):
    """Dice + cross-entropy on logits (MONAI ``DiceCELoss``, softmax, one-hot targets).

    Args:
        num_classes: number of classes C (class 0 = background).
        dice_weight, ce_weight: term weights.
        include_background: whether the Dice term averages over class 0 too.

    Shapes: logits (B, C, H, W) float, target (B, H, W) int64 class ids in [0, C).
    """

    def __init__(
        self, *, num_classes: int, dice_weight: float = 1.0, ce_weight: float = 1.0, include_background: bool = False
    ):
        super().__init__()
        from monai.losses import DiceCELoss

        if num_classes < 2:
            raise SimrealError(f"segmentation needs at least 2 classes, got {num_classes}")
        self.num_classes = num_classes
        self.loss = DiceCELoss(
            include_background=include_background or num_classes == 1, to_onehot_y=True, softmax=True,
            lambda_dice=dice_weight, lambda_ce=ce_weight,
        )

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 4 or logits.shape[1] != self.num_classes:
            raise SimrealError(f"logits must be (B, {self.num_classes}, H, W), got {tuple(logits.shape)}")
        if target.shape != (logits.shape[0], *logits.shape[2:]):
            raise SimrealError(f"target must be (B, H, W) = {(logits.shape[0], *logits.shape[2:])}, got {tuple(target.shape)}")
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= self.num_classes):
            raise SimrealError(f"target holds class ids outside [0, {self.num_classes})")
        return self.loss(logits, target[:, None].long())


def seg_logits_to_labels(logits: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) logits -> (B, H, W) int64 class ids."""
    return logits.argmax(dim=1)


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, C, h, w) logits to (B, C, H, W) (argmax after this, never before)."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
