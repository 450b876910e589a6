"""The laparoscopy forward model: draw a frame's parameters, then render them deterministically.

A simple laparoscopic liver scene after Pfeiffer et al. (MICCAI 2019): a CT-derived liver, deformed per
scene, with gallbladder, fat, falciform ligament and the diaphragm / abdominal wall around it
(:mod:`simreal.render.laparoscopy_scene`), up to a few instruments (shaft + grasper tip), seen through a
pinhole laparoscope with a light at its tip. Labels are the 8 classes of
:mod:`simreal.anatomy.abdomen_classes`.

``renderer.sample(rng)`` draws everything random about one frame (the scene unless one is given, then the
camera, the tools, the appearance and the field stop) into a :class:`LaparoscopyFrameParams`;
``renderer.render(params, size)`` turns it into a :class:`LaparoscopyFrame` with no randomness of its own.
The params are stored with every sample, so any frame can be rendered again from its record.

Frames: the world frame is the liver frame (mm; :mod:`simreal.anatomy.liver`); the camera frame is
OpenCV's (x right, y down, z forward) and ``Camera.pose`` maps it to the world; each tool's ``pose`` maps
its tool frame (origin at the jaws' pivot, z towards the tip) to the world, so
``inv(camera.pose) @ tool.pose`` is the tool in the camera frame.

Example:
    >>> renderer = LaparoscopyRenderer([read_liver("meshGT.obj")])            # doctest: +SKIP
    >>> params = renderer.sample(np.random.default_rng(0))                     # doctest: +SKIP
    >>> frame = renderer.render(params, size=256)                              # doctest: +SKIP
    >>> frame.image.shape, frame.mask.max() <= 7                               # doctest: +SKIP
    ((256, 256, 3), True)
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from simreal.anatomy.abdomen import first_hits
from simreal.anatomy.abdomen_classes import LAPAROSCOPY_CLASSES, LIVER, WALL
from simreal.anatomy.liver import LiverModel
from simreal.data.format import Camera
from simreal.errors import SimrealError
from simreal.render.camera import make_camera
from simreal.render.colonoscopy import Frame
from simreal.render.config import RGB, _Checks
from simreal.render.laparoscopy_config import LOOK_NAMES, LaparoscopyAppearanceConfig, LaparoscopyConfig, SurfaceLookRange
from simreal.render.laparoscopy_scene import (
    PreparedLiver,
    Scene,
    SceneParams,
    ToolParams,
    build_scene,
    build_tools,
    sample_scene_params,
)
from simreal.render.raycast import GeometryBuffers, MeshScene, cast_camera
from simreal.render.shading import LUT_SIZE, gamma_lut, tip_irradiance

__all__ = [
    "CameraPlacement", "LaparoscopyFrame", "LaparoscopyFrameParams", "LaparoscopyRenderer", "LaparoscopyShading",
    "SurfaceLook", "field_stop_circle", "merge_nearest", "render_frame", "sample_frame_params", "sample_shading",
    "shade_laparoscopy",
]


# --- what one frame draws ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurfaceLook:
    """One class's drawn look (linear RGB in [0, 1]).

    Args:
        base_rgb: albedo. dark_rgb: albedo where the mottling pattern is 1. vessel_rgb: vessel albedo.
        vessel_strength: how much vessels replace the albedo, [0, 1].
        specular: Blinn-Phong weight (>= 0). shininess: Blinn-Phong exponent (>= 1).
    """

    base_rgb: RGB
    dark_rgb: RGB
    vessel_rgb: RGB
    vessel_strength: float
    specular: float
    shininess: float


@dataclass(frozen=True)
class LaparoscopyShading:
    """The drawn appearance of one frame.

    The light sits at the laparoscope's tip: irradiance ``cos(angle from the axis) ** spot_exponent /
    distance^2``, Lambert diffuse plus ``ambient``, Blinn-Phong specular with the half vector equal to the
    view direction; auto-exposure scales the light until the 90th percentile of the lit diffuse level is
    ``exposure`` (so no light power is drawn); then vignetting ``1 - vignetting r^2``, Gaussian sensor noise
    and the display gamma.

    Args:
        liver, fat, abdominal_wall, ligament, tool_shaft, tool_tip, gallbladder: each class's look.
        spot_exponent, ambient, vignetting, noise_std, gamma, exposure: light, lens and sensor.
        noise_seed: seed of the sensor noise.
    """

    liver: SurfaceLook
    fat: SurfaceLook
    abdominal_wall: SurfaceLook
    ligament: SurfaceLook
    tool_shaft: SurfaceLook
    tool_tip: SurfaceLook
    gallbladder: SurfaceLook
    spot_exponent: float
    ambient: float
    vignetting: float
    noise_std: float
    noise_seed: int
    gamma: float
    exposure: float

    def __post_init__(self) -> None:
        c = _Checks("shading")
        for name in ("spot_exponent", "ambient", "noise_std"):
            c.value(name, getattr(self, name), 0.0)
        c.value("vignetting", self.vignetting, 0.0, 1.0)
        c.value("gamma", self.gamma, 0.0, lo_open=True)
        c.value("exposure", self.exposure, 0.0, lo_open=True)
        for name in LOOK_NAMES:
            look = getattr(self, name)
            for k in ("base_rgb", "dark_rgb", "vessel_rgb"):
                c.value(f"{name}.{k}", getattr(look, k), 0.0, 1.0)
            c.value(f"{name}.vessel_strength", look.vessel_strength, 0.0, 1.0)
            c.value(f"{name}.specular", look.specular, 0.0)
            c.value(f"{name}.shininess", look.shininess, 1.0)
        if isinstance(self.noise_seed, bool) or not isinstance(self.noise_seed, int) or self.noise_seed < 0:
            c.add("noise_seed", f"expected an integer >= 0, got {self.noise_seed!r}")
        c.done()


@dataclass(frozen=True)
class CameraPlacement:
    """How the camera pose was drawn (a record; rendering reads only the pose).

    Args:
        distance_mm: distance of the tip from the liver's surface along the line from its centroid, as used
            (shortened to stay inside the wall), mm.
        elevation_deg, azimuth_deg: direction of the tip from the centroid (see LaparoscopeConfig).
        offcentre_deg: angle between the optical axis and the centroid, degrees.
        roll_deg: roll about the optical axis, degrees.
        attempts: how many draws it took to find a pose clear of tissue.
    """

    distance_mm: float
    elevation_deg: float
    azimuth_deg: float
    offcentre_deg: float
    roll_deg: float
    attempts: int = 1


@dataclass(frozen=True)
class LaparoscopyFrameParams:
    """Everything drawn for one frame: the input of :func:`render_frame`, stored in its sample record.

    Args:
        scene_index: which scene of the dataset (frames of one scene share ``scene``).
        scene: the scene (liver, organs, wall).
        pose: (4, 4) camera-to-world matrix, mm (OpenCV camera frame), as nested tuples.
        fov_deg: horizontal field of view across the image width, degrees (pinhole).
        placement: how the pose was drawn.
        tools: the instruments (their poses are tool-to-world).
        shading: the appearance.
        field_stop_radius: radius of the circular field stop as a fraction of half the image width; 0 = none.
    """

    scene_index: int
    scene: SceneParams
    pose: tuple[tuple[float, ...], ...]
    fov_deg: float
    placement: CameraPlacement
    tools: tuple[ToolParams, ...]
    shading: LaparoscopyShading
    field_stop_radius: float = 0.0

    def __post_init__(self) -> None:
        pose = np.asarray(self.pose, dtype=np.float64)
        if pose.shape != (4, 4) or not np.isfinite(pose).all() or not np.allclose(
                pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-6) or not np.allclose(pose[3], [0, 0, 0, 1]):
            raise SimrealError("pose: expected a rigid camera-to-world 4x4 matrix")
        object.__setattr__(self, "pose", tuple(tuple(float(x) for x in row) for row in pose))
        if not 0.0 < self.fov_deg < 179.0:
            raise SimrealError(f"fov_deg must be in (0, 179), got {self.fov_deg}")
        if self.field_stop_radius != 0.0 and not 0.5 <= self.field_stop_radius <= 1.5:
            raise SimrealError(f"field_stop_radius must be 0 or in [0.5, 1.5], got {self.field_stop_radius}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: what a sample record's ``params`` holds."""
        from simreal.configs import to_plain

        return to_plain(self)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], *, source: Any = None) -> "LaparoscopyFrameParams":
        """Params from a sample record's ``params``, strictly (unknown keys and wrong types raise)."""
        from simreal.configs import build

        try:
            return build(cls, mapping)
        except SimrealError as exc:
            raise SimrealError(f"frame params: {exc}", source) from None

    def camera(self, size: int | tuple[int, int]) -> Camera:
        """The Camera (intrinsics + pose) these params describe; ``size`` is S or (H, W)."""
        h, w = (size, size) if isinstance(size, int) else size
        return make_camera(w, h, fov_deg=float(self.fov_deg), pose=np.asarray(self.pose, dtype=np.float64))


@dataclass(frozen=True, eq=False)
class LaparoscopyFrame(Frame):
    """One rendered frame: the colonoscopy :class:`~simreal.render.colonoscopy.Frame` (same files, same record)
    with laparoscopy's classes and drawn parameters.

    Attributes:
        image: (H, W, 3) uint8 RGB, gamma-encoded.
        depth: (H, W) float32 z-depth along the optical axis, mm; 0 = nothing seen.
        mask: (H, W) uint8 class ids 0..7 (:data:`~simreal.anatomy.abdomen_classes.LAPAROSCOPY_CLASSES`).
        instance: (H, W) uint8 tool id (1, 2, ...) on tool pixels, 0 elsewhere.
        normals: (H, W, 3) float32 unit normals, camera frame, facing the camera (0 = nothing), or None.
        camera: intrinsics (OpenCV convention) and camera-to-world pose, mm.
        params: what was drawn.
    """

    params: LaparoscopyFrameParams  # type: ignore[assignment]


# --- drawing ----------------------------------------------------------------------------------------------


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1]))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _rgb(rng: np.random.Generator, r: tuple[RGB, RGB], jitter: float) -> RGB:
    t = float(rng.random())
    j = rng.uniform(1.0 - jitter, 1.0 + jitter, 3)
    lo, hi = np.asarray(r[0]), np.asarray(r[1])
    a, b, c = (float(x) for x in np.clip((lo + t * (hi - lo)) * j, 0.0, 1.0))
    return (a, b, c)


def _look(rng: np.random.Generator, r: SurfaceLookRange) -> SurfaceLook:
    return SurfaceLook(
        base_rgb=_rgb(rng, r.base_rgb, r.hue_jitter), dark_rgb=_rgb(rng, r.dark_rgb, r.hue_jitter),
        vessel_rgb=_rgb(rng, r.vessel_rgb, r.hue_jitter), vessel_strength=_u(rng, r.vessel_strength),
        specular=_u(rng, r.specular), shininess=_u(rng, r.shininess),
    )


def sample_shading(rng: np.random.Generator, appearance: LaparoscopyAppearanceConfig) -> LaparoscopyShading:
    """Draw a frame's appearance (looks in class order, then light, lens and sensor)."""
    looks = {name: _look(rng, getattr(appearance, name)) for name in LOOK_NAMES}
    return LaparoscopyShading(
        **looks, spot_exponent=_u(rng, appearance.spot_exponent), ambient=_u(rng, appearance.ambient),
        vignetting=_u(rng, appearance.vignetting), noise_std=_u(rng, appearance.noise_std),
        noise_seed=int(rng.integers(0, 2**31 - 1)), gamma=_u(rng, appearance.gamma),
        exposure=_u(rng, appearance.exposure),
    )


class _Placer:
    """What placing a camera and tools in one built scene needs: its Embree scene, outward face normals and a
    k-d tree over the tissue vertices (everything but the wall)."""

    def __init__(self, scene: Scene, embree: MeshScene):
        from scipy.spatial import cKDTree

        self.scene, self.embree = scene, embree
        mesh = scene.mesh
        tri = mesh.vertices.astype(np.float64)[mesh.faces]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        self.face_normals = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        tissue = np.unique(mesh.faces[mesh.face_labels != WALL])
        self.tissue = cKDTree(mesh.vertices[tissue].astype(np.float64))

    def cast(self, origin: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance (inf = none) and face (-1 = none) of the first hit of unit rays from one origin."""
        d = np.ascontiguousarray(np.atleast_2d(directions), dtype=np.float32)
        o = np.ascontiguousarray(np.broadcast_to(np.asarray(origin, np.float32), d.shape))
        prim, t_hit, _, _ = self.embree.intersect(o, d)
        t = np.where(prim >= 0, t_hit, np.inf).astype(np.float64)
        return t, prim


def _look_at(p: np.ndarray, f: np.ndarray, down: np.ndarray, roll_deg: float) -> np.ndarray:
    """Camera-to-world pose at ``p`` looking along unit ``f``, image down towards ``down``, then rolled."""
    y = down - (down @ f) * f
    if np.linalg.norm(y) < 1e-6:
        y = np.array([0.0, 0.0, -1.0]) - f[2] * f
    y = _unit(y)
    x = np.cross(y, f)
    r = math.radians(roll_deg)
    x, y = math.cos(r) * x + math.sin(r) * y, -math.sin(r) * x + math.cos(r) * y
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, f, p
    return pose


def _perpendicular(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.array([0.0, 0.0, 1.0]) if abs(f[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    a = _unit(np.cross(ref, f))
    return a, np.cross(f, a)


def sample_camera(
    rng: np.random.Generator, placer: _Placer, config: LaparoscopyConfig
) -> tuple[np.ndarray, float, CameraPlacement]:
    """Draw the laparoscope's pose and field of view (see LaparoscopeConfig).

    A draw is kept when the tip is inside the wall, at least ``clearance_mm`` from every tissue vertex, and
    its optical axis first meets a tissue from outside (or the wall from inside): the liver itself when
    ``aim_at_liver`` is set.

    Raises:
        SimrealError: no such pose in 64 draws.
    """
    cc = config.camera
    fov = _u(rng, cc.fov_deg)
    wall = placer.scene.wall
    centre = np.zeros(3)
    liver_faces = placer.scene.mesh.faces[: placer.scene.n_liver_faces]
    for attempt in range(1, 65):
        dist, el, az = _u(rng, cc.distance_mm), _u(rng, cc.elevation_deg), _u(rng, cc.azimuth_deg)
        off = cc.offcentre_deg * math.sqrt(float(rng.random()))
        off_azimuth = float(rng.uniform(0.0, 2.0 * math.pi))
        roll = _u(rng, cc.roll_deg)
        e, a = math.radians(el), math.radians(az)
        direction = np.array([math.sin(e) * math.sin(a), math.sin(e) * math.cos(a), math.cos(e)])
        # The liver's outermost surface on the line from the centroid in that direction.
        far = centre + 2000.0 * direction
        t, _ = first_hits(far[None], -direction[None], placer.scene.liver_vertices, liver_faces)
        surface = 2000.0 - float(t[0]) if np.isfinite(t[0]) else 0.0
        while dist > cc.clearance_mm and not wall.inside(centre + (surface + dist) * direction, cc.clearance_mm)[0]:
            dist *= 0.95
        p = centre + (surface + dist) * direction
        f0 = -direction
        pa, pb = _perpendicular(f0)
        o = math.radians(off)
        f = _unit(math.cos(o) * f0 + math.sin(o) * (math.cos(off_azimuth) * pa + math.sin(off_azimuth) * pb))
        if placer.tissue.query(p)[0] < cc.clearance_mm or not wall.inside(p, cc.clearance_mm)[0]:
            continue
        t, prim = placer.cast(p, f[None])
        if prim[0] < 0:
            continue
        facing = float(placer.face_normals[prim[0]] @ f)
        label = int(placer.scene.mesh.face_labels[prim[0]])
        if (facing > 0) != (label == WALL):  # tissue must be met from outside, the wall from inside
            continue
        if cc.aim_at_liver and label != LIVER:
            continue
        pose = _look_at(p, f, np.array([0.0, 1.0, 0.0]), roll)
        placement = CameraPlacement(distance_mm=float(dist), elevation_deg=el, azimuth_deg=az, offcentre_deg=off,
                                    roll_deg=roll, attempts=attempt)
        return pose, fov, placement
    raise SimrealError("could not place the laparoscope clear of tissue in 64 draws; check the camera and wall "
                       "ranges against the liver's size")


def sample_tools(
    rng: np.random.Generator, placer: _Placer, pose: np.ndarray, fov_deg: float, config: LaparoscopyConfig
) -> tuple[ToolParams, ...]:
    """Draw the frame's instruments (see ToolConfig): each aimed at a pixel, its jaws' end in front of the
    tissue seen there, its shaft leaving through the image border towards the camera plane. A tool whose
    shaft would pass within 3 mm of the lens or inside tissue is drawn again (up to 16 times, then left out).
    """
    tc = config.tools
    n = int(rng.choice(len(tc.count_probs), p=np.asarray(tc.count_probs) / sum(tc.count_probs)))
    rot, origin = pose[:3, :3], pose[:3, 3]
    half = math.tan(math.radians(fov_deg) / 2.0)
    tools: list[ToolParams] = []
    for k in range(1, n + 1):
        for _attempt in range(16):
            a, b = (float(x) for x in rng.uniform(-tc.tip_region, tc.tip_region, 2))
            diameter = float(tc.shaft_diameter_mm[int(rng.integers(len(tc.shaft_diameter_mm)))])
            depth = _u(rng, tc.tip_depth)
            entry = math.radians(_u(rng, tc.entry_deg))
            spread = math.radians(float(rng.uniform(-tc.spread_deg, tc.spread_deg)))
            phi_free = float(rng.uniform(0.0, 2.0 * math.pi))
            roll = float(rng.uniform(0.0, 2.0 * math.pi))
            jaw_length, jaw_open = _u(rng, tc.jaw_length_mm), _u(rng, tc.jaw_open_deg)
            ray = _unit(np.array([a * half, b * half, 1.0]))
            t, _ = placer.cast(origin, (rot @ ray)[None])
            surface = float(t[0]) if np.isfinite(t[0]) else 200.0
            end = ray * max(depth * surface, 45.0)
            if surface - np.linalg.norm(end) < 5.0:
                continue
            phi = (math.atan2(b, a) if math.hypot(a, b) > 0.05 else phi_free) + spread
            back = np.array([math.cos(entry) * math.cos(phi), math.cos(entry) * math.sin(phi), -math.sin(entry)])
            z_tool = -back
            pivot = end - jaw_length * z_tool
            joint = 1.2 * diameter
            start = pivot - joint * z_tool
            shaft_length = min((start[2] - 1.0) / math.sin(entry), 450.0)
            if shaft_length < 10.0:
                continue
            # Clear of the lens: the camera centre's distance from the shaft's segment.
            s = float(np.clip(-(start @ back) / (back @ back), 0.0, shaft_length))
            if np.linalg.norm(start + s * back) < 0.5 * diameter + 3.0:
                continue
            # Not inside tissue: points along the shaft must lie in front of what their pixels see.
            pts = start + np.outer(np.linspace(0.0, 0.7, 6) * shaft_length, back)
            pts = pts[pts[:, 2] > 5.0]
            if len(pts):
                dist = np.linalg.norm(pts, axis=1)
                seen, _ = placer.cast(origin, (pts / dist[:, None]) @ rot.T)
                if (seen < dist).any():
                    continue
            xa, xb = _perpendicular(z_tool)
            x_tool = math.cos(roll) * xa + math.sin(roll) * xb
            tool_cam = np.eye(4)
            tool_cam[:3, 0], tool_cam[:3, 1], tool_cam[:3, 2], tool_cam[:3, 3] = (
                x_tool, np.cross(z_tool, x_tool), z_tool, pivot)
            tools.append(ToolParams(
                instance=k, pose=tuple(map(tuple, pose @ tool_cam)), shaft_diameter_mm=diameter,
                shaft_length_mm=float(shaft_length), joint_length_mm=joint, jaw_length_mm=jaw_length,
                jaw_open_deg=jaw_open, tip_pixel=(a, b), entry_deg=math.degrees(entry),
            ))
            break
    return tuple(tools)


def sample_frame_params(
    rng: np.random.Generator, scene: Scene, embree: MeshScene, config: LaparoscopyConfig, *, scene_index: int = 0,
    placer: _Placer | None = None,
) -> LaparoscopyFrameParams:
    """Draw a frame in a built scene: camera, tools, appearance, field stop (in that order, from ``rng``).

    Args:
        rng: the frame's generator (datasets: ``SeedSequence([seed, i])``).
        scene: the built scene; embree: its Embree scene (``MeshScene(scene.mesh)``).
        config: the ranges.
        scene_index: recorded in the params.
        placer: what placing needs in this scene (built here if not given; pass one for many frames).
    """
    placer = placer if placer is not None else _Placer(scene, embree)
    pose, fov, placement = sample_camera(rng, placer, config)
    tools = sample_tools(rng, placer, pose, fov, config)
    shading = sample_shading(rng, config.appearance)
    stop = _u(rng, config.field_stop_radius) if rng.random() < config.field_stop_prob else 0.0
    return LaparoscopyFrameParams(scene_index=scene_index, scene=scene.params, pose=tuple(map(tuple, pose)),
                                  fov_deg=fov, placement=placement, tools=tools, shading=shading,
                                  field_stop_radius=stop)


# --- rendering --------------------------------------------------------------------------------------------


def merge_nearest(a: GeometryBuffers, b: GeometryBuffers) -> GeometryBuffers:
    """Per pixel, the geometry of whichever of two casts of one camera hit nearer (``b`` wins ties only where
    ``a`` saw nothing)."""
    take = b.hit & (~a.hit | (b.distance < a.distance))
    out = {}
    for name in GeometryBuffers.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        out[name] = np.where(take[..., None] if x.ndim == 3 else take, y, x)
    return GeometryBuffers(**out)


def field_stop_circle(h: int, w: int, radius: float) -> np.ndarray:
    """(H, W) bool, True inside a circle of ``radius`` times half the width about the image centre (pixel
    centres at integer coordinates, centre at ((W - 1) / 2, (H - 1) / 2)); all True for radius 0."""
    if radius == 0.0:
        return np.ones((h, w), bool)
    y = np.arange(h) - (h - 1) / 2.0
    x = np.arange(w) - (w - 1) / 2.0
    return x[None, :] ** 2 + y[:, None] ** 2 <= (radius * w / 2.0) ** 2


def _class_tables(s: LaparoscopyShading) -> dict[str, np.ndarray]:
    """Per-class lookup tables of every look field, indexed by class id (row 0, background, is black)."""
    looks = [getattr(s, name) for name in LOOK_NAMES]  # class ids 1..7
    blank = {"base_rgb": (0.0, 0.0, 0.0), "dark_rgb": (0.0, 0.0, 0.0), "vessel_rgb": (0.0, 0.0, 0.0),
             "vessel_strength": 0.0, "specular": 0.0, "shininess": 1.0}
    return {key: np.asarray([value] + [getattr(look, key) for look in looks], np.float32) for key, value in blank.items()}


def shade_laparoscopy(geo: GeometryBuffers, s: LaparoscopyShading) -> np.ndarray:
    """Shade one frame: (H, W, 3) uint8 RGB, black where nothing is seen (see :class:`LaparoscopyShading`).

    ``geo.mask`` holds the class id per pixel and selects each pixel's look.
    """
    f32 = np.float32
    h, w = geo.depth.shape
    miss = ~geo.hit
    irradiance = tip_irradiance(geo, spot_exponent=s.spot_exponent, vignetting=s.vignetting, exposure=s.exposure)
    cos = geo.cos_view
    tables = _class_tables(s)
    cls = geo.mask.astype(np.intp)
    diffuse = (cos + f32(s.ambient)) * irradiance
    spec = np.power(np.maximum(cos, f32(0.0)), tables["shininess"][cls])
    spec *= tables["specular"][cls]
    spec *= irradiance
    vessel = geo.vessel * tables["vessel_strength"][cls]
    noise = None
    if s.noise_std > 0:
        noise = np.random.default_rng(s.noise_seed).standard_normal((3, h, w), dtype=f32)
        noise *= f32(s.noise_std)
    lut = gamma_lut(float(s.gamma))
    scale = f32(LUT_SIZE - 1)
    out = np.empty((h, w, 3), np.uint8)
    for c in range(3):
        base = tables["base_rgb"][cls, c]
        albedo = geo.mottle * (tables["dark_rgb"][cls, c] - base)
        albedo += base
        albedo += (tables["vessel_rgb"][cls, c] - albedo) * vessel
        albedo *= diffuse
        albedo += spec
        if noise is not None:
            albedo += noise[c]
        albedo *= scale
        np.clip(albedo, 0.0, scale, out=albedo)
        out[..., c] = lut[albedo.astype(np.uint16)]
    out[miss] = 0
    return out


def _as_params(params: LaparoscopyFrameParams | Mapping[str, Any]) -> LaparoscopyFrameParams:
    return params if isinstance(params, LaparoscopyFrameParams) else LaparoscopyFrameParams.from_dict(params)


def render_frame(
    embree: MeshScene,
    params: LaparoscopyFrameParams | Mapping[str, Any],
    size: int | tuple[int, int],
    *,
    normals: bool = True,
    timings: dict[str, float] | None = None,
) -> LaparoscopyFrame:
    """Render one frame from drawn params (deterministic: same params, same bytes).

    Args:
        embree: the Embree scene of ``params.scene`` (``MeshScene(build_scene(liver, params.scene).mesh)``).
        params: from :func:`sample_frame_params` (or a record's ``params`` dict).
        size: S (square) or (H, W) pixels.
        normals: include the normals array.
        timings: if given, receives ``cast_ms`` (scene and tools) and ``shade_ms``.

    Returns:
        The :class:`LaparoscopyFrame`. Outside the field stop every array is 0 (class background).
    """
    params = _as_params(params)
    t0 = time.perf_counter()
    camera = params.camera(size)
    geo = cast_camera(embree, camera)
    tools = build_tools(params.tools)
    if tools is not None:
        geo = merge_nearest(geo, cast_camera(MeshScene(tools), camera))
    t1 = time.perf_counter()
    image = shade_laparoscopy(geo, params.shading)
    if timings is not None:
        timings["cast_ms"] = (t1 - t0) * 1e3
        timings["shade_ms"] = (time.perf_counter() - t1) * 1e3
    out = {"image": image, "depth": geo.depth, "mask": geo.mask, "instance": geo.instance,
           "normals": geo.normals if normals else None}
    if params.field_stop_radius:
        outside = ~field_stop_circle(image.shape[0], image.shape[1], params.field_stop_radius)
        out = {k: None if v is None else
               np.where(outside[..., None] if v.ndim == 3 else outside, 0, v).astype(v.dtype, copy=False)
               for k, v in out.items()}
    return LaparoscopyFrame(camera=camera, params=params, **out)


class LaparoscopyRenderer:
    """Livers ready to draw and render laparoscopy frames: the render step as an object.

    Scenes are built on demand and the last few kept (with their Embree scenes), so frames of one scene
    share the work.

    Args:
        livers: the livers (scene s of a dataset shows liver ``s % K``).
        config: the ranges (default :class:`LaparoscopyConfig`).
        cache: how many built scenes to keep.

    Example:
        >>> r = LaparoscopyRenderer([read_liver("meshGT.obj")])                   # doctest: +SKIP
        >>> frame = r.render(r.sample(np.random.default_rng(0)), size=128)        # doctest: +SKIP
    """

    def __init__(self, livers: Sequence[LiverModel | PreparedLiver], config: LaparoscopyConfig | None = None,
                 *, cache: int = 2):
        config = config if config is not None else LaparoscopyConfig()
        if not isinstance(config, LaparoscopyConfig):
            raise SimrealError(f"config must be a LaparoscopyConfig, got {type(config).__name__}")
        if not livers:
            raise SimrealError("a laparoscopy renderer needs at least one liver")
        self.livers = [liv if isinstance(liv, PreparedLiver) else PreparedLiver(liv) for liv in livers]
        self.config = config
        self._cache: OrderedDict[str, tuple[Scene, MeshScene]] = OrderedDict()
        self._placers: dict[int, _Placer] = {}  # id(embree scene) -> placer, for the cached scenes
        self._cache_size = max(int(cache), 1)

    def scene(self, params: SceneParams) -> tuple[Scene, MeshScene]:
        """The built scene and its Embree scene for drawn scene params (cached)."""
        key = json.dumps(params.to_dict(), sort_keys=True)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if not 0 <= params.liver_index < len(self.livers):
            raise SimrealError(f"scene shows liver {params.liver_index}, but the renderer has {len(self.livers)}")
        built = build_scene(self.livers[params.liver_index], params)
        entry = (built, MeshScene(built.mesh))
        self._cache[key] = entry
        while len(self._cache) > self._cache_size:
            _, (_, old) = self._cache.popitem(last=False)
            self._placers.pop(id(old), None)
        return entry

    def sample_scene(self, rng: np.random.Generator, liver_index: int = 0) -> SceneParams:
        """Draw one scene around liver ``liver_index``."""
        return sample_scene_params(rng, self.livers[liver_index], self.config, liver_index=liver_index)

    def sample(self, rng: np.random.Generator, *, scene: SceneParams | None = None, scene_index: int = 0) -> LaparoscopyFrameParams:
        """Draw one frame; with no ``scene``, the scene is drawn first from the same ``rng`` (liver
        ``scene_index % K``)."""
        if scene is None:
            scene = self.sample_scene(rng, scene_index % len(self.livers))
        built, embree = self.scene(scene)
        placer = self._placers.get(id(embree))
        if placer is None:
            placer = self._placers[id(embree)] = _Placer(built, embree)
        return sample_frame_params(rng, built, embree, self.config, scene_index=scene_index, placer=placer)

    def render(self, params: LaparoscopyFrameParams | Mapping[str, Any], size: int | tuple[int, int] = 256, *,
               timings: dict[str, float] | None = None) -> LaparoscopyFrame:
        """Render drawn params (:func:`render_frame`); normals as ``config.normals`` says."""
        params = _as_params(params)
        _, embree = self.scene(params.scene)
        return render_frame(embree, params, size, normals=self.config.normals, timings=timings)


#: Class ids written to the mask files (re-exported for the dataset description).
MASK_CLASSES = dict(LAPAROSCOPY_CLASSES)
