"""Reverse domain adaptation (Mahmood, Chen, Durr, IEEE TMI 2018): refine REAL frames to look synthetic.

A SimGAN refiner R (Shrivastava et al., CVPR 2017) maps real endoscopy frames x to synthetic-looking
frames R(x); a local discriminator D learns to tell synthetic frames (the target look: "real" in D's
sense) from refined ones. R minimises

    L_R = local_adv(D(R(x)), target) + lambda * mean |psi(R(x)) - psi(x)|

(the self-regularisation keeps each frame's content, so a depth network trained on synthetic frames reads
the refined ones), and D minimises ``local_adv(D(s), target) + local_adv(D(y), refined)`` where half of the
refined batch y comes from a history buffer of earlier refinements once it holds any.

Training schedule of a run of ``steps`` steps (:meth:`ReverseDA.phase`):

1. ``pretrain_r`` steps: R alone, on the self-regularisation loss only (one update per step);
2. ``pretrain_d`` steps: D alone, against the pre-trained R (one update per step);
3. the rest: each step makes ``k_r`` refiner updates, then ``k_d`` discriminator updates, each on fresh
   images (a step draws ``k_r + k_d`` real and ``k_d`` synthetic mini-batches).

Defaults and where they come from (methods.md 1.2 and 5.4; the paper's own values are not public):

====================  ==========  =========================================================================
argument              default     source
====================  ==========  =========================================================================
ngf, n_blocks         64, 4       SimGAN's refiner (3x3 conv 64 -> 4 ResNet blocks -> 1x1 conv -> tanh)
norm                  "none"      SimGAN (AlexHex7's port adds batch norm)
lambda_reg            0.5         daniel-merrick's port, mean-reduced L1 (see below)
psi                   "identity"  methods.md 1.2
history_size          12800       both public ports
pretrain_r, _d        1000, 200   both ports (AlexHex7's quotes the SimGAN paper for them)
k_r, k_d              2, 1        daniel-merrick's port; AlexHex7's uses k_r = 50 ("the author of the
                                  paper said it's 50")
lr_r, lr_d            1e-4        the value AlexHex7's config attributes to Apple's blog (ports: 1e-3, 1e-5)
betas                 0.9, 0.999  Adam's defaults (AlexHex7's refiner optimiser)
====================  ==========  =========================================================================

**The self-regularisation weight is per pixel.** ``lambda_reg`` multiplies the *mean* absolute difference
over all pixels (and channels of ``psi``) of the batch, so it means the same at any image and batch size.
A weight written for a *summed* L1 converts as ``lambda_reg = delta * n`` with n the number of summed
elements (:func:`simreal.adapt.losses.mean_weight_from_sum`): AlexHex7's ``delta = 1e-4`` summed over
batches of 128 grey 35x55 eyes is ``lambda_reg = 24.6``; daniel-merrick's 0.5 is already a mean.

Example:
    >>> method = ReverseDA(channels=3, ngf=8, n_blocks=2, pretrain_r=0, pretrain_d=0)
    >>> batch = {"real": torch.rand(3, 2, 3, 16, 16), "synthetic": torch.rand(1, 2, 3, 16, 16)}
    >>> sorted(method.training_step(batch, step=0))[:3]
    ['D/acc_refined', 'D/acc_synthetic', 'D/loss']
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal, Mapping, Sequence

import torch

from simreal.adapt.config import Norm, Psi, ReverseDAConfig, ReverseRunConfig, validate_reverse
from simreal.adapt.history import HistoryBuffer
from simreal.adapt.losses import FAKE, TARGET, local_accuracy, local_adversarial_loss, self_regularisation_loss
from simreal.adapt.method import AdversarialMethod, frozen, mean_logs, phase_of
from simreal.errors import SimrealError
from simreal.nets.discriminators import SimGANLocalDiscriminator
from simreal.nets.refiner import SimGANRefiner

__all__ = ["ReverseDA", "ReverseDAConfig", "ReverseRunConfig", "build_method", "train_reverse"]

Phase = Literal["pretrain_r", "pretrain_d", "adversarial"]


class ReverseDA(AdversarialMethod):
    """Reverse-DA refiner training: R maps real images to the synthetic look; D is local.

    Batches (from :class:`~simreal.adapt.data.UnpairedBatches` with :meth:`draws`), images in [0, 1]:
    ``batch["real"]`` (k_r + k_d, B, C, H, W) and ``batch["synthetic"]`` (k_d, B, C, H, W). Networks see
    them in [-1, 1].

    Args: see :class:`ReverseDAConfig` (``channels`` defaults to 3 here).

    Logged (``training_step``): ``R/reg`` (self-regularisation, unweighted), ``R/adv``, ``R/loss``;
    ``D/loss``, ``D/loss_synthetic``, ``D/loss_refined``, ``D/acc_synthetic``, ``D/acc_refined`` (share of
    locations classified right), ``history/size``.
    """

    name = "reverse"
    inference_modules = ("refiner",)
    size_multiple = 1
    progress_keys = ("R/adv", "R/reg", "D/loss", "D/acc_refined")

    def __init__(
        self,
        *,
        channels: int | None = 3,
        ngf: int = 64,
        n_blocks: int = 4,
        norm: Norm = "none",
        identity_init: bool = False,
        d_norm: Norm = "none",
        lambda_reg: float = 0.5,
        psi: Psi = "identity",
        psi_sigma: float = 2.0,
        history_size: int = 12800,
        pretrain_r: int = 1000,
        pretrain_d: int = 200,
        k_r: int = 2,
        k_d: int = 1,
        lr_r: float = 1e-4,
        lr_d: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
    ):
        super().__init__()
        channels = 3 if channels is None else channels
        validate_reverse(channels=channels, ngf=ngf, n_blocks=n_blocks, norm=norm, identity_init=identity_init, d_norm=d_norm,
                  lambda_reg=lambda_reg, psi=psi, psi_sigma=psi_sigma, history_size=history_size, pretrain_r=pretrain_r,
                  pretrain_d=pretrain_d, k_r=k_r, k_d=k_d, lr_r=lr_r, lr_d=lr_d, betas=betas)
        self.channels = channels
        self.refiner = SimGANRefiner(channels, ngf=ngf, n_blocks=n_blocks, norm=norm, identity_init=identity_init)
        self.discriminator = SimGANLocalDiscriminator(channels, norm=d_norm)
        self.history = HistoryBuffer(history_size)
        self.lambda_reg, self.psi, self.psi_sigma = float(lambda_reg), psi, float(psi_sigma)
        self.pretrain_r, self.pretrain_d, self.k_r, self.k_d = int(pretrain_r), int(pretrain_d), int(k_r), int(k_d)
        self.lr_r, self.lr_d, self.betas = float(lr_r), float(lr_d), (float(betas[0]), float(betas[1]))

    @staticmethod
    def draws(k_r: int, k_d: int) -> dict[str, int]:
        """Mini-batches each step needs from each source: ``k_r + k_d`` real, ``k_d`` synthetic."""
        return {"real": k_r + k_d, "synthetic": k_d}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "refiner": torch.optim.Adam(self.refiner.parameters(), lr=self.lr_r, betas=self.betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=self.lr_d, betas=self.betas),
        }

    def phase(self, step: int) -> Phase:
        """Which part of the schedule ``step`` belongs to."""
        return phase_of(step, [("pretrain_r", self.pretrain_r), ("pretrain_d", self.pretrain_d)], "adversarial")  # type: ignore[return-value]

    # -- updates -----------------------------------------------------------------------------------------

    def refiner_update(self, x: torch.Tensor, adversarial: bool = True) -> dict[str, torch.Tensor]:
        """One refiner update on real images ``x`` (B, C, H, W) in [-1, 1]."""
        with frozen(self.discriminator):
            y = self.refiner(x)
            reg = self_regularisation_loss(y, x, self.psi, self.psi_sigma)
            if adversarial:
                adv = local_adversarial_loss(self.discriminator(y), TARGET)
                loss = adv + self.lambda_reg * reg
            else:
                loss = reg  # pre-training: the self-regularisation alone (its weight would only rescale Adam's steps)
            self.update("refiner", loss)
        logs = {"R/reg": reg.detach(), "R/loss": loss.detach()}
        if adversarial:
            logs["R/adv"] = adv.detach()
        return logs

    def discriminator_update(self, x: torch.Tensor, s: torch.Tensor) -> dict[str, torch.Tensor]:
        """One discriminator update: synthetic images ``s`` vs the refined real images ``x`` (half from
        the history buffer once it holds images); both (B, C, H, W) in [-1, 1]."""
        with torch.no_grad():
            y = self.refiner(x)
        b = y.shape[0]
        half = b // 2
        fake = y
        if len(self.history) and half:
            past = self.history.sample(half).to(device=y.device, dtype=y.dtype)
            fake = torch.cat([y[: b - past.shape[0]], past])
        # SimGAN: b/2 of the new refinements replace old ones after each update (at least one image).
        self.history.push(y[: max(half, 1)])
        # One forward over both sets: a batch-normalised D cannot then tell them apart by batch statistics.
        logits = self.discriminator(torch.cat([s, fake]))
        ls, lf = logits[: s.shape[0]], logits[s.shape[0] :]
        loss_s = local_adversarial_loss(ls, TARGET)
        loss_f = local_adversarial_loss(lf, FAKE)
        loss = loss_s + loss_f
        self.update("discriminator", loss)
        return {
            "D/loss": loss.detach(), "D/loss_synthetic": loss_s.detach(), "D/loss_refined": loss_f.detach(),
            "D/acc_synthetic": local_accuracy(ls.detach(), TARGET), "D/acc_refined": local_accuracy(lf.detach(), FAKE),
        }

    def training_step(self, batch: Mapping[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        real, syn = batch["real"], batch["synthetic"]
        need = self.draws(self.k_r, self.k_d)
        if real.ndim != 5 or real.shape[0] < need["real"] or syn.ndim != 5 or syn.shape[0] < need["synthetic"]:
            raise SimrealError(
                f"reverse DA needs batch['real'] of {need['real']} and batch['synthetic'] of {need['synthetic']} "
                f"mini-batches (n, B, C, H, W); got {tuple(real.shape)} and {tuple(syn.shape)}"
            )
        real, syn = real * 2 - 1, syn * 2 - 1
        phase = self.phase(step)
        if phase == "pretrain_r":
            logs = [self.refiner_update(real[0], adversarial=False)]
        elif phase == "pretrain_d":
            logs = [self.discriminator_update(real[0], syn[0])]
        else:
            logs = [self.refiner_update(real[i]) for i in range(self.k_r)]
            logs += [self.discriminator_update(real[self.k_r + j], syn[j]) for j in range(self.k_d)]
        out = mean_logs(logs)
        out["history/size"] = torch.tensor(float(len(self.history)))
        return out

    # -- inference ---------------------------------------------------------------------------------------

    def refine(self, images: torch.Tensor) -> torch.Tensor:
        """Refine (B, C, H, W) images in [0, 1] of any size; returns (B, C, H, W) in [0, 1]."""
        return (self.refiner(images * 2 - 1).clamp(-1, 1) + 1) / 2

    def sample(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Columns real | refined | 4 x |refined - real| | a synthetic image (for the target look)."""
        x = batch["real"]
        y = self.refine(x)
        return {"real": x, "refined": y, "difference x4": ((y - x).abs() * 4).clamp(0, 1), "synthetic": batch["synthetic"]}


# -- the run ---------------------------------------------------------------------------------------------


def build_method(config: ReverseDAConfig) -> ReverseDA:
    """The :class:`ReverseDA` of a config."""
    return ReverseDA(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})


def train_reverse(config: ReverseRunConfig, *, progress: bool = True, callbacks: Sequence = ()) -> Path:
    """Train (or resume) a reverse-DA refiner; returns the run folder (see :mod:`simreal.adapt.engine`).

    Raises:
        SimrealError: bad image folders (missing, empty, grey and RGB mixed, alpha, different channel
            counts in the two sets), a run folder of another config or method.
    """
    from simreal.adapt import engine
    from simreal.adapt.data import open_unpaired

    r = config.reverse
    data = open_unpaired(config.data, draws=ReverseDA.draws(r.k_r, r.k_d), seed=config.engine.seed)
    if r.channels is not None and r.channels != data.channels:
        raise SimrealError(f"config says {r.channels} channel(s) but the images have {data.channels}")
    config = dataclasses.replace(config, reverse=dataclasses.replace(r, channels=data.channels))
    return engine.fit(lambda: build_method(config.reverse), data, config, progress=progress, callbacks=callbacks)
