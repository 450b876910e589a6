"""Label volumes in the layouts the real CT collections use, on the CT's voxel grid.

:func:`read_label_volume` accepts what ``simreal synth prepare --labels`` is given:

* a NIfTI file (``.nii`` / ``.nii.gz``): a label volume of class ids (TotalSegmentator: ``liver = 5``);
* a DICOM series folder whose slices are masks (3D-IRCADb ``MASKS_DICOM/liver``: one DICOM file per CT
  slice with the same ImagePositionPatient, 0 = background, 255 = liver);
* a folder of per-slice PNG masks (CHAOS ``Ground/liver_GT_NNN.png``: non-zero = liver, one file per CT
  slice). They carry no position, so they are paired with the CT's DICOM files by file-name order: the
  n-th PNG (natural sort) belongs to the n-th DICOM file (natural sort). This needs the CT as a DICOM
  series, and the same number of PNGs as slices; each PNG is the slice as stored (rows, columns of the
  DICOM pixel data), which is how CHAOS ships them.

Example (the collections in ``shared/data``)::

    read_label_volume("ircadb_ct_liver/patient1/MASKS_DICOM/liver", read_volume("ircadb_ct_liver/patient1/PATIENT_DICOM"))
    read_label_volume("chaos_ct_liver/Ground", read_volume("chaos_ct_liver/DICOM_anon"))
    read_label_volume("totalsegmentator_ct/example_seg_dicom.nii.gz", read_volume("totalsegmentator_ct/example_ct_dicom"))
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from simreal.data import images
from simreal.data.volumes import Volume, read_volume
from simreal.errors import SimrealError

__all__ = ["natural_key", "png_mask_files", "read_label_volume", "read_png_mask_series"]


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``image_9`` before ``image_10``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name))


def png_mask_files(folder: Path) -> list[Path]:
    """The ``*.png`` files of a folder (not hidden), in natural file-name order."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".png" and not p.name.startswith(".")),
        key=lambda p: natural_key(p.name),
    )


def read_png_mask_series(folder: str | Path, ct: Volume) -> Volume:
    """Per-slice PNG masks (one per CT slice, paired by file-name order) as a label volume on the CT grid.

    Args:
        folder: the PNG folder.
        ct: the CT, read from a DICOM series (:func:`~simreal.data.volumes.read_volume` records each slice's
            file in ``slice_files``).

    Returns:
        A :class:`~simreal.data.volumes.Volume` with the CT's affine and shape; values are the PNGs' grey
        values (e.g. 0/1 or 0/255).

    Raises:
        SimrealError: the CT is not a DICOM series, the numbers of PNGs and slices differ, or a PNG is
            unreadable or of another size than the slices (each names the file).
    """
    folder = Path(folder)
    if ct.slice_files is None:
        raise SimrealError(
            "per-slice PNG masks are paired with the CT's DICOM files by file-name order, so the CT must be a "
            f"DICOM series folder (got {ct.path})",
            folder,
        )
    pngs = png_mask_files(folder)
    if not pngs:
        raise SimrealError("folder holds no PNG masks", folder)
    dicoms = sorted(ct.slice_files, key=lambda p: natural_key(p.name))
    if len(pngs) != len(dicoms):
        raise SimrealError(f"{len(pngs)} PNG masks for {len(dicoms)} CT slices in {ct.path}: they must pair one to one", folder)
    slot = {p: k for k, p in enumerate(ct.slice_files)}
    cols, rows = ct.shape[0], ct.shape[1]  # the CT array is [column, row, slice]
    array = np.zeros(ct.shape, np.float32)
    for png, dcm in zip(pngs, dicoms):
        mask = images.read_gray(png)
        if mask.shape != (rows, cols):
            raise SimrealError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the CT slice {dcm.name} is {cols}x{rows}", png)
        array[:, :, slot[dcm]] = mask.T
    return Volume(array=array, affine=ct.affine.copy(), path=folder, slice_files=tuple(pngs[dicoms.index(f)] for f in ct.slice_files))


def _is_png_folder(folder: Path) -> bool:
    return any(p.suffix.lower() == ".png" for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def read_label_volume(path: str | Path, ct: Volume) -> Volume:
    """Read the labels of ``ct`` from a NIfTI file, a DICOM mask series or a folder of per-slice PNG masks.

    The result is not yet checked against the CT's grid for NIfTI and DICOM input (the caller compares
    them with :func:`~simreal.data.volumes.same_grid`); PNG masks are placed on the CT's grid.

    Raises:
        SimrealError: a missing or unreadable label source (named).
    """
    path = Path(path)
    if not path.exists():
        raise SimrealError("label volume not found", path)
    if path.is_dir() and _is_png_folder(path):
        return read_png_mask_series(path, ct)
    return read_volume(path)
