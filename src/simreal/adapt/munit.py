"""Sim-to-real translation with Pfeiffer et al.'s MUNIT extension (MICCAI 2019; methods.md 2).

Domain A is the simulation (one fixed look), domain B the real images (many looks). Networks
(:mod:`simreal.nets.munit`): a style-less generator ``gen_a`` (content encoder + instance-norm decoder), an
AdaIN generator ``gen_b`` (content encoder, style encoder, MLP, AdaIN decoder) and a multi-scale LSGAN
discriminator per domain (``dis_a``, ``dis_b``; MUNIT's ``MsImageDis``). A sim image x_a becomes a real-
looking one with ``x_ab = gen_b.decode(gen_a.encode(x_a), s)`` for a style code s; the labels of x_a stay
valid because the brightness structure is kept (the MS-SSIM terms below).

Each training step (:meth:`MUNIT.training_step`) takes one synthetic and one real mini-batch and makes one
discriminator update, then one generator update, on the same images (MUNIT's ``train.py``). In both, the
style of x_ab is drawn from N(0, I) or, with probability ``real_style_p``, is the (detached) style encoded
from the real batch (:func:`sample_style`; Pfeiffer's ``random.random() > 0.5``). The generators minimise::

    gan_w         * (lsgan(D_a(x_ba), 1) + lsgan(D_b(x_ab), 1))          # summed over D's scales
  + recon_x_w     * (|gen_a(x_a) - x_a| + |gen_b(x_b) - x_b|)            # within-domain auto-encoding
  + recon_c_w     * (|c_a' - c_a| + |c_b' - c_b|)                        # content re-encoded after translation
  + recon_s_w     * |s' - s|                                             # style re-encoded from x_ab
  + recon_x_cyc_w * (|x_aba - x_a| + |x_bab - x_b|)                      # explicit cycle (x_bab with b's style)
  + ms_ssim_a_w   * (1 - MS-SSIM(gray(x_a), gray(x_ab)))                 # structure kept, sim -> real
  + ms_ssim_b_w   * (1 - MS-SSIM(gray(x_b), gray(x_ba)))                 # structure kept, real -> sim

(every ``|.|`` a mean absolute difference; ``gray`` the channel mean; MS-SSIM as in
:func:`simreal.adapt.losses.ms_ssim_gray_loss`: Pessoa's ``normalize=True`` variant, levels chosen by the
training size). The discriminators minimise ``gan_w * (lsgan(D(real), 1) + lsgan(D(fake), 0))`` per domain.

Defaults and where they come from:

=====================================  =================  ==================================================
argument                               default            source
=====================================  =================  ==================================================
dim, n_downsample, n_res               64, 2, 4           Pfeiffer ``StylelessGen`` / MUNIT ``AdaINGen``
style_dim, mlp_dim                     8, 256             MUNIT / Pfeiffer (methods.md 2.3)
style_n_downsample                     4                  MUNIT's ``StyleEncoder(4, ...)``
d_dim, d_n_layer, d_num_scales, d_norm 64, 4, 3, "none"   MUNIT ``MsImageDis`` (methods.md 2.3)
gan_w, recon_x_w, recon_c_w            1, 10, 1           ``simulation2surgery.yaml`` of the derivative [code,
recon_s_w, recon_x_cyc_w               1, 10              derivative]; MUNIT's own edges2shoes: cyc 0
ms_ssim_a_w, ms_ssim_b_w               5, 3               same (methods.md 2.4)
ms_ssim_kernel                         11                 Pessoa's ``pytorch-msssim`` (window 11, sigma 1.5)
real_style_p                           0.5                Pfeiffer's trainer
lr, betas, weight_decay                1e-4, (0.5,        methods.md 2.5
                                       0.999), 1e-4
lr_step, lr_gamma                      100000, 0.5        methods.md 2.5 (step decay, 500k iterations)
init                                   kaiming / N(0,     MUNIT (generators / discriminators)
                                       0.02)
=====================================  =================  ==================================================

At CPU scale, use a small ``dim`` (8-32) and fewer discriminator layers or scales: MUNIT's 3 scales x 4
layers need training crops of at least 64 px (:meth:`MUNIT.min_size`).

Example:
    >>> m = MUNIT(channels=3, dim=4, n_res=1, mlp_dim=8, d_dim=4, d_n_layer=2, d_num_scales=2)
    >>> batch = {"synthetic": torch.rand(1, 1, 3, 16, 16), "real": torch.rand(1, 1, 3, 16, 16)}
    >>> "G/ms_ssim_ab" in m.training_step(batch, step=0)
    True
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping, Sequence

import torch

from simreal.adapt.config import DNorm, MunitConfig, MunitRunConfig, validate_munit
from simreal.adapt.losses import l1_loss, lsgan_discriminator_loss, lsgan_generator_loss, ms_ssim_gray_loss
from simreal.adapt.method import AdversarialMethod, frozen
from simreal.errors import SimrealError
from simreal.nets.discriminators import MultiScaleDiscriminator
from simreal.nets.generators import init_weights
from simreal.nets.munit import AdaINGenerator, StylelessGenerator

__all__ = ["MUNIT", "MunitConfig", "MunitRunConfig", "build_method", "sample_style", "step_lr", "train_munit"]


def sample_style(encoded: torch.Tensor, p_real: float = 0.5, generator: torch.Generator | None = None) -> tuple[torch.Tensor, bool]:
    """The style codes of one translation: N(0, I) codes, or (with probability ``p_real``) ``encoded``.

    Both draws come from the CPU generator (torch's global one unless given, which the engine reseeds
    every step), so they are the same on every device.

    Args:
        encoded: (B, style_dim) styles encoded from real images; returned detached when chosen.
        p_real: probability of taking ``encoded``.
        generator: a CPU ``torch.Generator`` (tests), else torch's global RNG.

    Returns:
        (styles (B, style_dim) on ``encoded``'s device, whether the encoded styles were taken).
    """
    u = float(torch.rand((), generator=generator))
    z = torch.randn(tuple(encoded.shape), generator=generator)
    if u < p_real:
        return encoded.detach(), True
    return z.to(device=encoded.device, dtype=encoded.dtype), False


def step_lr(lr: float, step: int, step_size: int, gamma: float) -> float:
    """MUNIT's step decay as a function of the step: ``lr * gamma ** (step // step_size)``."""
    return float(lr) * float(gamma) ** (int(step) // int(step_size))


class MUNIT(AdversarialMethod):
    """Pfeiffer et al.'s sim-to-real MUNIT (see the module docstring).

    Batches (:class:`~simreal.adapt.data.UnpairedBatches` with :meth:`draws`), images in [0, 1]:
    ``batch["synthetic"]`` (1, B, C, H, W) = domain A and ``batch["real"]`` (1, B, C, H, W) = domain B.

    Args: see :class:`~simreal.adapt.config.MunitConfig` (``channels`` defaults to 3 here).

    Logged: ``D/loss`` (weighted total), ``D/a``, ``D/b``; ``G/loss`` (weighted total), ``G/adv_a``,
    ``G/adv_b``, ``G/recon_x_a``, ``G/recon_x_b``, ``G/recon_c_a``, ``G/recon_c_b``, ``G/recon_s_b``,
    ``G/cyc_x_a``, ``G/cyc_x_b``, ``G/ms_ssim_ab``, ``G/ms_ssim_ba`` (``1 - MS-SSIM``, unweighted),
    ``style/real`` (share of the two updates that used the real batch's style), ``lr``.
    """

    name = "munit"
    inference_modules = ("gen_a", "gen_b")
    size_multiple = 4
    progress_keys = ("G/adv_b", "G/recon_x_a", "G/ms_ssim_ab", "D/loss")

    def __init__(
        self,
        *,
        channels: int | None = 3,
        dim: int = 64,
        n_downsample: int = 2,
        n_res: int = 4,
        style_dim: int = 8,
        mlp_dim: int = 256,
        style_n_downsample: int = 4,
        d_dim: int = 64,
        d_n_layer: int = 4,
        d_num_scales: int = 3,
        d_norm: DNorm = "none",
        gan_w: float = 1.0,
        recon_x_w: float = 10.0,
        recon_c_w: float = 1.0,
        recon_s_w: float = 1.0,
        recon_x_cyc_w: float = 10.0,
        ms_ssim_a_w: float = 5.0,
        ms_ssim_b_w: float = 3.0,
        ms_ssim_kernel: int = 11,
        ms_ssim_scales: int | None = None,
        real_style_p: float = 0.5,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        weight_decay: float = 1e-4,
        lr_step: int = 100_000,
        lr_gamma: float = 0.5,
    ):
        super().__init__()
        channels = 3 if channels is None else channels
        validate_munit(channels=channels, dim=dim, n_downsample=n_downsample, n_res=n_res, style_dim=style_dim, mlp_dim=mlp_dim,
                       style_n_downsample=style_n_downsample, d_dim=d_dim, d_n_layer=d_n_layer, d_num_scales=d_num_scales,
                       d_norm=d_norm, gan_w=gan_w, recon_x_w=recon_x_w, recon_c_w=recon_c_w, recon_s_w=recon_s_w,
                       recon_x_cyc_w=recon_x_cyc_w, ms_ssim_a_w=ms_ssim_a_w, ms_ssim_b_w=ms_ssim_b_w,
                       ms_ssim_kernel=ms_ssim_kernel, ms_ssim_scales=ms_ssim_scales, real_style_p=real_style_p, lr=lr,
                       betas=betas, weight_decay=weight_decay, lr_step=lr_step, lr_gamma=lr_gamma)
        self.channels = channels
        self.style_dim = style_dim
        self.size_multiple = 2**n_downsample  # instance value: the padding multiple at inference
        self.gen_a = StylelessGenerator(channels, dim=dim, n_downsample=n_downsample, n_res=n_res)
        self.gen_b = AdaINGenerator(channels, dim=dim, n_downsample=n_downsample, n_res=n_res, style_dim=style_dim,
                                    mlp_dim=mlp_dim, style_n_downsample=style_n_downsample)
        self.dis_a, self.dis_b = (
            init_weights(MultiScaleDiscriminator(channels, num_scales=d_num_scales, ndf=d_dim, n_layers=d_n_layer,
                                                 norm=d_norm, patch="munit"), "gaussian")
            for _ in range(2)
        )
        self.d_n_layer, self.d_num_scales = d_n_layer, d_num_scales
        self.gan_w, self.recon_x_w, self.recon_c_w, self.recon_s_w = float(gan_w), float(recon_x_w), float(recon_c_w), float(recon_s_w)
        self.recon_x_cyc_w, self.ms_ssim_a_w, self.ms_ssim_b_w = float(recon_x_cyc_w), float(ms_ssim_a_w), float(ms_ssim_b_w)
        self.ms_ssim_kernel, self.ms_ssim_scales = int(ms_ssim_kernel), ms_ssim_scales
        self.real_style_p = float(real_style_p)
        self.lr, self.betas, self.weight_decay = float(lr), (float(betas[0]), float(betas[1])), float(weight_decay)
        self.lr_step, self.lr_gamma = int(lr_step), float(lr_gamma)

    @staticmethod
    def draws() -> dict[str, int]:
        """Mini-batches each step needs: one synthetic (A), one real (B)."""
        return {"synthetic": 1, "real": 1}

    @property
    def min_size(self) -> int:
        """Smallest training crop side: the discriminators' coarsest scale must hold ``2**d_n_layer`` px,
        and the style encoder its down-samplings."""
        return max(2 ** (self.d_n_layer + self.d_num_scales - 1), 2**self.gen_b.enc_style.n_downsample, self.size_multiple)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        gen = list(self.gen_a.parameters()) + list(self.gen_b.parameters())
        dis = list(self.dis_a.parameters()) + list(self.dis_b.parameters())
        return {
            "generator": torch.optim.Adam(gen, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay),
            "discriminator": torch.optim.Adam(dis, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay),
        }

    def _ms_ssim(self, source: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
        return ms_ssim_gray_loss(source, translated, kernel_size=self.ms_ssim_kernel, scales=self.ms_ssim_scales)

    # -- updates -----------------------------------------------------------------------------------------

    def discriminator_update(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """One update of both discriminators on images in [-1, 1]."""
        with torch.no_grad():
            c_a = self.gen_a.encode(x_a)
            c_b, s_b_enc = self.gen_b.encode(x_b)
            s_b, used_real = sample_style(s_b_enc, self.real_style_p)
            x_ba = self.gen_a.decode(c_b)
            x_ab = self.gen_b.decode(c_a, s_b)
        loss_a = lsgan_discriminator_loss(self.dis_a(x_a), self.dis_a(x_ba))
        loss_b = lsgan_discriminator_loss(self.dis_b(x_b), self.dis_b(x_ab))
        loss = self.gan_w * (loss_a + loss_b)
        self.update("discriminator", loss)
        return {"D/loss": loss.detach(), "D/a": loss_a.detach(), "D/b": loss_b.detach(), "style/real": torch.tensor(float(used_real))}

    def generator_update(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """One update of both generators on images in [-1, 1] (discriminators frozen)."""
        zero = x_a.new_zeros(())
        with frozen(self.dis_a, self.dis_b):
            c_a = self.gen_a.encode(x_a)
            c_b, s_b_prime = self.gen_b.encode(x_b)
            s_b, used_real = sample_style(s_b_prime, self.real_style_p)
            x_ba = self.gen_a.decode(c_b)
            x_ab = self.gen_b.decode(c_a, s_b)
            x_a_recon = self.gen_a.decode(c_a)
            x_b_recon = self.gen_b.decode(c_b, s_b_prime)
            c_b_recon = self.gen_a.encode(x_ba)
            c_a_recon, s_b_recon = self.gen_b.encode(x_ab)
            logs = {
                "G/adv_a": lsgan_generator_loss(self.dis_a(x_ba)),
                "G/adv_b": lsgan_generator_loss(self.dis_b(x_ab)),
                "G/recon_x_a": l1_loss(x_a_recon, x_a),
                "G/recon_x_b": l1_loss(x_b_recon, x_b),
                "G/recon_c_a": l1_loss(c_a_recon, c_a),
                "G/recon_c_b": l1_loss(c_b_recon, c_b),
                "G/recon_s_b": l1_loss(s_b_recon, s_b),
            }
            if self.recon_x_cyc_w > 0:
                logs["G/cyc_x_a"] = l1_loss(self.gen_a.decode(c_a_recon), x_a)
                logs["G/cyc_x_b"] = l1_loss(self.gen_b.decode(c_b_recon, s_b_prime), x_b)
            else:
                logs["G/cyc_x_a"] = logs["G/cyc_x_b"] = zero
            logs["G/ms_ssim_ab"] = self._ms_ssim(x_a, x_ab) if self.ms_ssim_a_w > 0 else zero
            logs["G/ms_ssim_ba"] = self._ms_ssim(x_b, x_ba) if self.ms_ssim_b_w > 0 else zero
            loss = (
                self.gan_w * (logs["G/adv_a"] + logs["G/adv_b"])
                + self.recon_x_w * (logs["G/recon_x_a"] + logs["G/recon_x_b"])
                + self.recon_c_w * (logs["G/recon_c_a"] + logs["G/recon_c_b"])
                + self.recon_s_w * logs["G/recon_s_b"]
                + self.recon_x_cyc_w * (logs["G/cyc_x_a"] + logs["G/cyc_x_b"])
                + self.ms_ssim_a_w * logs["G/ms_ssim_ab"]
                + self.ms_ssim_b_w * logs["G/ms_ssim_ba"]
            )
            self.update("generator", loss)
        out = {k: v.detach() for k, v in logs.items()}
        out["G/loss"] = loss.detach()
        out["style/real"] = torch.tensor(float(used_real))
        return out

    def training_step(self, batch: Mapping[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        syn, real = batch.get("synthetic"), batch.get("real")
        if syn is None or real is None or syn.ndim != 5 or real.ndim != 5:
            raise SimrealError("MUNIT needs batch['synthetic'] and batch['real'] of (1, B, C, H, W) mini-batches, got "
                               f"{None if syn is None else tuple(syn.shape)} and {None if real is None else tuple(real.shape)}")
        x_a, x_b = syn[0] * 2 - 1, real[0] * 2 - 1
        for x, what in ((x_a, "synthetic"), (x_b, "real")):
            h, w = x.shape[-2:]
            if min(h, w) < self.min_size or h % self.size_multiple or w % self.size_multiple:
                raise SimrealError(f"MUNIT with {self.d_num_scales} discriminator scales of {self.d_n_layer} layers needs "
                                   f"{what} training crops of at least {self.min_size} px, sides multiples of "
                                   f"{self.size_multiple}; got {h}x{w} (raise --size or lower --d-layers / --d-scales)")
        lr = step_lr(self.lr, step, self.lr_step, self.lr_gamma)
        self.set_lr("generator", lr)
        self.set_lr("discriminator", lr)
        d = self.discriminator_update(x_a, x_b)
        g = self.generator_update(x_a, x_b)
        style_real = (d.pop("style/real") + g.pop("style/real")) / 2
        return {**d, **g, "style/real": style_real, "lr": torch.tensor(lr)}

    # -- inference ---------------------------------------------------------------------------------------

    def encode_style(self, images: torch.Tensor) -> torch.Tensor:
        """Style codes (B, style_dim) of real images (B, C, H, W) in [0, 1]."""
        return self.gen_b.encode_style(images * 2 - 1)

    def translate(self, images: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """Synthetic images (B, C, H, W) in [0, 1], sides multiples of :attr:`size_multiple` -> real-looking
        ones in [0, 1], with style codes (B, style_dim) (required)."""
        if style is None:
            raise SimrealError("MUNIT translation needs style codes (random ones or encoded from real images)")
        content = self.gen_a.encode(images * 2 - 1)
        return (self.gen_b.decode(content, style.to(device=content.device, dtype=content.dtype)).clamp(-1, 1) + 1) / 2

    def sample(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Columns: synthetic | -> real (fixed random style per row) | -> real (style of the real image in the
        same row) | real | real -> synthetic."""
        x_a, x_b = batch["synthetic"], batch["real"]
        g = torch.Generator().manual_seed(0)
        fixed = torch.randn(x_a.shape[0], self.style_dim, generator=g).to(x_a.device)
        encoded = self.encode_style(x_b)
        x_ba = (self.gen_a.decode(self.gen_b.encode(x_b * 2 - 1)[0]).clamp(-1, 1) + 1) / 2
        return {"synthetic": x_a, "to real (random style)": self.translate(x_a, fixed),
                "to real (style of real)": self.translate(x_a, encoded), "real": x_b, "real to synthetic": x_ba}


# -- the run ---------------------------------------------------------------------------------------------


def build_method(config: MunitConfig) -> MUNIT:
    """The :class:`MUNIT` of a config."""
    return MUNIT(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})


def train_munit(config: MunitRunConfig, *, progress: bool = True, callbacks: Sequence = ()) -> Path:
    """Train (or resume) a MUNIT translator; returns the run folder (see :mod:`simreal.adapt.engine`).

    Raises:
        SimrealError: bad image folders (missing, empty, grey and RGB mixed, alpha, different channel
            counts), crops too small for the discriminators, a run folder of another config or method.
    """
    from simreal.adapt import engine
    from simreal.adapt.data import open_unpaired

    m = config.munit
    data = open_unpaired(config.data, draws=MUNIT.draws(), seed=config.engine.seed)
    if m.channels is not None and m.channels != data.channels:
        raise SimrealError(f"config says {m.channels} channel(s) but the images have {data.channels}")
    config = dataclasses.replace(config, munit=dataclasses.replace(m, channels=data.channels))
    probe = build_method(dataclasses.replace(config.munit, dim=1, mlp_dim=1, d_dim=1))
    h, w = config.data.size
    if min(h, w) < probe.min_size or h % probe.size_multiple or w % probe.size_multiple:
        raise SimrealError(f"--size {h}x{w} is too small for MUNIT with {m.d_num_scales} discriminator scales of "
                           f"{m.d_n_layer} layers: use at least {probe.min_size} px, multiples of {probe.size_multiple}")
    return engine.fit(lambda: build_method(config.munit), data, config, progress=progress, callbacks=callbacks)
