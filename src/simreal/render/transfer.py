"""Transfer functions for cinematic rendering: CT Hounsfield units -> extinction, albedo (and the phase).

A :class:`TransferFunction` is a piecewise-linear map from HU to the optical properties of a
participating medium, given by control points (HU, extinction density in 1/mm, single-scattering
albedo RGB) at the tissue classes a CT shows:

=============  ==================  ===========================================================
tissue         typical HU          role in a preset
=============  ==================  ===========================================================
air / gas      -1000 ... -900      empty (external views) or outside the medium (lumen views)
fat            -150 ... -50        yellowish, translucent
soft tissue    +20 ... +80         organs, muscle; mucosa and the colon wall at about +40
contrast       +150 ... +400       contrast-enhanced vessels, tagged fluid: dark red
bone           +400 ... +1500      ivory, dense
=============  ==================  ===========================================================

Besides the points a preset says how the medium is bounded and lit at its surface:

* ``boundary="iso"``: the medium fills the tissue side of an iso-surface mesh (the lumen wall at
  :data:`~simreal.anatomy.lumen.LUMEN_HU` for endoluminal views, the ``surface_hu`` iso-surface for
  external ones). The mesh carries a thin *surface layer* (wet mucosa): a fraction ``1 -
  translucency`` of the light hitting it is reflected diffusely with the colour the medium just below
  would give a semi-infinite slab (:func:`diffuse_reflectance`), a fraction ``specular`` of that
  glossily (GGX roughness ``roughness``), and the rest passes into the heterogeneous medium, where it
  is path-traced volumetrically. Empty space then costs nothing and the wall looks like tissue, not
  fog (STACK.md: crop tightly, moderate density, bone as a surface).
* ``boundary="box"``: a pure volume filling the cropped grid's box (every null collision in the air
  around the body is paid for; ``abdomen-soft`` instead bounds its semi-transparent volume by the skin,
  an iso boundary with ``translucency=1``, i.e. no surface layer).

The phase function is Henyey-Greenstein with one ``g`` per preset (Mitsuba 3's ``hg`` phase is
constant over a medium).

Randomness is sampled, then applied: :func:`sample_transfer` draws a jittered copy of a preset (shifted
HU, scaled albedo and density, ...) with an explicit generator; the drawn function is stored with every
frame (:meth:`TransferFunction.to_dict`) and applied deterministically by :func:`apply_transfer`.

Example:
    >>> tf = transfer_preset("colon-mucosa")
    >>> density, albedo = apply_transfer(tf, np.array([-100.0, 40.0]))
    >>> density.shape, albedo.shape
    ((2,), (2, 3))
    >>> jittered = sample_transfer(np.random.default_rng(0), tf, TransferJitter())
    >>> jittered.name
    'colon-mucosa'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal, Mapping, get_args

import numpy as np

from simreal.errors import SimrealError
from simreal.render.config import RGB, Range, _Checks

Boundary = Literal["iso", "box"]
#: How a preset's medium is bounded (see the module docstring).
BOUNDARIES: tuple[str, ...] = get_args(Boundary)


@dataclass(frozen=True)
class TransferPoint:
    """One control point of a transfer function.

    Args:
        hu: CT value, HU.
        density: extinction coefficient sigma_t before ``density_scale``, 1/mm (>= 0).
        albedo: single-scattering albedo per RGB channel, [0, 1).
    """

    hu: float
    density: float
    albedo: RGB

    def __post_init__(self) -> None:
        c = _Checks("point")
        c.value("hu", self.hu, -3000.0, 5000.0)
        c.value("density", self.density, 0.0, 1000.0)
        if not isinstance(self.albedo, tuple) or len(self.albedo) != 3:
            c.add("albedo", f"expected 3 numbers, got {self.albedo!r}")
        else:
            c.value("albedo", self.albedo, 0.0, 1.0, hi_open=True)
        c.done()


@dataclass(frozen=True)
class TransferFunction:
    """HU -> optical properties of one cinematic rendering condition.

    Args:
        name: the preset it came from.
        points: control points with strictly increasing HU; values are interpolated linearly between
            them and held constant beyond the ends.
        density_scale: multiplies every density (Mitsuba's medium ``scale``), > 0.
        g: Henyey-Greenstein anisotropy, (-1, 1).
        surface_hu: the iso-level of the surface the depth labels (and an ``iso`` boundary) follow in
            external views, HU; endoluminal views use the lumen wall instead.
        boundary: ``"iso"`` or ``"box"`` (module docstring).
        translucency: fraction of the light reaching an ``iso`` boundary that enters the medium, [0, 1]
            (1 = pure volume).
        specular: fraction of the surface layer's reflection that is glossy (the wet film), [0, 1].
        roughness: GGX roughness (alpha) of that glossy reflection, (0, 1].
        shell_voxels: partial-volume shell: voxels within this many voxels of the outer side of an ``iso``
            boundary take the HU of the nearest voxel beyond it (a mucosa voxel half air is not fat), >= 0.

    Raises:
        SimrealError: values out of range, naming the field.
    """

    name: str
    points: tuple[TransferPoint, ...]
    density_scale: float = 1.0
    g: float = 0.0
    surface_hu: float = -500.0
    boundary: Boundary = "iso"
    translucency: float = 0.35
    specular: float = 0.08
    roughness: float = 0.12
    shell_voxels: float = 1.0

    def __post_init__(self) -> None:
        c = _Checks("transfer")
        if not isinstance(self.name, str) or not self.name:
            c.add("name", f"expected a name, got {self.name!r}")
        pts = tuple(self.points) if isinstance(self.points, (tuple, list)) else None
        if pts is None or len(pts) < 2 or not all(isinstance(p, TransferPoint) for p in pts):
            c.add("points", "expected at least 2 control points")
        elif any(b.hu <= a.hu for a, b in zip(pts, pts[1:])):
            c.add("points", f"HU must increase strictly, got {[p.hu for p in pts]}")
        else:
            object.__setattr__(self, "points", pts)
        c.value("density_scale", self.density_scale, 0.0, 1e4, lo_open=True)
        c.value("g", self.g, -1.0, 1.0, lo_open=True, hi_open=True)
        c.value("surface_hu", self.surface_hu, -1000.0, 3000.0, lo_open=True)
        if self.boundary not in BOUNDARIES:
            c.add("boundary", f"must be one of {', '.join(BOUNDARIES)}, got {self.boundary!r}")
        c.value("translucency", self.translucency, 0.0, 1.0)
        c.value("specular", self.specular, 0.0, 1.0)
        c.value("roughness", self.roughness, 0.0, 1.0, lo_open=True)
        c.value("shell_voxels", self.shell_voxels, 0.0, 10.0)
        c.done()

    @property
    def max_density(self) -> float:
        """Largest extinction the function gives, 1/mm (scale included): the medium's majorant."""
        return self.density_scale * max(p.density for p in self.points)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: what a frame's ``params["condition"]["transfer"]`` holds."""
        from simreal.configs import to_plain

        return to_plain(self)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> "TransferFunction":
        """The inverse of :meth:`to_dict` (strict: unknown fields raise)."""
        from simreal.configs import build

        return build(cls, mapping)


def apply_transfer(tf: TransferFunction, hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Optical properties of CT values.

    Args:
        tf: the transfer function.
        hu: any-shape array of HU.

    Returns:
        density (same shape) float32 extinction in 1/mm *before* ``density_scale``, and albedo
        (shape + (3,)) float32 RGB.
    """
    x = np.asarray(hu, dtype=np.float32)
    xp = np.array([p.hu for p in tf.points], np.float32)
    density = np.interp(x, xp, np.array([p.density for p in tf.points], np.float32)).astype(np.float32)
    alb = np.array([p.albedo for p in tf.points], np.float32)
    albedo = np.stack([np.interp(x, xp, alb[:, k]) for k in range(3)], axis=-1).astype(np.float32)
    return density, albedo


def diffuse_reflectance(albedo: np.ndarray, g: float = 0.0) -> np.ndarray:
    """Diffuse reflectance of a semi-infinite, index-matched medium of single-scattering ``albedo``.

    Van de Hulst's approximation with the similarity relation: ``s = sqrt((1 - a) / (1 - a g))``,
    ``R = (1 - s)(1 - 0.139 s) / (1 + 1.17 s)``: the colour the surface layer of an ``iso`` boundary
    reflects, so it matches what the medium beneath would.

    Args:
        albedo: any-shape array of albedo in [0, 1].
        g: Henyey-Greenstein anisotropy.

    Returns:
        float32 array of the same shape in [0, 1).
    """
    a = np.clip(np.asarray(albedo, np.float64), 0.0, 0.99999)
    s = np.sqrt((1.0 - a) / (1.0 - a * g))
    return ((1.0 - s) * (1.0 - 0.139 * s) / (1.0 + 1.17 * s)).astype(np.float32)


# --- presets ----------------------------------------------------------------------------------------------

_MUCOSA = (0.945, 0.58, 0.42)
_PALE = (0.965, 0.78, 0.68)
_FAT = (0.955, 0.80, 0.58)
_VESSEL = (0.80, 0.20, 0.16)
_BONE = (0.95, 0.92, 0.85)
_SOFT = (0.90, 0.45, 0.35)


def _pts(*rows: tuple[float, float, RGB]) -> tuple[TransferPoint, ...]:
    return tuple(TransferPoint(hu=float(h), density=float(d), albedo=tuple(float(v) for v in a)) for h, d, a in rows)  # type: ignore[misc]


#: The named presets (``--preset``). Colon presets are for endoluminal views (``boundary="iso"`` on the
#: lumen wall; HU between the gas and fat, the partial-volume band at the wall, count as mucosa; wet
#: surface layer, translucent wall): ``colon-mucosa`` salmon-orange, ``colon-pale`` paler, glossier and
#: less translucent. For external views of the abdomen: ``abdomen-soft`` (a semi-transparent volume inside
#: the skin at -300 HU: fat clear, organs faint red, vessels and bone denser) and ``bone`` (bone as a
#: surface at +200 HU with a little subsurface scattering; everything softer is outside the medium).
TRANSFER_PRESETS: dict[str, TransferFunction] = {
    "colon-mucosa": TransferFunction(
        name="colon-mucosa",
        points=_pts((-1000, 1.2, _MUCOSA), (-200, 1.2, _MUCOSA), (-140, 0.6, _FAT), (-60, 0.6, _FAT),
                    (0, 1.2, _MUCOSA), (80, 1.2, _MUCOSA), (150, 1.8, _VESSEL), (400, 1.8, _VESSEL),
                    (700, 2.0, _BONE)),
        density_scale=3.0, g=0.0, surface_hu=-500.0, boundary="iso", translucency=0.35, specular=0.08,
        roughness=0.12,
    ),
    "colon-pale": TransferFunction(
        name="colon-pale",
        points=_pts((-1000, 1.5, _PALE), (-200, 1.5, _PALE), (-140, 0.8, _FAT), (-60, 0.8, _FAT),
                    (0, 1.5, _PALE), (80, 1.5, _PALE), (150, 2.0, _VESSEL), (400, 2.0, _VESSEL),
                    (700, 2.0, _BONE)),
        density_scale=3.0, g=0.2, surface_hu=-500.0, boundary="iso", translucency=0.25, specular=0.12,
        roughness=0.08,
    ),
    "abdomen-soft": TransferFunction(
        name="abdomen-soft",
        points=_pts((-1000, 0.0, _FAT), (-400, 0.0, _FAT), (-250, 0.003, _FAT), (-100, 0.001, _FAT),
                    (-20, 0.001, _FAT), (20, 0.012, _SOFT), (90, 0.02, _SOFT), (160, 0.15, _VESSEL),
                    (300, 0.4, _BONE), (1200, 0.6, _BONE)),
        density_scale=1.0, g=0.3, surface_hu=-300.0, boundary="iso", translucency=1.0, specular=0.0,
        roughness=0.3, shell_voxels=0.0,
    ),
    "bone": TransferFunction(
        name="bone",
        points=_pts((-1000, 2.0, _BONE), (150, 2.0, _BONE), (400, 3.0, _BONE), (1500, 3.0, (0.97, 0.95, 0.9))),
        density_scale=1.0, g=0.0, surface_hu=200.0, boundary="iso", translucency=0.2, specular=0.03,
        roughness=0.35, shell_voxels=0.0,
    ),
}

#: Presets meant for each view.
PRESETS_FOR_VIEW = {"endoluminal": ("colon-mucosa", "colon-pale"), "external": ("abdomen-soft", "bone")}


def transfer_preset(name: str) -> TransferFunction:
    """The named preset (:data:`TRANSFER_PRESETS`).

    Raises:
        SimrealError: an unknown name, listing the known ones.
    """
    if name not in TRANSFER_PRESETS:
        raise SimrealError(f"unknown transfer-function preset {name!r}; known: {', '.join(TRANSFER_PRESETS)}")
    return TRANSFER_PRESETS[name]


@dataclass(frozen=True)
class TransferJitter:
    """How much each rendering condition varies a preset (ranges drawn uniformly; ``(1, 1)`` / ``(0, 0)``
    switch a jitter off).

    Args:
        hu_shift: added to every control point's HU (a CT calibration / window shift), HU.
        albedo_scale: multiplies each albedo channel independently (capped below 1).
        density_scale: multiplies ``density_scale`` (log-uniform between the ends), > 0.
        g_shift: added to ``g`` (clipped to [-0.9, 0.9]).
        translucency_scale: multiplies ``translucency`` (capped at 1), >= 0.
        specular_scale: multiplies ``specular`` (capped at 1), >= 0.
        roughness_scale: multiplies ``roughness`` (capped at 1), > 0.
    """

    hu_shift: Range = (-20.0, 20.0)
    albedo_scale: Range = (0.97, 1.02)
    density_scale: Range = (0.7, 1.4)
    g_shift: Range = (-0.1, 0.1)
    translucency_scale: Range = (0.7, 1.3)
    specular_scale: Range = (0.6, 1.5)
    roughness_scale: Range = (0.7, 1.5)

    def __post_init__(self) -> None:
        c = _Checks("transfer_jitter")
        c.range("hu_shift", self.hu_shift, -500.0, 500.0)
        c.range("albedo_scale", self.albedo_scale, 0.0, 2.0, lo_open=True)
        c.range("density_scale", self.density_scale, 0.0, 100.0, lo_open=True)
        c.range("g_shift", self.g_shift, -1.0, 1.0)
        c.range("translucency_scale", self.translucency_scale, 0.0, 10.0)
        c.range("specular_scale", self.specular_scale, 0.0, 10.0)
        c.range("roughness_scale", self.roughness_scale, 0.0, 10.0, lo_open=True)
        c.done()


def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1]))


def sample_transfer(rng: np.random.Generator, tf: TransferFunction, jitter: TransferJitter) -> TransferFunction:
    """A jittered copy of ``tf`` (draws in a fixed order from ``rng`` alone).

    Args:
        rng: the condition's generator.
        tf: the preset.
        jitter: the ranges.

    Returns:
        The drawn :class:`TransferFunction` (same name, points shifted / scaled).
    """
    shift = _u(rng, jitter.hu_shift)
    scale = np.asarray(rng.uniform(jitter.albedo_scale[0], jitter.albedo_scale[1], 3))
    lo, hi = jitter.density_scale
    dscale = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    g = float(np.clip(tf.g + _u(rng, jitter.g_shift), -0.9, 0.9))
    translucency = float(min(1.0, tf.translucency * _u(rng, jitter.translucency_scale)))
    specular = float(min(1.0, tf.specular * _u(rng, jitter.specular_scale)))
    roughness = float(min(1.0, tf.roughness * _u(rng, jitter.roughness_scale)))
    points = tuple(
        TransferPoint(hu=p.hu + shift, density=p.density,
                      albedo=tuple(float(min(0.995, a * s)) for a, s in zip(p.albedo, scale)))  # type: ignore[arg-type]
        for p in tf.points
    )
    return replace(tf, points=points, density_scale=tf.density_scale * dscale, g=g, translucency=translucency,
                   specular=specular, roughness=roughness)
