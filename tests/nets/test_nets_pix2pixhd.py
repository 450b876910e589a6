"""pix2pixHD global generator (two heads) and its conditional 2-scale discriminator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from simreal.errors import SimrealError
from simreal.nets.pix2pixhd import GlobalGenerator, conditional_discriminator


def test_two_heads_shapes_ranges_and_softmax():
    torch.manual_seed(0)
    g = GlobalGenerator(2, 3, ngf=4, n_downsample=2, n_blocks=1)
    x = torch.randn(2, 2, 32, 24) * 3
    ct, seg = g(x)
    assert ct.shape == (2, 1, 32, 24) and seg.shape == (2, 3, 32, 24)
    assert ct.abs().max() <= 1  # tanh head
    assert seg.min() < 0 or seg.max() > 1  # logits, not probabilities
    _, p = g.probabilities(x)
    torch.testing.assert_close(p.sum(1), torch.ones(2, 32, 24))
    assert g.size_multiple == 4


def test_architecture_follows_pix2pixhd():
    g = GlobalGenerator(2, 2, ngf=4, n_downsample=3, n_blocks=2)
    convs = [m for m in g.trunk.modules() if isinstance(m, nn.Conv2d)]
    # 7x7 stem, then stride-2 3x3 down-convs doubling the features
    assert convs[0].kernel_size == (7, 7) and convs[0].padding_mode == "reflect" and convs[0].out_channels == 4
    assert [(c.stride, c.out_channels) for c in convs[1:4]] == [((2, 2), 8), ((2, 2), 16), ((2, 2), 32)]
    ups = [m for m in g.trunk.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [u.out_channels for u in ups] == [16, 8, 4]
    assert any(isinstance(m, nn.InstanceNorm2d) for m in g.trunk.modules())
    for head, out in ((g.ct_head, 1), (g.seg_head, 2)):
        assert isinstance(head[0], nn.ReflectionPad2d) and head[1].kernel_size == (7, 7) and head[1].out_channels == out
    assert isinstance(g.ct_head[-1], nn.Tanh)


def test_outputs_of_an_image_do_not_depend_on_the_batch():
    """Instance norm: each image is generated on its own (sampling in chunks gives the same bytes)."""
    torch.manual_seed(1)
    g = GlobalGenerator(2, 2, ngf=4, n_downsample=2, n_blocks=1).eval()
    x = torch.randn(3, 2, 16, 16)
    with torch.no_grad():
        ct_all, seg_all = g(x)
        ct_one, seg_one = g(x[1:2])
    torch.testing.assert_close(ct_all[1:2], ct_one)
    torch.testing.assert_close(seg_all[1:2], seg_one)


@pytest.mark.parametrize(
    "kwargs, shape, match",
    [
        ({}, (1, 3, 32, 32), "expects \\(B, 2, H, W\\)"),
        ({}, (1, 2, 30, 32), "multiples of 4"),
        ({"n_downsample": 3}, (1, 2, 8, 8), "too small"),
    ],
)
def test_bad_input_is_refused(kwargs, shape, match):
    g = GlobalGenerator(2, 2, ngf=4, **{"n_downsample": 2, "n_blocks": 1, **kwargs})
    with pytest.raises(SimrealError, match=match):
        g(torch.zeros(shape))


def test_bad_settings_are_refused():
    with pytest.raises(SimrealError, match="num_classes >= 2"):
        GlobalGenerator(2, 1)
    with pytest.raises(SimrealError, match="norm"):
        GlobalGenerator(2, 2, ngf=4, norm="group")  # type: ignore[arg-type]
    with pytest.raises(SimrealError, match="condition_channels"):
        conditional_discriminator(0)


def test_discriminator_sees_condition_and_ct_at_two_scales():
    torch.manual_seed(0)
    d = conditional_discriminator(2, ndf=4)
    out = d(torch.randn(2, 3, 64, 64))
    assert len(out) == 2
    assert out[0].shape == (2, 1, 11, 11) and out[1].shape[-1] < out[0].shape[-1]
    # the second scale sees the 2x average-pooled input: the same net on a pooled image gives the same map
    pooled = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(d(x)[1], d.discriminators[1](pooled(x)))
    with pytest.raises(SimrealError, match="\\(B, 3, H, W\\)"):
        d(torch.zeros(1, 4, 32, 32))  # the segmentation is not part of D's input
