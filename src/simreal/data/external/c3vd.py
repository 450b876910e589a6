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

from simreal.data.external.common import image_size_of, parse_size, read_uint16, resize_nearest, resize_rgb, write_dataset
from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
from simreal.data.images import read_rgb
from simreal.errors import SimrealError

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
    """Every (id, group, color path, depth path) under ``src``, sorted by group then frame number."""
    src = Path(src)
    if not src.is_dir():
        raise SimrealError("C3VD folder not found", src)
    pairs = []
    for color in src.rglob("*_color.png"):
        m = _COLOR.match(color.stem)
        if not m:
            continue
        candidates = [color.with_name(f"{m.group(1)}_depth{ext}") for ext in (".tiff", ".tif", ".png")]
        depth = next((c for c in candidates if c.is_file()), None)
        if depth is None:
            raise SimrealError(f"frame has no depth file {m.group(1)}_depth.tiff", color)
        group = color.parent.relative_to(src).as_posix()
        group = group if group != "." else src.name
        pairs.append((group, int(m.group(1)), f"{group.replace('/', '_')}_{m.group(1)}", color, depth))
    if not pairs:
        raise SimrealError("no NNNN_color.png files found (C3VD layout)", src)
    pairs.sort(key=lambda t: (t[0], t[1]))
    return [(sid, group, color, depth) for group, _, sid, color, depth in pairs]


def read_c3vd_sample(color: str | Path, depth: str | Path, *, size: int | tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """``{"image": (H, W, 3) uint8, "depth": (H, W) float32 mm}``; depth resized by nearest neighbour."""
    rgb = read_rgb(color)
    d = read_c3vd_depth(depth)
    if d.shape != rgb.shape[:2]:
        raise SimrealError(f"depth is {d.shape[1]}x{d.shape[0]} but its frame is {rgb.shape[1]}x{rgb.shape[0]}", depth)
    hw = parse_size(size)
    return {"image": resize_rgb(rgb, hw), "depth": resize_nearest(d, hw)}


def import_c3vd(src: str | Path, out_dir: str | Path, *, size: int | tuple[int, int] | None = None) -> Path:
    """Write C3VD frames + depth (mm) under ``src`` as a simreal dataset (domain "real", phantom)."""
    pairs = find_c3vd_pairs(src)
    hw = parse_size(size)
    info = DatasetInfo(
        modality="colonoscopy",
        domain="real",
        image_size=hw if hw is not None else image_size_of(p[2] for p in pairs),
        files=("image", "depth"),
        labels={"depth": LabelKind(unit="mm", description="z-depth from C3VD uint16: v / 65535 * 100 mm")},
        generator={"name": "import_c3vd", "src": str(Path(src)), "size": None if hw is None else list(hw)},
    )
    items = (
        (SampleRecord(id=sid, files={}, source=str(color), group=group), lambda c=color, d=depth: read_c3vd_sample(c, d, size=hw))
        for sid, group, color, depth in pairs
    )
    return write_dataset(out_dir, info, items)
