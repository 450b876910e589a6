"""Anatomy from a patient's CT: the surface an endoscope sees, or the surface of a labelled organ.

Pipeline (:func:`mesh_from_ct`): read the CT and its label volume (:mod:`simreal.data.volumes`), check
they share one voxel grid, resolve the label name through the bundled TotalSegmentator v2 map (or a
user map, or a numeric id), then build one of two surfaces:

* ``surface="lumen"`` (default for the gas-filled organs in :data:`~simreal.anatomy.lumen.HOLLOW_ORGANS`:
  colon, small bowel, duodenum, stomach, esophagus, trachea): the air/mucosa iso-surface inside the organ
  (:mod:`simreal.anatomy.lumen`): gas below ``lumen_hu`` (default -500 HU) within the label grown by
  ``margin_mm``, its largest 26-connected component, marching cubes on the CT intensities (sub-voxel),
  optionally with fluid and stool cleansed away; centerline and radius from that gas, so a camera on the
  centerline is in the air. See :func:`lumen_mesh`.
* ``surface="label"`` (default for every other organ, e.g. liver): the outer surface of the label mask:
  its largest connected component (optionally closed), marching cubes on the mask, centerline from the
  mask's skeleton. See :func:`mesh_from_label_volume`.

Both are placed in world mm with the label volume's affine, Taubin-smoothed, get a mucosa texture, and
have face normals pointing into the structure (towards the centerline), as on the procedural colon.

Example:
    >>> mesh = mesh_from_ct("ct.nii.gz", "seg.nii.gz", "colon")   # doctest: +SKIP
    >>> mesh.metadata["surface"], mesh.metadata["mean_hu_on_surface"]   # doctest: +SKIP
    ('lumen', -497.3)
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Literal

import numpy as np

from simreal.anatomy.lumen import (
    LUMEN_HU,
    MARGIN_MM,
    TAGGED_MIN_HU,
    UNTAGGED_MAX_HU,
    Contents,
    check_lumen_options,
    default_surface,
    distance_to_surface,
    drop_specks,
    iso_surface,
    sample_trilinear,
    segment_lumen,
    trim_thin_ends,
)
from simreal.anatomy.mesh import MUCOSA, AnatomyMesh
from simreal.anatomy.texture import bake_mucosa_texture
from simreal.data.volumes import Volume, read_volume, reorient_like, same_grid
from simreal.errors import SimrealError

#: The bundled TotalSegmentator v2 "total" id -> name map (Apache-2.0, from TotalSegmentator's map_to_binary.py).
BUNDLED_LABEL_MAP = Path(__file__).with_name("totalsegmentator_v2_labels.json")

_FULL = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity: thin tubes stay one component


def load_label_map(path: str | Path | None = None) -> dict[int, str]:
    """Label id -> name. Without ``path``, the bundled TotalSegmentator v2 ``total`` map (Apache-2.0).

    Raises:
        SimrealError: if the JSON cannot be read or is not an object of ``{"id": "name"}``.
    """
    try:
        text = Path(BUNDLED_LABEL_MAP if path is None else path).read_text()
        raw = json.loads(text)
        return {int(k): str(v) for k, v in raw.items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise SimrealError(f"cannot read label map ({exc.__class__.__name__}: {exc}); expected JSON {{\"id\": \"name\"}}", path) from None


def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def resolve_label(label: str | int, label_map: dict[int, str], source: str | Path | None = None) -> tuple[int, str]:
    """Turn a label name (case/space-insensitive) or a numeric id into ``(id, name)``.

    Raises:
        SimrealError: for an unknown name, listing near matches.
    """
    if isinstance(label, int) or str(label).strip().isdigit():
        lid = int(label)
        return lid, label_map.get(lid, f"label_{lid}")
    by_name = {_norm(v): k for k, v in label_map.items()}
    key = _norm(str(label))
    if key in by_name:
        return by_name[key], label_map[by_name[key]]
    near = [n for n in by_name if key in n] + difflib.get_close_matches(key, list(by_name), n=5, cutoff=0.6)
    near = list(dict.fromkeys(near))[:8]
    hint = f"; did you mean {', '.join(near)}?" if near else "; give a name from the label map or a numeric id"
    raise SimrealError(f"unknown label {label!r}{hint}", source)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a boolean 3-D mask."""
    from scipy import ndimage

    lab, n = ndimage.label(mask, structure=_FULL)
    if n <= 1:
        return mask.astype(bool)
    sizes = np.bincount(lab.ravel())[1:]
    return lab == (int(np.argmax(sizes)) + 1)


def _voxel_to_world(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return points @ affine[:3, :3].T + affine[:3, 3]


def mask_surface(mask: np.ndarray, affine: np.ndarray, smooth_iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Marching-cubes surface of a binary mask in world mm.

    Args:
        mask: (X, Y, Z) bool.
        affine: (4, 4) voxel -> world mm.
        smooth_iterations: Taubin smoothing iterations (0 = none; keeps volume, unlike plain Laplacian).

    Returns:
        vertices (V, 3) float64 mm and faces (F, 3) int64 whose normals point into the mask.
    """
    # A zero border closes the surface at the volume edge.
    return iso_surface(mask.astype(np.float32), 0.5, affine, inside="above", pad_value=0.0, smooth_iterations=smooth_iterations)


def _longest_skeleton_path(skel: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Voxel indices (P, 3) of the (approximately) longest path in the 26-connected skeleton graph."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, dijkstra

    pts = np.argwhere(skel)
    if len(pts) < 2:
        return pts
    index = -np.ones(skel.shape, dtype=np.int64)
    index[tuple(pts.T)] = np.arange(len(pts))
    rows, cols, weights = [], [], []
    padded = np.pad(index, 1, constant_values=-1)
    for off in np.argwhere(_FULL) - 1:
        if (off == 0).all():
            continue
        nb = padded[tuple((pts + 1 + off).T)]
        ok = nb >= 0
        rows.append(np.nonzero(ok)[0])
        cols.append(nb[ok])
        weights.append(np.full(int(ok.sum()), float(np.linalg.norm(off * spacing))))
    graph = coo_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(len(pts), len(pts))
    ).tocsr()
    n_comp, comp = connected_components(graph, directed=False)
    best: np.ndarray = pts[:1]
    best_len = -1.0
    for c in range(n_comp):
        members = np.nonzero(comp == c)[0]
        if len(members) < 2:
            continue
        # Double sweep: the farthest node from any node is one end of a longest path (exact on trees).
        d0 = dijkstra(graph, directed=False, indices=int(members[0]))
        a = int(members[np.argmax(np.where(np.isfinite(d0[members]), d0[members], -1))])
        d1, pred = dijkstra(graph, directed=False, indices=a, return_predecessors=True)
        b = int(members[np.argmax(np.where(np.isfinite(d1[members]), d1[members], -1))])
        if d1[b] > best_len:
            path = [b]
            while path[-1] != a:
                path.append(int(pred[path[-1]]))
            best, best_len = pts[np.array(path[::-1])], float(d1[b])
    return best


def _principal_axis_path(mask: np.ndarray, dist: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Fallback for blobs whose skeleton is a point: the inside run of the principal axis through the
    deepest voxel, as (P, 3) float voxel coordinates (P >= 2)."""
    pts = np.argwhere(mask).astype(np.float64)
    centre = np.array(np.unravel_index(np.argmax(dist), mask.shape), dtype=np.float64)
    cov = np.cov((pts * spacing).T) if len(pts) > 3 else np.eye(3)
    axis = np.linalg.eigh(cov)[1][:, -1] / spacing
    axis /= np.linalg.norm(axis)
    ts = np.arange(-max(mask.shape), max(mask.shape) + 1, 0.5)
    line = centre + ts[:, None] * axis
    vox = np.round(line).astype(np.int64)
    valid = ((vox >= 0) & (vox < np.array(mask.shape))).all(axis=1)
    inside = np.zeros(len(ts), bool)
    inside[valid] = mask[tuple(vox[valid].T)]
    mid = len(ts) // 2
    lo, hi = mid, mid
    while lo > 0 and inside[lo - 1]:
        lo -= 1
    while hi < len(ts) - 1 and inside[hi + 1]:
        hi += 1
    run = line[lo : hi + 1]
    return run if len(run) >= 2 else np.stack([centre, centre + 0.25 * axis])


def mask_centerline(
    mask: np.ndarray, affine: np.ndarray, step_mm: float = 2.0, smooth_mm: float = 4.0
) -> tuple[np.ndarray, np.ndarray]:
    """Centerline of a tubular mask and the radius along it.

    Skeletonises the mask, takes the longest path through the skeleton graph, maps it to world mm,
    smooths it (Gaussian, ``smooth_mm``), resamples every ``step_mm`` and reads the radius from the
    Euclidean distance transform (mm). Points that smoothing pushed out of the mask are pulled back to
    the nearest raw skeleton point, so a camera on the centerline is always inside.

    Returns:
        points (K, 3) world mm (K >= 2) and radius (K,) mm.
    """
    from scipy import ndimage
    from skimage.morphology import skeletonize

    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    dist = ndimage.distance_transform_edt(mask, sampling=spacing)
    skel = skeletonize(mask)
    path = _longest_skeleton_path(skel > 0, spacing).astype(np.float64)
    if len(path) < 2:
        path = _principal_axis_path(mask, dist, spacing)
    world = _voxel_to_world(path, affine)
    seg = np.linalg.norm(np.diff(world, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] > 0:
        mean_step = arc[-1] / (len(arc) - 1)
        smooth = ndimage.gaussian_filter1d(world, sigma=max(smooth_mm / max(mean_step, 1e-6), 1e-3), axis=0, mode="nearest")
        n_out = max(2, int(np.ceil(arc[-1] / step_mm)) + 1)
        s = np.linspace(0.0, arc[-1], n_out)
        points = np.stack([np.interp(s, arc, smooth[:, d]) for d in range(3)], axis=1)
    else:
        points = world
    inv = np.linalg.inv(affine)
    vox = np.round(_voxel_to_world(points, inv)).astype(np.int64)
    vox = np.clip(vox, 0, np.array(mask.shape) - 1)
    outside = ~mask[tuple(vox.T)]
    if outside.any():
        nearest = np.argmin(np.linalg.norm(points[outside, None] - world[None], axis=-1), axis=1)
        points[outside] = world[nearest]
        vox[outside] = np.round(path[nearest]).astype(np.int64)
    radius = dist[tuple(vox.T)]
    return points, radius.astype(np.float64)


Surface = Literal["auto", "lumen", "label"]
SURFACES = ("auto", "lumen", "label")


def _label_mask(labels: Volume, label_id: int, label_name: str | None, label_names: dict[int, str] | None) -> np.ndarray:
    """(X, Y, Z) bool voxels of ``label_id``; raises if there are none, listing the labels present."""
    mask = np.rint(labels.array) == label_id
    if not mask.any():
        names = label_names or {}
        present = [int(v) for v in np.unique(np.rint(labels.array)) if v != 0]
        listed = ", ".join(f"{names.get(v, 'label')} ({v})" for v in present[:60])
        raise SimrealError(
            f"label {label_name or label_id} (id {label_id}) is not present in the label volume; "
            f"present: {listed or 'none (the volume is empty)'}",
            labels.path,
        )
    return mask


def _length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def _crop_box(mask: np.ndarray, margin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Low (inclusive) and high (exclusive) voxel corner of ``mask``'s bounding box grown by ``margin`` voxels."""
    nz = np.argwhere(mask)
    lo = np.maximum(nz.min(axis=0) - margin, 0)
    hi = np.minimum(nz.max(axis=0) + margin + 1, mask.shape)
    return lo, hi


def _crop(array: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]


def _shifted_affine(affine: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The affine of a crop starting at voxel ``lo``."""
    out = affine.copy()
    out[:3, 3] = _voxel_to_world(lo.astype(np.float64), affine)
    return out


def _ct_mesh(verts: np.ndarray, faces: np.ndarray, centerline: np.ndarray, radius: np.ndarray, texture_seed: int,
             metadata: dict) -> AnatomyMesh:
    """An all-mucosa mesh of a CT surface with the baked mucosa texture; ``metadata`` says which surface."""
    return AnatomyMesh(
        vertices=verts,
        faces=faces,
        face_labels=np.full(len(faces), MUCOSA, np.uint8),
        face_instances=np.zeros(len(faces), np.uint8),
        vertex_texture=bake_mucosa_texture(verts, texture_seed),
        centerline=centerline,
        centerline_radius=radius,
        metadata={"generator": "ct-surface", **metadata, "units": "mm"},
    )


def mesh_from_label_volume(
    labels: Volume,
    label_id: int,
    *,
    label_name: str | None = None,
    label_names: dict[int, str] | None = None,
    smooth_iterations: int = 10,
    closing_voxels: int = 1,
    texture_seed: int = 0,
) -> AnatomyMesh:
    """Outer surface, centerline and texture of one label in a label volume (``surface="label"``).

    Args:
        labels: the label volume (integer class ids; its affine places the mesh in world mm).
        label_id: the class id to extract.
        label_name: for the metadata.
        label_names: id -> name, to list the labels present when ``label_id`` is not.
        smooth_iterations: Taubin iterations.
        closing_voxels: radius of a morphological closing that fills small holes (0 = none).
        texture_seed: seed of the baked mucosa texture.

    Raises:
        SimrealError: if the label is not present, listing the labels that are.
    """
    from scipy import ndimage

    mask = _label_mask(labels, label_id, label_name, label_names)
    # Crop to the structure (plus a margin) so skeletonisation and marching cubes stay fast.
    lo, hi = _crop_box(mask, np.full(3, closing_voxels + 2))
    crop = _crop(mask, lo, hi)
    affine = _shifted_affine(labels.affine, lo)
    crop = largest_component(crop)
    if closing_voxels > 0:
        padded = np.pad(crop, closing_voxels + 1)
        closed = ndimage.binary_closing(padded, structure=ndimage.generate_binary_structure(3, 1), iterations=closing_voxels)
        c = closing_voxels + 1
        crop = closed[c:-c, c:-c, c:-c] | crop
    verts, faces = mask_surface(crop, affine, smooth_iterations)
    centerline, radius = mask_centerline(crop, affine)
    spacing = labels.spacing_mm
    return _ct_mesh(
        verts, faces, centerline, radius, texture_seed,
        {
            "surface": "label",
            "label": label_name or f"label_{label_id}",
            "label_id": int(label_id),
            "labels_file": str(labels.path) if labels.path else None,
            "voxel_spacing_mm": [float(x) for x in spacing],
            "mask_voxels": int(crop.sum()),
            "smooth_iterations": int(smooth_iterations),
            "closing_voxels": int(closing_voxels),
            "texture_seed": int(texture_seed),
            "centerline_radius": "distance transform of the label mask",
            "normals": "into the structure",
        },
    )


def lumen_mesh(
    ct: Volume,
    labels: Volume,
    label_id: int,
    *,
    label_name: str | None = None,
    label_names: dict[int, str] | None = None,
    lumen_hu: float = LUMEN_HU,
    margin_mm: float = MARGIN_MM,
    contents: Contents = "air",
    untagged_max_hu: float = UNTAGGED_MAX_HU,
    tagged_min_hu: float = TAGGED_MIN_HU,
    smooth_iterations: int = 10,
    texture_seed: int = 0,
) -> AnatomyMesh:
    """The lumen surface of a hollow organ, what an endoscope inside it sees (``surface="lumen"``).

    The gas inside the label (grown by ``margin_mm``) below ``lumen_hu``, its largest 26-connected
    component, optionally with contents cleansed (:func:`simreal.anatomy.lumen.segment_lumen`); marching
    cubes on the CT intensities at ``lumen_hu`` (sub-voxel), in world mm with the label volume's affine,
    Taubin-smoothed, normals into the lumen. The centerline is the skeleton of the lumen mask (every point
    in the gas); its radius is the distance to the nearest lumen-surface vertex, so it is the clearance a
    camera on the centerline has; ends thinner than half the median radius are trimmed
    (:func:`~simreal.anatomy.lumen.trim_thin_ends`).

    Args:
        ct: the CT, HU, on the same voxel grid and axis order as ``labels`` (see
            :func:`simreal.data.volumes.reorient_like`).
        labels: the label volume; its affine places the mesh.
        label_id: the hollow organ's class id.
        label_name: for the metadata and messages.
        label_names: id -> name, to list the labels present when ``label_id`` is not.
        lumen_hu: air/tissue threshold, HU.
        margin_mm: growth of the label before looking for gas, mm.
        contents: ``"air"`` or ``"air+fluid"`` (virtual cleansing of fluid and stool).
        untagged_max_hu: top of untagged fluid / stool, HU (``air+fluid`` only).
        tagged_min_hu: bottom of contrast-tagged fluid / stool, HU (``air+fluid`` only).
        smooth_iterations: Taubin iterations.
        texture_seed: seed of the baked mucosa texture.

    Raises:
        SimrealError: the label is absent; no air in it (with the HU found there); bad thresholds.
    """
    check_lumen_options(lumen_hu, margin_mm, contents, untagged_max_hu, tagged_min_hu)
    if ct.shape != labels.shape:
        raise SimrealError(f"CT {ct.path} shape {ct.shape} differs from the label volume's {labels.shape}", labels.path)
    name = label_name or f"label_{label_id}"
    mask = _label_mask(labels, label_id, label_name, label_names)
    spacing = labels.spacing_mm
    lo, hi = _crop_box(mask, np.ceil(margin_mm / spacing).astype(np.int64) + 2)
    affine = _shifted_affine(labels.affine, lo)
    ct_crop = _crop(ct.array, lo, hi)
    seg = segment_lumen(
        ct_crop,
        _crop(mask, lo, hi),
        spacing,
        lumen_hu=lumen_hu,
        margin_mm=margin_mm,
        contents=contents,
        untagged_max_hu=untagged_max_hu,
        tagged_min_hu=tagged_min_hu,
        label_name=f"{name} (id {label_id})",
        source=ct.path,
    )
    verts, faces = iso_surface(
        seg.field, seg.level, affine, inside="below", pad_value=seg.cut_hu, smooth_iterations=smooth_iterations
    )
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    verts, faces = drop_specks(verts, faces, 0.5 * voxel_mm3)
    raw_line, _ = mask_centerline(seg.lumen, affine)
    centerline, radius = trim_thin_ends(raw_line, distance_to_surface(raw_line, verts))
    hu_ranges: dict = {"air": [None, float(lumen_hu)]}
    if contents == "air+fluid":
        hu_ranges["contents_untagged"] = [float(lumen_hu), float(untagged_max_hu)]
        hu_ranges["contents_tagged"] = [float(tagged_min_hu), None]
    return _ct_mesh(
        verts, faces, centerline, radius, texture_seed,
        {
            "surface": "lumen",
            "label": name,
            "label_id": int(label_id),
            "labels_file": str(labels.path) if labels.path else None,
            "voxel_spacing_mm": [float(x) for x in spacing],
            "lumen_hu": float(lumen_hu),
            "margin_mm": float(margin_mm),
            "contents": contents,
            # [low, high] HU, None = open; air is HU < high, contents low <= HU <= high.
            "hu_ranges": hu_ranges,
            "lumen_voxels": int(seg.lumen.sum()),
            "air_voxels": int(seg.air.sum()),
            "contents_voxels": int(seg.contents.sum()),
            "air_components": seg.air_components,
            "air_voxels_in_region": seg.air_in_region,
            "mean_hu_in_lumen": float(ct_crop[seg.lumen].mean()),
            # The original CT at the vertices: ~lumen_hu on gas/wall, the wall's or fluid's HU where cleansed,
            # gas where the surface was cut (grid edge, margin); the median is the gas/wall part.
            "median_hu_on_surface": float(np.median(sample_trilinear(ct_crop, verts, affine))),
            "smooth_iterations": int(smooth_iterations),
            "texture_seed": int(texture_seed),
            "centerline_radius": "distance to the nearest lumen-surface vertex",
            "centerline_trimmed_mm": float(_length(raw_line) - _length(centerline)),
            "normals": "into the lumen",
        },
    )


def mesh_from_ct(
    ct: str | Path,
    labels: str | Path,
    label: str | int,
    *,
    label_map: str | Path | None = None,
    surface: Surface = "auto",
    lumen_hu: float = LUMEN_HU,
    margin_mm: float = MARGIN_MM,
    contents: Contents = "air",
    untagged_max_hu: float = UNTAGGED_MAX_HU,
    tagged_min_hu: float = TAGGED_MIN_HU,
    smooth_iterations: int = 10,
    closing_voxels: int = 1,
    texture_seed: int = 0,
) -> AnatomyMesh:
    """Read a CT and its label volume and build the mesh of one labelled structure.

    Args:
        ct: CT volume (NIfTI file or DICOM series folder), HU.
        labels: label volume on the same voxel grid (axis flips allowed, e.g. a LAS NIfTI of an LPS series).
        label: a name from the label map (e.g. ``"colon"``) or a numeric id.
        label_map: JSON ``{"id": "name"}``; default the bundled TotalSegmentator v2 ``total`` map.
        surface: ``"lumen"`` (the air/mucosa surface inside a hollow organ, :func:`lumen_mesh`),
            ``"label"`` (the label's outer surface, :func:`mesh_from_label_volume`) or ``"auto"``: lumen for
            the gas-filled organs in :data:`~simreal.anatomy.lumen.HOLLOW_ORGANS`, label otherwise.
        lumen_hu, margin_mm, contents, untagged_max_hu, tagged_min_hu: lumen options, see :func:`lumen_mesh`.
        smooth_iterations: Taubin iterations.
        closing_voxels: closing radius in voxels (0 = none; label surface only).
        texture_seed: seed of the mucosa texture.

    Raises:
        SimrealError: unreadable volumes, different grids (naming both files), unknown or absent labels,
            bad options, no air in a lumen.
    """
    if smooth_iterations < 0 or closing_voxels < 0:
        raise SimrealError("smooth_iterations and closing_voxels must be >= 0")
    if surface not in SURFACES:
        raise SimrealError(f"surface must be one of {', '.join(SURFACES)}, got {surface!r}")
    check_lumen_options(lumen_hu, margin_mm, contents, untagged_max_hu, tagged_min_hu)
    names = load_label_map(label_map)
    label_id, label_name = resolve_label(label, names, label_map or BUNDLED_LABEL_MAP)
    kind = default_surface(label_name) if surface == "auto" else surface
    ct_vol = read_volume(ct)
    lab_vol = read_volume(labels)
    if ct_vol.shape != lab_vol.shape:
        raise SimrealError(f"label volume shape {lab_vol.shape} differs from the CT {ct_vol.path} shape {ct_vol.shape}", lab_vol.path)
    if not same_grid(ct_vol, lab_vol):
        raise SimrealError(f"label volume does not lie on the voxel grid of the CT {ct_vol.path} (different affines)", lab_vol.path)
    ct_vol = reorient_like(ct_vol, lab_vol)  # now voxel [i, j, k] is the same place in both
    if kind == "lumen":
        mesh = lumen_mesh(
            ct_vol,
            lab_vol,
            label_id,
            label_name=label_name,
            label_names=names,
            lumen_hu=lumen_hu,
            margin_mm=margin_mm,
            contents=contents,
            untagged_max_hu=untagged_max_hu,
            tagged_min_hu=tagged_min_hu,
            smooth_iterations=smooth_iterations,
            texture_seed=texture_seed,
        )
    else:
        mesh = mesh_from_label_volume(
            lab_vol,
            label_id,
            label_name=label_name,
            label_names=names,
            smooth_iterations=smooth_iterations,
            closing_voxels=closing_voxels,
            texture_seed=texture_seed,
        )
    inside = np.rint(lab_vol.array) == label_id
    mesh.metadata.update(
        ct_file=str(ct_vol.path),
        label_map=str(label_map) if label_map else "totalsegmentator_v2 (bundled)",
        surface_requested=surface,
        mean_hu_in_label=float(ct_vol.array[inside].mean()),
    )
    return mesh
