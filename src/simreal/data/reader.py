"""Reading and validating a dataset folder.

:class:`DatasetReader` opens a folder cheaply (metadata only) and reads samples on demand;
:func:`validate_dataset` decodes every file and checks it against ``dataset.json``, raising one
:class:`~simreal.errors.SimrealError` that names the first bad file and what is wrong with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from simreal.data import images
from simreal.data.format import FILE_KINDS, SCHEMA, DatasetInfo, SampleRecord
from simreal.errors import SimrealError

# Normals are stored as float32; anything further than this from unit length is a bug, not rounding.
_NORMAL_TOLERANCE = 1e-3


def read_file(path: Path, kind: str) -> np.ndarray:
    """Decode one pixel file of a given kind to its in-memory type.

    Returns (H, W, 3) uint8 for "image", float32 for depth / normals / ct, uint8 for mask / instance.
    """
    if kind == "image":
        return images.read_rgb(path)
    if kind in ("mask", "instance"):
        arr = images.read_gray(path)
        if arr.dtype != np.uint8:
            raise SimrealError(f"{kind} must be 8-bit, got {arr.dtype}", path)
        return arr
    arr = images.read_tiff(path)
    if arr.dtype != np.float32:
        raise SimrealError(f"{kind} must be float32, got {arr.dtype}", path)
    return arr


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate_dataset` checked."""

    n_samples: int
    n_files: int
    kinds: tuple[str, ...]


class DatasetReader:
    """Opens a simreal dataset folder.

    Args:
        root: the dataset folder (holding ``dataset.json`` and ``samples.jsonl``).

    Example:
        >>> ds = DatasetReader("renders/colon")                 # doctest: +SKIP
        >>> rgb = ds.read(0, "image"); depth_mm = ds.read(0, "depth")
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.exists():
            raise SimrealError("dataset folder not found", self.root)
        if not self.root.is_dir():
            raise SimrealError("not a folder", self.root)
        if self.root.name.endswith(".partial"):
            raise SimrealError("this is an unfinished dataset (a run was interrupted); rerun it to finish", self.root)
        info_path = self.root / "dataset.json"
        if not info_path.is_file():
            raise SimrealError("no dataset.json: not a simreal dataset folder", self.root)
        try:
            raw = json.loads(info_path.read_text())
            self.info = DatasetInfo.from_dict(raw)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SimrealError(f"unreadable dataset description ({exc.__class__.__name__}: {exc})", info_path) from None
        if self.info.schema != SCHEMA:
            raise SimrealError(f"schema {self.info.schema!r} is not {SCHEMA!r}", info_path)
        unknown = set(self.info.files) - set(FILE_KINDS)
        if unknown:
            raise SimrealError(f"unknown file kinds {sorted(unknown)}", info_path)
        self.records = self._read_records(self.root / "samples.jsonl")
        if len(self.records) != self.info.n_samples:
            raise SimrealError(
                f"dataset.json says {self.info.n_samples} samples but samples.jsonl has {len(self.records)}",
                self.root / "samples.jsonl",
            )

    @staticmethod
    def _read_records(path: Path) -> list[SampleRecord]:
        if not path.is_file():
            raise SimrealError("samples.jsonl missing", path)
        records = []
        seen: set[str] = set()
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = SampleRecord.from_dict(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise SimrealError(f"line {n}: bad record ({exc.__class__.__name__}: {exc})", path) from None
            if rec.id in seen:
                raise SimrealError(f"line {n}: duplicate sample id {rec.id!r}", path)
            seen.add(rec.id)
            records.append(rec)
        return records

    def __len__(self) -> int:
        return len(self.records)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    def path(self, index: int, kind: str) -> Path:
        rec = self.records[index]
        if kind not in rec.files:
            raise SimrealError(f"sample {rec.id} has no {kind!r} file", self.root / "samples.jsonl")
        return self.root / rec.files[kind]

    def read(self, index: int, kind: str) -> np.ndarray:
        """Decode one file of sample ``index``."""
        return read_file(self.path(index, kind), kind)

    def check_sample(self, index: int, kinds: Iterable[str] | None = None) -> int:
        """Decode and check every file of one sample; returns the number of files checked."""
        rec = self.records[index]
        kinds = tuple(self.info.files if kinds is None else kinds)
        size = self.info.image_size
        shape_hw = None
        for kind in kinds:
            path = self.path(index, kind)
            arr = read_file(path, kind)
            hw = arr.shape[:2]
            if size is not None and hw != tuple(size):
                raise SimrealError(f"size {hw[0]}x{hw[1]} does not match the dataset's {size[0]}x{size[1]}", path)
            if shape_hw is not None and hw != shape_hw:
                raise SimrealError(f"size {hw} differs from the sample's image size {shape_hw}", path)
            shape_hw = hw
            _check_values(arr, kind, path, self.info)
        if rec.camera is not None and shape_hw is not None and (rec.camera.height, rec.camera.width) != shape_hw:
            raise SimrealError(
                f"sample {rec.id}: camera is {rec.camera.width}x{rec.camera.height} but its images are "
                f"{shape_hw[1]}x{shape_hw[0]}",
                self.root / "samples.jsonl",
            )
        return len(kinds)


def _check_values(arr: np.ndarray, kind: str, path: Path, info: DatasetInfo) -> None:
    if kind == "image":
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise SimrealError(f"image must be RGB, got shape {arr.shape}", path)
    elif kind in ("depth", "ct"):
        if arr.ndim != 2:
            raise SimrealError(f"{kind} must be a single-channel (H, W) map, got shape {arr.shape}", path)
        if not np.isfinite(arr).all():
            raise SimrealError(f"{kind} holds {int((~np.isfinite(arr)).sum())} NaN/inf values", path)
        if kind == "depth" and (arr < 0).any():
            raise SimrealError(f"depth holds negative values (min {float(arr.min()):.3g} mm)", path)
    elif kind == "normals":
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise SimrealError(f"normals must be (H, W, 3), got shape {arr.shape}", path)
        if not np.isfinite(arr).all():
            raise SimrealError("normals hold NaN/inf values", path)
        norm = np.linalg.norm(arr, axis=2)
        hit = norm > 0
        bad = np.abs(norm[hit] - 1.0) > _NORMAL_TOLERANCE
        if bad.any():
            raise SimrealError(f"{int(bad.sum())} normals are not unit length", path)
    elif kind == "mask":
        label = info.labels.get("mask")
        if label is not None and label.classes is not None:
            present = np.unique(arr)
            unknown = sorted(set(present.tolist()) - set(label.classes))
            if unknown:
                raise SimrealError(
                    f"mask holds label values {unknown} not among the dataset's classes {sorted(label.classes)}",
                    path,
                )


def validate_dataset(
    root: str | Path, progress: Callable[[int, int], None] | None = None
) -> ValidationReport:
    """Decode every file of a dataset and check it against ``dataset.json``.

    Raises:
        SimrealError: naming the first bad file (missing, corrupt, truncated, wrong size or type, NaN
            depth, non-unit normals, unknown mask values, camera size mismatch).
    """
    reader = DatasetReader(root)
    if len(reader) == 0:
        raise SimrealError("dataset has no samples", reader.root)
    n_files = 0
    for i in range(len(reader)):
        n_files += reader.check_sample(i)
        if progress is not None:
            progress(i + 1, len(reader))
    return ValidationReport(n_samples=len(reader), n_files=n_files, kinds=reader.info.files)
