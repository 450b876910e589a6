"""Depth and segmentation losses: closed forms, invariances, shape errors."""

import math

import pytest
import torch

from simreal.errors import SimrealError
from simreal.tasks.losses import DepthLoss, SegLoss, gradient_matching_loss, l1_depth_loss, log_l1_loss, silog_loss


def _depth(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 1, 8, 8, generator=g) * 40 + 5


def test_losses_zero_when_prediction_equals_target():
    t = _depth()
    assert l1_depth_loss(t, t) == 0
    assert silog_loss(t, t) == pytest.approx(0, abs=1e-7)
    assert log_l1_loss(t, t) == pytest.approx(0, abs=1e-7)
    assert gradient_matching_loss(t, t) == pytest.approx(0, abs=1e-7)
    total, terms = DepthLoss()(t, t)
    assert total == pytest.approx(0, abs=1e-6) and set(terms) == {"l1", "silog", "grad"}


def test_l1_closed_form_ignores_invalid_pixels():
    t = torch.full((1, 1, 2, 2), 10.0)
    t[0, 0, 0, 0] = 0.0  # no surface: must not count
    p = torch.full((1, 1, 2, 2), 13.0)
    p[0, 0, 0, 0] = 1000.0
    assert l1_depth_loss(p, t) == pytest.approx(3.0)


def test_log_l1_is_relative_error_and_skips_invalid_pixels():
    t = torch.tensor([[[[10.0, 40.0], [0.0, 20.0]]]])  # one pixel with no surface
    p = torch.tensor([[[[11.0, 44.0], [500.0, 18.0]]]])
    expected = (math.log(1.1) + math.log(1.1) + abs(math.log(0.9))) / 3
    assert log_l1_loss(p, t) == pytest.approx(expected, rel=1e-5)
    # a 10 % error costs the same near and far (plain L1 would weigh the far pixel 4x)
    near, far = log_l1_loss(p[..., :1, :1], t[..., :1, :1]), log_l1_loss(p[..., :1, 1:], t[..., :1, 1:])
    assert near == pytest.approx(float(far), rel=1e-5)
    _, terms = DepthLoss(l1_weight=0.0, log_l1_weight=1.0)(p, t)
    assert set(terms) == {"log_l1", "silog", "grad"}
    assert terms["log_l1"] == pytest.approx(expected, rel=1e-5)


def test_silog_scale_invariance_and_closed_form():
    p, t = _depth(1), _depth(2)
    assert silog_loss(p * 7.5, t, lam=1.0) == pytest.approx(float(silog_loss(p, t, lam=1.0)), abs=1e-5)
    # with lambda < 1 a global scale s costs (1 - lam) log(s)^2 on a perfect prediction
    s, lam = 2.0, 0.5
    assert silog_loss(t * s, t, lam=lam) == pytest.approx((1 - lam) * math.log(s) ** 2, rel=1e-4)
    assert silog_loss(p * 3, t, lam=0.85) != pytest.approx(float(silog_loss(p, t, lam=0.85)), abs=1e-3)


def test_gradient_matching_scale_invariant_but_sees_structure():
    t = _depth(3)
    assert gradient_matching_loss(t * 3.0, t) == pytest.approx(0, abs=1e-6)
    assert gradient_matching_loss(_depth(4), t) > 0.01


def test_depth_loss_shape_errors_name_shapes():
    t = _depth()
    with pytest.raises(SimrealError, match=r"\(B, 1, H, W\)"):
        l1_depth_loss(t[:, 0], t[:, 0])
    with pytest.raises(SimrealError, match="does not match"):
        silog_loss(t, t[:1])
    with pytest.raises(SimrealError, match="lambda"):
        silog_loss(t, t, lam=2.0)
    with pytest.raises(SimrealError):
        DepthLoss(l1_weight=0, silog_weight=0, grad_weight=0)


def test_seg_loss_low_for_confident_correct_logits_and_checks_input():
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[:, 2:6, 2:6] = 1
    good = torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).float() * 20 - 10
    loss = SegLoss(num_classes=2)
    assert loss(good, target) < 0.01
    assert loss(-good, target) > 1.0
    with pytest.raises(SimrealError, match="outside"):
        loss(good, target + 1)
    with pytest.raises(SimrealError, match="logits"):
        loss(good[:, :1], target)
