"""Segmentation metrics on integer label maps: per-class Dice, IoU and HD95.

Pure functions on binary masks (:func:`dice`, :func:`iou`, :func:`hd95`) and one per-sample entry point
(:func:`segmentation_metrics`) on class-id maps.

Conventions for empty masks (chosen so that a mean over samples stays meaningful, and tested):

* both prediction and ground truth empty for a class: Dice 1, IoU 1, HD95 0 (nothing to find, nothing
  found);
* exactly one of them empty: Dice 0, IoU 0, HD95 **NaN** (a distance to nothing is undefined). NaN
  HD95 values are left out of summary means; :mod:`simreal.metrics.evaluate` reports how many there were
  (``n`` per metric counts only finite values), so a missed polyp is visible through Dice, not hidden in
  an arbitrary distance.

HD95 is MONAI's symmetric percentile Hausdorff distance: boundary pixels of each mask (the mask minus
its binary erosion, the image border counting as outside), Euclidean distance from every boundary pixel
of one mask to the nearest boundary pixel of the other, the 95th percentile (linear interpolation) of
each direction, and the larger of the two. Units are pixels, or millimetres with ``spacing``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import re

import numpy as np
from scipy import ndimage

from simreal.errors import SimrealError


def _binary_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise SimrealError(f"prediction shape {pred.shape} differs from ground truth shape {gt.shape}")
    return pred.astype(bool), gt.astype(bool)


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice ``2|P & G| / (|P| + |G|)`` of two binary masks of any shape; 1 when both are empty."""
    p, g = _binary_pair(pred, gt)
    den = int(p.sum()) + int(g.sum())
    return 1.0 if den == 0 else 2.0 * int((p & g).sum()) / den


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two binary masks; 1 when both are empty."""
    p, g = _binary_pair(pred, gt)
    union = int((p | g).sum())
    return 1.0 if union == 0 else int((p & g).sum()) / union


def _edges(mask: np.ndarray) -> np.ndarray:
    # border_value=0: a mask touching the image border has its boundary there, as in MONAI.
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def hd95(pred: np.ndarray, gt: np.ndarray, *, spacing: float | Sequence[float] | None = None, percentile: float = 95.0) -> float:
    """Symmetric percentile Hausdorff distance between two binary masks (2-D or 3-D).

    Args:
        pred, gt: binary masks of equal shape.
        spacing: pixel size in mm (one number, or one per axis); None = pixels.
        percentile: 95 for HD95, 100 for the classic Hausdorff distance.

    Returns:
        Distance in pixels (or mm); 0 when both masks are empty, NaN when exactly one is.
    """
    p, g = _binary_pair(pred, gt)
    if not p.any() and not g.any():
        return 0.0
    if not p.any() or not g.any():
        return float("nan")
    ep, eg = _edges(p), _edges(g)
    sampling = None if spacing is None else (np.broadcast_to(np.asarray(spacing, dtype=np.float64), (p.ndim,)))
    # distance_transform_edt gives, for every non-zero pixel, the distance to the nearest zero pixel.
    to_g = ndimage.distance_transform_edt(~eg, sampling=sampling)[ep]
    to_p = ndimage.distance_transform_edt(~ep, sampling=sampling)[eg]
    return float(max(np.percentile(to_g, percentile), np.percentile(to_p, percentile)))


def class_columns(classes: Mapping[int, str] | Sequence[int]) -> dict[int, str]:
    """Class id -> the name used in metric column names (lower case, ``[a-z0-9_]``; ``class<id>`` if unnamed).

    Example:
        >>> class_columns({0: "background", 1: "Small bowel"})
        {0: 'background', 1: 'small_bowel'}
    """
    if not isinstance(classes, Mapping):
        return {int(c): f"class{int(c)}" for c in classes}
    out = {}
    for c, name in classes.items():
        slug = re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")
        out[int(c)] = slug or f"class{int(c)}"
    if len(set(out.values())) != len(out):
        raise SimrealError(f"class names {dict(classes)} collide once made into column names")
    return out


def segmentation_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    classes: Mapping[int, str] | Sequence[int],
    *,
    include_background: bool = False,
    spacing: float | Sequence[float] | None = None,
    sample: str = "",
) -> dict[str, float]:
    """Per-class Dice, IoU and HD95 for one pair of label maps.

    Args:
        pred: (H, W) integer class ids predicted.
        gt: (H, W) integer class ids of the ground truth.
        classes: class id -> name (or a list of ids, named ``class<id>``); id 0 is background. Names
            are made column-safe by :func:`class_columns`.
        include_background: also score class 0.
        spacing: pixel size in mm for HD95 (None = pixels).
        sample: sample id, named in errors.

    Returns:
        ``dice_<name>``, ``iou_<name>``, ``hd95_<name>`` per scored class, then ``dice_mean``,
        ``iou_mean`` and ``hd95_mean`` over the scored classes (HD95 mean ignores NaN; NaN if all are).

    Raises:
        SimrealError: naming the sample, for mismatched shapes, non-integer maps, or label values that
            are not among ``classes``.
    """
    where = f"sample {sample}: " if sample else ""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise SimrealError(f"{where}prediction shape {pred.shape} differs from ground truth shape {gt.shape}")
    for name, arr in (("prediction", pred), ("ground truth", gt)):
        if not np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_):
            raise SimrealError(f"{where}{name} must be an integer label map, got {arr.dtype}")
    names = class_columns(classes)
    for name, arr in (("prediction", pred), ("ground truth", gt)):
        unknown = sorted(set(np.unique(arr).tolist()) - set(names))
        if unknown:
            raise SimrealError(f"{where}{name} holds label values {unknown} not among the classes {sorted(names)}")
    scored = [c for c in sorted(names) if include_background or c != 0]
    if not scored:
        raise SimrealError(f"{where}no class to score (only background, and include_background is off)")
    out: dict[str, float] = {}
    d, j, h = [], [], []
    for c in scored:
        p, g = pred == c, gt == c
        d.append(dice(p, g))
        j.append(iou(p, g))
        h.append(hd95(p, g, spacing=spacing))
        out[f"dice_{names[c]}"], out[f"iou_{names[c]}"], out[f"hd95_{names[c]}"] = d[-1], j[-1], h[-1]
    finite_h = [x for x in h if np.isfinite(x)]
    out["dice_mean"] = float(np.mean(d))
    out["iou_mean"] = float(np.mean(j))
    out["hd95_mean"] = float(np.mean(finite_h)) if finite_h else float("nan")
    return out
