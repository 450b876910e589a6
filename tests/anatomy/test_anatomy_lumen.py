"""The lumen surface of a hollow organ, on a synthetic CT tube phantom of known geometry.

The phantom is what TotalSegmentator labels look like around a gas-filled colon: an air lumen (radius
R_MM, -1000 HU) inside a wall (thickness T_MM, +40 HU) in fat (-100 HU), with the label covering lumen and
wall. The tube runs obliquely through an anisotropic grid, and each voxel is the mean of 3^3 sub-samples
(partial volume), so a sub-voxel-accurate iso-surface lands on the true radius.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import trimesh

from simreal.anatomy.from_ct import lumen_mesh, mesh_from_ct, mesh_from_label_volume
from simreal.anatomy.lumen import (
    AIR_HU,
    HOLLOW_ORGANS,
    check_lumen_options,
    default_surface,
    drop_specks,
    iso_surface,
    sample_trilinear,
    segment_lumen,
    trim_thin_ends,
)
from simreal.data.volumes import Volume
from simreal.errors import SimrealError

R_MM, T_MM = 8.0, 3.0
SPACING = np.array([1.0, 0.9, 1.5])
ORIGIN = np.array([-20.0, 15.0, 40.0])
SHAPE = (40, 44, 28)
AXIS_P = ORIGIN + np.array([19.5, 21.5 * 0.9, 0.0])
AXIS_D = np.array([0.12, -0.08, 1.0]) / np.linalg.norm([0.12, -0.08, 1.0])
COLON = 20


def affine(flip_x: bool = False) -> np.ndarray:
    a = np.diag([*SPACING, 1.0])
    a[:3, 3] = ORIGIN
    if flip_x:  # the same world grid stored mirrored along i (negative determinant)
        a[:3, 0] *= -1
        a[:3, 3] = ORIGIN + [(SHAPE[0] - 1) * SPACING[0], 0, 0]
    return a


def radial(world: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offset from the tube axis (perpendicular part, (N, 3)), its length and the position along the axis."""
    d = world - AXIS_P
    along = d @ AXIS_D
    perp = d - along[..., None] * AXIS_D
    return perp, np.linalg.norm(perp, axis=-1), along


def phantom(fluid_frac: float = 0.0, lumen_hu: float = -1000.0, offset_hu: float = 0.0, flip_x: bool = False):
    """(CT HU, label ids) on the grid of ``affine(flip_x)``.

    Args:
        fluid_frac: fraction of the lumen diameter filled with water (0 HU) from the -y side (gravity).
        lumen_hu: HU of the lumen contents (-1000 = gas; 0 = fluid-filled, no air at all).
        offset_hu: added everywhere (a CT not stored in HU).
    """
    aff = affine(flip_x)
    idx = np.indices(SHAPE).reshape(3, -1).T.astype(np.float64)
    offs = (np.arange(3) + 0.5) / 3 - 0.5
    acc = np.zeros(len(idx))
    for o in np.stack(np.meshgrid(offs, offs, offs, indexing="ij"), -1).reshape(-1, 3):
        perp, r, _ = radial((idx + o) @ aff[:3, :3].T + aff[:3, 3])
        hu = np.where(r < R_MM, lumen_hu, np.where(r < R_MM + T_MM, 40.0, -100.0))
        if fluid_frac:
            hu = np.where((r < R_MM) & (perp[:, 1] < R_MM * (2 * fluid_frac - 1)), 0.0, hu)
        acc += hu
    ct = (acc / 27 + offset_hu).reshape(SHAPE).astype(np.float32)
    _, rc, _ = radial(idx @ aff[:3, :3].T + aff[:3, 3])
    labels = np.where(rc.reshape(SHAPE) <= R_MM + T_MM, COLON, 0).astype(np.float32)
    return ct, labels


def volumes(**kw) -> tuple[Volume, Volume]:
    ct, labels = phantom(**kw)
    aff = affine(kw.get("flip_x", False))
    return Volume(ct, aff), Volume(labels, aff)


def side_vertices(v: np.ndarray) -> np.ndarray:
    """Vertices away from the caps where the tube leaves the grid (z ends)."""
    z_lo, z_hi = ORIGIN[2], ORIGIN[2] + (SHAPE[2] - 1) * SPACING[2]
    return (v[:, 2] > z_lo + 6) & (v[:, 2] < z_hi - 6)


def write_pair(folder: Path, flip_x: bool = False, **kw) -> tuple[Path, Path]:
    ct, labels = phantom(flip_x=flip_x, **kw)
    folder.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.rint(ct).astype(np.int16), affine(flip_x)), folder / "ct.nii.gz")
    nib.save(nib.Nifti1Image(labels.astype(np.uint8), affine(flip_x)), folder / "seg.nii.gz")
    return folder / "ct.nii.gz", folder / "seg.nii.gz"


@pytest.mark.parametrize("flip_x", [False, True])
def test_lumen_surface_at_the_air_radius_with_normals_to_the_axis(tmp_path, flip_x):
    ct, seg = write_pair(tmp_path, flip_x)
    mesh = mesh_from_ct(ct, seg, "colon")  # colon is hollow: the lumen by default
    md = mesh.metadata
    assert md["surface"] == "lumen" and md["surface_requested"] == "auto" and md["contents"] == "air"
    assert md["lumen_hu"] == -500.0 and md["hu_ranges"] == {"air": [None, -500.0]} and md["contents_voxels"] == 0
    assert md["normals"] == "into the lumen"
    v = mesh.vertices.astype(np.float64)
    side = side_vertices(v)
    _, r, _ = radial(v[side])
    # Marching cubes on the intensities: sub-voxel accurate (the voxels are 0.9-1.5 mm).
    assert abs(r.mean() - R_MM) < 0.3 and r.std() < 0.2 and np.abs(r - R_MM).max() < 0.6
    assert abs(md["median_hu_on_surface"] - (-500.0)) < 30
    # Normals point into the lumen, towards the axis, on the side wall; closed surface, negative volume.
    tri = v[mesh.faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    centroid = tri.mean(axis=1)
    on_side = side_vertices(centroid)
    towards = -radial(centroid[on_side])[0]
    assert (np.einsum("ij,ij->i", normal[on_side], towards) > 0).mean() > 0.99
    tm = trimesh.Trimesh(v, mesh.faces, process=False)
    assert tm.is_watertight and tm.volume < 0
    # The centerline is on the axis, in the air, with radius ~ R (distance to the surface).
    _, rc, along = radial(mesh.centerline)
    assert rc.max() < 0.75
    assert np.ptp(along) > 15.0  # the gas runs 41 mm through the grid; a skeleton stops ~R short of open ends
    hu = sample_trilinear(np.asarray(nib.load(ct).dataobj, np.float32), mesh.centerline, affine(flip_x))
    assert (hu < -900).all()
    assert np.abs(np.median(mesh.centerline_radius) - R_MM) < 0.5
    assert (mesh.centerline_radius <= R_MM + 0.3).all() and (mesh.centerline_radius > R_MM - 1.0).all()


def test_label_surface_is_the_outer_wall_and_wider_than_the_lumen(tmp_path):
    ct, seg = write_pair(tmp_path)
    label = mesh_from_ct(ct, seg, "colon", surface="label")
    lumen = mesh_from_ct(ct, seg, "colon", surface="lumen")
    assert label.metadata["surface"] == "label" and label.metadata["surface_requested"] == "label"
    v = label.vertices.astype(np.float64)
    _, r, _ = radial(v[side_vertices(v)])
    assert abs(r.mean() - (R_MM + T_MM)) < 0.3
    assert np.median(label.centerline_radius) > np.median(lumen.centerline_radius) + 0.5 * T_MM


def test_fluid_pool_flat_with_air_round_wall_with_air_fluid():
    ct, labels = volumes(fluid_frac=1 / 3)
    level = R_MM * (2 / 3 - 1)  # fluid top, in the -y offset from the axis
    air = lumen_mesh(ct, labels, COLON, label_name="colon", contents="air")
    clean = lumen_mesh(ct, labels, COLON, label_name="colon", contents="air+fluid")

    def pool(mesh):  # vertices of the middle of the pool (below the axis, central in x)
        v = mesh.vertices.astype(np.float64)
        perp, r, _ = radial(v)
        sel = side_vertices(v) & (np.abs(perp[:, 0]) < 0.5 * R_MM) & (perp[:, 1] < 0)
        return perp[sel, 1], r[sel]

    y, _ = pool(air)
    # --contents air: the endoscope sees the water's flat surface at the fluid level, nothing below it.
    assert abs(np.median(y) - level) < 0.2 and y.std() < 0.2 and y.min() > level - 0.5
    assert air.metadata["contents_voxels"] == 0
    y, r = pool(clean)
    # --contents air+fluid: the fluid is cleansed, the round wall under it is the surface (to ~ half a voxel).
    assert y.min() < -R_MM + 1.0 and np.median(y) < level - 3.0
    assert abs(np.median(r) - R_MM) < 0.4 and np.abs(r - R_MM).max() < 1.2
    md = clean.metadata
    assert md["contents"] == "air+fluid" and md["contents_voxels"] > 0
    assert md["hu_ranges"] == {"air": [None, -500.0], "contents_untagged": [-500.0, 20.0], "contents_tagged": [200.0, None]}
    # The air-side wall stays sub-voxel accurate: the partial-volume shell is not cleansed.
    v = clean.vertices.astype(np.float64)
    perp, r, _ = radial(v)
    top = side_vertices(v) & (perp[:, 1] > 0.3 * R_MM)
    assert abs(r[top].mean() - R_MM) < 0.3
    # Both centerlines are in the cleansed lumen; the air-only one sits above the fluid.
    assert radial(air.centerline)[0][:, 1].min() > level
    assert radial(clean.centerline)[1].max() < 1.0


def test_tagged_fluid_is_cleansed_too():
    ct, labels = volumes(fluid_frac=1 / 3)
    bright = ct.array.copy()
    perp, r, _ = radial(np.indices(SHAPE).reshape(3, -1).T @ ct.affine[:3, :3].T + ct.affine[:3, 3])
    pool = ((r < R_MM - 1) & (perp[:, 1] < R_MM * (2 / 3 - 1) - 1)).reshape(SHAPE)
    bright[pool] = 600.0  # oral contrast
    seg = segment_lumen(bright, labels.array == COLON, SPACING, contents="air+fluid")
    assert seg.contents[pool].mean() > 0.95
    assert (seg.field[seg.contents] == AIR_HU).all()
    assert not seg.lumen[~(labels.array == COLON)].any()  # never beyond the label


def test_other_gas_pockets_are_not_the_lumen():
    ct, labels = volumes()
    idx = np.indices(SHAPE).transpose(1, 2, 3, 0) * SPACING + ORIGIN
    # A gas bubble (another bowel loop) just outside the wall, within the margin of the label.
    centre = AXIS_P + AXIS_D * 20 + np.array([R_MM + T_MM + 3.0, 0, 0])
    bubble = np.linalg.norm(idx - centre, axis=-1) < 2.5
    arr = ct.array.copy()
    arr[bubble] = AIR_HU
    seg = segment_lumen(arr, labels.array == COLON, SPACING, margin_mm=6.0)
    assert seg.air_components == 2 and not seg.lumen[bubble].any()
    assert (seg.field[bubble] > seg.level).all()  # no surface around it
    mesh = lumen_mesh(Volume(arr, ct.affine), labels, COLON, margin_mm=6.0)
    assert np.linalg.norm(mesh.vertices - centre, axis=1).min() > 3.0


def test_no_air_errors_say_what_was_found(tmp_path):
    for kw in ({"lumen_hu": 0.0}, {"offset_hu": 1024.0}):  # fluid-filled; a CT not stored in HU
        ct, labels = volumes(**kw)
        inside = ct.array[labels.array == COLON]
        found = f"mean HU in the label {inside.mean():.0f}, range {inside.min():.0f} to {inside.max():.0f}"
        with pytest.raises(SimrealError, match="no air in colon") as err:
            lumen_mesh(Volume(ct.array, ct.affine, tmp_path / "ct.nii.gz"), labels, COLON, label_name="colon")
        msg = str(err.value)
        assert found in msg and "--surface label" in msg and "--lumen-hu" in msg and "-500 HU" in msg
        assert err.value.path == tmp_path / "ct.nii.gz"
    # A few gas voxels are noise, not a lumen.
    ct, labels = volumes(lumen_hu=0.0)
    arr = ct.array.copy()
    arr[20, 24, 14] = AIR_HU
    with pytest.raises(SimrealError, match="too little air.*1 voxels"):
        segment_lumen(arr, labels.array == COLON, SPACING)
    # The label surface of the same fluid-filled tube still works.
    assert mesh_from_label_volume(labels, COLON).metadata["surface"] == "label"


def test_bad_lumen_options():
    check_lumen_options(-500.0, 3.0, "air")
    for kw, match in (
        ({"lumen_hu": -1200.0}, "lumen_hu must lie above -1000"),
        ({"lumen_hu": 0.0}, "at most -100"),
        ({"lumen_hu": float("nan")}, "finite numbers: lumen_hu"),
        ({"margin_mm": -1.0}, "margin_mm must be >= 0"),
        ({"contents": "water"}, "contents must be one of air, air\\+fluid"),
        ({"untagged_max_hu": -600.0}, "thresholds must increase"),
        ({"tagged_min_hu": 10.0}, "thresholds must increase"),
    ):
        args = {"lumen_hu": -500.0, "margin_mm": 3.0, "contents": "air", **kw}
        with pytest.raises(SimrealError, match=match):
            check_lumen_options(**args)
    ct, labels = volumes()
    with pytest.raises(SimrealError, match="lumen_hu"):
        lumen_mesh(ct, labels, COLON, lumen_hu=50.0)


def test_surface_choice_per_organ(tmp_path):
    assert {"colon", "small_bowel", "duodenum", "stomach", "esophagus"} <= HOLLOW_ORGANS
    assert default_surface("colon") == "lumen" and default_surface("liver") == "label"
    ct, seg = write_pair(tmp_path)
    labels = np.asarray(nib.load(seg).dataobj)
    # The same tube labelled as liver (5): a solid organ, so its label surface by default.
    nib.save(nib.Nifti1Image(np.where(labels == COLON, 5, 0).astype(np.uint8), affine()), tmp_path / "liver.nii.gz")
    assert mesh_from_ct(ct, tmp_path / "liver.nii.gz", "liver").metadata["surface"] == "label"
    assert mesh_from_ct(ct, tmp_path / "liver.nii.gz", "liver", surface="lumen").metadata["surface"] == "lumen"
    with pytest.raises(SimrealError, match="surface must be one of auto, lumen, label"):
        mesh_from_ct(ct, seg, "colon", surface="inner")


def test_iso_surface_winding_and_determinism():
    g = np.indices((16, 16, 16)).transpose(1, 2, 3, 0)
    dist = np.linalg.norm(g - 7.5, axis=-1)
    gas = np.where(dist < 5, -1000.0, 40.0).astype(np.float32)
    for aff in (np.eye(4), np.diag([-1.0, 1.0, 2.0, 1.0])):
        v, f = iso_surface(gas, -500.0, aff, inside="below", pad_value=40.0)
        assert trimesh.Trimesh(v, f, process=False).volume < 0  # normals into the gas ball
        v, f = iso_surface(-gas, 500.0, aff, inside="above", pad_value=-40.0)
        assert trimesh.Trimesh(v, f, process=False).volume < 0
    with pytest.raises(SimrealError, match="does not cross"):
        iso_surface(np.zeros((4, 4, 4), np.float32), 0.5, np.eye(4), inside="above", pad_value=0.0)
    ct, labels = volumes()
    a, b = lumen_mesh(ct, labels, COLON), lumen_mesh(ct, labels, COLON)
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.centerline, b.centerline)


def test_trim_thin_ends():
    pts = np.stack([np.arange(6.0), np.zeros(6), np.zeros(6)], axis=1)
    p, r = trim_thin_ends(pts, np.array([0.5, 4.0, 1.0, 5.0, 4.0, 0.2]))
    assert np.array_equal(r, [4.0, 1.0, 5.0, 4.0]) and np.array_equal(p[:, 0], [1, 2, 3, 4])  # inner narrowing kept
    p, r = trim_thin_ends(pts[:2], np.array([0.1, 5.0]))
    assert len(p) == 2


def test_drop_specks_keeps_the_lumen_and_drops_corner_voxels():
    g = np.indices((20, 20, 20)).transpose(1, 2, 3, 0)
    gas = np.where(np.linalg.norm(g - 8.0, axis=-1) < 5, -1000.0, 40.0).astype(np.float32)
    gas[16, 16, 16] = -520.0  # one barely-gas voxel, apart: marching cubes wraps it in a speck
    v, f = iso_surface(gas, -500.0, np.eye(4), inside="below", pad_value=40.0)
    kept_v, kept_f = drop_specks(v, f, min_volume_mm3=0.5)
    assert len(kept_f) < len(f) and np.linalg.norm(kept_v - 16.0, axis=1).min() > 3.0
    before, after = trimesh.Trimesh(v, f, process=False), trimesh.Trimesh(kept_v, kept_f, process=False)
    assert after.is_watertight and after.volume < -400 and 0 < after.volume - before.volume < 0.5
