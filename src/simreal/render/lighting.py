"""Lighting presets for cinematic rendering: endoscope tip lights, area lights, an environment.

Every light is placed relative to the camera of the frame (camera frame: x right, y down, z forward,
mm), so a condition lights every view the same way:

* ``"tip-spot"``: one spot light at the camera centre along the optical axis, radiant intensity
  ``cos(angle from the axis) ** spot_exponent`` (the fast model's endoscope light; with the inverse-square
  law of a point source the irradiance falls off as ``cos^k / r^2``).
* ``"twin-guides"``: two such spots ``guide_offset_mm`` left and right of the lens, as the two light
  guides of a colonoscope tip (small shadows and two highlights per bump).
* ``"key-fill"`` (external views): two rectangular area lights aimed at the orbit target, a key light
  above and to one side of the camera and a dimmer fill opposite, plus a faint environment.
* ``"environment"`` (external views): a uniform environment (sky) light only.

All lights carry a colour ``tint`` (linear RGB). Absolute power does not matter: auto-exposure scales
the image (as in the fast model), so only ratios between lights are parameters.

Randomness is sampled, then applied: :func:`sample_lighting` draws a :class:`Lighting` from a
:class:`LightingRanges` with an explicit generator; the drawn lighting is stored with every frame.

Example:
    >>> light = sample_lighting(np.random.default_rng(0), "tip-spot", LightingRanges())
    >>> light.kind, light.spot_exponent > 0
    ('tip-spot', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, get_args

import numpy as np

from simreal.errors import SimrealError
from simreal.render.config import RGB, Range, RGBRange, _Checks

LightKind = Literal["tip-spot", "twin-guides", "key-fill", "environment"]
#: The lighting presets (``--light``).
LIGHT_KINDS: tuple[str, ...] = get_args(LightKind)
#: Lighting presets meant for each view.
LIGHTS_FOR_VIEW = {"endoluminal": ("tip-spot", "twin-guides"), "external": ("key-fill", "environment", "tip-spot")}

#: Largest cone of the tip spot lights, degrees from the axis (a spot's projection needs < 90).
SPOT_CUTOFF_DEG = 85.0


@dataclass(frozen=True)
class Lighting:
    """The drawn lighting of one condition (fields a kind does not use keep their defaults).

    Args:
        kind: one of :data:`LIGHT_KINDS`.
        tint: light colour, linear RGB in (0, 1].
        spot_exponent: tip lights: the exponent k of ``cos^k``, >= 0.
        guide_offset_mm: twin guides: distance of each guide from the optical axis, mm.
        key_azimuth_deg: key-fill: key light direction, degrees around the camera's up axis from the
            viewing direction (the fill sits opposite).
        key_elevation_deg: key-fill: elevation of the key light above the camera, degrees.
        key_size: key-fill: side of the square lights relative to the orbit radius.
        fill_ratio: key-fill: fill power relative to the key.
        environment: radiance of the environment relative to the key / tip light (key-fill: faint;
            environment: 1).
    """

    kind: LightKind
    tint: RGB = (1.0, 1.0, 1.0)
    spot_exponent: float = 1.0
    guide_offset_mm: float = 2.5
    key_azimuth_deg: float = 40.0
    key_elevation_deg: float = 35.0
    key_size: float = 0.6
    fill_ratio: float = 0.3
    environment: float = 0.0

    def __post_init__(self) -> None:
        c = _Checks("lighting")
        if self.kind not in LIGHT_KINDS:
            c.add("kind", f"must be one of {', '.join(LIGHT_KINDS)}, got {self.kind!r}")
        if not isinstance(self.tint, tuple) or len(self.tint) != 3:
            c.add("tint", f"expected 3 numbers, got {self.tint!r}")
        else:
            c.value("tint", self.tint, 0.0, 1.0, lo_open=True)
        c.value("spot_exponent", self.spot_exponent, 0.0, 100.0)
        c.value("guide_offset_mm", self.guide_offset_mm, 0.0, 50.0)
        c.value("key_azimuth_deg", self.key_azimuth_deg, -180.0, 180.0)
        c.value("key_elevation_deg", self.key_elevation_deg, -89.0, 89.0)
        c.value("key_size", self.key_size, 0.0, 10.0, lo_open=True)
        c.value("fill_ratio", self.fill_ratio, 0.0, 10.0)
        c.value("environment", self.environment, 0.0, 100.0)
        c.done()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: what a frame's ``params["condition"]["lighting"]`` holds."""
        from simreal.configs import to_plain

        return to_plain(self)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> "Lighting":
        from simreal.configs import build

        return build(cls, mapping)


@dataclass(frozen=True)
class LightingRanges:
    """Ranges the lighting of a condition is drawn from (uniformly; ``low == high`` fixes a value).

    Args:
        tint: light colour range, linear RGB (xenon / LED white with a little spread).
        spot_exponent: tip lights' ``cos^k`` exponent.
        guide_offset_mm: twin guides' offset from the axis, mm.
        key_azimuth_deg: key light azimuth magnitude, degrees (the side, left or right, is drawn too).
        key_elevation_deg: key light elevation, degrees.
        key_size: key / fill light size relative to the orbit radius.
        fill_ratio: fill / key power ratio.
        environment: key-fill's environment level.
    """

    tint: RGBRange = ((0.95, 0.9, 0.8), (1.0, 1.0, 1.0))
    spot_exponent: Range = (0.5, 2.0)
    guide_offset_mm: Range = (1.5, 3.5)
    key_azimuth_deg: Range = (20.0, 60.0)
    key_elevation_deg: Range = (15.0, 50.0)
    key_size: Range = (0.3, 0.9)
    fill_ratio: Range = (0.15, 0.5)
    environment: Range = (0.01, 0.05)

    def __post_init__(self) -> None:
        c = _Checks("lighting_ranges")
        c.range("tint", self.tint, 0.0, 1.0, lo_open=True, size=3)
        c.range("spot_exponent", self.spot_exponent, 0.0, 100.0)
        c.range("guide_offset_mm", self.guide_offset_mm, 0.0, 50.0)
        c.range("key_azimuth_deg", self.key_azimuth_deg, 0.0, 180.0)
        c.range("key_elevation_deg", self.key_elevation_deg, -89.0, 89.0)
        c.range("key_size", self.key_size, 0.0, 10.0, lo_open=True)
        c.range("fill_ratio", self.fill_ratio, 0.0, 10.0)
        c.range("environment", self.environment, 0.0, 100.0)
        c.done()


def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1]))


def check_light_kind(kind: str) -> str:
    """``kind`` itself if it is a lighting preset; else one error listing them."""
    if kind not in LIGHT_KINDS:
        raise SimrealError(f"unknown lighting preset {kind!r}; known: {', '.join(LIGHT_KINDS)}")
    return kind


def sample_lighting(rng: np.random.Generator, kind: str, ranges: LightingRanges) -> Lighting:
    """Draw one condition's lighting of preset ``kind`` (every field drawn, in a fixed order).

    Args:
        rng: the condition's generator.
        kind: one of :data:`LIGHT_KINDS`.
        ranges: the ranges.

    Returns:
        The drawn :class:`Lighting`.

    Raises:
        SimrealError: an unknown ``kind``.
    """
    check_light_kind(kind)
    tint = tuple(float(x) for x in rng.uniform(np.asarray(ranges.tint[0]), np.asarray(ranges.tint[1])))
    spot = _u(rng, ranges.spot_exponent)
    offset = _u(rng, ranges.guide_offset_mm)
    side = -1.0 if rng.random() < 0.5 else 1.0
    azimuth = side * _u(rng, ranges.key_azimuth_deg)
    elevation = _u(rng, ranges.key_elevation_deg)
    size = _u(rng, ranges.key_size)
    fill = _u(rng, ranges.fill_ratio)
    env = _u(rng, ranges.environment)
    return Lighting(
        kind=kind,  # type: ignore[arg-type]
        tint=tint,  # type: ignore[arg-type]
        spot_exponent=spot,
        guide_offset_mm=offset,
        key_azimuth_deg=azimuth,
        key_elevation_deg=elevation,
        key_size=size,
        fill_ratio=fill,
        environment=1.0 if kind == "environment" else env if kind == "key-fill" else 0.0,
    )


def spot_profile(exponent: float, cutoff_deg: float = SPOT_CUTOFF_DEG, n: int = 128) -> np.ndarray:
    """(n, n, 1) float32 projection texture of a ``cos^k`` spot light for Mitsuba's ``spot`` emitter.

    Mitsuba's spot light looks a texture up at ``uv = 0.5 + 0.5 (x, y) / (z tan(cutoff))`` for a local
    direction (x, y, z); texel centres here sit at those uv, so bilinear lookups give
    ``cos(theta) ** exponent`` (theta from the axis) to within the texel spacing.
    """
    t = np.tan(np.radians(cutoff_deg))
    q = ((np.arange(n) + 0.5) / n * 2.0 - 1.0) * t  # x / z at the texel centres
    cos = 1.0 / np.sqrt(1.0 + q[None, :] ** 2 + q[:, None] ** 2)
    return (cos ** float(exponent)).astype(np.float32)[..., None]
