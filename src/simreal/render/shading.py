"""Endoscope shading: a spot light at the tip lighting wet mucosa (Lambert + Blinn-Phong), 8-bit RGB out.

The light sits at the camera centre, so the light and view directions coincide: the Blinn-Phong half
vector equals the view direction and both the diffuse and the specular terms depend only on the cosine
between the normal and the ray back to the camera. Irradiance falls off with the inverse square of the
distance and with ``cos(angle from the optical axis) ** spot_exponent``. Colour comes from the mesh's
texture pattern (mottling, vessels) through colours drawn per frame.

Brightness is set by auto-exposure, as a real endoscope's automatic light control does: the light is
scaled until the 90th percentile of the lit diffuse level equals ``exposure``. Every term of the image
(diffuse, ambient, specular) is proportional to the light, and noise is added after the scaling, so the
light's absolute power cancels exactly and is not a parameter.

All arithmetic is float32: numpy over whole images, and the last step (albedo, light, noise, gamma) one
compiled pass (:mod:`simreal.render.compose`) with the same operations in the same order.

Example:
    >>> p = ShadingParams(base_rgb=(0.9, 0.4, 0.2), dark_rgb=(0.7, 0.3, 0.1), vessel_rgb=(0.5, 0.1, 0.1),
    ...                   vessel_strength=0.3, polyp_tint=(1.0, 0.8, 0.8), spot_exponent=1.0, ambient=0.01,
    ...                   specular=1.0, shininess=100.0, vignetting=0.2, noise_std=0.005, noise_seed=0,
    ...                   gamma=2.2, exposure=0.6)
    >>> rgb = shade(geo, p)                                      # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simreal.render.config import _Checks
from simreal.render.raycast import GeometryBuffers


@dataclass(frozen=True)
class ShadingParams:
    """Drawn appearance of one frame (colours linear RGB in [0, 1]).

    Args:
        base_rgb: mucosa albedo.
        dark_rgb: albedo where the mottling pattern is 1.
        vessel_rgb: blood-vessel albedo.
        vessel_strength: how much vessels replace the mucosa colour, [0, 1].
        polyp_tint: multiplicative RGB tint on polyp pixels.
        spot_exponent: spot fall-off ``cos(angle) ** spot_exponent``.
        ambient: constant fraction of the light reaching every surface (inter-reflections), relative to
            the irradiance of a surface facing the tip.
        specular: Blinn-Phong specular weight.
        shininess: Blinn-Phong exponent.
        vignetting: darkening at the image corners, ``1 - vignetting * r^2`` with r = 1 at the corner.
        noise_std: sensor noise standard deviation (linear units, after exposure).
        noise_seed: seed of the sensor noise.
        gamma: display gamma (> 0).
        exposure: auto-exposure target (> 0): the light is scaled so the 90th percentile of the lit
            diffuse level is ``exposure``.

    Raises:
        SimrealError: a value that is not finite or out of its range, naming the field.
    """

    base_rgb: tuple[float, float, float]
    dark_rgb: tuple[float, float, float]
    vessel_rgb: tuple[float, float, float]
    vessel_strength: float
    polyp_tint: tuple[float, float, float]
    spot_exponent: float
    ambient: float
    specular: float
    shininess: float
    vignetting: float
    noise_std: float
    noise_seed: int
    gamma: float
    exposure: float

    def __post_init__(self) -> None:
        c = _Checks("shading")
        for name in ("base_rgb", "dark_rgb", "vessel_rgb", "polyp_tint"):
            v = getattr(self, name)
            if not isinstance(v, tuple) or len(v) != 3:
                c.add(name, f"expected 3 numbers, got {v!r}")
            else:
                c.value(name, v, 0.0)
        c.value("vessel_strength", self.vessel_strength, 0.0, 1.0)
        for name in ("spot_exponent", "ambient", "specular", "shininess", "noise_std"):
            c.value(name, getattr(self, name), 0.0)
        c.value("vignetting", self.vignetting, 0.0, 1.0)
        c.value("gamma", self.gamma, 0.0, lo_open=True)
        c.value("exposure", self.exposure, 0.0, lo_open=True)
        if isinstance(self.noise_seed, bool) or not isinstance(self.noise_seed, int) or self.noise_seed < 0:
            c.add("noise_seed", f"expected an integer >= 0, got {self.noise_seed!r}")
        c.done()


_GRIDS: dict[tuple[int, int], np.ndarray] = {}


def vignetting_radius2(h: int, w: int) -> np.ndarray:
    """(H, W) float32 squared distance of the pixel centres from the image centre, 1 at the outer corners
    (cached). Pixel centres at integer (u, v), the image centre at ((W - 1) / 2, (H - 1) / 2)."""
    key = (h, w)
    if key not in _GRIDS:
        y = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / (h / 2)
        x = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / (w / 2)
        _GRIDS[key] = ((x[None, :] ** 2 + y[:, None] ** 2) / 2.0).astype(np.float32)
    return _GRIDS[key]


LUT_SIZE = 65536  # linear values are quantised to 16 bits before the gamma table: < 2 levels at black
_LUTS: dict[float, np.ndarray] = {}


def gamma_lut(gamma: float) -> np.ndarray:
    """(65536,) uint8 table: linear value i / 65535 -> round(255 * value ** (1 / gamma))."""
    if gamma not in _LUTS:
        x = np.arange(LUT_SIZE, dtype=np.float64) / (LUT_SIZE - 1)
        _LUTS[gamma] = np.floor(255.0 * x ** (1.0 / gamma) + 0.5).astype(np.uint8)
        if len(_LUTS) > 64:
            _LUTS.pop(next(iter(_LUTS)))
    return _LUTS[gamma]


@dataclass(frozen=True)
class Lighting:
    """The tip light on one frame, after auto-exposure (every array (H, W) float32, 0 where no surface).

    Attributes:
        irradiance: light reaching each surface point, scaled so that the 90th percentile of
            ``cos_view * irradiance`` is ``exposure``.
        diffuse: ``(cos_view + ambient) * irradiance``: the Lambert level a white surface would show.
        spec: ``specular * cos_view ** shininess * irradiance``: the Blinn-Phong highlight (white light).
    """

    irradiance: np.ndarray
    diffuse: np.ndarray
    spec: np.ndarray


def tip_irradiance(geo: GeometryBuffers, *, spot_exponent: float, vignetting: float, exposure: float) -> np.ndarray:
    """(H, W) float32 irradiance from a spot light at the camera centre, auto-exposed (0 where no surface).

    Unit radiant intensity, ``cos(angle from the axis) ** spot_exponent / distance ** 2`` (distance floored
    at 1 mm), vignetting ``1 - vignetting * r^2``, then scaled so that the 90th percentile of
    ``cos_view * irradiance`` over the lit pixels is ``exposure`` (as a real endoscope's light control does):
    the light's power itself is therefore no parameter. Shared by every renderer with a tip light.
    """
    f32 = np.float32
    h, w = geo.depth.shape
    dist2 = np.maximum(geo.distance, f32(1.0))
    dist2 *= dist2
    irradiance = geo.cos_axis ** f32(spot_exponent)
    irradiance /= dist2
    irradiance[~geo.hit] = 0.0
    if vignetting > 0:
        irradiance *= f32(1.0) - f32(vignetting) * vignetting_radius2(h, w)
    cos = geo.cos_view
    # Percentile on a 1/16 subsample of the lit pixels (cheap, and deterministic for given buffers); all lit
    # pixels when the subsample holds none.
    sub = (cos[::4, ::4] * irradiance[::4, ::4])[geo.hit[::4, ::4]]
    if not sub.size:
        sub = (cos * irradiance)[geo.hit]
    if sub.size:
        k = int(0.9 * (sub.size - 1))
        level = float(np.partition(sub, k)[k])
        if level > 0.0 and math.isfinite(level):
            irradiance *= f32(exposure / level)
    return irradiance


def lighting(geo: GeometryBuffers, p: ShadingParams) -> Lighting:
    """The spot light at the tip, auto-exposed (shared by the training and the realistic look).

    Args:
        geo: per-pixel geometry from :func:`~simreal.render.raycast.cast_camera`.
        p: drawn appearance (``spot_exponent``, ``vignetting``, ``exposure``, ``ambient``, ``specular``,
            ``shininess`` are read).

    Returns:
        The frame's :class:`Lighting`.
    """
    f32 = np.float32
    irradiance = tip_irradiance(geo, spot_exponent=p.spot_exponent, vignetting=p.vignetting, exposure=p.exposure)
    cos = geo.cos_view
    diffuse = (cos + f32(p.ambient)) * irradiance
    spec = cos ** f32(p.shininess)
    spec *= f32(p.specular)
    spec *= irradiance
    return Lighting(irradiance=irradiance, diffuse=diffuse, spec=spec)


def shade(geo: GeometryBuffers, p: ShadingParams, polyp_class: int = 1) -> np.ndarray:
    """Shade one frame in the training look.

    Args:
        geo: per-pixel geometry from :func:`~simreal.render.raycast.cast_camera`.
        p: drawn appearance.
        polyp_class: class id whose pixels get ``polyp_tint``.

    Returns:
        (H, W, 3) uint8 RGB (gamma-encoded); pixels that see no surface are black.
    """
    from simreal.render.compose import compose_rgb

    f32 = np.float32
    h, w = geo.depth.shape
    light = lighting(geo, p)
    noise = np.empty((0, h * w), f32)
    if p.noise_std > 0:
        noise = np.random.default_rng(p.noise_seed).standard_normal((3, h, w), dtype=f32)
        noise *= f32(p.noise_std)
    colours = np.array([p.base_rgb, p.dark_rgb, p.vessel_rgb, p.polyp_tint], dtype=f32)
    out = np.empty((h, w, 3), np.uint8)
    # albedo = base + mottle (dark - base), then towards the vessel colour by vessel * strength, tinted on polyps;
    # times the diffuse light, plus the highlight and the noise; 16-bit linear (truncated) through the gamma
    # table; black where no surface (noise must not light up the void). One compiled pass (render/compose.py).
    compose_rgb(geo.mottle.ravel(), geo.vessel.ravel(), f32(p.vessel_strength), (geo.mask == polyp_class).ravel(),
                geo.hit.ravel(), light.diffuse.ravel(), light.spec.ravel(), noise.reshape(-1, h * w), colours,
                gamma_lut(float(p.gamma)), f32(LUT_SIZE - 1), out.reshape(-1, 3))
    return out
