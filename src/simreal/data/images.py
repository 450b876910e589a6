"""Reading and writing pixel files (PNG, JPEG, TIFF) with one clear error per bad file.

Writes are atomic (:mod:`simreal.atomic`: a temporary ``.<name>.<tag>.tmp`` in the same folder, then
``os.replace``) so an interrupted run never leaves a half-written file under its final name. Output bytes
depend only on the array: no timestamps.
"""

from __future__ import annotations

import logging
import struct
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import tifffile
from PIL import Image

from simreal.atomic import atomic_path, write_bytes
from simreal.errors import SimrealError

#: Extensions read as ordinary images by :func:`read_rgb` / :func:`read_gray`.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

def encode_png(array: np.ndarray) -> bytes:
    """The bytes of an 8-bit PNG of (H, W) grey or (H, W, 3) RGB uint8 data (no timestamp or other
    metadata: the bytes depend only on the array).

    Encoded here rather than by Pillow, which costs 10 ms per noisy 256^2 RGB frame (it tries every row
    filter, then runs zlib's full match search): every row gets the Sub filter (difference to the pixel on
    its left, computed for the whole image at once) and zlib's run-length strategy at level 1: 3.3 ms and
    8% smaller on rendered frames, 40% smaller on label maps (long runs of one id).
    """
    h, w = array.shape[:2]
    c = 1 if array.ndim == 2 else 3
    rows = array.reshape(h, w * c)
    body = np.empty((h, w * c + 1), np.uint8)
    body[:, 0] = 1  # filter type Sub
    body[:, 1 : 1 + c] = rows[:, :c]
    np.subtract(rows[:, c:], rows[:, :-c], out=body[:, 1 + c :])  # uint8: modulo 256, as PNG defines it
    packer = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = packer.compress(body) + packer.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", w, h, 8, 2 if c == 3 else 0, 0, 0, 0)  # 8 bit, RGB or grey, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write an 8-bit PNG: (H, W) grey / class ids or (H, W, 3) RGB, dtype uint8 (:func:`encode_png`)."""
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise SimrealError(f"PNG needs uint8 data, got {array.dtype}", path)
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise SimrealError(f"PNG needs (H, W) or (H, W, 3) data, got shape {array.shape}", path)
    if array.size == 0:
        raise SimrealError(f"PNG needs at least one pixel, got shape {array.shape}", path)
    write_bytes(path, encode_png(np.ascontiguousarray(array)))


def write_tiff(path: str | Path, array: np.ndarray) -> None:
    """Write a float32 TIFF ((H, W) or (H, W, C)), uncompressed, with no timestamp.

    Uncompressed on purpose: zlib saves only 20-25% on float maps (their mantissas are noise) and costs
    10 ms per 256^2 depth map and 30 ms per normal map, more than ray casting the frame.
    """
    path = Path(path)
    array = np.asarray(array, dtype=np.float32)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, array, metadata=None)


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


_DROP_ALL = _DropAll()


@contextmanager
def _decoders_quiet() -> Iterator[None]:
    """Silence the decoders while they read one file: tifffile logs every damaged tag (to stderr when the
    program configured no logging) and Pillow warns about odd chunks. A damaged file becomes one
    SimrealError instead; messages printed before it would break the one-line error of the CLI."""
    log = logging.getLogger("tifffile")
    log.addFilter(_DROP_ALL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # checked first: a bomb is an error
            yield
    finally:
        log.removeFilter(_DROP_ALL)


def _open_pil(path: Path) -> Image.Image:
    if not path.is_file():
        raise SimrealError("file not found", path)
    try:
        with _decoders_quiet():
            img = Image.open(path)
            try:
                img.load()  # decode now: truncated and corrupt files fail here, not later
            except BaseException:
                img.close()  # a failed load leaves the file open
                raise
        return img
    except SimrealError:
        raise
    except Exception as exc:  # PIL raises many types for corrupt input
        raise SimrealError(f"cannot decode image ({exc.__class__.__name__}: {exc})", path) from None


def read_rgb(path: str | Path) -> np.ndarray:
    """Read any image as (H, W, 3) uint8 RGB: grey is replicated, alpha is dropped, 16-bit is scaled.

    Raises:
        SimrealError: missing, corrupt or truncated file, or data that is not an image (names the file).
    """
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
    try:
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img, dtype=np.float64)
            arr = np.clip(arr / max(arr.max(), 1.0) * 255.0, 0, 255).astype(np.uint8)
            return np.repeat(arr[..., None], 3, axis=2)
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Exception as exc:  # an exotic mode Pillow opens but cannot convert
        raise SimrealError(f"cannot convert image mode {img.mode!r} to RGB ({exc.__class__.__name__}: {exc})", path) from None


def read_gray(path: str | Path) -> np.ndarray:
    """Read an image as a 2-D array in its stored integer type (masks, 16-bit depth PNGs).

    Grey + alpha keeps the grey channel. RGB(A) files whose three colour channels are equal (masks saved
    as RGB JPEG or PNG) are reduced to one channel; for other RGB files the channel mean is returned (as
    float).

    Raises:
        SimrealError: missing, corrupt or truncated file, or not a 2-D image (names the file).
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        arr = read_tiff(path)
    else:
        img = _open_pil(path)
        try:
            if img.mode == "P":
                img = img.convert("L")
            arr = np.asarray(img)
        except Exception as exc:
            raise SimrealError(f"cannot read image mode {img.mode!r} ({exc.__class__.__name__}: {exc})", path) from None
    if arr.ndim == 3:
        channels = arr.shape[2]
        if channels in (1, 2):  # grey, grey + alpha
            arr = arr[..., 0]
        elif channels in (3, 4):
            arr = arr[..., :3]
            if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
                arr = arr[..., 0]
            else:
                arr = arr.mean(axis=2)
    if arr.ndim != 2:
        raise SimrealError(f"expected a single-channel image, got shape {arr.shape}", path)
    return np.ascontiguousarray(arr)


#: Largest decoded TIFF accepted (bytes): a damaged header can claim any size, and tifffile would try to
#: allocate it. 4 GiB holds a 1024^3 float32 volume.
MAX_TIFF_BYTES = 4 << 30


def read_tiff(path: str | Path) -> np.ndarray:
    """Read a TIFF as a numpy array.

    Raises:
        SimrealError: missing, corrupt or truncated file, or a header claiming more than
            :data:`MAX_TIFF_BYTES` (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise SimrealError("file not found", path)
    try:
        with _decoders_quiet(), tifffile.TiffFile(path) as tif:
            if len(tif.pages) == 0 or not tif.series:
                raise SimrealError("cannot decode TIFF (no image data: damaged or not a TIFF)", path)
            series = tif.series[0]
            n_bytes = int(np.prod(series.shape, dtype=np.float64)) * np.dtype(series.dtype).itemsize
            if n_bytes > MAX_TIFF_BYTES:
                raise SimrealError(f"cannot decode TIFF (header claims {n_bytes} bytes of pixels: damaged)", path)
            page = tif.pages[0]
            if page.compression == 1 and n_bytes > path.stat().st_size:
                # Uncompressed data cannot be larger than the file holding it.
                raise SimrealError(f"truncated TIFF ({n_bytes} bytes of pixels in a {path.stat().st_size}-byte file)", path)
            return series.asarray()
    except SimrealError:
        raise
    except Exception as exc:
        raise SimrealError(f"cannot decode TIFF ({exc.__class__.__name__}: {exc})", path) from None
