"""The realistic look: what real colonoscopy frames (CVC-ClinicDB) show and the training renders lack.

A realistic frame is a training frame with more on top, so that a realistic set is a stand-in real domain
with ground-truth depth: the same seed gives the same pose, lens and colours (the realism parameters are
drawn after everything the training look draws), hence the same labels, pixel for pixel. The labels are
the geometric truth: nothing here touches depth, normals, mask or instances.

What is added, in the order light meets it (every parameter drawn per frame into :class:`RealismParams`):

* **Surface** (evaluated at each pixel's point on the tissue in world mm, so patterns stay on the
  surface as the camera moves): the training mottling turned down (``mottle_contrast``); a fine
  branching vessel network (zero crossings of band-limited 3-D noise at two scales, gated by a third:
  ``vessel_*``); mucus patches, brighter and yellowish (``mucus_*``); bubbles and droplets with a
  bright rim and a glint (``bubble_*``); a fluid pool in the lower lumen (``fluid_*``).
* **Light**: the training tip light (:func:`~simreal.render.shading.lighting`) with its broad glossy
  lobe turned down (``sheen``), plus sharp highlights from a rippled wet film (``wet_*``): small,
  saturated, and clipped to white like real ones.
* **Optics** (on linear radiance): lateral chromatic aberration, a Gaussian lens blur, a short straight
  motion blur along a drawn direction, and defocus of tissue nearer than ``defocus_near_mm`` (blur
  radius growing as ``near / depth - 1``).
* **Sensor and processing**: Poisson-Gaussian noise (shot noise, so relatively stronger in dark
  regions, plus read noise), a white-balance colour cast, clipping, the drawn display gamma, video
  levels (real frames' black is a grey of about 11-21 / 255 and their white about 235-245), and a JPEG
  encode / decode at a drawn quality.

Pattern anti-aliasing: surface detail finer than a pixel's footprint on the tissue is widened and
faded with it (the footprint is the distance over the focal length over the cosine of the view angle),
so far walls show an even tone rather than aliasing noise.

The image outside the field stop is the flat black level (the grey surround real frames get from the
video processor), not 0 as in the training look; the labels there are 0 in both looks.

Ranges (:class:`~simreal.render.config.RealismConfig`) were tuned against CVC-ClinicDB at 256 x 256 by eye
(side-by-side sheets) and by simple statistics of the central image half, which the defaults meet on
procedural colons: mean RGB 144 / 93 / 61 in CVC (145 / 95 / 61 rendered), median G/R 0.64 (0.62), B/R
0.42 (0.39), median HSV hue 21 degrees (21) and saturation 0.57 (0.57), median luminance 98 (99), a
Laplacian sharpness of 6.4 (6.4), surround grey 11-21 (9-22). Geometry (folds, polyp shapes) is the
anatomy's, not the look's.

Example:
    >>> cfg = ColonoscopyConfig(look="realistic")                                  # doctest: +SKIP
    >>> renderer = ColonoscopyRenderer(simreal.procedural_colon(seed=3), cfg)      # doctest: +SKIP
    >>> frame = renderer.render(renderer.sample(np.random.default_rng(0)), 256)    # doctest: +SKIP
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from simreal.data.format import Camera
from simreal.render.camera import camera_rays_columns
from simreal.render.config import RealismConfig, _Checks
from simreal.render.raycast import GeometryBuffers
from simreal.render.shading import Lighting, ShadingParams, lighting

__all__ = ["RealismParams", "render_realistic", "sample_realism", "surface_noise"]

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class RealismParams:
    """The realistic look's drawn values for one frame (see :class:`~simreal.render.config.RealismConfig`
    for each field's meaning and units), plus the pattern seed.

    The sensor noise draws from the training look's ``shading.noise_seed``, and its signal-independent
    part adds ``shading.noise_std`` to ``read_noise`` in quadrature, so every training-look parameter
    acts in the realistic look too.

    Args:
        pattern_seed: seed of the surface patterns (vessels, ripples, mucus, bubbles): each gets its own
            random rotation and offset of one fixed noise field.
        fluid_opacity: 0 when the frame has no fluid pool.
        fluid_angle_deg: direction of "down" in the image, degrees from the image's down (+v) axis
            towards +u.
        motion_angle_deg: direction of the motion blur in the image, degrees from the +u axis towards +v.
        jpeg_quality: integer, 1..100.
        (other fields): the drawn value of the :class:`~simreal.render.config.RealismConfig` range of the
            same name.

    Raises:
        SimrealError: a value that is not finite or out of its range, naming the field.
    """

    mottle_contrast: float
    sheen: float
    vessel_contrast: float
    vessel_scale_mm: float
    vessel_width: float
    wet_strength: float
    wet_shininess: float
    wet_spots: float
    wet_scale_mm: float
    mucus_coverage: float
    mucus_opacity: float
    mucus_rgb: RGB
    mucus_scale_mm: float
    bubble_density: float
    bubble_scale_mm: float
    fluid_opacity: float
    fluid_level_mm: float
    fluid_angle_deg: float
    fluid_rgb: RGB
    lens_blur: float
    motion_blur: float
    motion_angle_deg: float
    defocus_near_mm: float
    defocus: float
    chromatic_aberration: float
    exposure_gain: float
    white_balance: RGB
    shot_noise: float
    read_noise: float
    black_level: float
    white_level: float
    jpeg_quality: int
    pattern_seed: int

    def __post_init__(self) -> None:
        c = _Checks("realism")
        for name in ("mucus_rgb", "fluid_rgb", "white_balance"):
            v = getattr(self, name)
            if not isinstance(v, tuple) or len(v) != 3:
                c.add(name, f"expected 3 numbers, got {v!r}")
            else:
                c.value(name, v, 0.0, 1.0 if name != "white_balance" else None)
        for name in ("mottle_contrast", "vessel_contrast", "mucus_opacity", "bubble_density", "fluid_opacity"):
            c.value(name, getattr(self, name), 0.0, 1.0)
        for name in ("sheen", "wet_strength", "lens_blur", "motion_blur", "defocus", "shot_noise",
                     "read_noise", "fluid_level_mm"):
            c.value(name, getattr(self, name), 0.0)
        for name in ("vessel_scale_mm", "wet_scale_mm", "mucus_scale_mm", "bubble_scale_mm", "defocus_near_mm"):
            c.value(name, getattr(self, name), 0.0, lo_open=True)
        c.value("vessel_width", self.vessel_width, 0.0, 1.0, lo_open=True)
        c.value("wet_shininess", self.wet_shininess, 1.0)
        c.value("mucus_coverage", self.mucus_coverage, 0.0, 1.0, hi_open=True)
        c.value("wet_spots", self.wet_spots, 0.0, 1.0, hi_open=True)
        c.value("exposure_gain", self.exposure_gain, 0.0, lo_open=True)
        c.value("fluid_angle_deg", self.fluid_angle_deg)
        c.value("motion_angle_deg", self.motion_angle_deg)
        c.value("chromatic_aberration", self.chromatic_aberration, 0.0, 0.05)
        c.value("black_level", self.black_level, 0.0, 0.5, hi_open=True)
        c.value("white_level", self.white_level, 0.5, 1.0, lo_open=True)
        for name, lo, hi in (("jpeg_quality", 1, 100), ("pattern_seed", 0, None)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
                c.add(name, f"expected an integer in {lo}..{hi if hi is not None else ''}, got {v!r}")
        c.done()


def _uniform(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1]))


def _uniform_rgb(rng: np.random.Generator, r: tuple[RGB, RGB]) -> RGB:
    a, b, c = (float(x) for x in rng.uniform(np.asarray(r[0]), np.asarray(r[1])))
    return (a, b, c)


def sample_realism(rng: np.random.Generator, cfg: RealismConfig) -> RealismParams:
    """Draw the realistic look of one frame, in a fixed order from ``rng`` alone.

    Args:
        rng: the frame's generator, after everything the training look draws (so the training draws, and
            with them the labels, are the same in both looks).
        cfg: the ranges.

    Returns:
        The frame's :class:`RealismParams`.
    """
    u = lambda name: _uniform(rng, getattr(cfg, name))  # noqa: E731 - one draw per named range
    mottle_contrast, sheen = u("mottle_contrast"), u("sheen")
    vessel_contrast, vessel_scale_mm, vessel_width = u("vessel_contrast"), u("vessel_scale_mm"), u("vessel_width")
    wet = [u(n) for n in ("wet_strength", "wet_shininess", "wet_spots", "wet_scale_mm")]
    mucus_coverage, mucus_opacity = u("mucus_coverage"), u("mucus_opacity")
    mucus_rgb, mucus_scale_mm = _uniform_rgb(rng, cfg.mucus_rgb), u("mucus_scale_mm")
    bubble_density, bubble_scale_mm = u("bubble_density"), u("bubble_scale_mm")
    fluid = bool(rng.random() < cfg.fluid_prob)
    fluid_opacity, fluid_level_mm = u("fluid_opacity"), u("fluid_level_mm")
    fluid_angle_deg = _uniform(rng, (-cfg.fluid_tilt_deg, cfg.fluid_tilt_deg))
    fluid_rgb = _uniform_rgb(rng, cfg.fluid_rgb)
    lens_blur, motion_blur = u("lens_blur"), u("motion_blur")
    motion_angle_deg = _uniform(rng, (0.0, 180.0))
    defocus_near_mm, defocus, ca = u("defocus_near_mm"), u("defocus"), u("chromatic_aberration")
    exposure_gain = u("exposure_gain")
    white_balance = _uniform_rgb(rng, cfg.white_balance)
    shot_noise, read_noise, black_level, white_level = (u(n) for n in ("shot_noise", "read_noise", "black_level",
                                                                       "white_level"))
    jpeg_quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    pattern_seed = int(rng.integers(0, 2**31 - 1))
    return RealismParams(
        mottle_contrast=mottle_contrast, sheen=sheen, vessel_contrast=vessel_contrast,
        vessel_scale_mm=vessel_scale_mm, vessel_width=vessel_width, wet_strength=wet[0], wet_shininess=wet[1],
        wet_spots=wet[2], wet_scale_mm=wet[3], mucus_coverage=mucus_coverage, mucus_opacity=mucus_opacity,
        mucus_rgb=mucus_rgb, mucus_scale_mm=mucus_scale_mm, bubble_density=bubble_density,
        bubble_scale_mm=bubble_scale_mm, fluid_opacity=fluid_opacity if fluid else 0.0,
        fluid_level_mm=fluid_level_mm, fluid_angle_deg=fluid_angle_deg, fluid_rgb=fluid_rgb, lens_blur=lens_blur,
        motion_blur=motion_blur, motion_angle_deg=motion_angle_deg, defocus_near_mm=defocus_near_mm,
        defocus=defocus, chromatic_aberration=ca, exposure_gain=exposure_gain, white_balance=white_balance,
        shot_noise=shot_noise,
        read_noise=read_noise, black_level=black_level, white_level=white_level, jpeg_quality=jpeg_quality,
        pattern_seed=pattern_seed,
    )


# --- band-limited 3-D noise -------------------------------------------------------------------------------

#: Samples per side of the periodic noise table, and wavelengths per table period: about 6 samples per
#: wavelength keep trilinear interpolation smooth; 10 wavelengths before the pattern repeats, under a
#: random rotation per use, hide the period.
_TABLE_N = 64
_TABLE_WAVES = 10.0
_TABLE: np.ndarray | None = None


def _noise_table() -> np.ndarray:
    """(N, N, N) float32 periodic noise, unit variance, its spectrum a shell at one wavelength (N / 10
    samples): zero crossings form a network of smooth curves. Made once per process from a fixed seed."""
    global _TABLE
    if _TABLE is None:
        n = _TABLE_N
        white = np.random.default_rng(0x7E55E1).standard_normal((n, n, n))
        k = np.fft.fftfreq(n) * n  # cycles per period
        kk = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
        shell = np.exp(-0.5 * ((kk - _TABLE_WAVES) / (0.3 * _TABLE_WAVES)) ** 2)
        field = np.fft.ifftn(np.fft.fftn(white) * shell).real
        field /= field.std()
        _TABLE = np.ascontiguousarray(field, dtype=np.float32)
    return _TABLE


def _layer_frame(seed: int, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """A random rotation (3, 3) and offset (3,) in table samples for one pattern layer of one frame."""
    rng = np.random.default_rng([seed, layer])
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q *= np.sign(np.diag(r))[None, :]  # the QR sign convention would otherwise bias the rotation
    return q, rng.uniform(0.0, _TABLE_N, 3)


def surface_noise(points: np.ndarray, wavelength_mm: float, seed: int, layer: int, stretch: float = 1.0) -> np.ndarray:
    """Smooth band-limited noise on world points: unit variance, one dominant wavelength.

    Args:
        points: (3, M) float32 positions, world mm (one column per point).
        wavelength_mm: the dominant wavelength, mm; the RMS gradient is about ``2 pi / wavelength_mm``
            per mm.
        seed: a frame's ``pattern_seed``.
        layer: which pattern (different layers of one seed are independent).
        stretch: features are this many times longer along one random direction of the layer (> 0).

    Returns:
        (M,) float32, mean about 0 and standard deviation about 1.
    """
    rot, offset = _layer_frame(seed, layer)
    scale = _TABLE_N / _TABLE_WAVES / float(wavelength_mm)
    n = _TABLE_N
    lower, upper, frac = [], [], []
    f32 = np.float32
    for i in range(3):  # elementwise, not BLAS (whose threads would fight the other render workers)
        s = scale / stretch if i == 2 else scale
        # float32 is plenty: table coordinates stay below about 1e4, where its step is 1e-3 samples.
        q = points[0] * f32(rot[i, 0] * s)
        q += points[1] * f32(rot[i, 1] * s)
        q += points[2] * f32(rot[i, 2] * s)
        q += f32(offset[i])
        floor = np.floor(q)
        frac.append(q - floor)
        # The table is periodic and n a power of two: wrap with a mask. Axis strides n^2, n, 1.
        lo = floor.astype(np.int32) & (n - 1)
        lower.append(lo * np.int32(n ** (2 - i)))
        upper.append(((lo + 1) & (n - 1)) * np.int32(n ** (2 - i)))
    # Trilinear interpolation: gather the 8 corners, blend along z, then y, then x.
    table = _noise_table().reshape(-1)
    fx, fy, fz = frac
    out = None
    for cx, wx in ((lower[0], 1.0 - fx), (upper[0], fx)):
        plane = None
        for cy, wy in ((lower[1], 1.0 - fy), (upper[1], fy)):
            base = cx + cy
            a = np.take(table, base + lower[2])
            a += (np.take(table, base + upper[2]) - a) * fz
            a *= wy
            plane = a if plane is None else plane + a
        plane *= wx
        out = plane if out is None else out + plane
    return out


def _ridges(n: np.ndarray, width: float, footprint: np.ndarray) -> np.ndarray:
    """Lines where ``n`` crosses zero, ``width`` noise units wide, anti-aliased: a line narrower than the
    pixel footprint (in noise units) is widened to it and faded by the same factor (same mean darkening)."""
    w = np.maximum(np.float32(width), np.float32(0.5) * footprint)
    line = np.clip(np.float32(1.0) - np.abs(n) / w, 0.0, 1.0)
    line *= line
    line *= np.float32(width) / w
    return line


_LAYER_VESSEL, _LAYER_CAPILLARY, _LAYER_GATE, _LAYER_RIPPLE, _LAYER_MUCUS = range(5)
_LAYER_DETAIL = 10  # + a layer: its second octave

#: Weight of the vessels' second octave (at 1 / 2.2 of the wavelength), and what it does to the sum's
#: standard deviation and RMS gradient (relative to one octave).
_DETAIL = 0.4
_DETAIL_STD = math.sqrt(1.0 + _DETAIL**2)
_DETAIL_GRADIENT = math.sqrt(1.0 + (2.2 * _DETAIL) ** 2)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (np.float32(3.0) - np.float32(2.0) * x)


def _hash01(cells: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """(M,) float64 uniform in [0, 1) from integer lattice cells (3, M) (a splitmix64-style mix)."""
    with np.errstate(over="ignore"):
        h = np.uint64((seed * 0x9E3779B1 + salt * 0x85EBCA77) & 0xFFFFFFFFFFFFFFFF)
        for axis, k in enumerate((0xD6E8FEB86659FD93, 0xA0761D6478BD642F, 0xE7037ED1A0B428DB)):
            h = h ^ (cells[axis].view(np.uint64) * np.uint64(k))
            h ^= h >> np.uint64(29)
            h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(32)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2.0**53)


# --- the realistic frame ----------------------------------------------------------------------------------


@dataclass
class _Surface:
    """Per-pixel surface layers of one frame, (H * W,) float32 each (None when absent)."""

    vessels: np.ndarray
    wet: np.ndarray  # sharp film highlight, times the irradiance, white
    mucus: np.ndarray | None  # opacity
    bubble: np.ndarray | None  # inside a bubble (interior tint)
    rim: np.ndarray | None  # bubble rim brightening
    fluid: np.ndarray | None  # opacity of the pool


def _surface(geo: GeometryBuffers, camera: Camera, light: Lighting, r: RealismParams) -> _Surface:
    f32 = np.float32
    d = camera_rays_columns(camera)  # (3, M) unit rays, camera frame
    dist = geo.distance.reshape(-1)
    p_cam = d * dist
    pose = camera.pose_matrix()
    rot = pose[:3, :3]
    world = np.empty((3, p_cam.shape[1]), np.float32)
    for i in range(3):
        world[i] = p_cam[0] * f32(rot[i, 0]) + p_cam[1] * f32(rot[i, 1]) + p_cam[2] * f32(rot[i, 2]) + f32(pose[i, 3])
    cos = geo.cos_view.reshape(-1)
    # Footprint of one pixel on the tissue, mm (1 / fx rad per pixel at the image centre).
    footprint = dist / f32(camera.fx) / np.maximum(cos, f32(0.2))
    seed = r.pattern_seed

    # Vessels: zero-crossing lines of two-octave noise (the second octave makes them wander and branch
    # rather than close into even loops), at two scales; capillaries only where a coarser field lets them.
    vessels = None
    octaves = ((_LAYER_VESSEL, r.vessel_scale_mm, 1.0), (_LAYER_CAPILLARY, 0.45 * r.vessel_scale_mm, 0.7))
    for layer, scale, weight in octaves:
        n = surface_noise(world, scale, seed, layer)
        n += f32(_DETAIL) * surface_noise(world, scale / 2.2, seed, layer + _LAYER_DETAIL)
        k = f32(2.0 * math.pi / scale * _DETAIL_GRADIENT)  # RMS gradient of n, per mm
        lines = _ridges(n, r.vessel_width * _DETAIL_STD, footprint * k)
        if vessels is None:
            vessels = lines
        else:
            gate = np.clip(f32(0.5) + surface_noise(world, 2.5 * r.vessel_scale_mm, seed, _LAYER_GATE), 0.0, 1.0)
            lines *= gate
            lines *= f32(weight)
            np.maximum(vessels, lines, out=vessels)

    # Mucus patches: the top `coverage` of a smooth field, with soft edges.
    mucus = None
    if r.mucus_coverage > 0 and r.mucus_opacity > 0:
        t = NormalDist().inv_cdf(1.0 - r.mucus_coverage)
        m = surface_noise(world, r.mucus_scale_mm, seed, _LAYER_MUCUS)
        mucus = _smoothstep((m - f32(t)) / f32(1.0) + f32(0.5))

    # Wet film: a sharp mirror lobe where the surface faces the tip, plus isolated spot highlights where
    # the film's ripples (the top `wet_spots` of a fine field) happen to face it, on any but grazing walls.
    wet = cos ** f32(r.wet_shininess)
    if r.wet_spots > 0:
        t = NormalDist().inv_cdf(1.0 - r.wet_spots)
        # Stretched: highlights on real mucosa are short streaks along its folds more often than dots.
        ripples = surface_noise(world, r.wet_scale_mm, seed, _LAYER_RIPPLE, stretch=2.5)
        spots = _smoothstep((ripples - f32(t)) / f32(0.5))
        # A spot smaller than the pixel footprint lights only part of the pixel.
        spots *= np.clip(f32(0.2 * r.wet_scale_mm) / np.maximum(footprint, f32(1e-6)), 0.0, 1.0) ** 2
        spots *= cos * cos * cos  # mostly on walls that face the tip
        wet += spots
    wet *= f32(r.wet_strength)
    if mucus is not None:
        wet *= f32(1.0) + f32(1.5) * mucus  # mucus is wetter than bare mucosa

    # Bubbles: at most one per lattice cell, a sphere inside the cell; seen where the wall cuts it.
    bubble = rim = None
    if r.bubble_density > 0:
        cell = r.bubble_scale_mm
        cells = np.floor(world / cell).astype(np.int64)
        present = _hash01(cells, seed, 0) < r.bubble_density
        if present.any():
            idx = np.flatnonzero(present & geo.hit.reshape(-1))
            cw = cells[:, idx]
            radius = cell * (0.12 + 0.18 * _hash01(cw, seed, 1))
            centre = np.stack([(cw[a] + 0.3 + 0.4 * _hash01(cw, seed, 2 + a)) * cell for a in range(3)])
            off = world[:, idx] - centre
            n_cam = geo.normals.reshape(-1, 3)[idx].T.astype(np.float64)
            n_world = np.stack([n_cam[0] * rot[i, 0] + n_cam[1] * rot[i, 1] + n_cam[2] * rot[i, 2] for i in range(3)])
            along = (off * n_world).sum(axis=0)
            tangential = off - along * n_world
            rho = np.sqrt((tangential**2).sum(axis=0)) / radius
            # Inside the sphere, and bigger than a pixel (smaller ones would only alias).
            seen = (np.abs(along) < radius) & (rho < 1.0) & (radius > 0.7 * footprint[idx])
            if seen.any():
                idx, rho, radius = idx[seen], rho[seen], radius[seen]
                tangential, n_world = tangential[:, seen], n_world[:, seen]
                # The bubble's own normal over this point (a hemisphere on the wall), against the way back
                # to the camera: a mirror glint where they line up (the light sits at the camera).
                nb = tangential / radius + np.sqrt(np.maximum(1.0 - rho**2, 0.0)) * n_world
                view = -np.stack([d[0, idx] * rot[i, 0] + d[1, idx] * rot[i, 1] + d[2, idx] * rot[i, 2]
                                  for i in range(3)])
                glint = np.clip((nb * view).sum(axis=0), 0.0, 1.0) ** (0.25 * r.wet_shininess)
                wet[idx] += f32(r.wet_strength) * glint.astype(f32)
                bubble = np.zeros_like(cos)
                rim = np.zeros_like(cos)
                bubble[idx] = 1.0
                rim[idx] = _smoothstep(((rho - 0.7) / 0.3).astype(f32))

    # Fluid pool: tissue below a level along a drawn "down" in the camera frame.
    fluid = None
    if r.fluid_opacity > 0:
        a = math.radians(r.fluid_angle_deg)
        height = p_cam[0] * f32(math.sin(a)) + p_cam[1] * f32(math.cos(a))  # mm below the tip
        fluid = _smoothstep((height - f32(r.fluid_level_mm)) / f32(1.0) + f32(0.5))
        fluid *= f32(r.fluid_opacity)
        wet *= f32(1.0) - fluid  # the pool's flat surface faces away from the tip: no film highlights
    wet *= light.irradiance.reshape(-1)
    return _Surface(vessels=vessels, wet=wet, mucus=mucus, bubble=bubble, rim=rim, fluid=fluid)


def _radiance(geo: GeometryBuffers, camera: Camera, p: ShadingParams, r: RealismParams,
              polyp_class: int) -> np.ndarray:
    """(H, W, 3) float32 linear radiance of the realistic surface (unclipped: highlights exceed 1)."""
    f32 = np.float32
    h, w = geo.depth.shape
    light = lighting(geo, p)
    s = _surface(geo, camera, light, r)
    diffuse = light.diffuse.reshape(-1)
    if s.rim is not None:
        diffuse = diffuse * (f32(1.0) + f32(0.8) * s.rim)  # light refracted and reflected at the bubble's edge
    spec = light.spec.reshape(-1) * f32(r.sheen)
    spec += s.wet
    mesh_vessel = geo.vessel.reshape(-1) * f32(p.vessel_strength)
    vessel = f32(1.0) - (f32(1.0) - mesh_vessel) * (f32(1.0) - s.vessels * f32(r.vessel_contrast))
    mottle = geo.mottle.reshape(-1) * f32(r.mottle_contrast)
    polyp = (geo.mask == polyp_class).reshape(-1)
    any_polyp = bool(polyp.any())
    mucus = None if s.mucus is None else s.mucus * f32(r.mucus_opacity)
    if s.bubble is not None:
        bubble_mix = s.bubble * f32(0.3)
        mucus = bubble_mix if mucus is None else np.maximum(mucus, bubble_mix)
    out = np.empty((h * w, 3), f32)
    for c in range(3):
        base, dark, vcol = f32(p.base_rgb[c]), f32(p.dark_rgb[c]), f32(p.vessel_rgb[c])
        albedo = mottle * (dark - base)
        albedo += base
        albedo += (vcol - albedo) * vessel
        if mucus is not None:
            albedo += (f32(r.mucus_rgb[c]) - albedo) * mucus
        if any_polyp:
            albedo[polyp] *= f32(p.polyp_tint[c])
        if s.fluid is not None:
            albedo += (f32(r.fluid_rgb[c]) - albedo) * s.fluid
        albedo *= diffuse
        albedo += spec
        out[:, c] = albedo
    out[~geo.hit.reshape(-1)] = 0.0
    return out.reshape(h, w, 3)


def _disc(radius: float, half: int) -> np.ndarray:
    """(2 half + 1)^2 disc of ``radius`` px, pixel coverage from 4 x 4 subsamples, sums to 1."""
    if radius < 0.25:
        k = np.zeros((2 * half + 1,) * 2)
        k[half, half] = 1.0
        return k
    sub = (np.arange(4) + 0.5) / 4.0 - 0.5
    x = np.arange(-half, half + 1)[:, None] + sub[None, :]
    inside = (x.reshape(-1)[:, None] ** 2 + x.reshape(-1)[None, :] ** 2) <= radius**2
    k = inside.reshape(2 * half + 1, 4, 2 * half + 1, 4).mean(axis=(1, 3))
    return k / k.sum()


def _psf(sigma: float, length: float, angle: float, radius: float) -> np.ndarray:
    """The point spread function (K, K) (sums to 1): Gaussian lens blur (sigma px), straight motion blur
    (length px along ``angle`` rad, image u towards v) and a defocus disc (radius px), convolved."""
    from scipy.signal import fftconvolve

    half = int(math.ceil(3.0 * sigma + 0.5 * length + radius)) + 1
    size = 2 * half + 1
    line = np.zeros((size, size))
    n = max(1, int(math.ceil(2.0 * length)) + 1)
    t = np.linspace(-0.5 * length, 0.5 * length, n) if n > 1 else np.zeros(1)
    u, v = half + t * math.cos(angle), half + t * math.sin(angle)
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    fu, fv = u - u0, v - v0
    for du, dv, wgt in ((0, 0, (1 - fu) * (1 - fv)), (1, 0, fu * (1 - fv)), (0, 1, (1 - fu) * fv), (1, 1, fu * fv)):
        np.add.at(line, (np.clip(v0 + dv, 0, size - 1), np.clip(u0 + du, 0, size - 1)), wgt / n)
    k = fftconvolve(line, _disc(radius, half), mode="same")
    if sigma > 0.05:
        x = np.arange(-half, half + 1, dtype=np.float64)
        g = np.exp(-0.5 * (x / sigma) ** 2)
        g /= g.sum()
        k = fftconvolve(k, g[:, None] * g[None, :], mode="same")
    k = np.clip(k, 0.0, None)
    return k / k.sum()


def _optics(rad: np.ndarray, depth: np.ndarray, r: RealismParams) -> np.ndarray:
    """Chromatic aberration, then lens, motion and depth-dependent defocus blur, on (H, W, 3) radiance."""
    from scipy import fft
    from scipy.ndimage import affine_transform

    h, w, _ = rad.shape
    f32 = np.float32
    if r.chromatic_aberration > 0:
        centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
        rad = rad.copy()
        for c, mag in ((0, 1.0 + r.chromatic_aberration), (2, 1.0 - r.chromatic_aberration)):
            # Output pixel x samples the input at centre + (x - centre) / mag: that channel magnified.
            rad[..., c] = affine_transform(rad[..., c], np.full(2, 1.0 / mag), offset=centre - centre / mag, order=1,
                                           mode="nearest", output=f32)
    sigma, length = r.lens_blur * w, r.motion_blur * w
    angle = math.radians(r.motion_angle_deg)
    # Defocus: the blur radius (px) grows as near / depth - 1 in front of the near focus limit.
    near = np.where(depth > 0, f32(r.defocus_near_mm) / np.maximum(depth, f32(1e-3)) - f32(1.0), f32(0.0))
    coc = np.clip(near, 0.0, 3.0) * f32(r.defocus * w)
    top = float(coc.max())
    radii = [0.0]
    while radii[-1] < top:
        radii.append(max(1.0, 2.0 * radii[-1]))
    if len(radii) == 1 and sigma <= 0.05 and length <= 0.0:
        return rad
    half = int(math.ceil(3.0 * sigma + 0.5 * length + radii[-1])) + 1
    padded = np.pad(rad, ((half, half), (half, half), (0, 0)), mode="reflect")
    shape = (fft.next_fast_len(padded.shape[0], real=True), fft.next_fast_len(padded.shape[1], real=True))
    spectrum = fft.rfft2(padded, s=shape, axes=(0, 1), workers=1)
    out = np.zeros_like(rad)
    for i, radius in enumerate(radii):
        k = _psf(sigma, length, angle, radius)
        kh = k.shape[0] // 2
        kernel = np.zeros(shape)
        kernel[: k.shape[0], : k.shape[1]] = k
        kernel = np.roll(kernel, (-kh, -kh), axis=(0, 1))  # centre at the origin: no shift
        layer = fft.irfft2(spectrum * fft.rfft2(kernel, workers=1)[..., None], s=shape, axes=(0, 1), workers=1)
        layer = layer[half : half + h, half : half + w].astype(f32)
        if len(radii) == 1:
            return layer
        # Each pixel blends the two layers whose radii bracket its blur radius, linearly.
        weight = np.interp(coc, radii, np.eye(len(radii))[i]).astype(f32)
        out += layer * weight[..., None]
    return out


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode (H, W, 3) uint8 as a baseline JPEG (4:2:0 chroma) at ``quality``."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality), subsampling=2, optimize=False)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


#: Rec. 709 luminance weights of linear RGB.
_LUMA = (0.2126, 0.7152, 0.0722)


def _cast_gains(white_balance: RGB) -> np.ndarray:
    """(3,) float32 channel gains: ``white_balance`` scaled to unit luminance, so that a colour cast
    changes the hue and leaves the brightness (which auto-exposure set) alone."""
    luma = sum(w * g for w, g in zip(_LUMA, white_balance))
    return np.asarray(white_balance, np.float64).astype(np.float32) / np.float32(max(luma, 1e-6))


#: Linear toe of the realistic look's display gamma (linear units): the slope at black is finite.
_GAMMA_TOE = 0.01


def render_realistic(geo: GeometryBuffers, camera: Camera, p: ShadingParams, r: RealismParams, *,
                     polyp_class: int = 1, stop: np.ndarray | None = None) -> np.ndarray:
    """Shade one frame in the realistic look (deterministic: same inputs, same bytes).

    Args:
        geo: per-pixel geometry from :func:`~simreal.render.raycast.cast_camera`.
        camera: the frame's camera (its pose places the surface patterns in the world).
        p: the frame's training-look appearance (colours, light, gamma, sensor-noise seed).
        r: the frame's realistic look.
        polyp_class: class id whose pixels get ``p.polyp_tint``.
        stop: (H, W) bool, inside the field stop (None: everywhere); outside, the image is the flat
            black level (before JPEG), as the video processor paints real frames' surround.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    f32 = np.float32
    h, w = geo.depth.shape
    rad = _optics(_radiance(geo, camera, p, r, polyp_class), geo.depth, r)
    np.maximum(rad, 0.0, out=rad)  # FFT round-off
    # Poisson-Gaussian sensor noise: variance shot^2 * signal + read^2.
    var = rad * f32(r.shot_noise**2)
    var += f32(r.read_noise**2 + p.noise_std**2)
    noise = np.random.default_rng(p.noise_seed).standard_normal((h, w, 3), dtype=f32)
    noise *= np.sqrt(var)
    rad += noise
    rad *= _cast_gains(r.white_balance) * np.float32(r.exposure_gain)
    np.clip(rad, 0.0, 1.0, out=rad)
    # Display gamma with a linear toe (as video transfer functions have), so that the darkest levels do
    # not amplify the noise without bound: V = ((L + e)^(1/g) - e^(1/g)) / ((1 + e)^(1/g) - e^(1/g)).
    g = 1.0 / p.gamma
    toe = _GAMMA_TOE**g
    rad += f32(_GAMMA_TOE)
    rad **= f32(g)
    rad -= f32(toe)
    rad *= f32((r.white_level - r.black_level) / ((1.0 + _GAMMA_TOE) ** g - toe))
    rad += f32(r.black_level)
    if stop is not None:
        # The video processor paints the surround with its black level (real frames' flat grey).
        rad[~stop] = f32(r.black_level)
    rad *= f32(255.0)
    rad += f32(0.5)
    return _jpeg(rad.astype(np.uint8), r.jpeg_quality)
