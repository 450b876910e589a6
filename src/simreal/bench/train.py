"""Training throughput: images per second of one U-Net optimisation step (forward, loss, backward, AdamW).

Measures the network step on random tensors, without data loading or Lightning, so the figure is the
compute ceiling of a training run at that size; after ``warmup`` untimed steps, ``steps`` steps are timed
(CUDA is synchronised before reading the clock).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

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
