"""Reading and writing pixel files (PNG, JPEG, TIFF) with one clear error per bad file.

Writes are atomic (a temporary file in the same folder, then ``os.replace``) so an interrupted run never
leaves a half-written file under its final name. Output bytes depend only on the array: no timestamps.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from simreal.errors import SimrealError

#: Extensions read as ordinary images by :func:`read_rgb` / :func:`read_gray`.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# zlib level 1: deterministic, a third of the size of raw, a few ms per 256^2 frame.
_PNG_COMPRESS_LEVEL = 1


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write an 8-bit PNG: (H, W) grey / class ids or (H, W, 3) RGB, dtype uint8."""
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise SimrealError(f"PNG needs uint8 data, got {array.dtype}", path)
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise SimrealError(f"PNG needs (H, W) or (H, W, 3) data, got shape {array.shape}", path)
    tmp = _atomic_target(path)
    try:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_tiff(path: str | Path, array: np.ndarray) -> None:
    """Write a float32 TIFF ((H, W) or (H, W, C)), uncompressed, with no timestamp.

    Uncompressed on purpose: zlib saves only 20-25% on float maps (their mantissas are noise) and costs
    10 ms per 256^2 depth map and 30 ms per normal map, more than ray casting the frame.
    """
    path = Path(path)
    array = np.asarray(array, dtype=np.float32)
    tmp = _atomic_target(path)
    try:
        tifffile.imwrite(tmp, array, metadata=None)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _open_pil(path: Path) -> Image.Image:
    if not path.is_file():
        raise SimrealError("file not found", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            img.load()  # decode now: truncated and corrupt files fail here, not later
        return img
    except SimrealError:
        raise
    except Exception as exc:  # PIL raises many types for corrupt input
        raise SimrealError(f"cannot decode image ({exc.__class__.__name__}: {exc})", path) from None


def read_rgb(path: str | Path) -> np.ndarray:
    """Read any image as (H, W, 3) uint8 RGB: grey is replicated, alpha is dropped, 16-bit is scaled."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        arr = read_tiff(path)
        if arr.dtype != np.uint8:
            raise SimrealError(f"TIFF image must be uint8 to be read as RGB, got {arr.dtype}", path)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise SimrealError(f"expected an RGB(A) image, got shape {arr.shape}", path)
        return np.ascontiguousarray(arr[..., :3])
    img = _open_pil(path)
    if img.mode in ("I;16", "I;16B", "I"):
        arr = np.asarray(img, dtype=np.float64)
        arr = np.clip(arr / max(arr.max(), 1.0) * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def read_gray(path: str | Path) -> np.ndarray:
    """Read an image as a 2-D array in its stored integer type (masks, 16-bit depth PNGs).

    RGB files whose three channels are equal (masks saved as RGB JPEG or PNG) are reduced to one channel;
    for other RGB files the channel mean is returned (as float).
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        arr = read_tiff(path)
    else:
        img = _open_pil(path)
        if img.mode == "P":
            img = img.convert("L")
        arr = np.asarray(img)
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[..., :3]
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            arr = arr[..., 0]
        else:
            arr = arr.mean(axis=2)
    if arr.ndim != 2:
        raise SimrealError(f"expected a single-channel image, got shape {arr.shape}", path)
    return np.ascontiguousarray(arr)


def read_tiff(path: str | Path) -> np.ndarray:
    """Read a TIFF as a numpy array; corrupt or truncated files raise :class:`SimrealError`."""
    path = Path(path)
    if not path.is_file():
        raise SimrealError("file not found", path)
    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.pages) == 0:
                raise SimrealError("cannot decode TIFF (no image data: damaged or not a TIFF)", path)
            return tif.asarray()
    except SimrealError:
        raise
    except Exception as exc:
        raise SimrealError(f"cannot decode TIFF ({exc.__class__.__name__}: {exc})", path) from None
