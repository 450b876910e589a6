"""`simreal train depth|seg`: train task networks on simreal datasets."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Callable, Optional

import typer

from simreal.errors import SimrealError
from simreal.tasks.config import LossConfig

app = typer.Typer(help="Train depth or segmentation networks (Lightning; resumable runs).", no_args_is_help=True)


def parse_size(text: str) -> tuple[int, int]:
    """'128' -> (128, 128); '96x128' -> (96, 128) (height x width)."""
    try:
        parts = [int(p) for p in text.lower().replace(",", "x").split("x")]
    except ValueError:
        raise SimrealError(f"--size must look like 128 or 96x128, got {text!r}") from None
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise SimrealError(f"--size must look like 128 or 96x128, got {text!r}")


def _parse_channels(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        raise SimrealError(f"--channels must be comma-separated integers, got {text!r}") from None


def _run(task: str, data: Path, out: Path, **kw) -> None:
    from rich.console import Console

    from simreal.tasks.train import train_from_kwargs

    progress = kw.pop("progress")
    run = train_from_kwargs(task, data, out, progress=progress, **kw)
    Console(stderr=True).print(f"run folder: {run}  (checkpoints/, metrics.csv, tb/, samples/, config.json)")


_DATA = typer.Option(..., "--data", help="Training dataset folder.")
_VAL = typer.Option(None, "--val", help="Validation dataset folder (default: split off --data by group).")
_OUT = typer.Option(..., "--out", help="Run folder (resumed when it holds a run of the same config).")
_INIT = typer.Option(None, "--init", help="Start from the weights of a checkpoint or run folder of the same task.")
_FREEZE = typer.Option(None, "--freeze", help="'encoder': train only the decoder (needs --init).")
_EPOCHS = typer.Option(10, "--epochs", help="Epochs (may be raised to extend a finished run).")
_STEPS = typer.Option(-1, "--max-steps", help="Stop after this many optimiser steps (-1: no limit).")
_BS = typer.Option(4, "--batch-size", help="Images per step.")
_SIZE = typer.Option("128", "--size", help="Network input size: 128 or HxW, e.g. 96x128.")
_LR = typer.Option(1e-3, "--lr", help="AdamW learning rate (the peak, with --schedule cosine).")
_SCHED = typer.Option("constant", "--schedule", help="constant, or cosine decay over the planned epochs/steps.")
_AUG = typer.Option(False, "--augment", help="Random left-right / up-down flips of training images with their labels.")
_SEED = typer.Option(0, "--seed", help="Seed for weights, validation split and data order.")
_DEVICES = typer.Option("auto", "--devices", help="Lightning devices: auto, 1, 2, ...")
_ACCEL = typer.Option("auto", "--accelerator", help="Lightning accelerator: auto, cpu, gpu.")
_PREC = typer.Option("32-true", "--precision", help="32-true, 16-mixed, bf16-mixed.")
_VALFRAC = typer.Option(0.2, "--val-fraction", help="Share of groups split off for validation when --val is not given (0: none).")
_CH = typer.Option("16,32,64,128", "--channels", help="U-Net widths per level, comma-separated.")
_NORM = typer.Option("batch", "--norm", help="batch, instance, group or none.")
_WORKERS = typer.Option(0, "--workers", help="DataLoader worker processes.")
_NOPROG = typer.Option(False, "--no-progress", help="No progress bar.")


# Options shared by both tasks; each maps to one TrainConfig field.
def _shared_options(
    data: Path = _DATA, out: Path = _OUT, val: Optional[Path] = _VAL, init: Optional[str] = _INIT,
    freeze: Optional[str] = _FREEZE, epochs: int = _EPOCHS, max_steps: int = _STEPS, batch_size: int = _BS,
    size: str = _SIZE, lr: float = _LR, seed: int = _SEED, devices: str = _DEVICES, accelerator: str = _ACCEL,
    precision: str = _PREC, val_fraction: float = _VALFRAC, channels: str = _CH, norm: str = _NORM,
    workers: int = _WORKERS, no_progress: bool = _NOPROG, schedule: str = _SCHED, augment: bool = _AUG,
) -> dict:
    return dict(
        data=data, out=out, val=None if val is None else str(val), init=init, freeze=freeze, epochs=epochs,
        max_steps=max_steps, batch_size=batch_size, size=parse_size(size), lr=lr, seed=seed, devices=devices,
        accelerator=accelerator, precision=precision, val_fraction=val_fraction, channels=_parse_channels(channels),
        norm=norm, num_workers=workers, progress=not no_progress, schedule=schedule, augment=augment,
    )


def _task_command(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``simreal train <name>`` with the options of :func:`_shared_options` in front of its own.

    Typer builds the CLI from ``__signature__``, so ``--help`` lists the shared options first; the command
    itself receives them already parsed, as one dict in its ``shared`` parameter.
    """
    return lambda command: app.command(name)(_with_shared_options(command))


def _with_shared_options(command: Callable[..., None]) -> Callable[..., None]:
    shared = list(inspect.signature(_shared_options, eval_str=True).parameters.values())
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "shared"]

    @functools.wraps(command)
    def wrapper(**kw) -> None:
        command(shared=_shared_options(**{p.name: kw.pop(p.name) for p in shared}), **kw)

    wrapper.__signature__ = inspect.Signature([*shared, *own], return_annotation=None)
    wrapper.__annotations__ = {p.name: p.annotation for p in (*shared, *own)}
    return wrapper


@_task_command("depth")
def depth(
    shared: dict,
    silog_lambda: float = typer.Option(LossConfig.silog_lambda, "--silog-lambda",
                                       help="SILog lambda (1: blind to global scale)."),
    l1_weight: float = typer.Option(LossConfig.l1_weight, "--l1-weight",
                                    help="Weight of L1 on depth / scale (ties the prediction to metric scale)."),
    log_l1_weight: float = typer.Option(LossConfig.log_l1_weight, "--log-l1-weight",
                                        help="Weight of L1 on log depth (about the relative error, abs_rel)."),
    silog_weight: float = typer.Option(LossConfig.silog_weight, "--silog-weight",
                                       help="Weight of the scale-invariant log loss."),
    grad_weight: float = typer.Option(LossConfig.grad_weight, "--grad-weight",
                                      help="Weight of the gradient-matching loss."),
) -> None:
    """Train a monocular depth network (predicts depth in mm)."""
    _run("depth", silog_lambda=silog_lambda, l1_weight=l1_weight, log_l1_weight=log_l1_weight,
         silog_weight=silog_weight, grad_weight=grad_weight, **shared)


@_task_command("seg")
def seg(
    shared: dict,
    dice_weight: float = typer.Option(LossConfig.dice_weight, "--dice-weight", help="Weight of the Dice loss."),
    ce_weight: float = typer.Option(LossConfig.ce_weight, "--ce-weight", help="Weight of the cross-entropy loss."),
) -> None:
    """Train a segmentation network (class ids from the dataset's mask classes)."""
    _run("seg", dice_weight=dice_weight, ce_weight=ce_weight, **shared)
