"""The SimGAN refiner (Shrivastava et al., CVPR 2017), as used for reverse domain adaptation.

Architecture (methods.md 1.2): 3x3 conv to ``ngf`` features -> ReLU -> ``n_blocks`` ResNet blocks
(two 3x3 convs of ``ngf`` features each) -> 1x1 conv back to the image channels -> tanh. There is no
down-sampling anywhere, so output pixel (i, j) is computed from a small window around input pixel
(i, j): the refined image stays aligned pixel for pixel with its input (so its depth map and masks stay
valid), and the network runs on images of any size. The receptive field is ``3 + 4 * n_blocks`` pixels
wide (19 px for the default 4 blocks).

``identity_init=True`` makes the refiner residual, ``clamp(x + r(x), -1, 1)``, with the last 1x1 conv
initialised to zero: the output then equals the input exactly at step 0 and training starts from "change
nothing" instead of from a random image (the paper instead pre-trains the tanh refiner towards the identity
on the self-regularisation loss alone).

Images are in [-1, 1] (the tanh range).

Example:
    >>> r = SimGANRefiner(3, ngf=8, n_blocks=2, identity_init=True)
    >>> x = torch.rand(1, 3, 20, 30) * 2 - 1
    >>> torch.equal(r(x), x)
    True
"""

from __future__ import annotations

import torch
from torch import nn

from simreal.errors import SimrealError
from simreal.nets.blocks import ConvNormAct, Norm, Padding, ResnetBlock


class SimGANRefiner(nn.Module):
    """Full-resolution residual refiner: (B, C, H, W) in [-1, 1] -> (B, C, H, W) in [-1, 1].

    Args:
        channels: image channels in and out (3 for RGB, 1 for grey).
        ngf: feature channels of every layer (64 in SimGAN).
        n_blocks: ResNet blocks (4 in SimGAN's eye-gaze refiner).
        norm: normalisation in the blocks. SimGAN has none; "batch" (one public port) makes the output
            depend on the batch and on train/eval mode, "instance" removes each image's mean and contrast.
        padding_mode: border padding of the 3x3 convs (reflect: no dark frame at the image border).
        identity_init: residual output ``clamp(x + r(x), -1, 1)`` with a zero-initialised last conv, so
            the refiner starts as the identity; otherwise ``tanh(r(x))`` as in the paper.
    """

    def __init__(
        self,
        channels: int = 3,
        *,
        ngf: int = 64,
        n_blocks: int = 4,
        norm: Norm = "none",
        padding_mode: Padding = "reflect",
        identity_init: bool = False,
    ):
        super().__init__()
        if channels < 1 or ngf < 1 or n_blocks < 0:
            raise SimrealError(f"refiner needs channels >= 1, ngf >= 1 and n_blocks >= 0, got {channels}, {ngf}, {n_blocks}")
        self.channels = channels
        self.identity_init = identity_init
        self.head = ConvNormAct(channels, ngf, 3, norm=norm, act="relu", padding_mode=padding_mode)
        self.blocks = nn.Sequential(*[ResnetBlock(ngf, norm=norm, padding_mode=padding_mode) for _ in range(n_blocks)])
        self.tail = nn.Conv2d(ngf, channels, 1)
        if identity_init:
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise SimrealError(f"refiner expects (B, {self.channels}, H, W) images, got shape {tuple(x.shape)}")
        r = self.tail(self.blocks(self.head(x)))
        if self.identity_init:
            # clamp, not tanh: tanh(atanh(x) + r) would need atanh of +-1 (black and saturated pixels).
            return (x + r).clamp(-1.0, 1.0)
        return torch.tanh(r)

    @property
    def receptive_field(self) -> int:
        """Width in pixels of the input window that one output pixel depends on."""
        return 3 + 4 * len(self.blocks)
