"""Camera rays: pinhole and equidistant fisheye geometry, pixel centres at +0.5, bad input."""

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
    # Pixel (col 7, row 2): direction ((7.5 - cx) / fx, (2.5 - cy) / fy, 1), normalised.
    expect = np.array([(7.5 - cam.cx) / cam.fx, (2.5 - cam.cy) / cam.fy, 1.0])
    assert np.allclose(d[2, 7], expect / np.linalg.norm(expect), atol=1e-6)
    # The left edge of the image (u = 0) is at half the field of view.
    assert math.degrees(math.atan(cam.cx / cam.fx)) == pytest.approx(60.0)
    assert camera_ray_valid(cam).all()
    assert np.array_equal(camera_rays_columns(cam), camera_rays(cam).T)


def test_fisheye_is_equidistant_with_distortion():
    for k1 in (0.0, 0.05):
        cam = make_camera(64, 64, fov_deg=140.0, model="fisheye", distortion=(k1,) if k1 else ())
        d = camera_rays(cam).reshape(64, 64, 3)
        x = (np.arange(64) + 0.5 - cam.cx) / cam.fx
        r = np.hypot(x[None, :], x[:, None])
        theta = np.radians(_angle_deg(d))
        valid = camera_ray_valid(cam).reshape(64, 64)
        assert valid.mean() > 0.7
        assert np.allclose((theta * (1 + k1 * theta**2))[valid], r[valid], atol=1e-5)
        # The horizontal edge (u = 0, v = cy) is at half the field of view: theta_d(70 deg) = cx / fx.
        t70 = math.radians(70.0)
        assert cam.cx / cam.fx == pytest.approx(t70 * (1 + k1 * t70**2))
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
