"""Segmentation metrics: a hand-computed 3x3 case, empty-mask conventions, MONAI / torchmetrics agreement."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric, compute_hausdorff_distance
from torchmetrics.functional.segmentation import dice_score

from simreal.errors import SimrealError
from simreal.metrics.segmentation import class_columns, dice, hd95, iou, segmentation_metrics

P3 = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
G3 = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]])


def test_hand_computed_3x3():
    # |P| = |G| = 3, |P & G| = 2, |P | G| = 4.
    assert dice(P3, G3) == pytest.approx(4 / 6)
    assert iou(P3, G3) == pytest.approx(2 / 4)
    # Every pixel is a boundary pixel; one-way distances are [0, 0, 1] both ways; the 95th percentile
    # with linear interpolation is 0 + 0.9 * (1 - 0) = 0.9.
    assert hd95(P3, G3) == pytest.approx(0.9)
    assert hd95(P3, G3, percentile=100) == pytest.approx(1.0)
    assert hd95(P3, G3, spacing=2.0) == pytest.approx(1.8)


def test_empty_mask_conventions():
    z = np.zeros((4, 4), int)
    one = z.copy()
    one[1, 1] = 1
    assert (dice(z, z), iou(z, z), hd95(z, z)) == (1.0, 1.0, 0.0)
    assert dice(one, z) == 0.0 and iou(z, one) == 0.0
    assert math.isnan(hd95(one, z)) and math.isnan(hd95(z, one))


def test_per_class_metrics_and_background():
    classes = {0: "background", 1: "Polyp", 2: "small bowel"}
    gt = np.zeros((6, 6), np.uint8)
    gt[1:4, 1:4] = 1
    pred = gt.copy()
    m = segmentation_metrics(pred, gt, classes)
    assert "dice_background" not in m
    assert m["dice_polyp"] == 1.0 and m["hd95_polyp"] == 0.0
    assert m["dice_small_bowel"] == 1.0  # absent in both: perfect by convention
    assert m["dice_mean"] == 1.0
    m_bg = segmentation_metrics(pred, gt, classes, include_background=True)
    assert m_bg["dice_background"] == 1.0
    assert class_columns([3]) == {3: "class3"}


def test_monai_and_torchmetrics_agree():
    rng = np.random.default_rng(0)
    for _ in range(4):
        gt = np.zeros((24, 20), np.int64)
        pred = np.zeros_like(gt)
        r0, c0 = rng.integers(0, 10, 2)
        gt[r0 : r0 + rng.integers(4, 12), c0 : c0 + rng.integers(4, 10)] = 1
        gt[18:22, 2:9] = 2
        r1, c1 = rng.integers(0, 10, 2)
        pred[r1 : r1 + rng.integers(4, 12), c1 : c1 + rng.integers(4, 10)] = 1
        pred[17:23, 0:6] = 2
        pred[0:2, 0:2] = 1  # a stray blob: moves HD95 but barely the Dice
        ours = segmentation_metrics(pred, gt, {0: "bg", 1: "a", 2: "b"}, spacing=(0.5, 1.5))
        onehot = lambda x: torch.nn.functional.one_hot(torch.tensor(x), 3).permute(2, 0, 1)[None].float()  # noqa: E731
        monai_dice = DiceMetric(include_background=False, reduction="none")(onehot(pred), onehot(gt))[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            monai_hd = compute_hausdorff_distance(onehot(pred), onehot(gt), percentile=95, spacing=[0.5, 1.5])[0]
        tm = dice_score(onehot(pred), onehot(gt), num_classes=3, include_background=False, average="none", input_format="one-hot")[0]
        for i, name in enumerate(("a", "b")):
            assert ours[f"dice_{name}"] == pytest.approx(monai_dice[i].item(), abs=1e-6)
            assert ours[f"dice_{name}"] == pytest.approx(tm[i].item(), abs=1e-6)
            assert ours[f"hd95_{name}"] == pytest.approx(monai_hd[i].item(), abs=1e-4)


def test_errors():
    with pytest.raises(SimrealError, match="sample x: prediction shape"):
        segmentation_metrics(np.zeros((3, 3), int), np.zeros((3, 4), int), [0, 1], sample="x")
    with pytest.raises(SimrealError, match=r"label values \[5\]"):
        segmentation_metrics(np.full((3, 3), 5), np.zeros((3, 3), int), [0, 1], sample="x")
    with pytest.raises(SimrealError, match="integer label map"):
        segmentation_metrics(np.zeros((3, 3)), np.zeros((3, 3), int), [0, 1])
    with pytest.raises(SimrealError, match="no class to score"):
        segmentation_metrics(np.zeros((3, 3), int), np.zeros((3, 3), int), [0])
