"""Small convolutional building blocks shared by the adversarial networks (refiners, translators, patch
discriminators).

Every block takes explicit keywords with ``Literal`` choices and checks them once, at construction:

* :func:`norm_layer`: ``"none"`` / ``"batch"`` / ``"instance"`` normalisation of a feature map.
* :func:`activation`: ``"relu"`` / ``"leaky_relu"`` (slope 0.2, the GAN convention) / ``"tanh"`` / ``"none"``.
* :class:`ConvNormAct`: conv -> norm -> activation, with the padding mode of the conv as a choice.
* :class:`ResnetBlock`: ``x + F(x)`` with ``F`` = two 3x3 convs (reflect padding by default), as in the
  SimGAN refiner and the CycleGAN / pix2pixHD generators. No activation after the sum: a block whose
  last conv is zero is exactly the identity.

Instance norm is affine-free (``InstanceNorm2d(affine=False)``) as in CycleGAN / pix2pixHD; batch norm
is the usual affine one. A conv followed by a norm has no bias (the norm's mean subtraction would
cancel it).

Example:
    >>> block = ResnetBlock(32, norm="instance")
    >>> block(torch.zeros(2, 32, 16, 16)).shape
    torch.Size([2, 32, 16, 16])
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

from simreal.errors import SimrealError

Norm = Literal["none", "batch", "instance"]
Activation = Literal["relu", "leaky_relu", "tanh", "none"]
Padding = Literal["reflect", "replicate", "zeros"]

#: Negative slope of every LeakyReLU here (DCGAN / pix2pix / SimGAN ports all use 0.2).
LEAKY_SLOPE = 0.2


def check_choice(name: str, value: object, choices: object) -> None:
    """Raise SimrealError unless ``value`` is one of the ``Literal`` type's values.

    Example:
        >>> check_choice("norm", "batch", Norm)
    """
    options = get_args(choices)
    if value not in options:
        raise SimrealError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")


def norm_layer(kind: Norm, channels: int) -> nn.Module:
    """A normalisation of (B, channels, H, W) feature maps, or ``nn.Identity`` for ``"none"``."""
    check_choice("norm", kind, Norm)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    return nn.Identity()


def activation(kind: Activation) -> nn.Module:
    """An activation module (LeakyReLU with slope :data:`LEAKY_SLOPE`)."""
    check_choice("activation", kind, Activation)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leaky_relu":
        return nn.LeakyReLU(LEAKY_SLOPE, inplace=True)
    if kind == "tanh":
        return nn.Tanh()
    return nn.Identity()


class ConvNormAct(nn.Sequential):
    """Conv2d -> norm -> activation: (B, c_in, H, W) -> (B, c_out, H', W').

    Args:
        c_in, c_out: channels in and out.
        kernel_size, stride: of the convolution; ``padding`` defaults to ``kernel_size // 2`` ("same" for
            odd kernels at stride 1, ``ceil(H / stride)`` outputs otherwise).
        norm, act: see :func:`norm_layer`, :func:`activation`.
        padding_mode: how the border is padded ("reflect" avoids the dark frame zero padding paints
            into image-to-image outputs).
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        padding: int | None = None,
        norm: Norm = "none",
        act: Activation = "relu",
        padding_mode: Padding = "zeros",
    ):
        check_choice("padding_mode", padding_mode, Padding)
        pad = kernel_size // 2 if padding is None else padding
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel_size, stride, pad, bias=norm == "none", padding_mode=padding_mode),
            norm_layer(norm, c_out),
            activation(act),
        )


class ResnetBlock(nn.Module):
    """Residual block ``x + conv(act(norm(conv(x))))`` at constant width and resolution.

    Args:
        channels: feature channels (in = out).
        norm: normalisation after each conv ("none" in the SimGAN refiner, "instance" in CycleGAN).
        act: activation between the two convs.
        padding_mode: border padding of both 3x3 convs (reflect by default, as CycleGAN / pix2pixHD).
        dropout: dropout probability between the convs (0 = none).

    Shapes:
        (B, channels, H, W) -> (B, channels, H, W); any H, W >= 2 with reflect padding.
    """

    def __init__(
        self,
        channels: int,
        *,
        norm: Norm = "none",
        act: Activation = "relu",
        padding_mode: Padding = "reflect",
        dropout: float = 0.0,
    ):
        super().__init__()
        if channels < 1:
            raise SimrealError(f"ResnetBlock needs >= 1 channel, got {channels}")
        if not 0.0 <= dropout < 1.0:
            raise SimrealError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = [ConvNormAct(channels, channels, 3, norm=norm, act=act, padding_mode=padding_mode)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(ConvNormAct(channels, channels, 3, norm=norm, act="none", padding_mode=padding_mode))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
