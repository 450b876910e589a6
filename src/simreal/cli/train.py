"""`simreal train depth|seg`: train task networks on simreal datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from simreal.errors import SimrealError

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


# Options shared by both tasks; each maps to one TrainConfig field.
def _common(
    data: Path, val: Optional[Path], out: Path, init: Optional[str], freeze: Optional[str], epochs: int,
    max_steps: int, batch_size: int, size: str, lr: float, seed: int, devices: str, accelerator: str,
    precision: str, val_fraction: float, channels: str, norm: str, workers: int, no_progress: bool,
) -> dict:
    return dict(
        val=None if val is None else str(val), init=init, freeze=freeze, epochs=epochs, max_steps=max_steps,
        batch_size=batch_size, size=parse_size(size), lr=lr, seed=seed, devices=devices, accelerator=accelerator,
        precision=precision, val_fraction=val_fraction, channels=_parse_channels(channels), norm=norm,
        num_workers=workers, progress=not no_progress,
    )


_DATA = typer.Option(..., "--data", help="Training dataset folder.")
_VAL = typer.Option(None, "--val", help="Validation dataset folder (default: split off --data by group).")
_OUT = typer.Option(..., "--out", help="Run folder (resumed when it holds a run of the same config).")
_INIT = typer.Option(None, "--init", help="Start from the weights of a checkpoint or run folder of the same task.")
_FREEZE = typer.Option(None, "--freeze", help="'encoder': train only the decoder (needs --init).")
_EPOCHS = typer.Option(10, "--epochs", help="Epochs (may be raised to extend a finished run).")
_STEPS = typer.Option(-1, "--max-steps", help="Stop after this many optimiser steps (-1: no limit).")
_BS = typer.Option(4, "--batch-size", help="Images per step.")
_SIZE = typer.Option("128", "--size", help="Network input size: 128 or HxW, e.g. 96x128.")
_LR = typer.Option(1e-3, "--lr", help="AdamW learning rate (constant).")
_SEED = typer.Option(0, "--seed", help="Seed for weights, validation split and data order.")
_DEVICES = typer.Option("auto", "--devices", help="Lightning devices: auto, 1, 2, ...")
_ACCEL = typer.Option("auto", "--accelerator", help="Lightning accelerator: auto, cpu, gpu.")
_PREC = typer.Option("32-true", "--precision", help="32-true, 16-mixed, bf16-mixed.")
_VALFRAC = typer.Option(0.2, "--val-fraction", help="Share of groups split off for validation when --val is not given (0: none).")
_CH = typer.Option("16,32,64,128", "--channels", help="U-Net widths per level, comma-separated.")
_NORM = typer.Option("batch", "--norm", help="batch, instance, group or none.")
_WORKERS = typer.Option(0, "--workers", help="DataLoader worker processes.")
_NOPROG = typer.Option(False, "--no-progress", help="No progress bar.")


@app.command("depth")
def depth(
    data: Path = _DATA, out: Path = _OUT, val: Optional[Path] = _VAL, init: Optional[str] = _INIT,
    freeze: Optional[str] = _FREEZE, epochs: int = _EPOCHS, max_steps: int = _STEPS, batch_size: int = _BS,
    size: str = _SIZE, lr: float = _LR, seed: int = _SEED, devices: str = _DEVICES, accelerator: str = _ACCEL,
    precision: str = _PREC, val_fraction: float = _VALFRAC, channels: str = _CH, norm: str = _NORM,
    workers: int = _WORKERS, no_progress: bool = _NOPROG,
    silog_lambda: float = typer.Option(0.85, "--silog-lambda", help="SILog lambda (1: blind to global scale)."),
    l1_weight: float = typer.Option(1.0, "--l1-weight", help="Weight of L1 on depth / scale."),
    silog_weight: float = typer.Option(1.0, "--silog-weight", help="Weight of the scale-invariant log loss."),
    grad_weight: float = typer.Option(0.5, "--grad-weight", help="Weight of the gradient-matching loss."),
) -> None:
    """Train a monocular depth network (predicts depth in mm)."""
    kw = _common(data, val, out, init, freeze, epochs, max_steps, batch_size, size, lr, seed, devices, accelerator,
                 precision, val_fraction, channels, norm, workers, no_progress)
    _run("depth", data, out, silog_lambda=silog_lambda, l1_weight=l1_weight, silog_weight=silog_weight,
         grad_weight=grad_weight, **kw)


@app.command("seg")
def seg(
    data: Path = _DATA, out: Path = _OUT, val: Optional[Path] = _VAL, init: Optional[str] = _INIT,
    freeze: Optional[str] = _FREEZE, epochs: int = _EPOCHS, max_steps: int = _STEPS, batch_size: int = _BS,
    size: str = _SIZE, lr: float = _LR, seed: int = _SEED, devices: str = _DEVICES, accelerator: str = _ACCEL,
    precision: str = _PREC, val_fraction: float = _VALFRAC, channels: str = _CH, norm: str = _NORM,
    workers: int = _WORKERS, no_progress: bool = _NOPROG,
    dice_weight: float = typer.Option(1.0, "--dice-weight", help="Weight of the Dice loss."),
    ce_weight: float = typer.Option(1.0, "--ce-weight", help="Weight of the cross-entropy loss."),
) -> None:
    """Train a segmentation network (class ids from the dataset's mask classes)."""
    kw = _common(data, val, out, init, freeze, epochs, max_steps, batch_size, size, lr, seed, devices, accelerator,
                 precision, val_fraction, channels, norm, workers, no_progress)
    _run("seg", data, out, dice_weight=dice_weight, ce_weight=ce_weight, **kw)
