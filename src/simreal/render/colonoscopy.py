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

#: Shapes of the endoscope's field stop (black image border).
FIELD_STOPS = ("none", "circle", "octagon")


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
        polyp_view_prob: probability that a frame looks at a polyp close up (as in polyp datasets such as
            CVC-ClinicDB) instead of down the lumen; meshes without polyps always use the lumen pose.
        polyp_distance_mm: range of the tip-to-polyp distance of a polyp view; the upper end is further
            capped at ``polyp_distance_diameters`` times the polyp's size (small polyps are seen close up).
        polyp_distance_diameters: see ``polyp_distance_mm``.
        polyp_offcentre: largest angle of the polyp from the optical axis, as a fraction of half the
            field of view.
        polyp_tilt_deg: largest angle between the viewing direction and the polyp's way to the
            centerline (oblique views along the lumen).
        field_stop: ``"none"``, ``"circle"`` or ``"octagon"``: image pixels outside the endoscope's field
            stop are black (as in real endoscope frames), and the labels there say "nothing seen":
            depth 0, normals 0, mask 0, instance 0 (no supervision or evaluation on pixels without
            image content).
        base_rgb, dark_rgb, vessel_rgb: per-channel ranges (low, high) of the mucosa, mottling and
            vessel albedos (linear RGB).
        vessel_strength, polyp_tint, light_power (mm^2), spot_exponent, ambient, specular, shininess,
        vignetting, noise_std, gamma, exposure: see :class:`~simreal.render.shading.ShadingParams`.
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
    polyp_view_prob: float = 0.5
    polyp_distance_mm: Range = (8.0, 40.0)
    polyp_distance_diameters: float = 2.5
    polyp_offcentre: float = 0.5
    polyp_tilt_deg: float = 60.0
    field_stop: str = "none"
    # Tuned by eye against CVC-ClinicDB frames: orange-pink to salmon mucosa (linear G/R ~0.3-0.55).
    base_rgb: RGBRange = ((0.80, 0.30, 0.12), (0.95, 0.52, 0.36))
    dark_rgb: RGBRange = ((0.60, 0.18, 0.08), (0.85, 0.36, 0.24))
    vessel_rgb: RGBRange = ((0.40, 0.04, 0.04), (0.60, 0.12, 0.10))
    vessel_strength: Range = (0.1, 0.5)
    # Polyps a bit redder (G, B down) or paler (all up) than the wall.
    polyp_tint: RGBRange = ((0.92, 0.65, 0.65), (1.05, 1.0, 1.0))
    light_power: Range = (100.0, 450.0)
    spot_exponent: Range = (0.5, 2.0)
    ambient: Range = (0.0, 0.03)
    specular: Range = (0.5, 1.5)
    shininess: Range = (60.0, 250.0)
    vignetting: Range = (0.0, 0.5)
    noise_std: Range = (0.0, 0.015)
    gamma: Range = (2.0, 2.4)
    exposure: Range = (0.45, 0.8)

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
        if not 0.0 <= self.polyp_view_prob <= 1.0:
            problems.append(f"polyp_view_prob must be in [0, 1], got {self.polyp_view_prob}")
        if self.polyp_distance_mm[0] <= 0 or self.polyp_distance_diameters <= 0:
            problems.append("polyp distances must be positive")
        if not 0.0 <= self.polyp_offcentre < 1.0 or not 0.0 <= self.polyp_tilt_deg < 90.0:
            problems.append("polyp_offcentre must be in [0, 1) and polyp_tilt_deg in [0, 90)")
        if self.field_stop not in FIELD_STOPS:
            problems.append(f"field_stop must be one of {FIELD_STOPS}, got {self.field_stop!r}")
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


def polyp_targets(mesh: AnatomyMesh) -> list[tuple[int, np.ndarray, float]]:
    """The polyps a camera can be aimed at: (instance id, centre (3,) mm, size mm) per polyp instance.

    The centre is the mean of the polyp's vertices; the size is twice the 90th percentile of their distance
    from it (about the diameter).
    """
    sel = (mesh.face_labels == POLYP) & (mesh.face_instances > 0)
    if not sel.any():
        return []
    faces, inst = mesh.faces[sel], mesh.face_instances[sel]
    out = []
    for k in np.unique(inst):
        pts = mesh.vertices[np.unique(faces[inst == k])]
        centre = pts.mean(axis=0)
        size = 2.0 * float(np.quantile(np.linalg.norm(pts - centre, axis=1), 0.9))
        out.append((int(k), centre, size))
    return out


def _rotate_towards(z: np.ndarray, angle: float, azimuth: float) -> np.ndarray:
    """Unit ``z`` tilted by ``angle`` rad towards the perpendicular direction at ``azimuth`` rad."""
    a, b = _perpendicular_basis(z)
    return _unit(math.cos(angle) * z + math.sin(angle) * (math.cos(azimuth) * a + math.sin(azimuth) * b))


def _lumen_pose(
    rng: np.random.Generator, line: _Centerline, mesh: AnatomyMesh, config: ColonoscopyConfig, kdtree: Any,
    vertex_normals: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Camera centre and forward axis on the centerline pose (offset from the line, looking along it)."""
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
    z = _unit(f + math.tan(math.radians(yaw)) * a + math.tan(math.radians(pitch)) * b)
    info = {"centerline_s_mm": float(s), "offset_mm": float(rho), "yaw_deg": yaw, "pitch_deg": pitch,
            "backward": backward}
    return p, z, info


def _polyp_pose(
    rng: np.random.Generator, line: _Centerline, mesh: AnatomyMesh, config: ColonoscopyConfig, kdtree: Any,
    vertex_normals: np.ndarray, targets: list[tuple[int, np.ndarray, float]], half_fov: float,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
    """Camera centre and forward axis looking at a random polyp from inside the lumen, or None if no
    placement in 64 tries passes the lumen and clearance checks."""
    instance, q, size = targets[int(rng.integers(len(targets)))]
    i = int(np.argmin(np.linalg.norm(line.points - q, axis=1)))
    s = float(line.s[i])
    c, radius = line.at(s)
    to_lumen = _unit(c - q)
    lo, hi = config.polyp_distance_mm
    hi = float(np.clip(config.polyp_distance_diameters * size, lo, hi))
    tilt_max = math.radians(config.polyp_tilt_deg)
    for _attempt in range(64):
        dist = _uniform(rng, (lo, hi))
        view = _rotate_towards(to_lumen, _uniform(rng, (0.0, tilt_max)), _uniform(rng, (0.0, 2.0 * math.pi)))
        p = q + dist * view
        # Inside the lumen twice over: within 0.9 of the local radius of the centerline point nearest the
        # camera, and on that point's side of the nearest surface (meshes whose polyp and wall normals
        # disagree fool the side test alone).
        j = int(np.argmin(np.linalg.norm(line.points - p, axis=1)))
        if np.linalg.norm(p - line.points[j]) > 0.9 * line.radius[j]:
            continue
        inside, clearance = _inside_lumen(p, line.points[j], mesh, kdtree, vertex_normals)
        if inside and clearance >= config.min_clearance_frac * radius:
            break
    else:
        return None
    # Aim at the polyp, then turn away by up to polyp_offcentre of the half field of view.
    off = config.polyp_offcentre * half_fov * math.sqrt(rng.random())
    z = _rotate_towards(_unit(q - p), off, _uniform(rng, (0.0, 2.0 * math.pi)))
    f = line.tangent(s, window=max(radius, 1e-3))
    info = {"centerline_s_mm": s, "offset_mm": float(np.linalg.norm(p - c)), "polyp_instance": instance,
            "polyp_distance_mm": float(dist), "polyp_offcentre_deg": math.degrees(off),
            "backward": bool(np.dot(z, f) < 0)}
    return p, z, info


def sample_frame_params(
    rng: np.random.Generator,
    mesh: AnatomyMesh,
    config: ColonoscopyConfig,
    *,
    kdtree: Any = None,
    vertex_normals: np.ndarray | None = None,
    targets: list[tuple[int, np.ndarray, float]] | None = None,
) -> dict[str, Any]:
    """Draw everything random about one frame.

    With probability ``config.polyp_view_prob`` (and if the mesh has polyps) the camera looks at a random
    polyp from ``polyp_distance_mm`` away; otherwise it sits near the centerline looking along the lumen.

    Args:
        rng: the frame's generator (``np.random.default_rng(np.random.SeedSequence([seed, index]))``).
        mesh: the anatomy (its centerline and radius place the camera).
        config: the ranges.
        kdtree: optional ``scipy.spatial.cKDTree`` over ``mesh.vertices`` (built here if not given; pass
            one when drawing many frames).
        vertex_normals: optional ``mesh.vertex_normals()`` to go with ``kdtree``.
        targets: optional :func:`polyp_targets` of the mesh (computed here if not given).

    Returns:
        JSON-able dict: ``pose`` (4x4 camera-to-world, mm), ``fov_deg``, ``camera_model``,
        ``distortion``, ``view`` (``"lumen"`` or ``"polyp"``), placement (``centerline_s_mm``,
        ``offset_mm``, ``roll_deg``, ``backward``; lumen views: ``yaw_deg``, ``pitch_deg``; polyp views:
        ``polyp_instance``, ``polyp_distance_mm``, ``polyp_offcentre_deg``) and ``shading`` (the fields of
        ShadingParams).
    """
    if kdtree is None:
        from scipy.spatial import cKDTree

        kdtree = cKDTree(mesh.vertices)
    if vertex_normals is None:
        vertex_normals = mesh.vertex_normals()
    if targets is None:
        targets = polyp_targets(mesh)
    line = _Centerline(mesh.centerline, mesh.centerline_radius)
    want_polyp = bool(rng.random() < config.polyp_view_prob) and bool(targets)
    fov = _uniform(rng, config.fov_deg)
    placed = None
    if want_polyp:
        half = math.radians(fov) / 2.0
        placed = _polyp_pose(rng, line, mesh, config, kdtree, vertex_normals, targets, half)
    view = "polyp" if placed is not None else "lumen"
    if placed is None:
        placed = _lumen_pose(rng, line, mesh, config, kdtree, vertex_normals)
    p, z, placement = placed
    roll = _uniform(rng, (0.0, 360.0))
    za, zb = _perpendicular_basis(z)
    x = math.cos(math.radians(roll)) * za + math.sin(math.radians(roll)) * zb
    y = np.cross(z, x)  # x right, y down, z forward: x cross y = z
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, p
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
        "exposure": _uniform(rng, config.exposure),
    }
    return {
        "pose": [[float(v) for v in row] for row in pose],
        "fov_deg": fov,
        "camera_model": "fisheye" if config.fisheye else "pinhole",
        "distortion": distortion,
        "view": view,
        "field_stop": config.field_stop,
        **placement,
        "roll_deg": roll,
        "shading": shading,
    }


_STOPS: dict[tuple[int, int, str], np.ndarray] = {}


def field_stop_mask(h: int, w: int, shape: str) -> np.ndarray:
    """(H, W) bool, True inside the endoscope's field stop (cached, read-only).

    ``"circle"``: the inscribed circle; ``"octagon"``: the square with its corners cut at
    ``|x| + |y| <= 1.4`` (x, y in [-1, 1] across the image), the shape of CVC-ClinicDB frames;
    ``"none"``: all True.
    """
    if shape not in FIELD_STOPS:
        raise SimrealError(f"unknown field stop {shape!r}; use one of {FIELD_STOPS}")
    key = (h, w, shape)
    if key not in _STOPS:
        y = ((np.arange(h) + 0.5) / h * 2.0 - 1.0)[:, None]
        x = ((np.arange(w) + 0.5) / w * 2.0 - 1.0)[None, :]
        if shape == "circle":
            m = x**2 + y**2 <= 1.0
        elif shape == "octagon":
            m = (np.abs(x) <= 0.97) & (np.abs(y) <= 0.97) & (np.abs(x) + np.abs(y) <= 1.4)
        else:
            m = np.ones((h, w), bool)
        m = np.broadcast_to(m, (h, w)).copy()
        m.setflags(write=False)
        _STOPS[key] = m
    return _STOPS[key]


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
        (H, W, 3) float32 unit, camera frame, facing the camera (0 = no surface); ``mask`` (H, W) uint8
        (1 = polyp, 0 = mucosa or no surface); ``instance`` (H, W) uint8 polyp instance id (0 = none).
        Outside ``params["field_stop"]`` (:func:`field_stop_mask`) every array is 0 on the same pixels:
        the image is black there, so the labels say "no surface seen".
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
    stop = params.get("field_stop", "none")
    if stop != "none":
        # One mask for every array: a label where the image is black would supervise (and score) a
        # network on pixels it cannot see, e.g. a polyp only behind the stop labelled polyp.
        outside = ~field_stop_mask(image.shape[0], image.shape[1], stop)
        # np.where builds new arrays, so the cast's buffers are never written to.
        out = {
            k: np.where(outside[..., None] if v.ndim == 3 else outside, 0, v).astype(v.dtype, copy=False)
            for k, v in out.items()
        }
    return out
