"""What the colonoscopy renderer draws its frames from: one frozen dataclass tree of ranges.

::

    ColonoscopyConfig
      lens: LensConfig              fov_deg, fisheye, fisheye_k1
      pose: PoseConfig              offset_frac, min_clearance_frac, look_deg, backward_prob, end_margin_frac
      polyp_view: PolypViewConfig   prob, distance_mm, distance_diameters, offcentre, tilt_deg
      appearance: AppearanceConfig  base_rgb, dark_rgb, vessel_rgb, vessel_strength, polyp_tint, spot_exponent,
                                    ambient, specular, shininess, vignetting, noise_std, gamma, exposure
      normals, field_stop

A range ``(low, high)`` is drawn uniformly per frame; ``low == high`` fixes the value. Every node checks
its own values once, when it is made, and names the bad field (``lens.fov_deg: low 140.0 above high
100.0``). The same tree is read from YAML / TOML / JSON by :mod:`simreal.configs` (see
:class:`~simreal.render.job.RenderJob`) and written back into every rendered ``dataset.json``.

Example:
    >>> cfg = ColonoscopyConfig(lens=LensConfig(fov_deg=(120.0, 140.0)), polyp_view=PolypViewConfig(prob=0.8))
    >>> cfg.lens.fov_deg, cfg.pose.look_deg
    ((120.0, 140.0), 25.0)
    >>> override(cfg, {"appearance": {"gamma": [2.2, 2.2]}}).appearance.gamma
    (2.2, 2.2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, TypeVar, get_args

from simreal.errors import SimrealError

Range = tuple[float, float]
RGB = tuple[float, float, float]
RGBRange = tuple[RGB, RGB]

FieldStop = Literal["none", "circle", "octagon"]

#: Shapes of the endoscope's field stop (black image border).
FIELD_STOPS: tuple[str, ...] = get_args(FieldStop)

#: Fisheye rays further than this from the optical axis are not cast (the black ring around a fisheye
#: image); at 90 degrees z-depth would stop being defined.
FISHEYE_MAX_THETA_DEG = 85.0

#: Smallest fisheye k1 for which ``theta_d = theta (1 + k1 theta^2)`` still grows up to
#: :data:`FISHEYE_MAX_THETA_DEG` (below it the lens would map two angles onto one pixel).
FISHEYE_K1_MIN = -1.0 / (3.0 * math.radians(FISHEYE_MAX_THETA_DEG) ** 2)

C = TypeVar("C")


class RenderConfigError(SimrealError):
    """Values out of range in a render config; ``problems`` holds (dotted field, what is wrong) pairs.

    The dotted field is relative to :class:`ColonoscopyConfig` (``lens.fov_deg``); a reader that knows
    where the tree sits in a larger file re-raises it with :meth:`under`.
    """

    def __init__(self, problems: list[tuple[str, str]], path: Any = None):
        self.problems = list(problems)
        super().__init__("; ".join(f"{name}: {what}" for name, what in self.problems), path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (RenderConfigError, (self.problems, self.path))

    def under(self, prefix: str, path: Any = None) -> "RenderConfigError":
        """The same problems with ``prefix.`` before every field name (and the file they came from)."""
        return RenderConfigError([(f"{prefix}.{name}", what) for name, what in self.problems], path)


class _Checks:
    """Collects the problems of one config node; ``done()`` raises them all at once."""

    def __init__(self, section: str):
        self.section = section
        self.problems: list[tuple[str, str]] = []

    def add(self, name: str, what: str) -> None:
        self.problems.append((f"{self.section}.{name}" if self.section else name, what))

    def value(self, name: str, x: Any, lo: float | None = None, hi: float | None = None, *,
              lo_open: bool = False, hi_open: bool = False, shown: Any = None) -> None:
        """A number (or each number of a tuple) within [lo, hi] (open ends where said); errors show
        ``shown`` (default ``x``)."""
        values = x if isinstance(x, tuple) else (x,)
        x = x if shown is None else shown
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                self.add(name, f"expected finite numbers, got {x!r}")
                return
        low = min(values)
        high = max(values)
        if lo is not None and (low <= lo if lo_open else low < lo):
            self.add(name, f"must be {'>' if lo_open else '>='} {lo:g}, got {x!r}")
        elif hi is not None and (high >= hi if hi_open else high > hi):
            self.add(name, f"must be {'<' if hi_open else '<='} {hi:g}, got {x!r}")

    def range(self, name: str, r: Any, lo: float | None = None, hi: float | None = None, *,
              lo_open: bool = False, hi_open: bool = False, size: int = 0) -> None:
        """A (low, high) pair (of numbers, or of ``size``-tuples checked channel by channel)."""
        if not isinstance(r, tuple) or len(r) != 2:
            self.add(name, f"expected (low, high), got {r!r}")
            return
        low, high = r
        if size:
            if not all(isinstance(e, tuple) and len(e) == size for e in r):
                self.add(name, f"expected (low, high) of {size} numbers each, got {r!r}")
                return
        n = len(self.problems)
        self.value(name, r if not size else low + high, lo, hi, lo_open=lo_open, hi_open=hi_open, shown=r)
        if len(self.problems) > n:
            return
        pairs = zip(low, high) if size else [(low, high)]
        if any(a > b for a, b in pairs):
            self.add(name, f"low {low!r} above high {high!r}")

    def done(self) -> None:
        if self.problems:
            raise RenderConfigError(self.problems)


@dataclass(frozen=True)
class LensConfig:
    """The endoscope's lens.

    Args:
        fov_deg: range of the horizontal field of view in degrees, across the full image width (outer
            pixel edges); (0, 179) for pinhole, (0, 170) for fisheye.
        fisheye: the equidistant fisheye model with distortion ``k1`` (else an ideal pinhole).
        fisheye_k1: range of the first fisheye distortion coefficient (``theta_d = theta (1 + k1
            theta^2)``); drawn only when ``fisheye`` is set. At least :data:`FISHEYE_K1_MIN`.
    """

    fov_deg: Range = (100.0, 140.0)
    fisheye: bool = False
    fisheye_k1: Range = (-0.05, 0.05)

    def __post_init__(self) -> None:
        c = _Checks("lens")
        c.range("fov_deg", self.fov_deg, 0.0, 170.0 if self.fisheye else 179.0, lo_open=True, hi_open=True)
        c.range("fisheye_k1", self.fisheye_k1, FISHEYE_K1_MIN, lo_open=True)
        c.done()


@dataclass(frozen=True)
class PoseConfig:
    """Where the tip sits in lumen views (and how close to the wall any view may get).

    Args:
        offset_frac: largest distance of the camera from the centerline, as a fraction of the local
            radius, [0, 1).
        min_clearance_frac: smallest distance from the camera to the nearest mesh vertex, as a fraction
            of the local radius, [0, 1) (the tip never touches the wall or sits inside a polyp; polyp
            views too).
        look_deg: largest yaw and pitch away from the centerline direction, degrees, [0, 90).
        backward_prob: probability of looking against the centerline order, [0, 1].
        end_margin_frac: fraction of the centerline length kept free at both ends, [0, 0.5).
    """

    offset_frac: float = 0.5
    min_clearance_frac: float = 0.2
    look_deg: float = 25.0
    backward_prob: float = 0.5
    end_margin_frac: float = 0.08

    def __post_init__(self) -> None:
        c = _Checks("pose")
        c.value("offset_frac", self.offset_frac, 0.0, 1.0, hi_open=True)
        c.value("min_clearance_frac", self.min_clearance_frac, 0.0, 1.0, hi_open=True)
        c.value("look_deg", self.look_deg, 0.0, 90.0, hi_open=True)
        c.value("backward_prob", self.backward_prob, 0.0, 1.0)
        c.value("end_margin_frac", self.end_margin_frac, 0.0, 0.5, hi_open=True)
        c.done()


@dataclass(frozen=True)
class PolypViewConfig:
    """Close-up views of a polyp, as in polyp data sets such as CVC-ClinicDB.

    Args:
        prob: probability that a frame looks at a polyp instead of down the lumen, [0, 1]; meshes
            without polyps always get the lumen pose.
        distance_mm: range of the tip-to-polyp distance, mm (low > 0); the upper end is further capped
            at ``distance_diameters`` times the polyp's size (small polyps are seen close up).
        distance_diameters: see ``distance_mm`` (> 0).
        offcentre: largest angle of the polyp from the optical axis, as a fraction of half the field of
            view, [0, 1).
        tilt_deg: largest angle between the viewing direction and the polyp's way to the centerline
            (oblique views along the lumen), degrees, [0, 90).
    """

    prob: float = 0.5
    distance_mm: Range = (8.0, 40.0)
    distance_diameters: float = 2.5
    offcentre: float = 0.5
    tilt_deg: float = 60.0

    def __post_init__(self) -> None:
        c = _Checks("polyp_view")
        c.value("prob", self.prob, 0.0, 1.0)
        c.range("distance_mm", self.distance_mm, 0.0, lo_open=True)
        c.value("distance_diameters", self.distance_diameters, 0.0, lo_open=True)
        c.value("offcentre", self.offcentre, 0.0, 1.0, hi_open=True)
        c.value("tilt_deg", self.tilt_deg, 0.0, 90.0, hi_open=True)
        c.done()


@dataclass(frozen=True)
class AppearanceConfig:
    """Ranges of the shading parameters (:class:`~simreal.render.shading.ShadingParams` has the model).

    Colours are linear RGB, each range a (low, high) pair of RGB triples drawn channel by channel.
    Defaults were tuned by eye against CVC-ClinicDB frames (orange-pink to salmon mucosa, linear G/R
    about 0.3-0.55; polyps a bit redder or paler than the wall).

    There is no light-power range: auto-exposure (:attr:`exposure`, the endoscope's automatic light
    control) scales the light until the image's 90th-percentile diffuse level hits its target, which
    cancels any light power exactly, so brightness is set by ``exposure`` alone.

    Args:
        base_rgb: mucosa albedo, [0, 1].
        dark_rgb: albedo where the mottling pattern is 1, [0, 1].
        vessel_rgb: blood-vessel albedo, [0, 1].
        vessel_strength: how much vessels replace the mucosa colour, [0, 1].
        polyp_tint: multiplicative RGB tint on polyp pixels, [0, 2].
        spot_exponent: spot fall-off ``cos(angle from the axis) ** spot_exponent``, >= 0.
        ambient: constant light fraction (inter-reflections), >= 0.
        specular: Blinn-Phong specular weight, >= 0.
        shininess: Blinn-Phong exponent, >= 0.
        vignetting: darkening at the image corners, [0, 1].
        noise_std: sensor noise standard deviation (linear units), >= 0.
        gamma: display gamma, > 0.
        exposure: auto-exposure target (90th percentile of the lit diffuse level), > 0.
    """

    base_rgb: RGBRange = ((0.80, 0.30, 0.12), (0.95, 0.52, 0.36))
    dark_rgb: RGBRange = ((0.60, 0.18, 0.08), (0.85, 0.36, 0.24))
    vessel_rgb: RGBRange = ((0.40, 0.04, 0.04), (0.60, 0.12, 0.10))
    vessel_strength: Range = (0.1, 0.5)
    polyp_tint: RGBRange = ((0.92, 0.65, 0.65), (1.05, 1.0, 1.0))
    spot_exponent: Range = (0.5, 2.0)
    ambient: Range = (0.0, 0.03)
    specular: Range = (0.5, 1.5)
    shininess: Range = (60.0, 250.0)
    vignetting: Range = (0.0, 0.5)
    noise_std: Range = (0.0, 0.015)
    gamma: Range = (2.0, 2.4)
    exposure: Range = (0.45, 0.8)

    def __post_init__(self) -> None:
        c = _Checks("appearance")
        for name in ("base_rgb", "dark_rgb", "vessel_rgb"):
            c.range(name, getattr(self, name), 0.0, 1.0, size=3)
        c.range("polyp_tint", self.polyp_tint, 0.0, 2.0, size=3)
        c.range("vessel_strength", self.vessel_strength, 0.0, 1.0)
        for name in ("spot_exponent", "ambient", "specular", "shininess", "noise_std"):
            c.range(name, getattr(self, name), 0.0)
        c.range("vignetting", self.vignetting, 0.0, 1.0)
        c.range("gamma", self.gamma, 0.0, lo_open=True)
        c.range("exposure", self.exposure, 0.0, lo_open=True)
        c.done()


@dataclass(frozen=True)
class ColonoscopyConfig:
    """Everything the colonoscopy frames are drawn from. Lengths in mm, angles in degrees.

    Args:
        lens: field of view and lens model.
        pose: camera placement in lumen views (and the wall clearance of every view).
        polyp_view: how often and how the camera looks at a polyp close up.
        appearance: colour, light, lens and sensor ranges.
        normals: write the normals file.
        field_stop: ``"none"``, ``"circle"`` or ``"octagon"``: image pixels outside the endoscope's field
            stop are black (as in real endoscope frames), and the labels there say "nothing seen": depth
            0, normals 0, mask 0, instance 0 (no supervision or evaluation on pixels without image
            content).

    Example:
        >>> cfg = ColonoscopyConfig(normals=False, polyp_view=PolypViewConfig(prob=0.6, distance_mm=(5.0, 30.0)))
        >>> cfg.polyp_view.distance_mm, cfg.lens.fisheye
        ((5.0, 30.0), False)
    """

    lens: LensConfig = field(default_factory=LensConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    polyp_view: PolypViewConfig = field(default_factory=PolypViewConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    normals: bool = True
    field_stop: FieldStop = "none"

    def __post_init__(self) -> None:
        c = _Checks("")
        for name, cls in (("lens", LensConfig), ("pose", PoseConfig), ("polyp_view", PolypViewConfig),
                          ("appearance", AppearanceConfig)):
            if not isinstance(getattr(self, name), cls):
                c.add(name, f"expected a {cls.__name__}, got {getattr(self, name)!r}")
        if not isinstance(self.normals, bool):
            c.add("normals", f"expected true or false, got {self.normals!r}")
        if self.field_stop not in FIELD_STOPS:
            c.add("field_stop", f"must be one of {', '.join(FIELD_STOPS)}, got {self.field_stop!r}")
        c.done()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists): the form written into ``dataset.json``."""
        from simreal.configs import to_plain

        return to_plain(self)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> "ColonoscopyConfig":
        """The inverse of :meth:`to_dict`; missing fields take their defaults, unknown ones raise."""
        from simreal.configs import build

        return build(cls, mapping)


def override(config: C, changes: Mapping[str, Any]) -> C:
    """``config`` with some fields changed, given as a nested mapping of plain values.

    Args:
        config: any config node (e.g. a :class:`ColonoscopyConfig`).
        changes: e.g. ``{"lens": {"fisheye": True}, "appearance": {"gamma": [2.2, 2.2]}}``.

    Returns:
        A new, validated node of the same type.

    Raises:
        SimrealError: unknown fields, wrong types or values out of range, naming the dotted field.
    """
    from simreal.configs import build, merge, to_plain

    return build(type(config), merge(to_plain(config), changes))
