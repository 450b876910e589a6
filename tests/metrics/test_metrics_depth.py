"""Depth metrics: closed forms, a hand-computed 3x2 case, scaling, SSIM against torchmetrics and with holes, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

from simreal.errors import SimrealError
from simreal.metrics.depth import DEPTH_METRICS, depth_metrics, fit_scale, ssim

GT = np.array([[10.0, 20.0], [40.0, 0.0], [50.0, 100.0]])
PRED = np.array([[12.0, 20.0], [30.0, 7.0], [50.0, 125.0]])


def test_identical_prediction_is_perfect():
    gt = np.random.default_rng(0).uniform(5, 80, (16, 16))
    m = depth_metrics(gt.copy(), gt)
    assert set(DEPTH_METRICS) <= set(m)
    for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "nrmse", "l1_mm"):
        assert m[k] == pytest.approx(0.0, abs=1e-12)
    assert m["delta1"] == m["delta2"] == m["delta3"] == 1.0
    assert m["ssim"] == pytest.approx(1.0)


def test_double_prediction_and_median_scaling():
    gt = np.random.default_rng(1).uniform(5, 80, (12, 10))
    raw = depth_metrics(2 * gt, gt)
    assert raw["abs_rel"] == pytest.approx(1.0)
    assert raw["delta1"] == 0.0 and raw["delta3"] == 0.0  # ratio 2 > 1.25^3 = 1.953
    scaled = depth_metrics(2 * gt, gt, scaling="median")
    assert scaled["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert scaled["scale"] == pytest.approx(0.5)
    lsq = depth_metrics(2 * gt, gt, scaling="lsq")
    assert lsq["rmse"] == pytest.approx(0.0, abs=1e-9)


def test_hand_computed_3x2_case():
    """Valid pixels (gt > 0): 5; errors 2, 0, 10, 0, 25 mm; ratios 1.2, 1, 4/3, 1, 1.25."""
    m = depth_metrics(PRED, GT)
    assert m["abs_rel"] == pytest.approx((0.2 + 0 + 0.25 + 0 + 0.25) / 5)
    assert m["sq_rel"] == pytest.approx((4 / 10 + 100 / 40 + 625 / 100) / 5)
    assert m["rmse"] == pytest.approx(math.sqrt(729 / 5))
    assert m["l1_mm"] == pytest.approx(37 / 5)
    assert m["rmse_log"] == pytest.approx(math.sqrt((math.log(1.2) ** 2 + math.log(0.75) ** 2 + math.log(1.25) ** 2) / 5))
    assert m["delta1"] == pytest.approx(3 / 5)  # 1.25 itself is not < 1.25
    assert m["delta2"] == 1.0
    assert m["nrmse"] == pytest.approx(math.sqrt(729 / 5) / 90)
    assert depth_metrics(PRED, GT, nrmse_norm="mean")["nrmse"] == pytest.approx(math.sqrt(729 / 5) / 44)


def test_caps_restrict_pixels_and_clip_prediction():
    m = depth_metrics(PRED, GT, max_depth=60.0)  # drops gt 100; pred 125 no longer counted
    assert m["l1_mm"] == pytest.approx(12 / 4)
    m2 = depth_metrics(np.full_like(GT, 500.0), GT, min_depth=1.0, max_depth=100.0)
    assert m2["l1_mm"] == pytest.approx(np.mean(100.0 - GT[GT > 0]))  # prediction clipped to 100 mm


def test_non_finite_prediction_pixels_are_ignored():
    pred = PRED.copy()
    pred[0, 0] = np.nan
    assert depth_metrics(pred, GT)["l1_mm"] == pytest.approx(35 / 4)


def test_sequence_scale_pools_pixels():
    gt = [np.full((2, 2), 10.0), np.full((2, 2), 20.0)]
    pred = [np.full((2, 2), 20.0), np.full((2, 2), 40.0)]
    masks = [np.ones((2, 2), bool)] * 2
    assert fit_scale(pred, gt, masks, "median") == pytest.approx(0.5)
    assert fit_scale(pred, gt, masks, "lsq") == pytest.approx(0.5)
    assert fit_scale(pred, gt, masks, "none") == 1.0


@pytest.mark.parametrize("shape,sigma", [((32, 40), 1.5), ((8, 9), 1.5 * 7 / 11)])
def test_ssim_matches_torchmetrics(shape, sigma):
    rng = np.random.default_rng(2)
    gt = rng.uniform(10, 100, shape)
    pred = gt + rng.normal(0, 8, shape)
    ours = ssim(pred, gt, np.ones(shape, bool))
    ref = tm_ssim(
        torch.tensor(pred)[None, None], torch.tensor(gt)[None, None], data_range=float(gt.max() - gt.min()), sigma=sigma
    ).item()
    assert ours == pytest.approx(ref, abs=1e-9)
    assert ours < 0.99  # the noise is visible: not a tautology


def _holes(shape, seed):
    """A random depth map and a mask with a rectangular hole and scattered missing pixels."""
    rng = np.random.default_rng(seed)
    gt = rng.uniform(20, 80, shape)
    mask = rng.random(shape) > 0.1
    mask[3:9, 5:12] = False
    return gt, mask


def test_ssim_ignores_values_inside_holes():
    gt, mask = _holes((24, 20), 4)
    pred = gt + np.random.default_rng(5).normal(0, 6, gt.shape)
    base = ssim(pred, gt, mask)
    rng = np.random.default_rng(6)
    pred2, gt2 = pred.copy(), gt.copy()
    pred2[~mask] = rng.uniform(-1e3, 1e3, (~mask).sum())
    gt2[~mask] = rng.uniform(0, 1e3, (~mask).sum())
    assert ssim(pred2, gt2, mask) == pytest.approx(base, abs=1e-12)
    pred2[~mask] = np.nan  # e.g. a network's NaN where there is no surface
    assert ssim(pred2, gt2, mask) == pytest.approx(base, abs=1e-12)
    assert 0.2 < base < 0.99
    # Through depth_metrics: gt = 0 marks the holes, whatever the prediction says there.
    gt0 = np.where(mask, gt, 0.0)
    assert depth_metrics(pred2, gt0)["ssim"] == pytest.approx(base, abs=1e-12)


def test_ssim_with_holes_is_one_when_valid_parts_agree():
    gt, mask = _holes((16, 16), 7)
    pred = np.where(mask, gt, 123.0)  # differs only inside the holes
    assert ssim(pred, np.where(mask, gt, 0.0), mask) == pytest.approx(1.0, abs=1e-9)


def test_ssim_holes_add_no_structure():
    """Constant maps: variances are 0, so SSIM is the luminance term (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    at every valid pixel. Zero-filled holes would add false edges next to every hole and change it."""
    _, mask = _holes((20, 20), 8)
    gt = np.where(mask, 50.0, 0.0)
    pred = np.full(gt.shape, 60.0)
    c1 = (0.01 * 1.0) ** 2  # constant gt: data range 1
    expected = (2 * 50 * 60 + c1) / (50**2 + 60**2 + c1)
    assert ssim(pred, gt, mask) == pytest.approx(expected, rel=1e-8)  # E[x^2] - E[x]^2 rounding only
    # Treating the holes as data (zeros) measures the hole edges instead:
    assert ssim(pred, gt, np.ones(gt.shape, bool)) != pytest.approx(expected, rel=1e-3)


def test_errors_name_the_sample():
    with pytest.raises(SimrealError, match="sample s7: prediction shape"):
        depth_metrics(np.ones((3, 3)), np.ones((3, 2)), sample="s7")
    bad = GT.copy()
    bad[0, 0] = np.nan
    with pytest.raises(SimrealError, match="sample s8: ground truth depth holds 1 NaN"):
        depth_metrics(PRED, bad, sample="s8")
    with pytest.raises(SimrealError, match="sample s9: no valid depth pixel"):
        depth_metrics(PRED, np.zeros_like(GT), sample="s9")
    with pytest.raises(SimrealError, match="unknown scaling"):
        depth_metrics(PRED, GT, scaling="mean")  # type: ignore[arg-type]
    with pytest.raises(SimrealError, match="cannot scale"):
        depth_metrics(np.zeros_like(GT), GT, scaling="median", sample="z")
