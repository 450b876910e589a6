"""Patch discriminators: SimGAN's local D, the PatchGAN and its multi-scale stack, on small images."""

from __future__ import annotations

import pytest
import torch

from simreal.errors import SimrealError
from simreal.nets.discriminators import MultiScaleDiscriminator, PatchDiscriminator, SimGANLocalDiscriminator


@pytest.mark.parametrize("size, out", [((16, 16), (4, 4)), ((17, 30), (5, 8)), ((64, 64), (16, 16))])
def test_local_discriminator_gives_two_class_logits_per_location(size, out):
    d = SimGANLocalDiscriminator(3)
    y = d(torch.rand(2, 3, *size))
    assert y.shape == (2, 2, *out)
    assert torch.allclose(y.softmax(1).sum(1), torch.ones(2, *out))


def test_local_discriminator_is_local():
    """Each output location sees a bounded window: changing a far corner leaves the opposite corner alone."""
    torch.manual_seed(0)
    d = SimGANLocalDiscriminator(1)
    x = torch.rand(1, 1, 64, 64)
    x2 = x.clone()
    x2[..., :8, :8] = 0
    diff = (d(x2) - d(x)).abs()[0].sum(0)
    assert diff[0, 0] > 0 and diff[-1, -1] == 0
    assert SimGANLocalDiscriminator(3, norm="batch")(torch.rand(2, 3, 16, 16)).shape == (2, 2, 4, 4)


@pytest.mark.parametrize("size", [16, 32, 33])
def test_patch_discriminator_works_on_small_images(size):
    d = PatchDiscriminator(3, ndf=8, n_layers=3)
    y = d(torch.rand(2, 3, size, size))
    assert y.ndim == 4 and y.shape[:2] == (2, 1) and min(y.shape[-2:]) >= 2
    feats = d(torch.rand(2, 3, size, size), return_features=True)
    assert len(feats) == 5 and feats[-1].shape == y.shape


def test_multiscale_discriminator_returns_one_map_per_scale():
    d = MultiScaleDiscriminator(1, num_scales=3, ndf=8, n_layers=2)
    out = d(torch.rand(2, 1, 32, 32))
    assert len(out) == 3
    sides = [o.shape[-1] for o in out]
    assert sides == sorted(sides, reverse=True) and sides[-1] >= 2
    feats = d(torch.rand(1, 1, 16, 16), return_features=True)
    assert len(feats) == 3 and all(isinstance(f, list) for f in feats)


def test_bad_arguments_raise():
    with pytest.raises(SimrealError):
        SimGANLocalDiscriminator(3, widths=(96, 64, 32))  # type: ignore[arg-type]
    with pytest.raises(SimrealError, match="norm"):
        PatchDiscriminator(3, norm="spectral")  # type: ignore[arg-type]
    with pytest.raises(SimrealError):
        MultiScaleDiscriminator(3, num_scales=0)
    with pytest.raises(SimrealError, match=r"\(B, 3, H, W\)"):
        SimGANLocalDiscriminator(3)(torch.zeros(1, 1, 8, 8))
