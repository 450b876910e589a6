"""Sample images of a run: rows of input | target | prediction, as one 8-bit RGB array.

Depth maps are coloured with one colour scale per row (the target's valid range, so target and prediction
compare directly; no-surface pixels are black); masks with a fixed palette (class 0 black).
"""

from __future__ import annotations

import numpy as np

_PALETTE = np.array(
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
     [70, 240, 240], [240, 50, 230], [210, 245, 60]],
    dtype=np.uint8,
)


def depth_to_rgb(depth: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """(H, W) depth in mm -> (H, W, 3) uint8 through matplotlib's 'turbo'; depth <= 0 is black."""
    from matplotlib import colormaps

    t = np.clip((depth - vmin) / max(vmax - vmin, 1e-6), 0, 1)
    rgb = (colormaps["turbo"](t)[..., :3] * 255).round().astype(np.uint8)
    rgb[depth <= 0] = 0
    return rgb


def mask_to_rgb(mask: np.ndarray) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 with a fixed palette."""
    return _PALETTE[np.asarray(mask, dtype=np.int64) % len(_PALETTE)]


def sample_grid(images: np.ndarray, targets: np.ndarray, preds: np.ndarray, task: str) -> np.ndarray:
    """Stack rows input | target | prediction.

    Args:
        images: (N, 3, H, W) float in [0, 1].
        targets, preds: (N, H, W) depth mm (task "depth") or class ids (task "seg").

    Returns:
        (N*H, 3*W, 3) uint8.
    """
    rows = []
    for img, tgt, prd in zip(images, targets, preds):
        rgb = (np.clip(img.transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)
        if task == "depth":
            valid = tgt[tgt > 0]
            lo, hi = (float(valid.min()), float(valid.max())) if valid.size else (float(prd.min()), float(prd.max()))
            row = [rgb, depth_to_rgb(tgt, lo, hi), depth_to_rgb(prd, lo, hi)]
        else:
            row = [rgb, mask_to_rgb(tgt), mask_to_rgb(prd)]
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)
