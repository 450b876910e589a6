"""SimCol3D (synthetic colonoscopy, Rau et al. 2023): RGB frames and 16-bit depth PNGs.

Unit convention, as in the data set's own loading code: a depth PNG stores ``uint16`` values ``v`` with
``depth_cm = v / 255 / 256 * 20``, i.e. ``depth_mm = v / 65280 * 200``. The full range 0..20 cm maps to
0..65280 (``255 * 256``), not to 65535; values above 65280 (up to 20.08 cm) are kept as they are.

Layout: ``FrameBuffer_NNNN.png`` (RGB) next to ``Depth_NNNN.png`` in one folder per sequence (e.g.
``SyntheticColon_I/Frames_S1/``); the importer searches ``SRC`` recursively. ``group`` is the sequence
folder's path relative to ``SRC`` (e.g. ``"SyntheticColon_I/Frames_S1"``), ids are
``<group with / -> _>_NNNN``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from simreal.data.external.common import image_size_of, parse_size, read_uint16, resize_nearest, resize_rgb, write_dataset
from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
from simreal.data.images import read_rgb
from simreal.errors import SimrealError

#: Raw value that encodes 20 cm (= 200 mm) in a SimCol3D depth PNG.
SIMCOL_RAW_FULL = 255 * 256
SIMCOL_FULL_MM = 200.0

_FRAME = re.compile(r"^FrameBuffer_(\d+)$")


def simcol_depth_mm(raw: np.ndarray) -> np.ndarray:
    """SimCol3D raw uint16 depth -> float32 millimetres: ``raw / 255 / 256 * 20`` cm ``* 10``."""
    return (np.asarray(raw, dtype=np.float64) / 255.0 / 256.0 * 20.0 * 10.0).astype(np.float32)


def simcol_depth_raw(depth_mm: np.ndarray) -> np.ndarray:
    """Inverse of :func:`simcol_depth_mm` (rounded to the nearest stored value, clipped to uint16)."""
    raw = np.round(np.asarray(depth_mm, dtype=np.float64) / 10.0 / 20.0 * 256.0 * 255.0)
    return np.clip(raw, 0, 65535).astype(np.uint16)


def read_simcol_depth(path: str | Path) -> np.ndarray:
    """Read a SimCol3D depth PNG as (H, W) float32 millimetres."""
    return simcol_depth_mm(read_uint16(path))


def find_simcol_pairs(src: str | Path) -> list[tuple[str, str, Path, Path]]:
    """Every (id, group, frame path, depth path) under ``src``, sorted by group then frame number.

    Raises:
        SimrealError: missing folder, no frames, or a frame without its depth file.
    """
    src = Path(src)
    if not src.is_dir():
        raise SimrealError("SimCol3D folder not found", src)
    pairs = []
    for frame in src.rglob("FrameBuffer_*.png"):
        m = _FRAME.match(frame.stem)
        if not m:
            continue
        depth = frame.with_name(f"Depth_{m.group(1)}.png")
        if not depth.is_file():
            raise SimrealError(f"frame has no depth file {depth.name}", frame)
        group = frame.parent.relative_to(src).as_posix()
        group = group if group != "." else src.name
        sid = f"{group.replace('/', '_')}_{m.group(1)}"
        pairs.append((group, int(m.group(1)), sid, frame, depth))
    if not pairs:
        raise SimrealError("no FrameBuffer_*.png files found (SimCol3D layout)", src)
    pairs.sort(key=lambda t: (t[0], t[1]))
    return [(sid, group, frame, depth) for group, _, sid, frame, depth in pairs]


def read_simcol_sample(frame: str | Path, depth: str | Path, *, size: int | tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """``{"image": (H, W, 3) uint8, "depth": (H, W) float32 mm}``; depth resized by nearest neighbour."""
    rgb = read_rgb(frame)
    d = read_simcol_depth(depth)
    if d.shape != rgb.shape[:2]:
        raise SimrealError(f"depth is {d.shape[1]}x{d.shape[0]} but its frame is {rgb.shape[1]}x{rgb.shape[0]}", depth)
    hw = parse_size(size)
    return {"image": resize_rgb(rgb, hw), "depth": resize_nearest(d, hw)}


def import_simcol(src: str | Path, out_dir: str | Path, *, size: int | tuple[int, int] | None = None) -> Path:
    """Write SimCol3D frames + depth (mm) under ``src`` as a simreal dataset (domain "synthetic").

    Camera intrinsics (the data set's ``cam.txt``) are not read: records carry no camera.
    """
    pairs = find_simcol_pairs(src)
    hw = parse_size(size)
    info = DatasetInfo(
        modality="colonoscopy",
        domain="synthetic",
        image_size=hw if hw is not None else image_size_of(p[2] for p in pairs),
        files=("image", "depth"),
        labels={"depth": LabelKind(unit="mm", description="z-depth from SimCol3D PNG: v / 255 / 256 * 20 cm")},
        generator={"name": "import_simcol", "src": str(Path(src)), "size": None if hw is None else list(hw)},
    )
    items = (
        (SampleRecord(id=sid, files={}, source=str(frame), group=group), lambda f=frame, d=depth: read_simcol_sample(f, d, size=hw))
        for sid, group, frame, depth in pairs
    )
    return write_dataset(out_dir, info, items)
