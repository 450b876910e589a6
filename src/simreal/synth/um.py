"""Mask-guided multi-task CT synthesis (UM-synthesis, "Less is More"; methods.md 3.3-3.4), on the one engine.

A pix2pixHD global generator G maps a guidance map x (superpixel mask + edges, or a manual mask) to a CT
slice *and* its segmentation, ``(ct, seg) = G(x)``; a 2-scale patch discriminator D judges (x, ct) pairs
(the segmentation is not shown to it). Each training step (:meth:`MaskGuidedSynthesis.training_step`) is

1. **labelled pass** (slices with a manual mask y):
   ``L_G = GAN(D(x, ct_fake)) + lambda_l1 * L1(ct_fake, ct) + lambda_seg * (Dice + CE)(seg, y)``,
   then ``L_D = 0.5 * (GAN_real + GAN_fake)``;
2. **unlabelled pass** (slices without a mask, method "um" only, from the first teacher refresh on): the
   pseudo-label is the **teacher**'s argmax segmentation of x, and
   ``L_G = GAN + lambda_l1 * L1 + lambda_pseudo * (Dice + CE)(seg, pseudo, mask=M)`` with
   ``M = upsample(sigmoid(D_0(x, ct_fake))) > pseudo_threshold``: the segmentation loss counts only the
   pixels where D's full-resolution scale judges the synthetic CT real (:func:`pseudo_label_mask`; an
   empty M gives a segmentation loss of exactly 0); then the same D update.

The GAN loss is vanilla BCE on D's logits, **summed** over D's scales as pix2pixHD does (so the L1 weight 10
means what it means there); L1 is the mean over pixels; Dice + CE is nnU-Net's (batch soft Dice with
background, :func:`simreal.adapt.losses.dice_ce_loss`). In each pass G is stepped first, then D on the same
(detached) fake, as pix2pixHD computes both losses before either step.

**Teacher.** A frozen copy of G's weights (``self.teacher``, no gradients, never in an optimiser). At every step
``s = k * teacher_every`` (k >= 1) the teacher is reloaded from G before the step's updates; the unlabelled
pass starts at ``s = teacher_every``. SemiCS2 saves the model after each epoch's labelled pass and reloads it
as the teacher for the unlabelled pass, i.e. ``teacher_every`` = one labelled epoch (the run config's
default: ``ceil(n_labelled / batch_size)`` steps). The teacher is part of the method's state dict, so a
resumed run continues with the same pseudo-labels.

**Learning rate.** Adam (lr, betas) for G and D; constant, then linear decay to 0 over the last
``decay_steps`` steps of ``total_steps`` (:meth:`MaskGuidedSynthesis.lr_at`, a pure function of the step).
Extending a finished run with more steps therefore moves the decay.

Defaults and their sources (methods.md 3.3-3.4: SemiCS2 ``models/networks.py``, ``pix2pixHD_model.py``,
``train.py``, ``util/loss.py``):

====================  ============  ======================================================================
argument              default       source
====================  ============  ======================================================================
ngf, n_downsample     64, 4         ``ngf``, ``n_downsample_global``
n_blocks              9             ``n_blocks_global``
ndf, n_layers_d       64, 3         ``ndf``, ``n_layers_D``
num_d                 2             ``num_D``
lambda_l1             10            ``lambda_feat`` on the L1 named ``G_VGG`` in the code
lambda_seg            10            supervised ``DC_and_CE_loss`` weight
lambda_pseudo         0.5           pseudo-label loss weight
pseudo_threshold      0.5           D's upsampled sigmoid output ``> 0.5``
teacher_every         750           one epoch of SemiCS2's 1500 labelled slices at batch 2
lr, betas             2e-4, (0.5,   ``lr``, ``beta1``
                      0.999)
decay_steps           total / 4     ``niter = 300`` constant + ``niter_decay = 100`` epochs
====================  ============  ======================================================================

Example:
    >>> m = MaskGuidedSynthesis(in_channels=2, num_classes=2, ngf=4, n_downsample=2, n_blocks=1, ndf=4, teacher_every=1)
    >>> b = {"input": torch.rand(2, 2, 32, 32) * 2 - 1, "ct": torch.rand(2, 1, 32, 32) * 2 - 1,
    ...      "mask": torch.randint(0, 2, (2, 32, 32)), "u_input": torch.rand(2, 2, 32, 32), "u_ct": torch.rand(2, 1, 32, 32)}
    >>> sorted(m.training_step(b, step=1))[:3]
    ['D/fake', 'D/loss', 'D/real']
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from simreal.adapt.losses import dice_ce_loss, gan_loss
from simreal.adapt.method import AdversarialMethod, frozen
from simreal.errors import SimrealError
from simreal.nets.pix2pixhd import GlobalGenerator, conditional_discriminator
from simreal.synth.um_config import GenNorm, SynthRunConfig, UMConfig, validate_um

__all__ = [
    "MaskGuidedSynthesis",
    "ManualMaskSynthesis",
    "SynthRunConfig",
    "UMConfig",
    "build_method",
    "generator_loss_parts",
    "pseudo_label_mask",
    "summed_gan_loss",
    "train_synth",
]

#: The file in a run folder that records the data of the run (window, classes, labelled ids).
DATA_JSON = "data.json"


# -- pure functions ----------------------------------------------------------------------------------------


def pseudo_label_mask(d_logits: torch.Tensor, size: tuple[int, int], threshold: float = 0.5) -> torch.Tensor:
    """Where the discriminator judges the synthetic CT real: ``upsample(sigmoid(d_logits)) > threshold``.

    Args:
        d_logits: (B, 1, h, w) logits of D's full-resolution scale on (condition, synthetic CT).
        size: (H, W) of the image.
        threshold: probability above which a pixel counts (SemiCS2: 0.5).

    Returns:
        (B, H, W) bool. The probabilities (not the logits) are upsampled bilinearly (``align_corners=False``),
        as SemiCS2 upsamples D's sigmoid output.
    """
    if d_logits.ndim != 4 or d_logits.shape[1] != 1:
        raise SimrealError(f"discriminator output must be (B, 1, h, w), got shape {tuple(d_logits.shape)}")
    p = torch.sigmoid(d_logits.float())
    up = F.interpolate(p, size=tuple(size), mode="bilinear", align_corners=False)
    return up[:, 0] > threshold


def summed_gan_loss(preds: Sequence[torch.Tensor], target_is_real: bool) -> torch.Tensor:
    """BCE GAN loss summed over the discriminator's scales (pix2pixHD's ``GANLoss`` on a list)."""
    if not preds:
        raise SimrealError("no discriminator outputs")
    return torch.stack([gan_loss(p, target_is_real, "bce") for p in preds]).sum()


def generator_loss_parts(
    fake_ct: torch.Tensor, real_ct: torch.Tensor, seg_logits: torch.Tensor, seg_target: torch.Tensor,
    pred_fake: Sequence[torch.Tensor], seg_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The unweighted terms of L_G: ``gan`` (summed BCE, target real), ``l1`` (mean |fake - real|), ``seg``
    (Dice + CE of the segmentation, counted where ``seg_mask`` is true when given)."""
    if fake_ct.shape != real_ct.shape:
        raise SimrealError(f"synthetic and real CT differ in shape: {tuple(fake_ct.shape)} vs {tuple(real_ct.shape)}")
    return {
        "gan": summed_gan_loss(pred_fake, True),
        "l1": (fake_ct.float() - real_ct.float()).abs().mean(),
        "seg": dice_ce_loss(seg_logits, seg_target, seg_mask),
    }


# -- the method --------------------------------------------------------------------------------------------


class MaskGuidedSynthesis(AdversarialMethod):
    """UM-synthesis (V2UM2I): guidance -> (CT, segmentation), semi-supervised with masked pseudo-labels.

    Batches (:class:`simreal.synth.data.SynthBatches`): ``input`` (B, C_in, H, W) in [-1, 1], ``ct`` (B, 1, H, W)
    in [-1, 1], ``mask`` (B, H, W) int64; optionally ``u_input`` / ``u_ct`` (unlabelled slices).

    Args:
        in_channels, num_classes, ngf, n_downsample, n_blocks, norm: the generator
            (:class:`~simreal.nets.pix2pixhd.GlobalGenerator`).
        ndf, n_layers_d, num_d: the discriminator (:func:`~simreal.nets.pix2pixhd.conditional_discriminator`).
        lambda_l1, lambda_seg, lambda_pseudo, pseudo_threshold: loss weights and the D-confidence threshold.
        teacher_every: steps between teacher refreshes (module docstring).
        lr, betas: Adam settings of G and D.
        total_steps: the run's length, for the learning-rate decay (None: no decay).
        decay_steps: linear decay to 0 over this many last steps (None: ``total_steps // 4``).

    Logged: ``G/gan``, ``G/l1``, ``G/seg``, ``G/loss`` (labelled pass); ``U/gan``, ``U/l1``, ``U/seg``,
    ``U/loss``, ``U/counted`` (share of pixels in the pseudo-label loss) for the unlabelled pass;
    ``D/loss``, ``D/real``, ``D/fake`` (mean over the passes); ``lr``.
    """

    name = "um"
    inference_modules = ("generator",)
    size_multiple = 16  # the paper's 2 ** 4; each instance sets its own 2 ** n_downsample
    progress_keys = ("G/l1", "G/seg", "U/counted", "D/loss")

    def __init__(
        self,
        *,
        in_channels: int = 2,
        num_classes: int = 3,
        ngf: int = 64,
        n_downsample: int = 4,
        n_blocks: int = 9,
        norm: GenNorm = "instance",
        ndf: int = 64,
        n_layers_d: int = 3,
        num_d: int = 2,
        lambda_l1: float = 10.0,
        lambda_seg: float = 10.0,
        lambda_pseudo: float = 0.5,
        pseudo_threshold: float = 0.5,
        teacher_every: int = 750,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        total_steps: int | None = None,
        decay_steps: int | None = None,
    ):
        super().__init__()
        validate_um(in_channels=in_channels, num_classes=num_classes, ngf=ngf, n_downsample=n_downsample, n_blocks=n_blocks,
                    norm=norm, ndf=ndf, n_layers_d=n_layers_d, num_d=num_d, lambda_l1=lambda_l1, lambda_seg=lambda_seg,
                    lambda_pseudo=lambda_pseudo, pseudo_threshold=pseudo_threshold, teacher_every=teacher_every, lr=lr,
                    betas=betas, decay_steps=decay_steps)
        if total_steps is not None and total_steps < 1:
            raise SimrealError(f"total_steps must be >= 1, got {total_steps}")
        self.generator = GlobalGenerator(in_channels, num_classes, ngf=ngf, n_downsample=n_downsample, n_blocks=n_blocks, norm=norm)
        self.discriminator = conditional_discriminator(in_channels, num_d=num_d, n_layers=n_layers_d, ndf=ndf, norm=norm)
        self.teacher = copy.deepcopy(self.generator).requires_grad_(False)
        self.in_channels, self.num_classes = int(in_channels), int(num_classes)
        self.lambda_l1, self.lambda_seg, self.lambda_pseudo = float(lambda_l1), float(lambda_seg), float(lambda_pseudo)
        self.pseudo_threshold, self.teacher_every = float(pseudo_threshold), int(teacher_every)
        self.lr, self.betas = float(lr), (float(betas[0]), float(betas[1]))
        self.total_steps = None if total_steps is None else int(total_steps)
        self.decay_steps = decay_steps
        self.size_multiple = self.generator.size_multiple  # type: ignore[misc]  (per instance: 2 ** n_downsample)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=self.lr, betas=self.betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=self.betas),
        }

    # -- schedules (pure functions of the step) ---------------------------------------------------------

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step``: ``lr`` until the last ``decay_steps`` steps, then
        ``lr * (total_steps - step) / decay_steps``."""
        if self.total_steps is None:
            return self.lr
        decay = self.total_steps // 4 if self.decay_steps is None else int(self.decay_steps)
        if decay <= 0:
            return self.lr
        start = self.total_steps - decay
        if step < start:
            return self.lr
        return self.lr * max(0.0, (self.total_steps - step) / decay)

    def refreshes_teacher(self, step: int) -> bool:
        """Whether the teacher is reloaded from the generator at the start of ``step``."""
        return step > 0 and step % self.teacher_every == 0

    def uses_unlabelled(self, step: int) -> bool:
        """Whether ``step`` runs the unlabelled pass (from the first teacher refresh on)."""
        return step >= self.teacher_every

    def refresh_teacher(self) -> None:
        """Copy the generator's current weights into the frozen teacher."""
        self.teacher.load_state_dict(self.generator.state_dict())

    # -- one pass ---------------------------------------------------------------------------------------

    def pseudo_labels(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's argmax segmentation of ``x``: (B, H, W) int64 (the teacher runs in eval mode, so a
        batch-normalised one neither updates its statistics nor depends on the batch)."""
        was = self.teacher.training
        self.teacher.eval()
        try:
            with torch.no_grad():
                return self.teacher(x)[1].argmax(dim=1)
        finally:
            self.teacher.train(was)

    def _pass(self, x: torch.Tensor, ct: torch.Tensor, target: torch.Tensor | None, prefix: str) -> dict[str, torch.Tensor]:
        """One G update then one D update; ``target`` None = unlabelled (teacher pseudo-labels, D-masked)."""
        fake_ct, seg = self.generator(x)
        with frozen(self.discriminator):
            pred_fake = self.discriminator(torch.cat([x, fake_ct], dim=1))
        if target is None:
            target = self.pseudo_labels(x)
            counted = pseudo_label_mask(pred_fake[0].detach(), tuple(x.shape[-2:]), self.pseudo_threshold)
            weight = self.lambda_pseudo
        else:
            counted, weight = None, self.lambda_seg
        parts = generator_loss_parts(fake_ct, ct, seg, target, pred_fake, counted)
        loss_g = parts["gan"] + self.lambda_l1 * parts["l1"] + weight * parts["seg"]
        self.update("generator", loss_g)
        # D: real and fake in one forward (instance norm is per image, so they do not mix)
        b = x.shape[0]
        pred = self.discriminator(torch.cat([torch.cat([x, ct], 1), torch.cat([x, fake_ct.detach()], 1)]))
        loss_real = summed_gan_loss([p[:b] for p in pred], True)
        loss_fake = summed_gan_loss([p[b:] for p in pred], False)
        loss_d = 0.5 * (loss_real + loss_fake)
        self.update("discriminator", loss_d)
        logs = {f"{prefix}/{k}": v.detach() for k, v in parts.items()}
        logs[f"{prefix}/loss"] = loss_g.detach()
        if counted is not None:
            logs[f"{prefix}/counted"] = counted.float().mean()
        logs["D/loss"], logs["D/real"], logs["D/fake"] = loss_d.detach(), loss_real.detach(), loss_fake.detach()
        return logs

    def training_step(self, batch: Mapping[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        x, ct, y = batch.get("input"), batch.get("ct"), batch.get("mask")
        if x is None or ct is None or y is None or x.ndim != 4 or ct.shape != (x.shape[0], 1, *x.shape[2:]) or y.shape != (x.shape[0], *x.shape[2:]):
            shapes = {k: tuple(v.shape) for k, v in batch.items()}
            raise SimrealError(f"{self.name} synthesis needs input (B, C, H, W), ct (B, 1, H, W) and mask (B, H, W); got {shapes}")
        lr = self.lr_at(step)
        self.set_lr("generator", lr)
        self.set_lr("discriminator", lr)
        if self.refreshes_teacher(step):
            self.refresh_teacher()
        logs = self._pass(x, ct, y, "G")
        if "u_input" in batch and self.uses_unlabelled(step):
            u = self._pass(batch["u_input"], batch["u_ct"], None, "U")
            for k in ("D/loss", "D/real", "D/fake"):
                u[k] = 0.5 * (u[k] + logs[k])
            logs.update(u)
        logs["lr"] = torch.tensor(lr)
        return logs

    # -- inference --------------------------------------------------------------------------------------

    def generate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ct, labels)``: CT (B, 1, H, W) in [-1, 1] and the argmax segmentation (B, H, W) int64."""
        ct, seg = self.generator(x)
        return ct, seg.argmax(dim=1)

    def sample(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Columns guidance | real CT | synthetic CT | real mask | synthetic segmentation (ids / (C - 1))."""
        x = batch["input"]
        ct, labels = self.generate(x)
        scale = float(self.num_classes - 1)
        return {
            "guidance": (x[:, :1] + 1) / 2,
            "CT": (batch["ct"] + 1) / 2,
            "synthetic CT": (ct + 1) / 2,
            "mask": batch["mask"][:, None].float().clamp(min=0) / scale,
            "synthetic seg": labels[:, None].float() / scale,
        }


class ManualMaskSynthesis(MaskGuidedSynthesis):
    """The baseline V2M2I: the same networks and losses, guided by the manual segmentation masks.

    Its data has no unlabelled pass (the guidance *is* the manual mask); the segmentation head is still
    trained, so both methods share one network and one checkpoint layout.
    """

    name = "mask"


METHODS: dict[str, type[MaskGuidedSynthesis]] = {"um": MaskGuidedSynthesis, "mask": ManualMaskSynthesis}


# -- the run ---------------------------------------------------------------------------------------------


def build_method(config: UMConfig, method: str = "um", total_steps: int | None = None) -> MaskGuidedSynthesis:
    """The method of a resolved :class:`UMConfig` (``in_channels``, ``num_classes``, ``teacher_every`` set)."""
    if method not in METHODS:
        raise SimrealError(f"unknown synthesis method {method!r} (um, mask)")
    kw = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    for name in ("in_channels", "num_classes", "teacher_every"):
        if kw[name] is None:
            raise SimrealError(f"um.{name} must be resolved before building the method (train_synth does it)")
    return METHODS[method](**kw, total_steps=total_steps)


def resolve_config(config: SynthRunConfig, data: Any) -> SynthRunConfig:
    """Fill ``um.in_channels``, ``um.num_classes`` and ``um.teacher_every`` from the data; check the size."""
    um = config.um
    if um.in_channels is not None and um.in_channels != data.batches.in_channels:
        raise SimrealError(f"config says {um.in_channels} input channel(s) but the data gives {data.batches.in_channels}")
    if um.num_classes is not None and um.num_classes != data.num_classes:
        raise SimrealError(f"config says {um.num_classes} classes but the data gives {data.num_classes}")
    m = 2**um.n_downsample
    if data.batches.size % m or data.batches.size // m < 2:
        raise SimrealError(f"training size {data.batches.size} px must be a multiple of 2**n_downsample = {m} and at least {2 * m}; "
                           "give --size or fewer --n-downsample")
    teacher = um.teacher_every
    if teacher is None:
        teacher = max(1, math.ceil(len(data.labelled_ids) / config.data.batch_size))
    return dataclasses.replace(config, um=dataclasses.replace(um, in_channels=data.batches.in_channels,
                                                              num_classes=data.num_classes, teacher_every=teacher))


def _data_callback(run: Path, description: dict[str, Any]) -> Any:
    import lightning as L

    from simreal.atomic import write_json

    class WriteData(L.Callback):
        """Writes RUN/data.json (window, classes, labelled / unlabelled ids) when training starts."""

        def on_fit_start(self, trainer: Any, module: Any) -> None:
            if trainer.is_global_zero:
                write_json(run / DATA_JSON, description)

    return WriteData()


def train_synth(config: SynthRunConfig, *, progress: bool = True, callbacks: Sequence = ()) -> Path:
    """Train (or resume) a mask-guided synthesis run; returns the run folder (see :mod:`simreal.adapt.engine`).

    The run folder also holds ``data.json``: the dataset, HU window, classes, training size and the ids of
    the labelled and unlabelled slices (``simreal synth sample`` reads it).

    Raises:
        SimrealError: bad data (see :func:`simreal.synth.data.open_synth_data`), a size the generator cannot
            take, a run folder of another config or method.
    """
    from simreal.adapt import engine
    from simreal.synth.data import open_synth_data

    data = open_synth_data(config.data, method=config.method, seed=config.engine.seed, num_classes=config.um.num_classes)
    config = resolve_config(config, data)
    run = Path(config.out)
    return engine.fit(
        lambda: build_method(config.um, config.method, total_steps=config.engine.steps),
        data.batches, config, progress=progress, callbacks=[_data_callback(run, data.description), *callbacks],
    )
