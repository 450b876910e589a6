"""The liver of a laparoscopy scene: a CT-derived surface in a canonical liver frame, scaled and deformed.

Pipeline: :func:`read_liver` loads a closed triangle surface (P2ILF's OBJ meshes, a simreal PLY from
``simreal anatomy from-ct --label liver --surface label``, or any OBJ / PLY / STL / OFF in millimetres),
keeps its largest connected part, makes its winding consistent with outward normals, and moves it into
the **liver frame** (mm, rigid, no scaling):

* origin: the centroid of the enclosed volume;
* ``z``: towards the liver's anterior, convex (diaphragmatic) side, where the laparoscope looks from;
* ``y``: towards the inferior edge (the thin, sharp border near which the gallbladder sits);
* ``x = y cross z``: completes a right-handed frame (towards the patient's right for a RAS mesh).

Two ways to find those axes (``orientation``): ``"ras"`` for meshes in RAS patient coordinates (what
``simreal anatomy from-ct`` writes from a NIfTI: x right, y anterior, z superior), so ``z = A``,
``y = -S``, ``x = R``; ``"pca"`` for meshes of unknown frame (the P2ILF OBJs): the principal axes of the
surface, the thinnest one signed towards the side of the surface lying on its convex hull (the
diaphragmatic surface is convex, the visceral one has fossae), the middle one signed towards the thinner
half (the inferior edge is thin, the dome is thick). ``"auto"`` takes ``"ras"`` for simreal PLYs made from
a CT and ``"pca"`` otherwise. The heuristics give a plausible, consistent pose, not an anatomical
registration.

Per scene the liver is scaled about its centroid (:func:`scale_liver`, within anatomical limits of its
longest extent) and deformed by a smooth displacement field (:class:`LiverDeformation`: a sum of a few
Gaussian radial basis functions, bounded in mm). The field's Lipschitz constant is kept below 1, so
``x -> x + d(x)`` is injective with a positive Jacobian: a closed surface stays closed, free of
self-intersections and with outward normals.

Example:
    >>> liver = read_liver("meshGT.obj")                                     # doctest: +SKIP
    >>> d = sample_liver_deformation(np.random.default_rng(0), liver.extent_mm)  # doctest: +SKIP
    >>> moved = deform_points(scale_liver(liver.vertices, 1.05), d)           # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from simreal.errors import SimrealError

Orientation = Literal["auto", "pca", "ras"]

#: File suffixes :func:`read_liver` reads.
LIVER_SUFFIXES = (".obj", ".ply", ".stl", ".off")

#: A liver's longest extent must lie in this range (mm) for a file to be taken as a liver in millimetres.
PLAUSIBLE_EXTENT_MM = (50.0, 500.0)

#: Faces closer than this to the convex hull count as "on the hull" in the PCA orientation (mm).
_HULL_TOLERANCE_MM = 3.0


@dataclass(eq=False)
class LiverModel:
    """A closed liver surface in the liver frame (see the module docstring).

    Attributes:
        name: short name (the file stem), used as the sample records' group.
        vertices: (V, 3) float64 positions in the liver frame, mm; the enclosed volume's centroid at 0.
        faces: (F, 3) int32 vertex indices, wound so face normals point outwards.
        to_liver: (4, 4) rigid transform from the source file's frame to the liver frame, mm.
        orientation: ``"pca"`` or ``"ras"``: how the axes were found.
        right_sign: +1 or -1: the side of x holding more of the volume (the right lobe, for a liver).
        source: JSON-able description: path, sha256, format, face count, repairs made.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    to_liver: np.ndarray
    orientation: str
    right_sign: float
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def extent_mm(self) -> np.ndarray:
        """(3,) size of the bounding box along x, y, z of the liver frame, mm."""
        return self.vertices.max(axis=0) - self.vertices.min(axis=0)

    def info(self) -> dict[str, Any]:
        """What a dataset.json records about this liver."""
        return {
            **self.source,
            "name": self.name,
            "orientation": self.orientation,
            "to_liver_frame": [[float(x) for x in row] for row in self.to_liver],
            "extent_mm": [round(float(x), 3) for x in self.extent_mm],
            "right_sign": float(self.right_sign),
        }


# --- reading ----------------------------------------------------------------------------------------------


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_surface(path: Path) -> tuple[np.ndarray, np.ndarray, str, dict[str, Any]]:
    """(vertices, faces, format, metadata) of a mesh file; simreal PLYs through their own reader."""
    suffix = path.suffix.lower()
    if suffix == ".ply":
        from simreal.anatomy.mesh import load_mesh

        try:
            mesh = load_mesh(path)
            return mesh.vertices.astype(np.float64), mesh.faces, "simreal-ply", dict(mesh.metadata)
        except SimrealError as exc:
            if "not a simreal anatomy mesh" not in str(exc):
                raise
    import trimesh

    try:
        loaded = trimesh.load(str(path), force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types for unreadable files
        raise SimrealError(f"cannot read a triangle mesh ({exc.__class__.__name__}: {exc})", path) from None
    vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64)
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64)
    return vertices, faces, suffix.lstrip("."), {}


def read_liver(path: str | Path, *, orientation: Orientation = "auto") -> LiverModel:
    """Read a liver surface file and move it into the liver frame.

    Args:
        path: OBJ, PLY (simreal anatomy PLY or plain), STL or OFF; coordinates in mm.
        orientation: ``"auto"``, ``"pca"`` or ``"ras"`` (module docstring).

    Returns:
        The :class:`LiverModel`.

    Raises:
        SimrealError: naming the file: missing, unknown suffix, unreadable, not a triangle mesh (no faces),
            non-finite coordinates, not closed after repair, or an extent outside
            :data:`PLAUSIBLE_EXTENT_MM` (a mesh in metres, or not a liver).
    """
    path = Path(path)
    if not path.is_file():
        raise SimrealError("liver mesh not found", path)
    if path.suffix.lower() not in LIVER_SUFFIXES:
        raise SimrealError(f"unknown liver mesh type {path.suffix!r}; use one of {', '.join(LIVER_SUFFIXES)}", path)
    vertices, faces, fmt, metadata = _read_surface(path)
    if orientation == "auto":
        orientation = "ras" if fmt == "simreal-ply" and metadata.get("generator") == "ct-surface" else "pca"
    source = {"path": str(path.resolve()), "sha256": _file_digest(path), "format": fmt}
    try:
        return liver_from_arrays(vertices, faces, name=path.stem, orientation=orientation, source=source)
    except SimrealError as exc:
        if exc.path is None:
            raise SimrealError(str(exc), path) from None
        raise


def liver_from_arrays(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    name: str = "liver",
    orientation: Literal["pca", "ras"] = "pca",
    source: dict[str, Any] | None = None,
) -> LiverModel:
    """A :class:`LiverModel` from a triangle surface given as arrays (source frame, mm).

    Args:
        vertices: (V, 3) positions, mm.
        faces: (F, 3) vertex indices.
        name: the liver's name.
        orientation: ``"pca"`` or ``"ras"``.
        source: extra JSON-able description kept in :attr:`LiverModel.source`.

    Raises:
        SimrealError: not a triangle mesh, non-finite values, open after repair, implausible extent.
    """
    import trimesh

    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) < 4 or f.ndim != 2 or f.shape[1] != 3 or len(f) < 4:
        raise SimrealError(f"not a triangle mesh (vertices {v.shape}, faces {f.shape})")
    if not np.isfinite(v).all():
        raise SimrealError("the mesh holds NaN/inf coordinates")
    if f.min() < 0 or f.max() >= len(v):
        raise SimrealError("the mesh's faces index vertices that do not exist")
    if orientation not in ("pca", "ras"):
        raise SimrealError(f"orientation must be 'auto', 'pca' or 'ras', got {orientation!r}")
    mesh = trimesh.Trimesh(v, f.astype(np.int64), process=True)  # merges duplicate vertices
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    repairs: list[str] = []
    parts = mesh.split(only_watertight=False)
    if len(parts) > 1:
        mesh = max(parts, key=lambda p: p.area)
        repairs.append(f"kept the largest of {len(parts)} connected parts")
    if not mesh.is_winding_consistent:
        trimesh.repair.fix_winding(mesh)
        repairs.append("made the winding consistent")
    if not mesh.is_watertight:
        trimesh.repair.fill_holes(mesh)
        repairs.append("filled holes")
    if not mesh.is_watertight or not mesh.is_winding_consistent:
        raise SimrealError("the liver surface is not closed (it has holes or non-manifold edges); a liver must be "
                           "a closed surface, e.g. from `simreal anatomy from-ct --surface label`")
    if mesh.volume < 0:
        mesh.invert()
        repairs.append("turned the normals outwards")
    longest = float(mesh.extents.max())
    lo, hi = PLAUSIBLE_EXTENT_MM
    if not lo <= longest <= hi:
        raise SimrealError(f"the mesh is {longest:.3g} units long; a liver in millimetres is {lo:g}-{hi:g} mm long")
    v = np.asarray(mesh.vertices, dtype=np.float64)
    f = np.asarray(mesh.faces, dtype=np.int32)
    to_liver, right_sign = liver_frame(v, f, orientation, centroid=np.asarray(mesh.center_mass, dtype=np.float64))
    local = v @ to_liver[:3, :3].T + to_liver[:3, 3]
    info = dict(source or {})
    info.update({"faces": int(len(f)), "repairs": repairs})
    return LiverModel(name=name, vertices=local, faces=f, to_liver=to_liver, orientation=orientation,
                      right_sign=right_sign, source=info)


def _hull_distance(points: np.ndarray, hull_points: np.ndarray) -> np.ndarray:
    """Distance of points inside a convex hull to its boundary (0 on it), mm."""
    from scipy.spatial import ConvexHull

    eq = ConvexHull(hull_points).equations  # n . x + d <= 0 inside, n unit
    return -(points @ eq[:, :3].T + eq[:, 3]).max(axis=1)


def liver_frame(
    vertices: np.ndarray, faces: np.ndarray, orientation: Literal["pca", "ras"], *, centroid: np.ndarray
) -> tuple[np.ndarray, float]:
    """The rigid source -> liver frame transform of a closed, outward-wound surface.

    Args:
        vertices: (V, 3) mm. faces: (F, 3), outward normals.
        orientation: ``"pca"`` (principal axes and the heuristics of the module docstring) or ``"ras"``.
        centroid: (3,) the enclosed volume's centroid, mm (the new origin).

    Returns:
        ((4, 4) transform, right_sign): ``right_sign`` is the sign of x on the side holding more volume.
    """
    tri = vertices[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    normal = cross / np.maximum(2.0 * area[:, None], 1e-12)
    centre = tri.mean(axis=1)
    if orientation == "ras":
        rot = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # rows: x = R, y = -S, z = A
    else:
        rel = centre - centroid
        cov = (rel * area[:, None]).T @ rel / area.sum()
        _, vecs = np.linalg.eigh(cov)  # ascending variance
        e_mid, e_thin = vecs[:, 1], vecs[:, 0]  # the longest axis (vecs[:, 2]) becomes x = y cross z
        # z: the thin axis, signed towards the convex side (more outward-facing area on the hull).
        on_hull = _hull_distance(centre, vertices) < _HULL_TOLERANCE_MM
        facing = normal @ e_thin
        plus = float((area * on_hull * (facing > 0.5)).sum())
        minus = float((area * on_hull * (facing < -0.5)).sum())
        z = e_thin if plus >= minus else -e_thin
        # y: the middle axis, signed towards the thinner half: the volume centroid lies on the thick side of
        # the bounding box's middle, so the middle minus the centroid points at the thin (inferior) edge.
        s = vertices @ e_mid
        mid = 0.5 * (s.max() + s.min()) - float(centroid @ e_mid)
        y = e_mid if mid >= 0 else -e_mid
        x = np.cross(y, z)
        rot = np.stack([x, y, z])
    to_liver = np.eye(4)
    to_liver[:3, :3] = rot
    to_liver[:3, 3] = -rot @ centroid
    # The side of x holding more volume: the centroid sits towards it from the bounding box's middle.
    xs = vertices @ rot[0]
    right_sign = 1.0 if float(centroid @ rot[0]) - 0.5 * (xs.max() + xs.min()) >= 0 else -1.0
    return to_liver, right_sign


def liver_phantom(*, subdivisions: int = 3, rotation: np.ndarray | None = None) -> LiverModel:
    """A liver-like closed surface made in code (tests, demos without data): a wedge-shaped ellipsoid.

    In its own frame (before ``rotation``) it is about 220 x 160 x 80 mm: thick towards -y (the dome)
    and +x (the right lobe), thin towards +y (the inferior edge), convex on +z, with a shallow fossa in
    the middle of its -z (visceral) side; so :func:`liver_frame` (``"pca"``) finds x, y, z along its own
    axes.

    Args:
        subdivisions: icosphere subdivisions (3: 1280 faces).
        rotation: (3, 3) rotation applied to the phantom before it is read (to test the orientation).

    Returns:
        The phantom as a :class:`LiverModel` (name ``liver-phantom``, orientation ``"pca"``).
    """
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    u = np.asarray(sphere.vertices, dtype=np.float64)
    x, y, z = u[:, 0], u[:, 1], u[:, 2]
    thick = 55.0 * (1.0 - 0.22 * (y + 1.0)) * (1.0 + 0.12 * x)  # thin inferior edge, bulkier right lobe
    fossa = 18.0 * np.exp(-((110.0 * x) ** 2 + (80.0 * y) ** 2) / (2.0 * 45.0**2))
    # dz'/dz = thick - fossa / 2 > 0 everywhere: the map is injective, the surface stays embedded.
    v = np.stack([110.0 * x, 80.0 * y, thick * z + fossa * (1.0 - z) / 2.0], axis=1)
    if rotation is not None:
        v = v @ np.asarray(rotation, dtype=np.float64).T
    return liver_from_arrays(v, np.asarray(sphere.faces), name="liver-phantom", orientation="pca",
                             source={"generator": "simreal.anatomy.liver.liver_phantom", "subdivisions": subdivisions})


# --- per-scene scale and deformation ------------------------------------------------------------------------


def scale_liver(vertices: np.ndarray, scale: float) -> np.ndarray:
    """Liver-frame vertices scaled by ``scale`` about the origin (the centroid)."""
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise SimrealError(f"liver scale must be a positive number, got {scale!r}")
    return np.asarray(vertices, dtype=np.float64) * float(scale)


def clamp_scale(scale: float, longest_mm: float, extent_mm: tuple[float, float]) -> float:
    """``scale`` limited so that ``longest_mm * scale`` lies within ``extent_mm`` (anatomical limits)."""
    lo, hi = extent_mm
    return float(min(max(scale, lo / longest_mm), hi / longest_mm))


@dataclass(frozen=True)
class LiverDeformation:
    """A smooth displacement field, liver frame: ``d(x) = sum_k a_k exp(-|x - c_k|^2 / (2 s_k^2))``.

    Args:
        centres_mm: (K,) centres ``c_k`` as (x, y, z), mm.
        sigmas_mm: (K,) widths ``s_k`` (> 0), mm.
        vectors_mm: (K,) displacements ``a_k`` at the centres as (x, y, z), mm.

    ``|d(x)| <= sum_k |a_k|`` (:meth:`max_displacement_mm`) and the Lipschitz constant is at most
    ``sum_k |a_k| / s_k * exp(-1/2)`` (:meth:`lipschitz`); below 1 the deformed surface stays embedded.
    """

    centres_mm: tuple[tuple[float, float, float], ...] = ()
    sigmas_mm: tuple[float, ...] = ()
    vectors_mm: tuple[tuple[float, float, float], ...] = ()

    def __post_init__(self) -> None:
        k = len(self.centres_mm)
        if len(self.sigmas_mm) != k or len(self.vectors_mm) != k:
            raise SimrealError("liver deformation: centres_mm, sigmas_mm and vectors_mm must have the same length")
        values = [x for c in self.centres_mm for x in c] + list(self.sigmas_mm) + [x for v in self.vectors_mm for x in v]
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in values):
            raise SimrealError("liver deformation: values must be finite numbers")
        if any(s <= 0 for s in self.sigmas_mm):
            raise SimrealError("liver deformation: sigmas_mm must be > 0")

    def max_displacement_mm(self) -> float:
        """Upper bound of ``|d(x)|`` over all of space, mm."""
        return float(sum(math.hypot(*v) for v in self.vectors_mm))

    def lipschitz(self) -> float:
        """Upper bound of the field's Lipschitz constant (largest stretch per mm)."""
        return float(sum(math.hypot(*v) / s for v, s in zip(self.vectors_mm, self.sigmas_mm)) * math.exp(-0.5))


def deform_points(points: np.ndarray, deformation: LiverDeformation) -> np.ndarray:
    """``points + d(points)`` (float64, mm) for a :class:`LiverDeformation`."""
    p = np.asarray(points, dtype=np.float64)
    out = p.copy()
    for c, s, a in zip(deformation.centres_mm, deformation.sigmas_mm, deformation.vectors_mm):
        r2 = ((p - np.asarray(c)) ** 2).sum(axis=1)
        out += np.exp(-r2 / (2.0 * s * s))[:, None] * np.asarray(a)
    return out


def sample_liver_deformation(
    rng: np.random.Generator,
    extent_mm: np.ndarray,
    *,
    n_rbf: tuple[int, int] = (2, 5),
    sigma_mm: tuple[float, float] = (40.0, 90.0),
    displacement_mm: tuple[float, float] = (4.0, 15.0),
    max_lipschitz: float = 0.35,
    centre: np.ndarray | None = None,
) -> LiverDeformation:
    """Draw a deformation for a liver of a given size.

    Draw order (fixed): the number K of basis functions, then per function its centre (uniform in the
    bounding box of size ``extent_mm`` around ``centre``), width, direction (uniform on the sphere) and
    weight, then the total displacement bound.

    Args:
        rng: the scene's generator.
        extent_mm: (3,) size of the (scaled) liver's bounding box, mm.
        n_rbf: range of K (inclusive).
        sigma_mm: range of the widths, mm (low-frequency: a good fraction of the liver).
        displacement_mm: range of the bound ``sum_k |a_k|`` of the displacement, mm.
        max_lipschitz: the amplitudes are scaled down until :meth:`LiverDeformation.lipschitz` is at most
            this (< 1 keeps the surface free of self-intersections).
        centre: (3,) centre of that box (default the origin).

    Returns:
        The drawn :class:`LiverDeformation`.
    """
    if not 0.0 < max_lipschitz < 1.0:
        raise SimrealError(f"max_lipschitz must be in (0, 1), got {max_lipschitz}")
    half = 0.5 * np.asarray(extent_mm, dtype=np.float64)
    c0 = np.zeros(3) if centre is None else np.asarray(centre, dtype=np.float64)
    k = int(rng.integers(n_rbf[0], n_rbf[1] + 1))
    centres, sigmas, dirs, weights = [], [], [], []
    for _ in range(k):
        centres.append(c0 + rng.uniform(-half, half))
        sigmas.append(float(rng.uniform(*sigma_mm)))
        d = rng.standard_normal(3)
        dirs.append(d / max(float(np.linalg.norm(d)), 1e-12))
        weights.append(float(rng.uniform(0.3, 1.0)))
    total = float(rng.uniform(*displacement_mm))
    if k == 0:
        return LiverDeformation()
    w = np.asarray(weights) / sum(weights) * total
    lip = float(np.sum(w / np.asarray(sigmas)) * math.exp(-0.5))
    if lip > max_lipschitz:
        w = w * (max_lipschitz / lip)
    return LiverDeformation(
        centres_mm=tuple(tuple(float(x) for x in c) for c in centres),
        sigmas_mm=tuple(sigmas),
        vectors_mm=tuple(tuple(float(x) for x in wi * d) for wi, d in zip(w, dirs)),
    )
