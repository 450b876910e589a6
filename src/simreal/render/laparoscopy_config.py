"""What laparoscopy frames are drawn from: one frozen dataclass tree of ranges, and the render job.

::

    LaparoscopyConfig
      liver: LiverConfig              scale, extent_mm, n_rbf, sigma_mm, displacement_mm, max_lipschitz
      gallbladder: GallbladderConfig  prob, length_mm, diameter_mm, protrusion_mm, embed, taper, sag_mm
      fat: FatConfig                  patches, lumps, radius_mm, flatten, spread_mm, lumpiness
      ligament: LigamentConfig        prob, position, length_frac, height_mm, tilt_deg, slant, thickness_mm,
                                      base_width_mm
      wall: WallConfig                lateral, superior, inferior_mm, posterior_mm, anterior_mm, bump_mm
      camera: LaparoscopeConfig       fov_deg, distance_mm, elevation_deg, azimuth_deg, offcentre_deg, roll_deg,
                                      clearance_mm, aim_at_liver
      tools: ToolConfig               count_probs, shaft_diameter_mm, tip_region, tip_depth, entry_deg, ...
      appearance: LaparoscopyAppearanceConfig  one SurfaceLookRange per class, light, lens, sensor
      field_stop_prob, field_stop_radius, normals

A range ``(low, high)`` is drawn uniformly; ``low == high`` fixes it; integer ranges include both ends.
Lengths are mm in the liver frame (:mod:`simreal.anatomy.liver`), angles degrees. Every node checks its
values when made and names the bad field (``camera.fov_deg: low 95.0 above high 80.0``).

Example:
    >>> cfg = LaparoscopyConfig(camera=LaparoscopeConfig(fov_deg=(75.0, 75.0)))
    >>> cfg.camera.fov_deg, cfg.tools.count_probs
    ((75.0, 75.0), (0.2, 0.5, 0.3))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from simreal.errors import SimrealError
from simreal.render.config import RGB, Range, RenderConfigError, RGBRange, _Checks

IntRange = tuple[int, int]


def _int_range(c: _Checks, name: str, r: Any, lo: int) -> None:
    if not (isinstance(r, tuple) and len(r) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in r)):
        c.add(name, f"expected (low, high) integers, got {r!r}")
    elif r[0] < lo or r[0] > r[1]:
        c.add(name, f"need {lo} <= low <= high, got {r!r}")


def _nodes(c: _Checks, obj: Any) -> None:
    """Every nested config field holds its declared dataclass (``build`` guarantees it; direct use may not)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        if default is not None and dataclasses.is_dataclass(default) and type(value) is not type(default):
            c.add(f.name, f"expected a {type(default).__name__}, got {value!r}")


@dataclass(frozen=True)
class LiverConfig:
    """Per-scene size and shape of the liver.

    Args:
        scale: range of the uniform scale about the centroid, (0, 3).
        extent_mm: anatomical limits of the scaled liver's longest extent, mm (the scale is clipped to them).
        n_rbf: range of the number of Gaussian basis functions of the deformation (integers, >= 0).
        sigma_mm: range of their widths, mm (> 0; low-frequency: tens of mm).
        displacement_mm: range of the bound on the displacement, mm (>= 0).
        max_lipschitz: largest stretch of the deformation field, (0, 1) (< 1: no self-intersections).
    """

    scale: Range = (0.85, 1.15)
    extent_mm: Range = (150.0, 280.0)
    n_rbf: IntRange = (2, 5)
    sigma_mm: Range = (40.0, 90.0)
    displacement_mm: Range = (4.0, 15.0)
    max_lipschitz: float = 0.35

    def __post_init__(self) -> None:
        c = _Checks("liver")
        c.range("scale", self.scale, 0.0, 3.0, lo_open=True, hi_open=True)
        c.range("extent_mm", self.extent_mm, 0.0, lo_open=True)
        _int_range(c, "n_rbf", self.n_rbf, 0)
        c.range("sigma_mm", self.sigma_mm, 0.0, lo_open=True)
        c.range("displacement_mm", self.displacement_mm, 0.0)
        c.value("max_lipschitz", self.max_lipschitz, 0.0, 1.0, lo_open=True, hi_open=True)
        c.done()


@dataclass(frozen=True)
class GallbladderConfig:
    """The gallbladder under the liver's inferior edge.

    Args:
        prob: probability that a scene has one, [0, 1].
        length_mm, diameter_mm: ranges of its size, mm (> 0).
        protrusion_mm: range of how far the fundus reaches past the liver's inferior edge, mm.
        embed: range of the fraction of its diameter sunk into the liver's underside, [0, 1).
        taper: range of the neck's narrowing, [0, 0.9].
        sag_mm: range of the sag of its body, mm (>= 0).
        position: range of its position along x, as a fraction of the liver's half-width on the right
            lobe's side, [0, 1].
    """

    prob: float = 0.85
    length_mm: Range = (55.0, 85.0)
    diameter_mm: Range = (28.0, 40.0)
    protrusion_mm: Range = (10.0, 30.0)
    embed: Range = (0.2, 0.5)
    taper: Range = (0.3, 0.6)
    sag_mm: Range = (0.0, 6.0)
    position: Range = (0.1, 0.45)

    def __post_init__(self) -> None:
        c = _Checks("gallbladder")
        c.value("prob", self.prob, 0.0, 1.0)
        c.range("length_mm", self.length_mm, 0.0, lo_open=True)
        c.range("diameter_mm", self.diameter_mm, 0.0, lo_open=True)
        c.range("protrusion_mm", self.protrusion_mm)
        c.range("embed", self.embed, 0.0, 1.0, hi_open=True)
        c.range("taper", self.taper, 0.0, 0.9)
        c.range("sag_mm", self.sag_mm, 0.0)
        c.range("position", self.position, 0.0, 1.0)
        c.done()


@dataclass(frozen=True)
class FatConfig:
    """Patches of lumpy fat (omentum) below the liver's inferior edge.

    Args:
        patches: range of the number of patches per scene (integers, >= 0).
        lumps: range of the number of lumps per patch (integers, >= 1).
        radius_mm: range of a lump's radius, mm (> 0).
        flatten: range of the lump's z semi-axis as a fraction of its radius, (0, 1].
        spread_mm: lumps lie within this distance of their patch's centre, mm (>= 0).
        lumpiness: range of the radial noise amplitude, [0, 0.6].
        beyond_mm: range of a patch's distance past the inferior edge along y, mm.
        below_mm: range of a patch's depth below the edge along -z, mm.

    A patch whose centre would lie within the gallbladder's length of it (along x) moves sideways, so
    the fat does not hide the gallbladder.
    """

    patches: IntRange = (3, 6)
    lumps: IntRange = (4, 9)
    radius_mm: Range = (10.0, 26.0)
    flatten: Range = (0.55, 0.9)
    spread_mm: float = 28.0
    lumpiness: Range = (0.1, 0.35)
    beyond_mm: Range = (10.0, 60.0)
    below_mm: Range = (10.0, 50.0)

    def __post_init__(self) -> None:
        c = _Checks("fat")
        _int_range(c, "patches", self.patches, 0)
        _int_range(c, "lumps", self.lumps, 1)
        c.range("radius_mm", self.radius_mm, 0.0, lo_open=True)
        c.range("flatten", self.flatten, 0.0, 1.0, lo_open=True)
        c.value("spread_mm", self.spread_mm, 0.0)
        c.range("lumpiness", self.lumpiness, 0.0, 0.6)
        c.range("beyond_mm", self.beyond_mm)
        c.range("below_mm", self.below_mm)
        c.done()


@dataclass(frozen=True)
class LigamentConfig:
    """The falciform ligament.

    Args:
        prob: probability that a scene has one, [0, 1].
        position: range of its plane's position along x, as a fraction of the liver's half-width towards
            the left lobe (-1..1; 0 = the centroid).
        length_frac: range of its attachment's length along y, as a fraction of the liver's y extent,
            from the inferior edge upwards, (0, 1].
        height_mm: range of the sheet's height above the liver, mm (> 0; the wall caps it).
        tilt_deg: range of the sheet's tilt about y, degrees, (-45, 45).
        slant: range of the lean of its inferior end towards the umbilicus, [0, 2].
        thickness_mm: range of the sheet's thickness, mm (> 0).
        base_width_mm: range of the band's width on the liver, mm (>= the thickness).
    """

    prob: float = 0.8
    position: Range = (0.0, 0.35)
    length_frac: Range = (0.45, 0.8)
    height_mm: Range = (6.0, 25.0)
    tilt_deg: Range = (-15.0, 15.0)
    slant: Range = (0.2, 0.8)
    thickness_mm: Range = (2.5, 5.0)
    base_width_mm: Range = (8.0, 18.0)

    def __post_init__(self) -> None:
        c = _Checks("ligament")
        c.value("prob", self.prob, 0.0, 1.0)
        c.range("position", self.position, -1.0, 1.0)
        c.range("length_frac", self.length_frac, 0.0, 1.0, lo_open=True)
        c.range("height_mm", self.height_mm, 0.0, lo_open=True)
        c.range("tilt_deg", self.tilt_deg, -45.0, 45.0, lo_open=True, hi_open=True)
        c.range("slant", self.slant, 0.0, 2.0)
        c.range("thickness_mm", self.thickness_mm, 0.0, lo_open=True)
        c.range("base_width_mm", self.base_width_mm, 0.0, lo_open=True)
        if (isinstance(self.base_width_mm, tuple) and isinstance(self.thickness_mm, tuple) and not c.problems
                and self.base_width_mm[0] < self.thickness_mm[1]):
            c.add("base_width_mm", "its low end must be at least thickness_mm's high end")
        c.done()


@dataclass(frozen=True)
class WallConfig:
    """The diaphragm / abdominal wall ellipsoid, placed from the liver's bounding box (liver frame).

    Along x it spans ``lateral`` times the liver's half-width each side; along y from ``superior`` times
    the liver's superior extent (< 1: the wall cuts into the dome, which disappears under the diaphragm)
    to ``inferior_mm`` past the inferior edge; along z from ``posterior_mm`` behind the liver to
    ``anterior_mm`` in front of it. It always grows to hold every camera position with a margin.

    Args:
        lateral: range, (0, 5).
        superior: range, (0, 2).
        inferior_mm, posterior_mm, anterior_mm: ranges, mm (>= 0).
        bump_mm: range of the radial bumps, mm (>= 0).
    """

    lateral: Range = (1.15, 1.5)
    superior: Range = (0.8, 1.0)
    inferior_mm: Range = (120.0, 220.0)
    posterior_mm: Range = (0.0, 30.0)
    anterior_mm: Range = (150.0, 220.0)
    bump_mm: Range = (3.0, 10.0)

    def __post_init__(self) -> None:
        c = _Checks("wall")
        c.range("lateral", self.lateral, 0.0, 5.0, lo_open=True, hi_open=True)
        c.range("superior", self.superior, 0.0, 2.0, lo_open=True, hi_open=True)
        for name in ("inferior_mm", "posterior_mm", "anterior_mm", "bump_mm"):
            c.range(name, getattr(self, name), 0.0)
        c.done()


@dataclass(frozen=True)
class LaparoscopeConfig:
    """The laparoscope: lens and where it sits (a pinhole camera, OpenCV convention).

    The tip is placed on the line from the liver's centroid in the direction ``elevation_deg`` from the
    liver's anterior axis (z) towards its inferior edge (+y), turned ``azimuth_deg`` about z (the view from
    a port in the anterior abdominal wall), ``distance_mm`` beyond the liver's surface on that line, so
    the tip is 10-25 cm from the liver's centre for an adult liver. It looks at the centroid, turned away by up to
    ``offcentre_deg``, with the image's down direction towards the inferior edge, rolled by ``roll_deg``.

    Args:
        fov_deg: range of the horizontal field of view, degrees, (0, 179).
        distance_mm: range of the tip's distance from the liver's surface (see above), mm (> 0).
        elevation_deg: range, degrees, [0, 90].
        azimuth_deg: range, degrees, [-180, 180].
        offcentre_deg: largest angle between the optical axis and the centroid, degrees, [0, 60].
        roll_deg: range of the roll about the optical axis, degrees.
        clearance_mm: smallest distance between the tip and any tissue, mm (> 0).
        aim_at_liver: the optical axis must meet the liver first (no frame centred on fat or a tool).
    """

    fov_deg: Range = (70.0, 90.0)
    distance_mm: Range = (50.0, 140.0)
    elevation_deg: Range = (15.0, 60.0)
    azimuth_deg: Range = (-35.0, 35.0)
    offcentre_deg: float = 12.0
    roll_deg: Range = (-25.0, 25.0)
    clearance_mm: float = 20.0
    aim_at_liver: bool = True

    def __post_init__(self) -> None:
        c = _Checks("camera")
        if not isinstance(self.aim_at_liver, bool):
            c.add("aim_at_liver", f"expected true or false, got {self.aim_at_liver!r}")
        c.range("fov_deg", self.fov_deg, 0.0, 179.0, lo_open=True, hi_open=True)
        c.range("distance_mm", self.distance_mm, 0.0, lo_open=True)
        c.range("elevation_deg", self.elevation_deg, 0.0, 90.0)
        c.range("azimuth_deg", self.azimuth_deg, -180.0, 180.0)
        c.value("offcentre_deg", self.offcentre_deg, 0.0, 60.0)
        c.range("roll_deg", self.roll_deg, -180.0, 180.0)
        c.value("clearance_mm", self.clearance_mm, 0.0, lo_open=True)
        c.done()


@dataclass(frozen=True)
class ToolConfig:
    """Instruments: a shaft entering from the image border and a grasper tip.

    Args:
        count_probs: probabilities of 0, 1, 2, ... tools in a frame (non-negative, summing to 1).
        shaft_diameter_mm: diameters to choose from, mm (> 0): 5 and 10 mm instruments.
        tip_region: the jaws' end lies within this fraction of the half image size from the centre, (0, 1).
        tip_depth: range of the jaws' end's distance along its pixel's ray, as a fraction of the distance to
            the tissue seen there, (0, 1).
        entry_deg: range of the shaft's angle to the image plane (towards the camera), degrees, (0, 90).
        spread_deg: largest turn of the shaft's direction in the image away from "outwards from the
            centre", degrees, [0, 180].
        jaw_length_mm: range of the jaws' length, mm (> 0).
        jaw_open_deg: range of the jaws' opening angle, degrees, [0, 90].
    """

    count_probs: tuple[float, ...] = (0.2, 0.5, 0.3)
    shaft_diameter_mm: tuple[float, ...] = (5.0, 10.0)
    tip_region: float = 0.6
    tip_depth: Range = (0.55, 0.9)
    entry_deg: Range = (15.0, 50.0)
    spread_deg: float = 70.0
    jaw_length_mm: Range = (12.0, 20.0)
    jaw_open_deg: Range = (0.0, 40.0)

    def __post_init__(self) -> None:
        c = _Checks("tools")
        p = self.count_probs
        if not (isinstance(p, tuple) and p and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0
                                                    for x in p) and abs(sum(p) - 1.0) < 1e-6):
            c.add("count_probs", f"expected probabilities summing to 1, got {p!r}")
        d = self.shaft_diameter_mm
        if not (isinstance(d, tuple) and d and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0
                                                    for x in d)):
            c.add("shaft_diameter_mm", f"expected positive diameters, got {d!r}")
        c.value("tip_region", self.tip_region, 0.0, 1.0, lo_open=True, hi_open=True)
        c.range("tip_depth", self.tip_depth, 0.0, 1.0, lo_open=True, hi_open=True)
        c.range("entry_deg", self.entry_deg, 0.0, 90.0, lo_open=True, hi_open=True)
        c.value("spread_deg", self.spread_deg, 0.0, 180.0)
        c.range("jaw_length_mm", self.jaw_length_mm, 0.0, lo_open=True)
        c.range("jaw_open_deg", self.jaw_open_deg, 0.0, 90.0)
        c.done()


@dataclass(frozen=True)
class SurfaceLookRange:
    """Ranges of one class's surface look (linear RGB in [0, 1]); checked by the appearance config holding it.

    A colour range is drawn along the segment from its low to its high colour (one uniform number for all
    three channels, so greys stay grey), then each channel is multiplied by ``1 + U(-hue_jitter,
    hue_jitter)``.

    Args:
        base_rgb: albedo.
        dark_rgb: albedo where the mottling pattern is 1.
        vessel_rgb: albedo of vessels.
        vessel_strength: how much vessels replace the albedo, [0, 1].
        specular: Blinn-Phong weight, >= 0.
        shininess: Blinn-Phong exponent, >= 1.
        hue_jitter: per-channel jitter, [0, 0.5).
    """

    base_rgb: RGBRange
    dark_rgb: RGBRange
    vessel_rgb: RGBRange = ((0.45, 0.03, 0.03), (0.65, 0.10, 0.08))
    vessel_strength: Range = (0.0, 0.0)
    specular: Range = (0.2, 0.8)
    shininess: Range = (40.0, 200.0)
    hue_jitter: float = 0.06

    def check(self, c: _Checks, prefix: str) -> None:
        """Add this look's problems to ``c``, fields named ``prefix.field`` (the appearance config that holds
        the look calls this, so errors name the class: ``appearance.liver.specular``)."""
        for name in ("base_rgb", "dark_rgb", "vessel_rgb"):
            c.range(f"{prefix}.{name}", getattr(self, name), 0.0, 1.0, size=3)
        c.range(f"{prefix}.vessel_strength", self.vessel_strength, 0.0, 1.0)
        c.range(f"{prefix}.specular", self.specular, 0.0)
        c.range(f"{prefix}.shininess", self.shininess, 1.0)
        c.value(f"{prefix}.hue_jitter", self.hue_jitter, 0.0, 0.5, hi_open=True)


def _look(base: RGBRange, dark: RGBRange, **kw: Any) -> Any:
    return field(default_factory=lambda: SurfaceLookRange(base_rgb=base, dark_rgb=dark, **kw))


#: Names of the per-class looks, in class-id order 1..7 (:data:`~simreal.anatomy.abdomen_classes.LAPAROSCOPY_CLASSES`).
LOOK_NAMES = ("liver", "fat", "abdominal_wall", "ligament", "tool_shaft", "tool_tip", "gallbladder")


@dataclass(frozen=True)
class LaparoscopyAppearanceConfig:
    """Ranges of the shading (:class:`~simreal.render.laparoscopy.LaparoscopyShading` has the model).

    Colours were set by eye against the P2ILF laparoscopic images: dark red-brown liver, yellow fat,
    pink wall with red vessels, whitish-yellow ligament, green gallbladder, grey metal tools (shaft darker,
    tip brighter, both with strong highlights). Brightness is set by auto-exposure (``exposure``).

    Args:
        liver, fat, abdominal_wall, ligament, tool_shaft, tool_tip, gallbladder: each class's look.
        spot_exponent: range of the light's fall-off ``cos(angle) ** spot_exponent``, >= 0.
        ambient: range of the constant light fraction, >= 0.
        vignetting: range of the darkening at the corners, [0, 1].
        noise_std: range of the sensor noise (linear units), >= 0.
        gamma: range of the display gamma, > 0.
        exposure: range of the auto-exposure target, > 0.
    """

    liver: SurfaceLookRange = _look(((0.34, 0.07, 0.07), (0.55, 0.17, 0.16)), ((0.22, 0.04, 0.04), (0.38, 0.10, 0.10)),
                                    vessel_strength=(0.0, 0.1), specular=(0.3, 1.0), shininess=(60.0, 250.0))
    fat: SurfaceLookRange = _look(((0.78, 0.52, 0.10), (0.95, 0.78, 0.30)), ((0.55, 0.32, 0.05), (0.80, 0.55, 0.18)),
                                  vessel_strength=(0.15, 0.5), specular=(0.2, 0.8), shininess=(40.0, 150.0))
    abdominal_wall: SurfaceLookRange = _look(((0.62, 0.25, 0.22), (0.90, 0.45, 0.40)),
                                             ((0.50, 0.18, 0.16), (0.75, 0.35, 0.30)),
                                             vessel_strength=(0.25, 0.7), specular=(0.1, 0.6), shininess=(30.0, 150.0))
    ligament: SurfaceLookRange = _look(((0.68, 0.45, 0.25), (0.90, 0.68, 0.42)), ((0.55, 0.33, 0.18), (0.80, 0.55, 0.32)),
                                       vessel_strength=(0.1, 0.4), specular=(0.2, 0.6), shininess=(40.0, 150.0))
    tool_shaft: SurfaceLookRange = _look(((0.03, 0.03, 0.03), (0.22, 0.22, 0.23)), ((0.03, 0.03, 0.03), (0.18, 0.18, 0.19)),
                                         specular=(0.4, 1.5), shininess=(15.0, 60.0), hue_jitter=0.02)
    tool_tip: SurfaceLookRange = _look(((0.18, 0.18, 0.19), (0.40, 0.40, 0.42)), ((0.15, 0.15, 0.16), (0.34, 0.34, 0.36)),
                                       specular=(0.6, 1.6), shininess=(20.0, 80.0), hue_jitter=0.02)
    gallbladder: SurfaceLookRange = _look(((0.18, 0.30, 0.10), (0.40, 0.55, 0.30)), ((0.12, 0.22, 0.07), (0.30, 0.42, 0.22)),
                                          vessel_strength=(0.1, 0.4), specular=(0.3, 1.0), shininess=(60.0, 200.0))
    spot_exponent: Range = (0.5, 2.0)
    ambient: Range = (0.02, 0.08)
    vignetting: Range = (0.1, 0.5)
    noise_std: Range = (0.0, 0.012)
    gamma: Range = (2.0, 2.4)
    exposure: Range = (0.55, 0.85)

    def __post_init__(self) -> None:
        c = _Checks("appearance")
        _nodes(c, self)
        if not c.problems:
            for name in LOOK_NAMES:
                getattr(self, name).check(c, name)
        c.range("spot_exponent", self.spot_exponent, 0.0)
        c.range("ambient", self.ambient, 0.0)
        c.range("vignetting", self.vignetting, 0.0, 1.0)
        c.range("noise_std", self.noise_std, 0.0)
        c.range("gamma", self.gamma, 0.0, lo_open=True)
        c.range("exposure", self.exposure, 0.0, lo_open=True)
        c.done()


@dataclass(frozen=True)
class LaparoscopyConfig:
    """Everything laparoscopy frames are drawn from (mm, degrees).

    Args:
        liver, gallbladder, fat, ligament, wall: the scene (drawn once per scene).
        camera, tools, appearance: drawn per frame.
        field_stop_prob: probability of a circular field stop (black outside, background class), [0, 1].
        field_stop_radius: range of its radius as a fraction of half the image width, [0.5, 1.5].
        normals: write the normals files.

    Example:
        >>> LaparoscopyConfig(field_stop_prob=0.0).tools.shaft_diameter_mm
        (5.0, 10.0)
    """

    liver: LiverConfig = field(default_factory=LiverConfig)
    gallbladder: GallbladderConfig = field(default_factory=GallbladderConfig)
    fat: FatConfig = field(default_factory=FatConfig)
    ligament: LigamentConfig = field(default_factory=LigamentConfig)
    wall: WallConfig = field(default_factory=WallConfig)
    camera: LaparoscopeConfig = field(default_factory=LaparoscopeConfig)
    tools: ToolConfig = field(default_factory=ToolConfig)
    appearance: LaparoscopyAppearanceConfig = field(default_factory=LaparoscopyAppearanceConfig)
    field_stop_prob: float = 0.4
    field_stop_radius: Range = (1.0, 1.25)
    normals: bool = True

    def __post_init__(self) -> None:
        c = _Checks("")
        _nodes(c, self)
        c.value("field_stop_prob", self.field_stop_prob, 0.0, 1.0)
        c.range("field_stop_radius", self.field_stop_radius, 0.5, 1.5)
        if not isinstance(self.normals, bool):
            c.add("normals", f"expected true or false, got {self.normals!r}")
        c.done()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (what ``dataset.json`` records)."""
        from simreal.configs import to_plain

        return to_plain(self)


#: ``generator.name`` of datasets written by :func:`~simreal.render.laparoscopy_run.render_laparoscopy_job`.
LAPAROSCOPY_GENERATOR = "laparoscopy-forward-model"


@dataclass(frozen=True)
class LaparoscopyJob:
    """Everything a rendered laparoscopy dataset depends on.

    Args:
        n: number of frames (>= 1).
        size: square image size in pixels (8..4096).
        seed: dataset seed (>= 0). Scene s draws from ``SeedSequence([seed, 0x5CE7E, s])``, frame i from
            ``SeedSequence([seed, i])``.
        livers: liver mesh files (OBJ / PLY / STL / OFF, mm); scene s shows liver ``s % K``. Empty: the two
            P2ILF meshes from the real-data folder (:func:`~simreal.data.real_data.real_data_root`).
        orientation: how the livers' axes are found (``auto``, ``pca``, ``ras``: :mod:`simreal.anatomy.liver`).
        frames_per_scene: consecutive frames sharing one scene (liver shape, organs, wall); camera, tools and
            appearance are drawn per frame (>= 1).
        config: the ranges.

    Raises:
        SimrealError: a value out of range, naming the field.
    """

    n: int = 100
    size: int = 256
    seed: int = 0
    livers: tuple[str, ...] = ()
    orientation: str = "auto"
    frames_per_scene: int = 1
    config: LaparoscopyConfig = field(default_factory=LaparoscopyConfig)

    def __post_init__(self) -> None:
        livers = (self.livers,) if isinstance(self.livers, (str, Path)) else self.livers
        object.__setattr__(self, "livers", tuple(str(p) for p in livers))
        problems = []
        for name, lo, hi in (("n", 1, None), ("size", 8, 4096), ("seed", 0, None), ("frames_per_scene", 1, None)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                problems.append(f"{name}: expected an integer, got {v!r}")
            elif v < lo or (hi is not None and v > hi):
                problems.append(f"{name}: must be {f'in {lo}..{hi}' if hi else f'at least {lo}'}, got {v}")
        if any(not p for p in self.livers):
            problems.append("livers: empty file name")
        if self.orientation not in ("auto", "pca", "ras"):
            problems.append(f"orientation: must be 'auto', 'pca' or 'ras', got {self.orientation!r}")
        if not isinstance(self.config, LaparoscopyConfig):
            problems.append(f"config: expected a LaparoscopyConfig, got {type(self.config).__name__}")
        if problems:
            raise SimrealError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (what ``generator.job`` holds)."""
        from simreal.configs import to_plain

        return to_plain(self)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], *, source: str | Path | None = None) -> "LaparoscopyJob":
        """A job from plain values (missing fields, at any depth, keep their defaults), strictly: unknown fields, wrong types and values
        out of range raise one error naming ``source`` and the dotted field."""
        from simreal.configs import build, merge, to_plain

        if not isinstance(mapping, Mapping):
            raise SimrealError(f"a laparoscopy job must be a mapping of fields, got {type(mapping).__name__}", source)
        try:
            # Laid over the defaults first, so a file may change one field of a class's look and keep the rest.
            return build(cls, merge(to_plain(cls()), mapping))
        except RenderConfigError as exc:
            raise exc.under("config", source) from None
        except SimrealError as exc:
            raise SimrealError(str(exc), source) from None


def read_laparoscopy_job(path: str | Path) -> LaparoscopyJob:
    """Read a job file (YAML, TOML or JSON), or the ``dataset.json`` of a rendered laparoscopy set.

    Relative liver paths in a job file are relative to its folder; a dataset.json gives back its
    ``generator.job`` (the livers it names must still have the recorded sha256).

    Raises:
        SimrealError: unreadable file, unknown fields, wrong types or values (naming the dotted field), a
            dataset not rendered by ``simreal render laparoscopy``, or a liver file that changed.
    """
    import hashlib

    from simreal.configs import read_config_file

    path = Path(path)
    data = read_config_file(path)
    if isinstance(data.get("schema"), str) and data["schema"].startswith("simreal-dataset/"):
        generator = data.get("generator") if isinstance(data.get("generator"), Mapping) else {}
        if generator.get("name") != LAPAROSCOPY_GENERATOR or not isinstance(generator.get("job"), Mapping):
            raise SimrealError(f"a dataset made by {generator.get('name')!r}, not by `simreal render laparoscopy`: "
                               "it holds no laparoscopy render job", path)
        job = LaparoscopyJob.from_dict(generator["job"], source=path)
        for entry in generator.get("livers") or []:
            if isinstance(entry, Mapping) and "path" in entry and "sha256" in entry:
                file = Path(str(entry["path"]))
                if not file.is_file():
                    raise SimrealError(f"the liver mesh this dataset was rendered from is missing: {file}", path)
                if hashlib.sha256(file.read_bytes()).hexdigest() != entry["sha256"]:
                    raise SimrealError(f"the liver mesh {file} changed since this dataset was rendered", path)
        return job
    job = LaparoscopyJob.from_dict(data, source=path)
    base = path.resolve().parent
    return dataclasses.replace(job, livers=tuple(str(base / p) for p in job.livers))


__all__ = [
    "LAPAROSCOPY_GENERATOR", "LOOK_NAMES", "FatConfig", "GallbladderConfig", "IntRange", "LaparoscopeConfig",
    "LaparoscopyAppearanceConfig", "LaparoscopyConfig", "LaparoscopyJob", "LigamentConfig", "LiverConfig",
    "RGB", "SurfaceLookRange", "ToolConfig", "WallConfig", "read_laparoscopy_job",
]
