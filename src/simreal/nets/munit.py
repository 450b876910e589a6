"""MUNIT's networks (Huang et al., ECCV 2018) as Pfeiffer et al. (MICCAI 2019) use them: content and style
encoders, an AdaIN (or IN) decoder, the MLP that maps a style code to AdaIN parameters, and the two
generators of the sim-to-real translator (methods.md 2.3, 5.2).

* :func:`adain`: adaptive instance normalisation ``weight * (x - mean_x) / std_x + bias`` with per-image,
  per-channel ``weight`` and ``bias`` (biased variance, eps 1e-5: MUNIT's ``AdaptiveInstanceNorm2d``).
* :class:`ContentEncoder`: conv 7x7 -> ``dim``; ``n_downsample`` x conv 4x4 stride 2 (features doubling);
  ``n_res`` residual blocks; instance norm, ReLU, reflect padding. Output (B, dim * 2**n_downsample,
  H / 2**n_downsample, W / 2**n_downsample).
* :class:`StyleEncoder`: conv 7x7 -> ``dim``; 2 x conv 4x4 stride 2 doubling; ``n_downsample - 2`` more
  at constant width; global average pool; 1x1 conv -> ``style_dim``. No normalisation (it would remove
  the style). Output (B, style_dim).
* :class:`MLP`: ``n_blk`` linear layers (``style_dim -> mlp_dim -> ... -> n_params``), ReLU between.
* :class:`Decoder`: ``n_res`` residual blocks with AdaIN (style generator) or plain instance norm (the
  style-less generator), then ``n_upsample`` x [nearest 2x up-sampling, conv 5x5 halving the features,
  layer norm, ReLU], then conv 7x7 -> image, tanh.
* :class:`StylelessGenerator`: domain A (the simulation, one fixed look): content encoder + IN decoder.
* :class:`AdaINGenerator`: domain B (real): content encoder, style encoder, MLP, AdaIN decoder.

Defaults are MUNIT's / Pfeiffer's: ``dim 64, n_downsample 2, n_res 4, style_dim 8, mlp_dim 256``, style
encoder with 4 down-samplings, MLP of 3 blocks, reflect padding, ReLU. Images are in [-1, 1]; every side
must be a multiple of ``2**n_downsample`` (translators pad and crop back).

Differences from the public code, on purpose: the decoder takes its AdaIN parameters as an argument
instead of having them written into its modules before each call (MUNIT's ``assign_adain_params``), so
one decoder can run several styles in one batch and nothing stateful sits between encode and decode;
MUNIT's hand-written LayerNorm (per-sample mean and *unbiased* std over C, H, W, gamma initialised uniform
in [0, 1)) is ``nn.GroupNorm(1, C)`` here (biased variance, gamma initialised to 1).

Example:
    >>> g = AdaINGenerator(3, dim=8, n_res=1, style_dim=4, mlp_dim=16)
    >>> content, style = g.encode(torch.zeros(2, 3, 16, 16))
    >>> content.shape, style.shape, g.decode(content, style).shape
    (torch.Size([2, 32, 4, 4]), torch.Size([2, 4]), torch.Size([2, 3, 16, 16]))
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from simreal.errors import SimrealError
from simreal.nets.blocks import Padding, check_choice
from simreal.nets.generators import init_weights

BlockNorm = Literal["none", "instance", "layer"]
ResNorm = Literal["adain", "instance", "none"]

#: eps of MUNIT's AdaIN and instance norms.
ADAIN_EPS = 1e-5


def adain(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = ADAIN_EPS) -> torch.Tensor:
    """Adaptive instance norm: normalise each image's channels to mean 0, std 1, then scale and shift.

    Args:
        x: (B, C, H, W) features.
        weight: (B, C) scales ("std" in MUNIT's parameter vector).
        bias: (B, C) shifts ("mean").
        eps: added to the (biased) variance.

    Returns:
        (B, C, H, W).
    """
    if x.ndim != 4 or weight.shape != x.shape[:2] or bias.shape != x.shape[:2]:
        raise SimrealError(f"adain needs x (B, C, H, W) and weight, bias (B, C); got {tuple(x.shape)}, "
                           f"{tuple(weight.shape)}, {tuple(bias.shape)}")
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps) * weight[..., None, None] + bias[..., None, None]


def _norm(kind: BlockNorm, c: int) -> nn.Module:
    check_choice("norm", kind, BlockNorm)
    if kind == "instance":
        return nn.InstanceNorm2d(c, affine=False, eps=ADAIN_EPS)
    if kind == "layer":
        return nn.GroupNorm(1, c, eps=ADAIN_EPS)
    return nn.Identity()


class ConvBlock(nn.Sequential):
    """MUNIT's ``Conv2dBlock``: padding (reflect by default) -> conv (with bias) -> norm -> activation."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, padding: int = 0, *,
                 norm: BlockNorm = "none", act: Literal["relu", "tanh", "none"] = "relu", padding_mode: Padding = "reflect"):
        check_choice("padding_mode", padding_mode, Padding)
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel_size, stride, padding, padding_mode=padding_mode)]
        layers.append(_norm(norm, c_out))
        if act == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif act == "tanh":
            layers.append(nn.Tanh())
        super().__init__(*layers)


class ResBlock(nn.Module):
    """MUNIT's residual block ``x + conv(norm, none)(conv(norm, ReLU)(x))`` at constant width.

    With ``norm="adain"`` the two norms are AdaIN and :meth:`forward` takes their parameters:
    ``params`` (B, 4C) = [bias1, weight1, bias2, weight2] (MUNIT's order: mean, then std, per layer).
    """

    def __init__(self, dim: int, *, norm: ResNorm = "instance", padding_mode: Padding = "reflect"):
        super().__init__()
        check_choice("res_norm", norm, ResNorm)
        self.dim, self.norm = dim, norm
        plain: BlockNorm = "instance" if norm == "instance" else "none"
        self.conv1 = nn.Conv2d(dim, dim, 3, 1, 1, padding_mode=padding_mode)
        self.conv2 = nn.Conv2d(dim, dim, 3, 1, 1, padding_mode=padding_mode)
        self.norm1, self.norm2 = _norm(plain, dim), _norm(plain, dim)

    @property
    def num_adain_params(self) -> int:
        return 4 * self.dim if self.norm == "adain" else 0

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        c = self.dim
        y = self.conv1(x)
        if self.norm == "adain":
            if params is None or params.shape != (x.shape[0], 4 * c):
                got = None if params is None else tuple(params.shape)
                raise SimrealError(f"an AdaIN block of {c} features needs params ({x.shape[0]}, {4 * c}), got {got}")
            y = adain(y, params[:, c : 2 * c], params[:, :c])
        else:
            y = self.norm1(y)
        y = self.conv2(F.relu(y))
        if self.norm == "adain":
            y = adain(y, params[:, 3 * c :], params[:, 2 * c : 3 * c])
        else:
            y = self.norm2(y)
        return x + y


def _check_images(x: torch.Tensor, channels: int, multiple: int, who: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise SimrealError(f"{who} expects (B, {channels}, H, W) images, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise SimrealError(f"{who} needs sides that are multiples of {multiple}, got {h}x{w} (translators pad them)")


class ContentEncoder(nn.Module):
    """(B, channels, H, W) -> content (B, dim * 2**n_downsample, H / 2**n_downsample, W / 2**n_downsample)."""

    def __init__(self, channels: int = 3, *, dim: int = 64, n_downsample: int = 2, n_res: int = 4,
                 norm: BlockNorm = "instance", padding_mode: Padding = "reflect"):
        super().__init__()
        if channels < 1 or dim < 1 or n_downsample < 0 or n_res < 0:
            raise SimrealError(f"content encoder needs channels, dim >= 1 and n_downsample, n_res >= 0; got {channels}, {dim}, {n_downsample}, {n_res}")
        self.channels, self.size_multiple = channels, 2**n_downsample
        layers: list[nn.Module] = [ConvBlock(channels, dim, 7, 1, 3, norm=norm, padding_mode=padding_mode)]
        for _ in range(n_downsample):
            layers.append(ConvBlock(dim, 2 * dim, 4, 2, 1, norm=norm, padding_mode=padding_mode))
            dim *= 2
        res_norm: ResNorm = "instance" if norm == "instance" else "none"
        layers += [ResBlock(dim, norm=res_norm, padding_mode=padding_mode) for _ in range(n_res)]
        self.net = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels, self.size_multiple, "content encoder")
        return self.net(x)


class StyleEncoder(nn.Module):
    """(B, channels, H, W) -> style code (B, style_dim); any size of at least 2**n_downsample px."""

    def __init__(self, channels: int = 3, *, dim: int = 64, style_dim: int = 8, n_downsample: int = 4,
                 padding_mode: Padding = "reflect"):
        super().__init__()
        if channels < 1 or dim < 1 or style_dim < 1 or n_downsample < 0:
            raise SimrealError(f"style encoder needs positive channels, dim, style_dim and n_downsample >= 0; got {channels}, {dim}, {style_dim}, {n_downsample}")
        self.channels, self.style_dim, self.n_downsample = channels, style_dim, n_downsample
        layers: list[nn.Module] = [ConvBlock(channels, dim, 7, 1, 3, padding_mode=padding_mode)]
        for i in range(n_downsample):
            grow = i < 2
            layers.append(ConvBlock(dim, 2 * dim if grow else dim, 4, 2, 1, padding_mode=padding_mode))
            dim = 2 * dim if grow else dim
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise SimrealError(f"style encoder expects (B, {self.channels}, H, W) images, got shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < max(4, 2**self.n_downsample):
            raise SimrealError(f"style encoder needs images of at least {max(4, 2 ** self.n_downsample)} px, got {x.shape[-2]}x{x.shape[-1]}")
        return self.net(x).flatten(1)


class MLP(nn.Module):
    """``n_blk`` linear layers with ReLU between: (B, in_dim) -> (B, out_dim)."""

    def __init__(self, in_dim: int, out_dim: int, *, dim: int = 256, n_blk: int = 3):
        super().__init__()
        if min(in_dim, out_dim, dim) < 1 or n_blk < 1:
            raise SimrealError(f"MLP needs positive sizes and n_blk >= 1; got {in_dim}, {out_dim}, {dim}, {n_blk}")
        widths = [in_dim] + [dim] * (n_blk - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i in range(n_blk):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i < n_blk - 1:
                layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class Decoder(nn.Module):
    """Content (B, dim, h, w) [+ AdaIN params (B, num_adain_params)] -> image (B, channels, h * 2**n_upsample, ...)."""

    def __init__(self, channels: int = 3, *, dim: int = 256, n_upsample: int = 2, n_res: int = 4,
                 res_norm: ResNorm = "adain", padding_mode: Padding = "reflect"):
        super().__init__()
        if channels < 1 or dim < 2**n_upsample or n_res < 0:
            raise SimrealError(f"decoder needs channels >= 1, dim >= 2**n_upsample, n_res >= 0; got {channels}, {dim}, {n_upsample}, {n_res}")
        self.dim = dim
        self.blocks = nn.ModuleList(ResBlock(dim, norm=res_norm, padding_mode=padding_mode) for _ in range(n_res))
        up: list[nn.Module] = []
        for _ in range(n_upsample):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), ConvBlock(dim, dim // 2, 5, 1, 2, norm="layer", padding_mode=padding_mode)]
            dim //= 2
        up.append(ConvBlock(dim, channels, 7, 1, 3, act="tanh", padding_mode=padding_mode))
        self.up = nn.Sequential(*up)

    @property
    def num_adain_params(self) -> int:
        return sum(b.num_adain_params for b in self.blocks)

    def forward(self, content: torch.Tensor, adain_params: torch.Tensor | None = None) -> torch.Tensor:
        if content.ndim != 4 or content.shape[1] != self.dim:
            raise SimrealError(f"decoder expects content (B, {self.dim}, h, w), got shape {tuple(content.shape)}")
        x, offset = content, 0
        for block in self.blocks:
            n = block.num_adain_params
            x = block(x, None if n == 0 else adain_params[:, offset : offset + n] if adain_params is not None else None)
            offset += n
        return self.up(x)


class StylelessGenerator(nn.Module):
    """Pfeiffer et al.'s domain-A generator: content encoder + decoder with instance norm (no style).

    Args:
        channels: image channels.
        dim, n_downsample, n_res: of the content encoder (the decoder mirrors it).
        padding_mode: of every conv.
    """

    def __init__(self, channels: int = 3, *, dim: int = 64, n_downsample: int = 2, n_res: int = 4, padding_mode: Padding = "reflect"):
        super().__init__()
        self.channels = channels
        self.enc_content = ContentEncoder(channels, dim=dim, n_downsample=n_downsample, n_res=n_res, padding_mode=padding_mode)
        self.dec = Decoder(channels, dim=self.enc_content.output_dim, n_upsample=n_downsample, n_res=n_res,
                           res_norm="instance", padding_mode=padding_mode)
        self.size_multiple = self.enc_content.size_multiple
        init_weights(self, "kaiming")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc_content(x)

    def decode(self, content: torch.Tensor) -> torch.Tensor:
        return self.dec(content)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class AdaINGenerator(nn.Module):
    """MUNIT's ``AdaINGen`` (domain B): content + style encoders, MLP, AdaIN decoder.

    Args:
        channels: image channels.
        dim, n_downsample, n_res: of the content encoder (the decoder mirrors it).
        style_dim: length of a style code (MUNIT / Pfeiffer: 8).
        mlp_dim: hidden width of the MLP (256).
        style_n_downsample: down-samplings of the style encoder (MUNIT: 4).
        mlp_blocks: linear layers of the MLP (3).
        padding_mode: of every conv.
    """

    def __init__(self, channels: int = 3, *, dim: int = 64, n_downsample: int = 2, n_res: int = 4, style_dim: int = 8,
                 mlp_dim: int = 256, style_n_downsample: int = 4, mlp_blocks: int = 3, padding_mode: Padding = "reflect"):
        super().__init__()
        self.channels, self.style_dim = channels, style_dim
        self.enc_style = StyleEncoder(channels, dim=dim, style_dim=style_dim, n_downsample=style_n_downsample, padding_mode=padding_mode)
        self.enc_content = ContentEncoder(channels, dim=dim, n_downsample=n_downsample, n_res=n_res, padding_mode=padding_mode)
        self.dec = Decoder(channels, dim=self.enc_content.output_dim, n_upsample=n_downsample, n_res=n_res,
                           res_norm="adain", padding_mode=padding_mode)
        self.mlp = MLP(style_dim, self.dec.num_adain_params, dim=mlp_dim, n_blk=mlp_blocks)
        self.size_multiple = self.enc_content.size_multiple
        init_weights(self, "kaiming")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images -> (content, style code (B, style_dim))."""
        return self.enc_content(x), self.enc_style(x)

    def encode_style(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc_style(x)

    def decode(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Content and style codes (B, style_dim) -> images."""
        if style.ndim != 2 or style.shape != (content.shape[0], self.style_dim):
            raise SimrealError(f"style codes must be ({content.shape[0]}, {self.style_dim}), got {tuple(style.shape)}")
        return self.dec(content, self.mlp(style))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        content, style = self.encode(x)
        return self.decode(content, style)
