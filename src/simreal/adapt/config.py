"""The configuration trees of adversarial runs: frozen dataclasses, validated once, no torch import.

A run's config is one tree with three parts the engine knows (``out``, ``method``: the method's name,
``engine``: :class:`EngineConfig`) and the method's own parts (for reverse DA, ``data`` and ``reverse``).
It is written as ``RUN/config.json`` with :func:`simreal.configs.write_config_file` and read back with
:func:`simreal.configs.build`, so ``--config RUN/config.json`` reproduces (or resumes) a run. A CLI flag
maps to one field.

This module imports neither torch nor Lightning, so the CLI can show defaults in ``--help`` cheaply.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, get_args

from simreal.errors import SimrealError
from simreal.tasks.config import Strategy, check_distributed

Norm = Literal["none", "batch", "instance"]
Psi = Literal["identity", "grayscale", "lowpass"]
CropMode = Literal["crop", "resize"]

PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "64-true", "bf16-true", "16-true")


def _choice(flag: str, value: object, choices: object) -> None:
    options = get_args(choices)
    if value not in options:
        raise SimrealError(f"{flag} must be one of {', '.join(map(str, options))}, got {value!r}")


@dataclass(frozen=True)
class EngineConfig:
    """How an adversarial run is driven (see :mod:`simreal.adapt.engine`).

    Args:
        steps: training steps in all, pre-training phases included (raise it to extend a run).
        seed: seeds the initial weights and, with the step, every random draw of every step.
        checkpoint_every: write ``checkpoints/last.ckpt`` every this many steps (and at the end).
        sample_every: write a sample grid every this many steps (and at the end).
        log_every: average the logged losses over this many steps, then write them.
        n_samples: rows of the sample grid.
        num_workers: DataLoader worker processes (0 = load in the training process).
        accelerator, devices, precision: passed to ``lightning.Trainer``.
        strategy, num_nodes: several processes (``devices`` x ``num_nodes``): "auto", "ddp" (re-runs the
            command line: the CLI, GPUs, nodes) or "ddp_spawn" (from Python code); each process takes
            ``batch_size / processes`` images of every step's batch (see :mod:`simreal.tasks.distributed`).
    """

    steps: int = 10000
    seed: int = 0
    checkpoint_every: int = 1000
    sample_every: int = 500
    log_every: int = 10
    n_samples: int = 4
    num_workers: int = 0
    accelerator: str = "auto"
    devices: str = "auto"
    strategy: Strategy = "auto"
    num_nodes: int = 1
    precision: str = "32-true"

    def __post_init__(self) -> None:
        check_distributed(self.devices, self.strategy, self.num_nodes)
        for name in ("steps", "checkpoint_every", "sample_every", "log_every", "n_samples"):
            if getattr(self, name) < 1:
                raise SimrealError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise SimrealError(f"--workers must be >= 0, got {self.num_workers}")
        if self.precision not in PRECISIONS:
            raise SimrealError(f"unknown precision {self.precision!r} (e.g. 32-true, 16-mixed, bf16-mixed)")


#: EngineConfig fields a resumed run may change: how long and where it runs, not what it learns.
RESUMABLE_FIELDS = ("steps", "checkpoint_every", "sample_every", "log_every", "n_samples", "num_workers", "accelerator", "devices",
                    "strategy", "num_nodes")


@dataclass(frozen=True)
class UnpairedDataConfig:
    """The two unpaired image sets of a domain-adaptation run and how they are batched.

    Args:
        real: folder of the images to refine (a simreal dataset or a plain image folder).
        synthetic: folder of images with the target look (the same kinds of folder).
        size: (H, W) of the training crops.
        batch_size: images per mini-batch.
        mode: "crop" (random native-resolution windows) or "resize" (whole images scaled).
    """

    real: str
    synthetic: str
    size: tuple[int, int] = (64, 64)
    batch_size: int = 8
    mode: CropMode = "crop"

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 8:
            raise SimrealError(f"--size must be (H, W) with both >= 8 pixels, got {self.size}")
        if self.batch_size < 1:
            raise SimrealError(f"--batch-size must be >= 1, got {self.batch_size}")
        _choice("--mode", self.mode, CropMode)


@dataclass(frozen=True)
class ReverseDAConfig:
    """Every keyword of :class:`simreal.adapt.reverse.ReverseDA`, same names and defaults (the sources of
    the defaults are tabled in :mod:`simreal.adapt.reverse`).

    Args:
        channels: image channels, 1 or 3 (None: taken from the images when the run starts).
        ngf: refiner features per layer (SimGAN: 64).
        n_blocks: refiner ResNet blocks (SimGAN: 4).
        norm: refiner normalisation ("none" in SimGAN).
        identity_init: residual refiner ``clamp(x + r(x))`` whose last conv starts at zero, so it starts
            as the identity (instead of SimGAN's ``tanh(r(x))``).
        d_norm: local discriminator normalisation.
        lambda_reg: weight of the self-regularisation L1, a **per-pixel mean** (a weight of a summed L1
            converts as ``delta * n_summed``: AlexHex7's 1e-4 is 24.6 here, daniel-merrick's 0.5 is 0.5).
        psi: what the self-regularisation compares: "identity", "grayscale" (channel mean) or "lowpass".
        psi_sigma: Gaussian sigma in pixels of the "lowpass" psi.
        history_size: capacity of the history buffer of refined images (0: no buffer).
        pretrain_r: refiner pre-training steps on the self-regularisation loss alone.
        pretrain_d: discriminator pre-training steps (after the refiner's).
        k_r: refiner updates per adversarial step.
        k_d: discriminator updates per adversarial step.
        lr_r, lr_d: Adam learning rates of refiner and discriminator.
        betas: Adam betas of both.
    """

    channels: int | None = None
    ngf: int = 64
    n_blocks: int = 4
    norm: Norm = "none"
    identity_init: bool = False
    d_norm: Norm = "none"
    lambda_reg: float = 0.5
    psi: Psi = "identity"
    psi_sigma: float = 2.0
    history_size: int = 12800
    pretrain_r: int = 1000
    pretrain_d: int = 200
    k_r: int = 2
    k_d: int = 1
    lr_r: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        validate_reverse(**dataclasses.asdict(self))


def validate_reverse(*, channels, ngf, n_blocks, norm, identity_init, d_norm, lambda_reg, psi, psi_sigma,
                     history_size, pretrain_r, pretrain_d, k_r, k_d, lr_r, lr_d, betas) -> None:
    """Raise SimrealError for impossible reverse-DA settings (the CLI flag named in the message)."""
    _choice("--norm", norm, Norm)
    _choice("--d-norm", d_norm, Norm)
    _choice("--psi", psi, Psi)
    if not isinstance(identity_init, bool):
        raise SimrealError(f"identity_init must be true or false, got {identity_init!r}")
    if channels is not None and channels not in (1, 3):
        raise SimrealError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if ngf < 1 or n_blocks < 0:
        raise SimrealError(f"--ngf must be >= 1 and --blocks >= 0, got {ngf} / {n_blocks}")
    if lambda_reg < 0 or not psi_sigma > 0:
        raise SimrealError(f"--lambda-reg must be >= 0 and --psi-sigma > 0, got {lambda_reg} / {psi_sigma}")
    if history_size < 0 or pretrain_r < 0 or pretrain_d < 0:
        raise SimrealError(f"--history, --pretrain-r and --pretrain-d must be >= 0, got {history_size}, {pretrain_r}, {pretrain_d}")
    if k_r < 1 or k_d < 1:
        raise SimrealError(f"--k-r and --k-d must be >= 1, got {k_r} / {k_d}")
    if not (lr_r > 0 and lr_d > 0):
        raise SimrealError(f"--lr-r and --lr-d must be > 0, got {lr_r} / {lr_d}")
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise SimrealError(f"Adam betas must be two numbers in [0, 1), got {betas}")


@dataclass(frozen=True)
class ReverseRunConfig:
    """A whole reverse-DA run: where it writes, the two image sets, the method, the engine.

    ``RUN/config.json`` holds exactly this tree (``reverse.channels`` filled in), and
    ``simreal adapt reverse --config RUN/config.json`` takes it back.
    """

    out: str
    data: UnpairedDataConfig
    reverse: ReverseDAConfig = field(default_factory=ReverseDAConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    method: Literal["reverse"] = "reverse"


# -- forward domain adaptation: sim -> real translators (Pfeiffer et al.'s MUNIT extension, CycleGAN) ---------

#: The translator methods of ``simreal adapt forward`` (and ``adapt translate``).
FORWARD_METHODS = ("munit", "cyclegan")

DNorm = Literal["none", "batch", "instance"]


def _positive(**values: float) -> None:
    bad = {k: v for k, v in values.items() if not v > 0}
    if bad:
        raise SimrealError(", ".join(f"--{k.replace('_', '-')} must be > 0, got {v}" for k, v in bad.items()))


def _non_negative(**values: float) -> None:
    bad = {k: v for k, v in values.items() if v < 0}
    if bad:
        raise SimrealError(", ".join(f"--{k.replace('_', '-')} must be >= 0, got {v}" for k, v in bad.items()))


def _betas(betas: tuple[float, float]) -> None:
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise SimrealError(f"Adam betas must be two numbers in [0, 1), got {betas}")


@dataclass(frozen=True)
class MunitConfig:
    """Every keyword of :class:`simreal.adapt.munit.MUNIT`, same names and defaults (their sources are
    tabled in :mod:`simreal.adapt.munit`).

    Args:
        channels: image channels, 1 or 3 (None: taken from the images when the run starts).
        dim, n_downsample, n_res: content encoders (and mirrored decoders) of both generators.
        style_dim, mlp_dim, style_n_downsample: the real domain's style code, MLP width, style encoder.
        d_dim, d_n_layer, d_num_scales, d_norm: the multi-scale LSGAN discriminator of each domain.
        gan_w, recon_x_w, recon_c_w, recon_s_w, recon_x_cyc_w: MUNIT's loss weights (Pfeiffer's values).
        ms_ssim_a_w, ms_ssim_b_w: weights of ``1 - MS-SSIM`` of brightness, sim -> real and real -> sim.
        ms_ssim_kernel: Gaussian window of the MS-SSIM (px).
        ms_ssim_scales: MS-SSIM levels; None = as many of 5 as the training size allows.
        real_style_p: probability that a step uses the style encoded from the real batch (detached)
            instead of one drawn from N(0, I).
        lr, betas, weight_decay: Adam of both the generators and the discriminators.
        lr_step, lr_gamma: the learning rate is ``lr * lr_gamma ** (step // lr_step)``.
    """

    channels: int | None = None
    dim: int = 64
    n_downsample: int = 2
    n_res: int = 4
    style_dim: int = 8
    mlp_dim: int = 256
    style_n_downsample: int = 4
    d_dim: int = 64
    d_n_layer: int = 4
    d_num_scales: int = 3
    d_norm: DNorm = "none"
    gan_w: float = 1.0
    recon_x_w: float = 10.0
    recon_c_w: float = 1.0
    recon_s_w: float = 1.0
    recon_x_cyc_w: float = 10.0
    ms_ssim_a_w: float = 5.0
    ms_ssim_b_w: float = 3.0
    ms_ssim_kernel: int = 11
    ms_ssim_scales: int | None = None
    real_style_p: float = 0.5
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 1e-4
    lr_step: int = 100_000
    lr_gamma: float = 0.5

    def __post_init__(self) -> None:
        validate_munit(**dataclasses.asdict(self))


def validate_munit(*, channels, dim, n_downsample, n_res, style_dim, mlp_dim, style_n_downsample, d_dim, d_n_layer,
                   d_num_scales, d_norm, gan_w, recon_x_w, recon_c_w, recon_s_w, recon_x_cyc_w, ms_ssim_a_w,
                   ms_ssim_b_w, ms_ssim_kernel, ms_ssim_scales, real_style_p, lr, betas, weight_decay, lr_step,
                   lr_gamma) -> None:
    """Raise SimrealError for impossible MUNIT settings (the CLI flag named in the message)."""
    _choice("--d-norm", d_norm, DNorm)
    if channels is not None and channels not in (1, 3):
        raise SimrealError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if min(dim, style_dim, mlp_dim, d_dim, d_n_layer, d_num_scales) < 1:
        raise SimrealError(f"--dim, --style-dim, --mlp-dim, --d-dim, --d-layers and --d-scales must be >= 1, got "
                           f"{dim}, {style_dim}, {mlp_dim}, {d_dim}, {d_n_layer}, {d_num_scales}")
    if n_downsample < 0 or n_res < 0 or style_n_downsample < 0:
        raise SimrealError(f"--downsample, --n-res and --style-downsample must be >= 0, got {n_downsample}, {n_res}, {style_n_downsample}")
    _non_negative(gan_w=gan_w, recon_x_w=recon_x_w, recon_c_w=recon_c_w, recon_s_w=recon_s_w, recon_x_cyc_w=recon_x_cyc_w,
                  ms_ssim_a_w=ms_ssim_a_w, ms_ssim_b_w=ms_ssim_b_w, weight_decay=weight_decay)
    if ms_ssim_kernel < 1 or ms_ssim_kernel % 2 == 0:
        raise SimrealError(f"--ms-ssim-kernel must be an odd number of pixels, got {ms_ssim_kernel}")
    if ms_ssim_scales is not None and not 1 <= ms_ssim_scales <= 5:
        raise SimrealError(f"--ms-ssim-scales must be 1..5 (or unset: by image size), got {ms_ssim_scales}")
    if not 0.0 <= real_style_p <= 1.0:
        raise SimrealError(f"--real-style-p must be in [0, 1], got {real_style_p}")
    _positive(lr=lr, lr_step=lr_step, lr_gamma=lr_gamma)
    _betas(betas)


@dataclass(frozen=True)
class MunitRunConfig:
    """A whole MUNIT run: ``data.synthetic`` is domain A (the simulation), ``data.real`` domain B."""

    out: str
    data: UnpairedDataConfig
    munit: MunitConfig = field(default_factory=MunitConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    method: Literal["munit"] = "munit"


@dataclass(frozen=True)
class CycleGANConfig:
    """Every keyword of :class:`simreal.adapt.cyclegan.CycleGAN`, same names and defaults (methods.md 5.1).

    Args:
        channels: image channels, 1 or 3 (None: from the images).
        ngf, n_blocks, n_downsampling, norm, dropout: both ResNet generators.
        ndf, d_n_layers, d_norm: both PatchGAN discriminators (3 layers: the 70x70 PatchGAN).
        lambda_a, lambda_b: cycle-consistency weights A -> B -> A and B -> A -> B.
        lambda_identity: identity loss weight, relative to lambda_a / lambda_b.
        pool_size: image pool of past translations for the discriminators (0: none).
        lr, betas: Adam of generators and discriminators.
        lr_constant_steps, lr_decay_steps: the learning rate stays ``lr`` for the first steps, then
            falls linearly towards 0 over the next (CycleGAN's 100 + 100 epochs, counted in steps).
    """

    channels: int | None = None
    ngf: int = 64
    n_blocks: int = 9
    n_downsampling: int = 2
    norm: Norm = "instance"
    dropout: float = 0.0
    ndf: int = 64
    d_n_layers: int = 3
    d_norm: Norm = "instance"
    lambda_a: float = 10.0
    lambda_b: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lr_constant_steps: int = 100_000
    lr_decay_steps: int = 100_000

    def __post_init__(self) -> None:
        validate_cyclegan(**dataclasses.asdict(self))


def validate_cyclegan(*, channels, ngf, n_blocks, n_downsampling, norm, dropout, ndf, d_n_layers, d_norm, lambda_a,
                      lambda_b, lambda_identity, pool_size, lr, betas, lr_constant_steps, lr_decay_steps) -> None:
    """Raise SimrealError for impossible CycleGAN settings."""
    _choice("--norm", norm, Norm)
    _choice("--d-norm", d_norm, Norm)
    if channels is not None and channels not in (1, 3):
        raise SimrealError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if min(ngf, ndf, d_n_layers) < 1 or n_blocks < 0 or n_downsampling < 0:
        raise SimrealError(f"--dim, --d-dim and --d-layers must be >= 1, --n-res and --downsample >= 0; got "
                           f"{ngf}, {ndf}, {d_n_layers}, {n_blocks}, {n_downsampling}")
    if not 0.0 <= dropout < 1.0:
        raise SimrealError(f"--dropout must be in [0, 1), got {dropout}")
    _non_negative(lambda_a=lambda_a, lambda_b=lambda_b, lambda_identity=lambda_identity, pool_size=pool_size,
                  lr_constant_steps=lr_constant_steps, lr_decay_steps=lr_decay_steps)
    _positive(lr=lr)
    _betas(betas)


@dataclass(frozen=True)
class CycleGANRunConfig:
    """A whole CycleGAN run: ``data.synthetic`` is domain A, ``data.real`` domain B."""

    out: str
    data: UnpairedDataConfig
    cyclegan: CycleGANConfig = field(default_factory=CycleGANConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    method: Literal["cyclegan"] = "cyclegan"
