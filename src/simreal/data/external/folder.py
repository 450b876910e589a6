"""Plain image folders (any real or external images) as simreal datasets.

Unit convention: images are 8-bit RGB (grey is replicated to three channels, alpha is dropped, 16-bit
is scaled to 8-bit by :func:`simreal.data.images.read_rgb`); optional masks are matched to images by file
stem and binarised at 127 into {0: background, 1: foreground} (a mask that already holds only 0 and 1
is kept). Sample ids are the file stems; ``source`` is the original file path; ``group`` is None (a
plain folder says nothing about sequences).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simreal.data.external.common import (
    Progress,
    binarise_mask,
    image_size_of,
    list_images,
    match_by_stem,
    parse_size,
    resize_nearest,
    resize_rgb,
    write_dataset,
)
from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
from simreal.data.images import read_gray, read_rgb
from simreal.errors import SimrealError

FOLDER_CLASSES = {0: "background", 1: "foreground"}


def read_folder_sample(
    image_path: str | Path, mask_path: str | Path | None = None, *, size: int | tuple[int, int] | None = None, threshold: int = 127
) -> dict[str, np.ndarray]:
    """Decode one image (and its mask) as ``{"image": (H, W, 3) uint8, "mask": (H, W) uint8 {0, 1}}``.

    Raises:
        SimrealError: corrupt file, or a mask whose size differs from its image or that is not binary.
    """
    rgb = read_rgb(image_path)
    out = {"image": resize_rgb(rgb, parse_size(size))}
    if mask_path is not None:
        raw = read_gray(mask_path)
        if raw.shape != rgb.shape[:2]:
            raise SimrealError(f"mask is {raw.shape[1]}x{raw.shape[0]} but its image is {rgb.shape[1]}x{rgb.shape[0]}", mask_path)
        out["mask"] = resize_nearest(binarise_mask(raw, threshold=threshold, path=mask_path), parse_size(size))
    return out


def import_folder(
    src: str | Path,
    out_dir: str | Path,
    *,
    masks: str | Path | None = None,
    size: int | tuple[int, int] | None = None,
    modality: str = "image",
    domain: str = "real",
    threshold: int = 127,
    progress: Progress | None = None,
) -> Path:
    """Write a folder of images (and optionally a folder of binary masks) as a simreal dataset.

    Args:
        src: folder of image files (png, jpg, jpeg, bmp, tif, tiff; any size, RGB / RGBA / grey).
        out_dir: the new dataset folder (must not exist).
        masks: folder of masks matched by stem; every image needs one.
        size: resize everything to (height, width) (or a square side); None keeps each file's size.
        modality, domain: written to dataset.json.
        threshold: mask binarisation threshold (values above it are foreground).
        progress: called with (samples done, total) after each sample.

    Returns:
        ``out_dir``.

    Raises:
        SimrealError: empty or missing folder, image / mask count mismatch, corrupt file, non-binary mask.
    """
    images = list_images(src)
    mask_files = match_by_stem(images, masks) if masks is not None else [None] * len(images)
    hw = parse_size(size)
    info = DatasetInfo(
        modality=modality,
        domain=domain,
        image_size=hw if hw is not None else image_size_of(images),
        files=("image", "mask") if masks is not None else ("image",),
        labels={"mask": LabelKind(classes=dict(FOLDER_CLASSES), description="binary mask, thresholded at 127")}
        if masks is not None
        else {},
        generator={"name": "import_folder", "src": str(Path(src)), "masks": None if masks is None else str(Path(masks)), "size": None if hw is None else list(hw), "threshold": threshold},
    )
    items = (
        (
            SampleRecord(id=img.stem, files={}, source=str(img)),
            lambda img=img, m=m: read_folder_sample(img, m, size=hw, threshold=threshold),
        )
        for img, m in zip(images, mask_files)
    )
    return write_dataset(out_dir, info, items, total=len(images), progress=progress)
