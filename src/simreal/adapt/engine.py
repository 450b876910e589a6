"""The one training loop of every adversarial method, on Lightning with manual optimisation.

:func:`fit` runs any :class:`~simreal.adapt.method.AdversarialMethod` on step-indexed data
(:class:`StepData`: ``data[step] -> batch``, ``data.sample_batch(n)``) and writes a run folder::

    RUN/config.json                 the resolved run config (a frozen dataclass tree; --config takes it back)
    RUN/checkpoints/last.ckpt       networks, optimisers, method state (history buffer), step: written
                                    every ``checkpoint_every`` steps and at the end (atomically)
    RUN/metrics.csv                 the method's logged losses, averaged over ``log_every`` steps (column "step")
    RUN/tb/                         TensorBoard events (same values)
    RUN/samples/step_0000500.png    the method's sample grid every ``sample_every`` steps and at the end

A *step* is one call of ``method.training_step`` (which may update each network several times); runs are
measured in steps, not in Lightning's ``global_step`` (which counts optimiser steps).

Exact resume. Calling :func:`fit` again on the same folder with the same config continues from
``last.ckpt``; a larger ``steps`` extends a finished run. A run interrupted at any point and resumed ends
with bit-identical weights (on CPU) to an uninterrupted one, because nothing depends on what ran before in
the process: the images of step k depend only on (seed, k, rank); torch's, numpy's and Python's global RNGs
are reseeded from (seed, k, rank) at the start of step k; and the checkpoint holds the networks, the
optimiser states, the method's own state (e.g. the history buffer) and the step. The steps between the last
checkpoint and the interruption are computed again. A folder holding another method's run, a task
training run, or a run of another config (anything but :data:`RESUMABLE_FIELDS` and ``out``) is refused.

Implementation: Lightning epochs are cut at the checkpoint boundaries (an epoch runs from the current step
to the next multiple of ``checkpoint_every``, or to ``steps``), the checkpoint is written at each epoch end,
and the data loader is rebuilt at each epoch start from the step the module is at, so a resume always
starts from an epoch boundary Lightning knows how to restore. Losses go straight to the loggers every
``log_every`` steps (one host sync per log, none per step).

Several processes (``devices`` x ``num_nodes``, ``strategy`` "ddp" or "ddp_spawn"; see
:mod:`simreal.tasks.distributed`): every rank draws the one-process batch of step k and keeps its slice of
``batch_size / processes`` images along the batch dimension (dim 1 of :class:`~simreal.adapt.data.UnpairedBatches`'
``(draws, batch, C, H, W)``, else a ``batch_dim`` attribute of the data, default 0), so the processes together
train on exactly the images one process would; DDP averages the gradients, with ``find_unused_parameters`` on
because a generator update leaves the discriminator's weights without gradients. The global RNGs are seeded
with (seed, step, rank), so in-method noise differs per rank, and each rank keeps its own method state (a
history buffer per rank): a method without either matches one process up to float summation order.
Checkpoints hold rank 0's method state, which every rank loads on resume; only rank 0 writes. Tested on CPU
(2 gloo processes); not yet on several GPUs.
"""

from __future__ import annotations

import functools
import logging
import random
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, Dataset

from simreal.adapt.config import RESUMABLE_FIELDS, EngineConfig
from simreal.adapt.method import AdversarialMethod
from simreal.adapt.runs import CHECKPOINT, RunConfig, check_run_folder, load_adapt_checkpoint, trim_metrics, trim_samples
from simreal.configs import to_plain, write_config_file
from simreal.data.images import write_png
from simreal.errors import SimrealError
from simreal.tasks import distributed as dist

__all__ = ["EngineConfig", "RESUMABLE_FIELDS", "StepData", "fit", "image_grid", "seed_step"]


class StepData(Protocol):
    """Step-indexed training data (e.g. :class:`~simreal.adapt.data.UnpairedBatches`)."""

    def __getitem__(self, step: int) -> Mapping[str, torch.Tensor]: ...

    def sample_batch(self, n: int) -> Mapping[str, torch.Tensor]: ...


# -- randomness --------------------------------------------------------------------------------------------


def seed_step(seed: int, step: int, rank: int = 0) -> None:
    """Reseed torch (CPU and CUDA), numpy and Python's global RNGs from (seed, step, rank)."""
    # step + 1: SeedSequence takes no negative entries, and step -1 seeds the initial weights.
    value = int(np.random.SeedSequence([int(seed), int(step) + 1, int(rank)]).generate_state(1, np.uint64)[0] >> np.uint64(1))
    # Not torch.manual_seed: with CUDA (or XPU / MTIA) not initialised it queues a lazy seed call that
    # records a stack trace, ~1 ms per device type at every step and a queue that grows without bound.
    torch.default_generator.manual_seed(value)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(value)
    np.random.seed(value % 2**32)
    random.seed(value)


# -- sample grids ------------------------------------------------------------------------------------------


def image_grid(columns: Mapping[str, torch.Tensor], gap: int = 2) -> np.ndarray:
    """One RGB picture of image columns: row i holds image i of every column, columns in the given order.

    Args:
        columns: name -> (N, C, H, W) in [0, 1], C = 1 (drawn grey) or 3; N, H, W equal across columns.
        gap: white pixels between tiles.

    Returns:
        (N*H + (N-1)*gap, K*W + (K-1)*gap, 3) uint8.
    """
    tiles = []
    for name, x in columns.items():
        x = x.detach().float().clamp(0, 1).cpu()
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise SimrealError(f"sample column {name!r} must be (N, 1 or 3, H, W), got {tuple(x.shape)}")
        tiles.append(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)
    if not tiles or len({t.shape for t in tiles}) != 1:
        raise SimrealError(f"sample columns must share one shape, got {[tuple(t.shape) for t in tiles]}")
    n, _, h, w = tiles[0].shape
    k = len(tiles)
    grid = torch.ones(3, n * h + (n - 1) * gap, k * w + (k - 1) * gap)
    for j, t in enumerate(tiles):
        for i in range(n):
            grid[:, i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = t[i]
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


# -- the Lightning module ----------------------------------------------------------------------------------


def batch_dim(data: StepData) -> int:
    """The dimension of every tensor of ``data[step]`` that indexes the images of the mini-batch."""
    return int(getattr(data, "batch_dim", 0))


def shard(batch: Mapping[str, torch.Tensor], rank: int, processes: int, dim: int = 0) -> dict[str, torch.Tensor]:
    """Rank ``rank``'s contiguous slice (of ``processes`` equal ones) of every tensor along ``dim``.

    Raises:
        SimrealError: a batch that ``processes`` cannot share equally (naming the tensor and its shape).
    """
    if processes == 1:
        return dict(batch)
    out = {}
    for k, v in batch.items():
        if v.shape[dim] % processes:
            raise SimrealError(f"batch tensor {k!r} of shape {tuple(v.shape)} cannot be shared by {processes} processes "
                               f"along dim {dim}: give a --batch-size that is a multiple of {processes}")
        n = v.shape[dim] // processes
        out[k] = v.narrow(dim, rank * n, n)
    return out


class _Steps(Dataset):
    """``data[step]`` (this rank's share of it) plus the step itself, for a loader whose sampler yields steps."""

    def __init__(self, data: StepData, rank: int = 0, processes: int = 1):
        self.data, self.rank, self.processes, self.dim = data, rank, processes, batch_dim(data)

    def __getitem__(self, step: int) -> dict[str, Any]:
        return {**shard(self.data[step], self.rank, self.processes, self.dim), "_step": int(step)}


class _EngineModule(L.LightningModule):
    def __init__(self, method: AdversarialMethod, data: StepData, config: RunConfig, tag: dict[str, Any]):
        super().__init__()
        self.method = method
        self.automatic_optimization = False
        self.data = data
        self.run_config = config
        self.tag = tag
        self.iteration = 0  # steps done; a Python int, restored from the checkpoint's tag
        self.latest: dict[str, float] = {}
        self._names: list[str] = []
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._sample_batch: Mapping[str, torch.Tensor] | None = None

    @property
    def engine(self) -> EngineConfig:
        return self.run_config.engine

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        optimizers = self.method.configure_optimizers()
        if not optimizers:
            raise SimrealError(f"method {self.method.name!r} configured no optimisers")
        self._names = list(optimizers)
        return list(optimizers.values())

    def train_dataloader(self) -> DataLoader:
        # Called at every epoch start (reload_dataloaders_every_n_epochs=1), after a resume's restore: the
        # epoch runs from the current step to the next checkpoint boundary.
        e = self.engine
        start = self.iteration
        end = min(e.steps, (start // e.checkpoint_every + 1) * e.checkpoint_every)
        # Every rank draws the one-process batch of each step (the data's own rank stays 0) and keeps its share.
        return DataLoader(
            _Steps(self.data, self.global_rank, self.trainer.world_size), sampler=range(start, end), batch_size=None,
            num_workers=e.num_workers, pin_memory=False,
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        step = int(batch.pop("_step"))
        if step != self.iteration:
            raise RuntimeError(f"engine got the batch of step {step} at step {self.iteration}")
        seed_step(self.engine.seed, step, self.global_rank)
        optimizers = self.optimizers()
        if not isinstance(optimizers, list):
            optimizers = [optimizers]
        self.method.bind(dict(zip(self._names, optimizers)), self.manual_backward)
        logs = self.method.training_step(batch, step)
        self.iteration = step + 1
        for k, v in logs.items():
            v = v.detach().float()
            if k in self._sums:
                self._sums[k] += v
                self._counts[k] += 1
            else:
                self._sums[k], self._counts[k] = v.clone(), 1

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        e, it = self.engine, self.iteration
        if it % e.log_every == 0 or it >= e.steps:
            self._flush_logs()
        if it % e.sample_every == 0 or it >= e.steps:
            self._write_samples()
        if it >= e.steps:
            self.trainer.should_stop = True

    def on_train_epoch_end(self) -> None:
        # The epoch ends at a checkpoint boundary (or at the last step): log, then checkpoint.
        self._flush_logs()
        for logger in self.trainer.loggers:
            logger.save()
        # Rank 0 writes, through AtomicCheckpointIO (a temporary file renamed over the old one).
        self.trainer.save_checkpoint(Path(self.run_config.out) / CHECKPOINT, weights_only=False)

    def _flush_logs(self) -> None:
        if not self._sums:
            return
        keys = sorted(self._sums)
        means = torch.stack([self._sums[k] / self._counts[k] for k in keys])
        if self.trainer.world_size > 1:
            # Every rank flushes at the same steps with the same keys: the mean over ranks of equal shares is
            # the mean over the whole batch (one collective per log, none per step).
            means = self.trainer.strategy.reduce(means, reduce_op="mean")
        metrics = {k: float(v) for k, v in zip(keys, means.tolist())}
        self._sums, self._counts = {}, {}
        self.latest = metrics
        for logger in self.trainer.loggers:
            logger.log_metrics(metrics, step=self.iteration)

    def _write_samples(self) -> None:
        if not self.trainer.is_global_zero:
            return
        if self._sample_batch is None:
            self._sample_batch = {k: v.to(self.device) for k, v in self.data.sample_batch(self.engine.n_samples).items()}
        precision = self.trainer.precision_plugin
        was_training = self.method.training
        self.method.eval()
        try:
            with torch.no_grad(), precision.forward_context():
                columns = self.method.sample(precision.convert_input(dict(self._sample_batch)))
        finally:
            self.method.train(was_training)
        write_png(Path(self.run_config.out) / "samples" / f"step_{self.iteration:07d}.png", image_grid(columns))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["simreal"] = {**self.tag, "iteration": self.iteration, "optimizers": list(self._names)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.iteration = int(checkpoint["simreal"]["iteration"])


class _Progress(Callback):
    """A rich progress bar over the run's steps, with the latest logged losses."""

    def __init__(self, total: int, description: str):
        self.total, self.description = total, description
        self._bar: Any = None

    def on_train_start(self, trainer: L.Trainer, module: _EngineModule) -> None:
        if not trainer.is_global_zero:
            return
        from rich.console import Console

        from simreal.progress import progress_bar

        self._keys = tuple(module.method.progress_keys)
        self._width = Console(stderr=True).width
        # A Lightning callback starts and stops in two hooks, so the bar's context is entered by hand.
        self._context = progress_bar(self.description, self.total, completed=module.iteration, fields=("losses",))
        self._bar = self._context.__enter__()

    def on_train_batch_end(self, trainer: L.Trainer, module: _EngineModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._bar is not None:
            latest = module.latest
            keys = [k for k in self._keys if k in latest] if self._keys else list(latest)
            losses = " ".join(f"{k} {latest[k]:.3g}" for k in keys)
            # The other columns take about 60 + len(description) characters; the losses get the rest.
            room = max(0, self._width - 60 - len(self.description) - 2 * len(str(self.total)))
            if len(losses) > room:
                losses = losses[: max(0, room - 1)] + "…" if room else ""
            self._bar.update(module.iteration, losses=losses)

    def _stop(self) -> None:
        if self._bar is not None:
            self._context.__exit__(None, None, None)
            self._bar = None

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._stop()

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self._stop()


# -- fit ---------------------------------------------------------------------------------------------------


def _devices(value: str) -> int | str:
    return int(value) if str(value).isdigit() else value


def _prepare_run_folder(run: Path, config: RunConfig, start: int) -> None:
    """Rank 0, once every process has started: the config next to the outputs, logs and grids cut to ``start``."""
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    write_config_file(run / "config.json", config)
    trim_metrics(run, start)
    trim_samples(run, start)


def _trainer(**kw: Any) -> L.Trainer:
    try:
        return L.Trainer(**kw)
    except (ValueError, RuntimeError, ImportError, MisconfigurationException) as exc:
        # Lightning rejects bad accelerator / devices / precision values with these (ImportError: an
        # accelerator whose package is missing, e.g. "tpu").
        raise SimrealError(f"training setup refused ({' '.join(str(exc).split())})") from None


def fit(
    make_method: Callable[[], AdversarialMethod],
    data: StepData,
    config: RunConfig,
    *,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
) -> Path:
    """Train (or resume) an adversarial run; returns the run folder.

    Args:
        make_method: builds the method (called after seeding with ``config.engine.seed``, so the initial
            weights depend on the seed only).
        data: the step-indexed batches (moved to the device by Lightning).
        config: the run's whole frozen config tree, with ``out``, ``method`` (the method's name) and
            ``engine`` fields; written to ``RUN/config.json``.
        progress: a progress bar and Lightning's model summary.
        callbacks: extra Lightning callbacks (hooks for tests, benchmarks and experiments).

    Raises:
        SimrealError: a run folder of another method / config, a checkpoint of another method, ``steps``
            below the step the run has already reached, a setup Lightning refuses.
    """
    e = config.engine
    run = Path(config.out)
    resume_from = check_run_folder(run, config)
    start = 0
    if resume_from is not None:
        tag = load_adapt_checkpoint(resume_from, mmap=True)["simreal"]
        if tag["method"] != config.method:
            raise SimrealError(f"checkpoint is of method {tag['method']!r}, not {config.method!r}", resume_from)
        start = int(tag["iteration"])
        if start > e.steps:
            raise SimrealError(f"the run is already at step {start}, beyond --steps {e.steps}; give --steps >= {start}", run)
    seed_step(e.seed, -1)
    method = make_method()
    if method.name != config.method:
        raise SimrealError(f"the config is for method {config.method!r} but the method built is {method.name!r}")
    tag = {"kind": "adapt", "method": method.name, "config": to_plain(config)}
    module = _EngineModule(method, data, config, tag)

    cbs: list[Callback] = [dist.RankZeroSetup(functools.partial(_prepare_run_folder, run, config, start)), *callbacks]
    if progress:
        cbs.append(_Progress(e.steps, f"adapt {method.name}"))
    chatty = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in chatty]
    if not progress:
        for lg in chatty:
            lg.setLevel(logging.WARNING)  # "GPU available: False" and tips are noise in a library call
    devices = _devices(e.devices)
    dist.check_devices(e.accelerator, e.devices)
    try:
        with warnings.catch_warnings():
            # Expected here: no workers on CPU, a non-empty log folder on resume, short epochs.
            for pattern in (".*does not have many workers.*", ".*exists and is not empty.*", ".*LeafSpec.*",
                            ".*number of training batches.*", ".*smaller than the logging interval.*"):
                warnings.filterwarnings("ignore", message=pattern)
            # The trainer first: a setup Lightning refuses must fail before anything is written.
            trainer = _trainer(
                default_root_dir=run,
                accelerator=e.accelerator,
                devices=devices,
                num_nodes=e.num_nodes,
                # DDP that tolerates parameters without gradients: a generator update freezes the
                # discriminator, so plain DDP would wait forever for its gradients.
                strategy=dist.lightning_strategy(e.strategy, e.accelerator, e.devices, find_unused_parameters=True),
                plugins=[dist.AtomicCheckpointIO()],
                precision=e.precision,
                max_epochs=-1,
                max_steps=-1,
                logger=[
                    _csv_logger(run),
                    TensorBoardLogger(save_dir=run, name="tb", version="", purge_step=start + 1),
                ],
                callbacks=cbs,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=progress,
                reload_dataloaders_every_n_epochs=1,
                use_distributed_sampler=False,
                num_sanity_val_steps=0,
                limit_val_batches=0,
                log_every_n_steps=1,
            )
            processes = dist.world_size(trainer)
            if processes > 1 and isinstance(getattr(data, "batch_size", None), int):
                dist.check_batch(data.batch_size, processes)  # type: ignore[attr-defined]
            if start < e.steps:
                # config.json and the trimming are written by rank 0 once all processes run (RankZeroSetup).
                trainer.fit(module, ckpt_path=None if resume_from is None else str(resume_from))
            else:
                _prepare_run_folder(run, config, start)
    finally:
        for lg, lv in zip(chatty, levels):
            lg.setLevel(lv)
    return run


def _csv_logger(run: Path) -> Any:
    from simreal.tasks.csvlog import ResumableCSVLogger

    return ResumableCSVLogger(run)
