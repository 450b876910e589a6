"""Ray casting against closed forms and an independent ray caster (trimesh's pure-numpy one)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simreal.errors import SimrealError
from simreal.render.camera import camera_ray_valid, camera_rays, make_camera, rays_to_world
from simreal.render.raycast import MeshScene, cast_camera
from simreal.render.tube import tube_mesh

R = 10.0


def _look(position, forward, up_hint=(0.0, 1.0, 0.0)) -> np.ndarray:
    z = np.asarray(forward, float) / np.linalg.norm(forward)
    x = np.cross(np.asarray(up_hint, float), z)
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, np.cross(z, x), z, position
    return pose


def _cylinder_t(o: np.ndarray, d: np.ndarray, radius: float) -> np.ndarray:
    """Distance along unit rays d (N, 3) from o (inside) to the infinite cylinder x^2 + y^2 = r^2."""
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = 2 * (o[0] * d[:, 0] + o[1] * d[:, 1])
    c = o[0] ** 2 + o[1] ** 2 - radius**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)


@pytest.fixture(scope="module")
def cylinder_scene():
    # Rings only along z: the surface between two rings is exactly ruled, so 2 rings are exact.
    return MeshScene(tube_mesh(radius=R, length=4000.0, segments=512, rings=2, polyps=()))


@pytest.mark.parametrize(
    "position,forward,model",
    [
        ((0.0, 0.0, 100.0), (0.0, 0.0, 1.0), "pinhole"),
        ((3.0, -2.0, 100.0), (0.3, 0.1, 1.0), "pinhole"),
        ((-4.0, 1.0, 100.0), (-0.5, 0.4, 1.0), "fisheye"),
    ],
)
def test_depth_matches_closed_form_cylinder(cylinder_scene, position, forward, model):
    cam = make_camera(32, 32, fov_deg=130.0, model=model, pose=_look(position, forward))
    geo = cast_camera(cylinder_scene, cam)
    d_cam = camera_rays(cam).astype(np.float64)
    _, d_world = rays_to_world(camera_rays(cam), cam.pose_matrix())
    t = _cylinder_t(np.asarray(position), d_world.astype(np.float64) / np.linalg.norm(d_world, axis=1, keepdims=True), R)
    hit_z = position[2] + t * d_world[:, 2]
    expect_ok = camera_ray_valid(cam) & np.isfinite(t) & (hit_z > 0) & (hit_z < 4000)
    z_expect = (t * d_cam[:, 2]).reshape(32, 32)
    ok = expect_ok.reshape(32, 32)
    assert ok.sum() > 500
    assert (geo.depth[ok] > 0).all()
    rel = np.abs(geo.depth[ok] - z_expect[ok]) / z_expect[ok]
    assert rel.max() < 1e-3, rel.max()
    # Normals: unit, facing the camera, and radial (pointing at the axis) once taken back to the world.
    n = geo.normals[ok]
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-4)
    assert (np.einsum("ij,ij->i", n, d_cam.reshape(32, 32, 3)[ok]) < 0).all()
    rot = cam.pose_matrix()[:3, :3]
    n_world = n @ rot.T
    hit = np.asarray(position) + t[:, None] * (d_world / np.linalg.norm(d_world, axis=1, keepdims=True))
    radial = -hit[:, :2] / np.linalg.norm(hit[:, :2], axis=1, keepdims=True)
    assert np.abs(n_world[:, :2] - radial[expect_ok]).max() < 1e-2
    assert np.abs(n_world[:, 2]).max() < 1e-2
    assert (geo.depth[~ok & ~camera_ray_valid(cam).reshape(32, 32)] == 0).all()


class _AllCandidates:
    """Stands in for trimesh's r-tree broad phase: every triangle is a candidate for every ray."""

    def __init__(self, n: int):
        self.n = n
        self.bounds = [-1e9, -1e9, -1e9, 1e9, 1e9, 1e9]

    def intersection(self, _bounds):
        return range(self.n)


def test_polyp_mask_matches_an_independent_ray_cast():
    from trimesh.ray.ray_triangle import ray_triangle_id

    z0, rp = 60.0, 5.0
    mesh = tube_mesh(radius=R, length=200.0, segments=96, rings=40, polyps=((z0, 0.0, rp),))
    scene = MeshScene(mesh)
    cam = make_camera(24, 24, fov_deg=90.0, pose=_look((-3.0, 0.0, z0 - 8.0), (R + 0.5, 0.0, 8.0), (0.0, 0.0, 1.0)))
    geo = cast_camera(scene, cam)
    polyp_faces = mesh.face_labels == 1
    tris = mesh.vertices[mesh.faces[polyp_faces]].astype(np.float64)
    o, d = rays_to_world(camera_rays(cam), cam.pose_matrix())
    tri_idx, ray_idx, loc = ray_triangle_id(tris, o.astype(np.float64), d.astype(np.float64), tree=_AllCandidates(len(tris)))
    dist = np.einsum("ij,ij->i", loc - o[ray_idx], d[ray_idx])
    first = {}
    for r, t, p in zip(ray_idx, dist, loc):
        if r not in first or t < first[r][0]:
            first[r] = (t, p)
    expect = np.zeros(24 * 24, bool)
    for r, (t, p) in first.items():
        # The polyp hemisphere sits on the wall: where trimesh hits it outside the tube, the wall is in front.
        expect[r] = math.hypot(p[0], p[1]) < R
    expect = expect.reshape(24, 24)
    got = geo.mask == 1
    assert expect.sum() > 40, expect.sum()
    disagree = (expect != got).sum()
    assert disagree <= 0.03 * expect.sum() + 1, (disagree, expect.sum())
    assert (geo.instance[got] == 1).all() and (geo.instance[~got] == 0).all()
    # Where both see the polyp, depth agrees with trimesh's hit distance.
    for r, (t, _) in first.items():
        row, col = divmod(int(r), 24)
        if got[row, col] and expect[row, col]:
            assert geo.distance[row, col] == pytest.approx(t, rel=1e-4)


def test_camera_without_pose_raises(cylinder_scene):
    with pytest.raises(SimrealError):
        cast_camera(cylinder_scene, make_camera(8, 8, fov_deg=90.0))


def test_embree_hit_record_equals_an_exact_recompute():
    """Distance and barycentrics come from Embree's hit record; recomputed in float64 (Moller-Trumbore on
    the triangle Embree names) they agree to float32 precision, and the interpolated normal is unit."""
    from simreal.anatomy.colon import make_colon
    from simreal.render.colonoscopy import ColonoscopyRenderer

    colon = make_colon(2, length_mm=120.0, n_polyps=2)
    renderer = ColonoscopyRenderer(colon)
    scene = renderer.scene
    for i in range(3):
        cam = renderer.sample(np.random.default_rng(i)).camera(48)
        o, d = rays_to_world(camera_rays(cam), cam.pose_matrix())
        prim, t, u, v = scene.intersect(o, d)
        assert np.array_equal(prim, scene.first_hit(o, d))
        hit = prim >= 0
        assert hit.mean() > 0.9
        tri = colon.vertices[colon.faces[prim[hit]]].astype(np.float64)
        dd, oo = d[hit].astype(np.float64), o[hit].astype(np.float64)
        e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        pv = np.cross(dd, e2)
        inv = 1.0 / np.einsum("ij,ij->i", e1, pv)
        tv = oo - tri[:, 0]
        qv = np.cross(tv, e1)
        u64 = np.einsum("ij,ij->i", tv, pv) * inv
        v64 = np.einsum("ij,ij->i", dd, qv) * inv
        t64 = np.einsum("ij,ij->i", e2, qv) * inv
        assert np.abs(t[hit] - t64).max() <= 1e-5 * t64.max()
        assert np.abs(u[hit] - u64).max() < 1e-4 and np.abs(v[hit] - v64).max() < 1e-4
        assert (u64 > -1e-4).all() and (v64 > -1e-4).all() and (u64 + v64 < 1 + 1e-4).all()
        normal, texture = scene.surface_at(prim[hit], u[hit], v[hit])
        assert np.allclose(np.linalg.norm(normal, axis=0), 1.0, atol=1e-5) and texture.shape == (2, hit.sum())
