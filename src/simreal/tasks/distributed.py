"""Training in several processes (Lightning DDP): what the task trainer and the adversarial engine share.

``--devices N --num-nodes M --strategy ddp`` runs ``N x M`` processes; each holds a copy of the networks, takes
its share of every batch and DDP averages the gradients, so the run learns what one process learns with the
same (global) ``--batch-size``:

- **Shares of one batch.** A run's batch size is the global batch: each process takes ``batch_size / (N x M)``
  images of it (:func:`check_batch` refuses a batch that does not divide). The task trainer's sampler hands
  rank r images ``r*b .. (r+1)*b - 1`` of each batch of the one-process order
  (:class:`simreal.tasks.data.EpochSampler`); the engine draws the one-process batch of step k on every rank
  and keeps rank r's slice. Logged losses and validation figures are reduced over all processes (validation
  images are split into contiguous blocks, each seen once).
- **What still differs from one process** (so results agree within float tolerance, not bit for bit):
  the summation order of averaged gradients (about 1e-6 relative per step, growing over a long run);
  BatchNorm statistics, computed per process over ``b`` images (PyTorch's SyncBatchNorm runs on GPUs only;
  use ``norm="instance"`` / ``"group"`` for equal results on CPU); dropout masks and the engine's in-method
  noise and history buffers, drawn per process (seeded with the rank); the last, partial batch of an epoch
  when the training set is not a multiple of the batch (padded with repeated images, as
  ``DistributedSampler`` pads). Exact resume holds per process count: a DDP run interrupted and resumed
  equals the uninterrupted DDP run (checkpoints hold rank 0's method state; a method with per-rank state,
  such as a history buffer, resumes every rank from rank 0's).
- **Only rank 0 writes.** Checkpoints (Lightning saves on rank 0; :class:`AtomicCheckpointIO` writes a
  temporary file and renames it), CSV / TensorBoard logs (Lightning's loggers are rank-0-only), sample
  grids, and the run folder's ``config.json`` and log trimming (:class:`RankZeroSetup`, after every process
  has started, so a re-launched command never sees a half-written folder).

The launcher (``strategy``). ``"ddp"`` is Lightning's subprocess launcher: the calling process becomes rank 0
and starts ranks 1..N-1 by running the same command line again (``sys.argv``); it is the one for the
``simreal train`` / ``simreal adapt`` commands, for GPUs (no fork after CUDA is initialised, nothing is
pickled) and across nodes (each node runs the same command with ``NODE_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` set, or SLURM / torchrun set them). It is the wrong one inside a longer Python program or a
test: the children would run that whole program again up to its ``fit``, and it works once per process (it
leaves ``LOCAL_RANK`` and ``WORLD_SIZE`` in the environment). ``"ddp_spawn"`` starts fresh interpreters
with multiprocessing that receive the trainer by pickle and run only ``fit``: what tests, benchmarks and
experiments use (callbacks must then be picklable, i.e. module-level classes). Both use gloo between CPU
processes and NCCL between GPUs (Lightning's defaults), and Lightning gives each CPU process
``cores / N`` threads unless ``OMP_NUM_THREADS`` is set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.strategies import DDPStrategy, Strategy

from simreal.errors import SimrealError

__all__ = ["AtomicCheckpointIO", "RankZeroSetup", "check_batch", "check_devices", "lightning_strategy", "world_size"]


def _on_gpu(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def _count(devices: str) -> int | None:
    """Processes per node that ``devices`` asks for; None for "auto" / "-1" (all there are)."""
    text = str(devices).strip()
    if "," in text:
        return len([p for p in text.split(",") if p.strip()])
    return int(text) if text.isdigit() else None


def check_devices(accelerator: str, devices: str) -> None:
    """Refuse GPUs this machine does not have, naming what it has (before Lightning's longer message).

    Raises:
        SimrealError: ``--accelerator gpu`` without CUDA; more GPUs (or a higher GPU id) than there are.
    """
    if not _on_gpu(accelerator):
        return
    have = torch.cuda.device_count()
    if have == 0:
        raise SimrealError(f"--accelerator {accelerator}: this machine has no GPU (CUDA is not available); "
                           "use --accelerator cpu (--devices N then runs N CPU processes)")
    text = str(devices).strip()
    ids = [int(p) for p in text.split(",") if p.strip()] if "," in text else []
    wanted = max(ids) + 1 if ids else _count(text)
    if wanted is not None and wanted > have:
        raise SimrealError(f"--devices {devices}: this machine has {have} GPU(s); ask for at most {have}, "
                           "or use --accelerator cpu to train in CPU processes")


def several(accelerator: str, devices: str) -> bool:
    """Whether ``devices`` may mean more than one process on this machine."""
    n = _count(devices)
    if n is not None:
        return n > 1
    return _on_gpu(accelerator) and torch.cuda.device_count() > 1


def lightning_strategy(strategy: str, accelerator: str, devices: str, *, find_unused_parameters: bool = False) -> str | Strategy:
    """The Lightning strategy for ``--strategy`` (see the module docstring for "ddp" vs "ddp_spawn").

    Args:
        find_unused_parameters: DDP that tolerates parameters without gradients in a backward pass (a GAN's
            generator update leaves the discriminator without gradients); with "auto" and several devices
            this also picks subprocess DDP, as Lightning's "auto" would.
    """
    if strategy == "auto":
        if find_unused_parameters and several(accelerator, devices):
            return DDPStrategy(start_method="popen", find_unused_parameters=True)
        return "auto"
    start = {"ddp": "popen", "ddp_spawn": "spawn"}.get(strategy)
    if start is None:
        raise SimrealError(f"unknown strategy {strategy!r} (auto, ddp or ddp_spawn)")
    return DDPStrategy(start_method=start, find_unused_parameters=find_unused_parameters)


def world_size(trainer: L.Trainer) -> int:
    """Processes of a (not yet started) run: devices per node x nodes."""
    return int(trainer.num_devices) * int(trainer.num_nodes)


def check_batch(batch_size: int, processes: int) -> None:
    """Refuse a global batch that ``processes`` processes cannot share equally."""
    if batch_size % processes:
        raise SimrealError(f"--batch-size {batch_size} cannot be shared by {processes} processes (devices x nodes): "
                           f"give a multiple of {processes} (each process takes batch-size / {processes} images)")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file in the same folder, then renamed over the old one, so an
    interrupted save never leaves a truncated ``last.ckpt`` (Lightning calls it on rank 0 only)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


class RankZeroSetup(Callback):
    """Runs ``prepare()`` (write config.json, trim the logs of a resumed run) on rank 0 once every process
    has started and before any trains; the others wait for it. ``prepare`` must be picklable for
    "ddp_spawn" (a module-level function or a ``functools.partial`` of one)."""

    def __init__(self, prepare: Callable[[], None]):
        self.prepare = prepare

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            self.prepare()
        trainer.strategy.barrier("simreal-run-folder")
