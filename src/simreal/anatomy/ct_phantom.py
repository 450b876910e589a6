"""A CT phantom made from a procedural colon: HU volume, label volume and polyp instances with known geometry.

Many "patients" whose every surface is known: :func:`make_ct_phantom` builds the procedural colon
``make_colon(seed)`` and voxelises it (:func:`phantom_from_mesh`) into a CT in Hounsfield units, layer by
layer outwards from the mesh:

* **lumen** (the side the mesh normals point into): gas, ``air_hu`` (-1000 HU);
* **wall** (mucosa, submucosa, muscularis; ``wall_thickness_mm`` thick, haustral folds filled): ``wall_hu``
  (+40 HU) with a smooth texture, and contrast-enhanced submucosal vessels (``vessel_hu``, +160 HU) under
  the mucosa where the mesh's baked vessel pattern (:func:`~simreal.anatomy.texture.bake_mucosa_texture`)
  says so;
* **polyps** (inside the polyp surfaces): ``polyp_hu`` (+55 HU, slightly enhancing);
* **pericolic fat** (``fat_thickness_mm``, its outer edge wavy): ``fat_hu`` (-100 HU);
* **surrounding soft tissue** (muscle, bowel, organs) out to the grid edge: ``tissue_hu`` (+45 HU).

Then the CT look: a Gaussian point-spread (``blur_mm``) and white quantum noise (``noise_hu``). Every
random number comes from ``noise_seed`` (the value-noise fields and the quantum noise), so the same
arguments give the same voxels.

Which voxel is where is decided from the mesh alone (``anatomy`` imports no ray caster): the wall is
covered by points at most a voxel apart (:func:`surface_samples`); a voxel's distance to the wall is its
distance to the nearest point; within 1.8 voxels of the wall the normals of the 8 nearest points (they
point into the lumen) vote on its side, and further away a flood fill decides: the shell of voxels near
the wall separates lumen from tissue, and the regions holding a centerline point are lumen. Voxels on the
wrong side lie within the shell, next to the sharp crests of haustral folds (under 0.2 % of the lumen in
the tests). Each polyp's own vertices vote the same way on whether a voxel is inside that polyp.

Label volume ids follow TotalSegmentator v2 for the colon (20, lumen + wall) so
:func:`~simreal.anatomy.from_ct.mesh_from_ct` reads a written phantom with its bundled map; polyps get
:data:`POLYP_LABEL`. :func:`write_phantom` writes the NIfTI files (and a label map JSON naming both).

World frame: the colon mesh's millimetres (its centerline starts at the origin and runs along +z); the
volume's axes are aligned with it (affine = voxel size on the diagonal + the grid's corner).

Example:
    >>> ph = make_ct_phantom(3, voxel_mm=2.0, length_mm=40.0, n_polyps=1)
    >>> ph.ct.array.dtype, sorted(ph.label_names)
    (dtype('float32'), [20, 150])
    >>> bool((ph.labels.array == POLYP_LABEL).any())
    True
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from simreal.anatomy.mesh import MUCOSA, POLYP, AnatomyMesh
from simreal.data.volumes import Volume
from simreal.errors import SimrealError

#: Label id of the colon (lumen + wall): TotalSegmentator v2's "colon".
COLON_LABEL = 20
#: Label id of the polyps (not a TotalSegmentator class).
POLYP_LABEL = 150
#: The phantom's label volume ids -> names (also written as ``labels.json``).
PHANTOM_LABELS = {COLON_LABEL: "colon", POLYP_LABEL: "colon_polyp"}

#: Wall vertices voting on which side of the wall a voxel lies.
_SIDE_K = 8

#: Largest phantom grid, voxels (about 1.6 GB of float32 work arrays): a bigger request is an error.
MAX_VOXELS = 40_000_000


@dataclass(frozen=True)
class PhantomTissues:
    """Hounsfield units and thicknesses of the phantom's tissues.

    Args:
        air_hu: gas in the lumen, HU.
        wall_hu: colon wall (mucosa to muscularis), HU.
        polyp_hu: polyp tissue, HU.
        fat_hu: pericolic fat, HU.
        tissue_hu: surrounding soft tissue, HU.
        vessel_hu: contrast-enhanced submucosal vessels, HU (where the vessel pattern is 1).
        texture_hu: amplitude of the smooth tissue texture (value noise, 2-4 mm features), HU.
        noise_hu: standard deviation of the white quantum noise, HU.
        wall_thickness_mm: wall thickness, mm (> 0).
        vessel_depth_mm: (from, to) depth of the vessel layer below the mucosal surface, mm (submucosa).
        fat_thickness_mm: mean thickness of the fat layer around the wall, mm (>= 0).
        blur_mm: standard deviation of the Gaussian point-spread function, mm (0 = none).
    """

    air_hu: float = -1000.0
    wall_hu: float = 40.0
    polyp_hu: float = 55.0
    fat_hu: float = -100.0
    tissue_hu: float = 45.0
    vessel_hu: float = 160.0
    texture_hu: float = 12.0
    noise_hu: float = 6.0
    wall_thickness_mm: float = 3.0
    vessel_depth_mm: tuple[float, float] = (0.7, 2.0)
    fat_thickness_mm: float = 10.0
    blur_mm: float = 0.6

    def __post_init__(self) -> None:
        problems = []
        for f in fields(self):
            v = getattr(self, f.name)
            values = v if isinstance(v, tuple) else (v,)
            if any(isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) for x in values):
                problems.append(f"{f.name}: expected finite numbers, got {v!r}")
        if not problems:
            if self.wall_thickness_mm <= 0:
                problems.append(f"wall_thickness_mm: must be > 0, got {self.wall_thickness_mm}")
            lo, hi = self.vessel_depth_mm if len(self.vessel_depth_mm) == 2 else (1.0, 0.0)
            if not 0.0 <= lo <= hi <= self.wall_thickness_mm:
                problems.append(f"vessel_depth_mm: expected (from, to) with 0 <= from <= to <= wall thickness, "
                                f"got {self.vessel_depth_mm!r}")
            for name in ("fat_thickness_mm", "blur_mm", "noise_hu", "texture_hu"):
                if getattr(self, name) < 0:
                    problems.append(f"{name}: must be >= 0, got {getattr(self, name)}")
            if self.air_hu >= -500.0:
                problems.append(f"air_hu: gas must lie below -500 HU (the lumen threshold), got {self.air_hu}")
        if problems:
            raise SimrealError("phantom tissues: " + "; ".join(problems))


@dataclass(frozen=True, eq=False)
class CTPhantom:
    """A voxelised colon: CT, labels, polyp instances, and the mesh it was made from.

    Attributes:
        ct: (X, Y, Z) float32 HU volume; its affine maps voxel indices to the mesh's world mm.
        labels: (X, Y, Z) float32 class ids on the same grid (:data:`PHANTOM_LABELS`).
        instances: (X, Y, Z) float32 polyp instance ids (0 = none; k = the mesh's polyp instance k).
        mesh: the surface the phantom was voxelised from (world mm, normals into the lumen).
        label_names: label id -> name.
        metadata: generator, seed, voxel size, tissues and the colon's own metadata (JSON-able).
    """

    ct: Volume
    labels: Volume
    instances: Volume
    mesh: AnatomyMesh
    label_names: dict[int, str] = field(default_factory=lambda: dict(PHANTOM_LABELS))
    metadata: dict[str, Any] = field(default_factory=dict)


def _grid(mesh: AnatomyMesh, voxel_mm: float, margin_mm: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The phantom's affine (axis-aligned, corner voxel centre at the mesh bbox minus the margin) and shape."""
    lo = mesh.vertices.min(axis=0).astype(np.float64) - margin_mm
    hi = mesh.vertices.max(axis=0).astype(np.float64) + margin_mm
    shape = tuple(int(n) for n in np.ceil((hi - lo) / voxel_mm).astype(np.int64) + 1)
    n = int(np.prod(shape, dtype=np.int64))
    if n > MAX_VOXELS:
        raise SimrealError(
            f"the phantom grid would have {n} voxels ({shape[0]}x{shape[1]}x{shape[2]} at {voxel_mm:g} mm), more than "
            f"{MAX_VOXELS}; use a larger voxel_mm, a shorter colon or a smaller margin"
        )
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = lo
    return affine, shape  # type: ignore[return-value]


def _vertex_sets(mesh: AnatomyMesh) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Vertex indices of the wall (mucosa faces) and of each polyp instance."""
    wall = np.unique(mesh.faces[mesh.face_labels == MUCOSA])
    polyps: dict[int, np.ndarray] = {}
    sel = (mesh.face_labels == POLYP) & (mesh.face_instances > 0)
    for k in np.unique(mesh.face_instances[sel]):
        polyps[int(k)] = np.unique(mesh.faces[sel & (mesh.face_instances == k)])
    return wall, polyps


def surface_samples(
    vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, spacing_mm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points covering a triangle mesh no further than ``spacing_mm`` apart: its vertices plus a barycentric
    grid on every face with an edge longer than ``spacing_mm``.

    Args:
        vertices: (V, 3) mm. faces: (F, 3). normals: (V, 3) unit vertex normals.
        spacing_mm: largest distance between neighbouring samples on a face, mm.

    Returns:
        points (P, 3) mm, their unit normals (P, 3) (interpolated) and the vertex (P,) of their face
        nearest to each (for per-vertex data such as the texture).
    """
    used = np.unique(faces)
    pts, nrm, ids = [vertices[used]], [normals[used]], [used]
    tri = vertices[faces]
    longest = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)
    n_div = np.ceil(longest / spacing_mm).astype(np.int64)
    for n in np.unique(n_div[n_div > 1]):
        sel = np.nonzero(n_div == n)[0]
        ij = np.array([(i, j) for i in range(n + 1) for j in range(n + 1 - i)
                       if not ((i == 0 and j in (0, n)) or (i == n and j == 0))], np.float64)
        bary = np.stack([ij[:, 0] / n, ij[:, 1] / n, 1.0 - ij.sum(axis=1) / n], axis=1)  # (B, 3)
        f = faces[sel]
        pts.append(np.einsum("bk,fkd->fbd", bary, vertices[f]).reshape(-1, 3))
        nn = np.einsum("bk,fkd->fbd", bary, normals[f]).reshape(-1, 3)
        nrm.append(nn / np.maximum(np.linalg.norm(nn, axis=1, keepdims=True), 1e-12))
        ids.append(f[:, np.argmax(bary, axis=1)].reshape(-1))
    return np.concatenate(pts), np.concatenate(nrm), np.concatenate(ids)


def phantom_from_mesh(
    mesh: AnatomyMesh,
    *,
    voxel_mm: float = 1.0,
    margin_mm: float = 20.0,
    tissues: PhantomTissues | None = None,
    noise_seed: int = 0,
) -> CTPhantom:
    """Voxelise a lumen mesh (normals into the lumen; polyp faces labelled POLYP) into a CT phantom.

    Args:
        mesh: the anatomy, world mm (e.g. :func:`~simreal.anatomy.colon.make_colon`).
        voxel_mm: isotropic voxel size, mm (0.2-10).
        margin_mm: how far the grid reaches beyond the mesh's bounding box, mm (>= wall thickness).
        tissues: HU and thicknesses (default :class:`PhantomTissues`).
        noise_seed: seed of the texture fields and the quantum noise.

    Returns:
        The :class:`CTPhantom` (label volume: :data:`COLON_LABEL` on lumen and wall, :data:`POLYP_LABEL`
        inside polyps, 0 elsewhere).

    Raises:
        SimrealError: bad sizes, a grid above :data:`MAX_VOXELS`, a mesh without wall faces.
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree

    from simreal.anatomy.texture import fractal_noise, value_noise

    tissues = tissues if tissues is not None else PhantomTissues()
    if not isinstance(tissues, PhantomTissues):
        raise SimrealError(f"tissues must be a PhantomTissues, got {type(tissues).__name__}")
    for name, v, lo, hi in (("voxel_mm", voxel_mm, 0.2, 10.0), ("margin_mm", margin_mm, 0.0, 500.0)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi):
            raise SimrealError(f"{name} must be a number in [{lo:g}, {hi:g}], got {v!r}")
    if margin_mm < tissues.wall_thickness_mm:
        raise SimrealError(f"margin_mm ({margin_mm:g}) must be at least the wall thickness ({tissues.wall_thickness_mm:g} mm)")
    if isinstance(noise_seed, bool) or not isinstance(noise_seed, int) or noise_seed < 0:
        raise SimrealError(f"noise_seed must be an integer >= 0, got {noise_seed!r}")
    wall_idx, polyp_idx = _vertex_sets(mesh)
    if len(wall_idx) < 4:
        raise SimrealError("the mesh has no wall (mucosa) faces to voxelise")
    affine, shape = _grid(mesh, float(voxel_mm), float(margin_mm))
    verts = mesh.vertices.astype(np.float64)
    normals = mesh.vertex_normals().astype(np.float64)
    # The wall as points at most a voxel apart (large triangles, e.g. on the end domes, get extra points),
    # so the shell of voxels near them below is closed. Unbalanced, non-compact trees answer queries
    # against a thin surface several times faster; voxels beyond the outer edge of the fat need no
    # distance, only a side (from the flood fill, below).
    wall_faces = mesh.faces[mesh.face_labels == MUCOSA]
    wall_pts, wall_nrm, wall_vid = surface_samples(verts, wall_faces, normals, float(voxel_mm))
    wall_tree = cKDTree(wall_pts, balanced_tree=False, compact_nodes=False)
    far_mm = tissues.wall_thickness_mm + 1.4 * tissues.fat_thickness_mm + 2.0 * voxel_mm
    vessel_pattern = mesh.vertex_texture[:, 1].astype(np.float64)

    n_total = int(np.prod(shape))
    t = tissues
    # Per-voxel results of the slab pass, stored z-major (Z, X, Y) and put into (X, Y, Z) order after.
    dist_all = np.empty(n_total, np.float32)
    vert_all = np.empty(n_total, np.int32)
    side_all = np.empty(n_total, bool)
    polyp_all = np.zeros(n_total, np.uint8)
    texture_all = np.empty(n_total, np.float32)
    fat_all = np.empty(n_total, np.float32)
    polyp_info = []
    for k, idx in polyp_idx.items():
        pv = verts[idx]
        centre = pv.mean(axis=0)
        radius = float(np.linalg.norm(pv - centre, axis=1).max()) + 2.0 * voxel_mm
        polyp_info.append((k, idx, centre, radius, cKDTree(pv)))
    # Chunks of whole z-slabs keep the work arrays small whatever the grid size.
    slab = max(1, 1_000_000 // (shape[0] * shape[1]))
    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    for z0 in range(0, shape[2], slab):
        z1 = min(shape[2], z0 + slab)
        kk = np.arange(z0, z1)
        idx3 = np.stack(
            [np.repeat(ii[..., None], len(kk), 2), np.repeat(jj[..., None], len(kk), 2),
             np.broadcast_to(kk, (shape[0], shape[1], len(kk)))], axis=-1,
        ).reshape(-1, 3)
        p = idx3 * voxel_mm + affine[:3, 3]
        dists, nearest = wall_tree.query(p, k=_SIDE_K, distance_upper_bound=far_mm, workers=1)
        near_k = np.isfinite(dists)
        sk = np.where(near_k, nearest, 0)
        vk = wall_vid[sk]
        # Side of the wall near it: the inverse-distance-weighted vote of the k nearest samples' normals.
        # Reliable only close to the surface (a sharp fold crest's normals point sideways further out);
        # voxels further away get their side from a flood fill below.
        side = np.einsum("ikj,ikj->ik", p[:, None, :] - wall_pts[sk], wall_nrm[sk])
        weight = np.where(near_k, 1.0 / np.maximum(dists, 1e-3), 0.0)
        polyp_k = np.zeros(len(p), np.uint8)
        for k, idx, centre, radius, tree in polyp_info:
            near = np.nonzero(np.linalg.norm(p - centre, axis=1) <= radius)[0]
            if not len(near):
                continue
            pd, pj = tree.query(p[near], k=min(_SIDE_K, len(idx)), workers=1)
            pd, pj = pd.reshape(len(near), -1), idx[pj.reshape(len(near), -1)]
            vote = np.einsum("ikj,ikj->ik", p[near][:, None, :] - verts[pj], normals[pj]) / np.maximum(pd, 1e-3)
            polyp_k[near[vote.sum(axis=1) < 0.0]] = k
        # idx3 runs over (i, j, k) with k fastest: store each slab z-major.
        block = (shape[0], shape[1], len(kk))
        sl = slice(z0 * shape[0] * shape[1], z1 * shape[0] * shape[1])

        def put(out: np.ndarray, values: np.ndarray) -> None:
            out[sl] = values.reshape(block).transpose(2, 0, 1).ravel()

        d0 = dists[:, 0]
        put(dist_all, np.where(np.isfinite(d0), d0, np.inf))
        put(vert_all, vk[:, 0])
        put(side_all, (side * weight).sum(axis=1) > 0.0)
        put(polyp_all, polyp_k)
        put(texture_all, fractal_noise(p, 3.0, noise_seed + 11, octaves=2))
        # The fat's outer edge undulates by +-40 % of its thickness (10-20 mm features).
        put(fat_all, t.wall_thickness_mm + t.fat_thickness_mm * (1.0 + 0.4 * value_noise(p, 15.0, noise_seed + 23)))
    zxy = (shape[2], shape[0], shape[1])

    def grid(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.reshape(zxy).transpose(1, 2, 0))

    dist, vi, side, inst_vol = grid(dist_all), grid(vert_all), grid(side_all), grid(polyp_all)
    texture, fat_edge = grid(texture_all), grid(fat_all)
    del dist_all, vert_all, side_all, polyp_all, texture_all, fat_all
    # Inside or outside, away from the wall: the wall's shell (voxels near it) separates the lumen from the
    # tissue, so every connected region off the shell lies wholly on one side; regions holding a
    # centerline point are lumen. Within the shell the local vote decides.
    shell_mm = 1.8 * float(voxel_mm)
    shell = dist <= shell_mm
    regions, _ = ndimage.label(~shell)
    inv = np.linalg.inv(affine)
    line_vox = np.rint(mesh.centerline @ inv[:3, :3].T + inv[:3, 3]).astype(np.int64)
    ok = ((line_vox >= 0) & (line_vox < np.asarray(shape))).all(axis=1)
    seeds = np.unique(regions[tuple(line_vox[ok].T)])
    seeds = seeds[seeds > 0]
    lumen = np.where(shell, side, np.isin(regions, seeds)) if len(seeds) else side
    del regions
    in_polyp = inst_vol > 0
    dist = np.minimum(dist, far_mm)
    hu_vol = np.where(dist <= t.wall_thickness_mm, t.wall_hu, np.where(dist <= fat_edge, t.fat_hu, t.tissue_hu))
    hu_vol = (hu_vol + t.texture_hu * texture).astype(np.float32)
    vessel = (dist >= t.vessel_depth_mm[0]) & (dist <= t.vessel_depth_mm[1]) & ~lumen
    hu_vol[vessel] += np.float32(t.vessel_hu - t.wall_hu) * vessel_pattern[vi[vessel]].astype(np.float32)
    hu_vol[lumen] = t.air_hu
    hu_vol[in_polyp] = (t.polyp_hu + t.texture_hu * texture[in_polyp]).astype(np.float32)
    lab_vol = np.where(lumen | (dist <= t.wall_thickness_mm), COLON_LABEL, 0).astype(np.uint8)
    lab_vol[in_polyp] = POLYP_LABEL
    inst_vol = np.where(in_polyp, inst_vol, 0).astype(np.uint8)
    if t.blur_mm > 0:
        hu_vol = ndimage.gaussian_filter(hu_vol, sigma=t.blur_mm / voxel_mm, mode="nearest").astype(np.float32)
    if t.noise_hu > 0:
        rng = np.random.default_rng(np.random.SeedSequence([noise_seed, 0xC7]))
        hu_vol += rng.standard_normal(hu_vol.shape, dtype=np.float32) * np.float32(t.noise_hu)
    meta = {
        "generator": "simreal.anatomy.ct_phantom.phantom_from_mesh",
        "voxel_mm": float(voxel_mm),
        "margin_mm": float(margin_mm),
        "noise_seed": int(noise_seed),
        "shape": list(shape),
        "tissues": asdict(t),
        "labels": {str(k): v for k, v in PHANTOM_LABELS.items()},
        "polyp_voxels": {str(k): int((inst_vol == k).sum()) for k in polyp_idx},
        "mesh": mesh.metadata,
        "units": "mm, HU",
    }
    return CTPhantom(
        ct=Volume(array=hu_vol.astype(np.float32, copy=False), affine=affine.copy()),
        labels=Volume(array=lab_vol.astype(np.float32), affine=affine.copy()),
        instances=Volume(array=inst_vol.astype(np.float32), affine=affine.copy()),
        mesh=mesh,
        metadata=meta,
    )


def make_ct_phantom(
    seed: int,
    *,
    voxel_mm: float = 1.0,
    margin_mm: float = 20.0,
    tissues: PhantomTissues | None = None,
    **colon_overrides: Any,
) -> CTPhantom:
    """The CT phantom of the procedural colon ``make_colon(seed, **colon_overrides)``.

    Args:
        seed: the colon's seed (also the phantom's noise seed): same arguments, same voxels.
        voxel_mm: isotropic voxel size, mm.
        margin_mm: grid margin beyond the colon's bounding box, mm.
        tissues: HU and thicknesses (default :class:`PhantomTissues`).
        **colon_overrides: passed to :func:`~simreal.anatomy.colon.make_colon` (e.g. ``length_mm=120.0``,
            ``n_polyps=2``).

    Returns:
        The :class:`CTPhantom`; ``metadata["seed"]`` and ``metadata["colon_overrides"]`` say how to rebuild it.
    """
    from simreal.anatomy.colon import make_colon

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SimrealError(f"phantom seed must be an integer >= 0, got {seed!r}")
    mesh = make_colon(seed, **colon_overrides)
    ph = phantom_from_mesh(mesh, voxel_mm=voxel_mm, margin_mm=margin_mm, tissues=tissues, noise_seed=seed)
    ph.metadata.update(generator="simreal.anatomy.ct_phantom.make_ct_phantom", seed=int(seed),
                       colon_overrides=json.loads(json.dumps(colon_overrides)))
    return ph


#: Files :func:`write_phantom` writes into its folder.
PHANTOM_FILES = {"ct": "ct.nii.gz", "labels": "labels.nii.gz", "instances": "instances.nii.gz",
                 "label_map": "labels.json", "metadata": "phantom.json"}


def write_phantom(phantom: CTPhantom, out_dir: str | Path) -> dict[str, Path]:
    """Write a phantom as NIfTI: ``ct.nii.gz`` (int16 HU), ``labels.nii.gz`` and ``instances.nii.gz``
    (uint8), ``labels.json`` (id -> name, for ``--label-map``) and ``phantom.json`` (its metadata).

    The folder is assembled beside ``out_dir`` and renamed into place when complete.

    Args:
        phantom: from :func:`make_ct_phantom` / :func:`phantom_from_mesh`.
        out_dir: the folder to create (must not exist).

    Returns:
        kind -> path of every file written (keys of :data:`PHANTOM_FILES`).

    Raises:
        SimrealError: ``out_dir`` exists or cannot be written.
    """
    import nibabel as nib

    out_dir = Path(out_dir)
    if out_dir.exists():
        raise SimrealError("output folder already exists; choose a new one or remove it", out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as exc:
        raise SimrealError(f"cannot create the output folder ({exc.strerror})", out_dir) from None
    try:
        ct = np.clip(np.rint(phantom.ct.array), -32768, 32767).astype(np.int16)
        for key, arr in (("ct", ct), ("labels", phantom.labels.array.astype(np.uint8)),
                         ("instances", phantom.instances.array.astype(np.uint8))):
            img = nib.Nifti1Image(arr, phantom.ct.affine)
            img.header.set_xyzt_units("mm")
            nib.save(img, str(tmp / PHANTOM_FILES[key]))
        (tmp / PHANTOM_FILES["label_map"]).write_text(
            json.dumps({str(k): v for k, v in sorted(phantom.label_names.items())}, indent=1) + "\n")
        (tmp / PHANTOM_FILES["metadata"]).write_text(json.dumps(phantom.metadata, sort_keys=True, indent=1) + "\n")
        tmp.rename(out_dir)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SimrealError(f"cannot write the phantom ({exc.strerror or exc})", out_dir) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {k: out_dir / v for k, v in PHANTOM_FILES.items()}
