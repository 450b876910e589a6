"""`simreal train depth|seg`: train task networks on simreal datasets."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Callable, Optional

import typer

from simreal.cli.options import print_run_folder, typed_on_command_line
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


def _run(task: str, options: dict, given: set[str], config_file: Path | None) -> None:
    """Train from the command line's options, laid over ``--config FILE`` when one is given.

    Without a file every option counts (its default when not typed). With a file, only the options typed
    on the command line override it: a default never silently replaces a value the file sets.
    """

    from simreal.tasks.config import TrainConfig, make_config, nest_options
    from simreal.tasks.train import train

    options = dict(options)
    progress = options.pop("progress")
    if config_file is None:
        data, out = options.pop("data"), options.pop("out")
        if data is None or out is None:
            raise SimrealError("give --data and --out (or a --config file that names them)")
        config = make_config(task, data, out, **options)
    else:
        from simreal.configs import merge, read_config_file

        mapping = read_config_file(config_file)
        if mapping.get("task", task) != task:
            raise SimrealError(f"this is a {mapping['task']!r} config; use `simreal train {mapping['task']}`", config_file)
        typed = {k: v for k, v in options.items() if k in given}
        over: dict = {"task": task}
        if "data" in typed:
            over["data"] = {"train": str(typed.pop("data"))}
        if "out" in typed:
            over["out"] = str(typed.pop("out"))
        merged = merge(merge(mapping, over), nest_options(**typed))
        if not merged.get("out") or not merged.get("data", {}).get("train"):
            raise SimrealError("the config names no run folder (out) or training data (data.train); give --out / --data", config_file)
        config = TrainConfig.from_dict(merged, source=config_file)
    print_run_folder(train(config, progress=progress))


_DATA = typer.Option(None, "--data", help="Training dataset folder, or a render job rendered on the fly and never "
                     "written (a `simreal render colon --write-config` file, or a rendered set's dataset.json); "
                     "required unless --config names it.")
_VAL = typer.Option(None, "--val", help="Validation dataset folder or render job (default: split off --data by group, "
                    "i.e. by anatomy for a render job).")
_FRESH = typer.Option(False, "--fresh-frames", help="With a render job as --data: render new frames every epoch (same "
                      "anatomies, never the job's own frames) instead of the same ones again.")
_OUT = typer.Option(None, "--out", help="Run folder (resumed when it holds a run of the same config; required unless --config names it).")
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
_DEVICES = typer.Option("auto", "--devices", help="Devices (processes) per node: auto, 1, 2, ... or GPU ids 0,1; with "
                        "--accelerator cpu, N CPU processes. --batch-size is shared by all processes.")
_STRATEGY = typer.Option("auto", "--strategy", help="auto (one process, or DDP when --devices asks for several), ddp "
                         "(re-runs this command in each process; GPUs, nodes) or ddp_spawn (multiprocessing).")
_NODES = typer.Option(1, "--num-nodes", help="Machines (each runs this command with NODE_RANK, MASTER_ADDR, MASTER_PORT "
                      "set, or under SLURM / torchrun); needs --strategy ddp.")
_ACCEL = typer.Option("auto", "--accelerator", help="Lightning accelerator: auto, cpu, gpu.")
_PREC = typer.Option("32-true", "--precision", help="32-true, 16-mixed, bf16-mixed.")
_VALFRAC = typer.Option(0.2, "--val-fraction", help="Share of groups split off for validation when --val is not given (0: none).")
_CH = typer.Option("16,32,64,128", "--channels", help="U-Net widths per level, comma-separated.")
_NORM = typer.Option("batch", "--norm", help="batch, instance, group or none.")
_WORKERS = typer.Option(0, "--workers", help="DataLoader worker processes.")
_NOPROG = typer.Option(False, "--no-progress", help="No progress bar.")
_SELECT = typer.Option(None, "--select", help="Validation figure best.ckpt is chosen by: val/abs_rel_median (depth default), "
                       "val/abs_rel, val/delta1_median, val/rmse_mm, val/dice (seg default) or val/loss.")
_CONFIG = typer.Option(None, "--config", help="YAML, TOML or JSON training config (e.g. a run's own config.json); "
                       "options typed on the command line override it.")


# Options shared by both tasks; each maps to one TrainConfig field.
def _shared_options(
    data: Optional[Path] = _DATA, out: Optional[Path] = _OUT, val: Optional[Path] = _VAL, init: Optional[str] = _INIT,
    freeze: Optional[str] = _FREEZE, epochs: int = _EPOCHS, max_steps: int = _STEPS, batch_size: int = _BS,
    size: str = _SIZE, lr: float = _LR, seed: int = _SEED, devices: str = _DEVICES, strategy: str = _STRATEGY,
    num_nodes: int = _NODES, accelerator: str = _ACCEL, precision: str = _PREC, val_fraction: float = _VALFRAC, channels: str = _CH, norm: str = _NORM,
    workers: int = _WORKERS, no_progress: bool = _NOPROG, schedule: str = _SCHED, augment: bool = _AUG,
    select: Optional[str] = _SELECT, fresh_frames: bool = _FRESH,
) -> dict:
    return dict(
        data=data, out=out, val=None if val is None else str(val), init=init, freeze=freeze, epochs=epochs,
        max_steps=max_steps, batch_size=batch_size, size=parse_size(size), lr=lr, seed=seed, devices=devices,
        strategy=strategy, num_nodes=num_nodes, accelerator=accelerator, precision=precision, val_fraction=val_fraction, channels=_parse_channels(channels),
        norm=norm, num_workers=workers, progress=not no_progress, schedule=schedule, augment=augment, select=select,
        fresh=fresh_frames,
    )


#: CLI parameter name -> the option key it sets (where the two differ).
_KEY_OF = {"workers": "num_workers", "no_progress": "progress", "fresh_frames": "fresh"}


def _task_command(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``simreal train <name>`` with the options of :func:`_shared_options` in front of its own.

    Typer builds the CLI from ``__signature__``, so ``--help`` lists the shared options first; the command
    itself receives them already parsed, as one dict in its ``shared`` parameter.
    """
    return lambda command: app.command(name)(_with_shared_options(command))


def _with_shared_options(command: Callable[..., None]) -> Callable[..., None]:
    shared = list(inspect.signature(_shared_options, eval_str=True).parameters.values())
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name not in ("shared", "given")]
    ctx_param = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)

    @functools.wraps(command)
    def wrapper(ctx: typer.Context, **kw) -> None:
        typed = {_KEY_OF.get(name, name) for name in typed_on_command_line(ctx, kw)}
        command(shared=_shared_options(**{p.name: kw.pop(p.name) for p in shared}), given=typed, **kw)

    wrapper.__signature__ = inspect.Signature([ctx_param, *shared, *own], return_annotation=None)
    wrapper.__annotations__ = {"ctx": typer.Context, **{p.name: p.annotation for p in (*shared, *own)}}
    return wrapper


@_task_command("depth")
def depth(
    shared: dict,
    given: set,
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
    config: Optional[Path] = _CONFIG,
) -> None:
    """Train a monocular depth network (predicts depth in mm).

    Example: simreal train depth --data renders/colon --out runs/depth --epochs 15 --schedule cosine --augment.
    On the fly, new frames every epoch: simreal render colon --n 2000 --colons 3 --write-config job.yaml;
    simreal train depth --data job.yaml --fresh-frames --workers 2 --out runs/depth.
    A run's own RUN/config.json is accepted back: simreal train depth --config RUN/config.json --out RUN2.
    """
    _run("depth", dict(shared, silog_lambda=silog_lambda, l1_weight=l1_weight, log_l1_weight=log_l1_weight,
                       silog_weight=silog_weight, grad_weight=grad_weight), given, config)


@_task_command("seg")
def seg(
    shared: dict,
    given: set,
    dice_weight: float = typer.Option(LossConfig.dice_weight, "--dice-weight", help="Weight of the Dice loss."),
    ce_weight: float = typer.Option(LossConfig.ce_weight, "--ce-weight", help="Weight of the cross-entropy loss."),
    config: Optional[Path] = _CONFIG,
) -> None:
    """Train a segmentation network (class ids from the dataset's mask classes).

    A run's own RUN/config.json is accepted back: simreal train seg --config RUN/config.json --out RUN2.
    """
    _run("seg", dict(shared, dice_weight=dice_weight, ce_weight=ce_weight), given, config)
