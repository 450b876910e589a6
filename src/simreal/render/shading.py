"""Endoscope shading: a spot light at the tip lighting wet mucosa (Lambert + Blinn-Phong), 8-bit RGB out.

The light sits at the camera centre, so the light and view directions coincide: the Blinn-Phong half
vector equals the view direction and both the diffuse and the specular terms depend only on the cosine
between the normal and the ray back to the camera. Radiance falls off with the inverse square of the
distance and with ``cos(angle from the optical axis) ** spot_exponent``. Colour comes from the mesh's
texture pattern (mottling, vessels) through colours drawn per frame.

All arithmetic is float32 numpy over whole images: no per-pixel Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
        light_power: radiant intensity in mm^2 (a surface at sqrt(light_power) mm on the axis, facing
            the camera, gets irradiance 1).
        spot_exponent: spot fall-off ``cos(angle) ** spot_exponent``.
        ambient: constant fraction of the light reaching every surface (inter-reflections).
        specular: Blinn-Phong specular weight.
        shininess: Blinn-Phong exponent.
        vignetting: darkening at the image corners, ``1 - vignetting * r^2`` with r = 1 at the corner.
        noise_std: sensor noise standard deviation (linear units).
        noise_seed: seed of the sensor noise.
        gamma: display gamma.
        exposure: auto-exposure target (as a real endoscope's light control does): the light is scaled so
            the 90th percentile of the lit diffuse level is ``exposure``; 0 turns it off (``light_power``
            alone sets the brightness; records written before this field existed).
    """

    base_rgb: tuple[float, float, float]
    dark_rgb: tuple[float, float, float]
    vessel_rgb: tuple[float, float, float]
    vessel_strength: float
    polyp_tint: tuple[float, float, float]
    light_power: float
    spot_exponent: float
    ambient: float
    specular: float
    shininess: float
    vignetting: float
    noise_std: float
    noise_seed: int
    gamma: float
    exposure: float = 0.0


_GRIDS: dict[tuple[int, int], np.ndarray] = {}


def _radius2(h: int, w: int) -> np.ndarray:
    """(H, W) float32 squared distance from the image centre, 1 at the corners (cached)."""
    key = (h, w)
    if key not in _GRIDS:
        y = (np.arange(h, dtype=np.float32) + 0.5 - h / 2) / (h / 2)
        x = (np.arange(w, dtype=np.float32) + 0.5 - w / 2) / (w / 2)
        _GRIDS[key] = ((x[None, :] ** 2 + y[:, None] ** 2) / 2.0).astype(np.float32)
    return _GRIDS[key]


_LUT_SIZE = 65536  # linear values are quantised to 16 bits before the gamma table: < 2 levels at black
_LUTS: dict[float, np.ndarray] = {}


def _gamma_lut(gamma: float) -> np.ndarray:
    """(65536,) uint8 table: linear value i / 65535 -> round(255 * value ** (1 / gamma))."""
    if gamma not in _LUTS:
        x = np.arange(_LUT_SIZE, dtype=np.float64) / (_LUT_SIZE - 1)
        _LUTS[gamma] = np.floor(255.0 * x ** (1.0 / gamma) + 0.5).astype(np.uint8)
        if len(_LUTS) > 64:
            _LUTS.pop(next(iter(_LUTS)))
    return _LUTS[gamma]


def shade(geo: GeometryBuffers, p: ShadingParams, polyp_class: int = 1) -> np.ndarray:
    """Shade one frame.

    Args:
        geo: per-pixel geometry from :func:`~simreal.render.raycast.cast_camera`.
        p: drawn appearance.
        polyp_class: class id whose pixels get ``polyp_tint``.

    Returns:
        (H, W, 3) uint8 RGB (gamma-encoded); pixels that see no surface are black.
    """
    f32 = np.float32
    h, w = geo.depth.shape
    miss = ~geo.hit
    dist2 = np.maximum(geo.distance, f32(1.0))
    dist2 *= dist2
    irradiance = geo.cos_axis ** f32(p.spot_exponent)
    irradiance *= f32(p.light_power)
    irradiance /= dist2
    irradiance[miss] = 0.0
    if p.vignetting > 0:
        irradiance *= f32(1.0) - f32(p.vignetting) * _radius2(h, w)
    cos = geo.cos_view
    if p.exposure > 0:
        # Percentile on a 1/16 subsample of the lit pixels: cheap, and deterministic for given buffers.
        sub = (cos[::4, ::4] * irradiance[::4, ::4])[geo.hit[::4, ::4]]
        if sub.size:
            level = float(np.partition(sub, int(0.9 * (sub.size - 1)))[int(0.9 * (sub.size - 1))])
            if level > 1e-12:
                irradiance *= f32(p.exposure / level)
    diffuse = (cos + f32(p.ambient)) * irradiance
    spec = cos ** f32(p.shininess)
    spec *= f32(p.specular)
    spec *= irradiance
    vessel = geo.vessel * f32(p.vessel_strength)
    polyp = geo.mask == polyp_class
    any_polyp = bool(polyp.any())
    noise = None
    if p.noise_std > 0:
        noise = np.random.default_rng(p.noise_seed).standard_normal((3, h, w), dtype=f32)
        noise *= f32(p.noise_std)
    lut = _gamma_lut(float(p.gamma))
    out = np.empty((h, w, 3), np.uint8)
    scale = f32(_LUT_SIZE - 1)
    for c in range(3):
        base, dark, vcol = f32(p.base_rgb[c]), f32(p.dark_rgb[c]), f32(p.vessel_rgb[c])
        albedo = geo.mottle * (dark - base)
        albedo += base
        albedo += (vcol - albedo) * vessel
        if any_polyp:
            albedo[polyp] *= f32(p.polyp_tint[c])
        albedo *= diffuse
        albedo += spec
        if noise is not None:
            albedo += noise[c]
        albedo *= scale
        np.clip(albedo, 0.0, scale, out=albedo)
        out[..., c] = lut[albedo.astype(np.uint16)]  # truncation toward zero: deterministic everywhere
    out[miss] = 0  # no surface, no light: noise must not light up the void
    return out
