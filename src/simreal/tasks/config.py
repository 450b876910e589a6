"""The whole configuration of a training run: one frozen dataclass tree, written as ``RUN/config.json``.

A CLI flag maps to one field. :func:`make_config` builds the tree from flat keywords (``lr=1e-3``,
``channels=(8, 16)``...) and validates it once. :meth:`TrainConfig.identity` is the part that must match
for a run folder to be resumed: what the run learns from and how; not how long it runs (``epochs`` and
``max_steps`` may grow to extend a run) nor where (devices, workers, progress).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from numbers import Integral
from pathlib import Path
from typing import Any, Literal

from simreal.errors import SimrealError

Task = Literal["depth", "seg"]

#: How a run uses several processes (``--strategy``): "auto" is one process, or Lightning's choice
#: (subprocess DDP) when ``devices`` asks for several; "ddp" launches the other processes by running the
#: same command line again (the one to use from ``simreal train`` / ``simreal adapt``, on GPUs and across
#: nodes); "ddp_spawn" starts them with multiprocessing from inside the calling process (the one to use
#: from Python code and tests: the command line is not run again). See :mod:`simreal.tasks.distributed`.
Strategy = Literal["auto", "ddp", "ddp_spawn"]
STRATEGIES: tuple[str, ...] = ("auto", "ddp", "ddp_spawn")

#: Validation figures a run may choose its best checkpoint by (see ``tasks/modules.py``), and which way
#: is better.
SELECTABLE = {
    "val/loss": "min", "val/abs_rel": "min", "val/abs_rel_median": "min", "val/delta1_median": "max",
    "val/rmse_mm": "min", "val/dice": "max",
}

#: The figure each task reports, and so selects its best checkpoint on, by default.
DEFAULT_SELECT = {"depth": "val/abs_rel_median", "seg": "val/dice"}


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are batched.

    Args:
        train: training dataset folder, or a render job to render on the fly (a ``simreal render colon``
            job file, YAML / TOML / JSON, or a rendered set's ``dataset.json``): the same frames, never
            written (see :class:`~simreal.tasks.data.RenderJobSource`).
        val: validation dataset folder, or None to split one off ``train`` (by group when records have
            groups, else by sample; deterministic in ``seed``).
        val_fraction: share of groups (or samples) split off when ``val`` is None; 0 = no validation.
        size: (H, W) pixels the network sees.
        batch_size: images per step.
        num_workers: DataLoader worker processes (0 = load in the main process).
        mask_map: stored class id -> training class id (segmentation), e.g. {2: 1} merges classes.
        fresh: with a render job as ``train``: every epoch renders new frames (epoch e draws frame
            ``i + e * stride`` where epoch 0 draws frame i, on the same anatomy; see
            :class:`~simreal.data.render_dataset.RenderedColonDataset`) instead of the same ``n`` again.
            Validation frames stay fixed.
        augment: random horizontal / vertical flips of each training image together with its depth map or
            mask (label-safe for z-depth and masks with a centred principal point); validation is never
            augmented.
    """

    train: str
    val: str | None = None
    val_fraction: float = 0.2
    size: tuple[int, int] = (128, 128)
    batch_size: int = 4
    num_workers: int = 0
    mask_map: dict[int, int] | None = None
    augment: bool = False
    fresh: bool = False


@dataclass(frozen=True)
class ModelConfig:
    """The U-Net (see :class:`simreal.nets.unet.UNet`)."""

    channels: tuple[int, ...] = (16, 32, 64, 128)
    norm: Literal["batch", "instance", "group", "none"] = "batch"
    act: Literal["relu", "leaky_relu", "gelu"] = "relu"
    dropout: float = 0.0
    #: segmentation: number of classes (None = from the training set's class names).
    num_classes: int | None = None
    #: depth: the network predicts ``log(depth_mm / depth_scale_mm)``; None = median valid training depth.
    depth_scale_mm: float | None = None


@dataclass(frozen=True)
class LossConfig:
    """Loss weights (depth: L1 / log-L1 / SILog / gradient matching; segmentation: Dice / cross-entropy).

    The metric L1 term is weak on purpose. One frame does not fix its depth scale (light power and
    exposure vary), and a strong L1 spends the network on guessing that scale: in the baseline protocol at
    ``--scale small`` (seed 0, 13 epochs) L1 weight 1.0 gave median-scaled abs_rel 0.106 and metric
    0.245; weight 0.1 gave 0.087 and 0.243; log-L1 instead of L1 gave 0.109 and 0.248.
    """

    l1_weight: float = 0.1
    log_l1_weight: float = 0.0
    silog_weight: float = 1.0
    silog_lambda: float = 0.85
    grad_weight: float = 0.5
    grad_scales: int = 4
    dice_weight: float = 1.0
    ce_weight: float = 1.0


@dataclass(frozen=True)
class OptimConfig:
    """AdamW; the learning rate is constant (a run can then be extended without changing its past) or
    follows a cosine from ``lr`` down to ``lr * min_lr_ratio`` over the run's planned steps (then the
    planned length is part of what a resumed run must match)."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 10
    max_steps: int = -1  # -1: no step limit
    schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = 0.02


@dataclass(frozen=True)
class TrainConfig:
    """A training run.

    Args:
        task: "depth" (depth in mm) or "seg" (class ids).
        out: the run folder.
        init: a checkpoint file (or run folder) of the same task whose weights start this run.
        freeze: "encoder" to train only the decoder and head (fine-tuning), or None.
        seed: seeds weights, the validation split and the data order of every epoch.
        accelerator, devices, precision: passed to ``lightning.Trainer``.
        strategy, num_nodes: several processes (see :data:`Strategy`); ``devices`` x ``num_nodes`` processes
            share each batch of ``data.batch_size`` images (each takes ``batch_size / processes``), so the
            run learns what one process learns, up to what :mod:`simreal.tasks.distributed` lists.
        n_sample_images: validation samples drawn as input | target | prediction after each validation.
        select: the validation figure ``checkpoints/best.ckpt`` is chosen by (``val/abs_rel_median``,
            ``val/abs_rel``, ``val/delta1_median``, ``val/rmse_mm``, ``val/dice`` or ``val/loss``); None =
            the figure the task reports (depth: per-image median-scaled abs_rel; seg: Dice on the frames
            that show the class). Without a validation set the lowest training loss is kept.
    """

    task: Task
    out: str
    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    init: str | None = None
    freeze: Literal["encoder"] | None = None
    seed: int = 0
    accelerator: str = "auto"
    devices: str = "auto"
    strategy: Strategy = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    n_sample_images: int = 4
    select: str | None = None

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["data"]["mask_map"] is not None:
            d["data"]["mask_map"] = {str(k): v for k, v in d["data"]["mask_map"].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | Path | None = None) -> "TrainConfig":
        """The config of a mapping as :meth:`to_dict` writes it (``RUN/config.json``, a ``--config`` file).

        Raises:
            SimrealError: unknown or missing fields, wrong types, impossible values (naming ``source``).
        """
        from simreal.configs import build

        return build(cls, d, source=source)

    def identity(self) -> dict[str, Any]:
        """The fields that must be equal to resume a run (everything that changes what is learnt)."""
        d = self.to_dict()
        for key in ("accelerator", "devices", "strategy", "num_nodes", "n_sample_images"):
            d.pop(key)
        d["data"].pop("num_workers")
        if self.optim.schedule == "constant":
            d["optim"].pop("epochs")
            d["optim"].pop("max_steps")
        return d

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def validate(c: TrainConfig) -> None:
    """Raise SimrealError for impossible values (called once, when the config is built)."""
    if c.task not in ("depth", "seg"):
        raise SimrealError(f"task must be 'depth' or 'seg', got {c.task!r}")
    if c.freeze not in (None, "encoder"):
        raise SimrealError(f"--freeze must be 'encoder' (or not given), got {c.freeze!r}")
    if c.freeze is not None and c.init is None:
        raise SimrealError("--freeze encoder needs --init CKPT: freezing random weights makes no sense")
    d, m, o, lo = c.data, c.model, c.optim, c.loss
    if len(d.size) != 2 or min(d.size) < 8:
        raise SimrealError(f"--size must be (H, W) with both >= 8, got {d.size}")
    if d.batch_size < 1 or d.num_workers < 0:
        raise SimrealError(f"--batch-size must be >= 1 and workers >= 0, got {d.batch_size} / {d.num_workers}")
    if not 0.0 <= d.val_fraction < 1.0:
        raise SimrealError(f"--val-fraction must be in [0, 1), got {d.val_fraction}")
    if d.mask_map is not None:
        # Masks are 8-bit: a key outside 0..255 can never occur (and would index past the lookup table).
        bad = {k: v for k, v in d.mask_map.items() if not (isinstance(k, Integral) and 0 <= k <= 255)
               or not (isinstance(v, Integral) and v >= 0)}
        if bad:
            raise SimrealError(f"data.mask_map keys must be class ids 0..255 and values >= 0, got {bad}")
    divisor = 2 ** (len(m.channels) - 1)
    if min(d.size) < divisor:
        raise SimrealError(f"--size {d.size} is too small for {len(m.channels)} U-Net levels (needs >= {divisor})")
    if m.num_classes is not None and m.num_classes < 2:
        raise SimrealError(f"num_classes must be >= 2, got {m.num_classes}")
    if m.depth_scale_mm is not None and not m.depth_scale_mm > 0:
        raise SimrealError(f"depth scale must be positive, got {m.depth_scale_mm}")
    if o.schedule not in ("constant", "cosine"):
        raise SimrealError(f"--schedule must be constant or cosine, got {o.schedule!r}")
    if not 0 <= o.min_lr_ratio <= 1:
        raise SimrealError(f"min_lr_ratio must be in [0, 1], got {o.min_lr_ratio}")
    if o.lr <= 0 or o.weight_decay < 0:
        raise SimrealError(f"--lr must be > 0 and weight decay >= 0, got {o.lr} / {o.weight_decay}")
    if o.epochs < 1 or (o.max_steps != -1 and o.max_steps < 1):
        raise SimrealError(f"--epochs must be >= 1 and --max-steps >= 1 or -1, got {o.epochs} / {o.max_steps}")
    if not 0.0 <= lo.silog_lambda <= 1.0:
        raise SimrealError(f"SILog lambda must be in [0, 1], got {lo.silog_lambda}")
    if min(lo.l1_weight, lo.log_l1_weight, lo.silog_weight, lo.grad_weight, lo.dice_weight, lo.ce_weight) < 0:
        raise SimrealError("loss weights must be >= 0")
    if c.select is not None and c.select not in SELECTABLE:
        raise SimrealError(f"--select must be one of {', '.join(SELECTABLE)}, got {c.select!r}")
    if (c.task == "depth" and c.select == "val/dice") or (c.task == "seg" and c.select not in (None, "val/dice", "val/loss")):
        raise SimrealError(f"--select {c.select} is not a {c.task} figure")
    check_distributed(c.devices, c.strategy, c.num_nodes)
    if c.precision not in ("32-true", "32", "16-mixed", "bf16-mixed", "64-true", "bf16-true", "16-true"):
        raise SimrealError(f"unknown precision {c.precision!r} (e.g. 32-true, 16-mixed, bf16-mixed)")


def check_distributed(devices: object, strategy: object, num_nodes: object) -> None:
    """Raise SimrealError for a ``--devices`` / ``--strategy`` / ``--num-nodes`` combination that cannot run.

    ``devices`` is "auto", "-1" (all), a count ("2") or GPU ids ("0,1"); whether the machine has that many
    GPUs is checked when the run starts (:func:`simreal.tasks.distributed.check_devices`).
    """
    if strategy not in STRATEGIES:
        raise SimrealError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not isinstance(num_nodes, Integral) or isinstance(num_nodes, bool) or num_nodes < 1:
        raise SimrealError(f"--num-nodes must be an integer >= 1, got {num_nodes!r}")
    text = str(devices).strip()
    ids = [p.strip() for p in text.split(",") if p.strip()]
    listed = "," in text and bool(ids) and all(p.isdigit() for p in ids)
    ok = text in ("auto", "-1") or (text.isdigit() and int(text) >= 1) or listed
    if not ok:
        raise SimrealError(f"--devices must be auto, -1 (all), a count >= 1 or GPU ids like 0,1; got {devices!r}")
    if num_nodes > 1 and strategy != "ddp":
        raise SimrealError(
            f"--num-nodes {num_nodes} needs --strategy ddp (every node runs the same command with NODE_RANK, "
            f"MASTER_ADDR and MASTER_PORT set, or under SLURM / torchrun), got --strategy {strategy}"
        )


def _field_names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


#: The sub-config each flat keyword of :func:`make_config` belongs to.
_GROUPS = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "optim": OptimConfig}


def nest_options(**kw: Any) -> dict[str, Any]:
    """Flat keywords (``lr=1e-3``, ``size=64``, ``channels=(8, 16)``) -> the nested mapping of a
    :class:`TrainConfig` (``{"optim": {"lr": 1e-3}, "data": {"size": (64, 64)}, ...}``).

    Raises:
        SimrealError: a keyword that no config field has.
    """
    nested: dict[str, Any] = {}
    top_names = _field_names(TrainConfig) - set(_GROUPS)
    for key, value in kw.items():
        if key == "size" and isinstance(value, int):
            value = (value, value)
        if key in ("size", "channels") and value is not None:
            value = tuple(int(v) for v in value)
        owners = [g for g, cls in _GROUPS.items() if key in _field_names(cls)]
        if owners:
            nested.setdefault(owners[0], {})[key] = value
        elif key in top_names:
            nested[key] = None if value is None else (str(value) if key in ("init", "out") else value)
        else:
            raise SimrealError(f"unknown training option {key!r}")
    return nested


def make_config(task: Task, data: str | Path, out: str | Path, **kw: Any) -> TrainConfig:
    """Build a :class:`TrainConfig` from flat keywords; each goes to the sub-config that has it.

    Example:
        >>> c = make_config("depth", "renders/colon", "runs/d1", size=(64, 64), channels=(8, 16), lr=1e-3)
        >>> c.optim.lr, c.data.size
        (0.001, (64, 64))
    """
    from simreal.configs import merge

    nested = merge({"task": task, "out": str(out), "data": {"train": str(data)}}, nest_options(**kw))
    return TrainConfig(
        **{k: v for k, v in nested.items() if k not in _GROUPS},
        **{g: cls(**nested.get(g, {})) for g, cls in _GROUPS.items()},
    )


def write_config(path: Path, config: TrainConfig) -> None:
    """Write ``config.json`` atomically with sorted keys."""
    from simreal.data.writer import write_json

    write_json(path, config.to_dict())


def read_config(path: Path) -> TrainConfig:
    if not path.is_file():
        raise SimrealError("no config.json: not a simreal run folder", path.parent)
    try:
        return TrainConfig.from_dict(json.loads(path.read_text()), source=path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SimrealError(f"unreadable config ({exc.__class__.__name__})", path) from None
