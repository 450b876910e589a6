"""Image edges and label boundaries: do a label map's class boundaries lie on edges of the image?

A translated (or refined) image keeps its source's labels only if the structures the labels outline are
still where the labels say. These pure numpy functions measure that on one image and its class-id mask:

* :func:`brightness`: the channel mean of an image, as float in [0, 1] (colour is ignored: a translation
  may recolour tissue freely, but its outlines must stay).
* :func:`edge_map`: gradient magnitude of the Gaussian-smoothed brightness (``sigma`` px), in brightness
  units per pixel (a step from black to white blurred by sigma peaks at ``1 / (sqrt(2 pi) sigma)``).
* :func:`strong_edges`: the pixels whose edge strength is in the top ``1 - quantile`` of the image and at
  least ``min_strength`` (so a flat image has no strong edge at all).
* :func:`label_boundaries`: the pixels of a class-id map with a 4-neighbour of another class (both sides
  of every boundary, so a boundary is 2 px wide), optionally only those of some classes.
* :func:`near`: which pixels of one boolean map lie within ``tolerance_px`` (Euclidean) of the other.
* :func:`tolerant_f1`: precision / recall / F1 of two boolean maps matched within a tolerance (e.g. the
  strong edges of a translated image against those of its source).
* :func:`boundary_edge_agreement`: the per-image summary used by the label-validity audit
  (``simreal eval label-validity``) and the reverse-DA experiments.

The scores of :func:`boundary_edge_agreement`:

``boundary_recall``
    Share of label-boundary pixels with a strong image edge within ``tolerance_px``: 1 = every outline
    of the mask is visible in the image; it drops when a translation moves, blurs or erases outlines.
``edge_precision``
    Share of strong-edge pixels within ``tolerance_px`` of a label boundary (low for textured images,
    whose texture edges are not label boundaries: compare it between source and translation, not with 1).
``f1``
    Harmonic mean of the two.
``boundary_contrast``
    A threshold-free score for the whole image: the mean over boundary pixels of the strongest edge
    within ``tolerance_px`` (a maximum filter on a disk), divided by the mean edge strength of the whole
    image. 1 = boundaries are no more edgy than the average pixel, higher = outlines stand out; invariant
    to the image's contrast (scaling the brightness scales both); 0 for a flat image.
``n_boundary_px``, ``n_edge_px``
    How many pixels the shares are over.

Undefined values are NaN (and so left out of summary means by :mod:`simreal.metrics.evaluate`): every
score when the mask has a single class (no boundary), ``edge_precision`` when no strong edge exists.

Example:
    >>> mask = np.zeros((32, 32), np.uint8); mask[:, 16:] = 1
    >>> image = np.repeat(mask[..., None] * 200, 3, axis=2).astype(np.uint8)
    >>> r = boundary_edge_agreement(image, mask, tolerance_px=1)
    >>> r["boundary_recall"], r["boundary_contrast"] > 5
    (1.0, True)
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
from scipy import ndimage

from simreal.errors import SimrealError

__all__ = [
    "EDGE_SCORES",
    "boundary_edge_agreement",
    "brightness",
    "edge_map",
    "label_boundaries",
    "near",
    "strong_edges",
    "tolerant_f1",
]

#: Keys of :func:`boundary_edge_agreement`'s result, in order.
EDGE_SCORES = ("boundary_recall", "edge_precision", "f1", "boundary_contrast", "n_boundary_px", "n_edge_px")


def brightness(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 brightness in [0, 1]: the channel mean of an (H, W, C) or (H, W) image.

    uint8 images are divided by 255, uint16 by 65535; float images are taken as already in [0, 1].

    Raises:
        SimrealError: not a 2-D or 3-D array, or no pixels.
    """
    a = np.asarray(image)
    if a.ndim not in (2, 3) or a.size == 0:
        raise SimrealError(f"an image must be (H, W) or (H, W, C) with pixels, got shape {a.shape}")
    if a.dtype == np.uint8:
        a = a.astype(np.float64) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float64) / 65535.0
    else:
        a = a.astype(np.float64)
    return a.mean(axis=2) if a.ndim == 3 else a


def edge_map(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Edge strength: gradient magnitude of the brightness smoothed by a Gaussian of ``sigma`` pixels.

    Args:
        image: (H, W, C) or (H, W); see :func:`brightness`.
        sigma: Gaussian sigma in pixels (> 0); borders are reflected.

    Returns:
        (H, W) float64 >= 0, brightness units per pixel.
    """
    if not sigma > 0:
        raise SimrealError(f"edge sigma must be > 0 pixels, got {sigma}")
    return ndimage.gaussian_gradient_magnitude(brightness(image), sigma=float(sigma), mode="reflect")


def strong_edges(edges: np.ndarray, quantile: float = 0.9, min_strength: float = 0.01,
                 valid: np.ndarray | None = None) -> np.ndarray:
    """Boolean (H, W) map of strong edges: strength >= the ``quantile`` of the (valid) pixels' strengths
    and >= ``min_strength``.

    Args:
        edges: an :func:`edge_map`.
        quantile: in [0, 1); 0.9 keeps the strongest 10 % of the pixels (fewer where many tie at 0).
        min_strength: absolute floor in brightness units per pixel, so flat images have no strong edge.
        valid: optional boolean (H, W) map of the pixels to consider (others are never strong).
    """
    e = np.asarray(edges, dtype=np.float64)
    if not 0.0 <= quantile < 1.0:
        raise SimrealError(f"edge quantile must be in [0, 1), got {quantile}")
    if min_strength < 0:
        raise SimrealError(f"min edge strength must be >= 0, got {min_strength}")
    region = np.ones(e.shape, bool) if valid is None else np.asarray(valid, bool)
    if region.shape != e.shape:
        raise SimrealError(f"valid map {region.shape} differs from edge map {e.shape}")
    if not region.any():
        return np.zeros(e.shape, bool)
    threshold = max(float(np.quantile(e[region], quantile)), float(min_strength))
    out = (e >= threshold) & region
    if threshold <= 0.0:  # min_strength 0 on a flat region: only positive strengths are edges
        out &= e > 0
    return out


def label_boundaries(mask: np.ndarray, classes: Iterable[int] | None = None) -> np.ndarray:
    """Boolean (H, W) map of the pixels with a 4-neighbour of another class (both sides of a boundary).

    Args:
        mask: (H, W) integer class ids.
        classes: count only boundary pixels that belong to one of these classes (e.g. ``[1]`` for the
            outline of the liver as seen from inside); None = every class.

    The image border is not a boundary.
    """
    m = np.asarray(mask)
    if m.ndim != 2 or m.size == 0:
        raise SimrealError(f"a label mask must be (H, W) with pixels, got shape {m.shape}")
    out = np.zeros(m.shape, bool)
    dy = m[1:, :] != m[:-1, :]
    dx = m[:, 1:] != m[:, :-1]
    out[1:, :] |= dy
    out[:-1, :] |= dy
    out[:, 1:] |= dx
    out[:, :-1] |= dx
    if classes is not None:
        out &= np.isin(m, np.asarray(list(classes)))
    return out


def near(a: np.ndarray, b: np.ndarray, tolerance_px: float) -> np.ndarray:
    """Boolean map: pixels of ``a`` within ``tolerance_px`` (Euclidean) of some pixel of ``b``.

    All False when ``b`` is empty.
    """
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise SimrealError(f"maps differ in shape: {a.shape} vs {b.shape}")
    if tolerance_px < 0:
        raise SimrealError(f"tolerance must be >= 0 pixels, got {tolerance_px}")
    if not b.any():
        return np.zeros(a.shape, bool)
    distance = ndimage.distance_transform_edt(~b)
    return a & (distance <= tolerance_px)


def tolerant_f1(pred: np.ndarray, ref: np.ndarray, tolerance_px: float = 2.0) -> dict[str, float]:
    """Match two boolean maps within a tolerance: ``precision`` (share of ``pred`` near ``ref``),
    ``recall`` (share of ``ref`` near ``pred``) and their harmonic mean ``f1``.

    Both empty: all 1 (nothing to find, nothing found); one empty: 0 for the side that has pixels,
    NaN for the empty one's share, F1 0.
    """
    p, r = np.asarray(pred, bool), np.asarray(ref, bool)
    n_p, n_r = int(p.sum()), int(r.sum())
    if n_p == 0 and n_r == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    precision = float(near(p, r, tolerance_px).sum()) / n_p if n_p else math.nan
    recall = float(near(r, p, tolerance_px).sum()) / n_r if n_r else math.nan
    if not (n_p and n_r):
        return {"precision": 0.0 if n_p else math.nan, "recall": 0.0 if n_r else math.nan, "f1": 0.0}
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


def _disk(radius: float) -> np.ndarray:
    r = int(math.floor(radius))
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return (x * x + y * y) <= radius * radius + 1e-9


def boundary_edge_agreement(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    tolerance_px: float = 2.0,
    sigma: float = 1.0,
    quantile: float = 0.9,
    min_strength: float = 0.01,
    classes: Iterable[int] | None = None,
) -> dict[str, float]:
    """How well the class boundaries of ``mask`` coincide with edges of ``image`` (one image).

    Args:
        image: (H, W, 3) / (H, W) uint8 or float in [0, 1].
        mask: (H, W) class ids, same H and W.
        tolerance_px: how far (Euclidean pixels) an edge may be from a boundary pixel and still count.
        sigma: smoothing of :func:`edge_map`.
        quantile, min_strength: what counts as a strong edge (:func:`strong_edges`).
        classes: boundaries of these classes only (:func:`label_boundaries`).

    Returns:
        ``{"boundary_recall", "edge_precision", "f1", "boundary_contrast", "n_boundary_px", "n_edge_px"}``
        (see the module docstring; NaN where undefined).

    Raises:
        SimrealError: image and mask of different sizes, bad settings.
    """
    m = np.asarray(mask)
    b = brightness(image)
    if b.shape != m.shape:
        raise SimrealError(f"image is {b.shape[0]}x{b.shape[1]} but its mask is {'x'.join(map(str, m.shape))}")
    edges = edge_map(image, sigma)
    strong = strong_edges(edges, quantile, min_strength)
    boundary = label_boundaries(m, classes)
    n_b, n_e = int(boundary.sum()), int(strong.sum())
    out = {"n_boundary_px": float(n_b), "n_edge_px": float(n_e)}
    if n_b == 0:
        out.update(boundary_recall=math.nan, edge_precision=math.nan, f1=math.nan, boundary_contrast=math.nan)
        return {k: out[k] for k in EDGE_SCORES}
    recall = float(near(boundary, strong, tolerance_px).sum()) / n_b
    precision = float(near(strong, boundary, tolerance_px).sum()) / n_e if n_e else math.nan
    if n_e == 0 or precision + recall == 0:
        f1 = 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    mean_all = float(edges.mean())
    if mean_all <= 0.0:
        contrast = 0.0
    else:
        local_max = ndimage.maximum_filter(edges, footprint=_disk(tolerance_px), mode="nearest")
        contrast = float(local_max[boundary].mean()) / mean_all
    out.update(boundary_recall=recall, edge_precision=precision, f1=f1, boundary_contrast=contrast)
    return {k: out[k] for k in EDGE_SCORES}
