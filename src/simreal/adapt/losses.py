"""Adversarial and self-regularisation losses: pure functions, with thin modules around them.

Conventions:

* Images are (B, C, H, W) in [-1, 1]. Discriminator outputs are raw logits: a (B, 2, h, w) two-class map
  for the SimGAN local loss, (B, 1, h, w) maps (or lists of them, one per scale) for the others.
* Every loss is a **mean** (over locations, pixels and the batch), so its size does not depend on the
  image or batch size and its weight means the same thing at any resolution.

Self-regularisation (SimGAN, reverse DA): ``mean |psi(R(x)) - psi(x)|`` per pixel of ``psi``'s output,
with ``psi`` one of

* ``"identity"``: the image itself;
* ``"grayscale"``: the channel mean (keeps brightness structure, lets colour change freely);
* ``"lowpass"``: a Gaussian blur of ``sigma`` pixels (keeps coarse shading, lets texture and noise
  change).

**Weight convention.** Public SimGAN ports disagree on lambda by orders of magnitude because some sum the
L1 and some average it (methods.md 5.4): ``AlexHex7/SimGAN_pytorch`` uses ``L1Loss(size_average=False)``
(a sum over the batch) times ``delta = 1e-4``; ``daniel-merrick/...-SimGAN-PyTorch`` uses the default mean
times ``delta = 0.5``. Here lambda always multiplies the per-pixel mean; a sum-reduced weight converts as
``lambda = delta * n`` with ``n`` the number of summed elements (:func:`mean_weight_from_sum`): AlexHex7's
1e-4 over batches of 128 grey 35x55 images is ``1e-4 * 128 * 35 * 55 = 24.6``.

Example:
    >>> x = torch.zeros(2, 3, 8, 8)
    >>> float(self_regularisation_loss(x + 0.5, x))
    0.5
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from simreal.adapt.config import Psi
from simreal.errors import SimrealError
from simreal.nets.blocks import check_choice

GanMode = Literal["lsgan", "bce", "hinge"]

#: Class index of the target domain ("real" in the discriminator's sense) in the local two-class logits.
TARGET = 1
#: Class index of refined / generated images.
FAKE = 0


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise SimrealError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) images, ``sigma`` in pixels, reflect-padded borders.

    The kernel spans ``+-ceil(3 sigma)`` pixels (clipped to the image so reflect padding stays valid)
    and sums to 1, so constant images are unchanged.
    """
    if not sigma > 0:
        raise SimrealError(f"blur sigma must be > 0 pixels, got {sigma}")
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    if radius < 1:
        return x
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.pad(y, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def psi_transform(x: torch.Tensor, psi: Psi = "identity", sigma: float = 2.0) -> torch.Tensor:
    """The feature map ``psi(x)`` compared by the self-regularisation loss.

    Returns:
        (B, C, H, W) for "identity" and "lowpass", (B, 1, H, W) for "grayscale".
    """
    check_choice("psi", psi, Psi)
    if psi == "grayscale":
        return x.mean(dim=1, keepdim=True)
    if psi == "lowpass":
        return gaussian_blur(x, sigma)
    return x


def self_regularisation_loss(refined: torch.Tensor, source: torch.Tensor, psi: Psi = "identity", sigma: float = 2.0) -> torch.Tensor:
    """``mean |psi(refined) - psi(source)|``: the per-pixel mean L1 (a scalar).

    Args:
        refined: R(x), (B, C, H, W).
        source: x, same shape.
        psi: "identity", "grayscale" or "lowpass" (see the module docstring).
        sigma: Gaussian sigma in pixels for "lowpass".
    """
    _check_same_shape(refined, source, "self-regularisation")
    return (psi_transform(refined, psi, sigma) - psi_transform(source, psi, sigma)).abs().mean()


def mean_weight_from_sum(sum_weight: float, n_elements: int) -> float:
    """The per-pixel-mean weight equal to a sum-reduced one: ``sum_weight * n_elements``.

    Args:
        sum_weight: lambda of a loss written as ``sum_weight * sum |.|``.
        n_elements: how many elements that sum runs over (B*C*H*W for a batch sum, C*H*W per image).

    Example:
        >>> round(mean_weight_from_sum(1e-4, 128 * 1 * 35 * 55), 2)   # AlexHex7/SimGAN_pytorch
        24.64
    """
    if n_elements < 1:
        raise SimrealError(f"n_elements must be >= 1, got {n_elements}")
    return float(sum_weight) * int(n_elements)


def local_adversarial_loss(logits: torch.Tensor, target: int) -> torch.Tensor:
    """SimGAN's local adversarial loss: cross-entropy of every location's two-class logits against one
    class, averaged over locations and the batch.

    Args:
        logits: (B, 2, h, w) from :class:`~simreal.nets.discriminators.SimGANLocalDiscriminator`.
        target: :data:`TARGET` (1, the target domain) or :data:`FAKE` (0, refined).

    Note:
        The class axis is dim 1. One public port reshapes (B, 2, h, w) to (B * h * w, 2) with ``view``,
        which pairs unrelated locations' logits as the two classes; ``F.cross_entropy`` on the map
        does it right.
    """
    if logits.ndim != 4 or logits.shape[1] != 2:
        raise SimrealError(f"local adversarial loss needs (B, 2, h, w) logits, got shape {tuple(logits.shape)}")
    if target not in (FAKE, TARGET):
        raise SimrealError(f"target must be {FAKE} (fake) or {TARGET} (target domain), got {target}")
    labels = torch.full((logits.shape[0], *logits.shape[2:]), target, dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits.float(), labels)


def local_accuracy(logits: torch.Tensor, target: int) -> torch.Tensor:
    """Share of locations whose argmax is ``target`` (a diagnostic: 0.5 = the discriminator is fooled)."""
    return (logits.argmax(dim=1) == target).float().mean()


def gan_loss(pred: torch.Tensor | Sequence, target_is_real: bool, mode: GanMode = "lsgan", *, for_discriminator: bool = True) -> torch.Tensor:
    """Patch GAN loss of raw logits, averaged over locations (and over scales when given a list).

    Args:
        pred: (B, 1, h, w) logits, or a list of them (multi-scale D), or a list of feature lists whose
            last entry is the logits (``return_features=True``).
        target_is_real: the label the loss pushes towards.
        mode: "lsgan" (``(p - 1)^2`` / ``p^2``), "bce" (sigmoid cross-entropy), or "hinge"
            (discriminator: ``relu(1 - p)`` / ``relu(1 + p)``; generator: ``-p``).
        for_discriminator: only matters for "hinge", whose generator loss differs.
    """
    check_choice("mode", mode, GanMode)
    if isinstance(pred, (list, tuple)):
        if not pred:
            raise SimrealError("gan_loss got an empty list of predictions")
        parts = [gan_loss(p[-1] if isinstance(p, (list, tuple)) else p, target_is_real, mode,
                          for_discriminator=for_discriminator) for p in pred]
        return torch.stack(parts).mean()
    p = pred.float()
    if mode == "lsgan":
        return ((p - 1.0) ** 2).mean() if target_is_real else (p**2).mean()
    if mode == "bce":
        return F.binary_cross_entropy_with_logits(p, torch.full_like(p, 1.0 if target_is_real else 0.0))
    if not for_discriminator:
        if not target_is_real:
            raise SimrealError("the hinge generator loss is defined for target_is_real=True only")
        return -p.mean()
    return F.relu(1.0 - p).mean() if target_is_real else F.relu(1.0 + p).mean()


class SelfRegularisationLoss(nn.Module):
    """:func:`self_regularisation_loss` with ``psi`` and ``sigma`` fixed at construction."""

    def __init__(self, psi: Psi = "identity", sigma: float = 2.0):
        super().__init__()
        check_choice("psi", psi, Psi)
        if not sigma > 0:
            raise SimrealError(f"psi sigma must be > 0 pixels, got {sigma}")
        self.psi, self.sigma = psi, float(sigma)

    def forward(self, refined: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return self_regularisation_loss(refined, source, self.psi, self.sigma)


class GANLoss(nn.Module):
    """:func:`gan_loss` with the mode fixed at construction."""

    def __init__(self, mode: GanMode = "lsgan"):
        super().__init__()
        check_choice("mode", mode, GanMode)
        self.mode = mode

    def forward(self, pred: torch.Tensor | Sequence, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        return gan_loss(pred, target_is_real, self.mode, for_discriminator=for_discriminator)


# -- segmentation losses of the multi-task generator (UM-synthesis, methods.md 3.4) -------------------------


def _check_seg(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``mask`` as a float (B, H, W) weight map (ones when None); raises on shapes that do not match."""
    if logits.ndim != 4 or logits.shape[1] < 2:
        raise SimrealError(f"segmentation logits must be (B, C>=2, H, W), got shape {tuple(logits.shape)}")
    b, _, h, w = logits.shape
    if target.shape != (b, h, w) or target.dtype not in (torch.int64, torch.int32, torch.uint8):
        raise SimrealError(f"segmentation target must be (B, H, W) = {(b, h, w)} class ids, got {target.dtype} {tuple(target.shape)}")
    if mask is None:
        return torch.ones(b, h, w, device=logits.device, dtype=torch.float32)
    if mask.shape != (b, h, w):
        raise SimrealError(f"loss mask must be (B, H, W) = {(b, h, w)}, got shape {tuple(mask.shape)}")
    return mask.to(device=logits.device, dtype=torch.float32)


def _zero_like_graph(logits: torch.Tensor) -> torch.Tensor:
    """An exact +0 scalar on the logits' device that still backpropagates (zero gradients)."""
    return torch.zeros((), device=logits.device) + 0.0 * logits.float().sum()


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *, smooth: float = 0.0) -> torch.Tensor:
    """nnU-Net's soft Dice as SemiCS2 uses it: batch Dice, background included, ``1 - mean_c dc_c``.

    Per class c, over every pixel of the batch (``mask`` = 1): ``tp = sum p_c y_c``, ``fp = sum p_c (1 - y_c)``,
    ``fn = sum (1 - p_c) y_c`` with ``p = softmax(logits)`` and ``y`` the one-hot target, and
    ``dc_c = (2 tp + smooth) / (2 tp + fp + fn + smooth + 1e-8)``. nnU-Net's ``SoftDiceLoss`` returns
    ``-mean_c dc_c``; this returns ``1 - mean_c dc_c`` (same gradient, 0 at a perfect prediction).

    Args:
        logits: (B, C, H, W) raw scores.
        target: (B, H, W) class ids in 0..C-1.
        mask: optional (B, H, W) 0/1 map of the pixels that count (others are left out of every sum).
        smooth: nnU-Net's smoothing term (SemiCS2: 0).

    Returns:
        A scalar; 0 when ``mask`` holds no pixel.

    Example:
        >>> t = torch.tensor([[[0, 1]]])
        >>> float(soft_dice_loss(torch.tensor([[[[50.0, -50.0]], [[-50.0, 50.0]]]]), t)) < 1e-6
        True
    """
    m = _check_seg(logits, target, mask)
    if not bool(m.any()):
        return _zero_like_graph(logits)
    p = logits.float().softmax(dim=1)
    y = F.one_hot(target.long(), logits.shape[1]).permute(0, 3, 1, 2).float()
    m = m[:, None]
    dims = (0, 2, 3)
    tp = (p * y * m).sum(dims)
    fp = (p * (1 - y) * m).sum(dims)
    fn = ((1 - p) * y * m).sum(dims)
    dc = (2 * tp + smooth) / (2 * tp + fp + fn + smooth + 1e-8)
    return 1.0 - dc.mean()


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-wise cross-entropy averaged over the pixels where ``mask`` is 1 (all when None); 0 if none."""
    m = _check_seg(logits, target, mask)
    n = m.sum()
    if not bool(n > 0):
        return _zero_like_graph(logits)
    ce = F.cross_entropy(logits.float(), target.long(), reduction="none")
    return (ce * m).sum() / n


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *, smooth: float = 0.0) -> torch.Tensor:
    """nnU-Net's ``DC_and_CE_loss`` (SemiCS2's segmentation loss): :func:`soft_dice_loss` + :func:`masked_cross_entropy`.

    With a ``mask`` both terms count only its pixels (UM-synthesis' pseudo-label loss, where D judges the
    synthetic CT real); an empty mask gives exactly 0.
    """
    return soft_dice_loss(logits, target, mask, smooth=smooth) + masked_cross_entropy(logits, target, mask)


class DiceCELoss(nn.Module):
    """:func:`dice_ce_loss` with ``smooth`` fixed at construction."""

    def __init__(self, smooth: float = 0.0):
        super().__init__()
        if smooth < 0:
            raise SimrealError(f"Dice smooth must be >= 0, got {smooth}")
        self.smooth = float(smooth)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return dice_ce_loss(logits, target, mask, smooth=self.smooth)


# -- translation losses: structure on brightness (Pfeiffer et al.), LSGAN over scales (MUNIT, CycleGAN) --------

#: Pessoa's ``pytorch-msssim`` (used by Pfeiffer et al., methods.md 2.4) / Wang et al. 2003 level weights,
#: finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

OverScales = Literal["sum", "mean"]


def gray(x: torch.Tensor) -> torch.Tensor:
    """Brightness: the channel mean of (B, C, H, W) images -> (B, 1, H, W) (Pfeiffer et al.'s ``gray``).

    Comparing brightness instead of colour lets a translation recolour tissue while its structure stays.
    """
    if x.ndim != 4:
        raise SimrealError(f"gray() needs (B, C, H, W) images, got shape {tuple(x.shape)}")
    return x.mean(dim=1, keepdim=True)


def _gaussian_window(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    t = torch.arange(size, device=like.device, dtype=like.dtype) - (size - 1) / 2
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim_components(
    x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, kernel_size: int = 11, sigma: float = 1.5,
    k1: float = 0.01, k2: float = 0.03,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image SSIM and its contrast-structure term ``cs`` (both (B,)), Wang et al. 2004.

    A ``kernel_size`` Gaussian window of ``sigma`` px slides over the *valid* part of the image (no
    padding, as in Wang's MATLAB code, Pessoa's ``pytorch-msssim`` and scikit-image), statistics per
    channel; the maps are averaged over channels and positions. ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` with
    ``L = data_range``.

    Raises:
        SimrealError: shapes differ, or an image side is smaller than ``kernel_size``.
    """
    _check_same_shape(x, y, "SSIM")
    if x.ndim != 4:
        raise SimrealError(f"SSIM needs (B, C, H, W) images, got shape {tuple(x.shape)}")
    if kernel_size < 1 or kernel_size % 2 == 0 or min(x.shape[-2:]) < kernel_size:
        raise SimrealError(f"SSIM window {kernel_size} must be odd and fit the {x.shape[-2]}x{x.shape[-1]} images")
    x, y = x.float(), y.float()
    c = x.shape[1]
    w = _gaussian_window(kernel_size, sigma, x).expand(c, 1, kernel_size, kernel_size)
    stats = F.conv2d(torch.cat([x, y, x * x, y * y, x * y]), w, groups=c).split(x.shape[0])
    mu_x, mu_y = stats[0], stats[1]
    var_x = stats[2] - mu_x**2
    var_y = stats[3] - mu_y**2
    cov = stats[4] - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.flatten(1).mean(1), cs_map.flatten(1).mean(1)


def ms_ssim_scales(height: int, width: int, kernel_size: int = 11, max_scales: int = len(MS_SSIM_WEIGHTS)) -> tuple[int, int]:
    """(scales, kernel_size) of an MS-SSIM that fits (height, width) images.

    The window stays ``kernel_size`` and the coarsest levels are dropped until the coarsest image
    (``side // 2**(scales - 1)``) still holds one window: 5 levels need 176 px with the default 11 px
    window, 128 px gets 4, 64 px 3, 32 px 2, 16 px 1. Below one window the window shrinks to the largest
    odd size that fits (Pessoa's ``min(window_size, H, W)``), at one level.
    """
    side = min(int(height), int(width))
    if side < 1:
        raise SimrealError(f"MS-SSIM needs images with pixels, got {height}x{width}")
    scales = 0
    while scales < max_scales and side // 2**scales >= kernel_size:
        scales += 1
    if scales == 0:
        return 1, side if side % 2 else side - 1
    return scales, kernel_size


def ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    data_range: float = 1.0,
    kernel_size: int = 11,
    sigma: float = 1.5,
    scales: int | None = None,
    normalize: bool = True,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
) -> torch.Tensor:
    """Multi-scale SSIM per image, (B,): ``prod_{l < S-1} cs_l^{w_l} * ssim_{S-1}^{w_{S-1}}``.

    Level l is the images average-pooled 2x l times (Wang, Simoncelli, Bovik 2003). Differentiable.

    Args:
        x, y: (B, C, H, W) images (any range: give it as ``data_range``).
        data_range: the value range L (2 for images in [-1, 1]).
        kernel_size, sigma: the Gaussian window of every level (Pessoa / Wang: 11 px, 1.5 px).
        scales: levels; None = as many of the 5 as fit (:func:`ms_ssim_scales`). The first ``scales``
            weights are used, rescaled to sum to 1, so the value stays on the 5-level scale.
        normalize: map every level's ssim and cs to ``(v + 1) / 2`` before the powers, as Pessoa's
            ``normalize=True`` (Pfeiffer et al.'s setting) "to avoid NaNs" from negative values raised to
            fractional powers ("not compliant with the original definition": identical images still give
            exactly 1, unrelated ones about 0.5 instead of 0). False: the original definition, each level
            clamped at 0.

    Differences from Pessoa's code (documented, not copied): his product multiplies the last level's ssim
    into each of the other four factors (``prod(mcs[:-1] * ssim[-1])``, so it is raised to 4 w_5); and his
    ``val_range=None`` guesses L from the first image's values (2 if its minimum is below -0.5, else 1);
    here L is given.
    """
    _check_same_shape(x, y, "MS-SSIM")
    if scales is None:
        scales, kernel_size = ms_ssim_scales(x.shape[-2], x.shape[-1], kernel_size, len(weights))
    if not 1 <= scales <= len(weights):
        raise SimrealError(f"MS-SSIM scales must be in 1..{len(weights)}, got {scales}")
    need = kernel_size * 2 ** (scales - 1)
    if min(x.shape[-2:]) < need:
        raise SimrealError(f"MS-SSIM with {scales} scales and a {kernel_size} px window needs images of at least "
                           f"{need} px, got {x.shape[-2]}x{x.shape[-1]}")
    w = torch.tensor(weights[:scales], dtype=torch.float32, device=x.device)
    w = w / w.sum()
    out = torch.ones(x.shape[0], device=x.device)
    for level in range(scales):
        sim, cs = ssim_components(x, y, data_range=data_range, kernel_size=kernel_size, sigma=sigma)
        value = sim if level == scales - 1 else cs
        value = (value + 1) / 2 if normalize else value.clamp_min(0)
        out = out * value ** w[level]
        if level < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return out


def ms_ssim_gray_loss(source: torch.Tensor, translated: torch.Tensor, *, kernel_size: int = 11,
                      scales: int | None = None) -> torch.Tensor:
    """Pfeiffer et al.'s content-preservation loss: ``1 - MS-SSIM(gray(source), gray(translated))``.

    Images in [-1, 1] (so L = 2, what Pessoa's automatic range picks for them), ``normalize=True``,
    averaged over the batch. The paper minimises ``-MS-SSIM``; ``1 - MS-SSIM`` has the same gradients
    and reads as a distance (0 = identical structure).
    """
    value = ms_ssim(gray(source), gray(translated), data_range=2.0, kernel_size=kernel_size, scales=scales, normalize=True)
    return 1.0 - value.mean()


def l1_loss(a: torch.Tensor, b: torch.Tensor, what: str = "L1") -> torch.Tensor:
    """``mean |a - b|`` (MUNIT's ``recon_criterion``; CycleGAN's cycle and identity losses)."""
    _check_same_shape(a, b, what)
    return (a.float() - b.float()).abs().mean()


def lsgan_loss(pred: torch.Tensor | Sequence[torch.Tensor], target: float, *, over_scales: OverScales = "sum") -> torch.Tensor:
    """Least-squares GAN loss ``mean (p - target)^2`` of one logit map, or of each map of a multi-scale
    discriminator, **summed** over the scales by default (MUNIT's ``MsImageDis``: with 3 scales the loss
    is 3x the per-scale mean, which its ``gan_w = 1`` is tuned against) or averaged (``"mean"``).

    Example:
        >>> float(lsgan_loss([torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 1, 1)], 1.0))
        1.0
    """
    if over_scales not in ("sum", "mean"):
        raise SimrealError(f"over_scales must be 'sum' or 'mean', got {over_scales!r}")
    maps = list(pred) if isinstance(pred, (list, tuple)) else [pred]
    if not maps:
        raise SimrealError("lsgan_loss got an empty list of predictions")
    parts = torch.stack([((m[-1] if isinstance(m, (list, tuple)) else m).float() - target).pow(2).mean() for m in maps])
    return parts.sum() if over_scales == "sum" else parts.mean()


def lsgan_discriminator_loss(real: torch.Tensor | Sequence[torch.Tensor], fake: torch.Tensor | Sequence[torch.Tensor], *,
                             over_scales: OverScales = "sum") -> torch.Tensor:
    """``lsgan(D(real), 1) + lsgan(D(fake), 0)`` (MUNIT's ``calc_dis_loss``; CycleGAN halves it)."""
    return lsgan_loss(real, 1.0, over_scales=over_scales) + lsgan_loss(fake, 0.0, over_scales=over_scales)


def lsgan_generator_loss(fake: torch.Tensor | Sequence[torch.Tensor], *, over_scales: OverScales = "sum") -> torch.Tensor:
    """``lsgan(D(G(x)), 1)`` (MUNIT's ``calc_gen_loss``)."""
    return lsgan_loss(fake, 1.0, over_scales=over_scales)
