"""CVC-ClinicDB and Kvasir-SEG polyp data sets (real colonoscopy frames + binary polyp masks).

Layout: ``SRC/images/*`` and ``SRC/masks/*`` matched by file stem (the layout of the common 256x256
JPEG redistribution and of Kvasir-SEG); the original CVC-ClinicDB layout ``SRC/Original/*.tif`` +
``SRC/Ground Truth/*.tif`` is accepted too.

Unit convention: images are 8-bit RGB; masks are stored as 0/255 (JPEG copies are saved as RGB with
compression noise) and binarised at 127 into {0: background, 1: polyp}.

Sequences and studies: CVC-ClinicDB's 612 frames come from 29 video sequences (README.txt of the data set,
table transcribed in :data:`CVC_SEQUENCES`), which come from 25 video studies (patients). Frames of one
sequence show the same polyp, and sequences of one study the same patient, so train / test splits and
statistics must work on whole studies. Which sequences share a study is not published (no mapping is
known to us), but the frames tell one pair apart. What the frames show (256x256 copy; per-sequence
temporal max of the pixels): every sequence has its own polyp, and the capture setup (grey level of the
black surround, position of the octagonal field stop) falls into four kinds: grey 11, rows 12-249,
columns 28-238 (21 sequences); grey 21, rows 23-249, columns 30-227 (sequences 2, 5, 18); grey 21, rows
12-249, columns 18-227 (8, 16, 19); blue-grey (16, 18, 21), rows 24-248, columns 40-237 (23, 24).
Sequences of one study come from one video, so they share a capture setup: sequences of different setups
are different studies. Sequences 23 and 24 (the one rare setup, consecutive) are taken to be one study
(:data:`CVC_SHARED_STUDIES`); the other three shared studies cannot be told apart within the 21 sequences
of the common setup, so they stay separate groups (a known, documented limit: a split may still put one
of those patients' two polyps on both sides).

Every record's ``group`` is therefore its study as far as it is known: ``"seq01"`` ... ``"seq29"``, with
sequences 23 and 24 together as ``"seq23-24"`` (28 groups); ``params`` hold the ``frame`` number and the
``sequence`` (``"seq23"``). Kvasir-SEG has no sequence information (``group`` None). Sample ids: CVC
``"0001"`` ... ``"0612"`` (frame number, zero-padded), Kvasir the file stem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from simreal.data.external.common import (
    BINARY_CLASSES,
    Progress,
    image_size_of,
    list_images,
    match_by_stem,
    parse_size,
    write_dataset,
)
from simreal.data.external.folder import read_folder_sample
from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
from simreal.errors import SimrealError

#: (first frame, last frame, sequence) from CVC-ClinicDB's README.txt; frames 1..612, 29 sequences.
CVC_SEQUENCES: tuple[tuple[int, int, int], ...] = (
    (1, 25, 1), (26, 50, 2), (51, 67, 3), (68, 78, 4), (79, 103, 5), (104, 126, 6), (127, 151, 7),
    (152, 177, 8), (178, 199, 9), (200, 205, 10), (206, 227, 11), (228, 252, 12), (253, 277, 13),
    (278, 297, 14), (298, 317, 15), (318, 342, 16), (343, 363, 17), (364, 383, 18), (384, 408, 19),
    (409, 428, 20), (429, 447, 21), (448, 466, 22), (467, 478, 23), (479, 503, 24), (504, 528, 25),
    (529, 546, 26), (547, 571, 27), (572, 591, 28), (592, 612, 29),
)  # fmt: skip

CVC_N_FRAMES = 612

_LAYOUTS = (("images", "masks"), ("Original", "Ground Truth"), ("original", "ground truth"))


def cvc_sequence(frame: int) -> int:
    """Video sequence (1..29) of a CVC-ClinicDB frame number (1..612).

    Raises:
        SimrealError: frame number outside 1..612.

    Example:
        >>> cvc_sequence(25), cvc_sequence(26), cvc_sequence(612)
        (1, 2, 29)
    """
    for first, last, seq in CVC_SEQUENCES:
        if first <= frame <= last:
            return seq
    raise SimrealError(f"CVC-ClinicDB frame number {frame} is outside 1..{CVC_N_FRAMES}")


#: Sequences taken to come from one study (patient): same rare capture setup, consecutive (module docstring).
CVC_SHARED_STUDIES: tuple[tuple[int, ...], ...] = ((23, 24),)


def cvc_sequence_name(frame: int) -> str:
    """The video sequence of a frame as a string, e.g. ``"seq07"``."""
    return f"seq{cvc_sequence(frame):02d}"


def cvc_group(frame: int) -> str:
    """The ``group`` of a frame: its study as far as known, e.g. ``"seq07"``, or ``"seq23-24"`` for the two
    sequences of one study (:data:`CVC_SHARED_STUDIES`)."""
    seq = cvc_sequence(frame)
    for study in CVC_SHARED_STUDIES:
        if seq in study:
            return "seq" + "-".join(f"{s:02d}" for s in study)
    return f"seq{seq:02d}"


def find_layout(src: str | Path) -> tuple[Path, Path]:
    """The (images, masks) folders under ``src``.

    Raises:
        SimrealError: no known layout is present.
    """
    src = Path(src)
    if not src.is_dir():
        raise SimrealError("data set folder not found", src)
    for img, msk in _LAYOUTS:
        if (src / img).is_dir() and (src / msk).is_dir():
            return src / img, src / msk
    raise SimrealError("expected sub-folders images/ and masks/ (or Original/ and Ground Truth/)", src)


def _frame_number(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        raise SimrealError("CVC-ClinicDB file names must be frame numbers (e.g. 12.jpg)", path) from None


def _import_polyps(
    src: str | Path,
    out_dir: str | Path,
    *,
    size: int | tuple[int, int] | None,
    dataset: Literal["cvc", "kvasir"],
    progress: Progress | None = None,
) -> Path:
    img_dir, mask_dir = find_layout(src)
    images = list_images(img_dir)
    masks = match_by_stem(images, mask_dir)
    hw = parse_size(size)
    if dataset == "cvc":
        frames = [_frame_number(p) for p in images]
        ids = [f"{f:04d}" for f in frames]
        groups: list[str | None] = [cvc_group(f) for f in frames]
    else:
        ids = [p.stem for p in images]
        groups = [None] * len(images)
    info = DatasetInfo(
        modality="colonoscopy",
        domain="real",
        image_size=hw if hw is not None else image_size_of(images),
        files=("image", "mask"),
        labels={"mask": LabelKind(classes=dict(BINARY_CLASSES), description="polyp mask, stored 0/255, thresholded at 127")},
        generator={"name": f"import_{dataset}", "src": str(Path(src)), "size": None if hw is None else list(hw), "threshold": 127},
    )
    items = (
        (
            SampleRecord(id=sid, files={}, source=str(img), group=group,
                         params={"frame": int(img.stem), "sequence": cvc_sequence_name(int(img.stem))}
                         if dataset == "cvc" else {}),
            lambda img=img, m=m: read_folder_sample(img, m, size=hw),
        )
        for sid, group, img, m in zip(ids, groups, images, masks)
    )
    return write_dataset(out_dir, info, items, total=len(images), progress=progress)


def import_cvc(
    src: str | Path, out_dir: str | Path, *, size: int | tuple[int, int] | None = None, progress: Progress | None = None
) -> Path:
    """Write CVC-ClinicDB (``SRC/images``, ``SRC/masks``) as a simreal dataset with sequence groups.

    Args:
        src: the data set folder.
        out_dir: the new dataset folder (must not exist).
        size: resize to (height, width) or a square side; None keeps the stored size.
        progress: called with (samples done, total) after each sample.

    Returns:
        ``out_dir``. Records: id ``"0012"``, group ``"seq01"`` (the study: ``"seq23-24"`` for sequences 23
        and 24), source = original file, params ``{"frame": 12, "sequence": "seq01"}``.

    Raises:
        SimrealError: missing / empty folders, image / mask mismatch, a file name that is not a frame
            number in 1..612, a corrupt JPEG, a mask that is not binary.
    """
    return _import_polyps(src, out_dir, size=size, dataset="cvc", progress=progress)


def import_kvasir(
    src: str | Path, out_dir: str | Path, *, size: int | tuple[int, int] | None = None, progress: Progress | None = None
) -> Path:
    """Write Kvasir-SEG (``SRC/images``, ``SRC/masks``) as a simreal dataset (no sequence groups).

    Kvasir-SEG images vary in size: pass ``size`` to get one common size. ``progress`` as in :func:`import_cvc`.
    """
    return _import_polyps(src, out_dir, size=size, dataset="kvasir", progress=progress)
