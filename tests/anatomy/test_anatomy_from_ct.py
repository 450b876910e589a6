"""Anatomy from CT: the label surface of a synthetic tube phantom, label resolution, errors, and the real
TotalSegmentator example (label and lumen surfaces). The lumen on a synthetic CT phantom: test_anatomy_lumen.py."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import trimesh
from scipy import ndimage

from simreal.anatomy.from_ct import load_label_map, mask_surface, mesh_from_ct, resolve_label
from simreal.anatomy.lumen import sample_trilinear
from simreal.data.volumes import read_volume
from simreal.errors import SimrealError
from simreal_testing import SHARED_DATA

SHARED = SHARED_DATA / "totalsegmentator_ct"
needs_data = pytest.mark.skipif(
    not SHARED.is_dir(), reason="needs ../shared/data/totalsegmentator_ct beside the checkout (real TotalSegmentator CT)"
)
RADIUS_MM = 6.0
SPACING = np.array([0.8, 0.9, 1.5])
ORIGIN = np.array([12.0, -30.0, 100.0])


def tube_phantom(flip_x: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Label volume (ids: 20 = colon tube along z, radius 6 mm; 5 = a small block) and its affine."""
    shape = (24, 22, 40)
    idx = np.indices(shape).astype(np.float64)
    axis_vox = np.array([11.5, 10.5])
    r = np.hypot((idx[0] - axis_vox[0]) * SPACING[0], (idx[1] - axis_vox[1]) * SPACING[1])
    labels = np.zeros(shape, np.uint8)
    labels[(r <= RADIUS_MM) & (idx[2] >= 4) & (idx[2] < 36)] = 20
    labels[:3, :3, :3] = 5
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = ORIGIN
    if flip_x:  # the same world grid stored mirrored along i (negative determinant)
        labels = labels[::-1].copy()
        affine[:3, 0] *= -1
        affine[:3, 3] = ORIGIN + [(shape[0] - 1) * SPACING[0], 0, 0]
    return labels, affine


def write_pair(folder: Path, flip_x: bool = False) -> tuple[Path, Path]:
    labels, affine = tube_phantom(flip_x)
    ct = np.where(labels == 20, -800, 40).astype(np.int16)
    folder.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(ct, affine), folder / "ct.nii.gz")
    nib.save(nib.Nifti1Image(labels, affine), folder / "seg.nii.gz")
    return folder / "ct.nii.gz", folder / "seg.nii.gz"


def _axis_world() -> np.ndarray:
    return ORIGIN[:2] + np.array([11.5, 10.5]) * SPACING[:2]


def _inside_mask(points: np.ndarray, labels: np.ndarray, affine: np.ndarray, label: int) -> np.ndarray:
    vox = np.round((points - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T).astype(int)
    ok = ((vox >= 0) & (vox < labels.shape)).all(axis=1)
    inside = np.zeros(len(points), bool)
    inside[ok] = labels[tuple(vox[ok].T)] == label
    return inside


@pytest.mark.parametrize("flip_x", [False, True])
def test_tube_phantom_surface_and_centerline(tmp_path, flip_x):
    ct, seg = write_pair(tmp_path, flip_x)
    mesh = mesh_from_ct(ct, seg, "colon", surface="label", smooth_iterations=5)
    assert mesh.metadata["generator"] == "ct-surface" and mesh.metadata["label_id"] == 20
    assert mesh.metadata["surface"] == "label"
    assert mesh.metadata["mean_hu_in_label"] == pytest.approx(-800.0)  # CT and labels aligned
    v = mesh.vertices.astype(np.float64)
    z_lo, z_hi = ORIGIN[2] + 4 * SPACING[2], ORIGIN[2] + 35 * SPACING[2]
    side = (v[:, 2] > z_lo + 3) & (v[:, 2] < z_hi - 3)
    r = np.hypot(*(v[side, :2] - _axis_world()).T)
    # The surface sits at the tube wall in world mm, within a voxel.
    assert np.abs(r - RADIUS_MM).max() < SPACING.max()
    assert abs(np.median(r) - RADIUS_MM) < 0.5
    assert v[:, 2].min() > z_lo - SPACING[2] * 1.01 and v[:, 2].max() < z_hi + SPACING[2] * 1.01
    # Normals point into the structure: the closed surface has negative signed volume.
    tm = trimesh.Trimesh(v, mesh.faces, process=False)
    assert tm.is_watertight and tm.volume < 0
    assert abs(abs(tm.volume) - np.pi * RADIUS_MM**2 * 32 * SPACING[2]) / abs(tm.volume) < 0.15
    # The centerline runs along the axis, inside the mask, with radius ~ 6 mm from the distance map.
    labels, affine = tube_phantom(flip_x)
    assert _inside_mask(mesh.centerline, labels, affine, 20).all()
    assert np.hypot(*(mesh.centerline[:, :2] - _axis_world()).T).max() < 1.0
    length = np.linalg.norm(np.diff(mesh.centerline, axis=0), axis=1).sum()
    assert 20.0 < length < 32 * SPACING[2] + 1.0
    mid = slice(len(mesh.centerline) // 4, 3 * len(mesh.centerline) // 4)
    assert np.abs(mesh.centerline_radius[mid] - RADIUS_MM).max() < SPACING.max()


def test_mask_surface_winding_and_label_map(tmp_path):
    g = np.indices((16, 16, 16)).transpose(1, 2, 3, 0)
    ball = np.linalg.norm(g - 7.5, axis=-1) < 5
    for aff in (np.eye(4), np.diag([-1.0, 1.0, 1.0, 1.0])):
        v, f = mask_surface(ball, aff, 0)
        assert trimesh.Trimesh(v, f, process=False).volume < 0
    names = load_label_map()
    assert names[20] == "colon" and names[5] == "liver"
    assert resolve_label("Colon", names) == (20, "colon")
    assert resolve_label("urinary bladder", names) == (21, "urinary_bladder")
    assert resolve_label("20", names) == (20, "colon")
    with pytest.raises(SimrealError, match="kidney_left"):
        resolve_label("kidney", names)
    (tmp_path / "map.json").write_text('{"3": "tube"}')
    assert load_label_map(tmp_path / "map.json") == {3: "tube"}
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(SimrealError) as err:
        load_label_map(tmp_path / "bad.json")
    assert err.value.path == tmp_path / "bad.json"


def test_from_ct_errors_name_files(tmp_path):
    ct, seg = write_pair(tmp_path)
    with pytest.raises(SimrealError, match="unknown label 'colonn'.*colon") as err:
        mesh_from_ct(ct, seg, "colonn")
    assert err.value.path is not None and err.value.path.name.endswith(".json")
    with pytest.raises(SimrealError, match=r"not present.*colon \(20\)") as err:
        mesh_from_ct(ct, seg, "spleen")
    assert err.value.path == seg
    other = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.int16), np.eye(4)), other)
    with pytest.raises(SimrealError, match="shape") as err:
        mesh_from_ct(other, seg, "colon")
    assert err.value.path == seg and str(other) in str(err.value)
    labels, affine = tube_phantom()
    moved = affine.copy()
    moved[:3, 3] += 50.0
    nib.save(nib.Nifti1Image(labels, moved), tmp_path / "moved.nii.gz")
    with pytest.raises(SimrealError, match="voxel grid"):
        mesh_from_ct(ct, tmp_path / "moved.nii.gz", "colon")
    (tmp_path / "broken.nii.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(SimrealError) as err:
        mesh_from_ct(tmp_path / "broken.nii.gz", seg, "colon")
    assert err.value.path == tmp_path / "broken.nii.gz"


@needs_data
def test_real_totalsegmentator_colon_inside():
    seg = SHARED / "example_seg.nii.gz"
    mesh = mesh_from_ct(SHARED / "example_ct_sm.nii.gz", seg, "colon", surface="label")
    img = nib.load(seg)
    labels = np.asarray(img.dataobj)
    assert _inside_mask(mesh.centerline, labels, img.affine, 20).all()
    length = np.linalg.norm(np.diff(mesh.centerline, axis=0), axis=1).sum()
    assert length > 50.0 and len(mesh.faces) > 5000
    assert mesh.metadata["mean_hu_in_label"] < -200  # gas-filled colon: the CT really lines up
    with pytest.raises(SimrealError, match="shape"):
        mesh_from_ct(SHARED / "example_ct.nii.gz", seg, "colon")


def _check_real_lumen(ct_path, seg_path) -> None:
    """The lumen of a real colon: in the gas, inside the (grown) label, narrower than the label."""
    lumen = mesh_from_ct(ct_path, seg_path, "colon")  # colon: the lumen by default
    label = mesh_from_ct(ct_path, seg_path, "colon", surface="label")
    md = lumen.metadata
    assert md["surface"] == "lumen" and md["contents"] == "air" and md["air_voxels"] > 1000
    assert len(lumen.faces) > 2000 and np.linalg.norm(np.diff(lumen.centerline, axis=0), axis=1).sum() > 20.0
    # The surface is the -500 HU iso-surface of this CT: sampled back through the affine, it reads ~-500.
    ct = read_volume(ct_path)
    assert abs(md["median_hu_on_surface"] + 500) < 60
    assert abs(np.median(sample_trilinear(ct.array, lumen.vertices.astype(np.float64), ct.affine)) + 500) < 60
    # A camera on the centerline is in the gas; the lumen is narrower than the whole organ.
    assert np.mean(sample_trilinear(ct.array, lumen.centerline, ct.affine) < -500) > 0.95
    assert np.median(lumen.centerline_radius) < 0.7 * np.median(label.centerline_radius)
    assert md["lumen_voxels"] < label.metadata["mask_voxels"] and md["mean_hu_in_lumen"] < -800
    # Within the label grown by the margin (3 mm) plus the voxel diagonal.
    img = nib.load(seg_path)
    out = ndimage.distance_transform_edt(np.asarray(img.dataobj) != 20, sampling=img.header.get_zooms()[:3])
    gap = sample_trilinear(out.astype(np.float32), lumen.vertices.astype(np.float64), img.affine)
    assert gap.max() < md["margin_mm"] + float(np.linalg.norm(img.header.get_zooms()[:3]))
    # Virtual cleansing only ever adds lumen.
    clean = mesh_from_ct(ct_path, seg_path, "colon", contents="air+fluid")
    assert clean.metadata["lumen_voxels"] >= md["lumen_voxels"]


@needs_data
def test_real_colon_lumen_nifti():
    _check_real_lumen(SHARED / "example_ct_sm.nii.gz", SHARED / "example_seg.nii.gz")


@needs_data
def test_real_colon_lumen_dicom_series():
    _check_real_lumen(SHARED / "example_ct_dicom", SHARED / "example_seg_dicom.nii.gz")


@needs_data
def test_real_dicom_series_with_its_segmentation():
    seg = SHARED / "example_seg_dicom.nii.gz"
    mesh = mesh_from_ct(SHARED / "example_ct_dicom", seg, "colon", surface="label")
    img = nib.load(seg)
    assert _inside_mask(mesh.centerline, np.asarray(img.dataobj), img.affine, 20).all()
    assert mesh.metadata["mean_hu_in_label"] < -200
