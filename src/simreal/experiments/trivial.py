"""Trivial predictors: what a network must beat before its figures mean anything.

A depth network that scores abs_rel 0.2 has learnt nothing if a constant depth scores 0.2 too; a polyp
segmenter with Dice 0.24 on real frames is worse than useless if marking the whole frame as polyp scores
0.3. Experiments report these beside the trained networks, on the same held-out frames, and the smoke
tests check that the networks beat them.

Each function returns per-sample rows (``id``, ``group``, metric columns) in the layout of
:mod:`simreal.metrics.evaluate`'s ``rows.csv``, so the same summaries and paired tests apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simreal.data.reader import DatasetReader
from simreal.metrics.depth import depth_metrics
from simreal.metrics.segmentation import class_columns, dice


def constant_depth_rows(gt_dir: str | Path, depth_mm: float) -> list[dict[str, Any]]:
    """Scores of predicting ``depth_mm`` everywhere (e.g. the median training depth) on every frame.

    Returns:
        Rows with ``abs_rel`` (no scaling) and ``abs_rel_median`` (per-image median scaling, which for a
        constant map is the constant ``median(gt)``: the best a flat map can do), plus ``delta1``.
    """
    gt = DatasetReader(gt_dir)
    rows = []
    for i, rec in enumerate(gt.records):
        depth = gt.read(i, "depth")
        flat = np.full(depth.shape, float(depth_mm), np.float64)
        metric = depth_metrics(flat, depth, scaling="none", sample=rec.id)
        median = depth_metrics(flat, depth, scaling="median", sample=rec.id)
        rows.append({"id": rec.id, "group": rec.group, "abs_rel": metric["abs_rel"],
                     "abs_rel_median": median["abs_rel"], "delta1": metric["delta1"]})
    return rows


def constant_mask_rows(gt_dir: str | Path, class_id: int) -> list[dict[str, Any]]:
    """Dice of predicting class ``class_id`` on every pixel of every frame, per foreground class.

    ``class_id = 0`` is the all-background mask (Dice 0 on every frame that shows the class, 1 on the
    others); ``1`` marks the whole frame as polyp (Dice ``2|G| / (|G| + H W)``).

    Returns:
        Rows with ``dice_<class name>`` for every foreground class of the ground truth's dataset.json.
    """
    gt = DatasetReader(gt_dir)
    label = gt.info.labels.get("mask")
    names = class_columns(label.classes if label is not None and label.classes else {0: "background", 1: "polyp"})
    rows = []
    for i, rec in enumerate(gt.records):
        mask = gt.read(i, "mask")
        row: dict[str, Any] = {"id": rec.id, "group": rec.group}
        for c, name in names.items():
            if c != 0:
                row[f"dice_{name}"] = dice(np.full(mask.shape, class_id == c), mask == c)
        rows.append(row)
    return rows
