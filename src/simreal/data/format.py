"""The dataset folder contract: what ``dataset.json`` and ``samples.jsonl`` hold.

A simreal dataset folder looks like::

    DIR/
      dataset.json        DatasetInfo: schema, modality, domain, size, label kinds, generator + config, seed
      samples.jsonl       one SampleRecord per line: id, files, camera (intrinsics + pose), drawn params
      image/000000.png    RGB, 8-bit PNG
      depth/000000.tiff   z-depth in millimetres, float32 TIFF, 0 = no surface
      normals/000000.tiff unit surface normals in the camera frame, float32 TIFF (H, W, 3)
      mask/000000.png     class ids, 8-bit PNG
      instance/000000.png instance ids (0 = none), 8-bit PNG
      ct/000000.tiff      CT intensities in HU, float32 TIFF
      guidance/000000.png superpixel guidance (quantised mean intensity), 8-bit PNG
      edges/000000.png    boundaries of the guidance regions, 8-bit PNG, 0 or 255

Camera frame: x right, y down, z forward (OpenCV convention); poses are camera-to-world 4x4 matrices
in millimetres. Every field, unit and convention is described in ``docs/dataset_format.md``.

Parsing is strict: ``from_dict`` raises :class:`FormatError` (a ``ValueError``) naming the field that is
missing or of the wrong type, and the reader adds the file (and line) to it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from simreal.errors import SimrealError

SCHEMA = "simreal-dataset/1"


class FormatError(ValueError):
    """A dataset.json or samples.jsonl entry of the wrong shape; the message names the field."""


_TYPE_NAMES = {str: "a string", int: "an integer", dict: "an object", list: "a list", float: "a number"}


def _type_name(value: Any) -> str:
    return {str: "string", bool: "boolean", int: "integer", float: "number", dict: "object", list: "list",
            type(None): "null"}.get(type(value), type(value).__name__)


def _field(d: dict[str, Any], key: str, kind: type, *, optional: bool = False, default: Any = None) -> Any:
    """``d[key]`` checked to be of JSON type ``kind`` (bool is not an integer); None allowed if ``optional``."""
    if key not in d:
        if optional:
            return default
        raise FormatError(f"missing field {key!r}")
    value = d[key]
    if value is None and optional:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FormatError(f"field {key!r} must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {_type_name(value)}")
    return value


def _object(d: Any, what: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise FormatError(f"{what} must be a JSON object, got {_type_name(d)}")
    return d


#: Every pixel file kind a dataset may hold: file extension, storage and meaning.
FILE_KINDS: dict[str, dict[str, str]] = {
    "image": {"ext": ".png", "storage": "uint8 RGB", "unit": "", "meaning": "the image"},
    "depth": {"ext": ".tiff", "storage": "float32", "unit": "mm", "meaning": "z-depth, 0 = no surface"},
    "normals": {"ext": ".tiff", "storage": "float32 x3", "unit": "", "meaning": "unit normals, camera frame"},
    "mask": {"ext": ".png", "storage": "uint8", "unit": "", "meaning": "class ids"},
    "instance": {"ext": ".png", "storage": "uint8", "unit": "", "meaning": "instance ids, 0 = none"},
    "ct": {"ext": ".tiff", "storage": "float32", "unit": "HU", "meaning": "CT intensities"},
    "guidance": {"ext": ".png", "storage": "uint8", "unit": "", "meaning": "superpixel mean intensity, quantised"},
    "edges": {"ext": ".png", "storage": "uint8", "unit": "", "meaning": "guidance region boundaries, 0 or 255"},
}

LABEL_KINDS = ("depth", "normals", "mask", "instance", "ct", "guidance", "edges")

#: Image-axis directions a CT slice dataset may declare (``CTInfo.image_axes``): rows then columns, as
#: patient directions (R/L, A/P, S/I) the index increases towards.
_AXIS_LETTERS = {"R": "x", "L": "x", "A": "y", "P": "y", "S": "z", "I": "z"}


def file_name(kind: str, sample_id: str) -> str:
    """Relative path of a sample's file of one kind, e.g. ``depth/000012.tiff``."""
    if kind not in FILE_KINDS:
        raise SimrealError(f"unknown file kind {kind!r}; known: {', '.join(FILE_KINDS)}")
    return f"{kind}/{sample_id}{FILE_KINDS[kind]['ext']}"


@dataclass(frozen=True)
class LabelKind:
    """One kind of label a dataset carries.

    Args:
        unit: physical unit of the values ("mm", "HU") or "" for ids / unitless.
        classes: for masks, class id -> class name (every pixel value must be one of these ids).
        description: what the values mean, for a person reading dataset.json.
    """

    unit: str = ""
    classes: dict[int, str] | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": self.unit, "description": self.description}
        if self.classes is not None:
            out["classes"] = {str(k): v for k, v in sorted(self.classes.items())}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LabelKind":
        """Parse one entry of dataset.json's ``labels``; raises :class:`FormatError` on a wrong shape."""
        d = _object(d, "a label kind")
        raw = _field(d, "classes", dict, optional=True)
        classes = None
        if raw is not None:
            classes = {}
            for k, v in raw.items():
                if not (k.isascii() and k.isdigit() and len(k) <= 3 and int(k) <= 255):
                    raise FormatError(f"class id {k!r} is not a whole number 0..255 (masks are 8-bit)")
                if not isinstance(v, str):
                    raise FormatError(f"class {k} name must be a string, got {_type_name(v)}")
                classes[int(k)] = v
        return cls(
            unit=_field(d, "unit", str, optional=True, default=""),
            classes=classes,
            description=_field(d, "description", str, optional=True, default=""),
        )


@dataclass(frozen=True)
class CTInfo:
    """What a dataset of CT slices declares once for all its samples (``dataset.json`` field ``ct``).

    Args:
        window_hu: (min, max) HU window that maps CT values to the 8-bit "image": values are clipped to it
            and scaled linearly to 0..255 (min < max).
        image_axes: the patient directions that image rows and columns run towards, e.g. "PL": row index
            increases towards Posterior (top of the image = anterior), column index towards the patient's
            Left (image left = patient right): the radiological display.
        slice_axis: the direction the slice index (``params.slice_index``) increases towards, e.g. "S".
        description: the convention in words, for a person reading dataset.json.
    """

    window_hu: tuple[float, float]
    image_axes: str = "PL"
    slice_axis: str = "S"
    description: str = ""

    def problem(self) -> str | None:
        """What is wrong with the declaration, or None."""
        lo, hi = self.window_hu
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
            return f"ct.window_hu must be [min, max] with min < max, got [{lo}, {hi}]"
        letters = self.image_axes + self.slice_axis
        if len(self.image_axes) != 2 or len(self.slice_axis) != 1 or any(c not in _AXIS_LETTERS for c in letters):
            return f"ct.image_axes must be 2 and ct.slice_axis 1 of R/L/A/P/S/I, got {self.image_axes!r}, {self.slice_axis!r}"
        if len({_AXIS_LETTERS[c] for c in letters}) != 3:
            return f"ct.image_axes {self.image_axes!r} and ct.slice_axis {self.slice_axis!r} must name three different axes"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_hu": [float(self.window_hu[0]), float(self.window_hu[1])],
            "image_axes": self.image_axes,
            "slice_axis": self.slice_axis,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CTInfo":
        """Parse dataset.json's ``ct``; raises :class:`FormatError` on a wrong shape or values."""
        d = _object(d, "field 'ct'")
        window = _field(d, "window_hu", list)
        if len(window) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in window):
            raise FormatError(f"field 'ct.window_hu' must be [min, max] in HU, got {window}")
        info = cls(
            window_hu=(float(window[0]), float(window[1])),
            image_axes=_field(d, "image_axes", str, optional=True, default="PL"),
            slice_axis=_field(d, "slice_axis", str, optional=True, default="S"),
            description=_field(d, "description", str, optional=True, default=""),
        )
        problem = info.problem()
        if problem is not None:
            raise FormatError(problem)
        return info


CameraModel = Literal["pinhole", "fisheye"]


@dataclass(frozen=True)
class Camera:
    """Intrinsics and pose of the camera that took (or would have taken) an image.

    Pixel convention (OpenCV's): pixel ``(u, v)`` = (column, row) has its centre at the integer
    coordinates ``(u, v)``, so the image spans [-0.5, W - 0.5] x [-0.5, H - 0.5] and a centred principal
    point is ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``. Pixel ``(u, v)`` maps to a ray as follows, with
    ``x = (u - cx) / fx`` and ``y = (v - cy) / fy``:
    ``pinhole``: direction ``(x, y, 1)``;
    ``fisheye``: equidistant model with polynomial ``theta_d = theta (1 + k1 theta^2 + k2 theta^4 + ...)``
    where ``r = sqrt(x^2 + y^2) = theta_d`` and theta is the ray's angle from the optical axis
    (direction ``(sin(theta) x / r, sin(theta) y / r, cos(theta))``).
    These intrinsics work unchanged with OpenCV (``cv2.projectPoints``; ``cv2.fisheye`` with D = (k1, k2,
    k3, k4)); COLMAP puts the centre of the top-left pixel at (0.5, 0.5), so add 0.5 to cx and cy there.
    The pose is camera-to-world; OpenCV and COLMAP want its inverse.

    Args:
        width, height: image size in pixels.
        fx, fy, cx, cy: focal lengths and principal point in pixels.
        model: "pinhole" or "fisheye".
        distortion: fisheye coefficients (k1, k2, k3, k4); empty for pinhole.
        pose: camera-to-world 4x4 matrix (row-major, millimetres), or None when unknown.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    model: CameraModel = "pinhole"
    distortion: tuple[float, ...] = ()
    pose: tuple[tuple[float, ...], ...] | None = None

    def pose_matrix(self) -> np.ndarray | None:
        return None if self.pose is None else np.asarray(self.pose, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["distortion"] = list(self.distortion)
        d["pose"] = None if self.pose is None else [list(r) for r in self.pose]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Camera":
        pose = d.get("pose")
        return cls(
            width=int(d["width"]),
            height=int(d["height"]),
            fx=float(d["fx"]),
            fy=float(d["fy"]),
            cx=float(d["cx"]),
            cy=float(d["cy"]),
            model=d.get("model", "pinhole"),
            distortion=tuple(float(k) for k in d.get("distortion", ())),
            pose=None if pose is None else tuple(tuple(float(x) for x in row) for row in pose),
        )


@dataclass(frozen=True)
class DatasetInfo:
    """What ``dataset.json`` holds.

    Args:
        modality: "colonoscopy", "laparoscopy", "ct" or "image".
        domain: the image domain, e.g. "synthetic", "real", "refined".
        image_size: (height, width) shared by all samples, or None when sizes vary (e.g. predictions
            kept at each input's own resolution).
        files: the file kinds every sample has (keys of ``FILE_KINDS``).
        labels: label kind name -> LabelKind (units, class names).
        generator: name of what wrote the dataset and its full configuration.
        seed: the seed the generator used, or None.
        n_samples: number of records in ``samples.jsonl``.
        ct: for datasets of CT slices: the HU window of the "image" files and the slice orientation
            (:class:`CTInfo`); None otherwise (then dataset.json has no ``ct`` field).
    """

    modality: str
    domain: str
    image_size: tuple[int, int] | None
    files: tuple[str, ...]
    labels: dict[str, LabelKind] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    n_samples: int = 0
    simreal_version: str = ""
    schema: str = SCHEMA
    ct: CTInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "schema": self.schema,
            "simreal_version": self.simreal_version,
            "modality": self.modality,
            "domain": self.domain,
            "image_size": None if self.image_size is None else list(self.image_size),
            "files": list(self.files),
            "labels": {k: v.to_dict() for k, v in self.labels.items()},
            "generator": self.generator,
            "seed": self.seed,
            "n_samples": self.n_samples,
        }
        if self.ct is not None:  # absent, not null, elsewhere: datasets without CT keep their bytes
            out["ct"] = self.ct.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DatasetInfo":
        """Parse dataset.json; raises :class:`FormatError` naming a missing or mistyped field."""
        d = _object(d, "dataset.json")
        schema = _field(d, "schema", str)
        size = _field(d, "image_size", list, optional=True)
        if size is not None and (
            len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            raise FormatError(f"field 'image_size' must be [height, width] in pixels (positive integers), got {size}")
        files = _field(d, "files", list)
        if not all(isinstance(f, str) for f in files):
            raise FormatError("field 'files' must be a list of strings")
        if len(set(files)) != len(files):
            raise FormatError(f"field 'files' lists a kind twice: {files}")
        labels = {}
        for name, entry in _field(d, "labels", dict, optional=True, default={}).items():
            try:
                labels[name] = LabelKind.from_dict(entry)
            except FormatError as exc:
                raise FormatError(f"labels.{name}: {exc}") from None
        n_samples = _field(d, "n_samples", int, optional=True, default=0)
        if n_samples < 0:
            raise FormatError(f"field 'n_samples' must be >= 0, got {n_samples}")
        ct = _field(d, "ct", dict, optional=True)
        return cls(
            modality=_field(d, "modality", str),
            domain=_field(d, "domain", str),
            image_size=None if size is None else (size[0], size[1]),
            files=tuple(files),
            labels=labels,
            generator=dict(_field(d, "generator", dict, optional=True, default={})),
            seed=_field(d, "seed", int, optional=True),
            n_samples=n_samples,
            simreal_version=_field(d, "simreal_version", str, optional=True, default=""),
            schema=schema,
            ct=None if ct is None else CTInfo.from_dict(ct),
        )


@dataclass(frozen=True)
class SampleRecord:
    """One line of ``samples.jsonl``.

    Args:
        id: sample id, also the stem of its files (zero-padded index for rendered sets).
        files: file kind -> path relative to the dataset folder.
        camera: intrinsics and pose, or None (CT, plain images).
        params: the randomisation parameters actually drawn for this sample.
        source: the input file this sample came from (predictions, imported real data), or None.
        group: the patient / video sequence it belongs to, used to split without leakage.
    """

    id: str
    files: dict[str, str]
    camera: Camera | None = None
    params: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    group: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "files": dict(sorted(self.files.items())),
            "camera": None if self.camera is None else self.camera.to_dict(),
            "params": self.params,
            "source": self.source,
            "group": self.group,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SampleRecord":
        """Parse one line of samples.jsonl; raises :class:`FormatError` (or, inside ``camera``,
        ``ValueError`` / ``TypeError`` / ``KeyError``) on a wrong shape."""
        d = _object(d, "a record")
        sid = _field(d, "id", str)
        if not sid:
            raise FormatError("field 'id' is empty")
        files = _field(d, "files", dict)
        for kind, rel in files.items():
            if not isinstance(rel, str):
                raise FormatError(f"files.{kind} must be a string (a path), got {_type_name(rel)}")
        cam = _field(d, "camera", dict, optional=True)
        return cls(
            id=sid,
            files=dict(files),
            camera=None if cam is None else Camera.from_dict(cam),
            params=dict(_field(d, "params", dict, optional=True, default={})),
            source=_field(d, "source", str, optional=True),
            group=_field(d, "group", str, optional=True),
        )
