"""Cinematic rendering: volumetric path tracing (Mitsuba 3) of a CT under many rendering conditions.

The pipeline, as one object (:class:`CinematicRenderer`) over one patient (:class:`CinematicSource`):

1. **views** (:func:`sample_view`): endoluminal camera poses along the lumen's centerline (the
   colonoscopy pose sampler of :mod:`simreal.render.colonoscopy`, polyp close-ups included) or external
   orbits around the body;
2. **conditions** (:func:`sample_condition`): a jittered transfer-function preset
   (:mod:`simreal.render.transfer`), a lighting preset (:mod:`simreal.render.lighting`), exposure and
   gamma;
3. **render** (:meth:`CinematicRenderer.render`): Mitsuba's volumetric path tracer on the medium the
   condition makes of the CT, seen by a sensor with exactly the camera's rays
   (:mod:`simreal.render.cinematic_scene`); auto-exposure and gamma to 8-bit RGB;
4. **labels**: depth (z in the camera frame, mm, 0 = no surface) and the mask are ray cast with Embree
   (:func:`simreal.render.raycast.cast_camera`) on the mesh of the first surface, the same mesh that
   bounds the medium (the lumen wall; the ``surface_hu`` iso-surface in external views), from the same
   :class:`~simreal.data.format.Camera`: the fast model and this renderer agree pixel for pixel.

Randomness is sampled, then applied: views and conditions are drawn with explicit generators into
frozen dataclasses stored with every frame (``params``), and :meth:`~CinematicRenderer.render` is
deterministic for given params, size, spp and Monte Carlo seed.

Example:
    >>> from simreal.render.cinematic_source import phantom_source                       # doctest: +SKIP
    >>> r = CinematicRenderer(phantom_source(3, length_mm=120.0), CinematicConfig())      # doctest: +SKIP
    >>> view = r.sample_view(np.random.default_rng(0))                                    # doctest: +SKIP
    >>> cond = r.sample_condition(np.random.default_rng(1), index=0)                      # doctest: +SKIP
    >>> frame = r.render(view, cond, size=128, spp=16, seed=7)                            # doctest: +SKIP
    >>> frame.image.shape, frame.depth.dtype                                              # doctest: +SKIP
    ((128, 128, 3), dtype('float32'))
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import numpy as np

from simreal.data.format import Camera, SampleRecord
from simreal.errors import SimrealError
from simreal.render.colonoscopy import Placement, PlacementIndex, field_stop_mask, sample_frame_params
from simreal.render.config import (
    FIELD_STOPS,
    ColonoscopyConfig,
    FieldStop,
    LensConfig,
    PolypViewConfig,
    PoseConfig,
    Range,
    _Checks,
)
from simreal.render.lighting import LIGHTS_FOR_VIEW, Lighting, LightingRanges, check_light_kind, sample_lighting
from simreal.render.transfer import PRESETS_FOR_VIEW, TransferFunction, TransferJitter, sample_transfer, transfer_preset
from simreal.render.cinematic_source import VIEWS, CinematicSource, View

__all__ = [
    "CinematicCondition", "CinematicConfig", "CinematicFrame", "CinematicRenderer", "CinematicView", "Orbit",
    "expose", "sample_condition", "sample_view",
]


@dataclass(frozen=True)
class CinematicConfig:
    """Everything the views and conditions of a cinematic dataset are drawn from. Lengths mm, angles deg.

    Args:
        view: ``"endoluminal"`` (inside the lumen of a hollow organ) or ``"external"`` (orbits).
        presets: transfer-function presets the conditions cycle through (condition k uses preset
            ``k % len``); empty: :data:`~simreal.render.transfer.PRESETS_FOR_VIEW` of the view.
        lights: lighting presets a condition draws one of; empty: those of the view.
        transfer_jitter: how much a condition varies its preset.
        lighting: the ranges of the lights.
        fov_deg: range of the horizontal field of view (pinhole); None: (100, 130) endoluminal, (30, 45)
            external.
        pose: endoluminal camera placement (the colonoscopy sampler's).
        polyp_view: endoluminal polyp close-ups (meshes without polyps always get lumen views).
        orbit_elevation_deg: external: largest elevation above / below the patient's axial plane.
        orbit_distance: external: camera distance as a multiple of the distance at which the body's
            bounding sphere just fills the field of view.
        exposure: auto-exposure target: the 90th percentile of the luminance of surface pixels, > 0.
        gamma: display gamma, > 0.
        field_stop: ``"none"``, ``"circle"`` or ``"octagon"``: black outside (labels 0 there too).
        integrator: ``"volpath"`` or ``"prbvolpath"`` (mitsuba3 #336).
        max_depth: longest light path (scattering events), 1..1024.
    """

    view: View = "endoluminal"
    presets: tuple[str, ...] = ()
    lights: tuple[str, ...] = ()
    transfer_jitter: TransferJitter = field(default_factory=TransferJitter)
    lighting: LightingRanges = field(default_factory=LightingRanges)
    fov_deg: Range | None = None
    pose: PoseConfig = field(default_factory=PoseConfig)
    polyp_view: PolypViewConfig = field(default_factory=lambda: PolypViewConfig(prob=0.3))
    orbit_elevation_deg: float = 30.0
    orbit_distance: Range = (0.75, 1.0)
    exposure: Range = (0.35, 0.6)
    gamma: Range = (2.0, 2.4)
    field_stop: FieldStop = "none"
    integrator: Literal["volpath", "prbvolpath"] = "volpath"
    max_depth: int = 8

    def __post_init__(self) -> None:
        c = _Checks("")
        if self.view not in VIEWS:
            c.add("view", f"must be one of {', '.join(VIEWS)}, got {self.view!r}")
        for p in self.presets:
            try:
                transfer_preset(p)
            except SimrealError as exc:
                c.add("presets", str(exc))
        for k in self.lights:
            try:
                check_light_kind(k)
            except SimrealError as exc:
                c.add("lights", str(exc))
        if self.fov_deg is not None:
            c.range("fov_deg", self.fov_deg, 0.0, 179.0, lo_open=True, hi_open=True)
        c.value("orbit_elevation_deg", self.orbit_elevation_deg, 0.0, 89.0)
        c.range("orbit_distance", self.orbit_distance, 0.2, 100.0)
        c.range("exposure", self.exposure, 0.0, lo_open=True)
        c.range("gamma", self.gamma, 0.0, lo_open=True)
        if self.field_stop not in FIELD_STOPS:
            c.add("field_stop", f"must be one of {', '.join(FIELD_STOPS)}, got {self.field_stop!r}")
        if self.integrator not in ("volpath", "prbvolpath"):
            c.add("integrator", f"must be volpath or prbvolpath, got {self.integrator!r}")
        if isinstance(self.max_depth, bool) or not isinstance(self.max_depth, int) or not 1 <= self.max_depth <= 1024:
            c.add("max_depth", f"must be an integer in 1..1024, got {self.max_depth!r}")
        c.done()

    @property
    def preset_names(self) -> tuple[str, ...]:
        return self.presets or PRESETS_FOR_VIEW[self.view]

    @property
    def light_kinds(self) -> tuple[str, ...]:
        return self.lights or LIGHTS_FOR_VIEW[self.view]

    @property
    def fov_range(self) -> Range:
        return self.fov_deg if self.fov_deg is not None else ((100.0, 130.0) if self.view == "endoluminal" else (30.0, 45.0))

    def to_dict(self) -> dict[str, Any]:
        from simreal.configs import to_plain

        return to_plain(self)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> "CinematicConfig":
        from simreal.configs import build

        return build(cls, mapping)


@dataclass(frozen=True)
class Orbit:
    """How an external view was drawn (informational; rendering reads only the pose).

    Args:
        azimuth_deg: around the patient's superior (+z world) axis.
        elevation_deg: above the axial plane.
        distance_mm: camera to the orbit target.
    """

    azimuth_deg: float
    elevation_deg: float
    distance_mm: float


@dataclass(frozen=True)
class CinematicView:
    """One drawn camera view.

    Args:
        pose: (4, 4) OpenCV camera-to-world matrix (x right, y down, z forward), mm, as nested tuples.
        fov_deg: horizontal field of view across the image width, degrees (pinhole).
        target_mm: distance to what the camera looks at, mm (places key-fill lights).
        lumen: endoluminal views: how the pose was placed along the centerline.
        orbit: external views: the orbit.
    """

    pose: tuple[tuple[float, ...], ...]
    fov_deg: float
    target_mm: float
    lumen: Placement | None = None
    orbit: Orbit | None = None

    def camera(self, size: int | tuple[int, int]) -> Camera:
        """The pinhole Camera of this view at ``size`` (S or (H, W)), OpenCV principal point."""
        from simreal.render.camera import make_camera

        h, w = (size, size) if isinstance(size, int) else size
        return make_camera(w, h, fov_deg=float(self.fov_deg), pose=np.asarray(self.pose, np.float64))

    def to_dict(self) -> dict[str, Any]:
        from simreal.configs import to_plain

        return to_plain(self)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> "CinematicView":
        from simreal.configs import build

        return build(cls, mapping)


@dataclass(frozen=True)
class CinematicCondition:
    """One drawn rendering condition (shared by every view rendered under it).

    Args:
        index: the condition's number in its dataset.
        transfer: the jittered transfer function.
        lighting: the drawn lights.
        exposure: auto-exposure target.
        gamma: display gamma.
    """

    index: int
    transfer: TransferFunction
    lighting: Lighting
    exposure: float
    gamma: float

    def to_dict(self) -> dict[str, Any]:
        from simreal.configs import to_plain

        return to_plain(self)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> "CinematicCondition":
        from simreal.configs import build

        return build(cls, mapping)


def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1]))


def _look_pose(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world pose at ``eye`` looking at ``target`` with ``up`` towards the image top."""
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        x = np.cross(z, np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, eye
    return pose


def sample_view(
    rng: np.random.Generator, source: CinematicSource, config: CinematicConfig, *, index: PlacementIndex | None = None
) -> CinematicView:
    """Draw one camera view of ``source`` (in a fixed order from ``rng`` alone).

    Endoluminal: the colonoscopy pose sampler on the lumen mesh (centerline offset, look-around, roll,
    polyp close-ups when the mesh has polyp faces). External: an orbit around the body's bounding
    sphere (azimuth about +z world, elevation within ``orbit_elevation_deg``), looking at its centre.

    Raises:
        SimrealError: the camera cannot be placed inside the lumen.
    """
    fov = _u(rng, config.fov_range)
    if config.view == "endoluminal":
        mesh = source.lumen
        if mesh is None:
            raise SimrealError("this source has no lumen mesh: it was prepared for external views")
        cfg = ColonoscopyConfig(lens=LensConfig(fov_deg=(fov, fov)), pose=config.pose, polyp_view=config.polyp_view,
                                normals=False)
        params = sample_frame_params(rng, mesh, cfg, index=index)
        pose = np.asarray(params.pose, np.float64)
        # What the camera looks at, for camera-relative lights: the wall straight ahead is a few cm away.
        return CinematicView(pose=params.pose, fov_deg=fov, target_mm=30.0, lumen=params.placement)
    centre, radius = source.body_box()
    az = _u(rng, (0.0, 360.0))
    el = _u(rng, (-config.orbit_elevation_deg, config.orbit_elevation_deg))
    dist = radius / math.sin(math.radians(fov) / 2.0) * _u(rng, config.orbit_distance)
    a, e = math.radians(az), math.radians(el)
    eye = centre + dist * np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
    pose = _look_pose(eye, centre, np.array([0.0, 0.0, 1.0]))
    return CinematicView(pose=tuple(tuple(float(v) for v in row) for row in pose), fov_deg=fov, target_mm=float(dist),
                         orbit=Orbit(azimuth_deg=az, elevation_deg=el, distance_mm=float(dist)))


def sample_condition(rng: np.random.Generator, config: CinematicConfig, index: int) -> CinematicCondition:
    """Draw rendering condition ``index``: preset ``index % len(presets)`` jittered, a lighting preset drawn
    uniformly from ``config.light_kinds`` and its parameters, exposure and gamma."""
    presets = config.preset_names
    tf = sample_transfer(rng, transfer_preset(presets[index % len(presets)]), config.transfer_jitter)
    kinds = config.light_kinds
    kind = kinds[int(rng.integers(len(kinds)))]
    lighting = sample_lighting(rng, kind, config.lighting)
    return CinematicCondition(index=int(index), transfer=tf, lighting=lighting, exposure=_u(rng, config.exposure),
                              gamma=_u(rng, config.gamma))


def expose(radiance: np.ndarray, valid: np.ndarray, exposure: float, gamma: float) -> np.ndarray:
    """Auto-exposure and gamma: linear RGB -> 8-bit, as the fast model's endoscope light control.

    The image is scaled so the 90th percentile of the luminance (Rec. 709) of the ``valid`` pixels (those
    seeing a surface; all pixels when none does) equals ``exposure``, then gamma-encoded.

    Args:
        radiance: (H, W, 3) float32 linear RGB.
        valid: (H, W) bool.
        exposure: target level (> 0).
        gamma: display gamma (> 0).

    Returns:
        (H, W, 3) uint8.
    """
    from simreal.render.shading import LUT_SIZE, gamma_lut

    lum = radiance @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    sel = lum[valid] if valid.any() else lum.ravel()
    level = float(np.percentile(sel, 90)) if sel.size else 0.0
    scale = exposure / level if level > 0 and math.isfinite(level) else 0.0
    x = np.clip(radiance * np.float32(scale * (LUT_SIZE - 1)), 0, LUT_SIZE - 1)
    return gamma_lut(float(gamma))[x.astype(np.uint16)]


@dataclass(frozen=True, eq=False)
class CinematicFrame:
    """One rendered frame.

    Attributes:
        image: (H, W, 3) uint8 RGB, gamma-encoded.
        depth: (H, W) float32 z-depth in the camera frame, mm, 0 = no surface.
        mask: (H, W) uint8 class ids (1 = the source's mask class), or None when the source has none.
        instance: (H, W) uint8 instance ids, or None.
        camera: intrinsics (OpenCV pixel convention) and camera-to-world pose, mm.
        params: what was drawn (view, condition, spp, seed, ...), as stored in the sample record.
        radiance: (H, W, 3) float32 linear radiance Mitsuba returned (before exposure).
    """

    image: np.ndarray
    depth: np.ndarray
    mask: np.ndarray | None
    instance: np.ndarray | None
    camera: Camera
    params: dict[str, Any]
    radiance: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """The files of this frame: kind -> array."""
        out = {"image": self.image, "depth": self.depth}
        if self.mask is not None:
            out["mask"] = self.mask
        if self.instance is not None:
            out["instance"] = self.instance
        return out

    def record(self, sample_id: str, *, group: str | None = None) -> SampleRecord:
        return SampleRecord(id=sample_id, files={}, camera=self.camera, params=self.params, group=group)


class CinematicRenderer:
    """One patient ready for cinematic rendering: draw views and conditions, render frames.

    Mitsuba is started on the first render (:func:`~simreal.render.cinematic_scene.select_variant`), one
    scene per condition is kept loaded (render all views of a condition together), and one Embree scene
    per surface mesh gives depth and mask.

    Args:
        source: the patient (:mod:`simreal.render.cinematic_source`).
        config: what views and conditions are drawn from; its ``view`` must be the source's.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` (``llvm_ad_rgb``) or ``"cuda"``.
    """

    def __init__(self, source: CinematicSource, config: CinematicConfig | None = None, *, device: str = "auto"):
        from simreal.render.cinematic_scene import resolve_device

        config = config if config is not None else CinematicConfig(view=source.view)
        if not isinstance(config, CinematicConfig):
            raise SimrealError(f"config must be a CinematicConfig, got {type(config).__name__}")
        if config.view != source.view:
            raise SimrealError(f"the config is for {config.view} views but the source was prepared for {source.view} views")
        self.source = source
        self.config = config
        self.device = resolve_device(device)
        self.variant: str | None = None
        self._index = PlacementIndex(source.lumen) if source.lumen is not None else None
        self._cache: dict[Any, Any] = {}  # Embree scenes and shading normals per surface
        self._scene_key: Any = None
        self._scene: Any = None

    def sample_view(self, rng: np.random.Generator) -> CinematicView:
        """Draw a camera view (:func:`sample_view`)."""
        return sample_view(rng, self.source, self.config, index=self._index)

    def sample_condition(self, rng: np.random.Generator, index: int) -> CinematicCondition:
        """Draw rendering condition ``index`` (:func:`sample_condition`)."""
        return sample_condition(rng, self.config, index)

    def surface(self, condition: CinematicCondition):
        """The first-surface mesh of a condition: the lumen wall, or the iso-surface at its ``surface_hu``."""
        return self.source.surface_mesh(condition.transfer.surface_hu)

    def _raycaster(self, condition: CinematicCondition):
        from simreal.render.raycast import MeshScene

        key = -1e9 if self.source.view == "endoluminal" else float(condition.transfer.surface_hu)
        if key not in self._cache:
            self._cache[key] = MeshScene(self.surface(condition))
        return self._cache[key]

    def scene_dict(self, view: CinematicView, condition: CinematicCondition, size: int | tuple[int, int],
                   spp: int) -> dict[str, Any]:
        """The Mitsuba scene dict of one frame (for :meth:`render`, and the benchmark's bare render)."""
        from simreal.anatomy.lumen import LUMEN_HU
        from simreal.render.cinematic_scene import gradient_normals, medium_grids, scene_dict, select_variant

        self.variant = select_variant(self.device)
        tf = condition.transfer
        endo = self.source.view == "endoluminal"
        iso = tf.boundary == "iso" or endo
        level = (self.source.info.get("lumen_hu") or LUMEN_HU) if endo else tf.surface_hu
        if endo and tf.boundary != "iso":
            raise SimrealError(f"preset {tf.name!r} is a box medium for external views; endoluminal views need an "
                               "iso-boundary preset such as colon-mucosa")
        grids = medium_grids(self.source.hu.array, self.source.hu.affine, tf, fill_level=level if iso else None)
        normals = None
        if iso:
            key = ("normals", -1e9 if endo else float(tf.surface_hu))
            if key not in self._cache:
                self._cache[key] = gradient_normals(self.surface(condition), self.source.hu.array, self.source.hu.affine)
            normals = self._cache[key]
        return scene_dict(
            grids=grids, tf=tf, boundary_mesh=self.surface(condition) if iso else None, lighting=condition.lighting,
            camera=view.camera(size), target_mm=view.target_mm, spp=spp, integrator=self.config.integrator,
            max_depth=self.config.max_depth, surface_depth_mm=max(0.5, 0.75 * float(self.source.hu.spacing_mm.min())),
            shading_normals=normals,
        )

    def prepare(self, condition: CinematicCondition, view: CinematicView, size: int | tuple[int, int], spp: int):
        """Load the Mitsuba scene of ``condition`` (kept until another condition is rendered)."""
        from simreal.render.cinematic_scene import ConditionScene

        key = (condition.to_dict().__repr__(), self.config.integrator, self.config.max_depth)
        if self._scene_key != key:
            self._scene = None
            d = self.scene_dict(view, condition, size, spp)
            self._scene = ConditionScene(d, condition.lighting, target_mm=view.target_mm)
            self._scene_key = key
        return self._scene

    def render(
        self,
        view: CinematicView,
        condition: CinematicCondition,
        *,
        size: int | tuple[int, int] = 128,
        spp: int = 16,
        seed: int = 0,
        timings: dict[str, float] | None = None,
    ) -> CinematicFrame:
        """Render one frame (deterministic for given view, condition, size, spp and seed).

        Args:
            view: the camera view.
            condition: the rendering condition.
            size: S or (H, W) pixels.
            spp: Monte Carlo samples per pixel (>= 1).
            seed: Monte Carlo seed (>= 0).
            timings: if given, receives ``scene_ms`` (loading the condition's scene; 0 when it was loaded),
                ``render_ms`` (Mitsuba), ``cast_ms`` (Embree depth and mask) and ``expose_ms``.

        Returns:
            The :class:`CinematicFrame`; its ``params`` hold everything needed to render it again.
        """
        if isinstance(spp, bool) or not isinstance(spp, int) or spp < 1:
            raise SimrealError(f"spp must be an integer >= 1, got {spp!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise SimrealError(f"seed must be an integer in [0, 2^32), got {seed!r}")
        from simreal.render.raycast import cast_camera

        t0 = time.perf_counter()
        before = self._scene_key
        scene = self.prepare(condition, view, size, spp)
        loaded = self._scene_key != before
        t1 = time.perf_counter()
        camera = view.camera(size)
        radiance = scene.render(camera, spp=spp, seed=seed)
        t2 = time.perf_counter()
        geo = cast_camera(self._raycaster(condition), camera)
        t3 = time.perf_counter()
        valid = geo.hit
        h, w = geo.depth.shape
        stop = None
        if self.config.field_stop != "none":
            stop = field_stop_mask(h, w, self.config.field_stop)
            valid = valid & stop
        image = expose(radiance, valid, condition.exposure, condition.gamma)
        depth = geo.depth
        mask = instance = None
        if self.source.has_mask:
            mask = (geo.mask == 1).astype(np.uint8)
            if self.source.has_instances:
                instance = np.where(mask == 1, geo.instance, 0).astype(np.uint8)
        if stop is not None:
            outside = ~stop
            image = np.where(outside[..., None], 0, image).astype(np.uint8)
            depth = np.where(outside, 0, depth).astype(np.float32)
            mask = None if mask is None else np.where(outside, 0, mask).astype(np.uint8)
            instance = None if instance is None else np.where(outside, 0, instance).astype(np.uint8)
        if timings is not None:
            timings.update(scene_ms=(t1 - t0) * 1e3 if loaded else 0.0,
                           render_ms=(t2 - t1) * 1e3, cast_ms=(t3 - t2) * 1e3,
                           expose_ms=(time.perf_counter() - t3) * 1e3)
        params = {
            "view": view.to_dict(),
            "condition": condition.to_dict(),
            "spp": int(spp),
            "render_seed": int(seed),
            "integrator": self.config.integrator,
            "max_depth": int(self.config.max_depth),
            "variant": self.variant,
            "field_stop": self.config.field_stop,
        }
        return CinematicFrame(image=image, depth=np.ascontiguousarray(depth, np.float32), mask=mask, instance=instance,
                              camera=camera, params=params, radiance=radiance)
