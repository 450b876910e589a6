"""Training throughput: images per second of one U-Net optimisation step (forward, loss, backward, AdamW).

:func:`bench_train` measures the network step on random tensors, without data loading or Lightning, so the
figure is the compute ceiling of a training run at that size; after ``warmup`` untimed steps, ``steps``
steps are timed (CUDA is synchronised before reading the clock).

:func:`bench_train_processes` measures the real trainer (:func:`simreal.tasks.train.train`: data loading
from a dataset folder, Lightning, DDP) with 1, 2, ... processes sharing one global batch: images/s is the
global batch over the median interval between the ends of consecutive steps on rank 0 (every step ends
with the gradient all-reduce, so rank 0's clock is the run's), after ``warmup`` steps; process start-up is
not counted. Several processes run with ``strategy="ddp_spawn"`` (gloo on CPU, where Lightning gives each
process cores / N threads).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import lightning as L
import numpy as np
import torch

from simreal.errors import SimrealError
from simreal.nets.unet import UNet, count_parameters
from simreal.tasks.losses import DepthLoss, SegLoss


@dataclass(frozen=True)
class TrainBench:
    """One measurement."""

    task: str
    device: str
    size: int
    batch_size: int
    steps: int
    params: int
    threads: int
    seconds_per_step: float
    images_per_second: float


def bench_train(
    *,
    task: Literal["depth", "seg"] = "depth",
    size: int = 128,
    batch_size: int = 4,
    steps: int = 10,
    warmup: int = 2,
    channels: tuple[int, ...] = (16, 32, 64, 128),
    device: str = "cpu",
    seed: int = 0,
) -> TrainBench:
    """Time ``steps`` training steps of a U-Net at ``size`` x ``size`` on ``device``."""
    if task not in ("depth", "seg"):
        raise SimrealError(f"task must be 'depth' or 'seg', got {task!r}")
    if size < 2 ** (len(channels) - 1) or batch_size < 1 or steps < 1 or warmup < 0:
        raise SimrealError(f"bad benchmark settings: size {size}, batch {batch_size}, steps {steps}")
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    out_channels = 1 if task == "depth" else 2
    net = UNet(out_channels=out_channels, channels=channels).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.rand(batch_size, 3, size, size, generator=gen).to(dev)
    if task == "depth":
        target = (torch.rand(batch_size, 1, size, size, generator=gen) * 40 + 10).to(dev)
        depth_loss = DepthLoss(scale_mm=30.0)

        def loss_of(out: torch.Tensor) -> torch.Tensor:
            return depth_loss(torch.exp(out.clamp(-12, 12)) * 30.0, target)[0]
    else:
        target = torch.randint(0, 2, (batch_size, size, size), generator=gen).to(dev)
        seg_loss = SegLoss(num_classes=2)

        def loss_of(out: torch.Tensor) -> torch.Tensor:
            return seg_loss(out, target)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_of(net(x)).backward()
        opt.step()

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    dt = (time.perf_counter() - t0) / steps
    return TrainBench(
        task=task, device=str(dev), size=size, batch_size=batch_size, steps=steps, params=count_parameters(net),
        threads=torch.get_num_threads(), seconds_per_step=dt, images_per_second=batch_size / dt,
    )


@dataclass(frozen=True)
class ProcessBench:
    """One measurement of the trainer with ``processes`` processes (``batch_size`` is the global batch)."""

    task: str
    accelerator: str
    processes: int
    size: int
    batch_size: int
    steps: int
    threads: int
    seconds_per_step: float
    images_per_second: float


class _StepClock(L.Callback):
    """Rank 0 reads the clock at the end of every training step and writes the readings to ``path`` at the end
    (a file: with ddp_spawn the callback lives in another process)."""

    def __init__(self, path: str):
        self.path, self.stamps = path, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
        if trainer.is_global_zero:
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize()
            self.stamps.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
        if trainer.is_global_zero:
            Path(self.path).write_text(json.dumps({"stamps": self.stamps, "threads": torch.get_num_threads()}))


def _write_random_dataset(root: Path, n: int, size: int, seed: int) -> Path:
    from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
    from simreal.data.writer import DatasetWriter

    rng = np.random.default_rng(seed)
    info = DatasetInfo(
        modality="colonoscopy", domain="synthetic", image_size=(size, size), files=("image", "depth", "mask"),
        labels={"depth": LabelKind(unit="mm"), "mask": LabelKind(classes={0: "background", 1: "polyp"})},
        generator={"name": "bench-train", "config": {"n": n}}, seed=seed,
    )
    writer = DatasetWriter(root, info)
    for i in range(n):
        writer.write(SampleRecord(id=f"{i:06d}", files={}), {
            "image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
            "depth": rng.uniform(10, 50, (size, size)).astype(np.float32),
            "mask": (rng.random((size, size)) < 0.3).astype(np.uint8),
        })
    return writer.finish()


def bench_train_processes(
    *,
    processes: Sequence[int] = (1, 2),
    accelerator: str = "cpu",
    task: Literal["depth", "seg"] = "depth",
    size: int = 64,
    batch_size: int = 8,
    steps: int = 10,
    warmup: int = 2,
    channels: tuple[int, ...] = (16, 32, 64, 128),
    seed: int = 0,
) -> list[ProcessBench]:
    """Time ``steps`` steps of the task trainer with each process count (see the module docstring).

    Raises:
        SimrealError: bad settings, a batch that a process count cannot share, GPUs the machine lacks.
    """
    from simreal.tasks.config import make_config
    from simreal.tasks.distributed import check_batch
    from simreal.tasks.train import train

    if not processes or min(processes) < 1 or steps < 1 or warmup < 1 or size < 2 ** (len(channels) - 1):
        raise SimrealError(f"bad benchmark settings: processes {tuple(processes)}, steps {steps}, warmup {warmup}, size {size}")
    for n in processes:
        check_batch(batch_size, n)
    out = []
    with tempfile.TemporaryDirectory(prefix="simreal-bench-ddp-") as tmp:
        data = _write_random_dataset(Path(tmp) / "ds", batch_size * (warmup + steps), size, seed)
        for n in processes:
            clock = Path(tmp) / f"clock{n}.json"
            config = make_config(
                task, data, Path(tmp) / f"run{n}", size=size, channels=channels, batch_size=batch_size, epochs=1,
                val_fraction=0.0, accelerator=accelerator, devices=str(n), strategy="ddp_spawn" if n > 1 else "auto",
                seed=seed,
            )
            train(config, progress=False, callbacks=[_StepClock(str(clock))])
            record = json.loads(clock.read_text())
            dt = float(np.median(np.diff(record["stamps"][warmup - 1 :])))
            out.append(ProcessBench(
                task=task, accelerator=accelerator, processes=n, size=size, batch_size=batch_size, steps=steps,
                threads=int(record["threads"]), seconds_per_step=dt, images_per_second=batch_size / dt,
            ))
    return out
