"""C3VD (colonoscopy 3-D video data set, Bobrow et al. 2023): RGB frames and 16-bit depth.

Unit convention: depth is stored as ``uint16`` in PNG or TIFF with 0..65535 mapped linearly onto
0..100 mm: ``depth_mm = v / 65535 * 100``. A stored 0 stays 0 mm, which simreal reads as "no surface".

Layout: ``NNNN_color.png`` next to ``NNNN_depth.tiff`` (or ``.png``) in one folder per sequence
(e.g. ``cecum_t1_a/``); the importer searches ``SRC`` recursively. ``group`` is the sequence folder's
path relative to ``SRC``; ids are ``<group with / -> _>_NNNN``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from simreal.data.external.common import Progress, find_rgbd_pairs, import_rgbd, read_rgbd_sample, read_uint16

#: Depth in mm of the largest stored value (65535).
C3VD_FULL_MM = 100.0

_COLOR = re.compile(r"^(\d+)_color$")


def c3vd_depth_mm(raw: np.ndarray) -> np.ndarray:
    """C3VD raw uint16 depth -> float32 millimetres (``v / 65535 * 100``)."""
    return (np.asarray(raw, dtype=np.float64) / 65535.0 * C3VD_FULL_MM).astype(np.float32)


def c3vd_depth_raw(depth_mm: np.ndarray) -> np.ndarray:
    """Inverse of :func:`c3vd_depth_mm` (rounded, clipped to 0..65535)."""
    raw = np.round(np.asarray(depth_mm, dtype=np.float64) / C3VD_FULL_MM * 65535.0)
    return np.clip(raw, 0, 65535).astype(np.uint16)


def read_c3vd_depth(path: str | Path) -> np.ndarray:
    """Read a C3VD depth PNG / TIFF as (H, W) float32 millimetres."""
    return c3vd_depth_mm(read_uint16(path))


def find_c3vd_pairs(src: str | Path) -> list[tuple[str, str, Path, Path]]:
    """Every (id, group, color path, depth path) under ``src``, sorted by group then frame number.

    Raises:
        SimrealError: missing folder, no frames, or a frame without its depth file.
    """
    return find_rgbd_pairs(
        src,
        frame_glob="*_color.png",
        frame_regex=_COLOR,
        depth_names_for=lambda n: [f"{n}_depth{ext}" for ext in (".tiff", ".tif", ".png")],
        layout_name="C3VD",
        frame_desc="NNNN_color.png",
    )


def read_c3vd_sample(color: str | Path, depth: str | Path, *, size: int | tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """``{"image": (H, W, 3) uint8, "depth": (H, W) float32 mm}``; depth resized by nearest neighbour."""
    return read_rgbd_sample(color, depth, read_depth=read_c3vd_depth, size=size)


def import_c3vd(
    src: str | Path, out_dir: str | Path, *, size: int | tuple[int, int] | None = None, progress: Progress | None = None
) -> Path:
    """Write C3VD frames + depth (mm) under ``src`` as a simreal dataset (domain "real", phantom).

    ``progress`` is called with (samples done, total) after each sample.
    """
    return import_rgbd(
        src,
        out_dir,
        pairs=find_c3vd_pairs(src),
        read_depth=read_c3vd_depth,
        domain="real",
        depth_description="z-depth from C3VD uint16: v / 65535 * 100 mm",
        generator_name="import_c3vd",
        size=size,
        progress=progress,
    )
