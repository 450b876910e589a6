"""Image-to-image generators: CycleGAN's ResNet generator, and the weight initialisations GANs use.

:class:`ResnetGenerator` (Johnson et al. 2016, as in ``junyanz/pytorch-CycleGAN-and-pix2pix``'s
``ResnetGenerator``; methods.md 5.1)::

    reflect-pad 3, conv 7x7 -> ngf, norm, ReLU
    n_downsampling x [conv 3x3 stride 2 -> 2x features, norm, ReLU]
    n_blocks x ResnetBlock (reflect padding, norm, no dropout by default)
    n_downsampling x [transposed conv 3x3 stride 2 (output padding 1) -> half the features, norm, ReLU]
    reflect-pad 3, conv 7x7 -> channels_out, tanh

CycleGAN's defaults: ngf 64, 9 blocks (for 256 px; 6 for 128 px), instance norm, 2 down-samplings. The
image sides must be multiples of ``2**n_downsampling`` (:attr:`ResnetGenerator.size_multiple`); the output
then has the input's size. Images are in [-1, 1].

:func:`init_weights` applies the initialisations of the public codes: ``"normal"`` (CycleGAN / pix2pix:
conv and linear weights N(0, 0.02), batch-norm weights N(1, 0.02), biases 0), ``"gaussian"`` (MUNIT's
discriminators: the same without touching norms) and ``"kaiming"`` (MUNIT's generators: He normal,
fan-in, biases 0).

Example:
    >>> g = ResnetGenerator(3, 3, ngf=8, n_blocks=2)
    >>> g(torch.zeros(1, 3, 16, 20)).shape
    torch.Size([1, 3, 16, 20])
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from simreal.errors import SimrealError
from simreal.nets.blocks import Norm, ResnetBlock, check_choice, norm_layer

Init = Literal["normal", "gaussian", "kaiming"]


def init_weights(module: nn.Module, kind: Init = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise every conv / linear layer of ``module`` in place (see the module docstring); returns it."""
    check_choice("init", kind, Init)

    def visit(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif kind == "normal" and isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    module.apply(visit)
    return module


class ResnetGenerator(nn.Module):
    """CycleGAN's ResNet generator: (B, channels_in, H, W) in [-1, 1] -> (B, channels_out, H, W) in [-1, 1].

    Args:
        channels_in, channels_out: image channels of the two domains.
        ngf: features of the first layer (CycleGAN: 64).
        n_blocks: ResNet blocks at the bottleneck (CycleGAN: 9 at 256 px, 6 at 128 px).
        n_downsampling: stride-2 convs down (and transposed convs up): 2 in CycleGAN.
        norm: "instance" (CycleGAN's default), "batch" or "none".
        dropout: dropout in the ResNet blocks (CycleGAN's ``--no_dropout`` default: 0).

    Raises (forward):
        SimrealError: channels other than ``channels_in``, or sides that are not multiples of
            :attr:`size_multiple`.
    """

    def __init__(
        self,
        channels_in: int = 3,
        channels_out: int = 3,
        *,
        ngf: int = 64,
        n_blocks: int = 9,
        n_downsampling: int = 2,
        norm: Norm = "instance",
        dropout: float = 0.0,
    ):
        super().__init__()
        if min(channels_in, channels_out, ngf) < 1 or n_blocks < 0 or n_downsampling < 0:
            raise SimrealError(f"ResnetGenerator needs positive channels and ngf, n_blocks and n_downsampling >= 0; "
                               f"got {channels_in}, {channels_out}, {ngf}, {n_blocks}, {n_downsampling}")
        norm_layer(norm, 1)
        self.channels_in, self.channels_out = channels_in, channels_out
        self.size_multiple = 2**n_downsampling
        bias = norm == "none"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(channels_in, ngf, 7, bias=bias), norm_layer(norm, ngf), nn.ReLU(True),
        ]
        for i in range(n_downsampling):
            c = ngf * 2**i
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm_layer(norm, 2 * c), nn.ReLU(True)]
        c = ngf * 2**n_downsampling
        layers += [ResnetBlock(c, norm=norm, padding_mode="reflect", dropout=dropout) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias), norm_layer(norm, c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, channels_out, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels_in:
            raise SimrealError(f"ResnetGenerator expects (B, {self.channels_in}, H, W) images, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = self.size_multiple
        if h % m or w % m or min(h, w) < max(4, m):
            raise SimrealError(f"ResnetGenerator needs sides that are multiples of {m} (>= {max(4, m)} px), got {h}x{w}; "
                               "pad the images (translators do this at inference)")
        return self.net(x)


def padded_size(side: int, multiple: int) -> int:
    """``side`` rounded up to a multiple of ``multiple``."""
    return int(math.ceil(side / multiple) * multiple)
