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

Camera frame: x right, y down, z forward (OpenCV convention); poses are camera-to-world 4x4 matrices
in millimetres.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from simreal.errors import SimrealError

SCHEMA = "simreal-dataset/1"

#: Every pixel file kind a dataset may hold: file extension, storage and meaning.
FILE_KINDS: dict[str, dict[str, str]] = {
    "image": {"ext": ".png", "storage": "uint8 RGB", "unit": "", "meaning": "the image"},
    "depth": {"ext": ".tiff", "storage": "float32", "unit": "mm", "meaning": "z-depth, 0 = no surface"},
    "normals": {"ext": ".tiff", "storage": "float32 x3", "unit": "", "meaning": "unit normals, camera frame"},
    "mask": {"ext": ".png", "storage": "uint8", "unit": "", "meaning": "class ids"},
    "instance": {"ext": ".png", "storage": "uint8", "unit": "", "meaning": "instance ids, 0 = none"},
    "ct": {"ext": ".tiff", "storage": "float32", "unit": "HU", "meaning": "CT intensities"},
}

LABEL_KINDS = ("depth", "normals", "mask", "instance", "ct")


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
        classes = d.get("classes")
        return cls(
            unit=str(d.get("unit", "")),
            classes=None if classes is None else {int(k): str(v) for k, v in classes.items()},
            description=str(d.get("description", "")),
        )


CameraModel = Literal["pinhole", "fisheye"]


@dataclass(frozen=True)
class Camera:
    """Intrinsics and pose of the camera that took (or would have taken) an image.

    Pixel ``(u, v)`` (column, row, pixel centres at integer + 0.5) maps to a ray as follows:
    ``pinhole``: direction ``((u - cx) / fx, (v - cy) / fy, 1)``;
    ``fisheye``: equidistant model with polynomial ``theta_d = theta (1 + k1 theta^2 + k2 theta^4 + ...)``
    where ``r = sqrt(((u-cx)/fx)^2 + ((v-cy)/fy)^2) = theta_d``.

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

    def to_dict(self) -> dict[str, Any]:
        return {
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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DatasetInfo":
        size = d.get("image_size")
        return cls(
            modality=str(d["modality"]),
            domain=str(d["domain"]),
            image_size=None if size is None else (int(size[0]), int(size[1])),
            files=tuple(d["files"]),
            labels={k: LabelKind.from_dict(v) for k, v in d.get("labels", {}).items()},
            generator=dict(d.get("generator", {})),
            seed=d.get("seed"),
            n_samples=int(d.get("n_samples", 0)),
            simreal_version=str(d.get("simreal_version", "")),
            schema=str(d["schema"]),
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
        cam = d.get("camera")
        return cls(
            id=str(d["id"]),
            files={str(k): str(v) for k, v in d["files"].items()},
            camera=None if cam is None else Camera.from_dict(cam),
            params=dict(d.get("params") or {}),
            source=d.get("source"),
            group=d.get("group"),
        )
