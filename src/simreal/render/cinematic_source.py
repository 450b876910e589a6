"""What the cinematic renderer renders: a CT (or CT phantom) cropped for its medium, with its surfaces.

A :class:`CinematicSource` holds, for one patient and one kind of view:

* ``hu``: the HU volume the medium is made from, cropped tightly (STACK.md: empty space costs as much
  as bone) and resampled to at most ``max_voxels``;
* ``lumen`` (endoluminal views): the lumen wall mesh (:func:`simreal.anatomy.from_ct.lumen_mesh`, normals
  into the lumen, with its centerline for camera placement); it bounds the medium and is what depth is
  measured to;
* ``labels`` / ``instances`` on the same grid as ``hu`` (nearest-neighbour) and the ids that make the
  mask's class 1 (the phantom's polyps; the chosen label in external views);
* :meth:`surface_mesh`: the iso-surface at a HU level (external views; cached per level).

Every surface mesh carries face labels for the mask (class 1 where the label volume, just behind the
face, holds one of the mask ids), so the Embree cast that gives depth gives the mask too.

Sources come from files (:func:`load_ct_source`: NIfTI or a DICOM series, optional segmentation) or from
a procedural colon (:func:`phantom_source`, :mod:`simreal.anatomy.ct_phantom`).

Example:
    >>> src = phantom_source(3, view="endoluminal", voxel_mm=2.0, length_mm=60.0)   # doctest: +SKIP
    >>> src.hu.shape, len(src.lumen.faces), src.mask_classes                        # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from simreal.anatomy.mesh import AnatomyMesh
from simreal.data.volumes import Volume
from simreal.errors import SimrealError

View = Literal["endoluminal", "external"]
VIEWS = ("endoluminal", "external")

#: Smallest volume the cinematic renderer accepts: voxels and millimetres along every axis.
MIN_VOXELS_PER_AXIS = 8
MIN_EXTENT_MM = 16.0
#: Default largest medium grid, voxels (float32 density + RGB albedo: 16 bytes each).
MAX_VOXELS = 8_000_000
#: HU above which a voxel is part of the body (external views crop to it).
BODY_HU = -500.0


def check_volume(vol: Volume, what: str = "CT") -> None:
    """Raise one SimrealError naming the file unless ``vol`` is a finite 3-D volume big enough to render."""
    a = vol.array
    if a.ndim != 3:
        raise SimrealError(f"{what} is not a 3-D volume (shape {a.shape})", vol.path)
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        raise SimrealError(f"{what} holds {bad} NaN/inf voxels; fix or mask them before rendering", vol.path)
    extent = (np.asarray(a.shape) - 1) * vol.spacing_mm
    if min(a.shape) < MIN_VOXELS_PER_AXIS or extent.min() < MIN_EXTENT_MM:
        raise SimrealError(
            f"{what} too small to render: {'x'.join(map(str, a.shape))} voxels spanning "
            f"{'x'.join(f'{e:.0f}' for e in extent)} mm; need at least {MIN_VOXELS_PER_AXIS} voxels and "
            f"{MIN_EXTENT_MM:g} mm along every axis",
            vol.path,
        )


def _crop(vol: Volume, lo: np.ndarray, hi: np.ndarray) -> Volume:
    a = vol.array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    affine = vol.affine.copy()
    affine[:3, 3] = vol.affine[:3, :3] @ lo + vol.affine[:3, 3]
    return Volume(array=np.ascontiguousarray(a), affine=affine, path=vol.path)


def _resample_shape(shape: tuple[int, ...], spacing: np.ndarray, max_voxels: int) -> tuple[int, int, int]:
    """The grid shape after resampling to fit ``max_voxels``: the finest axes coarsened first (towards
    isotropic voxels), every axis keeping at least 2 voxels."""
    shape_a = np.asarray(shape, np.float64)
    if np.prod(shape_a) <= max_voxels:
        return tuple(int(n) for n in shape)  # type: ignore[return-value]
    extent = (shape_a - 1) * spacing
    lo, hi = float(spacing.min()), float(extent.max())
    for _ in range(60):  # bisection on the target voxel size
        mid = 0.5 * (lo + hi)
        n = np.maximum(2, np.floor(extent / np.maximum(spacing, mid)) + 1)
        if np.prod(n) > max_voxels:
            lo = mid
        else:
            hi = mid
    n = np.maximum(2, np.floor(extent / np.maximum(spacing, hi)) + 1)
    return tuple(int(v) for v in np.minimum(n, shape_a))  # type: ignore[return-value]


def resample(vol: Volume, shape: tuple[int, int, int], order: int) -> Volume:
    """``vol`` on a grid of ``shape`` spanning the same corner voxel centres (order 1: trilinear HU;
    order 0: nearest, for labels)."""
    from scipy import ndimage

    if tuple(vol.shape) == tuple(shape):
        return vol
    factors = [n / o for n, o in zip(shape, vol.shape)]
    a = ndimage.zoom(vol.array, factors, order=order, mode="nearest", grid_mode=False)
    step = np.array([(o - 1) / max(n - 1, 1) for o, n in zip(vol.shape, shape)])
    affine = vol.affine.copy()
    affine[:3, :3] = vol.affine[:3, :3] * step[None, :]
    return Volume(array=np.ascontiguousarray(a, dtype=np.float32), affine=affine, path=vol.path)


def label_faces(
    mesh: AnatomyMesh,
    labels: Volume | None,
    mask_ids: tuple[int, ...],
    *,
    instances: Volume | None = None,
    class_name: str = "label",
    depth_mm: float | None = None,
) -> AnatomyMesh:
    """``mesh`` with face class 1 where the label volume holds one of ``mask_ids`` just behind the face.

    The label is read at each face centroid moved ``depth_mm`` (default: half the largest voxel) against
    the face normal (normals point out of the tissue), nearest voxel.

    Returns:
        A new mesh with classes ``{0: "background", 1: class_name}`` (or the mesh's own classes when
        nothing is labelled) and instance ids from ``instances`` on class-1 faces.
    """
    if labels is None or not mask_ids:
        return mesh
    v = mesh.vertices.astype(np.float64)
    tri = v[mesh.faces]
    centroid = tri.mean(axis=1)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    depth = 0.5 * float(labels.spacing_mm.max()) if depth_mm is None else float(depth_mm)
    p = centroid - depth * n
    inv = np.linalg.inv(labels.affine)
    idx = np.rint(p @ inv[:3, :3].T + inv[:3, 3]).astype(np.int64)
    idx = np.clip(idx, 0, np.asarray(labels.shape) - 1)
    lab = np.rint(labels.array[tuple(idx.T)]).astype(np.int64)
    hit = np.isin(lab, np.asarray(mask_ids, np.int64))
    inst = np.zeros(len(mesh.faces), np.uint8)
    if instances is not None:
        inst = np.where(hit, np.clip(np.rint(instances.array[tuple(idx.T)]), 0, 255), 0).astype(np.uint8)
    return AnatomyMesh(
        vertices=mesh.vertices, faces=mesh.faces, face_labels=hit.astype(np.uint8), face_instances=inst,
        vertex_texture=mesh.vertex_texture, centerline=mesh.centerline, centerline_radius=mesh.centerline_radius,
        classes={0: "background", 1: class_name}, metadata={**mesh.metadata, "mask": class_name},
    )


@dataclass(eq=False)
class CinematicSource:
    """One patient (CT or phantom) prepared for one kind of view.

    Attributes:
        name: the patient's name (the sample records' ``group``).
        view: ``"endoluminal"`` or ``"external"``.
        hu: the cropped (and resampled) HU volume of the medium.
        labels: the label volume on ``hu``'s grid (nearest), or None.
        instances: instance ids on ``hu``'s grid, or None.
        lumen: endoluminal views: the lumen wall (world mm, normals into the lumen, centerline), with
            mask face labels.
        mask_ids: label ids that make mask class 1 (empty: no mask files).
        mask_name: the name of mask class 1.
        info: JSON-able description for ``dataset.json`` (files + sha256, or the phantom's seed).
    """

    name: str
    view: View
    hu: Volume
    labels: Volume | None = None
    instances: Volume | None = None
    lumen: AnatomyMesh | None = None
    mask_ids: tuple[int, ...] = ()
    mask_name: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    _surfaces: dict[float, AnatomyMesh] = field(default_factory=dict, repr=False)

    @property
    def has_mask(self) -> bool:
        return bool(self.mask_ids) and self.labels is not None

    @property
    def has_instances(self) -> bool:
        return self.has_mask and self.instances is not None

    def surface_mesh(self, level: float) -> AnatomyMesh:
        """The iso-surface of ``hu`` at ``level`` HU (normals towards lower HU, i.e. out of the tissue),
        specks dropped, lightly smoothed, with mask face labels; the lumen wall for endoluminal views.

        Raises:
            SimrealError: the volume does not cross ``level`` inside the crop.
        """
        if self.view == "endoluminal":
            assert self.lumen is not None
            return self.lumen
        key = float(level)
        if key not in self._surfaces:
            from simreal.anatomy.lumen import drop_specks, iso_surface

            a = self.hu.array
            if not (a.min() < level < a.max()):
                raise SimrealError(
                    f"no surface at {level:g} HU in this volume (HU {a.min():.0f} to {a.max():.0f}); choose "
                    "another preset", self.hu.path)
            verts, faces = iso_surface(a, level, self.hu.affine, inside="below", pad_value=float(a.min()) - 1.0,
                                       smooth_iterations=5)
            voxel = float(abs(np.linalg.det(self.hu.affine[:3, :3])))
            verts, faces = drop_specks(verts, faces, 8.0 * voxel)
            lo, hi = verts.min(axis=0), verts.max(axis=0)
            mesh = AnatomyMesh(
                vertices=verts, faces=faces, face_labels=np.zeros(len(faces), np.uint8),
                face_instances=np.zeros(len(faces), np.uint8), vertex_texture=np.zeros((len(verts), 2), np.float32),
                centerline=np.stack([lo, hi]), centerline_radius=np.full(2, 0.5 * float(np.linalg.norm(hi - lo))),
                classes={0: "background", 1: self.mask_name or "label"},
                metadata={"generator": "simreal.render.cinematic_source.surface_mesh", "level_hu": key},
            )
            self._surfaces[key] = label_faces(mesh, self.labels, self.mask_ids, instances=self.instances,
                                              class_name=self.mask_name or "label")
        return self._surfaces[key]

    def body_box(self) -> tuple[np.ndarray, float]:
        """Centre (3,) and radius (mm) of the bounding sphere of the body (voxels above BODY_HU) in ``hu``."""
        a = self.hu.array
        body = a > BODY_HU
        idx = np.argwhere(body) if body.any() else np.argwhere(np.ones_like(body))
        lo, hi = idx.min(axis=0).astype(np.float64), idx.max(axis=0).astype(np.float64)
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        world = corners @ self.hu.affine[:3, :3].T + self.hu.affine[:3, 3]
        centre = world.mean(axis=0)
        return centre, float(np.linalg.norm(world - centre, axis=1).max())


def file_digest(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (sorted names and bytes): a DICOM series."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    for f in files:
        if path.is_dir():
            h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _crop_box(mask: np.ndarray, margin_vox: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nz = np.argwhere(mask)
    lo = np.maximum(nz.min(axis=0) - margin_vox, 0)
    hi = np.minimum(nz.max(axis=0) + margin_vox + 1, mask.shape)
    return lo, hi


def prepare_source(
    ct: Volume,
    *,
    view: str,
    name: str,
    labels: Volume | None = None,
    label_id: int | None = None,
    label_name: str | None = None,
    label_names: dict[int, str] | None = None,
    instances: Volume | None = None,
    mask_ids: tuple[int, ...] | None = None,
    mask_name: str | None = None,
    margin_mm: float = 10.0,
    max_voxels: int = MAX_VOXELS,
    lumen_hu: float | None = None,
    info: dict[str, Any] | None = None,
) -> CinematicSource:
    """Crop, resample and mesh a CT (already on the label volume's grid and axis order) for one view.

    Args:
        ct: the CT, HU.
        view: ``"endoluminal"`` (needs ``labels`` and ``label_id``: the hollow organ) or ``"external"``.
        name: the patient's name.
        labels: the label volume on ``ct``'s grid, or None.
        label_id, label_name, label_names: the organ (endoluminal: whose lumen; external: the mask).
        instances: instance ids on ``ct``'s grid (the phantom's polyps), or None.
        mask_ids: label ids of mask class 1; default: none for endoluminal views of a CT, ``(label_id,)``
            for external views with a label.
        mask_name: name of mask class 1 (default ``label_name``).
        margin_mm: crop margin around the lumen (endoluminal) or the body (external), mm.
        max_voxels: largest medium grid; bigger crops are resampled (trilinear HU, nearest labels).
        lumen_hu: air / wall threshold of the lumen, HU (default :data:`~simreal.anatomy.lumen.LUMEN_HU`).
        info: JSON-able description for ``dataset.json``.

    Raises:
        SimrealError: NaN voxels, a volume too small, an unknown view, an endoluminal view without a label,
            a label absent from the segmentation (listing those present), no air in the organ.
    """
    from simreal.anatomy.from_ct import lumen_mesh
    from simreal.anatomy.lumen import LUMEN_HU

    if view not in VIEWS:
        raise SimrealError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    if isinstance(max_voxels, bool) or not isinstance(max_voxels, int) or max_voxels < 512:
        raise SimrealError(f"max_voxels must be an integer >= 512, got {max_voxels!r}")
    check_volume(ct, "CT")
    if labels is not None and labels.shape != ct.shape:
        raise SimrealError(f"label volume shape {labels.shape} differs from the CT's {ct.shape}", labels.path)
    level = LUMEN_HU if lumen_hu is None else float(lumen_hu)
    spacing = ct.spacing_mm
    margin = np.ceil(margin_mm / spacing).astype(np.int64)
    lumen = None
    if view == "endoluminal":
        if labels is None or label_id is None:
            raise SimrealError("endoluminal views need a segmentation and the hollow organ's label "
                               "(--labels SEG --label colon), or a phantom (--phantom-seed)", ct.path)
        lumen = lumen_mesh(ct, labels, int(label_id), label_name=label_name, label_names=label_names, lumen_hu=level)
        inv = np.linalg.inv(ct.affine)
        vox = lumen.vertices.astype(np.float64) @ inv[:3, :3].T + inv[:3, 3]
        lo = np.maximum(np.floor(vox.min(axis=0)).astype(np.int64) - margin, 0)
        hi = np.minimum(np.ceil(vox.max(axis=0)).astype(np.int64) + margin + 1, ct.shape)
        ids = tuple(mask_ids) if mask_ids is not None else ()
    else:
        body = ct.array > BODY_HU
        if not body.any():
            raise SimrealError(f"no body in this CT: no voxel above {BODY_HU:g} HU (is it in HU?)", ct.path)
        lo, hi = _crop_box(body, margin)
        ids = tuple(mask_ids) if mask_ids is not None else ((int(label_id),) if label_id is not None else ())
    if labels is not None and ids:
        present = set(np.unique(np.rint(labels.array)).astype(np.int64).tolist())
        if not present & set(ids):
            names = label_names or {}
            listed = ", ".join(f"{names.get(v, 'label')} ({v})" for v in sorted(present - {0})) or "none"
            raise SimrealError(
                f"label {mask_name or label_name or ids[0]} (id {', '.join(map(str, ids))}) is not present in the "
                f"segmentation; present: {listed}", labels.path)
    hu = _crop(ct, lo, hi)
    shape = _resample_shape(hu.shape, hu.spacing_mm, max_voxels)
    hu_r = resample(hu, shape, order=1)
    lab_r = inst_r = None
    if labels is not None:
        lab_r = resample(_crop(labels, lo, hi), shape, order=0)
    if instances is not None:
        inst_r = resample(_crop(instances, lo, hi), shape, order=0)
    mname = mask_name or label_name or (f"label_{ids[0]}" if ids else "")
    if lumen is not None and ids:
        # Label the lumen faces from the full-resolution volumes (the crop's are coarser).
        lumen = label_faces(lumen, labels, ids, instances=instances, class_name=mname)
    return CinematicSource(
        name=name, view=view, hu=hu_r, labels=lab_r, instances=inst_r, lumen=lumen,  # type: ignore[arg-type]
        mask_ids=ids if labels is not None else (), mask_name=mname,
        info={**(info or {}), "view": view, "crop_voxels": [int(x) for x in hu.shape], "grid_voxels": list(shape),
              "grid_spacing_mm": [float(x) for x in hu_r.spacing_mm], "lumen_hu": level if lumen is not None else None,
              "mask": mname if ids and labels is not None else None},
    )


def load_ct_source(
    ct: str | Path,
    *,
    view: str,
    labels: str | Path | None = None,
    label: str | int | None = None,
    label_map: str | Path | None = None,
    margin_mm: float = 10.0,
    max_voxels: int = MAX_VOXELS,
    name: str | None = None,
) -> CinematicSource:
    """A CT from files: NIfTI or a DICOM series folder, with an optional segmentation on its grid.

    Args:
        ct: the CT (HU).
        view: ``"endoluminal"`` or ``"external"``.
        labels: segmentation (NIfTI or DICOM series) on the CT's voxel grid (axis flips allowed).
        label: the organ: a name from the label map (e.g. ``"colon"``) or a numeric id; endoluminal
            views fly through its lumen, external views mask it.
        label_map: JSON ``{"id": "name"}``; default the bundled TotalSegmentator v2 map.
        margin_mm, max_voxels: see :func:`prepare_source`.
        name: the patient's name (default the CT file's stem).

    Raises:
        SimrealError: unreadable files, NaN voxels, a volume too small, different grids, an unknown label
            or one absent from the segmentation, a label without a segmentation.
    """
    from simreal.anatomy.from_ct import BUNDLED_LABEL_MAP, load_label_map, resolve_label
    from simreal.data.volumes import read_volume, reorient_like, same_grid

    ct_path = Path(ct)
    if label is not None and labels is None:
        raise SimrealError("--label needs --labels (the segmentation it is in)")
    if labels is not None and label is None:
        raise SimrealError("--labels needs --label (which organ: a name such as colon, or an id)")
    names = load_label_map(label_map) if label is not None else {}
    label_id = label_name = None
    if label is not None:
        label_id, label_name = resolve_label(label, names, label_map or BUNDLED_LABEL_MAP)
    vol = read_volume(ct_path)
    check_volume(vol, "CT")
    lab = None
    info: dict[str, Any] = {"ct": str(ct_path.resolve()), "ct_sha256": file_digest(ct_path)}
    if labels is not None:
        lab = read_volume(labels)
        if lab.shape != vol.shape:
            raise SimrealError(f"label volume shape {lab.shape} differs from the CT {vol.path} shape {vol.shape}", lab.path)
        if not same_grid(vol, lab):
            raise SimrealError(f"label volume does not lie on the voxel grid of the CT {vol.path} (different affines)", lab.path)
        vol = reorient_like(vol, lab)
        info.update(labels=str(Path(labels).resolve()), labels_sha256=file_digest(labels), label=label_name,
                    label_id=int(label_id) if label_id is not None else None,
                    label_map=str(label_map) if label_map else "totalsegmentator_v2 (bundled)")
    stem = ct_path.name.split(".")[0] if ct_path.is_file() else ct_path.name
    return prepare_source(
        vol, view=view, name=name or stem, labels=lab, label_id=label_id, label_name=label_name, label_names=names,
        margin_mm=margin_mm, max_voxels=max_voxels, info=info,
    )


def phantom_source(
    seed: int,
    *,
    view: str = "endoluminal",
    voxel_mm: float = 1.0,
    margin_mm: float = 10.0,
    max_voxels: int = MAX_VOXELS,
    **colon_overrides: Any,
) -> CinematicSource:
    """The CT phantom of procedural colon ``seed`` (:func:`~simreal.anatomy.ct_phantom.make_ct_phantom`):
    the lumen of its colon label, with the polyps as mask class 1 and their instances.

    Args:
        seed: the colon's seed.
        view: ``"endoluminal"`` or ``"external"``.
        voxel_mm: phantom voxel size, mm.
        margin_mm, max_voxels: see :func:`prepare_source`.
        **colon_overrides: passed to :func:`~simreal.anatomy.colon.make_colon` (e.g. ``length_mm``).
    """
    from simreal.anatomy.ct_phantom import COLON_LABEL, PHANTOM_LABELS, POLYP_LABEL, make_ct_phantom

    ph = make_ct_phantom(seed, voxel_mm=voxel_mm, **colon_overrides)
    info = {"phantom": {"generator": "simreal.anatomy.ct_phantom.make_ct_phantom", "seed": int(seed),
                        "voxel_mm": float(voxel_mm), "colon_overrides": ph.metadata.get("colon_overrides", {})}}
    return prepare_source(
        ph.ct, view=view, name=f"phantom-{seed}", labels=ph.labels, label_id=COLON_LABEL, label_name="colon",
        label_names=dict(PHANTOM_LABELS), instances=ph.instances, mask_ids=(POLYP_LABEL,), mask_name="polyp",
        margin_mm=margin_mm, max_voxels=max_voxels, info=info,
    )
