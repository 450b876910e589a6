"""The lumen of a hollow organ in CT: the air (and optionally cleansed contents) that an endoscope flies through.

A TotalSegmentator label of a hollow organ (colon, small bowel, stomach...) covers the whole organ: wall
and contents. What an endoscope sees is the mucosa around the gas inside, i.e. the CT iso-surface between
gas (about -1000 HU) and soft tissue (+20 to +80 HU). This module finds that lumen on a voxel grid and
turns an intensity field into a surface; :func:`simreal.anatomy.from_ct.lumen_mesh` assembles the mesh.

HU ranges (all configurable, recorded in the mesh metadata):

* **air / gas**: HU below ``lumen_hu`` (default -500, halfway between gas at -1000 and soft tissue, the
  usual CT-colonography surface threshold; fat at about -100 stays tissue).
* **contents** (only with ``contents="air+fluid"``, virtual cleansing): untagged fluid and stool from
  ``lumen_hu`` up to ``untagged_max_hu`` (default +20: water is 0 +- 20 HU, mucosa and wall +30 to +80),
  and contrast-tagged fluid or stool from ``tagged_min_hu`` up (default +200: above an enhancing wall).

Everything here works on arrays in voxel index space ``(X, Y, Z)``; the affine ``(4, 4)`` maps voxel
indices to world mm (RAS, as :class:`simreal.data.volumes.Volume`).

Example:
    >>> seg = segment_lumen(ct_hu, colon_mask, spacing_mm=np.array([1.0, 1.0, 2.0]))   # doctest: +SKIP
    >>> verts, faces = iso_surface(seg.field, seg.level, affine, inside="below")        # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from simreal.errors import SimrealError

#: HU of gas; cleansed contents are set to it, so the wall under them becomes the surface.
AIR_HU = -1000.0
#: Default air/tissue threshold, HU.
LUMEN_HU = -500.0
#: Default upper end of untagged fluid / stool, HU (water 0 +- 20; the wall is +30 to +80).
UNTAGGED_MAX_HU = 20.0
#: Default lower end of contrast-tagged fluid / stool, HU (above an enhancing wall, below dense bone).
TAGGED_MIN_HU = 200.0
#: Default dilation of the label, mm: the air/mucosa surface may lie just outside a tight label.
MARGIN_MM = 3.0
#: Fewest voxels a lumen may have: anything smaller is a speck of noise, not room for an endoscope.
MIN_LUMEN_VOXELS = 27

#: Gas-filled organs that endoscopes (colonoscope, gastroscope, enteroscope, bronchoscope) look into: for
#: these the default surface is the lumen; for any other label (liver, bladder, kidney...) the label surface.
HOLLOW_ORGANS = frozenset({"colon", "small_bowel", "duodenum", "stomach", "esophagus", "trachea"})

Contents = Literal["air", "air+fluid"]
CONTENTS = ("air", "air+fluid")

_FULL = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity
_CROSS = np.array(  # 6-connectivity: the smallest ball, for one-voxel morphology
    [[[0, 0, 0], [0, 1, 0], [0, 0, 0]], [[0, 1, 0], [1, 1, 1], [0, 1, 0]], [[0, 0, 0], [0, 1, 0], [0, 0, 0]]], bool
)


def default_surface(label_name: str) -> Literal["lumen", "label"]:
    """``"lumen"`` for the gas-filled organs in :data:`HOLLOW_ORGANS`, else ``"label"``."""
    return "lumen" if label_name.strip().lower() in HOLLOW_ORGANS else "label"


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def check_lumen_options(
    lumen_hu: float,
    margin_mm: float,
    contents: str,
    untagged_max_hu: float = UNTAGGED_MAX_HU,
    tagged_min_hu: float = TAGGED_MIN_HU,
) -> None:
    """Raise :class:`SimrealError` naming every bad lumen option (thresholds out of order, bad names)."""
    problems = []
    values = {"lumen_hu": lumen_hu, "margin_mm": margin_mm, "untagged_max_hu": untagged_max_hu, "tagged_min_hu": tagged_min_hu}
    bad = [k for k, v in values.items() if not _finite(v)]
    if bad:
        raise SimrealError(f"lumen options must be finite numbers: {', '.join(bad)}")
    if not AIR_HU < lumen_hu <= -100.0:
        # Below -1000 nothing in a CT is air; above -100 fat would count as lumen.
        problems.append(f"lumen_hu must lie above {AIR_HU:g} (gas) and at most -100 (fat) HU, got {lumen_hu:g}")
    if margin_mm < 0:
        problems.append(f"margin_mm must be >= 0, got {margin_mm:g}")
    if contents not in CONTENTS:
        problems.append(f"contents must be one of {', '.join(CONTENTS)}, got {contents!r}")
    if not lumen_hu < untagged_max_hu < tagged_min_hu:
        problems.append(
            f"thresholds must increase: lumen_hu ({lumen_hu:g}) < untagged_max_hu ({untagged_max_hu:g}) "
            f"< tagged_min_hu ({tagged_min_hu:g}) HU"
        )
    if problems:
        raise SimrealError("invalid lumen options: " + "; ".join(problems))


@dataclass(frozen=True)
class LumenSegmentation:
    """The lumen on a voxel grid.

    Attributes:
        lumen: (X, Y, Z) bool, the space the endoscope is in: the largest 26-connected gas component inside
            the (dilated) label, plus the cleansed contents with ``contents="air+fluid"``, plus enclosed specks.
        air: (X, Y, Z) bool, the gas part of ``lumen``.
        field: (X, Y, Z) float32 HU field whose iso-surface at ``level`` is exactly the lumen's wall:
            the CT with cleansed contents set to :data:`AIR_HU` and every other gas voxel (other gas
            pockets, gas beyond the margin) set to ``cut_hu``, so no surface forms around them.
        level: the iso-level, HU (= ``lumen_hu``).
        cut_hu: the value outside gas got, HU; the caller pads the grid with it to close the surface.
        air_components: number of 26-connected gas components inside the dilated label.
        air_in_region: gas voxels inside the dilated label (all components).
    """

    lumen: np.ndarray
    air: np.ndarray
    field: np.ndarray
    level: float
    cut_hu: float
    air_components: int
    air_in_region: int

    @property
    def contents(self) -> np.ndarray:
        """(X, Y, Z) bool: the cleansed fluid / stool (and filled specks) counted as lumen."""
        return self.lumen & ~self.air


def dilate_mm(mask: np.ndarray, spacing_mm: np.ndarray, margin_mm: float) -> np.ndarray:
    """``mask`` grown by ``margin_mm`` (Euclidean, in mm, so anisotropic voxels grow by the same distance).

    Args:
        mask: (X, Y, Z) bool.
        spacing_mm: (3,) voxel size along each axis, mm.
        margin_mm: the growth, mm (0 = ``mask`` itself).
    """
    from scipy import ndimage

    if margin_mm <= 0 or mask.all():
        return mask.astype(bool)
    dist = ndimage.distance_transform_edt(~mask, sampling=np.asarray(spacing_mm, np.float64))
    return mask | (dist <= margin_mm + 1e-6)


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """26-connected component labels of ``mask`` and the size of each (index 0 = component 1)."""
    from scipy import ndimage

    lab, n = ndimage.label(mask, structure=_FULL)
    return lab, np.bincount(lab.ravel(), minlength=n + 1)[1:]


def segment_lumen(
    ct_hu: np.ndarray,
    label_mask: np.ndarray,
    spacing_mm: np.ndarray,
    *,
    lumen_hu: float = LUMEN_HU,
    margin_mm: float = MARGIN_MM,
    contents: Contents = "air",
    untagged_max_hu: float = UNTAGGED_MAX_HU,
    tagged_min_hu: float = TAGGED_MIN_HU,
    label_name: str = "the label",
    source: str | Path | None = None,
) -> LumenSegmentation:
    """Find the lumen of a hollow organ: the gas inside its label, optionally with its contents cleansed.

    Steps: the label grown by ``margin_mm`` is the region; gas is ``HU < lumen_hu`` inside it; the lumen is
    the largest 26-connected gas component (other gas pockets, e.g. a neighbouring loop, are dropped).
    With ``contents="air+fluid"`` (virtual cleansing), contents voxels inside the label itself
    (``lumen_hu <= HU <= untagged_max_hu`` or ``HU >= tagged_min_hu``) that connect to that gas join the
    lumen, after a one-voxel opening that drops the partial-volume shell at the gas/wall boundary and noise
    specks, and a one-voxel closing that absorbs the partial-volume membrane between gas and tagged fluid;
    the wall under them becomes the surface (to about half a voxel: there is no sub-voxel edge between
    fluid and wall to interpolate). Pools thinner than three voxels stay as they are. Non-lumen specks
    fully enclosed by the lumen (noise, floating debris) are filled.

    Args:
        ct_hu: (X, Y, Z) CT in HU.
        label_mask: (X, Y, Z) bool, the organ's label on the same grid.
        spacing_mm: (3,) voxel size, mm.
        lumen_hu: air/tissue threshold, HU.
        margin_mm: growth of the label before looking for gas, mm.
        contents: ``"air"`` (the endoscope sees the gas surface; a fluid pool shows as its flat top) or
            ``"air+fluid"`` (fluid and stool are cleansed away; the wall under them is the surface).
        untagged_max_hu: top of untagged fluid / stool, HU.
        tagged_min_hu: bottom of contrast-tagged fluid / stool, HU.
        label_name: for the error messages.
        source: the file named in the error messages.

    Returns:
        The :class:`LumenSegmentation`.

    Raises:
        SimrealError: bad options; no gas inside the label (with the HU found there and what to try).
    """
    from scipy import ndimage

    check_lumen_options(lumen_hu, margin_mm, contents, untagged_max_hu, tagged_min_hu)
    if ct_hu.shape != label_mask.shape or ct_hu.ndim != 3:
        raise SimrealError(f"CT {ct_hu.shape} and label mask {label_mask.shape} must be one 3-D grid", source)
    label_mask = label_mask.astype(bool)
    if not label_mask.any():
        raise SimrealError(f"{label_name} is empty", source)
    ct = np.asarray(ct_hu, dtype=np.float32)
    region = dilate_mm(label_mask, spacing_mm, margin_mm)
    gas = region & (ct < lumen_hu)
    inside = ct[label_mask]
    found = f"mean HU in the label {float(inside.mean()):.0f}, range {float(inside.min()):.0f} to {float(inside.max()):.0f}"
    hint = (
        "the segment may be collapsed or fluid-filled, or the CT not in HU; "
        "use surface='label' (--surface label) for the organ's outer surface, or another lumen_hu (--lumen-hu)"
    )
    if not gas.any():
        raise SimrealError(
            f"no air in {label_name}: no voxel below {lumen_hu:g} HU within {margin_mm:g} mm of it ({found}); {hint}",
            source,
        )
    lab, sizes = _components(gas)
    biggest = int(np.argmax(sizes)) + 1
    if sizes[biggest - 1] < MIN_LUMEN_VOXELS:
        raise SimrealError(
            f"too little air in {label_name}: its largest gas pocket below {lumen_hu:g} HU has "
            f"{int(sizes[biggest - 1])} voxels (< {MIN_LUMEN_VOXELS}) ({found}); {hint}",
            source,
        )
    air = lab == biggest
    lumen = air.copy()
    if contents == "air+fluid":
        candidate = label_mask & (ct >= lumen_hu) & ((ct <= untagged_max_hu) | (ct >= tagged_min_hu))
        core = ndimage.binary_opening(candidate, structure=_CROSS)
        # Other gas pockets reached through the contents (gas / fluid / gas) join as well.
        lab2, _ = _components(gas | core)
        keep = np.unique(lab2[air])
        grown = np.isin(lab2, keep[keep > 0])
        membrane = ndimage.binary_closing(np.pad(grown, 1), structure=_CROSS)[1:-1, 1:-1, 1:-1] & label_mask
        lumen = grown | membrane
        air = lumen & gas
    # Specks fully enclosed by the lumen (6-connected background, the dual of 26-connected foreground).
    lumen = ndimage.binary_fill_holes(lumen)
    # The iso-surface must run between lumen and everything else and nowhere else: contents become gas,
    # other gas becomes tissue-like (cut_hu sits as far above the threshold as gas is below it, so a cut
    # closes halfway between voxel centres).
    cut_hu = float(lumen_hu + (lumen_hu - AIR_HU))
    field = ct.copy()
    field[lumen & ~air] = AIR_HU
    # (``<=``: a voxel exactly at the level would pin zero-area triangles onto its centre.)
    field[~lumen & (field <= lumen_hu)] = cut_hu
    return LumenSegmentation(
        lumen=lumen,
        air=air,
        field=field,
        level=float(lumen_hu),
        cut_hu=cut_hu,
        air_components=int(len(sizes)),
        air_in_region=int(gas.sum()),
    )


def iso_surface(
    field: np.ndarray,
    level: float,
    affine: np.ndarray,
    *,
    inside: Literal["above", "below"],
    pad_value: float,
    smooth_iterations: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Marching-cubes iso-surface of a scalar field in world mm, its normals pointing into ``inside``.

    Vertices are interpolated linearly between voxel centres (sub-voxel accurate on a CT). The grid is
    padded by one voxel of ``pad_value`` so the surface closes where the structure meets the grid's edge.

    Args:
        field: (X, Y, Z) scalar field (a mask as 0/1, or HU).
        level: the iso-level.
        affine: (4, 4) voxel index -> world mm.
        inside: which side the normals point into: ``"above"`` the level (a 0/1 mask at 0.5) or
            ``"below"`` it (the gas of a lumen).
        pad_value: the value outside the grid (on the outer side of ``level``).
        smooth_iterations: Taubin smoothing iterations (0 = none; keeps volume, unlike plain Laplacian).

    Returns:
        vertices (V, 3) float64 mm and faces (F, 3) int64.

    Raises:
        SimrealError: if the field does not cross ``level``.
    """
    import trimesh
    from skimage.measure import marching_cubes

    padded = np.pad(np.asarray(field, dtype=np.float32), 1, constant_values=pad_value)
    if not padded.min() < level < padded.max():
        raise SimrealError(f"the field does not cross the iso-level {level:g} (range {padded.min():g} to {padded.max():g})")
    verts, faces, _, _ = marching_cubes(padded, level=level)
    verts = (verts - 1.0) @ affine[:3, :3].T + affine[:3, 3]
    # skimage's faces have right-hand normals towards higher values in index space (checked in the tests);
    # a mirroring affine (negative determinant, e.g. LAS storage) reverses that, and so does wanting them
    # towards lower values.
    if (np.linalg.det(affine[:3, :3]) < 0) != (inside == "below"):
        faces = faces[:, ::-1]
    if smooth_iterations > 0:
        tm = trimesh.Trimesh(verts, faces, process=False)
        trimesh.smoothing.filter_taubin(tm, lamb=0.5, nu=0.53, iterations=int(smooth_iterations))
        verts = np.asarray(tm.vertices)
    return np.asarray(verts, dtype=np.float64), np.ascontiguousarray(faces, dtype=np.int64)


def drop_specks(vertices: np.ndarray, faces: np.ndarray, min_volume_mm3: float) -> tuple[np.ndarray, np.ndarray]:
    """Remove the closed surface pieces that enclose less than ``min_volume_mm3``.

    Marching cubes wraps a gas voxel that touches the lumen only at a corner (26-connected) in its own
    tiny, nearly degenerate surface; such specks are noise to a camera.

    Args:
        vertices: (V, 3) mm.
        faces: (F, 3) vertex indices.
        min_volume_mm3: smallest enclosed volume kept, mm^3.

    Returns:
        vertices (V', 3) and faces (F', 3) of the pieces kept, vertex order preserved.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(vertices)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    tri = vertices[faces]
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    volume = np.abs(np.bincount(comp[faces[:, 0]], weights=signed))
    keep_face = volume[comp[faces[:, 0]]] >= min_volume_mm3
    if keep_face.all() or not keep_face.any():
        return vertices, faces
    faces = faces[keep_face]
    used = np.zeros(n, bool)
    used[faces.ravel()] = True
    remap = np.cumsum(used) - 1
    return vertices[used], remap[faces]


def sample_trilinear(volume: np.ndarray, points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Values of ``volume`` (X, Y, Z) at world points (N, 3) mm, trilinear (edge values beyond the grid)."""
    from scipy import ndimage

    inv = np.linalg.inv(affine)
    idx = points @ inv[:3, :3].T + inv[:3, 3]
    return ndimage.map_coordinates(np.asarray(volume, np.float32), idx.T, order=1, mode="nearest")


def trim_thin_ends(points: np.ndarray, radius: np.ndarray, frac: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Drop the leading and trailing centerline points whose radius is below ``frac`` times the median.

    A skeleton's longest path ends in the narrowest gas tails (and at the caps where the lumen leaves the
    CT), where a camera would only see the wall at point-blank range. Interior narrowings stay: a
    fly-through passes them.

    Args:
        points: (K, 3) centerline, mm.
        radius: (K,) radius, mm.
        frac: fraction of the median radius below which an end point is dropped.

    Returns:
        The kept run of points and radii (at least 2 points; the input if fewer would be left).
    """
    keep = np.nonzero(radius >= frac * float(np.median(radius)))[0]
    if len(keep) == 0 or keep[-1] - keep[0] < 1:
        return points, radius
    return points[keep[0] : keep[-1] + 1], radius[keep[0] : keep[-1] + 1]


def distance_to_surface(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """(K,) distance in mm from each point (K, 3) to the nearest surface vertex (V, 3)."""
    from scipy.spatial import cKDTree

    return cKDTree(vertices).query(points)[0]
