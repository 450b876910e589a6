"""Depth-estimation metrics on numpy depth maps in millimetres.

Every metric is a pure function ``metric(pred, gt, mask)`` over (H, W) arrays; :func:`depth_metrics`
validates one pair, builds the validity mask, applies scaling and returns all metrics at once.

Conventions (the usual Eigen et al. / monodepth set, written out so a reader can check them):

* valid pixels: ``gt > 0`` (0 = no surface), ``pred`` finite, and ``min_depth <= gt <= max_depth`` when
  those caps are given; NaN in the ground truth is an error, not an invalid pixel.
* caps: when ``min_depth`` / ``max_depth`` are given, the (scaled) prediction is also clipped to them,
  as monodepth2 does. Log and ratio metrics floor the prediction at ``_EPS_MM`` so a zero or negative
  prediction gives a large, finite error rather than NaN.
* ``abs_rel = mean(|p - g| / g)``, ``sq_rel = mean((p - g)^2 / g)`` (mm), ``rmse`` (mm),
  ``rmse_log = sqrt(mean((ln p - ln g)^2))``, ``delta_k = mean(max(p/g, g/p) < 1.25^k)``,
  ``l1_mm = mean(|p - g|)``.
* ``nrmse``: ``"range"`` divides the RMSE by ``max(g) - min(g)`` over valid pixels, ``"mean"`` by
  ``mean(g)``; NaN when the divisor is 0 (a constant ground truth under ``"range"``).
* ``ssim``: SSIM of the two depth maps (Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, data range =
  ``max(g) - min(g)`` over valid pixels, windows mirrored at the border) with **masked windows**: the
  local means, variances and covariance use only the valid pixels of each window, with the Gaussian
  weights renormalised over them (normalised convolution, e.g. ``mu_x = blur(m x) / blur(m)``), and
  the SSIM map is averaged over windows centred on valid pixels. So a hole (gt = 0) neither adds a
  false edge nor a flat region, and whatever the maps hold inside holes has no effect. On an all-
  valid map this equals torchmetrics' ``structural_similarity_index_measure`` (1.9) with the same data
  range. Images smaller than 11 px use the largest odd window that fits (sigma scaled by window / 11);
  below 3 px it is NaN.
* scaling: ``"median"`` multiplies the prediction by ``median(g) / median(p)``; ``"lsq"`` by the least-
  squares scale ``sum(p g) / sum(p^2)``, both over valid pixels (of one image, or of a whole sequence:
  see :func:`fit_scale` and :mod:`simreal.metrics.evaluate`).
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from scipy import ndimage

from simreal.errors import SimrealError

Scaling = Literal["none", "median", "lsq"]
NrmseNorm = Literal["range", "mean"]

#: Every metric :func:`depth_metrics` returns, in row order.
DEPTH_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "delta1", "delta2", "delta3", "nrmse", "l1_mm", "ssim")

# Floor for log / ratio metrics: a non-positive prediction must not turn the metric into NaN.
_EPS_MM = 1e-3


def check_pair(pred: np.ndarray, gt: np.ndarray, *, sample: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Check that a prediction and ground truth are comparable (H, W) depth maps; returns float64 copies.

    Raises:
        SimrealError: shapes differ or are not 2-D, or the ground truth holds NaN / inf.
    """
    where = f"sample {sample}: " if sample else ""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 2 or gt.ndim != 2:
        raise SimrealError(f"{where}depth maps must be (H, W); got prediction {pred.shape}, ground truth {gt.shape}")
    if pred.shape != gt.shape:
        raise SimrealError(f"{where}prediction shape {pred.shape} differs from ground truth shape {gt.shape}")
    if not np.isfinite(gt).all():
        raise SimrealError(f"{where}ground truth depth holds {int((~np.isfinite(gt)).sum())} NaN/inf values")
    return pred, gt


def valid_mask(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    min_depth: float | None = None,
    max_depth: float | None = None,
    sample: str = "",
) -> np.ndarray:
    """Pixels where a metric is defined: ``gt > 0``, ``pred`` finite, gt within the caps (mm).

    Raises:
        SimrealError: no valid pixel is left.
    """
    mask = (gt > 0) & np.isfinite(pred)
    if min_depth is not None:
        mask &= gt >= min_depth
    if max_depth is not None:
        mask &= gt <= max_depth
    if not mask.any():
        where = f"sample {sample}: " if sample else ""
        raise SimrealError(f"{where}no valid depth pixel (gt > 0, finite prediction, within the depth caps)")
    return mask


def fit_scale(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], masks: Sequence[np.ndarray], scaling: Scaling) -> float:
    """Scale factor that maps predictions onto ground truth, pooled over all given valid pixels.

    Args:
        preds, gts, masks: lists of (H, W) maps (one image, or every frame of a sequence).
        scaling: "none" (1), "median" (``median(g) / median(p)``) or "lsq" (``sum(p g) / sum(p^2)``).

    Returns:
        The scale (1.0 for "none"); NaN if the prediction is 0 everywhere it is valid.
    """
    if scaling == "none":
        return 1.0
    p = np.concatenate([np.asarray(x)[m] for x, m in zip(preds, masks)]).astype(np.float64)
    g = np.concatenate([np.asarray(x)[m] for x, m in zip(gts, masks)]).astype(np.float64)
    if scaling == "median":
        den = float(np.median(p))
        return float(np.median(g)) / den if den != 0 else float("nan")
    if scaling == "lsq":
        den = float(np.dot(p, p))
        return float(np.dot(p, g)) / den if den != 0 else float("nan")
    raise SimrealError(f"unknown scaling {scaling!r}; choose none, median or lsq")


def abs_rel(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute relative error ``mean(|p - g| / g)`` over ``mask`` (unitless)."""
    p, g = pred[mask], gt[mask]
    return float(np.mean(np.abs(p - g) / g))


def sq_rel(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Squared relative error ``mean((p - g)^2 / g)`` over ``mask`` (mm)."""
    p, g = pred[mask], gt[mask]
    return float(np.mean((p - g) ** 2 / g))


def rmse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Root mean squared error over ``mask`` (mm)."""
    p, g = pred[mask], gt[mask]
    return float(np.sqrt(np.mean((p - g) ** 2)))


def rmse_log(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """RMSE of natural logs over ``mask``; the prediction is floored at 1e-3 mm."""
    p, g = np.maximum(pred[mask], _EPS_MM), gt[mask]
    return float(np.sqrt(np.mean((np.log(p) - np.log(g)) ** 2)))


def delta(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, k: int = 1) -> float:
    """Fraction of valid pixels with ``max(p/g, g/p) < 1.25**k``; the prediction is floored at 1e-3 mm."""
    p, g = np.maximum(pred[mask], _EPS_MM), gt[mask]
    ratio = np.maximum(p / g, g / p)
    return float(np.mean(ratio < 1.25**k))


def nrmse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, norm: NrmseNorm = "range") -> float:
    """RMSE normalised by the ground truth's range (``"range"``) or mean (``"mean"``) over ``mask``."""
    g = gt[mask]
    if norm == "range":
        den = float(g.max() - g.min())
    elif norm == "mean":
        den = float(g.mean())
    else:
        raise SimrealError(f"unknown nrmse normalisation {norm!r}; choose range or mean")
    return rmse(pred, gt, mask) / den if den > 0 else float("nan")


def l1_mm(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute error over ``mask`` (mm)."""
    return float(np.mean(np.abs(pred[mask] - gt[mask])))


def _gaussian_1d(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def ssim_map(
    x: np.ndarray,
    y: np.ndarray,
    *,
    data_range: float,
    window: int = 11,
    sigma: float = 1.5,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """SSIM at every pixel ((H, W)), windows mirrored at the image border, optionally masked.

    Gaussian-weighted means, variances and covariance (Wang et al. 2004), K1 = 0.01, K2 = 0.03; the
    border is handled by reflection without repeating the edge pixel (torch's ``reflect`` padding, which
    torchmetrics uses) and negative variances from rounding are clipped to 0, as torchmetrics does.

    Args:
        x, y: (H, W) maps in the same unit (mm for depth).
        data_range: value range that sets the stabilising constants C1, C2 (same unit).
        window, sigma: Gaussian window size (odd, px) and standard deviation (px).
        mask: (H, W) bool, True where both maps hold data. Each window's statistics then use its valid
            pixels only, the Gaussian weights renormalised over them (``blur(m x) / blur(m)`` etc.), so
            values at invalid pixels have no influence. The map is NaN where no valid pixel is in reach;
            only entries at valid pixels are meaningful. None = every pixel valid.
    """
    k = _gaussian_1d(window, sigma)

    def blur(a: np.ndarray) -> np.ndarray:
        return ndimage.correlate1d(ndimage.correlate1d(a, k, axis=0, mode="mirror"), k, axis=1, mode="mirror")

    if mask is None:
        # Weights sum to 1 in every window: plain blur, bit-for-bit the unmasked SSIM.
        def wmean(a: np.ndarray) -> np.ndarray:
            return blur(a)
    else:
        m = np.asarray(mask, dtype=np.float64)
        # Zero the invalid pixels first: 0 * NaN would still be NaN.
        x, y = np.where(mask, x, 0.0), np.where(mask, y, 0.0)
        weight = blur(m)
        weight[weight <= 0] = np.nan  # no valid pixel within reach of this window

        def wmean(a: np.ndarray) -> np.ndarray:
            return blur(m * a) / weight

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = wmean(x), wmean(y)
    vx = np.maximum(wmean(x * x) - mx * mx, 0.0)
    vy = np.maximum(wmean(y * y) - my * my, 0.0)
    cxy = wmean(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def ssim(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """SSIM of two depth maps with masked windows, averaged over valid pixels (see module docstring).

    Args:
        pred, gt: (H, W) depth maps (mm).
        mask: (H, W) bool valid pixels (:func:`valid_mask`); nothing outside it affects the result.

    Returns:
        Mean SSIM over the valid pixels; NaN for images under 3 px.
    """
    h, w = gt.shape
    window = min(11, min(h, w) if min(h, w) % 2 == 1 else min(h, w) - 1)
    if window < 3:
        return float("nan")
    sigma = 1.5 * window / 11
    g = gt[mask]
    data_range = float(g.max() - g.min()) or 1.0  # constant gt: any positive range keeps SSIM defined
    # An all-valid map takes the unmasked path so it matches torchmetrics to the last bits.
    smap = ssim_map(pred, gt, data_range=data_range, window=window, sigma=sigma, mask=None if mask.all() else mask)
    return float(smap[mask].mean())


def depth_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    scale: float | None = None,
    scaling: Scaling = "none",
    min_depth: float | None = None,
    max_depth: float | None = None,
    nrmse_norm: NrmseNorm = "range",
    sample: str = "",
) -> dict[str, float]:
    """All depth metrics for one predicted / ground-truth pair, in millimetres.

    Args:
        pred: (H, W) predicted depth (mm; any scale when ``scaling`` is not "none").
        gt: (H, W) ground-truth depth (mm, 0 = no surface).
        scale: a fixed scale to apply (e.g. one fitted over a whole sequence); overrides ``scaling``.
        scaling: "none", "median" or "lsq", fitted on this image alone when ``scale`` is None.
        min_depth, max_depth: optional caps in mm (see module docstring).
        nrmse_norm: "range" or "mean".
        sample: sample id, named in errors.

    Returns:
        Dict with every name in :data:`DEPTH_METRICS` plus ``scale`` (the factor applied).

    Raises:
        SimrealError: naming the sample, for mismatched shapes, NaN ground truth, no valid pixel, or a
            scale that cannot be fitted.

    Example:
        >>> gt = np.full((4, 4), 50.0); depth_metrics(2 * gt, gt, scaling="median")["abs_rel"]
        0.0
    """
    pred, gt = check_pair(pred, gt, sample=sample)
    mask = valid_mask(pred, gt, min_depth=min_depth, max_depth=max_depth, sample=sample)
    if scale is None:
        scale = fit_scale([pred], [gt], [mask], scaling)
    if not np.isfinite(scale) or scale <= 0:
        raise SimrealError(f"sample {sample}: cannot scale the prediction (fitted scale {scale}); is it all zero?")
    p = pred * scale
    if min_depth is not None or max_depth is not None:
        p = np.clip(p, min_depth, max_depth)
    return {
        "abs_rel": abs_rel(p, gt, mask),
        "sq_rel": sq_rel(p, gt, mask),
        "rmse": rmse(p, gt, mask),
        "rmse_log": rmse_log(p, gt, mask),
        "delta1": delta(p, gt, mask, 1),
        "delta2": delta(p, gt, mask, 2),
        "delta3": delta(p, gt, mask, 3),
        "nrmse": nrmse(p, gt, mask, nrmse_norm),
        "l1_mm": l1_mm(p, gt, mask),
        "ssim": ssim(p, gt, mask),
        "scale": float(scale),
    }
