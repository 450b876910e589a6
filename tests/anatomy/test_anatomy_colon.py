"""Procedural colon: determinism, geometry, polyps, labels, round trip."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from simreal.anatomy.colon import (
    PolypParams,
    build_colon,
    colon_params_from_dict,
    make_colon,
    polyp_surface,
    sample_colon_params,
)
from simreal.anatomy.mesh import POLYP, load_mesh, save_mesh
from simreal.errors import SimrealError


@pytest.fixture(scope="module")
def colon():
    # A short colon keeps the module fast; geometry rules do not depend on the length.
    return make_colon(7, length_mm=120.0, n_polyps=3)


def _face_normals(mesh):
    tri = mesh.vertices[mesh.faces].astype(np.float64)
    return np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])


def test_same_seed_same_arrays_different_seed_differs():
    a, b = make_colon(3, length_mm=80.0), make_colon(3, length_mm=80.0)
    for name in ("vertices", "faces", "face_labels", "face_instances", "vertex_texture", "centerline", "centerline_radius"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.metadata == b.metadata
    c = make_colon(4, length_mm=80.0)
    assert c.vertices.shape != a.vertices.shape or not np.allclose(c.vertices, a.vertices)


def test_params_sampled_then_applied():
    params = sample_colon_params(np.random.default_rng(5), length_mm=90.0, n_polyps=2)
    assert params.length_mm == 90.0 and len(params.polyps) == 2
    m1, m2 = build_colon(params), build_colon(params)
    np.testing.assert_array_equal(m1.vertices, m2.vertices)
    # The stored parameters rebuild the same mesh (what a renderer does from a saved PLY).
    rebuilt = build_colon(colon_params_from_dict(m1.metadata["params"]))
    np.testing.assert_array_equal(rebuilt.vertices, m1.vertices)
    with pytest.raises(SimrealError, match="unknown colon parameter"):
        sample_colon_params(np.random.default_rng(0), lenght_mm=3)
    with pytest.raises(SimrealError, match="polyp"):
        build_colon(replace(params, polyps=(replace(params.polyps[0], diameter_mm=25.0),)))


def test_default_size_and_build_time():
    t0 = time.perf_counter()
    mesh = make_colon(11)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10.0
    assert 60_000 <= len(mesh.faces) <= 220_000
    length = np.linalg.norm(np.diff(mesh.centerline, axis=0), axis=1).sum()
    assert 200.0 <= length <= 400.0
    assert 1 <= mesh.face_instances.max() <= 4


def test_labels_and_instances_consistent(colon):
    polyp = colon.face_labels == POLYP
    np.testing.assert_array_equal(polyp, colon.face_instances > 0)
    assert sorted(np.unique(colon.face_instances[polyp]).tolist()) == [1, 2, 3]
    assert len(colon.metadata["polyps"]) == 3
    assert colon.metadata["generator"] == "procedural-colon"
    # Polyp faces come after the wall and each instance is one contiguous closed block.
    for k in (1, 2, 3):
        idx = np.nonzero(colon.face_instances == k)[0]
        assert np.all(np.diff(idx) == 1)
        sub = trimesh.Trimesh(colon.vertices, colon.faces[idx], process=True)
        assert sub.is_watertight and sub.volume > 0  # closed, normals out of the polyp


def test_polyp_sizes_and_on_wall(colon):
    wall = cKDTree(colon.vertices[np.unique(colon.faces[colon.face_labels == 0])])
    line = cKDTree(colon.centerline)
    for k, p in enumerate(colon.metadata["polyps"], 1):
        assert 2.0 <= p["diameter_mm"] <= 20.0
        verts = colon.vertices[np.unique(colon.faces[colon.face_instances == k])]
        extent = np.linalg.norm(verts - verts.mean(0), axis=1).max()
        assert extent <= 0.5 * (p["diameter_mm"] + p["height_mm"]) + 2.0 + p["diameter_mm"]
        # Its base touches the wall; the rest stands in the lumen, not through the opposite wall.
        assert wall.query(verts)[0].min() < 1.0
        d_line, idx = line.query(verts)
        assert (d_line > 0.5).all()
        assert (d_line < colon.centerline_radius[idx] + 4.0).all()


def test_wall_normals_point_into_lumen_and_centerline_inside(colon):
    wall = colon.face_labels == 0
    centres = colon.vertices[colon.faces[wall]].mean(axis=1)
    _, idx = cKDTree(colon.centerline).query(centres)
    toward = colon.centerline[idx] - centres
    assert (np.einsum("ij,ij->i", _face_normals(colon)[wall], toward) > 0).mean() > 0.999
    # Each ring of wall vertices lies about centerline_radius from its centerline point.
    n_ang = colon.metadata["params"]["n_angular"]
    rings = colon.vertices[: len(colon.centerline) * n_ang].reshape(len(colon.centerline), n_ang, 3)
    dist = np.linalg.norm(rings - colon.centerline[:, None], axis=-1)
    np.testing.assert_allclose(dist.mean(axis=1), colon.centerline_radius, rtol=1e-4)
    assert dist.min() > 5.0 and dist.max() < 32.0
    assert 10.0 < colon.centerline_radius.min() and colon.centerline_radius.max() < 30.0
    step = np.linalg.norm(np.diff(colon.centerline, axis=0), axis=1)
    assert step.min() > 0.9 and step.max() < 2.0
    # Bends are gentler than the lumen is wide: the tube never folds over itself.
    t = np.gradient(colon.centerline, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    curvature = np.linalg.norm(np.gradient(t, axis=0), axis=1) / step.mean()
    assert (curvature * dist.max(axis=1)).max() < 1.0


def test_folds_and_taeniae_shape_the_wall(colon):
    """Folds make the radius dip periodically along s; taeniae make three dips around each ring."""
    p = colon.metadata["params"]
    n_ang = p["n_angular"]
    rings = colon.vertices[: len(colon.centerline) * n_ang].reshape(len(colon.centerline), n_ang, 3)
    dist = np.linalg.norm(rings - colon.centerline[:, None], axis=-1)
    mid_sector = np.mod(p["taenia_angle_rad"] + np.pi / 3, 2 * np.pi)
    j = int(round(mid_sector / (2 * np.pi) * n_ang)) % n_ang
    profile = dist[:, j] / colon.centerline_radius
    assert profile.max() - profile.min() > 0.1  # fold crests vs haustra
    ring = dist[len(dist) // 2]
    spectrum = np.abs(np.fft.rfft(ring - ring.mean()))
    assert spectrum[3] > 0.5 * spectrum[1:10].max()  # three-fold symmetry dominates


def test_polyp_surface_kinds_closed():
    for kind in ("sessile", "pedunculated"):
        p = PolypParams(s_mm=0.0, angle_rad=0.0, kind=kind, diameter_mm=8.0, height_mm=5.0, lobulation=0.1, seed=1)
        v, f = polyp_surface(p, np.zeros(3), np.array([0.0, 0.0, 1.0]))
        tm = trimesh.Trimesh(v, f, process=True)
        assert tm.is_watertight and tm.is_winding_consistent and tm.volume > 0
        assert v[:, 2].min() < 0  # sunk into the wall
        width = np.ptp(v[:, :2], axis=0).max()
        assert 6.0 < width < 11.0


def test_no_polyps_and_round_trip(tmp_path):
    mesh = make_colon(2, length_mm=60.0, n_polyps=0)
    assert mesh.face_labels.max() == 0 and mesh.face_instances.max() == 0
    path = save_mesh(make_colon(2, length_mm=60.0, n_polyps=2), tmp_path / "c.ply")
    back = load_mesh(path)
    ref = make_colon(2, length_mm=60.0, n_polyps=2)
    np.testing.assert_array_equal(back.vertices, ref.vertices)
    np.testing.assert_array_equal(back.faces, ref.faces)
    np.testing.assert_array_equal(back.face_instances, ref.face_instances)
    np.testing.assert_array_equal(back.vertex_texture, ref.vertex_texture)
    assert back.metadata["params"]["length_mm"] == 60.0
    assert len(back.metadata["polyps"]) == 2


def test_ends_are_closed_by_domes(colon):
    """The wall with its two end domes is a closed, consistently wound surface: no ray from inside escapes."""
    wall = colon.face_labels == 0
    tm = trimesh.Trimesh(colon.vertices, colon.faces[wall], process=True)
    assert tm.is_watertight and tm.is_winding_consistent
    # Normals point inward, so the enclosed volume computed from them comes out negative.
    assert tm.volume < 0
    # Rays from the first centerline point straight out of the tube end hit the dome.
    origin = colon.centerline[0]
    out = colon.centerline[0] - colon.centerline[5]
    out /= np.linalg.norm(out)
    dirs = out + 0.5 * np.random.default_rng(0).normal(size=(64, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    locs, ray_idx, _ = tm.ray.intersects_location(np.repeat(origin[None], 64, 0), dirs, multiple_hits=False)
    assert len(set(ray_idx.tolist())) == 64
    assert np.linalg.norm(locs - origin, axis=1).max() < 3.0 * colon.centerline_radius.max()
