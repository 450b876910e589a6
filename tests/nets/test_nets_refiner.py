"""SimGAN refiner: full resolution, any size, pixel aligned, identity initialisation."""

from __future__ import annotations

import pytest
import torch

from simreal.errors import SimrealError
from simreal.nets.refiner import SimGANRefiner


@pytest.mark.parametrize("size", [(16, 16), (17, 23), (8, 40)])
def test_output_has_the_input_size_and_tanh_range(size):
    torch.manual_seed(0)
    r = SimGANRefiner(3, ngf=8, n_blocks=2)
    with torch.no_grad():
        y = r(torch.rand(2, 3, *size) * 2 - 1)
    assert y.shape == (2, 3, *size)
    assert float(y.abs().max()) < 1.0


def test_identity_init_returns_the_input_exactly():
    r = SimGANRefiner(1, ngf=8, n_blocks=2, identity_init=True)
    x = torch.rand(3, 1, 13, 21) * 2 - 1
    x[0, 0, 0, 0], x[0, 0, 0, 1] = -1.0, 1.0  # black and saturated pixels too
    assert torch.equal(r(x), x)


def test_output_is_pixel_aligned_with_the_input():
    """A local change of the input changes only outputs within the receptive field around it, and a
    shifted input gives the shifted output away from the borders: nothing is resampled."""
    torch.manual_seed(0)
    r = SimGANRefiner(3, ngf=8, n_blocks=2).eval()
    assert r.receptive_field == 11
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    x2 = x.clone()
    x2[..., 16, 16] += 0.5
    changed = (r(x2) - r(x)).abs().sum(1)[0] > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    half = r.receptive_field // 2
    assert changed[16, 16] and int((rows - 16).abs().max()) <= half and int((cols - 16).abs().max()) <= half
    shifted = torch.roll(x, shifts=(3, 2), dims=(-2, -1))
    a, b = torch.roll(r(x), shifts=(3, 2), dims=(-2, -1)), r(shifted)
    m = half + 4
    assert torch.allclose(a[..., m:-m, m:-m], b[..., m:-m, m:-m], atol=1e-6)


def test_bad_arguments_and_inputs_raise():
    with pytest.raises(SimrealError):
        SimGANRefiner(0)
    with pytest.raises(SimrealError, match="norm"):
        SimGANRefiner(3, norm="layer")  # type: ignore[arg-type]
    with pytest.raises(SimrealError, match=r"\(B, 3, H, W\)"):
        SimGANRefiner(3, ngf=4, n_blocks=1)(torch.zeros(1, 1, 8, 8))
