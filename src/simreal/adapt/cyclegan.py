"""CycleGAN (Zhu et al., ICCV 2017) as a sim-to-real baseline, after ``junyanz/pytorch-CycleGAN-and-pix2pix``
(``models/cycle_gan_model.py``; methods.md 5.1).

Domain A is the simulation (``batch["synthetic"]``), domain B the real images (``batch["real"]``).
``gen_ab`` maps A -> B (the public code's G_A), ``gen_ba`` B -> A (G_B); ``dis_b`` judges B images (the
public code's D_A, which sees fake_B), ``dis_a`` A images (D_B). Networks: :class:`~simreal.nets.generators.ResnetGenerator`
and the 70x70 :class:`~simreal.nets.discriminators.PatchDiscriminator` (3 layers, instance norm), LSGAN.

Each step makes one update of both generators (discriminators frozen), then one of both discriminators,
on one synthetic and one real mini-batch (the public code's ``optimize_parameters``). Generators minimise::

    lsgan(D_b(G_ab(a)), 1) + lsgan(D_a(G_ba(b)), 1)
  + lambda_a * |G_ba(G_ab(a)) - a| + lambda_b * |G_ab(G_ba(b)) - b|                     # cycle
  + lambda_identity * (lambda_b * |G_ab(b) - b| + lambda_a * |G_ba(a) - a|)             # identity

and each discriminator ``0.5 * (lsgan(D(real), 1) + lsgan(D(pool(fake)), 0))``, where :class:`ImagePool`
answers with a past translation half of the time once it is full (Shrivastava et al.'s trick as CycleGAN
does it).

Defaults and where they come from (methods.md 5.1 and the public options):

===============================  ==============  =======================================================
argument                         default         source
===============================  ==============  =======================================================
ngf, n_blocks, n_downsampling    64, 9, 2        ``--ngf 64``, ``resnet_9blocks``
norm, dropout                    instance, 0     ``--norm instance``, ``--no_dropout``
ndf, d_n_layers, d_norm          64, 3, instance ``--ndf 64``, ``basic`` D (70x70), ``--norm instance``
lambda_a, lambda_b               10, 10          ``--lambda_A``, ``--lambda_B``
lambda_identity                  0.5             ``--lambda_identity`` (scaled by lambda_a / lambda_b)
pool_size                        50              ``--pool_size``
lr, betas                        2e-4, (0.5,     ``--lr``, ``--beta1``
                                 0.999)
lr_constant_steps, _decay_steps  100000, 100000  ``--n_epochs 100 --n_epochs_decay 100`` (linear), in
                                                 steps: 100 epochs of ~1000 images at batch 1
init                             N(0, 0.02)      ``--init_type normal --init_gain 0.02``
===============================  ==============  =======================================================

The public PatchGAN pads each 4x4 conv by 1; simreal's :class:`PatchDiscriminator` pads by 2 (pix2pixHD),
which keeps a map at small CPU-scale crops; the receptive field is the same.

Example:
    >>> m = CycleGAN(channels=3, ngf=4, n_blocks=1, ndf=4, d_n_layers=2, pool_size=2)
    >>> batch = {"synthetic": torch.rand(1, 1, 3, 16, 16), "real": torch.rand(1, 1, 3, 16, 16)}
    >>> sorted(m.training_step(batch, step=0))[:3]
    ['D/a', 'D/b', 'D/loss']
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from simreal.adapt.config import CycleGANConfig, CycleGANRunConfig, Norm, validate_cyclegan
from simreal.adapt.losses import l1_loss, lsgan_loss
from simreal.adapt.method import AdversarialMethod, frozen
from simreal.errors import SimrealError
from simreal.nets.discriminators import PatchDiscriminator
from simreal.nets.generators import ResnetGenerator, init_weights

__all__ = ["CycleGAN", "CycleGANConfig", "CycleGANRunConfig", "ImagePool", "build_method", "linear_decay_lr", "train_cyclegan"]


def linear_decay_lr(lr: float, step: int, constant_steps: int, decay_steps: int) -> float:
    """CycleGAN's "linear" policy per step: ``lr`` for ``constant_steps``, then ``lr * (1 - k / (decay_steps + 1))``
    at the k-th step after them (never below 0)."""
    k = max(0, int(step) - int(constant_steps))
    return float(lr) * max(0.0, 1.0 - k / (int(decay_steps) + 1))


class ImagePool(nn.Module):
    """CycleGAN's pool of past generated images (``util/image_pool.py``), checkpointed with the method.

    :meth:`query` returns, image by image, the new image while the pool fills; once it holds ``size``
    images, with probability 1/2 a random stored image (which the new one then replaces), else the new
    image. ``size`` 0 returns the images unchanged. Draws come from torch's global CPU RNG (reseeded by the
    engine every step) or ``generator``.
    """

    def __init__(self, size: int = 50):
        super().__init__()
        if size < 0:
            raise SimrealError(f"image pool size must be >= 0, got {size}")
        self.size = int(size)
        self._images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self._images)

    def query(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image[None]
            if len(self._images) < self.size:
                self._images.append(image.clone())
                out.append(image)
            elif float(torch.rand((), generator=generator)) > 0.5:
                i = int(torch.randint(0, self.size, (), generator=generator))
                out.append(self._images[i].to(image.device).clone())
                self._images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out)

    def get_extra_state(self) -> dict[str, Any]:
        return {"size": self.size, "images": [t.detach().cpu().clone() for t in self._images]}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if int(state.get("size", -1)) != self.size:
            raise SimrealError(f"checkpoint image pool has size {state.get('size')}, this method {self.size}")
        device = self._images[0].device if self._images else None
        self._images = [t.to(device) if device is not None else t.clone() for t in state.get("images", [])]

    def _apply(self, fn, recurse: bool = True):  # .to(device) moves the stored images too
        self._images = [fn(t) for t in self._images]
        return super()._apply(fn, recurse)


class CycleGAN(AdversarialMethod):
    """CycleGAN between synthetic (A) and real (B) images (see the module docstring).

    Args: see :class:`~simreal.adapt.config.CycleGANConfig` (``channels`` defaults to 3 here).

    Logged: ``G/loss``, ``G/adv_ab``, ``G/adv_ba``, ``G/cycle_a``, ``G/cycle_b``, ``G/idt_a``, ``G/idt_b``
    (unweighted L1s), ``D/loss``, ``D/a``, ``D/b``, ``pool/size``, ``lr``.
    """

    name = "cyclegan"
    inference_modules = ("gen_ab",)
    size_multiple = 4
    progress_keys = ("G/adv_ab", "G/cycle_a", "D/loss")
    style_dim = 0  # deterministic: no style codes

    def __init__(
        self,
        *,
        channels: int | None = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        n_downsampling: int = 2,
        norm: Norm = "instance",
        dropout: float = 0.0,
        ndf: int = 64,
        d_n_layers: int = 3,
        d_norm: Norm = "instance",
        lambda_a: float = 10.0,
        lambda_b: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        lr_constant_steps: int = 100_000,
        lr_decay_steps: int = 100_000,
    ):
        super().__init__()
        channels = 3 if channels is None else channels
        validate_cyclegan(channels=channels, ngf=ngf, n_blocks=n_blocks, n_downsampling=n_downsampling, norm=norm,
                          dropout=dropout, ndf=ndf, d_n_layers=d_n_layers, d_norm=d_norm, lambda_a=lambda_a,
                          lambda_b=lambda_b, lambda_identity=lambda_identity, pool_size=pool_size, lr=lr, betas=betas,
                          lr_constant_steps=lr_constant_steps, lr_decay_steps=lr_decay_steps)
        self.channels = channels
        self.size_multiple = 2**n_downsampling
        g = dict(ngf=ngf, n_blocks=n_blocks, n_downsampling=n_downsampling, norm=norm, dropout=dropout)
        self.gen_ab = init_weights(ResnetGenerator(channels, channels, **g))
        self.gen_ba = init_weights(ResnetGenerator(channels, channels, **g))
        self.dis_a = init_weights(PatchDiscriminator(channels, ndf=ndf, n_layers=d_n_layers, norm=d_norm))
        self.dis_b = init_weights(PatchDiscriminator(channels, ndf=ndf, n_layers=d_n_layers, norm=d_norm))
        self.pool_a, self.pool_b = ImagePool(pool_size), ImagePool(pool_size)
        self.lambda_a, self.lambda_b, self.lambda_identity = float(lambda_a), float(lambda_b), float(lambda_identity)
        self.lr, self.betas = float(lr), (float(betas[0]), float(betas[1]))
        self.lr_constant_steps, self.lr_decay_steps = int(lr_constant_steps), int(lr_decay_steps)

    @staticmethod
    def draws() -> dict[str, int]:
        """Mini-batches each step needs: one synthetic (A), one real (B)."""
        return {"synthetic": 1, "real": 1}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        gen = list(self.gen_ab.parameters()) + list(self.gen_ba.parameters())
        dis = list(self.dis_a.parameters()) + list(self.dis_b.parameters())
        return {
            "generator": torch.optim.Adam(gen, lr=self.lr, betas=self.betas),
            "discriminator": torch.optim.Adam(dis, lr=self.lr, betas=self.betas),
        }

    def generator_update(self, a: torch.Tensor, b: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """One update of both generators on images in [-1, 1]; returns the logs and the (detached) fakes."""
        zero = a.new_zeros(())
        with frozen(self.dis_a, self.dis_b):
            fake_b, fake_a = self.gen_ab(a), self.gen_ba(b)
            logs = {
                "G/adv_ab": lsgan_loss(self.dis_b(fake_b), 1.0),
                "G/adv_ba": lsgan_loss(self.dis_a(fake_a), 1.0),
                "G/cycle_a": l1_loss(self.gen_ba(fake_b), a),
                "G/cycle_b": l1_loss(self.gen_ab(fake_a), b),
            }
            if self.lambda_identity > 0:
                logs["G/idt_b"] = l1_loss(self.gen_ab(b), b)
                logs["G/idt_a"] = l1_loss(self.gen_ba(a), a)
            else:
                logs["G/idt_a"] = logs["G/idt_b"] = zero
            loss = (
                logs["G/adv_ab"] + logs["G/adv_ba"]
                + self.lambda_a * logs["G/cycle_a"] + self.lambda_b * logs["G/cycle_b"]
                + self.lambda_identity * (self.lambda_b * logs["G/idt_b"] + self.lambda_a * logs["G/idt_a"])
            )
            self.update("generator", loss)
        out = {k: v.detach() for k, v in logs.items()}
        out["G/loss"] = loss.detach()
        return out, fake_a.detach(), fake_b.detach()

    def discriminator_update(self, a: torch.Tensor, b: torch.Tensor, fake_a: torch.Tensor, fake_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """One update of both discriminators: real images vs translations from the pools."""
        fa, fb = self.pool_a.query(fake_a), self.pool_b.query(fake_b)
        loss_a = 0.5 * (lsgan_loss(self.dis_a(a), 1.0) + lsgan_loss(self.dis_a(fa), 0.0))
        loss_b = 0.5 * (lsgan_loss(self.dis_b(b), 1.0) + lsgan_loss(self.dis_b(fb), 0.0))
        loss = loss_a + loss_b
        self.update("discriminator", loss)
        return {"D/loss": loss.detach(), "D/a": loss_a.detach(), "D/b": loss_b.detach()}

    def training_step(self, batch: Mapping[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        syn, real = batch.get("synthetic"), batch.get("real")
        if syn is None or real is None or syn.ndim != 5 or real.ndim != 5:
            raise SimrealError("CycleGAN needs batch['synthetic'] and batch['real'] of (1, B, C, H, W) mini-batches, got "
                               f"{None if syn is None else tuple(syn.shape)} and {None if real is None else tuple(real.shape)}")
        a, b = syn[0] * 2 - 1, real[0] * 2 - 1
        lr = linear_decay_lr(self.lr, step, self.lr_constant_steps, self.lr_decay_steps)
        self.set_lr("generator", lr)
        self.set_lr("discriminator", lr)
        g, fake_a, fake_b = self.generator_update(a, b)
        d = self.discriminator_update(a, b, fake_a, fake_b)
        return {**g, **d, "pool/size": torch.tensor(float(len(self.pool_b))), "lr": torch.tensor(lr)}

    # -- inference ---------------------------------------------------------------------------------------

    def translate(self, images: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """Synthetic images (B, C, H, W) in [0, 1] (sides multiples of :attr:`size_multiple`) -> real-looking
        ones in [0, 1]. CycleGAN is deterministic: ``style`` must be None."""
        if style is not None:
            raise SimrealError("CycleGAN translates deterministically; it takes no style codes")
        return (self.gen_ab(images * 2 - 1).clamp(-1, 1) + 1) / 2

    def sample(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Columns: synthetic | -> real | -> back to synthetic | real | real -> synthetic."""
        a, b = batch["synthetic"] * 2 - 1, batch["real"] * 2 - 1
        fake_b = self.gen_ab(a)
        to01 = lambda x: (x.clamp(-1, 1) + 1) / 2  # noqa: E731
        return {"synthetic": to01(a), "to real": to01(fake_b), "cycle": to01(self.gen_ba(fake_b)), "real": to01(b),
                "real to synthetic": to01(self.gen_ba(b))}


def build_method(config: CycleGANConfig) -> CycleGAN:
    """The :class:`CycleGAN` of a config."""
    return CycleGAN(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})


def train_cyclegan(config: CycleGANRunConfig, *, progress: bool = True, callbacks: Sequence = ()) -> Path:
    """Train (or resume) a CycleGAN; returns the run folder.

    Raises:
        SimrealError: bad image folders, a crop size that is not a multiple of 2**n_downsampling, a run
            folder of another config or method.
    """
    from simreal.adapt import engine
    from simreal.adapt.data import open_unpaired

    c = config.cyclegan
    data = open_unpaired(config.data, draws=CycleGAN.draws(), seed=config.engine.seed)
    if c.channels is not None and c.channels != data.channels:
        raise SimrealError(f"config says {c.channels} channel(s) but the images have {data.channels}")
    m = 2**c.n_downsampling
    h, w = config.data.size
    if h % m or w % m:
        raise SimrealError(f"--size {h}x{w}: CycleGAN with {c.n_downsampling} down-samplings needs multiples of {m}")
    config = dataclasses.replace(config, cyclegan=dataclasses.replace(c, channels=data.channels))
    return engine.fit(lambda: build_method(config.cyclegan), data, config, progress=progress, callbacks=callbacks)
