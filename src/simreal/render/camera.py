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
from typing import Any

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


def _unfold(quadrant: np.ndarray, h: int, w: int, flip_x: bool, flip_y: bool) -> np.ndarray:
    """The (H, W) grid of a quantity computed on the bottom-right quadrant (rows >= H // 2, cols >= W // 2)
    of a centred camera, mirrored into the other three (negated across an axis where ``flip_*``).

    Mirroring is exact: with ``cx = (W - 1) / 2`` the offsets ``c - cx`` of mirrored columns are exact
    negatives of each other, and everything computed from them is odd or even in them.
    """
    out = np.empty((h, w), quadrant.dtype)
    out[h // 2 :, w // 2 :] = quadrant
    left = quadrant[:, ::-1][:, : w // 2]
    out[h // 2 :, : w // 2] = -left if flip_x else left
    top = out[h // 2 :][::-1][: h // 2]
    out[: h // 2] = -top if flip_y else top
    return out


def _fisheye_directions(
    x: np.ndarray, y: np.ndarray, distortion: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unnormalised (dx, dy, dz) and validity of equidistant fisheye rays at normalised offsets (x, y)."""
    r = np.hypot(x, y)  # = theta_d
    theta = _undistort_theta(r, distortion) if distortion else r
    valid = theta < math.radians(FISHEYE_MAX_THETA_DEG)
    theta = np.minimum(theta, math.radians(FISHEYE_MAX_THETA_DEG))
    s = np.where(r > 0, np.sin(theta) / np.maximum(r, 1e-300), 1.0)
    return x * s, y * s, np.cos(theta), valid


@lru_cache(maxsize=16)
def _rays_cached(
    width: int, height: int, fx: float, fy: float, cx: float, cy: float, model: str, distortion: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(3, H * W) float32 unit directions and (H * W,) bool validity, read-only."""
    # Every frame draws its own field of view, so this cache rarely hits in a dataset: the grid is built
    # from 1-D offsets (pinhole: separable) or on one quadrant (fisheye, centred principal point), with
    # the same float64 operations per pixel as the plain (H * W, 3) formula, so the rays are the same bits.
    h, w = height, width
    x1 = (np.arange(w, dtype=np.float64) - cx) / fx  # pixel centres at integer coordinates (OpenCV)
    y1 = (np.arange(h, dtype=np.float64) - cy) / fy
    d_t = np.empty((3, h * w), np.float32)
    if model == "pinhole":
        valid = np.ones(h * w, dtype=bool)
        # |(x, y, 1)| = sqrt((x^2 + y^2) + 1): the order np.linalg.norm sums the three squares in.
        norm = np.sqrt(np.add.outer(y1 * y1, x1 * x1) + 1.0)
        for i, a in enumerate((x1[None, :], y1[:, None], 1.0)):
            d_t[i] = (a / norm).ravel()
    else:
        centred = cx == (w - 1) / 2.0 and cy == (h - 1) / 2.0
        # Newton's undistortion costs the most here: on a centred camera every radius occurs in the
        # bottom-right quadrant, so only that quarter is computed (the same values: the iteration count
        # depends on the largest step, which the quadrant holds too).
        xs, ys = (x1[w // 2 :], y1[h // 2 :]) if centred else (x1, y1)
        gx = np.ascontiguousarray(np.broadcast_to(xs[None, :], (len(ys), len(xs))))
        gy = np.ascontiguousarray(np.broadcast_to(ys[:, None], (len(ys), len(xs))))
        dx, dy, dz, valid = _fisheye_directions(gx, gy, distortion)
        norm = np.sqrt((dx * dx + dy * dy) + dz * dz)
        parts = [dx / norm, dy / norm, dz / norm]
        if centred:
            parts = [_unfold(a, h, w, i == 0, i == 1) for i, a in enumerate(parts)]
            valid = _unfold(valid, h, w, False, False)
        for i, a in enumerate(parts):
            d_t[i] = a.ravel()
        valid = valid.ravel()
    for a in (d_t, valid):
        a.setflags(write=False)
    return d_t, valid


@lru_cache(maxsize=16)
def _rays_rows_cached(*intrinsics: Any) -> np.ndarray:
    # Only for callers that want one row per ray: the renderer reads the columns.
    d = np.ascontiguousarray(_rays_cached(*intrinsics)[0].T)
    d.setflags(write=False)
    return d


def _intrinsics(camera: Camera) -> tuple[Any, ...]:
    return (camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy, camera.model,
            tuple(camera.distortion))


def camera_rays(camera: Camera) -> np.ndarray:
    """Unit ray directions in the camera frame, one per pixel in row-major order.

    Args:
        camera: intrinsics (the pose is ignored).

    Returns:
        (H * W, 3) float32, read-only and cached per set of intrinsics (the buffers are reused across
        frames). Fisheye pixels beyond :data:`FISHEYE_MAX_THETA_DEG` get a clamped direction; see
        :func:`camera_ray_valid`.
    """
    return _rays_rows_cached(*_intrinsics(camera))


def camera_ray_valid(camera: Camera) -> np.ndarray:
    """(H * W,) bool: which pixels carry a ray (all for pinhole; inside the image circle for fisheye)."""
    return _rays_cached(*_intrinsics(camera))[1]


def camera_rays_columns(camera: Camera) -> np.ndarray:
    """The same directions as :func:`camera_rays`, as a (3, H * W) float32 array (one row per axis)."""
    return _rays_cached(*_intrinsics(camera))[0]


def rotate_columns(rot: np.ndarray, cols: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``rot @ cols`` for a (3, 3) matrix and (3, M) float32 columns, elementwise: a BLAS call here may
    start threads that fight the other render workers for cores.

    Args:
        rot: (3, 3) float32.
        cols: (3, M) float32.
        out: (3, M) float32 to write into, e.g. ``rows.T`` of an (M, 3) array; a new array if None.
    """
    out = np.empty_like(cols) if out is None else out
    for i in range(3):
        np.multiply(cols[0], rot[i, 0], out=out[i])
        out[i] += cols[1] * rot[i, 1]
        out[i] += cols[2] * rot[i, 2]
    return out


def rays_to_world(directions: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate camera-frame directions into the world and give every ray the camera centre as origin.

    Args:
        directions: (N, 3) float32 unit directions, camera frame.
        pose: (4, 4) camera-to-world matrix, mm.

    Returns:
        origins (N, 3) float32 and directions (N, 3) float32, world frame.
    """
    pose = np.asarray(pose, dtype=np.float64)
    world = np.empty((len(directions), 3), np.float32)
    rotate_columns(pose[:3, :3].astype(np.float32), directions.T, out=world.T)
    origins = np.empty_like(world)
    origins[:] = pose[:3, 3].astype(np.float32)
    return origins, world
