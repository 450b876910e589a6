"""Adversarial training throughput: the engine beside a plain PyTorch loop, same networks, same work.

Both loops train the same method on the same in-memory images, with the same batch and crop size:
``method="reverse"`` (default): the reverse-DA method (SimGAN refiner + local discriminator, history buffer
on) with k_R / k_D updates per step and no pre-training phases; ``"munit"``: Pfeiffer et al.'s MUNIT (both
generators, both multi-scale discriminators, every loss incl. the two MS-SSIM terms; ``ngf`` is the
generators' and discriminators' ``dim``, ``n_blocks`` their ``n_res``); ``"cyclegan"``: both ResNet
generators and PatchGANs, pool on (``ngf`` = ngf = ndf, ``n_blocks`` ResNet blocks). The plain loop is::

    for step in range(n):
        batch = {k: v.to(device) for k, v in data[step].items()}
        method.training_step(batch, step)          # plain torch.optim.Adam, loss.backward()

The engine runs the same method through :func:`simreal.adapt.engine.fit` (Lightning, manual
optimisation, a DataLoader over steps, per-step reseeding, loss logging every 10 steps, CSV and TensorBoard
loggers). After ``warmup`` untimed steps, the clock is read at the end of each of the next ``steps``
steps (CUDA synchronised first); a step's time is the interval from the end of the step before, so it
includes loading its data and every hook in between, but not the setup or the final checkpoint. The
figure is the median interval (robust to other processes' bursts on a shared machine); each loop is
measured ``repeats`` times, alternating, and its fastest median counts.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch

from simreal.adapt.config import (
    CycleGANConfig,
    CycleGANRunConfig,
    EngineConfig,
    MunitConfig,
    MunitRunConfig,
    ReverseDAConfig,
    ReverseRunConfig,
    UnpairedDataConfig,
)
from simreal.adapt.data import ArraySource, UnpairedBatches
from simreal.adapt.engine import fit, seed_step
from simreal.adapt.reverse import ReverseDA, build_method
from simreal.errors import SimrealError

#: Methods :func:`bench_adapt` can time.
BENCH_METHODS = ("reverse", "munit", "cyclegan")


@dataclass(frozen=True)
class AdaptBench:
    """One measurement (steps/s: training steps, each ``k_r`` refiner + ``k_d`` discriminator updates for
    reverse DA, one discriminator + one generator update for MUNIT and CycleGAN)."""

    device: str
    size: int
    batch_size: int
    ngf: int
    n_blocks: int
    k_r: int
    k_d: int
    steps: int
    params: int
    threads: int
    plain_steps_per_s: float
    engine_steps_per_s: float
    method: str = "reverse"

    @property
    def overhead(self) -> float:
        """Extra time per step of the engine relative to the plain loop (0.05 = 5% slower)."""
        return self.plain_steps_per_s / self.engine_steps_per_s - 1.0


class _Timer(L.Callback):
    """Clock readings at the end of steps ``first`` .. ``last`` (iterations done)."""

    def __init__(self, first: int, last: int, sync):
        self.first, self.last, self.sync = first, last, sync
        self.stamps: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.first <= module.iteration <= self.last:
            self.sync()
            self.stamps.append(time.perf_counter())


def _median_rate(stamps: list[float]) -> float:
    """Steps per second from the median interval between consecutive clock readings."""
    return 1.0 / float(np.median(np.diff(stamps)))


def bench_adapt(
    *,
    size: int = 64,
    batch_size: int = 8,
    ngf: int = 32,
    n_blocks: int = 4,
    k_r: int = 2,
    k_d: int = 1,
    steps: int = 10,
    warmup: int = 2,
    repeats: int = 2,
    device: str = "cpu",
    seed: int = 0,
    method: str = "reverse",
    d_layers: int | None = None,
    d_scales: int | None = None,
) -> AdaptBench:
    """Time ``steps`` training steps of ``method`` in a plain loop and through the engine (``warmup`` >= 1
    untimed steps first).

    Args:
        method: "reverse", "munit" or "cyclegan" (see the module docstring for what ``ngf`` and
            ``n_blocks`` mean for each).
        d_layers, d_scales: MUNIT's discriminator layers / scales (default 4 / 3; smaller crops need fewer),
            CycleGAN's PatchGAN layers (default 3).
    """
    if method not in BENCH_METHODS:
        raise SimrealError(f"--method must be one of {', '.join(BENCH_METHODS)}, got {method!r}")
    if size < 8 or batch_size < 1 or steps < 1 or warmup < 1 or repeats < 1 or ngf < 1 or n_blocks < 0:
        raise SimrealError(f"bad benchmark settings: size {size}, batch {batch_size}, steps {steps}, ngf {ngf}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SimrealError(f"--device {device}: CUDA is not available on this machine")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rng = np.random.default_rng(seed)
    side = size + size // 4  # room for random crops
    sources = {name: ArraySource(rng.integers(0, 256, (16, side, side, 3), dtype=np.uint8)) for name in ("real", "synthetic")}
    data_config = UnpairedDataConfig(real="(in memory)", synthetic="(in memory)", size=(size, size), batch_size=batch_size)
    if method == "munit":
        from simreal.adapt.munit import MUNIT
        from simreal.adapt.munit import build_method as build

        method_config = MunitConfig(channels=3, dim=ngf, n_res=n_blocks, d_dim=ngf, d_n_layer=d_layers or 4,
                                    d_num_scales=d_scales or 3)
        draws = MUNIT.draws()
        make_run = lambda out, engine: MunitRunConfig(out=out, data=data_config, munit=method_config, engine=engine)  # noqa: E731
        k_r = k_d = 1
    elif method == "cyclegan":
        from simreal.adapt.cyclegan import CycleGAN
        from simreal.adapt.cyclegan import build_method as build

        method_config = CycleGANConfig(channels=3, ngf=ngf, n_blocks=n_blocks, ndf=ngf, d_n_layers=d_layers or 3)
        draws = CycleGAN.draws()
        make_run = lambda out, engine: CycleGANRunConfig(out=out, data=data_config, cyclegan=method_config, engine=engine)  # noqa: E731
        k_r = k_d = 1
    else:
        build = build_method
        method_config = ReverseDAConfig(channels=3, ngf=ngf, n_blocks=n_blocks, pretrain_r=0, pretrain_d=0, k_r=k_r, k_d=k_d)
        draws = ReverseDA.draws(k_r, k_d)
        make_run = lambda out, engine: ReverseRunConfig(out=out, data=data_config, reverse=method_config, engine=engine)  # noqa: E731
    data = UnpairedBatches(sources, batch_size=batch_size, size=(size, size), draws=draws, seed=seed)
    total = warmup + steps

    def plain() -> float:
        seed_step(seed, -1)
        method = build(method_config).to(dev)
        stamps = []
        for step in range(total):
            batch = {k: v.to(dev) for k, v in data[step].items()}
            seed_step(seed, step)  # the engine reseeds every step too
            method.training_step(batch, step)
            if step + 1 >= warmup:
                sync()
                stamps.append(time.perf_counter())
        return _median_rate(stamps)

    def engine() -> float:
        with tempfile.TemporaryDirectory(prefix="simreal-bench-adapt-") as tmp:
            config = make_run(
                str(Path(tmp) / "run"),
                EngineConfig(steps=total, checkpoint_every=total, sample_every=total, log_every=10, n_samples=1,
                             accelerator="gpu" if dev.type == "cuda" else "cpu", devices="1", seed=seed),
            )
            timer = _Timer(warmup, total, sync)
            fit(lambda: build(method_config), data, config, progress=False, callbacks=[timer])
            return _median_rate(timer.stamps)

    plain_best = engine_best = 0.0
    for _ in range(repeats):
        plain_best = max(plain_best, plain())
        engine_best = max(engine_best, engine())
    params = sum(p.numel() for p in build(method_config).parameters())
    return AdaptBench(
        device=str(dev), size=size, batch_size=batch_size, ngf=ngf, n_blocks=n_blocks, k_r=k_r, k_d=k_d, steps=steps,
        params=params, threads=torch.get_num_threads(), plain_steps_per_s=plain_best, engine_steps_per_s=engine_best,
        method=method,
    )
