"""pix2pixHD's global generator with two heads (CT image + segmentation), and its 2-scale discriminator.

UM-synthesis (methods.md 3.3; SemiCS2 ``models/networks.py::GlobalGenerator``) conditions one generator on a
guidance map (superpixel mask + edge map, or a manual segmentation) and reads two outputs from one trunk:

    input (B, in_channels, H, W)
      -> ReflectionPad(3) + Conv 7x7 (ngf) + InstanceNorm + ReLU
      -> n_downsample x [Conv 3x3 stride 2 (features x2) + IN + ReLU]          (ngf * 2**n_downsample)
      -> n_blocks ResNet blocks (reflect-padded 3x3 convs, IN)
      -> n_downsample x [ConvTranspose 3x3 stride 2 (features / 2) + IN + ReLU]
      -> CT head:  ReflectionPad(3) + Conv 7x7 -> 1 channel + tanh              (B, 1, H, W) in [-1, 1]
      -> seg head: ReflectionPad(3) + Conv 7x7 -> num_classes channels          (B, num_classes, H, W) logits

The segmentation head returns **logits**; SemiCS2 ends it in a softmax, which :meth:`GlobalGenerator.probabilities`
(and the Dice + CE loss) apply. Paper defaults: ngf 64, 4 down-samplings (1024 features in the trunk),
9 blocks, 3 classes. H and W must be multiples of ``2 ** n_downsample`` (:attr:`GlobalGenerator.size_multiple`).

:func:`conditional_discriminator` is pix2pixHD's ``MultiscaleDiscriminator`` as SemiCS2 uses it: ``num_D = 2``
70x70-style PatchGANs (``n_layers_D = 3``, ``ndf = 64``, instance norm, LeakyReLU 0.2), the second on a 2x
average-pooled input, shown the condition and the CT (not the segmentation); its outputs are logits, read
with a sigmoid (vanilla BCE GAN, ``no_lsgan=True``).

Sizes (2 input channels, 2 classes): ngf 64 / 4 down / 9 blocks is 182 M parameters (the paper's, nearly all in
the 1024-feature blocks); ngf 32 / 3 down / 6 blocks 7.9 M and ngf 16 / 3 down / 4 blocks 1.4 M (CPU
experiments); ngf 8 / 2 down / 2 blocks 50 k (tests).

Example:
    >>> g = GlobalGenerator(2, 3, ngf=8, n_downsample=2, n_blocks=2)
    >>> ct, seg = g(torch.zeros(1, 2, 32, 32))
    >>> tuple(ct.shape), tuple(seg.shape)
    ((1, 1, 32, 32), (1, 3, 32, 32))
"""

from __future__ import annotations

import torch
from torch import nn

from simreal.errors import SimrealError
from simreal.nets.blocks import ConvNormAct, Norm, ResnetBlock, norm_layer
from simreal.nets.discriminators import MultiScaleDiscriminator

__all__ = ["GlobalGenerator", "conditional_discriminator"]


class GlobalGenerator(nn.Module):
    """pix2pixHD global generator with a CT head (tanh) and a segmentation head (logits).

    Args:
        in_channels: input channels (guidance + edges: 2; guidance alone: 1).
        num_classes: segmentation classes, background included (SemiCS2: 3).
        ngf: features of the first layer (paper: 64); doubled at each down-sampling.
        n_downsample: stride-2 convolutions (paper: 4).
        n_blocks: ResNet blocks at the coarsest resolution (paper: 9).
        norm: normalisation after every conv but the heads ("instance" in pix2pixHD).

    Forward:
        ``(B, in_channels, H, W)`` -> ``(ct, seg)``: ``ct`` (B, 1, H, W) in [-1, 1] and ``seg`` (B, num_classes,
        H, W) logits. H and W must be multiples of :attr:`size_multiple`.
    """

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 3,
        *,
        ngf: int = 64,
        n_downsample: int = 4,
        n_blocks: int = 9,
        norm: Norm = "instance",
    ):
        super().__init__()
        if in_channels < 1 or num_classes < 2:
            raise SimrealError(f"GlobalGenerator needs in_channels >= 1 and num_classes >= 2 (background included), got {in_channels}, {num_classes}")
        if ngf < 1 or n_downsample < 0 or n_blocks < 0:
            raise SimrealError(f"GlobalGenerator needs ngf >= 1, n_downsample >= 0, n_blocks >= 0, got {ngf}, {n_downsample}, {n_blocks}")
        norm_layer(norm, 1)  # validates the choice before any layer is built
        self.in_channels, self.num_classes = int(in_channels), int(num_classes)
        self.n_downsample = int(n_downsample)
        layers: list[nn.Module] = [ConvNormAct(in_channels, ngf, 7, norm=norm, act="relu", padding_mode="reflect")]
        for i in range(n_downsample):
            c = ngf * 2**i
            layers.append(ConvNormAct(c, 2 * c, 3, 2, padding=1, norm=norm, act="relu"))
        c = ngf * 2**n_downsample
        layers += [ResnetBlock(c, norm=norm, padding_mode="reflect") for _ in range(n_blocks)]
        for i in range(n_downsample):
            c = ngf * 2 ** (n_downsample - i)
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=norm == "none"),
                norm_layer(norm, c // 2),
                nn.ReLU(inplace=True),
            ]
        self.trunk = nn.Sequential(*layers)
        self.ct_head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, 1, 7), nn.Tanh())
        self.seg_head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, num_classes, 7))

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (``2 ** n_downsample``)."""
        return 2**self.n_downsample

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise SimrealError(f"GlobalGenerator expects (B, {self.in_channels}, H, W) input, got shape {tuple(x.shape)}")
        m = self.size_multiple
        if x.shape[-2] % m or x.shape[-1] % m:
            raise SimrealError(f"GlobalGenerator with {self.n_downsample} down-samplings needs H and W multiples of {m}, got {tuple(x.shape[-2:])}")
        if min(x.shape[-2:]) < 4 or min(x.shape[-2:]) // m < 2:
            # the 7x7 reflect padding needs > 3 px, the coarsest 3x3 reflect padding 2 px
            raise SimrealError(f"GlobalGenerator input {tuple(x.shape[-2:])} is too small for {self.n_downsample} down-samplings")
        f = self.trunk(x)
        return self.ct_head(f), self.seg_head(f)

    def probabilities(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ct, softmax(seg))``: the outputs as SemiCS2's generator returns them."""
        ct, seg = self(x)
        return ct, seg.softmax(dim=1)


def conditional_discriminator(
    condition_channels: int = 2,
    *,
    num_d: int = 2,
    n_layers: int = 3,
    ndf: int = 64,
    norm: Norm = "instance",
) -> MultiScaleDiscriminator:
    """pix2pixHD's multi-scale D for (condition ++ CT): ``condition_channels + 1`` input channels.

    Args:
        condition_channels: channels of the generator's input (guidance + edges: 2).
        num_d: scales (SemiCS2: 2); scale k sees the input average-pooled k times (3x3, stride 2).
        n_layers: stride-2 layers of each PatchGAN (3: 70x70 receptive field).
        ndf: features of the first layer.
        norm: normalisation of the inner layers.

    Returns:
        A :class:`~simreal.nets.discriminators.MultiScaleDiscriminator` returning one (B, 1, h, w) logit map per
        scale, finest first.
    """
    if condition_channels < 1:
        raise SimrealError(f"condition_channels must be >= 1, got {condition_channels}")
    return MultiScaleDiscriminator(condition_channels + 1, num_scales=num_d, ndf=ndf, n_layers=n_layers, norm=norm, out_channels=1)
