"""Camera rays for the dataset's :class:`~simreal.data.format.Camera` (pinhole and equidistant fisheye).

Camera frame: x right, y down, z forward; pixels in OpenCV's convention: pixel ``(u, v)`` = (column, row)
has its centre at the integer coordinates ``(u, v)``, so the image spans [-0.5, W - 0.5] x [-0.5, H - 0.5]
and a centred principal point is ``((W - 1) / 2, (H - 1) / 2)``. The stored intrinsics therefore work as
they are in OpenCV (``cv2.projectPoints``; ``cv2.fisheye.projectPoints`` with D = (k1, k2, k3, k4)).
COLMAP puts the centre of the top-left pixel at (0.5, 0.5) instead: add 0.5 to cx and cy for its
``PINHOLE`` / ``OPENCV_FISHEYE`` cameras. Poses are camera-to-world 4x4 matrices in millimetres (OpenCV
and COLMAP want world-to-camera: invert them).

Example:
    >>> cam = make_camera(64, 64, fov_deg=120.0)
    >>> d = camera_rays(cam)           # (64 * 64, 3) unit directions, camera frame
    >>> d.shape
    (4096, 3)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from simreal.data.format import Camera, CameraModel
from simreal.errors import SimrealError

from simreal.render.config import FISHEYE_MAX_THETA_DEG


def _fisheye_theta_d(theta: float, distortion: tuple[float, ...]) -> float:
    """Distorted angle ``theta_d = theta (1 + k1 theta^2 + k2 theta^4 + ...)``."""
    poly = 1.0 + sum(k * theta ** (2 * (i + 1)) for i, k in enumerate(distortion))
    return theta * poly


def make_camera(
    width: int,
    height: int,
    *,
    fov_deg: float,
    model: CameraModel = "pinhole",
    distortion: tuple[float, ...] = (),
    pose: np.ndarray | None = None,
) -> Camera:
    """A camera whose horizontal field of view is ``fov_deg``, principal point at the image centre.

    The field of view spans the full image width, from the left edge of the first pixel column
    (u = -0.5) to the right edge of the last (u = W - 0.5): ``fx = (W / 2) / tan(fov / 2)`` for pinhole,
    ``fx = (W / 2) / theta_d(fov / 2)`` for fisheye; ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``.

    Args:
        width, height: image size in pixels.
        fov_deg: horizontal field of view in degrees, (0, 180) for pinhole, (0, 170] for fisheye.
        model: "pinhole" or "fisheye" (equidistant with polynomial distortion).
        distortion: fisheye coefficients (k1, k2, ...); must be empty for pinhole.
        pose: (4, 4) camera-to-world matrix in mm, or None.

    Returns:
        Camera with square pixels (fx == fy).
    """
    if width < 1 or height < 1:
        raise SimrealError(f"image size must be positive, got {width}x{height}")
    if model not in ("pinhole", "fisheye"):
        raise SimrealError(f"unknown camera model {model!r}; use 'pinhole' or 'fisheye'")
    half = math.radians(fov_deg) / 2.0
    if model == "pinhole":
        if not 0.0 < fov_deg < 180.0:
            raise SimrealError(f"pinhole field of view must be in (0, 180) degrees, got {fov_deg}")
        if distortion:
            raise SimrealError("a pinhole camera takes no distortion coefficients")
        f = (width / 2.0) / math.tan(half)
    else:
        if not 0.0 < fov_deg <= 170.0:
            raise SimrealError(f"fisheye field of view must be in (0, 170] degrees, got {fov_deg}")
        f = (width / 2.0) / _fisheye_theta_d(half, tuple(distortion))
    pose_t = None
    if pose is not None:
        pose = np.asarray(pose, dtype=np.float64)
        if pose.shape != (4, 4):
            raise SimrealError(f"pose must be a 4x4 matrix, got shape {pose.shape}")
        pose_t = tuple(tuple(float(x) for x in row) for row in pose)
    return Camera(
        width=int(width), height=int(height), fx=f, fy=f, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0,
        model=model, distortion=tuple(float(k) for k in distortion), pose=pose_t,
    )


def _undistort_theta(theta_d: np.ndarray, distortion: tuple[float, ...]) -> np.ndarray:
    """Invert ``theta_d(theta)`` by Newton's method (float64, a handful of iterations suffice)."""
    theta = theta_d.copy()
    for _ in range(20):
        f = theta.copy()
        df = np.ones_like(theta)
        for i, k in enumerate(distortion):
            p = 2 * (i + 1)
            f += k * theta ** (p + 1)
            df += k * (p + 1) * theta**p
        step = (f - theta_d) / df
        theta -= step
        if np.abs(step).max() < 1e-12:
            break
    return theta


@lru_cache(maxsize=16)
def _rays_cached(
    width: int, height: int, fx: float, fy: float, cx: float, cy: float, model: str, distortion: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cols = np.arange(width, dtype=np.float64)  # pixel centres at integer coordinates (OpenCV)
    rows = np.arange(height, dtype=np.float64)
    x = np.broadcast_to(((cols - cx) / fx)[None, :], (height, width)).ravel()
    y = np.broadcast_to(((rows - cy) / fy)[:, None], (height, width)).ravel()
    valid = np.ones(x.shape, dtype=bool)
    if model == "pinhole":
        d = np.stack([x, y, np.ones_like(x)], axis=1)
    else:
        r = np.hypot(x, y)  # = theta_d
        theta = _undistort_theta(r, distortion) if distortion else r
        valid = theta < math.radians(FISHEYE_MAX_THETA_DEG)
        theta = np.minimum(theta, math.radians(FISHEYE_MAX_THETA_DEG))
        s = np.where(r > 0, np.sin(theta) / np.maximum(r, 1e-300), 1.0)
        d = np.stack([x * s, y * s, np.cos(theta)], axis=1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    d = d.astype(np.float32)
    d_t = np.ascontiguousarray(d.T)
    for a in (d, d_t, valid):
        a.setflags(write=False)
    return d, d_t, valid


def camera_rays(camera: Camera) -> np.ndarray:
    """Unit ray directions in the camera frame, one per pixel in row-major order.

    Args:
        camera: intrinsics (the pose is ignored).

    Returns:
        (H * W, 3) float32, read-only and cached per set of intrinsics (the buffers are reused across
        frames). Fisheye pixels beyond :data:`FISHEYE_MAX_THETA_DEG` get a clamped direction; see
        :func:`camera_ray_valid`.
    """
    return _rays_cached(
        camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy, camera.model,
        tuple(camera.distortion),
    )[0]


def camera_ray_valid(camera: Camera) -> np.ndarray:
    """(H * W,) bool: which pixels carry a ray (all for pinhole; inside the image circle for fisheye)."""
    return _rays_cached(
        camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy, camera.model,
        tuple(camera.distortion),
    )[2]


def camera_rays_columns(camera: Camera) -> np.ndarray:
    """The same directions as :func:`camera_rays`, as a (3, H * W) float32 array (one row per axis)."""
    return _rays_cached(
        camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy, camera.model,
        tuple(camera.distortion),
    )[1]


def rays_to_world(directions: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate camera-frame directions into the world and give every ray the camera centre as origin.

    Args:
        directions: (N, 3) float32 unit directions, camera frame.
        pose: (4, 4) camera-to-world matrix, mm.

    Returns:
        origins (N, 3) float32 and directions (N, 3) float32, world frame.
    """
    pose = np.asarray(pose, dtype=np.float64)
    rot = pose[:3, :3].astype(np.float32)
    # Elementwise rather than ``directions @ rot.T``: a BLAS call here may start threads that fight the
    # other render workers for cores.
    world = np.empty_like(directions, dtype=np.float32)
    for i in range(3):
        np.multiply(directions[:, 0], rot[i, 0], out=world[:, i])
        world[:, i] += directions[:, 1] * rot[i, 1]
        world[:, i] += directions[:, 2] * rot[i, 2]
    origins = np.empty_like(world)
    origins[:] = pose[:3, 3].astype(np.float32)
    return origins, world
