"""Anatomy from a patient's CT: the surface of one labelled structure, with a centerline and texture.

Pipeline (:func:`mesh_from_ct`): read the CT and its label volume (:mod:`simreal.data.volumes`), check
they share one voxel grid, resolve the label name through the bundled TotalSegmentator v2 map (or a
user map, or a numeric id), keep the largest connected component of the mask (optionally closed), run
marching cubes on it, map vertices to world mm with the label volume's affine, Taubin-smooth, skeletonise
the mask for a centerline (longest path of the skeleton graph, smoothed, resampled every ~2 mm) with the
lumen radius from the distance transform, and bake the mucosa texture.

Face normals point into the structure (towards the centerline), as on the procedural colon.

Example:
    >>> mesh = mesh_from_ct("ct.nii.gz", "seg.nii.gz", "colon")   # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np

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
    import trimesh
    from skimage.measure import marching_cubes

    padded = np.pad(mask.astype(np.float32), 1)  # a zero border closes the surface at the volume edge
    verts, faces, _, _ = marching_cubes(padded, level=0.5)
    verts = _voxel_to_world(verts - 1.0, affine)
    # skimage's faces have right-hand normals into the mask in index space (checked in the tests); a
    # mirroring affine (negative determinant, e.g. LAS storage) reverses that, so flip them back.
    if np.linalg.det(affine[:3, :3]) < 0:
        faces = faces[:, ::-1]
    if smooth_iterations > 0:
        tm = trimesh.Trimesh(verts, faces, process=False)
        trimesh.smoothing.filter_taubin(tm, lamb=0.5, nu=0.53, iterations=int(smooth_iterations))
        verts = np.asarray(tm.vertices)
    return verts, np.ascontiguousarray(faces, dtype=np.int64)


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
    """Surface, centerline and texture of one label in a label volume.

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
    # Crop to the structure (plus a margin) so skeletonisation and marching cubes stay fast.
    nz = np.argwhere(mask)
    margin = closing_voxels + 2
    lo = np.maximum(nz.min(axis=0) - margin, 0)
    hi = np.minimum(nz.max(axis=0) + margin + 1, mask.shape)
    crop = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    affine = labels.affine.copy()
    affine[:3, 3] = _voxel_to_world(lo.astype(np.float64), labels.affine)
    crop = largest_component(crop)
    if closing_voxels > 0:
        padded = np.pad(crop, closing_voxels + 1)
        closed = ndimage.binary_closing(padded, structure=ndimage.generate_binary_structure(3, 1), iterations=closing_voxels)
        c = closing_voxels + 1
        crop = closed[c:-c, c:-c, c:-c] | crop
    verts, faces = mask_surface(crop, affine, smooth_iterations)
    centerline, radius = mask_centerline(crop, affine)
    spacing = labels.spacing_mm
    return AnatomyMesh(
        vertices=verts,
        faces=faces,
        face_labels=np.full(len(faces), MUCOSA, np.uint8),
        face_instances=np.zeros(len(faces), np.uint8),
        vertex_texture=bake_mucosa_texture(verts, texture_seed),
        centerline=centerline,
        centerline_radius=radius,
        metadata={
            "generator": "ct-surface",
            "label": label_name or f"label_{label_id}",
            "label_id": int(label_id),
            "labels_file": str(labels.path) if labels.path else None,
            "voxel_spacing_mm": [float(x) for x in spacing],
            "mask_voxels": int(crop.sum()),
            "smooth_iterations": int(smooth_iterations),
            "closing_voxels": int(closing_voxels),
            "texture_seed": int(texture_seed),
            "normals": "into the structure",
            "units": "mm",
        },
    )


def mesh_from_ct(
    ct: str | Path,
    labels: str | Path,
    label: str | int,
    *,
    label_map: str | Path | None = None,
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
        smooth_iterations: Taubin iterations.
        closing_voxels: closing radius in voxels (0 = none).
        texture_seed: seed of the mucosa texture.

    Raises:
        SimrealError: unreadable volumes, different grids (naming both files), unknown or absent labels.
    """
    if smooth_iterations < 0 or closing_voxels < 0:
        raise SimrealError("smooth_iterations and closing_voxels must be >= 0")
    names = load_label_map(label_map)
    label_id, label_name = resolve_label(label, names, label_map or BUNDLED_LABEL_MAP)
    ct_vol = read_volume(ct)
    lab_vol = read_volume(labels)
    if ct_vol.shape != lab_vol.shape:
        raise SimrealError(f"label volume shape {lab_vol.shape} differs from the CT {ct_vol.path} shape {ct_vol.shape}", lab_vol.path)
    if not same_grid(ct_vol, lab_vol):
        raise SimrealError(f"label volume does not lie on the voxel grid of the CT {ct_vol.path} (different affines)", lab_vol.path)
    ct_vol = reorient_like(ct_vol, lab_vol)  # now voxel [i, j, k] is the same place in both
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
        mean_hu_in_label=float(ct_vol.array[inside].mean()),
    )
    return mesh
