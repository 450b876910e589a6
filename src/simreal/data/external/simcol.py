"""SimCol3D (synthetic colonoscopy, Rau et al. 2023): RGB frames and 16-bit depth PNGs.

Unit convention, as in the data set's own loading code: a depth PNG stores ``uint16`` values ``v`` with
``depth_cm = v / 255 / 256 * 20``, i.e. ``depth_mm = v / 65280 * 200``. The full range 0..20 cm maps to
0..65280 (``255 * 256``), not to 65535; values above 65280 (up to 20.08 cm) are kept as they are, except
the saturated code 65535 (:data:`SIMCOL_RAW_SATURATED`): the renderer clamps everything at or beyond its
far limit to it, so it says "no valid depth here", not "20.08 cm". It becomes 0, simreal's "no surface";
reading it as a distance would teach a network a fake far wall.

Layout: ``FrameBuffer_NNNN.png`` (RGB) next to ``Depth_NNNN.png`` in one folder per sequence (e.g.
``SyntheticColon_I/Frames_S1/``); the importer searches ``SRC`` recursively. ``group`` is the sequence
folder's path relative to ``SRC`` (e.g. ``"SyntheticColon_I/Frames_S1"``), ids are
``<group with / -> _>_NNNN``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from simreal.data.external.common import Progress, find_rgbd_pairs, import_rgbd, read_rgbd_sample, read_uint16

#: Raw value that encodes 20 cm (= 200 mm) in a SimCol3D depth PNG.
SIMCOL_RAW_FULL = 255 * 256
SIMCOL_FULL_MM = 200.0
#: The largest uint16 code: depth at or beyond the far limit (saturated), read as 0 = no valid depth.
SIMCOL_RAW_SATURATED = 65535

_FRAME = re.compile(r"^FrameBuffer_(\d+)$")


def simcol_depth_mm(raw: np.ndarray) -> np.ndarray:
    """SimCol3D raw uint16 depth -> float32 millimetres: ``raw / 255 / 256 * 20`` cm ``* 10``, and the
    saturated code 65535 -> 0 (no valid depth).

    Example:
        >>> simcol_depth_mm(np.array([0, 32640, 65280, 65535], np.uint16)).tolist()
        [0.0, 100.0, 200.0, 0.0]
    """
    raw = np.asarray(raw)
    mm = (raw.astype(np.float64) / 255.0 / 256.0 * 20.0 * 10.0).astype(np.float32)
    mm[raw == SIMCOL_RAW_SATURATED] = 0.0
    return mm


def simcol_depth_raw(depth_mm: np.ndarray) -> np.ndarray:
    """Inverse of :func:`simcol_depth_mm` (rounded to the nearest stored value). Depths are clipped to
    65534, the deepest code that is still a distance (65535 would read back as "no depth")."""
    raw = np.round(np.asarray(depth_mm, dtype=np.float64) / 10.0 / 20.0 * 256.0 * 255.0)
    return np.clip(raw, 0, SIMCOL_RAW_SATURATED - 1).astype(np.uint16)


def read_simcol_depth(path: str | Path) -> np.ndarray:
    """Read a SimCol3D depth PNG as (H, W) float32 millimetres (saturated pixels 0 = no valid depth)."""
    return simcol_depth_mm(read_uint16(path))


def find_simcol_pairs(src: str | Path) -> list[tuple[str, str, Path, Path]]:
    """Every (id, group, frame path, depth path) under ``src``, sorted by group then frame number.

    Raises:
        SimrealError: missing folder, no frames, or a frame without its depth file.
    """
    return find_rgbd_pairs(
        src,
        frame_glob="FrameBuffer_*.png",
        frame_regex=_FRAME,
        depth_names_for=lambda n: [f"Depth_{n}.png"],
        layout_name="SimCol3D",
    )


def read_simcol_sample(frame: str | Path, depth: str | Path, *, size: int | tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """``{"image": (H, W, 3) uint8, "depth": (H, W) float32 mm}``; depth resized by nearest neighbour."""
    return read_rgbd_sample(frame, depth, read_depth=read_simcol_depth, size=size)


def import_simcol(
    src: str | Path, out_dir: str | Path, *, size: int | tuple[int, int] | None = None, progress: Progress | None = None
) -> Path:
    """Write SimCol3D frames + depth (mm) under ``src`` as a simreal dataset (domain "synthetic").

    Camera intrinsics (the data set's ``cam.txt``) are not read: records carry no camera. ``progress`` is
    called with (samples done, total) after each sample.
    """
    return import_rgbd(
        src,
        out_dir,
        pairs=find_simcol_pairs(src),
        read_depth=read_simcol_depth,
        domain="synthetic",
        depth_description="z-depth from SimCol3D PNG: v / 255 / 256 * 20 cm; saturated 65535 -> 0 (no valid depth)",
        generator_name="import_simcol",
        size=size,
        progress=progress,
    )
