"""The colonoscopy forward model: draw a frame's parameters, then render them deterministically.

``sample_frame_params(rng, mesh, config)`` draws everything random about one frame (camera pose along the
centerline or at a polyp, field of view, lens, colours, light, noise) into a :class:`FrameParams`;
``render_frame(scene, params, size)`` turns it into a :class:`Frame` (pixels, labels, camera) with no
randomness of its own. The params are stored with every sample (``FrameParams.to_dict()``), so any frame
can be rendered again from its record. :class:`ColonoscopyRenderer` holds one mesh ready for both steps.

Example:
    >>> import numpy as np, simreal
    >>> colon = simreal.procedural_colon(seed=3)                          # doctest: +SKIP
    >>> renderer = ColonoscopyRenderer(colon, ColonoscopyConfig())       # doctest: +SKIP
    >>> params = renderer.sample(np.random.default_rng(0))               # doctest: +SKIP
    >>> frame = renderer.render(params, size=256)                        # doctest: +SKIP
    >>> frame.image.shape, frame.depth.shape, frame.camera.cx            # doctest: +SKIP
    ((256, 256, 3), (256, 256), 127.5)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import numpy as np

from simreal.anatomy.mesh import POLYP, AnatomyMesh
from simreal.data.format import Camera, CameraModel, SampleRecord
from simreal.errors import SimrealError
from simreal.render.camera import make_camera
from simreal.render.config import (
    FIELD_STOPS,
    AppearanceConfig,
    ColonoscopyConfig,
    FieldStop,
    LensConfig,
    PolypViewConfig,
    PoseConfig,
    Range,
    RealismConfig,
    RGBRange,
    _Checks,
)
from simreal.render.look import RealismParams, render_realistic, sample_realism
from simreal.render.raycast import MeshScene, Visibility, cast_camera
from simreal.render.shading import ShadingParams, shade

__all__ = [
    "FIELD_STOPS", "MASK_CLASSES", "AppearanceConfig", "ColonoscopyConfig", "ColonoscopyRenderer", "Frame",
    "FrameParams", "LensConfig", "Placement", "PlacementIndex", "PolypViewConfig", "PoseConfig", "RealismConfig",
    "RealismParams", "camera_from_params", "field_stop_mask", "polyp_targets", "render_frame", "sample_frame_params",
]

#: Class ids written to the mask files.
MASK_CLASSES = {0: "background", 1: "polyp"}


# --- what one frame draws ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """How a frame's pose was drawn: a record for people and statistics; rendering reads only the pose.

    Args:
        view: ``"lumen"`` (near the centerline, looking along it) or ``"polyp"`` (looking at a polyp).
        centerline_s_mm: arc length of the centerline point the camera was placed from, mm.
        offset_mm: distance of the camera from that centerline point, mm.
        roll_deg: roll about the optical axis, degrees.
        backward: whether the camera looks against the centerline order.
        yaw_deg, pitch_deg: lumen views: the look-around angles away from the centerline direction.
        polyp_instance, polyp_distance_mm, polyp_offcentre_deg: polyp views: the polyp aimed at, the
            tip-to-polyp distance (mm) and the polyp's angle from the optical axis.
    """

    view: Literal["lumen", "polyp"]
    centerline_s_mm: float
    offset_mm: float
    roll_deg: float
    backward: bool
    yaw_deg: float | None = None
    pitch_deg: float | None = None
    polyp_instance: int | None = None
    polyp_distance_mm: float | None = None
    polyp_offcentre_deg: float | None = None


@dataclass(frozen=True)
class FrameParams:
    """Everything drawn for one frame: the input of :func:`render_frame`, stored in its sample record.

    Args:
        pose: (4, 4) camera-to-world matrix, mm (camera frame x right, y down, z forward), as nested tuples.
        fov_deg: horizontal field of view across the image width, degrees.
        camera_model: ``"pinhole"`` or ``"fisheye"``.
        distortion: fisheye coefficients (k1,); empty for pinhole.
        field_stop: ``"none"``, ``"circle"`` or ``"octagon"`` (see :func:`field_stop_mask`).
        shading: the drawn appearance.
        placement: how the pose was drawn (informational).
        anatomy_index: which of a dataset's anatomies (``dataset.json`` ``generator.anatomies``) the frame
            shows; set by the dataset runner, 0 otherwise.
        realism: the drawn realistic look (:mod:`simreal.render.look`), or None for the training look.
            Everything else is drawn the same in both looks, so ``replace(params, realism=None)`` is the
            training frame of the same seed: same camera, same labels.

    Example:
        >>> params = FrameParams.from_dict(record.params)                 # doctest: +SKIP
        >>> params.to_dict() == record.params                              # doctest: +SKIP
        True
    """

    pose: tuple[tuple[float, ...], ...]
    fov_deg: float
    camera_model: CameraModel
    distortion: tuple[float, ...]
    field_stop: FieldStop
    shading: ShadingParams
    placement: Placement
    anatomy_index: int = 0
    realism: RealismParams | None = None

    def __post_init__(self) -> None:
        c = _Checks("")
        pose = np.asarray(self.pose, dtype=np.float64) if _is_matrix(self.pose) else None
        if pose is None or pose.shape != (4, 4) or not np.isfinite(pose).all():
            c.add("pose", "expected a finite 4x4 matrix")
        elif not np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-6) or not np.allclose(
                pose[3], [0, 0, 0, 1]):
            c.add("pose", "expected a rigid camera-to-world matrix (orthonormal rotation, last row 0 0 0 1)")
        else:  # stored as nested tuples of floats whatever came in (an array, lists)
            object.__setattr__(self, "pose", tuple(tuple(float(x) for x in row) for row in pose))
        object.__setattr__(self, "distortion", tuple(float(k) for k in self.distortion))
        if self.camera_model not in ("pinhole", "fisheye"):
            c.add("camera_model", f"must be 'pinhole' or 'fisheye', got {self.camera_model!r}")
        if self.field_stop not in FIELD_STOPS:
            c.add("field_stop", f"must be one of {', '.join(FIELD_STOPS)}, got {self.field_stop!r}")
        c.done()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: what a sample record's ``params`` holds (no ``realism`` key for the training
        look, so training-look records keep the bytes they had before the realistic look existed)."""
        from simreal.configs import to_plain

        plain = to_plain(self)
        if plain["realism"] is None:
            del plain["realism"]
        return plain

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], *, source: Any = None) -> "FrameParams":
        """Params from a sample record's ``params``, strictly (unknown keys and wrong types raise).

        Args:
            mapping: ``record.params`` of a rendered colonoscopy set.
            source: the file it came from, named in errors.
        """
        from simreal.configs import build

        try:
            return build(cls, mapping)
        except SimrealError as exc:
            raise SimrealError(f"frame params: {exc}", source) from None

    def camera(self, size: int | tuple[int, int]) -> Camera:
        """The Camera (intrinsics + pose) these params describe; ``size`` is S or (H, W)."""
        h, w = (size, size) if isinstance(size, int) else size
        return make_camera(
            w, h, fov_deg=float(self.fov_deg), model=self.camera_model, distortion=tuple(self.distortion),
            pose=np.asarray(self.pose, dtype=np.float64),
        )


def _is_matrix(x: Any) -> bool:
    return isinstance(x, (tuple, list, np.ndarray)) and all(isinstance(r, (tuple, list, np.ndarray)) for r in x)


@dataclass(frozen=True, eq=False)
class Frame:
    """One rendered frame: pixels, labels, the camera and the params that made it.

    Attributes:
        image: (H, W, 3) uint8 RGB, gamma-encoded.
        depth: (H, W) float32 z-depth along the optical axis, mm; 0 = no surface.
        mask: (H, W) uint8 class ids (:data:`MASK_CLASSES`: 1 = polyp, 0 = mucosa or no surface).
        instance: (H, W) uint8 polyp instance id, 0 = none.
        normals: (H, W, 3) float32 unit normals in the camera frame, facing the camera (0 = no surface),
            or None when not rendered.
        camera: intrinsics (OpenCV pixel convention) and camera-to-world pose, mm.
        params: what was drawn.

    Example:
        >>> writer.write(frame.record("000000"), frame.arrays())            # doctest: +SKIP
    """

    image: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    instance: np.ndarray
    normals: np.ndarray | None
    camera: Camera
    params: FrameParams

    def arrays(self) -> dict[str, np.ndarray]:
        """The files a dataset holds for this frame: kind -> array (``normals`` only when rendered)."""
        out = {"image": self.image, "depth": self.depth, "mask": self.mask, "instance": self.instance}
        if self.normals is not None:
            out["normals"] = self.normals
        return out

    def record(self, sample_id: str, *, group: str | None = None) -> SampleRecord:
        """The sample record (camera, every drawn parameter, group) for a dataset writer; files are filled
        in when the writer writes the arrays."""
        return SampleRecord(id=sample_id, files={}, camera=self.camera, params=self.params.to_dict(), group=group)


# --- placing the camera -----------------------------------------------------------------------------------


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1]))


def _uniform_rgb(rng: np.random.Generator, r: RGBRange) -> tuple[float, float, float]:
    a, b, c = (float(x) for x in rng.uniform(np.asarray(r[0]), np.asarray(r[1])))
    return (a, b, c)


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


class PlacementIndex:
    """What placing cameras in one mesh needs, computed once: a k-d tree over the vertices, vertex normals,
    the polyp targets and the arc-length centerline (no renderer needed).

    Args:
        mesh: the anatomy.
    """

    def __init__(self, mesh: AnatomyMesh):
        from scipy.spatial import cKDTree

        if len(mesh.centerline) < 2:
            raise SimrealError("the anatomy has no centerline (need at least 2 points) to place a camera on")
        self.kdtree = cKDTree(mesh.vertices)
        self.vertex_normals = mesh.vertex_normals()
        self.targets = polyp_targets(mesh)
        self.line = _Centerline(mesh.centerline, mesh.centerline_radius)
        self.vertices = mesh.vertices

    def inside_lumen(self, p: np.ndarray, c: np.ndarray) -> tuple[bool, float]:
        """Whether ``p`` lies on the same side of the nearest surface as the centerline point ``c``, and
        the distance from ``p`` to the nearest vertex (mm)."""
        dist_p, ip = self.kdtree.query(p)
        _, ic = self.kdtree.query(c)
        side_p = float(np.dot(p - self.vertices[ip], self.vertex_normals[ip]))
        side_c = float(np.dot(c - self.vertices[ic], self.vertex_normals[ic]))
        return side_p * side_c > 0, float(dist_p)


def _rotate_towards(z: np.ndarray, angle: float, azimuth: float) -> np.ndarray:
    """Unit ``z`` tilted by ``angle`` rad towards the perpendicular direction at ``azimuth`` rad."""
    a, b = _perpendicular_basis(z)
    return _unit(math.cos(angle) * z + math.sin(angle) * (math.cos(azimuth) * a + math.sin(azimuth) * b))


def _lumen_pose(
    rng: np.random.Generator, index: PlacementIndex, pose: PoseConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Camera centre and forward axis on the centerline pose (offset from the line, looking along it)."""
    line = index.line
    margin = pose.end_margin_frac * line.length
    for _attempt in range(64):
        s = _uniform(rng, (margin, line.length - margin))
        c, radius = line.at(s)
        backward = bool(rng.random() < pose.backward_prob)
        f = line.tangent(s, window=max(radius, 1e-3)) * (-1.0 if backward else 1.0)
        a, b = _perpendicular_basis(f)
        phi = rng.uniform(0.0, 2.0 * math.pi)
        rho = pose.offset_frac * radius * math.sqrt(rng.random())
        p = c + rho * (math.cos(phi) * a + math.sin(phi) * b)
        inside, clearance = index.inside_lumen(p, c)
        if inside and clearance >= pose.min_clearance_frac * radius:
            break
    else:
        raise SimrealError(
            "could not place the camera inside the lumen in 64 tries; is the centerline inside the mesh?"
        )
    yaw = _uniform(rng, (-pose.look_deg, pose.look_deg))
    pitch = _uniform(rng, (-pose.look_deg, pose.look_deg))
    z = _unit(f + math.tan(math.radians(yaw)) * a + math.tan(math.radians(pitch)) * b)
    info = {"centerline_s_mm": float(s), "offset_mm": float(rho), "yaw_deg": yaw, "pitch_deg": pitch,
            "backward": backward}
    return p, z, info


def _polyp_pose(
    rng: np.random.Generator, index: PlacementIndex, pose: PoseConfig, view: PolypViewConfig, half_fov: float
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
    """Camera centre and forward axis looking at a random polyp from inside the lumen, or None if no
    placement in 64 tries passes the lumen and clearance checks."""
    line, targets = index.line, index.targets
    instance, q, size = targets[int(rng.integers(len(targets)))]
    i = int(np.argmin(np.linalg.norm(line.points - q, axis=1)))
    s = float(line.s[i])
    c, radius = line.at(s)
    to_lumen = _unit(c - q)
    lo, hi = view.distance_mm
    hi = float(np.clip(view.distance_diameters * size, lo, hi))
    tilt_max = math.radians(view.tilt_deg)
    for _attempt in range(64):
        dist = _uniform(rng, (lo, hi))
        direction = _rotate_towards(to_lumen, _uniform(rng, (0.0, tilt_max)), _uniform(rng, (0.0, 2.0 * math.pi)))
        p = q + dist * direction
        # Inside the lumen twice over: within 0.9 of the local radius of the centerline point nearest the
        # camera, and on that point's side of the nearest surface (meshes whose polyp and wall normals
        # disagree fool the side test alone).
        j = int(np.argmin(np.linalg.norm(line.points - p, axis=1)))
        if np.linalg.norm(p - line.points[j]) > 0.9 * line.radius[j]:
            continue
        inside, clearance = index.inside_lumen(p, line.points[j])
        if inside and clearance >= pose.min_clearance_frac * radius:
            break
    else:
        return None
    # Aim at the polyp, then turn away by up to `offcentre` of the half field of view.
    off = view.offcentre * half_fov * math.sqrt(rng.random())
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
    index: PlacementIndex | None = None,
) -> FrameParams:
    """Draw everything random about one frame.

    With probability ``config.polyp_view.prob`` (and if the mesh has polyps) the camera looks at a random
    polyp from ``polyp_view.distance_mm`` away; otherwise it sits near the centerline looking along the
    lumen. Draws happen in a fixed order from ``rng`` alone, so the same generator state gives the same
    params. The realistic look (``config.look``) draws its effects last, after everything the training
    look draws: a realistic frame and the training frame of the same generator state share the camera
    and the colours, so their labels are identical (pixel-aligned pairs).

    Args:
        rng: the frame's generator (datasets use ``np.random.default_rng(np.random.SeedSequence([seed, i]))``).
        mesh: the anatomy (its centerline and radius place the camera).
        config: the ranges.
        index: ``PlacementIndex(mesh)``, built here if not given (pass one when drawing many frames).

    Returns:
        The frame's :class:`FrameParams`.

    Raises:
        SimrealError: the camera cannot be placed inside the lumen.
    """
    index = index if index is not None else PlacementIndex(mesh)
    lens, appearance = config.lens, config.appearance
    want_polyp = bool(rng.random() < config.polyp_view.prob) and bool(index.targets)
    fov = _uniform(rng, lens.fov_deg)
    placed = None
    if want_polyp:
        placed = _polyp_pose(rng, index, config.pose, config.polyp_view, math.radians(fov) / 2.0)
    view = "polyp" if placed is not None else "lumen"
    if placed is None:
        placed = _lumen_pose(rng, index, config.pose)
    p, z, placement = placed
    roll = _uniform(rng, (0.0, 360.0))
    za, zb = _perpendicular_basis(z)
    x = math.cos(math.radians(roll)) * za + math.sin(math.radians(roll)) * zb
    y = np.cross(z, x)  # x right, y down, z forward: x cross y = z
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, p
    distortion = (_uniform(rng, lens.fisheye_k1),) if lens.fisheye else ()
    shading = ShadingParams(
        base_rgb=_uniform_rgb(rng, appearance.base_rgb),
        dark_rgb=_uniform_rgb(rng, appearance.dark_rgb),
        vessel_rgb=_uniform_rgb(rng, appearance.vessel_rgb),
        vessel_strength=_uniform(rng, appearance.vessel_strength),
        polyp_tint=_uniform_rgb(rng, appearance.polyp_tint),
        spot_exponent=_uniform(rng, appearance.spot_exponent),
        ambient=_uniform(rng, appearance.ambient),
        specular=_uniform(rng, appearance.specular),
        shininess=_uniform(rng, appearance.shininess),
        vignetting=_uniform(rng, appearance.vignetting),
        noise_std=_uniform(rng, appearance.noise_std),
        noise_seed=int(rng.integers(0, 2**31 - 1)),
        gamma=_uniform(rng, appearance.gamma),
        exposure=_uniform(rng, appearance.exposure),
    )
    return FrameParams(
        pose=tuple(tuple(float(v) for v in row) for row in pose),
        fov_deg=fov,
        camera_model="fisheye" if lens.fisheye else "pinhole",
        distortion=distortion,
        field_stop=config.field_stop,
        shading=shading,
        placement=Placement(view=view, roll_deg=roll, **placement),
        # Last: every draw above is the same in both looks.
        realism=sample_realism(rng, config.realism) if config.look == "realistic" else None,
    )


# --- rendering --------------------------------------------------------------------------------------------


_STOPS: dict[tuple[int, int, str], np.ndarray] = {}


def field_stop_mask(h: int, w: int, shape: str) -> np.ndarray:
    """(H, W) bool, True inside the endoscope's field stop (cached, read-only).

    With x, y the pixel centres scaled to [-1, 1] across the image (outer pixel edges at +-1):
    ``"circle"``: the inscribed circle; ``"octagon"``: the square with its corners cut at
    ``|x| + |y| <= 1.4``, the shape of CVC-ClinicDB frames; ``"none"``: all True.
    """
    if shape not in FIELD_STOPS:
        raise SimrealError(f"unknown field stop {shape!r}; use one of {', '.join(FIELD_STOPS)}")
    key = (h, w, shape)
    if key not in _STOPS:
        # Pixel centres (integer u, v) scaled so the outer pixel edges are at -1 and +1: (u + 0.5) / w * 2 - 1.
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


def _as_params(params: FrameParams | Mapping[str, Any]) -> FrameParams:
    return params if isinstance(params, FrameParams) else FrameParams.from_dict(params)


def camera_from_params(params: FrameParams | Mapping[str, Any], size: int | tuple[int, int]) -> Camera:
    """The Camera (intrinsics + pose) a frame's params describe; ``size`` is S or (H, W)."""
    return _as_params(params).camera(size)


def render_frame(
    scene: MeshScene,
    params: FrameParams | Mapping[str, Any],
    size: int | tuple[int, int],
    *,
    normals: bool = True,
    visibility: Visibility = "raster",
    timings: dict[str, float] | None = None,
) -> Frame:
    """Render one frame from drawn params (deterministic: same params, same bytes).

    Args:
        scene: the prepared mesh.
        params: from :func:`sample_frame_params` (or a record's ``params`` dict).
        size: S (square) or (H, W) pixels.
        normals: include the normals array.
        visibility: how each pixel's first hit is found, ``"raster"`` (pinhole cameras; fisheye ones are
            cast by Embree) or ``"embree"`` (:func:`~simreal.render.raycast.cast_camera`).
        timings: if given, receives ``cast_ms`` and ``shade_ms`` (wall time of the two stages) and the
            parts of the cast (:func:`~simreal.render.raycast.cast_camera`).

    Returns:
        The :class:`Frame`, in the training look, or in the realistic look when ``params.realism`` is set
        (the labels are the same in both). Outside ``params.field_stop`` (:func:`field_stop_mask`) the
        labels are 0 ("no surface seen"); the training image is black there, the realistic one its black
        level (the flat grey surround of real frames).
    """
    params = _as_params(params)
    t0 = time.perf_counter()
    camera = params.camera(size)
    geo = cast_camera(scene, camera, visibility=visibility, timings=timings)
    t1 = time.perf_counter()
    if params.realism is None:
        image = shade(geo, params.shading, polyp_class=POLYP)
    else:
        stop = None if params.field_stop == "none" else field_stop_mask(*geo.depth.shape, params.field_stop)
        image = render_realistic(geo, camera, params.shading, params.realism, polyp_class=POLYP, stop=stop)
    if timings is not None:
        timings["cast_ms"] = (t1 - t0) * 1e3
        timings["shade_ms"] = (time.perf_counter() - t1) * 1e3
    polyp = geo.mask == POLYP
    out = {
        "image": image,
        "depth": geo.depth,
        "mask": polyp.astype(np.uint8),
        "instance": np.where(polyp, geo.instance, 0).astype(np.uint8),
        "normals": geo.normals if normals else None,
    }
    if params.field_stop != "none":
        # One mask for every array: a label where the image is black would supervise (and score) a
        # network on pixels it cannot see, e.g. a polyp only behind the stop labelled polyp.
        outside = ~field_stop_mask(image.shape[0], image.shape[1], params.field_stop)
        # np.where builds new arrays, so the cast's buffers are never written to.
        out = {
            k: v if v is None or (k == "image" and params.realism is not None) else
            np.where(outside[..., None] if v.ndim == 3 else outside, 0, v).astype(v.dtype, copy=False)
            for k, v in out.items()
        }
    return Frame(camera=camera, params=params, **out)


class ColonoscopyRenderer:
    """One anatomy ready to draw and render colonoscopy frames: the pipeline's render step as an object.

    The Embree scene is built on the first :meth:`render` (drawing params needs no renderer).

    Args:
        mesh: the anatomy (world mm, with a centerline).
        config: the ranges frames are drawn from (default :class:`ColonoscopyConfig`).
        visibility: how each pixel's first hit is found: ``"raster"`` (rasterised with an exact per-ray
            test, pinhole cameras; fisheye ones are cast by Embree) or ``"embree"`` (every ray cast by
            Embree): the same labels but at exact ties, depth to float32 rounding
            (:func:`~simreal.render.raycast.cast_camera`).

    Example:
        >>> renderer = ColonoscopyRenderer(simreal.procedural_colon(seed=3))     # doctest: +SKIP
        >>> frame = renderer.render(renderer.sample(np.random.default_rng(0)), size=128)  # doctest: +SKIP
    """

    def __init__(self, mesh: AnatomyMesh, config: ColonoscopyConfig | None = None, *,
                 visibility: Visibility = "raster"):
        from simreal.render.raycast import VISIBILITIES

        if visibility not in VISIBILITIES:
            raise SimrealError(f"visibility must be one of {', '.join(VISIBILITIES)}, got {visibility!r}")
        config = config if config is not None else ColonoscopyConfig()
        if not isinstance(config, ColonoscopyConfig):
            raise SimrealError(f"config must be a ColonoscopyConfig, got {type(config).__name__}")
        self.mesh = mesh
        self.config = config
        self.visibility = visibility
        self.index = PlacementIndex(mesh)
        self._scene: MeshScene | None = None

    @property
    def scene(self) -> MeshScene:
        """The Embree scene (built on first use)."""
        if self._scene is None:
            self._scene = MeshScene(self.mesh)
            if self.visibility == "raster":
                self._scene.prepare_raster()
        return self._scene

    def sample(self, rng: np.random.Generator) -> FrameParams:
        """Draw one frame's parameters (:func:`sample_frame_params`)."""
        return sample_frame_params(rng, self.mesh, self.config, index=self.index)

    def render(
        self, params: FrameParams | Mapping[str, Any], size: int | tuple[int, int] = 256, *,
        timings: dict[str, float] | None = None,
    ) -> Frame:
        """Render drawn params (:func:`render_frame`); normals as ``config.normals`` says."""
        return render_frame(self.scene, params, size, normals=self.config.normals, visibility=self.visibility,
                            timings=timings)

