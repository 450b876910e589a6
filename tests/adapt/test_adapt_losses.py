"""Adversarial and self-regularisation losses: closed forms, reductions, psi choices."""

from __future__ import annotations

import math

import pytest
import torch

from simreal.adapt.losses import (
    FAKE, TARGET, GANLoss, SelfRegularisationLoss, gan_loss, gaussian_blur, local_accuracy, local_adversarial_loss,
    mean_weight_from_sum, psi_transform, self_regularisation_loss,
)
from simreal.errors import SimrealError


@pytest.mark.parametrize("shape", [(1, 1, 8, 8), (4, 3, 16, 24)])
def test_self_regularisation_is_a_per_pixel_mean_at_any_size(shape):
    x = torch.zeros(shape)
    assert float(self_regularisation_loss(x + 0.25, x)) == pytest.approx(0.25)
    half = x.clone()
    half[..., : shape[-1] // 2] = 1.0  # half the pixels off by 1
    assert float(self_regularisation_loss(half, x)) == pytest.approx(0.5)


def test_sum_reduced_weight_converts_to_the_mean_one():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(128, 1, 35, 55, generator=g), torch.rand(128, 1, 35, 55, generator=g)
    delta = 1e-4  # AlexHex7/SimGAN_pytorch: delta * sum |.| over the batch
    as_sum = delta * (a - b).abs().sum()
    lam = mean_weight_from_sum(delta, a.numel())
    assert lam == pytest.approx(24.64)
    assert float(lam * self_regularisation_loss(a, b)) == pytest.approx(float(as_sum), rel=1e-5)
    with pytest.raises(SimrealError):
        mean_weight_from_sum(1.0, 0)


def test_grayscale_psi_ignores_colour_changes_that_keep_brightness():
    x = torch.full((2, 3, 8, 8), 0.5)
    y = x.clone()
    y[:, 0] += 0.3
    y[:, 1] -= 0.3  # colour shift, same channel mean
    assert float(self_regularisation_loss(y, x, "identity")) == pytest.approx(0.2)
    assert float(self_regularisation_loss(y, x, "grayscale")) == pytest.approx(0.0, abs=1e-7)
    assert psi_transform(x, "grayscale").shape == (2, 1, 8, 8)


def test_lowpass_psi_keeps_shading_and_ignores_fine_texture():
    x = torch.zeros(1, 1, 32, 32)
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2).float()[None, None] * 0.4 - 0.2
    shaded = x + 0.3
    assert float(self_regularisation_loss(x + checker, x, "identity")) == pytest.approx(0.2)
    assert float(self_regularisation_loss(x + checker, x, "lowpass", sigma=2.0)) < 0.02  # texture is free
    assert float(self_regularisation_loss(shaded, x, "lowpass", sigma=2.0)) == pytest.approx(0.3, rel=1e-4)


def test_gaussian_blur_keeps_constants_and_the_mean_and_checks_sigma():
    x = torch.full((2, 3, 9, 11), 0.7)
    assert torch.allclose(gaussian_blur(x, 1.5), x)
    y = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    b = gaussian_blur(y, 1.0)
    assert b.shape == y.shape and float(b.std()) < float(y.std())
    assert gaussian_blur(torch.rand(1, 1, 3, 3), 5.0).shape == (1, 1, 3, 3)  # kernel clipped to the image
    with pytest.raises(SimrealError, match="sigma"):
        gaussian_blur(y, 0.0)
    with pytest.raises(SimrealError, match="psi"):
        psi_transform(y, "edges")  # type: ignore[arg-type]
    with pytest.raises(SimrealError, match="shapes differ"):
        self_regularisation_loss(y, y[..., :8])


def test_local_adversarial_loss_is_a_cross_entropy_per_location():
    zeros = torch.zeros(2, 2, 4, 5)
    assert float(local_adversarial_loss(zeros, TARGET)) == pytest.approx(math.log(2))
    sure = torch.zeros(2, 2, 4, 5)
    sure[:, TARGET] = 20.0  # every location says "target domain"
    assert float(local_adversarial_loss(sure, TARGET)) == pytest.approx(0.0, abs=1e-6)
    assert float(local_adversarial_loss(sure, FAKE)) == pytest.approx(20.0, rel=1e-4)
    assert float(local_accuracy(sure, TARGET)) == 1.0 and float(local_accuracy(sure, FAKE)) == 0.0
    # one row of locations in four wrong: accuracy and loss are means over locations
    mixed = sure.clone()
    mixed[:, :, :1, :] = mixed[:, :, :1, :].flip(1)
    assert float(local_accuracy(mixed, TARGET)) == pytest.approx(0.75)
    assert float(local_adversarial_loss(mixed, TARGET)) == pytest.approx(20.0 / 4, rel=1e-4)
    with pytest.raises(SimrealError, match=r"\(B, 2, h, w\)"):
        local_adversarial_loss(torch.zeros(2, 1, 4, 4), TARGET)
    with pytest.raises(SimrealError, match="target"):
        local_adversarial_loss(zeros, 2)


def test_gan_losses_closed_forms_and_lists():
    zeros, ones = torch.zeros(2, 1, 3, 3), torch.ones(2, 1, 3, 3)
    assert float(gan_loss(zeros, True, "lsgan")) == pytest.approx(1.0)
    assert float(gan_loss(ones, True, "lsgan")) == pytest.approx(0.0)
    assert float(gan_loss(ones, False, "lsgan")) == pytest.approx(1.0)
    assert float(gan_loss(zeros, True, "bce")) == pytest.approx(math.log(2))
    assert float(gan_loss(zeros, True, "hinge")) == pytest.approx(1.0)
    assert float(gan_loss(ones * 2, False, "hinge")) == pytest.approx(3.0)
    assert float(gan_loss(ones * 2, True, "hinge", for_discriminator=False)) == pytest.approx(-2.0)
    # a multi-scale list (and feature lists, logits last) averages the scales
    assert float(gan_loss([zeros, ones], True, "lsgan")) == pytest.approx(0.5)
    assert float(GANLoss("lsgan")([[ones * 5, zeros], [ones]], True)) == pytest.approx(0.5)
    with pytest.raises(SimrealError):
        gan_loss(zeros, False, "hinge", for_discriminator=False)
    with pytest.raises(SimrealError, match="mode"):
        GANLoss("wgan")  # type: ignore[arg-type]


def test_self_regularisation_module_matches_the_function():
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    loss = SelfRegularisationLoss("lowpass", sigma=1.0)
    assert torch.equal(loss(a, b), self_regularisation_loss(a, b, "lowpass", 1.0))
    with pytest.raises(SimrealError):
        SelfRegularisationLoss("identity", sigma=-1.0)
