"""Helpers for task tests: tiny learnable datasets (a bright disc, the polyp, 20 mm nearer than the wall)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
from simreal.data.writer import DatasetWriter


def write_blob_dataset(root: Path, n: int = 8, size: tuple[int, int] = (32, 32), seed: int = 0, groups: bool = True) -> Path:
    """Image, depth (mm) and mask where depth and mask are functions of the image (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    h, w = size
    info = DatasetInfo(
        modality="colonoscopy", domain="synthetic", image_size=size, files=("image", "depth", "mask"),
        labels={"depth": LabelKind(unit="mm"), "mask": LabelKind(classes={0: "background", 1: "polyp"})},
        generator={"name": "blobs", "config": {"n": n}}, seed=seed,
    )
    writer = DatasetWriter(root, info)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        cy, cx, r = rng.uniform(h * 0.25, h * 0.75), rng.uniform(w * 0.25, w * 0.75), rng.uniform(h / 8, h / 4)
        m = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.uint8)
        bright = 0.3 + 0.6 * m
        img = (np.stack([bright, bright * 0.5, bright * 0.4], -1) * 255).astype(np.uint8)
        depth = (40.0 - 20.0 * m).astype(np.float32)
        writer.write(
            SampleRecord(id=f"{i:06d}", files={}, group=f"seq{i % 4}" if groups else None),
            {"image": img, "depth": depth, "mask": m},
        )
    return writer.finish()


#: Tiny but real training settings: 32 px, a 2-level U-Net with 4/8 channels, batch 2.
TINY = dict(size=32, channels=(4, 8), batch_size=2, lr=1e-2)
