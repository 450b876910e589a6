"""The CT phantom of a procedural colon: air where the mesh encloses the lumen, the wall's thickness and HU,
polyp labels and instances, determinism, the NIfTI writer, and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from simreal.anatomy.ct_phantom import (
    COLON_LABEL,
    MAX_VOXELS,
    POLYP_LABEL,
    PhantomTissues,
    make_ct_phantom,
    phantom_from_mesh,
    surface_samples,
    write_phantom,
)
from simreal.anatomy.mesh import MUCOSA, POLYP
from simreal.data.volumes import read_volume
from simreal.errors import SimrealError

# Crisp tissues (no texture, noise or blur): every voxel holds exactly its tissue's HU.
CRISP = PhantomTissues(texture_hu=0.0, noise_hu=0.0, blur_mm=0.0, vessel_hu=40.0)


@pytest.fixture(scope="module")
def crisp():
    """A short colon with two polyps at 1 mm voxels, crisp tissues (about 60 x 60 x 40 voxels)."""
    return make_ct_phantom(5, voxel_mm=1.0, margin_mm=6.0, tissues=CRISP, length_mm=36.0, n_polyps=2)


def _centres(vol) -> np.ndarray:
    idx = np.indices(vol.shape).reshape(3, -1).T.astype(np.float64)
    return idx @ vol.affine[:3, :3].T + vol.affine[:3, 3]


def _submesh(mesh, faces_sel) -> trimesh.Trimesh:
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces[faces_sel], process=False)
    tm.remove_unreferenced_vertices()
    return tm


def test_lumen_is_air_exactly_where_the_mesh_encloses_it(crisp):
    ph = crisp
    wall = _submesh(ph.mesh, ph.mesh.face_labels == MUCOSA)
    assert wall.is_watertight  # the tube closed by its end domes
    pts = _centres(ph.ct)
    inside = wall.contains(pts)
    air = ph.ct.array.reshape(-1) == CRISP.air_hu
    polyp = ph.labels.array.reshape(-1) == POLYP_LABEL
    # Inside the wall surface: air unless a polyp stands there; outside: tissue. The few voxels that
    # disagree lie next to the surface (at the sharp crests of folds), never deep on either side.
    disagree = (air & ~inside) | (inside & ~air & ~polyp)
    assert disagree.sum() < 0.005 * inside.sum()
    dense, _, _ = surface_samples(wall.vertices, wall.faces, wall.vertex_normals, 0.25)
    d, _ = cKDTree(dense).query(pts[disagree])
    assert (d < 2.0).all()
    assert air.sum() > 0.9 * inside.sum()
    # The lumen is labelled colon (or polyp).
    lab = ph.labels.array.reshape(-1)
    assert (lab[air] == COLON_LABEL).all()


def test_wall_thickness_and_tissue_layers(crisp):
    ph, t = crisp, CRISP
    wall = _submesh(ph.mesh, ph.mesh.face_labels == MUCOSA)
    pts = _centres(ph.ct)
    hu = ph.ct.array.reshape(-1)
    lab = ph.labels.array.reshape(-1)
    dense, _, _ = surface_samples(wall.vertices, wall.faces, wall.vertex_normals, 0.4)
    # Distance to the mucosal surface, mm (within 0.25 mm); the tree options keep queries against a thin
    # surface fast (the default balanced tree is 30x slower here).
    d, _ = cKDTree(dense, balanced_tree=False, compact_nodes=False).query(pts)
    tissue = (hu != t.air_hu) & (lab != POLYP_LABEL)
    is_wall = tissue & (hu == t.wall_hu)
    # Wall voxels lie within the wall thickness of the mucosal surface, and (nearly) all tissue voxels
    # in the inner 2.5 mm are wall, labelled colon.
    assert d[is_wall].max() <= t.wall_thickness_mm + 0.6
    inner = tissue & (d > 0.5) & (d < 2.5)
    assert inner.any() and is_wall[inner].mean() > 0.97
    assert (lab[is_wall] == COLON_LABEL).all()
    # Fat right behind the wall, surrounding tissue far out; neither labelled colon.
    behind = tissue & (d > t.wall_thickness_mm + 0.6) & (d < t.wall_thickness_mm + 0.6 * t.fat_thickness_mm)
    assert behind.any() and (hu[behind] == t.fat_hu).mean() > 0.97
    far = tissue & (d > t.wall_thickness_mm + 1.4 * t.fat_thickness_mm + 1.0)
    assert far.any() and (hu[far] == t.tissue_hu).all()
    assert (lab[behind | far] == 0).all()


def test_polyps_are_labelled_with_their_instances(crisp):
    ph = crisp
    lab, inst = ph.labels.array, ph.instances.array
    mesh = ph.mesh
    pts = _centres(ph.ct)
    for k in (1, 2):
        sel = (mesh.face_labels == POLYP) & (mesh.face_instances == k)
        polyp = _submesh(mesh, sel)
        assert polyp.is_watertight
        in_polyp = polyp.contains(pts)
        labelled = (lab.reshape(-1) == POLYP_LABEL) & (inst.reshape(-1) == k)
        assert labelled.sum() > 0
        # The labelled voxels are the polyp's inside, up to voxels at its surface.
        both = (in_polyp & labelled).sum()
        assert both / max(labelled.sum(), in_polyp.sum()) > 0.7
        d, _ = polyp.kdtree.query(pts[labelled ^ in_polyp])
        assert (d < 1.5).all()
        assert (ph.ct.array.reshape(-1)[labelled] == CRISP.polyp_hu).all()
    assert set(np.unique(inst).tolist()) == {0.0, 1.0, 2.0}
    assert ((inst > 0) == (lab == POLYP_LABEL)).all()
    assert ph.metadata["polyp_voxels"] == {str(k): int((inst == k).sum()) for k in (1, 2)}


def test_textured_phantom_has_ct_like_statistics():
    ph = make_ct_phantom(2, voxel_mm=2.0, margin_mm=8.0, length_mm=40.0, n_polyps=1)
    hu, lab = ph.ct.array, ph.labels.array
    inner_air = hu[(lab == COLON_LABEL) & (hu < -900)]
    assert inner_air.size and abs(float(inner_air.mean()) + 1000.0) < 15.0
    # Soft tissue far from the colon: about +45 HU with texture and noise.
    far = hu[(lab == 0) & (hu > 0)]
    assert far.size and 20.0 < float(np.median(far)) < 70.0 and 2.0 < float(far.std()) < 40.0
    assert (hu < -50).any() and (hu > -150).any()  # fat present


def test_same_seed_same_voxels_other_seed_other_colon():
    a = make_ct_phantom(4, voxel_mm=3.0, margin_mm=6.0, length_mm=30.0, n_polyps=1)
    b = make_ct_phantom(4, voxel_mm=3.0, margin_mm=6.0, length_mm=30.0, n_polyps=1)
    c = make_ct_phantom(9, voxel_mm=3.0, margin_mm=6.0, length_mm=30.0, n_polyps=1)
    assert np.array_equal(a.ct.array, b.ct.array) and np.array_equal(a.labels.array, b.labels.array)
    assert a.ct.shape != c.ct.shape or not np.array_equal(a.ct.array, c.ct.array)
    assert a.metadata["seed"] == 4 and a.metadata["colon_overrides"] == {"length_mm": 30.0, "n_polyps": 1}


def test_write_phantom_round_trips_and_meshes_with_its_label_map(tmp_path):
    from simreal.anatomy.from_ct import mesh_from_ct

    ph = make_ct_phantom(1, voxel_mm=2.0, margin_mm=6.0, length_mm=40.0, n_polyps=1)
    files = write_phantom(ph, tmp_path / "ph")
    assert sorted(p.name for p in (tmp_path / "ph").iterdir()) == sorted(p.name for p in files.values())
    ct = read_volume(files["ct"])
    lab = read_volume(files["labels"])
    np.testing.assert_array_equal(ct.array, np.rint(ph.ct.array))
    np.testing.assert_array_equal(lab.array, ph.labels.array)
    np.testing.assert_allclose(ct.affine, ph.ct.affine)
    assert json.loads(files["label_map"].read_text()) == {"20": "colon", "150": "colon_polyp"}
    assert json.loads(files["metadata"].read_text())["seed"] == 1
    mesh = mesh_from_ct(files["ct"], files["labels"], "colon", label_map=files["label_map"])
    assert mesh.metadata["surface"] == "lumen" and len(mesh.faces) > 100
    with pytest.raises(SimrealError, match="already exists"):
        write_phantom(ph, tmp_path / "ph")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"voxel_mm": 0.05}, "voxel_mm"),
        ({"margin_mm": 1.0}, "wall thickness"),
        ({"noise_seed": -1}, "noise_seed"),
    ],
)
def test_bad_arguments_raise_one_clear_error(crisp, kwargs, message):
    with pytest.raises(SimrealError, match=message):
        phantom_from_mesh(crisp.mesh, **kwargs)


def test_bad_tissues_and_huge_grids_are_refused(crisp, monkeypatch):
    with pytest.raises(SimrealError, match="wall_thickness_mm"):
        PhantomTissues(wall_thickness_mm=0.0)
    with pytest.raises(SimrealError, match="vessel_depth_mm"):
        PhantomTissues(vessel_depth_mm=(2.0, 1.0))
    with pytest.raises(SimrealError, match="air_hu"):
        PhantomTissues(air_hu=-200.0)
    with pytest.raises(SimrealError, match=f"more than {MAX_VOXELS}"):
        phantom_from_mesh(crisp.mesh, voxel_mm=0.2)
    with pytest.raises(SimrealError, match="phantom seed"):
        make_ct_phantom(-3)
