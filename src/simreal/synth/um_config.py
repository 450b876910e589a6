"""The run config of mask-guided CT synthesis (:mod:`simreal.synth.um`): frozen dataclasses, no torch import.

One tree per run (written as ``RUN/config.json``, taken back by ``--config``), a CLI flag per field:

* ``data`` (:class:`SynthDataConfig`): which dataset, which slices train, which of them are labelled;
* ``um`` (:class:`UMConfig`): every keyword of :class:`simreal.synth.um.MaskGuidedSynthesis`;
* ``engine``: :class:`simreal.adapt.config.EngineConfig` (steps, seed, checkpoints, devices);
* ``method``: ``"um"`` (guidance = unsupervised superpixel masks, the paper's V2UM2I) or ``"mask"``
  (guidance = the manual segmentation, the baseline V2M2I).

:class:`PerturbConfig` holds the guidance perturbations of ``simreal synth sample`` (:mod:`simreal.synth.sample`).

This module imports neither torch nor Lightning, so ``simreal synth --help`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Literal

from simreal.adapt.config import EngineConfig
from simreal.errors import SimrealError

__all__ = ["PERTURBATIONS", "Guidance", "LabelledSpec", "PerturbConfig", "parse_perturb", "SynthDataConfig", "SynthRunConfig", "UMConfig", "parse_labelled", "validate_um"]

Guidance = Literal["um", "mask"]
GenNorm = Literal["none", "batch", "instance"]


@dataclass(frozen=True)
class LabelledSpec:
    """How many training slices keep their manual mask (see :func:`parse_labelled`).

    Attributes:
        kind: "all", "slices" (``count`` slices), "fraction" (``fraction`` of the slices) or "patients"
            (every slice of ``count`` whole patients).
    """

    kind: Literal["all", "slices", "fraction", "patients"]
    count: int = 0
    fraction: float = 1.0


def parse_labelled(text: str) -> LabelledSpec:
    """Parse ``--labelled``: ``"all"``; ``"40"`` (40 slices); ``"0.1"`` or ``"10%"`` (a fraction of the training
    slices, at least one); ``"2p"`` (every slice of 2 whole training patients).

    Which slices: ``N`` slices or a fraction are spread evenly over the training slices in dataset order
    (patient by patient, inferior to superior), so every patient and z-level is represented;
    ``Np`` takes the first N training patients in sorted order. The rest of the training slices are
    *unlabelled*: their CT and guidance are used, their manual mask is not.

    Example:
        >>> parse_labelled("10%")
        LabelledSpec(kind='fraction', count=0, fraction=0.1)
    """
    t = str(text).strip().lower()
    if t == "all":
        return LabelledSpec("all")
    m = re.fullmatch(r"(\d+)\s*p", t)
    if m:
        n = int(m.group(1))
        if n < 1:
            raise SimrealError(f"--labelled {text!r}: at least one labelled patient is needed")
        return LabelledSpec("patients", count=n)
    if re.fullmatch(r"\d+", t):
        n = int(t)
        if n < 1:
            raise SimrealError(f"--labelled {text!r}: at least one labelled slice is needed")
        return LabelledSpec("slices", count=n)
    try:
        f = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise SimrealError(f"--labelled must be all, N (slices), a fraction 0.1 / 10% or Np (patients), got {text!r}") from None
    if not (0 < f <= 1) or not math.isfinite(f):
        raise SimrealError(f"--labelled fraction must be in (0, 1], got {text!r}")
    return LabelledSpec("fraction", fraction=f)


@dataclass(frozen=True)
class SynthDataConfig:
    """The slices of a synthesis run.

    Args:
        data: a CT slice dataset (``simreal synth prepare``) with "ct" (or "image") and "mask" files; for
            method "um" also "guidance" and "edges" (``simreal synth masks``), unless ``guidance`` names
            another dataset holding them.
        guidance: optional dataset with "guidance" and "edges" for the same sample ids as ``data``.
        split: optional JSON ``{split name: [sample ids]}`` (``simreal synth split --out``); the run trains on
            ``split_name``'s ids.
        split_name: the split to train on.
        groups: train only on these patients (record ``group``); empty: every patient (of the split).
        labelled: how many training slices are labelled (:func:`parse_labelled`): "all", "N", "0.1" / "10%",
            "Np"; the others are unlabelled (used by method "um" with pseudo-labels, ignored by "mask",
            whose guidance *is* the manual mask).
        size: training side in pixels (square; slices are resized: CT bilinear, guidance and masks nearest,
            edges recomputed); None keeps the dataset's size. Must be a multiple of ``2 ** n_downsample``.
        batch_size: slices per mini-batch (paper: 2), for the labelled and the unlabelled batch alike.
        edges: feed the edge map as a second input channel (SemiCS2: yes).
    """

    data: str
    guidance: str | None = None
    split: str | None = None
    split_name: str = "train"
    groups: tuple[str, ...] = ()
    labelled: str = "all"
    size: int | None = None
    batch_size: int = 2
    edges: bool = True

    def __post_init__(self) -> None:
        parse_labelled(self.labelled)
        if self.size is not None and self.size < 8:
            raise SimrealError(f"--size must be >= 8 pixels, got {self.size}")
        if self.batch_size < 1:
            raise SimrealError(f"--batch-size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class UMConfig:
    """Every keyword of :class:`simreal.synth.um.MaskGuidedSynthesis`, same names and defaults (the paper's,
    methods.md 3.3-3.4; sources tabled in :mod:`simreal.synth.um`).

    Args:
        in_channels: generator input channels (guidance + edges = 2); None: from the data.
        num_classes: segmentation classes, background included; None: from the dataset's mask classes.
        ngf, n_downsample, n_blocks, norm: the pix2pixHD global generator (64, 4, 9, instance).
        ndf, n_layers_d, num_d: the multi-scale patch discriminator (64, 3, 2).
        lambda_l1: weight of L1(CT) (10; SemiCS2's "G_VGG" is this L1 times lambda_feat).
        lambda_seg: weight of the supervised Dice + CE (10).
        lambda_pseudo: weight of the pseudo-label Dice + CE on unlabelled slices (0.5).
        pseudo_threshold: a pixel counts in the pseudo-label loss where D's upsampled full-scale probability
            that the synthetic CT is real exceeds this (0.5).
        teacher_every: steps between teacher refreshes (the teacher is a frozen copy of the generator
            that makes the pseudo-labels); None: one pass over the labelled slices,
            ``ceil(n_labelled / batch_size)`` steps (SemiCS2 refreshes after every labelled epoch). The
            unlabelled pass starts at the first refresh.
        lr: Adam learning rate of G and D (2e-4).
        betas: Adam betas (0.5, 0.999).
        decay_steps: the learning rate falls linearly to 0 over the last ``decay_steps`` steps of the run;
            None: the last quarter (SemiCS2: 100 decay epochs after 300 constant ones).
    """

    in_channels: int | None = None
    num_classes: int | None = None
    ngf: int = 64
    n_downsample: int = 4
    n_blocks: int = 9
    norm: GenNorm = "instance"
    ndf: int = 64
    n_layers_d: int = 3
    num_d: int = 2
    lambda_l1: float = 10.0
    lambda_seg: float = 10.0
    lambda_pseudo: float = 0.5
    pseudo_threshold: float = 0.5
    teacher_every: int | None = None
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    decay_steps: int | None = None

    def __post_init__(self) -> None:
        validate_um(**dataclasses.asdict(self))


def validate_um(*, in_channels, num_classes, ngf, n_downsample, n_blocks, norm, ndf, n_layers_d, num_d, lambda_l1,
                lambda_seg, lambda_pseudo, pseudo_threshold, teacher_every, lr, betas, decay_steps) -> None:
    """Raise SimrealError for impossible settings (naming the CLI flag)."""
    if norm not in ("none", "batch", "instance"):
        raise SimrealError(f"--norm must be one of none, batch, instance, got {norm!r}")
    if in_channels is not None and in_channels < 1:
        raise SimrealError(f"in_channels must be >= 1, got {in_channels}")
    if num_classes is not None and num_classes < 2:
        raise SimrealError(f"num_classes must be >= 2 (background included), got {num_classes}")
    if ngf < 1 or n_downsample < 0 or n_blocks < 0:
        raise SimrealError(f"--ngf must be >= 1, --n-downsample and --n-blocks >= 0, got {ngf}, {n_downsample}, {n_blocks}")
    if ndf < 1 or n_layers_d < 1 or num_d < 1:
        raise SimrealError(f"--ndf, --n-layers-d and --num-d must be >= 1, got {ndf}, {n_layers_d}, {num_d}")
    if min(lambda_l1, lambda_seg, lambda_pseudo) < 0:
        raise SimrealError(f"loss weights must be >= 0, got l1 {lambda_l1}, seg {lambda_seg}, pseudo {lambda_pseudo}")
    if not 0 <= pseudo_threshold < 1:
        raise SimrealError(f"--pseudo-threshold must be in [0, 1), got {pseudo_threshold}")
    if teacher_every is not None and teacher_every < 1:
        raise SimrealError(f"--teacher-every must be >= 1 step, got {teacher_every}")
    if not lr > 0:
        raise SimrealError(f"--lr must be > 0, got {lr}")
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise SimrealError(f"Adam betas must be two numbers in [0, 1), got {betas}")
    if decay_steps is not None and decay_steps < 0:
        raise SimrealError(f"--decay-steps must be >= 0, got {decay_steps}")


@dataclass(frozen=True)
class SynthRunConfig:
    """A whole synthesis run; ``RUN/config.json`` holds it with the ``None`` fields of ``um`` resolved, and
    ``simreal synth train --config RUN/config.json`` takes it back (resuming the run)."""

    out: str
    data: SynthDataConfig
    um: UMConfig = field(default_factory=UMConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    method: Guidance = "um"

    def __post_init__(self) -> None:
        if self.method not in ("um", "mask"):
            raise SimrealError(f"--method must be um or mask, got {self.method!r}")


# -- sampling (simreal.synth.sample) ---------------------------------------------------------------------

Perturbation = Literal["affine", "elastic", "jitter", "mix"]
PERTURBATIONS: tuple[str, ...] = ("affine", "elastic", "jitter", "mix")


@dataclass(frozen=True)
class PerturbConfig:
    """How guidance maps are changed before generation (see :mod:`simreal.synth.sample`).

    Args:
        kinds: which perturbations, applied in the order mix -> affine + elastic (one warp) -> jitter; empty:
            none (samples then reproduce training guidance: only for checks).
        rotate_deg: largest rotation in degrees.
        scale: largest relative scale change (0.1: 0.9..1.1).
        translate: largest shift as a fraction of the side.
        elastic_alpha: largest elastic displacement as a fraction of the side.
        elastic_sigma: smoothness of the elastic field: Gaussian sigma as a fraction of the side.
        jitter: largest level change of a region, in quantisation steps.
        step: the guidance's quantisation step (``synth masks --step``; 10).
        mix_prob: probability of mixing with a second slice.
        mix_window: the second slice is within this many slices of the first (same patient).
    """

    kinds: tuple[str, ...] = ("affine", "elastic", "jitter")
    rotate_deg: float = 10.0
    scale: float = 0.1
    translate: float = 0.05
    elastic_alpha: float = 0.04
    elastic_sigma: float = 0.1
    jitter: int = 1
    step: int = 10
    mix_prob: float = 0.0
    mix_window: int = 5

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in PERTURBATIONS]
        if unknown:
            raise SimrealError(f"unknown perturbation {unknown[0]!r}; choose from {', '.join(PERTURBATIONS)} (or none)")
        if len(set(self.kinds)) != len(self.kinds):
            raise SimrealError(f"a perturbation is listed twice: {', '.join(self.kinds)}")
        if self.rotate_deg < 0 or not 0 <= self.scale < 1 or not 0 <= self.translate < 0.5:
            raise SimrealError(f"--rotate must be >= 0, --scale in [0, 1), --translate in [0, 0.5); got {self.rotate_deg}, {self.scale}, {self.translate}")
        if self.elastic_alpha < 0 or not self.elastic_sigma > 0:
            raise SimrealError(f"--elastic-alpha must be >= 0 and --elastic-sigma > 0, got {self.elastic_alpha}, {self.elastic_sigma}")
        if self.jitter < 0 or not 1 <= self.step <= 255:
            raise SimrealError(f"--jitter must be >= 0 and --step in 1..255, got {self.jitter}, {self.step}")
        if not 0 <= self.mix_prob <= 1 or self.mix_window < 1:
            raise SimrealError(f"--mix-prob must be in [0, 1] and --mix-window >= 1, got {self.mix_prob}, {self.mix_window}")


def parse_perturb(text: str) -> tuple[str, ...]:
    """``"affine,elastic"`` -> ("affine", "elastic"); ``"none"`` -> ()."""
    t = text.strip().lower()
    if t in ("", "none"):
        return ()
    return tuple(p.strip() for p in t.split(",") if p.strip())
