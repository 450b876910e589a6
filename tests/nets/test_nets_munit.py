"""MUNIT networks, the CycleGAN generator and MUNIT's discriminator: AdaIN closed forms, shapes, refusals."""

from __future__ import annotations

import pytest
import torch

from simreal.errors import SimrealError
from simreal.nets.discriminators import MultiScaleDiscriminator, MUNITPatchDiscriminator
from simreal.nets.generators import ResnetGenerator, init_weights
from simreal.nets.munit import (
    ADAIN_EPS,
    MLP,
    AdaINGenerator,
    ContentEncoder,
    Decoder,
    ResBlock,
    StyleEncoder,
    StylelessGenerator,
    adain,
)


def test_adain_with_given_params_is_the_closed_form():
    x = torch.zeros(1, 2, 2, 2)
    x[0, :, 0, :] = 2.0  # every channel: half 2, half 0 -> mean 1, variance 1
    weight, bias = torch.tensor([[3.0, 0.5]]), torch.tensor([[-1.0, 4.0]])
    y = adain(x, weight, bias)
    z = 1 / (1 + ADAIN_EPS) ** 0.5
    assert torch.allclose(y[0, 0, 0], torch.full((2,), 3 * z - 1)) and torch.allclose(y[0, 0, 1], torch.full((2,), -3 * z - 1))
    assert torch.allclose(y[0, 1].mean(), torch.tensor(4.0)) and torch.allclose(y[0, 1].std(unbiased=False), torch.tensor(0.5 * z))
    # per image: the second image's parameters do not touch the first
    x2 = torch.randn(2, 2, 3, 3)
    a = adain(x2, torch.tensor([[1.0, 1.0], [5.0, 5.0]]), torch.zeros(2, 2))
    assert torch.allclose(a[0], adain(x2[:1], torch.ones(1, 2), torch.zeros(1, 2))[0])
    with pytest.raises(SimrealError, match="adain needs"):
        adain(x, torch.ones(2), torch.zeros(2))


def test_adain_block_with_a_silent_second_conv_adds_the_second_bias():
    block = ResBlock(3, norm="adain")
    torch.nn.init.zeros_(block.conv2.weight)
    torch.nn.init.zeros_(block.conv2.bias)
    x = torch.randn(2, 3, 5, 5)
    params = torch.randn(2, 12)
    y = block(x, params)
    assert torch.allclose(y, x + params[:, 6:9, None, None], atol=1e-5)  # AdaIN of a constant map = its bias
    assert block.num_adain_params == 12
    with pytest.raises(SimrealError, match="needs params"):
        block(x, torch.zeros(2, 11))


def test_encoders_decoder_and_generators_have_munit_shapes():
    enc = ContentEncoder(3, dim=4, n_downsample=2, n_res=1)
    assert enc(torch.zeros(2, 3, 16, 24)).shape == (2, 16, 4, 6) and enc.output_dim == 16
    style = StyleEncoder(3, dim=4, style_dim=5, n_downsample=4)
    assert style(torch.zeros(2, 3, 20, 36)).shape == (2, 5)  # any size: global pooling
    dec = Decoder(3, dim=16, n_upsample=2, n_res=2, res_norm="adain")
    assert dec.num_adain_params == 2 * 4 * 16
    assert MLP(5, dec.num_adain_params, dim=7)(torch.zeros(2, 5)).shape == (2, 128)
    g = AdaINGenerator(3, dim=4, n_res=1, style_dim=5, mlp_dim=8)
    c, s = g.encode(torch.rand(2, 3, 16, 16) * 2 - 1)
    assert g.decode(c, s).shape == (2, 3, 16, 16)
    assert not torch.allclose(g.decode(c, torch.zeros_like(s)), g.decode(c, torch.ones_like(s) * 3))  # the style matters
    with pytest.raises(SimrealError, match="style codes must be"):
        g.decode(c, torch.zeros(2, 4))
    with pytest.raises(SimrealError, match="multiples of 4"):
        g.encode(torch.zeros(1, 3, 18, 16))
    with pytest.raises(SimrealError, match="at least 16 px"):
        StyleEncoder(3, dim=2, n_downsample=4)(torch.zeros(1, 3, 8, 8))
    a = StylelessGenerator(1, dim=4, n_res=1)
    x = torch.rand(3, 1, 8, 12) * 2 - 1
    y = a(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert torch.allclose(a(x[:1]), y[:1], atol=1e-6)  # instance / layer norm: no batch statistics


def test_munit_discriminator_halves_per_layer_and_refuses_small_images():
    d = MUNITPatchDiscriminator(3, dim=4, n_layer=3)
    assert d(torch.zeros(2, 3, 16, 32)).shape == (2, 1, 2, 4) and d.min_size == 8
    with pytest.raises(SimrealError, match="at least 8 px"):
        d(torch.zeros(1, 3, 4, 16))
    ms = MultiScaleDiscriminator(3, num_scales=3, ndf=4, n_layers=2, norm="none", patch="munit")
    assert [o.shape[-1] for o in ms(torch.zeros(1, 3, 32, 32))] == [8, 4, 2]
    with pytest.raises(SimrealError, match="patch must be"):
        MultiScaleDiscriminator(3, patch="stylegan")


def test_resnet_generator_keeps_size_and_init_matches_cyclegan():
    g = init_weights(ResnetGenerator(3, 1, ngf=8, n_blocks=2), "normal")
    y = g(torch.rand(2, 3, 16, 20) * 2 - 1)
    assert y.shape == (2, 1, 16, 20) and y.abs().max() <= 1
    w = torch.cat([m.weight.detach().flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(float(w.std()) - 0.02) < 0.003
    with pytest.raises(SimrealError, match="multiples of 4"):
        g(torch.zeros(1, 3, 18, 20))
    with pytest.raises(SimrealError, match="expects \\(B, 3, H, W\\)"):
        g(torch.zeros(1, 1, 16, 16))
