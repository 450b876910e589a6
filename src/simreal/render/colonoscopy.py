"""The colonoscopy forward model: draw a frame's parameters, then render them deterministically.

``sample_frame_params(rng, mesh, config)`` draws everything random about one frame (camera pose along the
centerline, field of view, lens, colours, light, noise) into a JSON-able dict; ``render_frame(scene,
params, size)`` turns that dict into pixels and labels with no randomness of its own. The dict is stored
with the sample, so any frame can be re-rendered from its record.

Example:
    >>> mesh = make_colon(0)                                       # doctest: +SKIP
    >>> scene = MeshScene(mesh)
    >>> params = sample_frame_params(np.random.default_rng(0), mesh, ColonoscopyConfig())
    >>> arrays = render_frame(scene, params, 256)                  # image, depth, normals, mask, instance
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from simreal.anatomy.mesh import POLYP, AnatomyMesh
from simreal.data.format import Camera
from simreal.errors import SimrealError
from simreal.render.camera import make_camera
from simreal.render.raycast import MeshScene, cast_camera
from simreal.render.shading import ShadingParams, shade

Range = tuple[float, float]
RGBRange = tuple[tuple[float, float, float], tuple[float, float, float]]

#: Class ids written to the mask files.
MASK_CLASSES = {0: "background", 1: "polyp"}


@dataclass(frozen=True)
class ColonoscopyConfig:
    """Ranges the colonoscopy frames are drawn from (uniform unless said). Lengths in mm, angles in degrees.

    Args:
        fov_deg: horizontal field of view.
        fisheye: use the equidistant fisheye lens model (else pinhole).
        fisheye_k1: range of the first fisheye distortion coefficient.
        offset_frac: largest distance of the camera from the centerline, as a fraction of the local radius.
        min_clearance_frac: smallest distance from the camera to the nearest mesh vertex, as a fraction of
            the local radius (the tip never touches the wall or sits inside a polyp).
        look_deg: largest yaw / pitch away from the centerline direction.
        backward_prob: probability of looking against the centerline order.
        end_margin_frac: fraction of the centerline length kept free at both ends.
        normals: write the normals file.
        base_rgb, dark_rgb, vessel_rgb: per-channel ranges (low, high) of the mucosa, mottling and
            vessel albedos (linear RGB).
        vessel_strength, polyp_tint, light_power (mm^2), spot_exponent, ambient, specular, shininess,
        vignetting, noise_std, gamma: see :class:`~simreal.render.shading.ShadingParams`.
    """

    fov_deg: Range = (100.0, 140.0)
    fisheye: bool = False
    fisheye_k1: Range = (-0.05, 0.05)
    offset_frac: float = 0.5
    min_clearance_frac: float = 0.2
    look_deg: float = 25.0
    backward_prob: float = 0.5
    end_margin_frac: float = 0.08
    normals: bool = True
    base_rgb: RGBRange = ((0.72, 0.20, 0.14), (0.95, 0.36, 0.28))
    dark_rgb: RGBRange = ((0.45, 0.10, 0.08), (0.70, 0.25, 0.20))
    vessel_rgb: RGBRange = ((0.35, 0.02, 0.04), (0.55, 0.10, 0.12))
    vessel_strength: Range = (0.2, 0.7)
    polyp_tint: RGBRange = ((0.90, 0.85, 0.80), (1.10, 1.05, 1.00))
    light_power: Range = (100.0, 450.0)
    spot_exponent: Range = (0.5, 2.0)
    ambient: Range = (0.0, 0.03)
    specular: Range = (0.15, 0.6)
    shininess: Range = (15.0, 60.0)
    vignetting: Range = (0.0, 0.5)
    noise_std: Range = (0.0, 0.015)
    gamma: Range = (2.0, 2.4)

    def __post_init__(self) -> None:
        problems = []
        for f in dataclasses.fields(self):
            val = getattr(self, f.name)
            if isinstance(val, tuple) and len(val) == 2:
                lo, hi = val
                if np.any(np.asarray(lo) > np.asarray(hi)):
                    problems.append(f"{f.name}: low {lo} above high {hi}")
        lo, hi = self.fov_deg
        if lo <= 0 or hi >= (170.0 if self.fisheye else 179.0):
            problems.append(f"fov_deg {self.fov_deg} out of range")
        if not 0.0 <= self.offset_frac < 1.0:
            problems.append(f"offset_frac must be in [0, 1), got {self.offset_frac}")
        if not 0.0 <= self.end_margin_frac < 0.5:
            problems.append(f"end_margin_frac must be in [0, 0.5), got {self.end_margin_frac}")
        if problems:
            raise SimrealError("invalid colonoscopy config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists), so it compares equal after a JSON round trip."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1]))


def _uniform_rgb(rng: np.random.Generator, r: RGBRange) -> list[float]:
    return [float(x) for x in rng.uniform(np.asarray(r[0]), np.asarray(r[1]))]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _perpendicular_basis(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors spanning the plane normal to unit ``f`` (a, b, f right-handed)."""
    ref = np.array([0.0, 0.0, 1.0]) if abs(f[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    a = _unit(np.cross(ref, f))
    return a, np.cross(f, a)


class _Centerline:
    """Arc-length parametrised centerline with radius."""

    def __init__(self, points: np.ndarray, radius: np.ndarray):
        seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
        self.s = np.concatenate([[0.0], np.cumsum(seg)])
        self.points, self.radius = points, radius
        self.length = float(self.s[-1])

    def at(self, s: float) -> tuple[np.ndarray, float]:
        p = np.array([np.interp(s, self.s, self.points[:, k]) for k in range(3)])
        return p, float(np.interp(s, self.s, self.radius))

    def tangent(self, s: float, window: float) -> np.ndarray:
        a, _ = self.at(max(s - window, 0.0))
        b, _ = self.at(min(s + window, self.length))
        return _unit(b - a)


def _inside_lumen(
    p: np.ndarray, c: np.ndarray, mesh: AnatomyMesh, kdtree: Any, normals: np.ndarray
) -> tuple[bool, float]:
    """Whether ``p`` lies on the same side of the nearest surface as the centerline point ``c``."""
    dist_p, ip = kdtree.query(p)
    _, ic = kdtree.query(c)
    side_p = float(np.dot(p - mesh.vertices[ip], normals[ip]))
    side_c = float(np.dot(c - mesh.vertices[ic], normals[ic]))
    return side_p * side_c > 0, float(dist_p)


def sample_frame_params(
    rng: np.random.Generator,
    mesh: AnatomyMesh,
    config: ColonoscopyConfig,
    *,
    kdtree: Any = None,
    vertex_normals: np.ndarray | None = None,
) -> dict[str, Any]:
    """Draw everything random about one frame.

    Args:
        rng: the frame's generator (``np.random.default_rng(np.random.SeedSequence([seed, index]))``).
        mesh: the anatomy (its centerline and radius place the camera).
        config: the ranges.
        kdtree: optional ``scipy.spatial.cKDTree`` over ``mesh.vertices`` (built here if not given; pass
            one when drawing many frames).
        vertex_normals: optional ``mesh.vertex_normals()`` to go with ``kdtree``.

    Returns:
        JSON-able dict: ``pose`` (4x4 camera-to-world, mm), ``fov_deg``, ``camera_model``,
        ``distortion``, placement (``centerline_s_mm``, ``offset_mm``, ``yaw_deg``, ``pitch_deg``,
        ``roll_deg``, ``backward``) and ``shading`` (the fields of ShadingParams).
    """
    if kdtree is None:
        from scipy.spatial import cKDTree

        kdtree = cKDTree(mesh.vertices)
    if vertex_normals is None:
        vertex_normals = mesh.vertex_normals()
    line = _Centerline(mesh.centerline, mesh.centerline_radius)
    margin = config.end_margin_frac * line.length
    for _attempt in range(64):
        s = _uniform(rng, (margin, line.length - margin))
        c, radius = line.at(s)
        backward = bool(rng.random() < config.backward_prob)
        f = line.tangent(s, window=max(radius, 1e-3)) * (-1.0 if backward else 1.0)
        a, b = _perpendicular_basis(f)
        phi = rng.uniform(0.0, 2.0 * math.pi)
        rho = config.offset_frac * radius * math.sqrt(rng.random())
        p = c + rho * (math.cos(phi) * a + math.sin(phi) * b)
        inside, clearance = _inside_lumen(p, c, mesh, kdtree, vertex_normals)
        if inside and clearance >= config.min_clearance_frac * radius:
            break
    else:
        raise SimrealError(
            "could not place the camera inside the lumen in 64 tries; is the centerline inside the mesh?"
        )
    yaw = _uniform(rng, (-config.look_deg, config.look_deg))
    pitch = _uniform(rng, (-config.look_deg, config.look_deg))
    roll = _uniform(rng, (0.0, 360.0))
    z = _unit(f + math.tan(math.radians(yaw)) * a + math.tan(math.radians(pitch)) * b)
    za, zb = _perpendicular_basis(z)
    x = math.cos(math.radians(roll)) * za + math.sin(math.radians(roll)) * zb
    y = np.cross(z, x)  # x right, y down, z forward: x cross y = z
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, p
    fov = _uniform(rng, config.fov_deg)
    distortion = [_uniform(rng, config.fisheye_k1)] if config.fisheye else []
    shading = {
        "base_rgb": _uniform_rgb(rng, config.base_rgb),
        "dark_rgb": _uniform_rgb(rng, config.dark_rgb),
        "vessel_rgb": _uniform_rgb(rng, config.vessel_rgb),
        "vessel_strength": _uniform(rng, config.vessel_strength),
        "polyp_tint": _uniform_rgb(rng, config.polyp_tint),
        "light_power": _uniform(rng, config.light_power),
        "spot_exponent": _uniform(rng, config.spot_exponent),
        "ambient": _uniform(rng, config.ambient),
        "specular": _uniform(rng, config.specular),
        "shininess": _uniform(rng, config.shininess),
        "vignetting": _uniform(rng, config.vignetting),
        "noise_std": _uniform(rng, config.noise_std),
        "noise_seed": int(rng.integers(0, 2**31 - 1)),
        "gamma": _uniform(rng, config.gamma),
    }
    return {
        "pose": [[float(v) for v in row] for row in pose],
        "fov_deg": fov,
        "camera_model": "fisheye" if config.fisheye else "pinhole",
        "distortion": distortion,
        "centerline_s_mm": float(s),
        "offset_mm": float(rho),
        "yaw_deg": yaw,
        "pitch_deg": pitch,
        "roll_deg": roll,
        "backward": backward,
        "shading": shading,
    }


def camera_from_params(params: dict[str, Any], size: int | tuple[int, int]) -> Camera:
    """The Camera (intrinsics + pose) a frame's params describe; ``size`` is S or (H, W)."""
    h, w = (size, size) if isinstance(size, int) else size
    return make_camera(
        w, h, fov_deg=float(params["fov_deg"]), model=params["camera_model"],
        distortion=tuple(params["distortion"]), pose=np.asarray(params["pose"], dtype=np.float64),
    )


def render_frame(
    scene: MeshScene,
    params: dict[str, Any],
    size: int | tuple[int, int],
    *,
    normals: bool = True,
    timings: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Render one frame from drawn params (deterministic: same params, same arrays).

    Args:
        scene: the prepared mesh.
        params: from :func:`sample_frame_params`.
        size: S (square) or (H, W).
        normals: include the normals array.
        timings: if given, receives ``cast_ms`` and ``shade_ms`` (wall time of the two stages).

    Returns:
        ``image`` (H, W, 3) uint8 RGB; ``depth`` (H, W) float32 z-depth mm, 0 = no surface; ``normals``
        (H, W, 3) float32 unit, camera frame, facing the camera; ``mask`` (H, W) uint8 (1 = polyp,
        0 = mucosa or no surface); ``instance`` (H, W) uint8 polyp instance id (0 = none).
    """
    t0 = time.perf_counter()
    camera = camera_from_params(params, size)
    geo = cast_camera(scene, camera)
    t1 = time.perf_counter()
    shading = ShadingParams(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in params["shading"].items()})
    image = shade(geo, shading, polyp_class=POLYP)
    if timings is not None:
        timings["cast_ms"] = (t1 - t0) * 1e3
        timings["shade_ms"] = (time.perf_counter() - t1) * 1e3
    polyp = geo.mask == POLYP
    out = {
        "image": image,
        "depth": geo.depth,
        "mask": polyp.astype(np.uint8),
        "instance": np.where(polyp, geo.instance, 0).astype(np.uint8),
    }
    if normals:
        out["normals"] = geo.normals
    return out
