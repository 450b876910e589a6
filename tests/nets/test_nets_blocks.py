"""Building blocks: ResNet block, conv-norm-act, choices checked at construction."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from simreal.errors import SimrealError
from simreal.nets.blocks import ConvNormAct, ResnetBlock, activation, norm_layer


@pytest.mark.parametrize("norm", ["none", "batch", "instance"])
def test_resnet_block_keeps_shape_at_odd_sizes(norm):
    block = ResnetBlock(8, norm=norm)
    assert block(torch.rand(2, 8, 7, 11)).shape == (2, 8, 7, 11)


def test_resnet_block_uses_reflect_padding_and_is_identity_when_its_last_conv_is_zero():
    block = ResnetBlock(4, norm="none")
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 and all(c.padding_mode == "reflect" for c in convs)
    nn.init.zeros_(convs[-1].weight)
    nn.init.zeros_(convs[-1].bias)
    x = torch.rand(1, 4, 6, 6)
    assert torch.equal(block(x), x)  # no activation after the sum


def test_reflect_padding_paints_no_dark_border():
    torch.manual_seed(0)
    conv = ConvNormAct(1, 1, 3, norm="none", act="none", padding_mode="reflect")
    with torch.no_grad():
        conv[0].weight.fill_(1 / 9)
        conv[0].bias.zero_()
    x = torch.ones(1, 1, 5, 5)
    assert torch.allclose(conv(x), x)  # a box filter of a constant stays constant at the border
    zero = ConvNormAct(1, 1, 3, norm="none", act="none", padding_mode="zeros")
    with torch.no_grad():
        zero[0].weight.fill_(1 / 9)
        zero[0].bias.zero_()
    assert float(zero(x).detach()[0, 0, 0, 0]) == pytest.approx(4 / 9)


def test_norm_layers_and_choices():
    assert isinstance(norm_layer("batch", 4), nn.BatchNorm2d)
    assert isinstance(norm_layer("instance", 4), nn.InstanceNorm2d)
    assert isinstance(norm_layer("none", 4), nn.Identity)
    assert isinstance(activation("leaky_relu"), nn.LeakyReLU) and activation("leaky_relu").negative_slope == 0.2
    conv = ConvNormAct(3, 8, 3, 2, norm="batch")
    assert conv[0].bias is None  # a norm follows: no bias
    assert conv(torch.rand(1, 3, 9, 9)).shape == (1, 8, 5, 5)
    with pytest.raises(SimrealError, match="norm must be one of"):
        norm_layer("group", 4)  # type: ignore[arg-type]
    with pytest.raises(SimrealError, match="padding_mode"):
        ConvNormAct(3, 8, padding_mode="circularish")  # type: ignore[arg-type]
    with pytest.raises(SimrealError, match="dropout"):
        ResnetBlock(4, dropout=1.5)
