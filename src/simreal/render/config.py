"""What the colonoscopy renderer draws its frames from: one frozen dataclass tree of ranges.

::

    ColonoscopyConfig
      lens: LensConfig              fov_deg, fisheye, fisheye_k1
      pose: PoseConfig              offset_frac, min_clearance_frac, look_deg, backward_prob, end_margin_frac
      polyp_view: PolypViewConfig   prob, distance_mm, distance_diameters, offcentre, tilt_deg
      appearance: AppearanceConfig  base_rgb, dark_rgb, vessel_rgb, vessel_strength, polyp_tint, spot_exponent,
                                    ambient, specular, shininess, vignetting, noise_std, gamma, exposure
      normals, field_stop
      look                          "training" | "realistic"
      realism: RealismConfig        the realistic look's effects (surface: mottle_contrast, sheen, vessel_*,
                                    wet_*, mucus_*, bubble_*, fluid_*; optics: lens_blur, motion_blur,
                                    defocus_near_mm, defocus, chromatic_aberration; sensor: white_balance,
                                    shot_noise, read_noise, black_level, white_level, jpeg_quality)

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
    >>> override(cfg, {"look": "realistic", "realism": {"jpeg_quality": [40, 85]}}).realism.jpeg_quality
    (40, 85)
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
Look = Literal["training", "realistic"]

#: Shapes of the endoscope's field stop (black image border).
FIELD_STOPS: tuple[str, ...] = get_args(FieldStop)

#: Looks a colonoscopy frame can be rendered in (:attr:`ColonoscopyConfig.look`).
LOOKS: tuple[str, ...] = get_args(Look)

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
class RealismConfig:
    """Ranges of the realistic look's effects (:mod:`simreal.render.look` has the model); read only when
    :attr:`ColonoscopyConfig.look` is ``"realistic"``.

    The realistic look keeps everything the training look draws (pose, lens, :class:`AppearanceConfig`
    colours and light) and adds what real colonoscopy frames (CVC-ClinicDB) show and training renders lack.
    Defaults were tuned by eye and by simple image statistics against CVC-ClinicDB (see the module
    docstring of :mod:`simreal.render.look`). Lengths on the surface are mm; blur lengths are fractions of
    the image width (so a look is the same at every resolution); colours are linear RGB.

    Args:
        mottle_contrast: fraction of the training mottling kept, [0, 1] (real mucosa is evener).
        sheen: fraction of the training look's broad Blinn-Phong specular kept, >= 0.
        vessel_contrast: how much the fine surface vessel network darkens the mucosa, [0, 1].
        vessel_scale_mm: spacing of the coarse vessel network, mm (> 0; capillaries at 0.45x).
        vessel_width: vessel half-width, as a fraction of the noise's standard deviation, (0, 1].
        wet_strength: peak of the wet-film highlights relative to the diffuse level of a surface facing
            the tip, >= 0 (above about 1 they clip to white, as real highlights do).
        wet_shininess: exponent of the wet film's mirror lobe where the wall faces the tip (sharp:
            hundreds to thousands), >= 1.
        wet_spots: fraction of the surface where the film's ripples face the tip and give a small spot
            highlight, [0, 1) (the isolated white specks of real frames).
        wet_scale_mm: ripple size, mm (> 0; spots are about a fifth of it).
        mucus_coverage: fraction of the surface under mucus patches, [0, 1).
        mucus_opacity: how much a patch replaces the mucosa colour, [0, 1].
        mucus_rgb: mucus colour (yellowish white), [0, 1].
        mucus_scale_mm: size of the mucus patches, mm (> 0).
        bubble_density: fraction of lattice cells holding a bubble or droplet, [0, 1].
        bubble_scale_mm: lattice cell size, mm (> 0; bubbles are 0.12-0.3 of it in radius).
        fluid_prob: probability of a fluid pool in the lower lumen, [0, 1].
        fluid_level_mm: distance of the pool's surface below the tip along the drawn "down", mm.
        fluid_tilt_deg: largest angle of "down" away from the image's down direction, degrees, [0, 180].
        fluid_opacity: how much the pool replaces the mucosa colour, [0, 1].
        fluid_rgb: pool colour, [0, 1].
        lens_blur: Gaussian lens blur, sigma as a fraction of the image width, >= 0.
        motion_blur: length of a straight motion blur (direction drawn uniformly), fraction of the width, >= 0.
        defocus_near_mm: tissue nearer than this is out of focus, mm (> 0).
        defocus: defocus blur radius at half ``defocus_near_mm``, fraction of the width, >= 0 (the radius
            grows as ``near / depth - 1``, up to 3x this).
        chromatic_aberration: lateral chromatic aberration: red magnified and blue shrunk by this
            fraction about the image centre, [0, 0.05].
        exposure_gain: error of the endoscope's automatic light control: the exposed image is multiplied
            by it (> 0; real frames are often brighter than the training look's exposure target).
        white_balance: per-channel gains of the camera's colour processing (a colour cast), >= 0; scaled
            to unit luminance (Rec. 709 weights), so they change the hue, not the brightness.
        shot_noise: photon (shot) noise, standard deviation at full scale (variance proportional to the
            signal: stronger in dark regions relative to the signal), >= 0.
        read_noise: signal-independent sensor noise, standard deviation (linear units), >= 0.
        black_level: output level of black (video levels: the grey surround of real frames), [0, 0.5).
        white_level: output level of full scale, (0.5, 1].
        jpeg_quality: JPEG quality the frame is encoded and decoded at (integers, 1..100).
    """

    mottle_contrast: Range = (0.15, 0.45)
    sheen: Range = (0.1, 0.35)
    vessel_contrast: Range = (0.4, 0.8)
    vessel_scale_mm: Range = (1.5, 4.0)
    vessel_width: Range = (0.12, 0.3)
    wet_strength: Range = (6.0, 20.0)
    wet_shininess: Range = (300.0, 2000.0)
    wet_spots: Range = (0.002, 0.015)
    wet_scale_mm: Range = (0.4, 1.2)
    mucus_coverage: Range = (0.0, 0.25)
    mucus_opacity: Range = (0.1, 0.35)
    mucus_rgb: RGBRange = ((0.92, 0.85, 0.6), (1.0, 0.95, 0.8))
    mucus_scale_mm: Range = (5.0, 15.0)
    bubble_density: Range = (0.0, 0.08)
    bubble_scale_mm: Range = (1.0, 3.0)
    fluid_prob: float = 0.2
    fluid_level_mm: Range = (4.0, 15.0)
    fluid_tilt_deg: float = 40.0
    fluid_opacity: Range = (0.3, 0.6)
    fluid_rgb: RGBRange = ((0.8, 0.55, 0.1), (0.95, 0.75, 0.3))
    lens_blur: Range = (0.002, 0.004)
    motion_blur: Range = (0.0, 0.012)
    defocus_near_mm: Range = (4.0, 10.0)
    defocus: Range = (0.0, 0.008)
    chromatic_aberration: Range = (0.0, 0.003)
    exposure_gain: Range = (0.9, 1.5)
    white_balance: RGBRange = ((0.95, 0.78, 0.45), (1.05, 0.95, 0.62))
    shot_noise: Range = (0.02, 0.04)
    read_noise: Range = (0.001, 0.003)
    black_level: Range = (0.035, 0.085)
    white_level: Range = (0.88, 0.96)
    jpeg_quality: tuple[int, int] = (50, 90)

    def __post_init__(self) -> None:
        c = _Checks("realism")
        for name in ("mottle_contrast", "vessel_contrast", "mucus_opacity", "bubble_density", "fluid_opacity"):
            c.range(name, getattr(self, name), 0.0, 1.0)
        for name in ("sheen", "wet_strength", "lens_blur", "motion_blur", "defocus", "shot_noise",
                     "read_noise"):
            c.range(name, getattr(self, name), 0.0)
        for name in ("vessel_scale_mm", "wet_scale_mm", "mucus_scale_mm", "bubble_scale_mm", "defocus_near_mm",
                     "exposure_gain"):
            c.range(name, getattr(self, name), 0.0, lo_open=True)
        c.range("vessel_width", self.vessel_width, 0.0, 1.0, lo_open=True)
        c.range("wet_shininess", self.wet_shininess, 1.0)
        c.range("mucus_coverage", self.mucus_coverage, 0.0, 1.0, hi_open=True)
        c.range("wet_spots", self.wet_spots, 0.0, 1.0, hi_open=True)
        c.range("fluid_level_mm", self.fluid_level_mm, 0.0)
        c.range("chromatic_aberration", self.chromatic_aberration, 0.0, 0.05)
        c.range("black_level", self.black_level, 0.0, 0.5, hi_open=True)
        c.range("white_level", self.white_level, 0.5, 1.0, lo_open=True)
        for name in ("mucus_rgb", "fluid_rgb"):
            c.range(name, getattr(self, name), 0.0, 1.0, size=3)
        c.range("white_balance", self.white_balance, 0.0, size=3)
        c.value("fluid_prob", self.fluid_prob, 0.0, 1.0)
        c.value("fluid_tilt_deg", self.fluid_tilt_deg, 0.0, 180.0)
        q = self.jpeg_quality
        integers = isinstance(q, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in q)
        if not (integers and len(q) == 2):
            c.add("jpeg_quality", f"expected (low, high) integers, got {q!r}")
        else:
            c.range("jpeg_quality", q, 1.0, 100.0)
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
            stop are black (as in real endoscope frames; the realistic look's surround is its flat black
            level, the grey of real frames), and the labels there say "nothing seen": depth 0, normals 0, mask 0,
            instance 0 (no supervision or evaluation on pixels without image content).
        look: ``"training"`` (the look simreal's training sets are rendered in) or ``"realistic"``: the
            same frames (same poses, lens and colours for the same seed, so the same labels) with what
            real frames have on top: fine vessels, wet highlights, mucus, bubbles, fluid, blur, colour
            cast, sensor noise, JPEG (:mod:`simreal.render.look`). A realistic set is a stand-in real
            domain with ground-truth depth.
        realism: the ranges of the realistic look (read only when ``look`` is ``"realistic"``).

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
    # Plain defaults (not default_factory): an instance pickled before these fields existed unpickles
    # with the class attributes as its values (a render worker may import newer code than its parent).
    look: Look = "training"
    realism: RealismConfig = RealismConfig()

    def __post_init__(self) -> None:
        c = _Checks("")
        for name, cls in (("lens", LensConfig), ("pose", PoseConfig), ("polyp_view", PolypViewConfig),
                          ("appearance", AppearanceConfig), ("realism", RealismConfig)):
            if not isinstance(getattr(self, name), cls):
                c.add(name, f"expected a {cls.__name__}, got {getattr(self, name)!r}")
        if not isinstance(self.normals, bool):
            c.add("normals", f"expected true or false, got {self.normals!r}")
        if self.field_stop not in FIELD_STOPS:
            c.add("field_stop", f"must be one of {', '.join(FIELD_STOPS)}, got {self.field_stop!r}")
        if self.look not in LOOKS:
            c.add("look", f"must be one of {', '.join(LOOKS)}, got {self.look!r}")
        c.done()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists): the form written into ``dataset.json``.

        The training look with default realism ranges leaves out ``look`` and ``realism`` (reading takes
        them as defaults), so training-look datasets keep the ``dataset.json`` they had before the
        realistic look existed, byte for byte (and an interrupted render resumes across the change).
        """
        from simreal.configs import to_plain

        return plain_config(to_plain(self))

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> "ColonoscopyConfig":
        """The inverse of :meth:`to_dict`; missing fields take their defaults, unknown ones raise."""
        from simreal.configs import build

        return build(cls, mapping)


def plain_config(plain: dict[str, Any]) -> dict[str, Any]:
    """A plain :class:`ColonoscopyConfig` (``to_plain``) without ``look`` and ``realism`` when they hold
    the training look and the default realism ranges (see :meth:`ColonoscopyConfig.to_dict`)."""
    from simreal.configs import to_plain

    if plain.get("look") == "training" and plain.get("realism") == to_plain(RealismConfig()):
        plain = {k: v for k, v in plain.items() if k not in ("look", "realism")}
    return plain


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
