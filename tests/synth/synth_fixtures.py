"""Tiny CT phantoms made in code, written as DICOM series, NIfTI (any axis order) and per-slice PNG masks.

The phantom lives in array axes (L, P, S): ``hu[i, j, k]`` with i towards the patient's left, j towards
posterior, k towards superior (as an axial DICOM series is stored).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from simreal.data.volumes import LPS_TO_RAS, Volume, reorient

SPACING = (0.8, 0.7, 2.0)  # column (i), row (j), slice (k) mm: distinct so a swapped axis shows
ORIGIN_LPS = np.array([-12.0, -10.0, 30.0])


def phantom(shape=(32, 28, 24)) -> tuple[np.ndarray, np.ndarray]:
    """(hu, labels) in (L, P, S) axes: air, a body ellipse (40 HU), an 'organ' (label 5, 120 HU) on the
    patient's right and a bright marker (600 HU, label 9) anterior-left in the upper slices."""
    x, y, z = shape
    i, j, k = np.meshgrid(np.arange(x), np.arange(y), np.arange(z), indexing="ij")
    hu = np.full(shape, -1000.0, np.float32)
    body = ((i - x / 2) / (0.45 * x)) ** 2 + ((j - y / 2) / (0.42 * y)) ** 2 <= 1
    hu[body] = 40.0
    labels = np.zeros(shape, np.uint8)
    organ = (((i - 0.3 * x) / (0.15 * x)) ** 2 + ((j - 0.5 * y) / (0.2 * y)) ** 2 <= 1) & (k >= 4) & (k <= z - 6)
    hu[organ] = 120.0 + k[organ]  # varies with k: a slice taken from the wrong z shows
    labels[organ] = 5
    marker = (i >= int(0.6 * x)) & (i < int(0.7 * x)) & (j >= int(0.15 * y)) & (j < int(0.25 * y)) & (k >= z // 2)
    hu[marker] = 600.0
    labels[marker] = 9
    return hu, labels


def lps_affine(spacing=SPACING, origin=ORIGIN_LPS) -> np.ndarray:
    """RAS affine of an (L, P, S)-stored grid, as :func:`simreal.data.volumes.read_volume` gives for DICOM."""
    lps = np.eye(4)
    lps[:3, :3] = np.diag(spacing)
    lps[:3, 3] = origin
    return LPS_TO_RAS @ lps


def write_dicom_series(
    folder: Path,
    array: np.ndarray,
    *,
    spacing=SPACING,
    origin=ORIGIN_LPS,
    skip: tuple[int, ...] = (),
    names: str = "reverse",
    iop=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    shear_mm: float = 0.0,
) -> list[Path]:
    """Write an (L, P, S) array as an axial DICOM series (slope 1, intercept -1024, 16-bit).

    ``names="reverse"`` numbers the files from the top slice down (feet-first order, like many scanners),
    so file-name order is not position order. ``skip`` leaves slices out (a gap); ``shear_mm`` shifts
    each slice's y position by k * shear (gantry tilt).
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    n = array.shape[2]
    paths = []
    for k in range(n):
        if k in skip:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID = series_uid
        ds.Modality = "CT"
        raw = (np.rint(array[:, :, k].T) + 1024).astype(np.uint16)  # rows = j, columns = i
        ds.Rows, ds.Columns = raw.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 0
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelSpacing = [spacing[1], spacing[0]]  # [row spacing, column spacing]
        ds.ImageOrientationPatient = list(iop)
        ds.ImagePositionPatient = (np.asarray(origin) + [0.0, shear_mm * k, spacing[2] * k]).tolist()
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = raw.tobytes()
        number = n - 1 - k if names == "reverse" else k
        path = folder / f"IM{number:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_nifti(path: Path, array: np.ndarray, axcodes=("R", "A", "S"), *, spacing=SPACING, dtype=np.int16, codes: int = 1) -> Path:
    """Write an (L, P, S) array as NIfTI stored in another axis order (``axcodes``); ``codes=0`` leaves
    qform_code and sform_code at 0 (no orientation)."""
    vol = reorient(Volume(array.astype(np.float32), lps_affine(spacing)), axcodes)
    img = nib.Nifti1Image(vol.array.astype(dtype), vol.affine)
    img.set_sform(vol.affine, code=codes)
    img.set_qform(vol.affine, code=codes)
    nib.save(img, path)
    return path


def write_png_masks(folder: Path, labels: np.ndarray, dicom_files: list[Path]) -> list[Path]:
    """One PNG per DICOM slice file (CHAOS layout): ``mask_NNN.png`` in the DICOM files' name order, each
    the slice as stored (rows = j, columns = i): 255 where the label is 5 (the organ), else 0."""
    folder.mkdir(parents=True, exist_ok=True)
    by_name = sorted(dicom_files, key=lambda p: p.name)
    out = []
    for n, f in enumerate(by_name):
        k = int(round((float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) - ORIGIN_LPS[2]) / SPACING[2]))
        png = folder / f"mask_{n:03d}.png"
        Image.fromarray(((labels[:, :, k].T == 5) * 255).astype(np.uint8)).save(png)
        out.append(png)
    return out
