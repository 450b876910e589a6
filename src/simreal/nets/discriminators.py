"""Patch discriminators: SimGAN's local discriminator, the PatchGAN and its multi-scale stack.

All three are fully convolutional and return a map of logits, one per image patch, so the adversarial
loss is local (each output location judges only its receptive field) and any image size works.

* :class:`SimGANLocalDiscriminator` (Shrivastava et al. 2017; methods.md 1.2): conv 96 3x3/2 -> 64
  3x3/2 -> max-pool 3x3/1 -> 32 3x3 -> 32 1x1 -> 2 1x1. Output (B, 2, ceil(H/4), ceil(W/4)): two-class
  logits per location ("refined" vs "target"), read with a softmax / cross-entropy per location. Every
  layer is "same"-padded so small images still give a map; each location sees a 23x23 px window.
* :class:`PatchDiscriminator`: the pix2pix / pix2pixHD "N-layer" PatchGAN (4x4 convs, stride 2 for
  ``n_layers`` layers, then two stride-1 layers; ``n_layers=3`` gives the 70x70 PatchGAN). Padding 2 per
  4x4 conv (pix2pixHD's choice) keeps at least a 2x2 map even for 16 px inputs. ``return_features=True``
  also returns every intermediate activation (for pix2pixHD's feature-matching loss).
* :class:`MultiScaleDiscriminator`: ``num_scales`` PatchDiscriminators, each on the image down-sampled
  by 2 more (3x3 average pool, stride 2, borders not counted), as in pix2pixHD and MUNIT; ``patch="munit"``
  stacks :class:`MUNITPatchDiscriminator` instead (MUNIT's ``MsImageDis``).
* :class:`MUNITPatchDiscriminator`: MUNIT's per-scale network: ``n_layer`` 4x4 stride-2 convs (reflect
  padding 1, LeakyReLU 0.2, features doubling from ``dim``), then a 1x1 conv to one logit per location;
  no stride-1 layers. Each layer halves the side, so an image needs ``2**n_layer`` px per scale (and
  ``2**(n_layer + num_scales - 1)`` for the whole stack: 64 px for MUNIT's 4 layers x 3 scales).

Example:
    >>> d = SimGANLocalDiscriminator(3)
    >>> d(torch.zeros(2, 3, 32, 48)).shape
    torch.Size([2, 2, 8, 12])
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from simreal.errors import SimrealError
from simreal.nets.blocks import ConvNormAct, Norm, norm_layer


def _check_images(x: torch.Tensor, channels: int, who: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise SimrealError(f"{who} expects (B, {channels}, H, W) images, got shape {tuple(x.shape)}")


class SimGANLocalDiscriminator(nn.Module):
    """SimGAN's local discriminator: (B, C, H, W) -> (B, 2, ceil(H/4), ceil(W/4)) logits.

    Args:
        channels: image channels.
        widths: features of the five conv layers before the 2-class output (SimGAN: 96, 64, 32, 32).
        norm: normalisation after each hidden conv. SimGAN has none; one port adds batch norm, which
            lets the discriminator tell batches apart by their statistics when real and fake are fed
            separately (simreal always feeds them as one batch).
    """

    def __init__(self, channels: int = 3, *, widths: tuple[int, int, int, int] = (96, 64, 32, 32), norm: Norm = "none"):
        super().__init__()
        if channels < 1 or len(widths) != 4 or min(widths) < 1:
            raise SimrealError(f"local discriminator needs channels >= 1 and 4 positive widths, got {channels}, {widths}")
        self.channels = channels
        a, b, c, d = widths
        self.net = nn.Sequential(
            ConvNormAct(channels, a, 3, 2, norm=norm, act="leaky_relu"),
            ConvNormAct(a, b, 3, 2, norm=norm, act="leaky_relu"),
            nn.MaxPool2d(3, stride=1, padding=1),
            ConvNormAct(b, c, 3, 1, norm=norm, act="leaky_relu"),
            ConvNormAct(c, d, 1, 1, norm=norm, act="leaky_relu"),
            nn.Conv2d(d, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels, "local discriminator")
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """N-layer PatchGAN: (B, C, H, W) -> (B, out_channels, h, w) logits.

    Args:
        channels: image channels (add the condition's channels for a conditional D).
        ndf: features of the first layer; doubled per layer up to ``8 * ndf``.
        n_layers: stride-2 layers (3: the 70x70 PatchGAN of pix2pix).
        norm: normalisation after every layer but the first and the last ("instance" in pix2pixHD and
            CycleGAN, "batch" in pix2pix).
        out_channels: logits per location (1 for LSGAN / BCE / hinge losses).

    Output size: each 4x4 conv with padding 2 maps n -> floor(n/s) + 1, so 16 px -> 5 px maps with
    3 layers and 256 px -> 35 px.
    """

    def __init__(self, channels: int = 3, *, ndf: int = 64, n_layers: int = 3, norm: Norm = "instance", out_channels: int = 1):
        super().__init__()
        if channels < 1 or ndf < 1 or n_layers < 1 or out_channels < 1:
            raise SimrealError(f"PatchDiscriminator needs positive channels, ndf, n_layers, out_channels; got {channels}, {ndf}, {n_layers}, {out_channels}")
        norm_layer(norm, 1)  # validates the choice before any layer is built
        self.channels = channels
        widths = [min(ndf * 2**i, ndf * 8) for i in range(n_layers + 1)]
        layers: list[nn.Module] = [ConvNormAct(channels, widths[0], 4, 2, padding=2, norm="none", act="leaky_relu")]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            layers.append(ConvNormAct(widths[i - 1], widths[i], 4, stride, padding=2, norm=norm, act="leaky_relu"))
        layers.append(nn.Conv2d(widths[-1], out_channels, 4, 1, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Logits (B, out_channels, h, w); with ``return_features`` the list of every layer's output,
        logits last."""
        _check_images(x, self.channels, "patch discriminator")
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features if return_features else x


class MUNITPatchDiscriminator(nn.Module):
    """MUNIT's single-scale discriminator: (B, C, H, W) -> (B, 1, H / 2**n_layer, W / 2**n_layer) logits.

    Args:
        channels: image channels.
        dim: features of the first layer (MUNIT: 64), doubled per layer.
        n_layer: 4x4 stride-2 convs (MUNIT: 4).
        norm: normalisation after every conv but the first (MUNIT: "none").
        out_channels: logits per location.

    Raises (forward):
        SimrealError: an image side below ``2**n_layer`` (reflect padding needs >= 2 px at the last conv).
    """

    def __init__(self, channels: int = 3, *, dim: int = 64, n_layer: int = 4, norm: Norm = "none", out_channels: int = 1):
        super().__init__()
        if channels < 1 or dim < 1 or n_layer < 1 or out_channels < 1:
            raise SimrealError(f"MUNIT discriminator needs positive channels, dim, n_layer, out_channels; got {channels}, {dim}, {n_layer}, {out_channels}")
        norm_layer(norm, 1)
        self.channels, self.n_layer = channels, n_layer
        layers: list[nn.Module] = [ConvNormAct(channels, dim, 4, 2, padding=1, norm="none", act="leaky_relu", padding_mode="reflect")]
        for _ in range(n_layer - 1):
            layers.append(ConvNormAct(dim, dim * 2, 4, 2, padding=1, norm=norm, act="leaky_relu", padding_mode="reflect"))
            dim *= 2
        layers.append(nn.Conv2d(dim, out_channels, 1))
        self.layers = nn.ModuleList(layers)

    @property
    def min_size(self) -> int:
        """Smallest image side this network takes."""
        return 2**self.n_layer

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor | list[torch.Tensor]:
        _check_images(x, self.channels, "MUNIT discriminator")
        if min(x.shape[-2:]) < self.min_size:
            raise SimrealError(f"MUNIT discriminator with {self.n_layer} layers needs images of at least "
                               f"{self.min_size} px per scale, got {x.shape[-2]}x{x.shape[-1]}")
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features if return_features else x


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` PatchDiscriminators on the image at full, 1/2, 1/4 ... resolution.

    Args:
        channels, ndf, n_layers, norm, out_channels: of each :class:`PatchDiscriminator` (with
            ``patch="munit"``: ``ndf`` is MUNIT's ``dim``, ``n_layers`` its ``n_layer``).
        num_scales: 3 in MUNIT, 2 in pix2pixHD's default.
        patch: "pix2pixhd" (:class:`PatchDiscriminator`) or "munit" (:class:`MUNITPatchDiscriminator`).

    Returns (forward):
        A list with one logit map per scale (finest first); with ``return_features``, one feature list
        per scale.
    """

    def __init__(
        self,
        channels: int = 3,
        *,
        num_scales: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: Norm = "instance",
        out_channels: int = 1,
        patch: Literal["pix2pixhd", "munit"] = "pix2pixhd",
    ):
        super().__init__()
        if num_scales < 1:
            raise SimrealError(f"num_scales must be >= 1, got {num_scales}")
        if patch not in ("pix2pixhd", "munit"):
            raise SimrealError(f"patch must be 'pix2pixhd' or 'munit', got {patch!r}")
        if patch == "munit":
            self.discriminators = nn.ModuleList(
                MUNITPatchDiscriminator(channels, dim=ndf, n_layer=n_layers, norm=norm, out_channels=out_channels)
                for _ in range(num_scales)
            )
        else:
            self.discriminators = nn.ModuleList(
                PatchDiscriminator(channels, ndf=ndf, n_layers=n_layers, norm=norm, out_channels=out_channels)
                for _ in range(num_scales)
            )
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> list:
        out = []
        for i, d in enumerate(self.discriminators):
            if i > 0:
                x = self.downsample(x)
            out.append(d(x, return_features=return_features))
        return out
