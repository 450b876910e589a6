"""Procedural abdominal structures around a liver: gallbladder, fat, abdominal wall, falciform ligament.

Each structure is a frozen dataclass of drawn parameters (lengths in mm, positions in the liver frame of
:mod:`simreal.anatomy.liver`) and a deterministic ``build_*`` function returning a closed triangle surface
``(vertices (V, 3) float64 mm, faces (F, 3) int32)`` with outward normals, plus a per-vertex texture
pattern ``(V, 2)`` in [0, 1] (mottling, vessels; see :mod:`simreal.anatomy.texture`) that the renderer
turns into colour. Spheres are shared templates (icospheres whose noise and texture are baked once per
process and per variant); a structure's ``rotation_deg`` turns the template, so its pattern differs from
scene to scene at no baking cost.

* :class:`GallbladderParams`: a pear-shaped ellipsoid, neck to fundus, sagging slightly, attached under
  the liver with its fundus past the inferior edge.
* :class:`FatLump`: one lumpy, flattened ellipsoid; fat patches (omentum) are clusters of them.
* :class:`WallParams`: a large bumpy ellipsoid enclosing the scene, seen from inside: the diaphragm and
  abdominal wall (it may cut into the liver's dome, which then disappears under the diaphragm).
* :class:`LigamentParams`: the falciform ligament, a thin sheet in a near-sagittal plane from its line of
  attachment on the liver to the wall, flaring into a band where it meets the liver.

Example:
    >>> wall = WallParams(centre_mm=(0.0, 60.0, 60.0), radii_mm=(180.0, 200.0, 200.0))
    >>> v, f, tex = build_wall(wall)
    >>> v.shape[1], f.shape[1], tex.shape[1]
    (3, 3, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simreal.anatomy.texture import bake_mucosa_texture, fractal_noise
from simreal.errors import SimrealError

Vec3 = tuple[float, float, float]

#: Icosphere subdivisions of the templates: (gallbladder, fat lump, wall).
GALLBLADDER_SUBDIVISIONS, FAT_SUBDIVISIONS, WALL_SUBDIVISIONS = 3, 2, 5

#: Number of template variants (noise field and texture) a fat lump or the wall may use.
N_VARIANTS = 4


# --- shared helpers ------------------------------------------------------------------------------------------


def rotation_matrix(angles_deg: Vec3) -> np.ndarray:
    """(3, 3) rotation ``Rz(c) @ Ry(b) @ Rx(a)`` for angles (a, b, c) in degrees."""
    a, b, c = (math.radians(float(x)) for x in angles_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


@lru_cache(maxsize=8)
def _sphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    v = np.asarray(m.vertices, dtype=np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    f = np.asarray(m.faces, dtype=np.int32)
    for a in (v, f):
        a.setflags(write=False)
    return v, f


@lru_cache(maxsize=32)
def _sphere_noise(subdivisions: int, variant: int, scale: float) -> np.ndarray:
    """(V,) smooth noise in [-1, 1] on the unit template sphere (baked once per variant)."""
    v, _ = _sphere(subdivisions)
    n = fractal_noise(v, scale, 7001 + 131 * variant, octaves=2, gain=0.45)
    n = np.clip(n / max(float(np.abs(n).max()), 1e-9), -1.0, 1.0)
    n.setflags(write=False)
    return n


@lru_cache(maxsize=32)
def _sphere_texture(subdivisions: int, variant: int, radius_mm: float, mottle_mm: float, vessel_mm: float) -> np.ndarray:
    """(V, 2) texture pattern baked on the template sphere of ``radius_mm`` (once per variant)."""
    v, _ = _sphere(subdivisions)
    tex = bake_mucosa_texture(v * radius_mm, 9001 + 17 * variant, mottle_scale_mm=mottle_mm, vessel_scale_mm=vessel_mm)
    tex.setflags(write=False)
    return tex


def _check_variant(name: str, variant: int) -> None:
    if isinstance(variant, bool) or not isinstance(variant, int) or not 0 <= variant < N_VARIANTS:
        raise SimrealError(f"{name}.variant must be an integer in 0..{N_VARIANTS - 1}, got {variant!r}")


def _finite(name: str, values: tuple[float, ...]) -> None:
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in values):
        raise SimrealError(f"{name}: expected finite numbers, got {values!r}")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def first_hits(
    origins: np.ndarray, directions: np.ndarray, vertices: np.ndarray, faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ray-triangle hit of a few rays, in numpy (Moller-Trumbore; no renderer needed).

    Each ray first keeps only the triangles whose projection onto the plane across the ray contains it
    (bounding boxes; computed once for rays sharing a direction), then intersects those exactly.

    Args:
        origins, directions: (R, 3) rays (directions unit), mm.
        vertices, faces: the surface.

    Returns:
        ``t`` (R,) distance to the first hit (inf for none) and ``face`` (R,) the hit face (-1 for none).
    """
    tri = np.asarray(vertices, dtype=np.float64)[faces]
    origins = np.atleast_2d(np.asarray(origins, dtype=np.float64))
    directions = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    ts = np.full(len(origins), np.inf)
    fs = np.full(len(origins), -1, np.int64)
    boxes: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for i, (o, d) in enumerate(zip(origins, directions)):
        key = tuple(np.round(d, 12))
        if key not in boxes:
            ref = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
            ax = _unit(np.cross(ref, d))
            basis = np.stack([ax, np.cross(d, ax)])
            proj = tri @ basis.T  # (F, 3, 2)
            boxes[key] = (basis, proj.min(axis=1), proj.max(axis=1))
        basis, lo, hi = boxes[key]
        q = basis @ o
        cand = np.flatnonzero(((lo <= q + 1e-9) & (hi >= q - 1e-9)).all(axis=1))
        if not len(cand):
            continue
        p0, e1, e2 = tri[cand, 0], tri[cand, 1] - tri[cand, 0], tri[cand, 2] - tri[cand, 0]
        p = np.cross(d, e2)
        det = (e1 * p).sum(axis=1)
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = o - p0
        u = (s * p).sum(axis=1) * inv
        qv = np.cross(s, e1)
        v = (qv @ d) * inv
        t = (qv * e2).sum(axis=1) * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-9)
        if hit.any():
            k = int(np.argmin(np.where(hit, t, np.inf)))
            ts[i], fs[i] = float(t[k]), int(cand[k])
    return ts, fs


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Enclosed volume of a closed surface, mm^3: positive when the normals point outwards."""
    tri = np.asarray(vertices, dtype=np.float64)[faces]
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


# --- gallbladder ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GallbladderParams:
    """A gallbladder (liver frame, mm).

    Args:
        centre_mm: middle of its axis.
        axis: direction from the neck to the fundus (normalised when built).
        up: direction towards the liver (made perpendicular to ``axis`` when built).
        length_mm: neck-to-fundus length (> 0).
        diameter_mm: diameter at the fundus (> 0).
        taper: the neck's radius is ``(1 - taper)`` times the fundus's, [0, 0.9].
        sag_mm: how far the middle of the body sags away from the liver, mm (>= 0).
        rotation_deg: turns the texture template (degrees, x-y-z).
    """

    centre_mm: Vec3
    axis: Vec3
    up: Vec3
    length_mm: float
    diameter_mm: float
    taper: float = 0.45
    sag_mm: float = 3.0
    rotation_deg: Vec3 = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        _finite("gallbladder", (*self.centre_mm, *self.axis, *self.up, self.length_mm, self.diameter_mm, self.taper,
                                self.sag_mm, *self.rotation_deg))
        if self.length_mm <= 0 or self.diameter_mm <= 0:
            raise SimrealError("gallbladder: length_mm and diameter_mm must be > 0")
        if not 0.0 <= self.taper <= 0.9:
            raise SimrealError(f"gallbladder.taper must be in [0, 0.9], got {self.taper}")
        if self.sag_mm < 0:
            raise SimrealError(f"gallbladder.sag_mm must be >= 0, got {self.sag_mm}")

    def frame(self) -> np.ndarray:
        """(3, 3) rows: the unit axis (neck -> fundus), the unit up (towards the liver), their cross product."""
        a = _unit(np.asarray(self.axis, float))
        up = np.asarray(self.up, float)
        up = up - (up @ a) * a
        if np.linalg.norm(up) < 1e-6:
            raise SimrealError("gallbladder: up must not be parallel to axis")
        up = _unit(up)
        return np.stack([a, up, np.cross(a, up)])


def build_gallbladder(p: GallbladderParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed surface and texture of a gallbladder: (vertices, faces, texture)."""
    unit, faces = _sphere(GALLBLADDER_SUBDIVISIONS)
    q = unit @ rotation_matrix(p.rotation_deg).T  # turning the template moves its pattern on the shape
    u = q[:, 0]
    r = 0.5 * p.diameter_mm * (1.0 - p.taper * (1.0 - u) / 2.0)  # fundus (u = 1) widest, neck (u = -1) narrow
    local = np.stack([u * 0.5 * p.length_mm, q[:, 1] * r - p.sag_mm * (1.0 - u * u), q[:, 2] * r], axis=1)
    world = np.asarray(p.centre_mm, float) + local @ p.frame()
    return world, faces, np.asarray(_sphere_texture(GALLBLADDER_SUBDIVISIONS, 0, 25.0, 3.0, 8.0))


# --- fat -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FatLump:
    """One lump of fat: a lumpy ellipsoid (liver frame, mm).

    Args:
        centre_mm: its centre.
        radii_mm: semi-axes along the liver frame's x, y, z (> 0).
        lumpiness: radial noise amplitude as a fraction of the radius, [0, 0.6].
        variant: which template noise and texture, 0..N_VARIANTS - 1.
        rotation_deg: turns the template (degrees, x-y-z).
    """

    centre_mm: Vec3
    radii_mm: Vec3
    lumpiness: float = 0.25
    variant: int = 0
    rotation_deg: Vec3 = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        _finite("fat lump", (*self.centre_mm, *self.radii_mm, self.lumpiness, *self.rotation_deg))
        if min(self.radii_mm) <= 0:
            raise SimrealError(f"fat lump radii_mm must be > 0, got {self.radii_mm}")
        if not 0.0 <= self.lumpiness <= 0.6:
            raise SimrealError(f"fat lump lumpiness must be in [0, 0.6], got {self.lumpiness}")
        _check_variant("fat lump", self.variant)


def build_fat_lump(p: FatLump) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed surface and texture of one fat lump: (vertices, faces, texture)."""
    unit, faces = _sphere(FAT_SUBDIVISIONS)
    noise = _sphere_noise(FAT_SUBDIVISIONS, p.variant, 0.7)
    tex = _sphere_texture(FAT_SUBDIVISIONS, p.variant, 15.0, 2.5, 7.0)
    rot = rotation_matrix(p.rotation_deg)
    shape = unit * (1.0 + p.lumpiness * noise)[:, None]  # star-shaped about the centre: stays embedded
    world = np.asarray(p.centre_mm, float) + (shape @ rot.T) * np.asarray(p.radii_mm, float)
    return world, faces, np.asarray(tex)


# --- abdominal wall ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WallParams:
    """The diaphragm / abdominal wall: a bumpy ellipsoid around the scene, axes along the liver frame's.

    Args:
        centre_mm: the ellipsoid's centre.
        radii_mm: its semi-axes along x, y, z (> 0).
        bump_mm: radial bumps of at most this size, mm (>= 0, below half the smallest radius).
        variant: which template noise and texture, 0..N_VARIANTS - 1.
        rotation_deg: turns the template (degrees, x-y-z).
    """

    centre_mm: Vec3
    radii_mm: Vec3
    bump_mm: float = 6.0
    variant: int = 0
    rotation_deg: Vec3 = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        _finite("wall", (*self.centre_mm, *self.radii_mm, self.bump_mm, *self.rotation_deg))
        if min(self.radii_mm) <= 0:
            raise SimrealError(f"wall radii_mm must be > 0, got {self.radii_mm}")
        if not 0.0 <= self.bump_mm < 0.5 * min(self.radii_mm):
            raise SimrealError(f"wall bump_mm must be in [0, half the smallest radius), got {self.bump_mm}")
        _check_variant("wall", self.variant)

    def normalised_radius(self, points: np.ndarray) -> np.ndarray:
        """(N,) ``|(p - centre) / radii|``: 1 on the smooth ellipsoid, < 1 inside."""
        q = (np.atleast_2d(np.asarray(points, float)) - np.asarray(self.centre_mm)) / np.asarray(self.radii_mm)
        return np.linalg.norm(q, axis=1)

    def inside(self, points: np.ndarray, margin_mm: float = 0.0) -> np.ndarray:
        """(N,) bool: inside the bumpy wall by at least ``margin_mm`` (conservative)."""
        return self.normalised_radius(points) <= 1.0 - (self.bump_mm + margin_mm) / min(self.radii_mm)

    def exit_distance(self, origin: np.ndarray, direction: np.ndarray) -> float:
        """Distance from an inside point along a unit direction to the smooth ellipsoid, mm."""
        r = np.asarray(self.radii_mm, float)
        o = (np.asarray(origin, float) - np.asarray(self.centre_mm)) / r
        d = np.asarray(direction, float) / r
        a, b, c = float(d @ d), float(2 * o @ d), float(o @ o - 1.0)
        disc = max(b * b - 4 * a * c, 0.0)
        return float((-b + math.sqrt(disc)) / (2 * a))


def build_wall(p: WallParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed surface and texture of the wall: (vertices, faces, texture); normals point outwards."""
    unit, faces = _sphere(WALL_SUBDIVISIONS)
    noise = _sphere_noise(WALL_SUBDIVISIONS, p.variant, 0.45)
    tex = _sphere_texture(WALL_SUBDIVISIONS, p.variant, 200.0, 9.0, 22.0)
    q = unit @ rotation_matrix(p.rotation_deg).T
    e = q * np.asarray(p.radii_mm, float)
    length = np.linalg.norm(e, axis=1, keepdims=True)
    world = np.asarray(p.centre_mm, float) + e * (1.0 + p.bump_mm * noise[:, None] / length)
    return world, faces, np.asarray(tex)


# --- falciform ligament ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LigamentParams:
    """The falciform ligament (liver frame, mm).

    Its line of attachment lies on the liver where the plane through ``x_mm`` meets the surface, from
    ``y_mm[0]`` (superior) to ``y_mm[1]`` (inferior); the sheet rises from there along z tilted by
    ``tilt_deg`` towards x, its inferior end leaning towards +y by ``slant`` (towards the umbilicus),
    ``height_mm`` high (or up to the wall, if that is nearer), ending in a free edge.

    Args:
        x_mm: position of its plane along x.
        y_mm: (superior, inferior) ends of the attachment along y (low < high).
        tilt_deg: tilt of the sheet about y, degrees, (-45, 45).
        slant: lean of the inferior end towards +y, [0, 2].
        thickness_mm: thickness of the sheet (> 0).
        base_width_mm: width of the band where it meets the liver (>= thickness).
        flare_mm: height over which the band narrows to the sheet (> 0).
        height_mm: height of the sheet above the liver (> 0).
    """

    x_mm: float
    y_mm: tuple[float, float]
    height_mm: float = 30.0
    tilt_deg: float = 0.0
    slant: float = 0.5
    thickness_mm: float = 3.0
    base_width_mm: float = 10.0
    flare_mm: float = 15.0

    def __post_init__(self) -> None:
        _finite("ligament", (self.x_mm, *self.y_mm, self.height_mm, self.tilt_deg, self.slant, self.thickness_mm,
                             self.base_width_mm, self.flare_mm))
        if not self.y_mm[0] < self.y_mm[1]:
            raise SimrealError(f"ligament.y_mm must be (low, high) with low < high, got {self.y_mm}")
        if not -45.0 < self.tilt_deg < 45.0:
            raise SimrealError(f"ligament.tilt_deg must be in (-45, 45), got {self.tilt_deg}")
        if not 0.0 <= self.slant <= 2.0:
            raise SimrealError(f"ligament.slant must be in [0, 2], got {self.slant}")
        if self.height_mm <= 0:
            raise SimrealError(f"ligament.height_mm must be > 0, got {self.height_mm}")
        if self.thickness_mm <= 0 or self.base_width_mm < self.thickness_mm or self.flare_mm <= 0:
            raise SimrealError("ligament: need thickness_mm > 0, base_width_mm >= thickness_mm, flare_mm > 0")


#: Rows along the attachment; points up each row's cross-section (the first sunk 4 mm into the liver, the
#: others spread over the height, denser near the liver where the band flares).
_LIGAMENT_ROWS = 20
_LIGAMENT_LEVELS = 10
_LIGAMENT_EMBED_MM = 4.0


def build_ligament(
    p: LigamentParams, liver_vertices: np.ndarray, liver_faces: np.ndarray, wall: WallParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Closed surface and texture of the ligament on a (deformed) liver, or None when its plane misses the
    liver (fewer than 3 rows find the surface).

    Returns:
        (vertices, faces, texture), or None.
    """
    tilt = math.radians(p.tilt_deg)
    base_up = np.array([math.sin(tilt), 0.0, math.cos(tilt)])
    ys = np.linspace(p.y_mm[0], p.y_mm[1], _LIGAMENT_ROWS)
    frac = (ys - ys[0]) / max(ys[-1] - ys[0], 1e-9)
    ups = np.stack([_unit(base_up + p.slant * f * np.array([0.0, 1.0, 0.0])) for f in frac])
    far = np.stack([p.x_mm * np.ones_like(ys), ys, np.zeros_like(ys)], axis=1) + 2000.0 * base_up
    t, _ = first_hits(far, np.tile(-base_up, (len(ys), 1)), liver_vertices, liver_faces)
    ok = np.isfinite(t)
    t = np.where(ok, t, 0.0)
    # The longest run of consecutive rows that find the liver.
    best, start = (0, 0), None
    for i, hit in enumerate(list(ok) + [False]):
        if hit and start is None:
            start = i
        if not hit and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    lo, hi = best
    if hi - lo < 3:
        return None
    attach = (far - t[:, None] * base_up)[lo:hi]
    ups = ups[lo:hi]
    n_rows = len(attach)
    tangent = np.gradient(attach, axis=0)
    # A sail: tallest in the middle of its attachment, tapering to its ends (and narrowing there).
    g = np.linspace(0.0, 1.0, n_rows)
    taper = np.sin(np.pi * np.clip(g, 0.02, 0.98)) ** 0.6
    levels = np.linspace(0.0, 1.0, _LIGAMENT_LEVELS) ** 1.6
    rings = []
    for j in range(n_rows):
        top = min(max(p.height_mm * taper[j], 3.0), wall.exit_distance(attach[j], ups[j]) + wall.bump_mm + 3.0)
        heights = np.concatenate([[-_LIGAMENT_EMBED_MM], top * levels[1:]])
        normal = _unit(np.cross(tangent[j], ups[j]))
        flare = np.clip(1.0 - np.maximum(heights, 0.0) / p.flare_mm, 0.0, 1.0)
        w = (p.thickness_mm + (p.base_width_mm - p.thickness_mm) * flare) * (0.5 + 0.5 * taper[j])
        w[-1] *= 0.5  # a thinner free edge
        centre = attach[j] + heights[:, None] * ups[j]
        front, back = centre + 0.5 * w[:, None] * normal, centre - 0.5 * w[:, None] * normal
        rings.append(np.concatenate([front, back[::-1]]))
    from simreal.anatomy.mesh import grid_faces

    n_cols = rings[0].shape[0]
    verts = np.concatenate(rings)
    faces = [grid_faces(n_rows, n_cols, wrap_cols=True)]
    # Caps: a fan from each end ring's mean.
    caps = []
    for j, flip in ((0, True), (n_rows - 1, False)):
        c = len(verts) + len(caps)
        caps.append(rings[j].mean(axis=0))
        ring = np.arange(j * n_cols, (j + 1) * n_cols)
        fan = np.stack([np.full(n_cols, c), np.roll(ring, -1), ring], axis=1)
        faces.append(fan[:, ::-1] if flip else fan)
    verts = np.concatenate([verts, np.asarray(caps)])
    faces_arr = np.concatenate(faces).astype(np.int32)
    if signed_volume(verts, faces_arr) < 0:
        faces_arr = faces_arr[:, ::-1].copy()
    tex = bake_mucosa_texture(verts, 4242, mottle_scale_mm=3.0, vessel_scale_mm=8.0)
    return verts, faces_arr, tex
