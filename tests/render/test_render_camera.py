"""Camera rays: pinhole and equidistant fisheye geometry in OpenCV's pixel convention (pixel centres at
integer coordinates), projection of known points onto the pixels the renderer shows them, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simreal.errors import SimrealError
from simreal.render.camera import camera_ray_valid, camera_rays, camera_rays_columns, make_camera, rays_to_world


def _angle_deg(d: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(d[..., 2], -1, 1)))


def test_pinhole_rays_follow_the_camera_contract():
    cam = make_camera(8, 6, fov_deg=120.0)
    d = camera_rays(cam).reshape(6, 8, 3)
    assert np.allclose(np.linalg.norm(d, axis=2), 1.0, atol=1e-6)
    # OpenCV convention: a centred principal point is ((W - 1) / 2, (H - 1) / 2).
    assert (cam.cx, cam.cy) == (3.5, 2.5)
    # Pixel (col 7, row 2): direction ((7 - cx) / fx, (2 - cy) / fy, 1), normalised.
    expect = np.array([(7 - cam.cx) / cam.fx, (2 - cam.cy) / cam.fy, 1.0])
    assert np.allclose(d[2, 7], expect / np.linalg.norm(expect), atol=1e-6)
    # The left edge of the image (the outer edge of column 0, u = -0.5) is at half the field of view.
    assert math.degrees(math.atan((cam.cx + 0.5) / cam.fx)) == pytest.approx(60.0)
    assert camera_ray_valid(cam).all()
    assert np.array_equal(camera_rays_columns(cam), camera_rays(cam).T)


def test_fisheye_is_equidistant_with_distortion():
    for k1 in (0.0, 0.05):
        cam = make_camera(64, 64, fov_deg=140.0, model="fisheye", distortion=(k1,) if k1 else ())
        d = camera_rays(cam).reshape(64, 64, 3)
        x = (np.arange(64) - cam.cx) / cam.fx
        r = np.hypot(x[None, :], x[:, None])
        theta = np.radians(_angle_deg(d))
        valid = camera_ray_valid(cam).reshape(64, 64)
        assert valid.mean() > 0.7
        assert np.allclose((theta * (1 + k1 * theta**2))[valid], r[valid], atol=1e-5)
        # The horizontal edge (u = -0.5, v = cy) is at half the field of view: theta_d(70 deg) = (cx + 0.5) / fx.
        t70 = math.radians(70.0)
        assert (cam.cx + 0.5) / cam.fx == pytest.approx(t70 * (1 + k1 * t70**2))
        assert not camera_ray_valid(cam).reshape(64, 64)[0, 0]  # corners are beyond the image circle


def test_rays_to_world_rotates_and_shares_the_origin():
    pose = np.eye(4)
    pose[:3, :3] = [[0, 0, 1], [1, 0, 0], [0, 1, 0]]  # camera z -> world x
    pose[:3, 3] = [1, 2, 3]
    d = np.array([[0, 0, 1.0]], np.float32)
    o, w = rays_to_world(d, pose)
    assert np.allclose(w, [[1, 0, 0]]) and np.allclose(o, [[1, 2, 3]])


@pytest.mark.parametrize(
    "kwargs",
    [dict(fov_deg=180.0), dict(fov_deg=0.0), dict(fov_deg=90.0, distortion=(0.1,)), dict(fov_deg=90.0, model="ortho")],
)
def test_bad_camera_raises(kwargs):
    with pytest.raises(SimrealError):
        make_camera(8, 8, **kwargs)


def _project_opencv(camera, points_world: np.ndarray) -> np.ndarray:
    """cv2.projectPoints / cv2.fisheye.projectPoints written out in numpy: (N, 3) world mm -> (N, 2) (u, v)."""
    pose = camera.pose_matrix()
    rot, centre = pose[:3, :3], pose[:3, 3]
    pc = (points_world - centre) @ rot  # world -> camera: R^T (X - C)
    a, b = pc[:, 0] / pc[:, 2], pc[:, 1] / pc[:, 2]
    if camera.model == "fisheye":
        r = np.hypot(a, b)
        theta = np.arctan(r)
        k = list(camera.distortion) + [0.0] * (4 - len(camera.distortion))
        theta_d = theta * (1 + k[0] * theta**2 + k[1] * theta**4 + k[2] * theta**6 + k[3] * theta**8)
        scale = np.where(r > 0, theta_d / np.maximum(r, 1e-300), 1.0)
        a, b = a * scale, b * scale
    return np.stack([camera.fx * a + camera.cx, camera.fy * b + camera.cy], axis=1)


def _marker_scene(camera, pixel: tuple[int, int], depth: float, half_px: float):
    """A mucosa wall behind a tiny polyp-labelled square centred on the OpenCV ray of ``pixel`` (u, v)."""
    from simreal.anatomy.mesh import AnatomyMesh

    pose = camera.pose_matrix()
    rot, centre = pose[:3, :3], pose[:3, 3]
    u, v = pixel
    a, b = (u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy
    if camera.model == "fisheye":  # invert theta_d = theta (1 + k1 theta^2) for the ray angle
        r_d = math.hypot(a, b)
        theta = r_d
        for _ in range(50):
            theta -= (theta * (1 + camera.distortion[0] * theta**2) - r_d) / (1 + 3 * camera.distortion[0] * theta**2)
        s = math.tan(theta) / r_d
        a, b = a * s, b * s
    x_cam = np.array([a, b, 1.0]) * depth
    marker = centre + rot @ x_cam
    h = half_px * depth / camera.fx * (1 + a * a + b * b)  # under half a pixel's footprint even off-axis
    ex, ey, ez = rot[:, 0], rot[:, 1], rot[:, 2]
    square = [marker + h * (sx * ex + sy * ey) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    wall = [centre + 3 * depth * ez + 40 * depth * (sx * ex + sy * ey) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    verts = np.array(wall + square)
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    mesh = AnatomyMesh(
        vertices=verts, faces=faces, face_labels=np.array([0, 0, 1, 1]), face_instances=np.array([0, 0, 1, 1]),
        vertex_texture=np.zeros((8, 2)), centerline=np.stack([centre, centre + ez]), centerline_radius=np.ones(2),
    )
    return mesh, marker


@pytest.mark.parametrize("model,distortion", [("pinhole", ()), ("fisheye", (0.04,))])
def test_stored_intrinsics_project_points_onto_the_pixels_the_renderer_shows(model, distortion):
    """OpenCV-style projection of a 3D point with the stored Camera lands on the very pixel the renderer
    draws it on: the point is a square smaller than half a pixel, so a half-pixel error misses it."""
    from simreal.render.raycast import MeshScene, cast_camera

    rot = np.array([[0.0, -1.0, 0.0], [0.6, 0.0, -0.8], [0.8, 0.0, 0.6]])  # any rotation
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rot, [5.0, -3.0, 20.0]
    cam = make_camera(20, 14, fov_deg=110.0, model=model, distortion=distortion, pose=pose)
    for pixel in [(13, 4), (2, 11), (9, 6)]:
        mesh, marker = _marker_scene(cam, pixel, depth=30.0, half_px=0.3)
        geo = cast_camera(MeshScene(mesh), cam)
        assert [tuple(int(x) for x in p) for p in np.argwhere(geo.mask == 1)] == [pixel[::-1]]
        uv = _project_opencv(cam, marker[None])[0]
        assert np.allclose(uv, pixel, atol=1e-6)
        assert geo.depth[pixel[1], pixel[0]] == pytest.approx(30.0, rel=1e-4)  # z-depth of the marker
        try:
            import cv2
        except ImportError:  # pragma: no cover - opencv is a test extra
            continue
        rvec, _ = cv2.Rodrigues(rot.T)
        tvec = -rot.T @ pose[:3, 3]
        k = np.array([[cam.fx, 0, cam.cx], [0, cam.fy, cam.cy], [0, 0, 1.0]])
        if model == "pinhole":
            got, _ = cv2.projectPoints(marker[None], rvec, tvec, k, np.zeros(5))
        else:
            got, _ = cv2.fisheye.projectPoints(marker[None, None], rvec, tvec, k, np.array([*distortion, 0, 0, 0.0]))
        assert np.allclose(got.reshape(2), pixel, atol=1e-6)


def _plain_rays(cam) -> tuple[np.ndarray, np.ndarray]:
    """The ray formula written out once for all (H * W, 3) pixels, float64 then float32: what the cached,
    separable / quadrant construction must reproduce bit for bit."""
    from simreal.render.camera import _undistort_theta
    from simreal.render.config import FISHEYE_MAX_THETA_DEG

    x = np.broadcast_to(((np.arange(cam.width) - cam.cx) / cam.fx)[None, :], (cam.height, cam.width)).ravel()
    y = np.broadcast_to(((np.arange(cam.height) - cam.cy) / cam.fy)[:, None], (cam.height, cam.width)).ravel()
    valid = np.ones(x.shape, bool)
    if cam.model == "pinhole":
        d = np.stack([x, y, np.ones_like(x)], axis=1)
    else:
        r = np.hypot(x, y)
        theta = _undistort_theta(r, tuple(cam.distortion)) if cam.distortion else r
        valid = theta < math.radians(FISHEYE_MAX_THETA_DEG)
        theta = np.minimum(theta, math.radians(FISHEYE_MAX_THETA_DEG))
        s = np.where(r > 0, np.sin(theta) / np.maximum(r, 1e-300), 1.0)
        d = np.stack([x * s, y * s, np.cos(theta)], axis=1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d.astype(np.float32), valid


@pytest.mark.parametrize("model,distortion", [("pinhole", ()), ("fisheye", ()), ("fisheye", (0.07,)), ("fisheye", (-0.04,))])
@pytest.mark.parametrize("width,height", [(16, 16), (15, 9), (8, 13), (1, 4)])
@pytest.mark.parametrize("cx_shift", [0.0, 0.3])
def test_rays_equal_the_plain_per_pixel_formula_bit_for_bit(model, distortion, width, height, cx_shift):
    """Every frame draws its own field of view, so the rays are rebuilt per frame from 1-D offsets or one
    quadrant; the result must be the very bits of the per-pixel formula (labels must not move)."""
    import dataclasses

    from simreal.data.format import Camera

    cam = make_camera(width, height, fov_deg=123.4, model=model, distortion=distortion)
    cam = Camera(**{**dataclasses.asdict(cam), "cx": cam.cx + cx_shift})  # off-centre: no quadrant shortcut
    d, valid = _plain_rays(cam)
    assert camera_rays(cam).tobytes() == d.tobytes()
    assert camera_rays_columns(cam).tobytes() == np.ascontiguousarray(d.T).tobytes()
    assert np.array_equal(camera_ray_valid(cam), valid)
