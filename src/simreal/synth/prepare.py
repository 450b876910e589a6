"""CT volumes -> a dataset of axial slices (or 2x2 montages): HU, windowed image and organ mask.

Each CT (NIfTI file or DICOM series) and its optional label volume (:mod:`simreal.synth.sources`: NIfTI,
DICOM mask series, per-slice PNG masks) are read, checked (orientation known and not oblique, one voxel
grid, the asked labels present) and brought to one axis order before slicing.

**Orientation** (stated in dataset.json's ``ct``: ``image_axes = "PL"``, ``slice_axis = "S"``): every
volume is reoriented to array axes (L, P, S) (:func:`simreal.data.volumes.reorient`), whatever its
storage (DICOM LPS, NIfTI RAS, LAS, permuted). A slice is ``array[:, :, k].T``: image rows run
anterior -> posterior (the top of the image is anterior) and columns run from the patient's right to
their left (patient right on the image's left): the radiological display of any DICOM viewer. The slice
index ``k`` runs inferior -> superior; ``params.z_mm`` is the slice's world z (RAS/LPS "S", mm). The
same CT stored as NIfTI or as DICOM gives the same slices, byte for byte.

**Per sample** (files: "image", "ct", and "mask" when labels are given):

* ``ct/<id>.tiff``: float32 HU (after optional square padding with air, ``pad_hu``, and resizing:
  bilinear with Gaussian anti-aliasing when shrinking, ``skimage.transform.resize``);
* ``image/<id>.png``: the HU clipped to the window ``[min, max]`` (paper: [-1500, 100]) and mapped to
  ``floor((hu - min) / (max - min) * 255)`` (truncation, as the released SemiCS2 preprocessing), grey
  replicated to RGB;
* ``mask/<id>.png``: class ids (0 = background, 1.. = the ``labels`` in order), resized nearest-neighbour;
* params: ``slice_index``, ``n_slices``, ``z_mm``, ``spacing_mm`` ([row, column] pixel size in mm after
  resizing), ``slice_spacing_mm``, ``native_size`` ([rows, columns] before padding), ``pad_px``
  ([top, bottom, left, right] native pixels), ``source_file`` (the slice's DICOM file, when known);
* ``group``: the patient / volume id, so splits are by patient (:func:`patient_split`), never by slice.

**Montages** (``montage=True``, methods.md 3.2 and SemiCS2 ``datalistgenerate.py``): in the organ's
z-extent ``[kmin, kmax]`` (the whole volume without labels) trimmed to
``[int(kmin + 0.1 (kmax - kmin)), int(kmax - 0.1 (kmax - kmin))]`` with ``gap = (trimmed extent) // 4``,
a montage holds the slices ``start + i * gap`` (i = 0..3) for ``start = trimmed kmin + offset``; offsets
0, ``every``, 2 ``every``, ... < ``gap`` give one montage each (offset 0 alone is the released code's one
montage per volume). Tiles are ``size // 2`` pixels and placed column-major as the released code
(``hstack(vstack(s0, s1), vstack(s2, s3))``): s0 top-left, s1 bottom-left, s2 top-right, s3 bottom-right.
Montage params hold lists (``slice_index``, ``z_mm``: one per tile, in that order) and ``montage``.

Example:
    >>> cases = [CTCase("ircadb/patient1/PATIENT_DICOM", "ircadb/patient1/MASKS_DICOM/liver", "patient1")]  # doctest: +SKIP
    >>> prepare_ct_dataset(cases, "out/ct_slices", PrepareConfig(labels=("liver",)))                          # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np

from simreal.data.format import CTInfo, DatasetInfo, LabelKind, SampleRecord
from simreal.data.volumes import Volume, obliquity_deg, read_volume, reorient, same_grid
from simreal.errors import SimrealError

__all__ = [
    "ARRAY_AXCODES",
    "DEFAULT_WINDOW_HU",
    "AxialVolume",
    "CTCase",
    "LabelSpec",
    "PrepareConfig",
    "default_group",
    "fit_square",
    "load_case",
    "montage_starts",
    "organ_extent",
    "parse_label",
    "parse_window",
    "patient_split",
    "prepare_ct_dataset",
    "slice_indices",
    "tile_montage",
    "window_to_uint8",
]

#: The HU window of the paper (methods.md 3.2): [-1500, 100].
DEFAULT_WINDOW_HU = (-1500.0, 100.0)
#: Array axes every volume is brought to before slicing: i -> patient Left, j -> Posterior, k -> Superior.
ARRAY_AXCODES = ("L", "P", "S")
#: Image rows run towards Posterior, columns towards the patient's Left; slices towards Superior.
IMAGE_AXES = "PL"
SLICE_AXIS = "S"
ORIENTATION = (
    "axial slices in radiological display: image rows run anterior -> posterior (top = anterior), columns "
    "run from the patient's right to left (patient right on the image's left); slice_index runs inferior -> "
    "superior; z_mm is the world z (S) of the slice centre in mm"
)
#: Folder names too generic to name a patient: the CT's parent folder names the group instead.
_GENERIC_NAMES = {"dicom", "dicom_anon", "patient_dicom", "ct", "images", "image", "series", "data", "scans"}

ZRange = Literal["organ", "all"]


# --- pure helpers ---------------------------------------------------------------------------------------


def parse_window(window: str | Sequence[float]) -> tuple[float, float]:
    """A HU window from ``"-1500,100"`` or a pair of numbers, checked: finite and min < max.

    Raises:
        SimrealError: not two numbers, or min >= max.
    """
    if isinstance(window, str):
        parts = [p.strip() for p in window.split(",")]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise SimrealError(f"window must be 'MIN,MAX' in HU (e.g. -1500,100), got {window!r}") from None
    else:
        values = [float(v) for v in window]
    if len(values) != 2 or not all(np.isfinite(values)):
        raise SimrealError(f"window must be two finite numbers MIN,MAX in HU, got {window!r}")
    lo, hi = values
    if lo >= hi:
        raise SimrealError(f"window min must be below max, got [{lo:g}, {hi:g}] HU")
    return lo, hi


def window_to_uint8(hu: np.ndarray, window: tuple[float, float] = DEFAULT_WINDOW_HU) -> np.ndarray:
    """HU -> 8-bit grey: clip to ``window``, scale to [0, 255], truncate (as SemiCS2's preprocessing).

    Args:
        hu: (H, W) CT values in HU.
        window: (min, max) HU, min < max.

    Returns:
        (H, W) uint8: ``floor((clip(hu, min, max) - min) / (max - min) * 255)``.

    Example:
        >>> window_to_uint8(np.array([[-2000.0, -700.0, 100.0]]), (-1500.0, 100.0)).tolist()
        [[0, 127, 255]]
    """
    lo, hi = parse_window(window)
    x = (np.clip(np.asarray(hu, dtype=np.float64), lo, hi) - lo) / (hi - lo) * 255.0
    return np.floor(x + 1e-9).astype(np.uint8)  # + 1e-9: 127.49999999 from round-off is still 127


def fit_square(
    image: np.ndarray, size: int | None, *, pad_value: float = 0.0, order: int = 1
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Pad an (H, W) slice to a centred square and resize it to ``size`` x ``size``.

    Args:
        image: (H, W) array.
        size: output side in pixels, or None to keep the slice as it is (no padding).
        pad_value: value of the padding (HU of air for CT, 0 for masks).
        order: 1 = bilinear with Gaussian anti-aliasing when shrinking (HU), 0 = nearest (class ids).

    Returns:
        ``(out, (top, bottom, left, right))``: the slice (float32 for order 1, input dtype for order 0) and
        the padding added, in input pixels.
    """
    from skimage.transform import resize

    if size is None:
        return image, (0, 0, 0, 0)
    h, w = image.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    pad = (top, side - h - top, left, side - w - left)
    if side != h or side != w:
        image = np.pad(image, ((pad[0], pad[1]), (pad[2], pad[3])), constant_values=pad_value)
    if side == size:
        out = image
    elif order == 0:
        out = resize(image, (size, size), order=0, anti_aliasing=False, preserve_range=True).astype(image.dtype)
    else:
        out = resize(image.astype(np.float64), (size, size), order=1, anti_aliasing=size < side, preserve_range=True)
    return (out.astype(np.float32) if order != 0 else out), pad


def tile_montage(tiles: Sequence[np.ndarray]) -> np.ndarray:
    """Four equal (H, W) tiles -> one (2H, 2W) montage, column-major as SemiCS2:
    tiles[0] top-left, tiles[1] bottom-left, tiles[2] top-right, tiles[3] bottom-right."""
    if len(tiles) != 4 or len({t.shape for t in tiles}) != 1:
        raise SimrealError(f"a montage needs 4 tiles of one size, got {[t.shape for t in tiles]}")
    return np.hstack((np.vstack((tiles[0], tiles[1])), np.vstack((tiles[2], tiles[3]))))


def organ_extent(mask: np.ndarray) -> tuple[int, int] | None:
    """(first, last) slice index k of a (X, Y, Z) mask that holds any non-zero voxel, or None."""
    ks = np.flatnonzero(np.asarray(mask).reshape(-1, mask.shape[-1]).any(axis=0))
    return None if ks.size == 0 else (int(ks[0]), int(ks[-1]))


def slice_indices(extent: tuple[int, int], every: int = 1) -> list[int]:
    """Every ``every``-th slice index from ``extent[0]`` to ``extent[1]`` (inclusive)."""
    if every < 1:
        raise SimrealError(f"every must be >= 1, got {every}")
    return list(range(extent[0], extent[1] + 1, every))


def montage_starts(extent: tuple[int, int], every: int = 1) -> tuple[list[list[int]], int]:
    """The slice quadruples of the montages inside a z-extent (SemiCS2 ``select_slices``, generalised).

    Args:
        extent: (kmin, kmax) of the organ.
        every: step between the first slices of successive montages.

    Returns:
        ``(montages, gap)``: each montage's 4 slice indices ``start + i * gap``; the first montage is the
        released code's ``[zmin + i * gap]``.

    Raises:
        SimrealError: the trimmed extent is shorter than 4 slices (no room for 4 distinct slices).

    Example:
        >>> montages, gap = montage_starts((0, 100), every=5)
        >>> montages[:2], gap, len(montages)
        ([[10, 30, 50, 70], [15, 35, 55, 75]], 20, 4)
    """
    if every < 1:
        raise SimrealError(f"every must be >= 1, got {every}")
    kmin, kmax = extent
    lo, hi = int(kmin + (kmax - kmin) * 0.10), int(kmax - (kmax - kmin) * 0.10)
    gap = (hi - lo) // 4
    if gap < 1:
        raise SimrealError(
            f"the organ spans slices {kmin}..{kmax}: after trimming 10% at each end there is no room for 4 "
            "distinct montage slices (use slices, not --montage)"
        )
    return [[lo + o + i * gap for i in range(4)] for o in range(0, gap, every)], gap


@dataclass(frozen=True)
class LabelSpec:
    """One label to extract: a name, and optionally its id in the label volume.

    Without an id: a binary label volume (one non-zero value) is read as "non-zero = this label"; a
    multi-label volume is looked up in the label map (default: the bundled TotalSegmentator v2 map, where
    liver = 5).
    """

    name: str
    id: int | None = None


def parse_label(text: str | LabelSpec) -> LabelSpec:
    """``"liver"`` or ``"liver=5"`` -> :class:`LabelSpec`."""
    if isinstance(text, LabelSpec):
        return text
    name, _, value = str(text).partition("=")
    name = name.strip()
    if not name:
        raise SimrealError(f"a label needs a name (NAME or NAME=ID), got {text!r}")
    if not value:
        return LabelSpec(name)
    try:
        lid = int(value)
    except ValueError:
        raise SimrealError(f"label id must be a whole number (NAME=ID), got {text!r}") from None
    if lid <= 0:
        raise SimrealError(f"label id must be positive (0 is background), got {text!r}")
    return LabelSpec(name, lid)


def default_group(ct: str | Path) -> str:
    """The patient / volume id used when none is given: the CT's name without ``.nii(.gz)``, or its
    parent folder's name when the CT folder has a generic name (``PATIENT_DICOM``, ``DICOM_anon``, ...)."""
    path = Path(ct)
    name = re.sub(r"\.nii(\.gz)?$", "", path.name, flags=re.IGNORECASE)
    if name.lower() in _GENERIC_NAMES and path.resolve().parent.name:
        return path.resolve().parent.name
    return name


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "volume"


# --- configuration ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CTCase:
    """One CT volume and its labels.

    Args:
        ct: NIfTI file or DICOM series folder (HU).
        labels: label source (:func:`simreal.synth.sources.read_label_volume`) or None.
        group: patient / volume id (default :func:`default_group` of ``ct``).
    """

    ct: str | Path
    labels: str | Path | None = None
    group: str | None = None

    def group_id(self) -> str:
        return self.group if self.group else default_group(self.ct)


@dataclass(frozen=True)
class PrepareConfig:
    """How CT volumes become slices.

    Args:
        window_hu: (min, max) HU of the 8-bit "image" (paper: (-1500, 100)); min < max.
        size: output side in pixels (slices are padded to a square with ``pad_hu`` and resized), or None
            to keep the native size. With ``montage`` the montage is ``size`` and each tile ``size // 2``.
        montage: write 2x2 montages (module docstring) instead of single slices.
        every: keep every K-th slice (slices) or every K-th montage offset (montages).
        z_range: "organ": the slices from the first to the last that hold a label (all slices when
            there are no labels); "all": every slice.
        labels: the labels to extract (``"liver"``, ``"liver=5"``), class ids 1.. in this order.
        label_map: JSON ``{"id": "name"}`` for names in multi-label volumes (default: TotalSegmentator v2).
        pad_hu: HU of the padding that makes a slice square (air).
        max_obliquity_deg: largest tilt of the voxel axes from the patient axes accepted (degrees).
    """

    window_hu: tuple[float, float] = DEFAULT_WINDOW_HU
    size: int | None = 256
    montage: bool = False
    every: int = 1
    z_range: ZRange = "organ"
    labels: tuple[str, ...] = ()
    label_map: str | None = None
    pad_hu: float = -1024.0
    max_obliquity_deg: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "window_hu", parse_window(self.window_hu))
        object.__setattr__(self, "labels", tuple(str(v) for v in self.labels))
        if self.size is not None and (not isinstance(self.size, int) or self.size < 2):
            raise SimrealError(f"size must be an integer >= 2 (pixels) or None, got {self.size!r}")
        if self.montage and self.size is not None and self.size % 2:
            raise SimrealError(f"with montage the size must be even (each tile is size / 2), got {self.size}")
        if not isinstance(self.every, int) or self.every < 1:
            raise SimrealError(f"every must be an integer >= 1, got {self.every!r}")
        if self.z_range not in ("organ", "all"):
            raise SimrealError(f"z_range must be 'organ' or 'all', got {self.z_range!r}")
        if not (0 <= self.max_obliquity_deg < 45):
            raise SimrealError(f"max_obliquity_deg must be in [0, 45), got {self.max_obliquity_deg}")
        specs = [parse_label(v) for v in self.labels]
        names = [s.name.lower() for s in specs]
        if len(set(names)) != len(names):
            raise SimrealError(f"a label is named twice: {list(self.labels)}")
        if len(specs) > 255:
            raise SimrealError("at most 255 labels fit an 8-bit mask")

    def label_specs(self) -> list[LabelSpec]:
        return [parse_label(v) for v in self.labels]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["window_hu"] = list(self.window_hu)
        d["labels"] = list(self.labels)
        return d


# --- reading one case ---------------------------------------------------------------------------------------


@dataclass
class AxialVolume:
    """A CT (and its class mask) in array axes (L, P, S), ready to slice.

    Attributes:
        hu: (X, Y, Z) float32 HU; ``hu[:, :, k].T`` is slice k as displayed (rows A->P, columns R->L).
        mask: (X, Y, Z) uint8 class ids (0 = background, 1.. = labels in order) or None.
        affine: (4, 4) voxel -> world mm (RAS) of that array.
        group: patient / volume id.
        ct_path, labels_path: where they were read.
        slice_files: the DICOM file of each slice k, or None.
        label_ids: label name -> id in the label volume.
    """

    hu: np.ndarray
    mask: np.ndarray | None
    affine: np.ndarray
    group: str
    ct_path: Path
    labels_path: Path | None = None
    slice_files: tuple[Path, ...] | None = None
    label_ids: dict[str, int] = field(default_factory=dict)

    @property
    def n_slices(self) -> int:
        return int(self.hu.shape[2])

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """(row, column, slice) spacing in mm: rows step along P (j), columns along L (i), slices along S (k)."""
        sp = np.linalg.norm(self.affine[:3, :3], axis=0)
        return float(sp[1]), float(sp[0]), float(sp[2])

    def z_mm(self, k: int) -> float:
        """World z (S, mm) of the centre of slice k."""
        x, y = (self.hu.shape[0] - 1) / 2.0, (self.hu.shape[1] - 1) / 2.0
        return float((self.affine @ np.array([x, y, float(k), 1.0]))[2])

    def extent(self, z_range: ZRange) -> tuple[int, int]:
        """Slices to use: the labels' z-extent for "organ" (whole volume without labels), else all."""
        if z_range == "organ" and self.mask is not None:
            ext = organ_extent(self.mask)
            if ext is not None:
                return ext
        return 0, self.n_slices - 1


def _check_orientation(vol: Volume, max_obliquity_deg: float) -> None:
    if not vol.orientation_known:
        raise SimrealError(
            "the volume has no orientation (NIfTI qform_code and sform_code are both 0): which way is anterior "
            "or left is unknown; set an sform/qform (e.g. nibabel img.set_sform(affine, code=1))",
            vol.path,
        )
    cols = vol.affine[:3, :3] / np.linalg.norm(vol.affine[:3, :3], axis=0, keepdims=True)
    gram = np.abs(cols.T @ cols - np.eye(3))
    if gram[0, 1] > 1e-3:
        raise SimrealError(
            f"the in-plane voxel axes are not orthogonal (cosine {gram[0, 1]:.3g}): damaged orientation "
            "(DICOM ImageOrientationPatient / NIfTI affine)",
            vol.path,
        )
    if max(gram[0, 2], gram[1, 2]) > 1e-3:
        shear = float(np.degrees(np.arcsin(min(1.0, np.hypot(gram[0, 2], gram[1, 2])))))
        raise SimrealError(
            f"the slices are stacked {shear:.2f} degrees off their normal (gantry-tilted or oblique series): slices "
            "would not be axial; resample it to an axis-aligned grid first",
            vol.path,
        )
    tilt = obliquity_deg(vol.affine)
    if tilt > max_obliquity_deg:
        raise SimrealError(
            f"the volume is oblique or gantry-tilted ({tilt:.2f} degrees off the patient axes, at most "
            f"{max_obliquity_deg:g} accepted): its slices would not be axial; resample it to an axis-aligned grid first",
            vol.path,
        )


def _resolve_label_ids(specs: Sequence[LabelSpec], labels: np.ndarray, path: Path | None, label_map: str | None) -> dict[str, int]:
    lo, hi = int(labels.min()), int(labels.max())
    if lo >= 0 and hi < 1 << 16:  # the usual case: counting is much faster than sorting 10^7 voxels
        present = np.flatnonzero(np.bincount(labels.ravel(), minlength=hi + 1))
    else:
        present = np.unique(labels)
    nonzero = [int(v) for v in present if v != 0]
    if not nonzero:
        raise SimrealError("the label volume is empty (all zero): this CT has no labels", path)
    names: dict[int, str] | None = None
    out: dict[str, int] = {}
    for spec in specs:
        if spec.id is not None:
            lid = spec.id
        elif len(nonzero) == 1 and label_map is None:
            lid = nonzero[0]  # a binary mask: non-zero = this label
        else:
            from simreal.anatomy.from_ct import BUNDLED_LABEL_MAP, load_label_map, resolve_label

            names = names if names is not None else load_label_map(label_map)
            lid, _ = resolve_label(spec.name, names, label_map or BUNDLED_LABEL_MAP)
        if lid not in nonzero:
            raise SimrealError(
                f"label {spec.name!r} (id {lid}) does not occur in the label volume (ids present: "
                f"{nonzero[:12]}{' ...' if len(nonzero) > 12 else ''}): this CT has no {spec.name}",
                path,
            )
        if lid in out.values():
            other = next(k for k, v in out.items() if v == lid)
            raise SimrealError(f"labels {other!r} and {spec.name!r} are both id {lid}; give NAME=ID for each", path)
        out[spec.name] = lid
    return out


def load_case(case: CTCase, config: PrepareConfig) -> AxialVolume:
    """Read a CT and its labels, check them and bring both to array axes (L, P, S).

    Raises:
        SimrealError: unreadable files, missing or oblique orientation, a DICOM series with missing slices,
            CT and labels on different grids, labels asked for but absent (one message each, naming the file).
    """
    from simreal.synth.sources import read_label_volume

    ct = read_volume(case.ct)
    _check_orientation(ct, config.max_obliquity_deg)
    specs = config.label_specs()
    if specs and case.labels is None:
        raise SimrealError(f"labels {list(config.labels)} asked for but no label volume given for this CT", ct.path)
    mask = None
    label_ids: dict[str, int] = {}
    labels_path = None
    if case.labels is not None:
        if not specs:
            raise SimrealError("a label volume is given but no label to extract (--label NAME)", case.labels)
        lab = read_label_volume(case.labels, ct)
        labels_path = lab.path
        _check_orientation(lab, config.max_obliquity_deg)
        if lab.shape != ct.shape or not same_grid(ct, lab):
            what = f"shape {lab.shape} vs {ct.shape}" if lab.shape != ct.shape else "same shape, different position or spacing"
            raise SimrealError(f"label volume does not lie on the voxel grid of the CT {ct.path} ({what})", lab.path)
        lab = reorient(lab, ARRAY_AXCODES)
        ids = np.rint(lab.array).astype(np.int32)
        label_ids = _resolve_label_ids(specs, ids, lab.path, config.label_map)
        mask = np.zeros(ids.shape, np.uint8)
        for cls, lid in enumerate(label_ids.values(), start=1):
            mask[ids == lid] = cls
    ct = reorient(ct, ARRAY_AXCODES)
    return AxialVolume(
        hu=ct.array,
        mask=mask,
        affine=ct.affine,
        group=case.group_id(),
        ct_path=Path(case.ct),
        labels_path=labels_path,
        slice_files=ct.slice_files,
        label_ids=label_ids,
    )


# --- samples ------------------------------------------------------------------------------------------------


def _slice_sample(vol: AxialVolume, k: int, config: PrepareConfig, tile: int | None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    hu = vol.hu[:, :, k].T
    rows, cols = hu.shape
    ct, pad = fit_square(hu, tile, pad_value=config.pad_hu, order=1)
    arrays: dict[str, np.ndarray] = {"ct": np.ascontiguousarray(ct, dtype=np.float32)}
    if vol.mask is not None:
        m, _ = fit_square(vol.mask[:, :, k].T, tile, pad_value=0, order=0)
        arrays["mask"] = np.ascontiguousarray(m, dtype=np.uint8)
    row_mm, col_mm, slice_mm = vol.spacing_mm
    side = max(rows, cols)
    scale = 1.0 if tile is None else side / tile
    params: dict[str, Any] = {
        "slice_index": int(k),
        "n_slices": vol.n_slices,
        "z_mm": round(vol.z_mm(k), 4),
        "spacing_mm": [round(row_mm * scale, 6), round(col_mm * scale, 6)],
        "slice_spacing_mm": round(slice_mm, 6),
        "native_size": [int(rows), int(cols)],
        "pad_px": list(pad),
    }
    if vol.slice_files is not None:
        params["source_file"] = vol.slice_files[k].name
    return arrays, params


def _finish(arrays: dict[str, np.ndarray], config: PrepareConfig) -> dict[str, np.ndarray]:
    grey = window_to_uint8(arrays["ct"], config.window_hu)
    return {"image": np.repeat(grey[..., None], 3, axis=2), **arrays}


def volume_samples(vol: AxialVolume, config: PrepareConfig) -> Iterator[tuple[SampleRecord, dict[str, np.ndarray]]]:
    """The (record, arrays) of one volume's slices or montages, in slice order."""
    gid = _safe_id(vol.group)
    extent = vol.extent(config.z_range)
    source = str(vol.ct_path)
    if not config.montage:
        for k in slice_indices(extent, config.every):
            arrays, params = _slice_sample(vol, k, config, config.size)
            src = str(vol.slice_files[k]) if vol.slice_files is not None else source
            yield SampleRecord(id=f"{gid}_{k:04d}", files={}, params=params, source=src, group=vol.group), _finish(arrays, config)
        return
    montages, gap = montage_starts(extent, config.every)
    tile = None if config.size is None else config.size // 2
    for n, ks in enumerate(montages):
        parts = [_slice_sample(vol, k, config, tile) for k in ks]
        arrays = {kind: tile_montage([p[0][kind] for p in parts]) for kind in parts[0][0]}
        first = parts[0][1]
        params = {
            "slice_index": [p[1]["slice_index"] for p in parts],
            "n_slices": vol.n_slices,
            "z_mm": [p[1]["z_mm"] for p in parts],
            "spacing_mm": first["spacing_mm"],
            "slice_spacing_mm": first["slice_spacing_mm"],
            "native_size": first["native_size"],
            "pad_px": first["pad_px"],
            "montage": {
                "layout": "2x2 column-major: slice_index[0] top-left, [1] bottom-left, [2] top-right, [3] bottom-right",
                "gap_slices": gap,
                "offset": ks[0] - montages[0][0],
                "extent": [int(extent[0]), int(extent[1])],
            },
        }
        if vol.slice_files is not None:
            params["source_file"] = [vol.slice_files[k].name for k in ks]
        yield SampleRecord(id=f"{gid}_m{ks[0]:04d}", files={}, params=params, source=source, group=vol.group), _finish(arrays, config)


#: Volumes read while planning are kept for writing up to this many bytes in all (then read again).
_KEEP_BYTES = 1 << 30


def _plan(cases: Sequence[CTCase], config: PrepareConfig) -> tuple[list[dict[str, Any]], dict[int, AxialVolume]]:
    """Read every case once (all checks happen here, before anything is written) and note its samples.

    Returns the plan of each case and the volumes kept in memory (case index -> volume)."""
    plans = []
    kept: dict[int, AxialVolume] = {}
    kept_bytes = 0
    groups: dict[str, str] = {}
    for case in cases:
        gid = case.group_id()
        key = _safe_id(gid)
        if key in groups:
            raise SimrealError(
                f"two volumes have the patient id {gid!r} ({groups[key]} and {case.ct}); give each a --group", case.ct
            )
        groups[key] = str(case.ct)
        vol = load_case(case, config)
        size = vol.hu.nbytes + (0 if vol.mask is None else vol.mask.nbytes)
        if kept_bytes + size <= _KEEP_BYTES:
            kept[len(plans)] = vol
            kept_bytes += size
        extent = vol.extent(config.z_range)
        if config.montage:
            n = len(montage_starts(extent, config.every)[0])
        else:
            n = len(slice_indices(extent, config.every))
        plans.append(
            {
                "group": gid,
                "ct": str(case.ct),
                "labels": None if case.labels is None else str(case.labels),
                "label_ids": vol.label_ids,
                "shape_lps": list(vol.hu.shape),
                "spacing_mm": [round(v, 6) for v in vol.spacing_mm],
                "extent": [int(extent[0]), int(extent[1])],
                "n_samples": n,
                "native_size": [int(vol.hu.shape[1]), int(vol.hu.shape[0])],
            }
        )
    return plans, kept


def prepare_ct_dataset(
    cases: Sequence[CTCase],
    out: str | Path,
    config: PrepareConfig = PrepareConfig(),
    *,
    domain: str = "real",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write CT volumes as a simreal dataset of axial slices (or montages) with HU, image and masks.

    Every case is read and checked before the first file is written; the dataset is written atomically
    (a crash or bad input leaves no half-written folder).

    Args:
        cases: the CT volumes (each with optional labels and a patient id).
        out: the new dataset folder (must not exist).
        config: windowing, size, montage, labels (:class:`PrepareConfig`).
        domain: dataset.json's domain ("real" for patient CT).
        progress: called with (samples written, total).

    Returns:
        The dataset folder.

    Raises:
        SimrealError: no cases, unreadable or inconsistent input (see :func:`load_case`), duplicate patient ids,
            an organ too short for a montage, an existing output folder.
    """
    from simreal.data.writer import write_dataset

    if not cases:
        raise SimrealError("no CT volume given")
    plans, kept = _plan(cases, config)
    total = sum(p["n_samples"] for p in plans)
    if total == 0:
        raise SimrealError("no slices selected", Path(str(cases[0].ct)))
    if config.size is not None:
        image_size: tuple[int, int] | None = (config.size, config.size)
    else:
        sizes = {tuple(p["native_size"]) for p in plans}
        image_size = None
        if len(sizes) == 1:
            h, w = sizes.pop()
            image_size = (2 * h, 2 * w) if config.montage else (h, w)
    files = ("image", "ct") + (("mask",) if config.labels else ())
    labels = {"ct": LabelKind(unit="HU", description="CT intensities in Hounsfield units (float32)")}
    if config.labels:
        classes = {0: "background", **{i: s.name for i, s in enumerate(config.label_specs(), start=1)}}
        labels["mask"] = LabelKind(classes=classes, description="class ids from the label volume, nearest-neighbour resized")
    lo, hi = config.window_hu
    info = DatasetInfo(
        modality="ct",
        domain=domain,
        image_size=image_size,
        files=files,
        labels=labels,
        generator={
            "name": "simreal.synth.prepare",
            "config": config.to_dict(),
            "volumes": [{k: v for k, v in p.items() if k != "native_size"} for p in plans],
        },
        ct=CTInfo(
            window_hu=(lo, hi),
            image_axes=IMAGE_AXES,
            slice_axis=SLICE_AXIS,
            description=ORIENTATION + f"; image = floor((clip(HU, {lo:g}, {hi:g}) - ({lo:g})) / {hi - lo:g} * 255)",
        ),
    )

    def items() -> Iterator[tuple[SampleRecord, dict[str, np.ndarray]]]:
        for n, case in enumerate(cases):
            vol = kept.pop(n, None) or load_case(case, config)
            yield from volume_samples(vol, config)

    return write_dataset(out, info, items(), total=total, progress=progress)


# --- splits ---------------------------------------------------------------------------------------------------


def patient_split(
    dataset: str | Path,
    *,
    n_test: int | None = None,
    fractions: dict[str, float] | None = None,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Train / test (/ val) sample ids of a dataset, split by patient (record ``group``), never by slice.

    Args:
        dataset: a dataset folder whose records carry a group (``synth prepare`` writes the patient id).
        n_test: this many patients in "test", the rest in "train" (default 1 when ``fractions`` is None).
        fractions: instead: split name -> fraction of the patients, e.g. ``{"train": 0.8, "test": 0.2}``.
        seed: seed of the patient shuffle.

    Returns:
        Split name -> sample ids (in dataset order); no patient appears in two splits.

    Raises:
        SimrealError: records without a group, fewer patients than splits.
    """
    from simreal.data.reader import DatasetReader
    from simreal.data.splits import sequence_split

    reader = DatasetReader(dataset)
    if fractions is None and n_test is None:
        n_test = 1
    groups = [r.group for r in reader.records]
    idx = sequence_split(groups, fractions=fractions, n_test_groups=n_test if fractions is None else None, seed=seed)
    return {name: [reader.records[i].id for i in ids] for name, ids in idx.items()}
