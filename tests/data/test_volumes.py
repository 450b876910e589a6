"""Reading CT volumes: NIfTI and DICOM series, HU, affines (LPS -> RAS), and clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from simreal.data.volumes import Volume, read_volume, reorient_like, same_grid
from simreal.errors import SimrealError

ROW_SP, COL_SP, SLICE_SP = 0.7, 0.6, 2.5  # distinct so a swapped axis shows
ORIGIN_LPS = np.array([-100.0, -80.0, 40.0])


def _raw_slices(n=4, rows=5, cols=6):
    # Stored values 0..; HU = 2 * stored - 1024.
    return [np.arange(rows * cols, dtype=np.uint16).reshape(rows, cols) + 100 * k for k in range(n)]


def write_series(folder: Path, n=4, series_uid=None, shuffle=True) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    paths = []
    order = [2, 0, 3, 1][:n] if shuffle and n == 4 else list(range(n))
    for k, raw in enumerate(_raw_slices(n)):
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
        ds.Rows, ds.Columns = raw.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 0
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelSpacing = [ROW_SP, COL_SP]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        # Slices go towards the feet (decreasing z) in acquisition order, like many scanners.
        ds.ImagePositionPatient = (ORIGIN_LPS + [0.0, 0.0, -SLICE_SP * k]).tolist()
        ds.InstanceNumber = k + 1
        ds.RescaleSlope, ds.RescaleIntercept = 2, -1024
        ds.PixelData = raw.tobytes()
        path = folder / f"IM{order[k]:03d}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_dicom_series_hu_and_affine(tmp_path):
    write_series(tmp_path / "s")
    vol = read_volume(tmp_path / "s")
    raw = _raw_slices()
    assert vol.shape == (6, 5, 4) and vol.array.dtype == np.float32
    # Sorted along the slice normal: k = 0 is the most inferior slice (the last acquired).
    for k in range(4):
        np.testing.assert_array_equal(vol.array[:, :, k], (2.0 * raw[3 - k].astype(np.float32) - 1024.0).T)
    # Voxel (i=col, j=row, k) -> LPS = origin + i*COL_SP x + j*ROW_SP y + slice offset; RAS negates x, y.
    i, j, k = 5, 3, 1
    lps = ORIGIN_LPS + [i * COL_SP, j * ROW_SP, -SLICE_SP * (3 - k)]
    ras = lps * [-1, -1, 1]
    np.testing.assert_allclose(vol.affine @ [i, j, k, 1], [*ras, 1], atol=1e-6)
    np.testing.assert_allclose(vol.spacing_mm, [COL_SP, ROW_SP, SLICE_SP], atol=1e-6)


def test_dicom_errors_name_the_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimrealError, match="no DICOM files") as err:
        read_volume(tmp_path / "empty")
    assert err.value.path == tmp_path / "empty"

    paths = write_series(tmp_path / "trunc")
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) - 20])  # pixel data cut short
    with pytest.raises(SimrealError) as err:
        read_volume(tmp_path / "trunc")
    assert err.value.path == paths[1]

    write_series(tmp_path / "mixed")
    write_series(tmp_path / "other")
    for p in (tmp_path / "other").iterdir():
        p.rename(tmp_path / "mixed" / ("B" + p.name))
    with pytest.raises(SimrealError, match="mixes 2 DICOM series"):
        read_volume(tmp_path / "mixed")

    paths = write_series(tmp_path / "junk")
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    with pytest.raises(SimrealError, match="not a DICOM file") as err:
        read_volume(tmp_path / "junk")
    assert err.value.path.name == "notes.txt"

    write_series(tmp_path / "one", n=1)
    with pytest.raises(SimrealError, match="at least 2 slices"):
        read_volume(tmp_path / "one")


def test_nifti_roundtrip_and_errors(tmp_path):
    arr = np.random.default_rng(0).integers(-1000, 1000, (7, 6, 5)).astype(np.int16)
    affine = np.array([[-0.8, 0, 0, 10], [0, 0.8, 0, -20], [0, 0, 3.0, 5], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(arr, affine), tmp_path / "ct.nii.gz")
    vol = read_volume(tmp_path / "ct.nii.gz")
    np.testing.assert_array_equal(vol.array, arr.astype(np.float32))
    np.testing.assert_allclose(vol.affine, affine, atol=1e-6)

    raw = (tmp_path / "ct.nii.gz").read_bytes()
    (tmp_path / "trunc.nii.gz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "junk.nii.gz").write_bytes(gzip.compress(b"not a nifti header" * 30))
    (tmp_path / "junk.nii").write_bytes(b"\x00" * 10)
    for name in ("trunc.nii.gz", "junk.nii.gz", "junk.nii", "missing.nii.gz"):
        with pytest.raises(SimrealError) as err:
            read_volume(tmp_path / name)
        assert err.value.path == tmp_path / name, name

    nib.save(nib.Nifti1Image(np.zeros((4, 4), np.float32), np.eye(4)), tmp_path / "flat.nii")
    with pytest.raises(SimrealError, match="not a 3-D volume"):
        read_volume(tmp_path / "flat.nii")
    bad = np.zeros((3, 3, 3), np.float32)
    bad[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(bad, np.eye(4)), tmp_path / "nan.nii")
    with pytest.raises(SimrealError, match="NaN"):
        read_volume(tmp_path / "nan.nii")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SimrealError, match="unsupported"):
        read_volume(tmp_path / "notes.txt")


def test_same_grid_and_reorient():
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    affine = np.diag([1.0, 2.0, 3.0, 1.0])
    a = Volume(arr, affine)
    # The same grid stored with j flipped (as a LAS NIfTI of an LPS DICOM series).
    flip = affine.copy()
    flip[:3, 1] *= -1
    flip[:3, 3] = affine[:3, :3] @ [0, 2, 0]
    b = Volume(arr[:, ::-1].copy(), flip)
    assert same_grid(a, b)
    back = reorient_like(b, a)
    np.testing.assert_array_equal(back.array, arr)
    np.testing.assert_allclose(back.affine, affine)
    shifted = Volume(arr, affine + np.pad(np.array([[0, 0, 0, 5.0]]), ((0, 3), (0, 0))))
    assert not same_grid(a, shifted)
    with pytest.raises(SimrealError, match="same voxel grid"):
        reorient_like(shifted, a)


def test_dicom_gap_is_reported_as_missing_slices_and_files_follow_slices(tmp_path):
    paths = write_series(tmp_path / "s", n=6, shuffle=False)
    vol = read_volume(tmp_path / "s")
    # Slices go towards the feet in acquisition order, so array slice k = 0 is the last file written.
    assert vol.slice_files == tuple(reversed(paths))
    paths[2].unlink()  # slice 3 of 6 lost: a 5 mm step among 2.5 mm ones
    with pytest.raises(SimrealError, match="missing slice") as err:
        read_volume(tmp_path / "s")
    assert err.value.path == tmp_path / "s" and paths[1].name in str(err.value) and paths[3].name in str(err.value)


def test_nifti_without_orientation_is_flagged(tmp_path):
    arr = np.zeros((3, 4, 5), np.int16)
    nib.save(nib.Nifti1Image(arr, np.diag([2.0, 2.0, 3.0, 1.0])), tmp_path / "ok.nii")
    none = nib.Nifti1Image(arr, None)  # no affine: qform_code = sform_code = 0
    nib.save(none, tmp_path / "none.nii")
    assert read_volume(tmp_path / "ok.nii").orientation_known
    assert not read_volume(tmp_path / "none.nii").orientation_known


def test_reorient_to_axis_codes_and_obliquity():
    from simreal.data.volumes import obliquity_deg, reorient

    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    ras = Volume(arr, np.diag([1.0, 2.0, 3.0, 1.0]), slice_files=tuple(Path(f"f{k}") for k in range(4)))
    lps = reorient(ras, ("L", "P", "S"))
    np.testing.assert_array_equal(lps.array, arr[::-1, ::-1, :])
    for idx in ((0, 0, 0), (1, 2, 3)):  # the same voxel lands at the same world point
        src = np.array([1 - idx[0], 2 - idx[1], idx[2], 1.0])
        np.testing.assert_allclose(lps.affine @ [*idx, 1.0], ras.affine @ src)
    assert lps.slice_files == ras.slice_files
    down = reorient(ras, "RAI")
    assert down.slice_files == tuple(reversed(ras.slice_files))
    assert reorient(ras, ("S", "R", "A")).slice_files is None  # the slice axis moved: no file per slice
    with pytest.raises(SimrealError, match="axis codes"):
        reorient(ras, ("L", "L", "S"))
    assert obliquity_deg(ras.affine) == pytest.approx(0.0)
    c, s = np.cos(np.radians(7)), np.sin(np.radians(7))
    tilted = np.eye(4)
    tilted[:2, :2] = [[c, -s], [s, c]]
    assert obliquity_deg(tilted) == pytest.approx(7.0)
