"""Shared pieces of the external-data importers: file listing, resizing, mask binarising, RGB + depth
pairing and import, writing.

Resizing keeps labels typed: RGB images are resampled bilinearly, masks and depth maps with nearest
neighbour (interpolating depth across an occlusion edge invents surfaces that do not exist).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
from simreal.data.images import IMAGE_EXTENSIONS, read_gray, read_rgb
from simreal.data.writer import Progress, write_dataset
from simreal.errors import SimrealError

#: Fraction of mask pixels allowed strictly between 64 and 191 (JPEG ringing at edges stays far below this: at
#: most 0.5 % on CVC-ClinicDB); more means the file is not a binary mask.
MAX_AMBIGUOUS_FRACTION = 0.05

#: Mask file types whose stored values are exact (no compression noise): a 0/1 mask here is kept as is.
LOSSLESS_MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")

#: What a binary polyp / foreground mask's values mean.
BINARY_CLASSES = {0: "background", 1: "polyp"}


def natural_key(path: Path) -> tuple:
    """Sort key that orders ``2.jpg`` before ``10.jpg``."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.stem))


def list_images(folder: str | Path, *, what: str = "images") -> list[Path]:
    """Image files (png, jpg, jpeg, bmp, tif, tiff) directly in ``folder``, in natural order.

    Raises:
        SimrealError: the folder is missing, holds no image, or two files share a stem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SimrealError(f"{what} folder not found", folder)
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")),
        key=natural_key,
    )
    if not files:
        raise SimrealError(f"no {what} ({', '.join(IMAGE_EXTENSIONS)}) in this folder", folder)
    stems: dict[str, Path] = {}
    for p in files:
        if p.stem in stems:
            raise SimrealError(f"two files share the name {p.stem!r} ({stems[p.stem].name}, {p.name})", folder)
        stems[p.stem] = p
    return files


def match_by_stem(images: list[Path], mask_dir: str | Path) -> list[Path]:
    """The mask file of each image, matched by file stem (``12.jpg`` <-> ``12.png``).

    Raises:
        SimrealError: counts differ, an image has no mask, or a mask has no image.
    """
    masks = list_images(mask_dir, what="masks")
    by_stem = {p.stem: p for p in masks}
    img_stems = {p.stem for p in images}
    missing = [p.stem for p in images if p.stem not in by_stem]
    extra = sorted(set(by_stem) - img_stems)
    if missing or extra or len(masks) != len(images):
        parts = [f"{len(images)} images but {len(masks)} masks"]
        if missing:
            parts.append(f"{len(missing)} images have no mask (first: {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} masks have no image (first: {extra[0]})")
        raise SimrealError("; ".join(parts), Path(mask_dir))
    return [by_stem[p.stem] for p in images]


def binarise_mask(raw: np.ndarray, *, threshold: int = 127, path: str | Path | None = None) -> np.ndarray:
    """Turn a stored 0/255 mask (possibly JPEG-noisy) into uint8 {0, 1}: ``raw > threshold``.

    A mask already holding only 0 and 1 is kept as is (thresholding it at 127 would erase it), but only
    when it comes from a lossless file (:data:`LOSSLESS_MASK_SUFFIXES`) or from an array (``path`` None):
    a JPEG mask is always thresholded, since compression noise makes a black mask hold 0s and 1s.

    Raises:
        SimrealError: more than :data:`MAX_AMBIGUOUS_FRACTION` of the pixels are mid-grey (strictly
            between 64 and 191), i.e. this is not a binary mask.
    """
    raw = np.asarray(raw)
    lossless = path is None or Path(path).suffix.lower() in LOSSLESS_MASK_SUFFIXES
    if lossless and raw.size and float(raw.max()) <= 1 and float(raw.min()) >= 0 and np.all(raw == np.round(raw)):
        return raw.astype(np.uint8)
    ambiguous = float(((raw > 64) & (raw < 191)).mean())
    if ambiguous > MAX_AMBIGUOUS_FRACTION:
        raise SimrealError(
            f"not a binary mask: {100 * ambiguous:.1f}% of pixels are mid-grey (strictly between 64 and 191); "
            "expected values near 0 or 255",
            path,
        )
    return (raw > threshold).astype(np.uint8)


def parse_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``None``, one side (square) or ``(height, width)`` -> ``(height, width)``."""
    if size is None:
        return None
    hw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if min(hw) < 1:
        raise SimrealError(f"size must be positive, got {size}")
    return hw


def resize_rgb(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Bilinear resize of (H, W, 3) uint8 to ``size = (height, width)``; unchanged when None or equal."""
    if size is None or rgb.shape[:2] == size:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.BILINEAR), dtype=np.uint8)


def resize_nearest(arr: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) label or depth map (pixel centres sampled, no mixing)."""
    if size is None or arr.shape[:2] == size:
        return arr
    h, w = arr.shape[:2]
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(int), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(int), w - 1)
    return arr[rows[:, None], cols[None, :]]


def image_size_of(paths: Iterable[Path]) -> tuple[int, int] | None:
    """Common (height, width) of the image files (read from headers only), or None when sizes vary."""
    sizes = set()
    for p in paths:
        try:
            with Image.open(p) as im:
                sizes.add((im.height, im.width))
        except Exception:
            return None  # unreadable header: the full decode later names the file
    return sizes.pop() if len(sizes) == 1 else None


def read_uint16(path: str | Path) -> np.ndarray:
    """Read a single-channel 16-bit PNG or TIFF as (H, W) uint16 (depth maps of external data sets).

    Raises:
        SimrealError: corrupt file, more than one channel, or not 16-bit.
    """
    path = Path(path)
    arr = read_gray(path)
    if arr.dtype == np.int32 and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)  # Pillow may open 16-bit grey PNGs in 32-bit "I" mode
    if arr.dtype != np.uint16:
        raise SimrealError(f"expected a 16-bit single-channel depth image, got {arr.dtype}", path)
    return arr


def write_uint16_png(path: str | Path, arr: np.ndarray) -> None:
    """Write (H, W) uint16 as a 16-bit grey PNG (to make external-format files, e.g. in tests)."""
    arr = np.asarray(arr)
    if arr.dtype != np.uint16 or arr.ndim != 2:
        raise SimrealError(f"need (H, W) uint16, got {arr.dtype} {arr.shape}", path)
    Image.fromarray(arr).save(Path(path), format="PNG")


def find_rgbd_pairs(
    src: str | Path,
    *,
    frame_glob: str,
    frame_regex: re.Pattern[str],
    depth_names_for: Callable[[str], Sequence[str]],
    layout_name: str,
    frame_desc: str | None = None,
) -> list[tuple[str, str, Path, Path]]:
    """Every (id, group, frame path, depth path) of an RGB + depth data set, sorted by group then frame number.

    Frames are found recursively under ``src`` by ``frame_glob``; ``frame_regex`` must match the frame's
    file stem with the frame number as group 1. The depth file sits next to the frame under the first
    existing name of ``depth_names_for(number)``. ``group`` is the frame folder's path relative to ``src``
    (``src``'s own name for frames directly in it); ids are ``<group with / -> _>_<number>``.

    Args:
        src: Data set root folder.
        frame_glob: Glob for frame files, e.g. ``"FrameBuffer_*.png"``.
        frame_regex: Pattern on the frame stem; group 1 is the frame number text.
        depth_names_for: Frame number text -> candidate depth file names, preferred first (named in errors).
        layout_name: Data set name used in error messages, e.g. ``"SimCol3D"``.
        frame_desc: How frame files are described when none is found (default: ``frame_glob``).

    Raises:
        SimrealError: missing folder, no frames, or a frame without its depth file.
    """
    src = Path(src)
    if not src.is_dir():
        raise SimrealError(f"{layout_name} folder not found", src)
    pairs = []
    for frame in src.rglob(frame_glob):
        m = frame_regex.match(frame.stem)
        if not m:
            continue
        names = list(depth_names_for(m.group(1)))
        depth = next((frame.with_name(n) for n in names if frame.with_name(n).is_file()), None)
        if depth is None:
            raise SimrealError(f"frame has no depth file {names[0]}", frame)
        group = frame.parent.relative_to(src).as_posix()
        group = group if group != "." else src.name
        sid = f"{group.replace('/', '_')}_{m.group(1)}"
        pairs.append((group, int(m.group(1)), sid, frame, depth))
    if not pairs:
        raise SimrealError(f"no {frame_desc or frame_glob} files found ({layout_name} layout)", src)
    pairs.sort(key=lambda t: (t[0], t[1]))
    return [(sid, group, frame, depth) for group, _, sid, frame, depth in pairs]


def read_rgbd_sample(
    frame: str | Path,
    depth: str | Path,
    *,
    read_depth: Callable[[str | Path], np.ndarray],
    size: int | tuple[int, int] | None = None,
) -> dict[str, np.ndarray]:
    """``{"image": (H, W, 3) uint8, "depth": (H, W) float32 mm}``; depth resized by nearest neighbour.

    Raises:
        SimrealError: unreadable files, or depth and frame of different sizes (names the depth file).
    """
    rgb = read_rgb(frame)
    d = read_depth(depth)
    if d.shape != rgb.shape[:2]:
        raise SimrealError(f"depth is {d.shape[1]}x{d.shape[0]} but its frame is {rgb.shape[1]}x{rgb.shape[0]}", depth)
    hw = parse_size(size)
    return {"image": resize_rgb(rgb, hw), "depth": resize_nearest(d, hw)}


def import_rgbd(
    src: str | Path,
    out_dir: str | Path,
    *,
    pairs: list[tuple[str, str, Path, Path]],
    read_depth: Callable[[str | Path], np.ndarray],
    domain: str,
    depth_description: str,
    generator_name: str,
    size: int | tuple[int, int] | None = None,
    modality: str = "colonoscopy",
    progress: Progress | None = None,
) -> Path:
    """Write (id, group, frame, depth) pairs from :func:`find_rgbd_pairs` as a simreal dataset.

    Files are ``image`` + ``depth`` (mm); ``read_depth`` turns one depth file into (H, W) float32 mm.
    On any error the partial output folder is removed (see :func:`write_dataset`); ``progress`` as there.
    """
    hw = parse_size(size)
    info = DatasetInfo(
        modality=modality,
        domain=domain,
        image_size=hw if hw is not None else image_size_of(p[2] for p in pairs),
        files=("image", "depth"),
        labels={"depth": LabelKind(unit="mm", description=depth_description)},
        generator={"name": generator_name, "src": str(Path(src)), "size": None if hw is None else list(hw)},
    )
    items = (
        (
            SampleRecord(id=sid, files={}, source=str(frame), group=group),
            lambda f=frame, d=depth: read_rgbd_sample(f, d, read_depth=read_depth, size=hw),
        )
        for sid, group, frame, depth in pairs
    )
    return write_dataset(out_dir, info, items, total=len(pairs), progress=progress)
