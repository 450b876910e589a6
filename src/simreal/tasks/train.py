"""Train a depth or segmentation U-Net on a simreal dataset with Lightning.

Run folder (``config.out``)::

    RUN/config.json            the resolved TrainConfig (depth scale and class count filled in)
    RUN/checkpoints/last.ckpt  end of the latest epoch (resume point)
    RUN/checkpoints/best.ckpt  best validation figure (``config.select``; default the figure the task
                               reports), lowest train/loss when there is no validation set
    RUN/metrics.csv            CSV log: train/loss per logged step, epoch means, val metrics (kept on resume)
    RUN/tb/                    TensorBoard events
    RUN/samples/val_epochNNNN.png  rows of input | target | prediction after each validation

Several processes (``devices`` x ``num_nodes``, ``strategy`` "ddp" or "ddp_spawn"): each takes its share of
every batch and only rank 0 writes; see :mod:`simreal.tasks.distributed` for what equals one process and
what differs.

Resuming: calling :func:`train` again on a folder that holds ``checkpoints/last.ckpt`` continues from it when
the config's :meth:`~simreal.tasks.config.TrainConfig.identity` matches (more epochs / steps extend the run);
otherwise it refuses. Checkpoints are written at epoch ends and the data order depends only on (seed,
epoch), so a run resumed after an interruption ends with the same weights as an uninterrupted one; an
interruption mid-epoch repeats that epoch from its start.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
from torch.utils.data import Dataset
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.loggers import TensorBoardLogger

from simreal.errors import SimrealError
from simreal.tasks import data as tdata
from simreal.tasks import distributed as dist
from simreal.tasks.config import DEFAULT_SELECT, SELECTABLE, TrainConfig, make_config, read_config, write_config
from simreal.tasks.csvlog import ResumableCSVLogger, trim_metrics
from simreal.tasks.modules import TaskModule, build_module, checkpoint_task, load_checkpoint

__all__ = ["train", "train_from_kwargs", "resolve_checkpoint", "resolve_config"]


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder -> its ``checkpoints/best.ckpt`` (else ``last.ckpt``)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for name in ("best.ckpt", "last.ckpt"):
            if (path / "checkpoints" / name).is_file():
                return path / "checkpoints" / name
        raise SimrealError("run folder holds no checkpoint (checkpoints/best.ckpt or last.ckpt)", path)
    raise SimrealError("checkpoint not found", path)


def _kinds(task: str) -> tuple[str, ...]:
    return ("depth",) if task == "depth" else ("mask",)


def resolve_config(config: TrainConfig) -> tuple[TrainConfig, list[int], list[int], dict | None, tdata.TrainingSource]:
    """Fill in what the data decides (depth scale, class count) and split train / val indices.

    Returns:
        (resolved config, train indices, val indices into ``data.train`` (empty when ``data.val`` is
        given or ``val_fraction`` is 0), the ``--init`` checkpoint or None, the training source).
    """
    source = tdata.open_source(config.data.train)
    kind = _kinds(config.task)[0]
    if kind not in source.info.files:
        raise SimrealError(f"dataset has no {kind!r} labels for task {config.task!r} (it has: {', '.join(source.info.files)})", source.root)
    if config.data.fresh and not isinstance(source, tdata.RenderJobSource):
        raise SimrealError("fresh frames every epoch need a render job to train on (a job file or a rendered "
                           "set's dataset.json as --data), not a dataset folder", source.root)
    if config.data.val is None:
        train_idx, val_idx = tdata.split_by_group(source.groups(), config.data.val_fraction, config.seed)
    else:
        train_idx, val_idx = list(range(len(source))), []
    init = None
    model = config.model
    if config.init is not None:
        init = load_checkpoint(resolve_checkpoint(config.init))
        if checkpoint_task(init) != config.task:
            raise SimrealError(
                f"checkpoint is for task {checkpoint_task(init)!r}, this run trains {config.task!r}", config.init
            )
        old = TrainConfig.from_dict(init["simreal"]["config"]).model
        for name in ("channels", "norm", "act", "num_classes"):
            mine, theirs = getattr(model, name), getattr(old, name)
            if mine is not None and mine != theirs:
                raise SimrealError(f"--init network differs: {name} {theirs} there vs {mine} here", config.init)
        # The fine-tuned network keeps the architecture, class count and depth scale it was trained with.
        model = dataclasses.replace(old, dropout=model.dropout)
    if config.task == "depth" and model.depth_scale_mm is None:
        model = dataclasses.replace(model, depth_scale_mm=tdata.median_depth_mm(source, train_idx))
    if config.task == "seg" and model.num_classes is None:
        model = dataclasses.replace(model, num_classes=tdata.num_classes_of(source, config.data.mask_map))
    return config.replace(model=model), train_idx, val_idx, init, source


def _check_resume(run: Path, config: TrainConfig) -> Path | None:
    """Return ``last.ckpt`` to resume from, None to start fresh; refuse a folder of another config."""
    last = run / "checkpoints" / "last.ckpt"
    cfg_path = run / "config.json"
    if not run.exists():
        return None
    if not run.is_dir():
        raise SimrealError("run folder path is a file", run)
    if not cfg_path.is_file():
        if any(run.iterdir()):
            raise SimrealError("folder exists and is not a simreal run folder (no config.json); choose a new --out", run)
        return None
    if not last.is_file():
        return None  # a run that stopped before its first checkpoint: nothing to keep, start afresh
    old = read_config(cfg_path)
    if old.identity() != config.identity():
        a, b = _flatten(old.identity()), _flatten(config.identity())
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise SimrealError(
            f"run folder holds a run with a different config ({', '.join(diff)} differ); choose a new --out", run
        )
    return last


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "mask_map":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class _TaskData(L.LightningDataModule):
    """The loaders of one process, built once it knows its rank: its share of every training batch (new
    frames every epoch with ``fresh``), and its block of the validation set when there is one."""

    def __init__(self, train_ds: Dataset, val_ds: Dataset | None, batch_size: int, seed: int, num_workers: int,
                 fresh: bool):
        super().__init__()
        self.train_ds, self.val_ds, self.batch_size, self.seed = train_ds, val_ds, batch_size, seed
        self.num_workers, self.fresh = num_workers, fresh

    def _loader(self, ds: Dataset, shuffle: bool) -> Any:
        t = self.trainer
        return tdata.make_loader(ds, self.batch_size, self.seed, shuffle, self.num_workers, rank=t.global_rank,
                                 world_size=t.world_size, fresh=self.fresh and shuffle)

    def train_dataloader(self) -> Any:
        return self._loader(self.train_ds, True)


class _TaskDataWithVal(_TaskData):
    # Lightning validates only when the module has a val_dataloader at all.
    def val_dataloader(self) -> Any:
        return self._loader(self.val_ds, False)


def _prepare_run_folder(run: Path, config: TrainConfig, resume_from: Path | None) -> None:
    """Rank 0, once every process has started: the config next to the outputs, the log cut to the checkpoint."""
    run.mkdir(parents=True, exist_ok=True)
    write_config(run / "config.json", config)
    if resume_from is not None:
        trim_metrics(run, int(torch.load(resume_from, map_location="cpu", weights_only=False)["epoch"]))


class _EpochSeed(Callback):
    def __init__(self, seed: int):
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        tdata.seed_for_epoch(self.seed, trainer.current_epoch)


def train(config: TrainConfig, progress: bool = True, *, callbacks: Sequence[Callback] = ()) -> Path:
    """Train (or resume) a run; returns the run folder.

    Args:
        config: the whole run configuration (see :func:`train_from_kwargs` to build it from keywords).
        progress: show a rich progress bar and Lightning's model summary.
        callbacks: extra Lightning callbacks (hooks for tests and experiments).

    Raises:
        SimrealError: bad data, a run folder of another config, an ``--init`` checkpoint of the wrong task
            or architecture.
    """
    resolved, train_idx, val_idx, init, source = resolve_config(config)
    run = Path(resolved.out)
    resume_from = _check_resume(run, resolved)
    size, kinds = resolved.data.size, _kinds(resolved.task)
    d = resolved.data
    train_ds = source.dataset(kinds, size, train_idx, d.mask_map)
    if d.val is not None:
        val_ds = tdata.open_source(d.val).dataset(kinds, size, None, d.mask_map)
    else:
        val_ds = source.dataset(kinds, size, val_idx, d.mask_map) if val_idx else None

    L.seed_everything(resolved.seed, workers=True, verbose=False)
    module: TaskModule = build_module(resolved)
    if init is not None:
        try:
            module.load_state_dict(init["state_dict"])
        except RuntimeError as exc:
            raise SimrealError(f"--init weights do not fit this network ({exc})", resolved.init) from None
    if resolved.freeze == "encoder":
        module.net.freeze_encoder()

    if val_ds is not None:
        monitor = resolved.select or DEFAULT_SELECT[resolved.task]
        mode = SELECTABLE[monitor]
    else:
        monitor, mode = "train/loss_epoch", "min"
    # Two checkpoint callbacks, not one with save_last=True: Lightning 2.6 writes "last" only in an epoch
    # whose monitored value improved, so a resume would silently drop the epochs after the best one.
    # The "best" one comes first so that each last.ckpt holds the updated best-score state.
    best_cb = ModelCheckpoint(
        dirpath=run / "checkpoints", filename="best", monitor=monitor, mode=mode, save_top_k=1,
        every_n_epochs=1, auto_insert_metric_name=False, enable_version_counter=False,
    )
    last_cb = ModelCheckpoint(
        dirpath=run / "checkpoints", filename="last", monitor=None, save_top_k=1, every_n_epochs=1,
        auto_insert_metric_name=False, enable_version_counter=False,
    )
    prepare = dist.RankZeroSetup(functools.partial(_prepare_run_folder, run, resolved, resume_from))
    cbs: list[Callback] = [prepare, best_cb, last_cb, _EpochSeed(resolved.seed), *callbacks]
    if progress:
        cbs.append(RichProgressBar())
    datamodule = (_TaskData if val_ds is None else _TaskDataWithVal)(train_ds, val_ds, d.batch_size, resolved.seed,
                                                                      d.num_workers, d.fresh)
    steps_per_epoch = max(1, -(-len(train_ds) // d.batch_size))
    devices: int | str = int(resolved.devices) if str(resolved.devices).isdigit() else resolved.devices
    dist.check_devices(resolved.accelerator, resolved.devices)
    chatty = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in chatty]
    if not progress:
        for lg in chatty:
            lg.setLevel(logging.WARNING)  # "GPU available: False" and tips are noise in a library call
    try:
        with warnings.catch_warnings():
            # Expected here: few workers on CPU, a non-empty log folder on resume, tiny epochs.
            for pattern in (".*does not have many workers.*", ".*exists and is not empty.*",
                            ".*number of training batches.*", ".*deterministic.*", ".*module\(s\) in eval mode.*",
                            ".*LeafSpec.*", ".*transfer_batch_to_device.*", ".*no `val_dataloader`.*"):
                warnings.filterwarnings("ignore", message=pattern)
            trainer = _trainer(
                default_root_dir=run,
                accelerator=resolved.accelerator,
                devices=devices,
                num_nodes=resolved.num_nodes,
                strategy=dist.lightning_strategy(resolved.strategy, resolved.accelerator, resolved.devices),
                plugins=[dist.AtomicCheckpointIO()],
                use_distributed_sampler=False,  # _TaskData shards the batches itself (same batches as one process)
                precision=resolved.precision,
                max_epochs=resolved.optim.epochs,
                max_steps=resolved.optim.max_steps,
                logger=[ResumableCSVLogger(run), TensorBoardLogger(save_dir=run, name="tb", version="")],
                callbacks=cbs,
                enable_progress_bar=progress,
                enable_model_summary=progress,
                log_every_n_steps=min(50, steps_per_epoch),
                num_sanity_val_steps=0,
                deterministic="warn",
            )
            processes = dist.world_size(trainer)
            dist.check_batch(d.batch_size, processes)
            if val_ds is not None and len(val_ds) < processes:
                raise SimrealError(f"{len(val_ds)} validation image(s) cannot be shared by {processes} processes")
            # config.json and the log trimming are written by rank 0 once all processes run (RankZeroSetup).
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None)
    finally:
        for lg, lv in zip(chatty, levels):
            lg.setLevel(lv)
    return run


def _trainer(**kw) -> L.Trainer:
    try:
        return L.Trainer(**kw)
    except (ValueError, RuntimeError, MisconfigurationException) as exc:
        # Lightning rejects bad accelerator / devices / precision values with these.
        raise SimrealError(f"training setup refused ({exc})") from None


def train_from_kwargs(task: str, data: str | Path, out: str | Path, progress: bool = True, **kw) -> Path:
    """``train(make_config(task, data, out, **kw))``: e.g. ``train_from_kwargs("depth", "ds", "run", epochs=2)``."""
    return train(make_config(task, data, out, **kw), progress=progress)
