"""Helpers for adapt tests (a unique module name: every test folder may have its own conftest.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from simreal.adapt.config import EngineConfig, ReverseDAConfig, ReverseRunConfig, UnpairedDataConfig

#: A reverse-DA method small enough for a test: 8 features, 2 blocks, short pre-training, a 6-image buffer
#: (so it fills and starts replacing within a few steps).
TINY_REVERSE = dict(ngf=8, n_blocks=2, pretrain_r=2, pretrain_d=2, history_size=6)


def write_images(folder: Path, n: int = 4, size: tuple[int, int] = (20, 24), mode: str = "RGB", seed: int = 0,
                 suffix: str = ".png") -> Path:
    """``n`` random images of one PIL ``mode`` ("RGB", "L", "RGBA") named 0.png, 1.png, ..."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    bands = len(mode)
    for i in range(n):
        arr = rng.integers(0, 256, (*size, bands), dtype=np.uint8)
        Image.fromarray(arr[..., 0] if bands == 1 else arr, mode=mode).save(folder / f"{i}{suffix}")
    return folder


def tiny_config(real: Path, synthetic: Path, out: Path, *, steps: int = 8, checkpoint_every: int = 3,
                sample_every: int = 4, log_every: int = 2, seed: int = 0, size: tuple[int, int] = (16, 16),
                **reverse: object) -> ReverseRunConfig:
    """A reverse-DA run config at test scale; ``reverse`` overrides :data:`TINY_REVERSE`."""
    return ReverseRunConfig(
        out=str(out),
        data=UnpairedDataConfig(real=str(real), synthetic=str(synthetic), size=size, batch_size=2),
        reverse=dataclasses.replace(ReverseDAConfig(), **{**TINY_REVERSE, **reverse}),
        engine=EngineConfig(steps=steps, checkpoint_every=checkpoint_every, sample_every=sample_every,
                            log_every=log_every, seed=seed, n_samples=2),
    )
