"""Read CT (or label) volumes from NIfTI files and DICOM series into one array + affine.

A :class:`Volume` holds a (X, Y, Z) float32 array and the 4x4 affine that maps voxel indices
``(i, j, k, 1)`` to world millimetres in RAS+ (as NIfTI / nibabel): +x towards the patient's Right,
+y Anterior, +z Superior. DICOM stores LPS+ (+x Left, +y Posterior), so a DICOM series' affine is
converted with ``x_RAS = -x_LPS, y_RAS = -y_LPS``. Arrays are kept in their stored axis order (not
reoriented); the affine says how they lie. :func:`reorient` brings a volume to a named axis order (e.g.
``("L", "P", "S")``, DICOM's usual storage) and :func:`obliquity_deg` says how far its axes are from the
patient axes.

Example:
    >>> vol = read_volume("ct.nii.gz")            # doctest: +SKIP
    >>> vol.array.shape, vol.spacing_mm           # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simreal.errors import SimrealError

#: DICOM (LPS) -> NIfTI (RAS) world coordinates: negate x and y.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Volume:
    """A 3-D image on a voxel grid.

    Attributes:
        array: (X, Y, Z) float32 voxel values (HU for CT, class ids for label volumes).
        affine: (4, 4) float64 voxel index -> world mm (RAS).
        path: the file or DICOM folder it was read from.
        slice_files: for a DICOM series, the file of each slice in array order along the third axis
            (``slice_files[k]`` holds ``array[:, :, k]``); None otherwise.
        orientation_known: False when the file carries no orientation (a NIfTI whose qform_code and
            sform_code are both 0: nibabel then makes up an affine from the voxel sizes alone).
    """

    array: np.ndarray
    affine: np.ndarray
    path: Path | None = None
    slice_files: tuple[Path, ...] | None = None
    orientation_known: bool = True

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> np.ndarray:
        """(3,) voxel size along each array axis, mm."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    def world_corners(self) -> np.ndarray:
        """(8, 3) world positions (mm) of the centres of the grid's 8 corner voxels."""
        idx = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.float64)
        idx *= np.array(self.shape, dtype=np.float64) - 1.0
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]


def same_grid(a: Volume, b: Volume, tol_mm: float | None = None) -> bool:
    """True if two volumes sample the same world grid, up to flipped axes (e.g. LPS- vs RAS-stored data).

    Compares shapes, voxel sizes and the set of corner-voxel positions; ``tol_mm`` defaults to half the
    smallest voxel.
    """
    if a.shape != b.shape or not np.allclose(np.sort(a.spacing_mm), np.sort(b.spacing_mm), rtol=1e-3, atol=1e-3):
        return False
    tol = 0.5 * float(min(a.spacing_mm.min(), b.spacing_mm.min())) if tol_mm is None else tol_mm
    ca, cb = a.world_corners(), b.world_corners()
    dist = np.linalg.norm(ca[:, None] - cb[None], axis=-1)
    return bool((dist.min(axis=1) <= tol).all() and (dist.min(axis=0) <= tol).all())


def read_volume(path: str | Path) -> Volume:
    """Read a NIfTI file (``.nii`` / ``.nii.gz``) or a DICOM series (a folder of slice files).

    Args:
        path: the file or folder.

    Returns:
        The volume; DICOM values are rescaled to HU with RescaleSlope / RescaleIntercept.

    Raises:
        SimrealError: missing, corrupt or truncated files, empty folders, mixed series, non-volume data;
            the message names the offending file.
    """
    path = Path(path)
    if path.is_dir():
        return _read_dicom_series(path)
    if not path.exists():
        raise SimrealError("volume not found", path)
    name = path.name.lower()
    if name.endswith(".nii") or name.endswith(".nii.gz"):
        return _read_nifti(path)
    if name.endswith(".dcm"):
        raise SimrealError("a single DICOM file is not a volume: pass the folder holding the whole series", path)
    raise SimrealError("unsupported volume format (expected .nii, .nii.gz or a DICOM series folder)", path)


def _read_nifti(path: Path) -> Volume:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
        affine = np.asarray(img.affine, dtype=np.float64)
    except Exception as exc:  # nibabel raises many types for damaged files (ImageFileError, EOFError, zlib.error)
        raise SimrealError(f"cannot read NIfTI ({exc.__class__.__name__}: {exc})", path) from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3 or min(data.shape) < 1:
        raise SimrealError(f"not a 3-D volume (array shape {data.shape})", path)
    if not np.isfinite(data).all():
        raise SimrealError("volume holds NaN/inf values", path)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise SimrealError("volume has an invalid (singular) affine", path)
    header = img.header
    try:
        codes = (int(header["qform_code"]), int(header["sform_code"]))
    except (KeyError, TypeError, ValueError):  # a format without the codes (e.g. Analyze): orientation unknown
        codes = (0, 0)
    return Volume(array=np.ascontiguousarray(data), affine=affine, path=path, orientation_known=codes != (0, 0))


def _dicom_float(ds, key: str, path: Path, count: int | None = None):
    value = ds.get(key)
    if value is None:
        raise SimrealError(f"DICOM slice lacks {key} (not part of an image volume)", path)
    try:
        out = [float(x) for x in value] if count is not None else float(value)
    except (TypeError, ValueError):
        raise SimrealError(f"DICOM {key} is not numeric: {value!r}", path) from None
    if count is not None and len(out) != count:
        raise SimrealError(f"DICOM {key} must have {count} values, got {len(out)}", path)
    return out


def _read_dicom_series(folder: Path) -> Volume:
    import pydicom
    from pydicom.errors import InvalidDicomError

    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name != "DICOMDIR")
    if not files:
        raise SimrealError("folder holds no DICOM files", folder)
    slices = []
    for f in files:
        try:
            ds = pydicom.dcmread(str(f))
        except InvalidDicomError:
            raise SimrealError("not a DICOM file", f) from None
        except Exception as exc:
            raise SimrealError(f"cannot read DICOM ({exc.__class__.__name__}: {exc})", f) from None
        if "PixelData" not in ds:
            raise SimrealError("DICOM file holds no image (no PixelData)", f)
        ipp = np.array(_dicom_float(ds, "ImagePositionPatient", f, 3))
        iop = np.array(_dicom_float(ds, "ImageOrientationPatient", f, 6))
        spacing = _dicom_float(ds, "PixelSpacing", f, 2)
        try:
            pixels = ds.pixel_array
        except Exception as exc:  # truncated or undecodable pixel data
            raise SimrealError(f"cannot decode pixel data ({exc.__class__.__name__}: {exc})", f) from None
        if pixels.ndim != 2:
            raise SimrealError(f"expected one 2-D slice per file, got pixel array {pixels.shape}", f)
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        hu = pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)
        slices.append((f, str(ds.get("SeriesInstanceUID", "")), ipp, iop, spacing, hu))

    series = sorted({s[1] for s in slices})
    if len(series) > 1:
        raise SimrealError(f"folder mixes {len(series)} DICOM series ({', '.join(series)}); give one series per folder", folder)
    f0, _, _, iop0, spacing0, hu0 = slices[0]
    for f, _, _, iop, spacing, hu in slices[1:]:
        if not np.allclose(iop, iop0, atol=1e-4) or not np.allclose(spacing, spacing0, rtol=1e-4):
            raise SimrealError(f"slice orientation or pixel spacing differs from {f0.name}", f)
        if hu.shape != hu0.shape:
            raise SimrealError(f"slice size {hu.shape} differs from {f0.name} {hu0.shape}", f)
    if len(slices) < 2:
        raise SimrealError("a DICOM series needs at least 2 slices to form a volume", folder)
    row_dir, col_dir = iop0[:3], iop0[3:]  # directions of increasing column index and increasing row index
    normal = np.cross(row_dir, col_dir)
    if np.linalg.norm(normal) < 0.5:
        raise SimrealError(f"invalid ImageOrientationPatient {iop0.tolist()}", f0)
    slices.sort(key=lambda s: float(s[2] @ normal))
    positions = np.array([s[2] for s in slices])
    along = positions @ normal
    steps = np.diff(along)
    if (steps < 1e-3).any():
        dup = slices[int(np.argmin(steps)) + 1][0]
        raise SimrealError("two slices share one position (duplicate or mixed series)", dup)
    smallest = float(steps.min())
    if (steps > 1.5 * smallest).any():  # a step of about twice (or more) the others: slices are missing
        g = int(np.argmax(steps > 1.5 * smallest))
        missing = max(1, int(round(steps[g] / smallest)) - 1)
        raise SimrealError(
            f"missing slice(s): {steps[g]:.3f} mm between {slices[g][0].name} and {slices[g + 1][0].name} where "
            f"slices are {smallest:.3f} mm apart (about {missing} missing)",
            folder,
        )
    if (np.abs(steps - steps.mean()) > 0.01 * steps.mean() + 1e-3).any():
        raise SimrealError(f"slice spacing is not uniform ({steps.min():.3f}-{steps.max():.3f} mm)", folder)
    step_vec = (positions[-1] - positions[0]) / (len(slices) - 1)
    lps = np.eye(4)
    # Array axes: i = column index (along row_dir), j = row index (along col_dir), k = slice.
    lps[:3, 0] = row_dir * spacing0[1]
    lps[:3, 1] = col_dir * spacing0[0]
    lps[:3, 2] = step_vec
    lps[:3, 3] = positions[0]
    # pixel_array is [row, column]; transpose to [column, row] = [i, j].
    array = np.stack([s[5].T for s in slices], axis=2)
    return Volume(
        array=np.ascontiguousarray(array, dtype=np.float32),
        affine=LPS_TO_RAS @ lps,
        path=folder,
        slice_files=tuple(s[0] for s in slices),
    )


def reorient_like(vol: Volume, ref: Volume) -> Volume:
    """Flip / permute ``vol``'s axes so its array lies like ``ref``'s (same world grid assumed).

    Needed when, e.g., a DICOM series (stored LPS) and a NIfTI segmentation of it (stored LAS) share a grid
    but not an axis order: afterwards ``vol.array[i, j, k]`` and ``ref.array[i, j, k]`` are the same voxel.

    Raises:
        SimrealError: if the two volumes do not sample the same world grid.
    """
    from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform

    if not same_grid(vol, ref):
        raise SimrealError(f"volume does not lie on the same voxel grid as {ref.path}", vol.path)
    transform = ornt_transform(io_orientation(vol.affine), io_orientation(ref.affine))
    array = apply_orientation(vol.array, transform)
    affine = vol.affine @ inv_ornt_aff(transform, vol.array.shape)
    return Volume(array=np.ascontiguousarray(array, dtype=np.float32), affine=affine, path=vol.path)


def obliquity_deg(affine: np.ndarray) -> float:
    """The largest angle (degrees) between a voxel axis and the patient axis nearest to it.

    0 for a grid aligned with the patient axes (any order or flips); a gantry-tilted or oblique
    acquisition gives the tilt. Non-orthogonal axes (damaged orientation) show as a large angle too.

    Args:
        affine: (4, 4) voxel index -> world mm.
    """
    cols = np.asarray(affine, dtype=np.float64)[:3, :3]
    unit = cols / np.linalg.norm(cols, axis=0, keepdims=True)
    cosines = np.clip(np.abs(unit).max(axis=0), 0.0, 1.0)
    return float(np.degrees(np.arccos(cosines)).max())


def reorient(vol: Volume, axcodes: tuple[str, str, str] | str = ("L", "P", "S")) -> Volume:
    """Flip / permute ``vol``'s axes so that array axis n points towards ``axcodes[n]``.

    ``axcodes`` letters are RAS-world directions as nibabel names them ("L"/"R", "P"/"A", "I"/"S"); the
    default ``("L", "P", "S")`` is the usual axial DICOM storage: i (column) towards the patient's Left,
    j (row) towards Posterior, k (slice) towards Superior, so ``array[:, :, k].T`` is the slice as a
    radiologist views it (rows anterior -> posterior, columns patient right -> left). Values are not
    resampled (an oblique grid is assigned to its nearest axes: check :func:`obliquity_deg` first).

    Returns:
        A new :class:`Volume` with the reordered array, the matching affine and, when the slice axis stays
        the third axis, ``slice_files`` in the new slice order.
    """
    from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

    codes = tuple(str(c).upper() for c in axcodes)
    axis_of = {"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}
    if len(codes) != 3 or any(c not in axis_of for c in codes) or len({axis_of[c] for c in codes}) != 3:
        raise SimrealError(f"axis codes must name three different axes (R/L, A/P, S/I), got {tuple(axcodes)!r}")
    target = axcodes2ornt(codes)
    transform = ornt_transform(io_orientation(vol.affine), target)
    array = apply_orientation(vol.array, transform)
    affine = vol.affine @ inv_ornt_aff(transform, vol.array.shape)
    files = None
    if vol.slice_files is not None and int(transform[2, 0]) == 2:
        files = tuple(vol.slice_files) if transform[2, 1] > 0 else tuple(reversed(vol.slice_files))
    return Volume(
        array=np.ascontiguousarray(array, dtype=np.float32),
        affine=affine,
        path=vol.path,
        slice_files=files,
        orientation_known=vol.orientation_known,
    )
