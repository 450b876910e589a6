"""Reading and validating a dataset folder (format: ``docs/dataset_format.md``).

:class:`DatasetReader` opens a folder cheaply (metadata only) and reads samples on demand;
:func:`validate_dataset` decodes every file and checks it against ``dataset.json``, raising one
:class:`~simreal.errors.SimrealError` that names the first bad file and what is wrong with it.

Every way a file can be damaged (not UTF-8, not JSON, JSON of the wrong shape, wrong types, corrupt or
truncated pixels, wrong dtype or channels, NaN, unknown label values, mismatched counts, files no record
names) ends in that one error type, never in a traceback from a decoder.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

import numpy as np

from simreal.data import images
from simreal.data.format import FILE_KINDS, SCHEMA, Camera, DatasetInfo, FormatError, SampleRecord
from simreal.errors import SimrealError

# Normals are stored as float32; anything further than this from unit length is a bug, not rounding.
_NORMAL_TOLERANCE = 1e-3

# Kinds stored as single-channel 8-bit PNG.
_GREY_PNG_KINDS = ("mask", "instance", "guidance", "edges")

#: The files of a dataset folder that no record names.
META_FILES = ("dataset.json", "samples.jsonl")

# What a damaged JSON text or a record of the wrong shape raises while being parsed. RecursionError:
# deeply nested brackets; OverflowError: int(float("inf")) inside a camera.
_PARSE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError, RecursionError)


def _why(exc: BaseException) -> str:
    """The reason to show for a parse error: our own FormatError messages as they are, others with their type."""
    return str(exc) if isinstance(exc, FormatError) else f"{exc.__class__.__name__}: {exc}"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SimrealError(f"cannot read the file ({exc.strerror or exc})", path) from None


def _decode_json(raw: bytes, path: Path, where: str = "") -> Any:
    """UTF-8 JSON text -> Python object; ``where`` (e.g. "line 3: ") prefixes the message."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SimrealError(f"{where}not UTF-8 text (byte {exc.start} is 0x{raw[exc.start]:02x})", path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SimrealError(f"{where}not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", path) from None
    except RecursionError:
        raise SimrealError(f"{where}not valid JSON (nested too deeply)", path) from None


def read_file(path: Path, kind: str) -> np.ndarray:
    """Decode one pixel file of a given kind to its in-memory type.

    Returns (H, W, 3) uint8 for "image", float32 for depth / normals / ct, (H, W) uint8 for mask /
    instance / guidance / edges.

    Raises:
        SimrealError: missing, corrupt or truncated file, or the wrong dtype for its kind.
    """
    if kind == "image":
        return images.read_rgb(path)
    if kind in _GREY_PNG_KINDS:
        arr = images.read_gray(path)
        if arr.dtype != np.uint8:
            raise SimrealError(f"{kind} must be 8-bit, got {arr.dtype}", path)
        return arr
    arr = images.read_tiff(path)
    if arr.dtype != np.float32:
        raise SimrealError(f"{kind} must be float32, got {arr.dtype}", path)
    return arr


def check_ct_params(params: dict[str, Any]) -> str | None:
    """What is wrong with a CT slice record's params, or None: ``spacing_mm`` must be [row, column] pixel
    sizes in mm (two positive finite numbers); ``slice_index`` and ``z_mm``, when present, a whole number
    and a finite number (or lists of them, for montages)."""
    sp = params.get("spacing_mm")
    if not (isinstance(sp, list) and len(sp) == 2 and all(_is_number(v) and 0 < v < math.inf for v in sp)):
        return f"params.spacing_mm must be [row, column] pixel sizes in mm (two positive numbers), got {sp!r}"
    for key, ok in (("slice_index", lambda v: isinstance(v, int) and not isinstance(v, bool)),
                    ("z_mm", lambda v: _is_number(v) and math.isfinite(v))):
        if key in params:
            value = params[key]
            values = value if isinstance(value, list) else [value]
            if not values or not all(ok(v) for v in values):
                return f"params.{key} must be a number (or a list of them), got {value!r}"
    return None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_camera(cam: Camera) -> str | None:
    """What is wrong with a camera read from a record, or None: sizes, focal lengths, model, pose."""
    if cam.width < 1 or cam.height < 1:
        return f"camera size must be positive, got {cam.width}x{cam.height}"
    if not all(math.isfinite(v) for v in (cam.fx, cam.fy, cam.cx, cam.cy)) or cam.fx <= 0 or cam.fy <= 0:
        return f"camera fx, fy must be finite and positive and cx, cy finite, got {cam.fx}, {cam.fy}, {cam.cx}, {cam.cy}"
    if cam.model not in ("pinhole", "fisheye"):
        return f"camera model must be 'pinhole' or 'fisheye', got {cam.model!r}"
    if not all(math.isfinite(k) for k in cam.distortion):
        return "camera distortion holds NaN/inf"
    if cam.pose is not None:
        if len(cam.pose) != 4 or any(len(row) != 4 for row in cam.pose):
            return "camera pose must be a 4x4 matrix"
        if not all(math.isfinite(v) for row in cam.pose for v in row):
            return "camera pose holds NaN/inf"
    return None


def _check_rel_path(rel: str) -> str | None:
    """What is wrong with a record's file path, or None: it must stay inside the dataset folder."""
    pure = PurePosixPath(rel)
    bad_part = any(part in ("..", "") for part in rel.split("/"))
    if not rel or pure.is_absolute() or "\\" in rel or "\x00" in rel or bad_part:
        return f"file path {rel!r} must be relative to the dataset folder, with / and no '..' (nor NUL)"
    if pure.as_posix() in META_FILES:
        return f"file path {rel!r} is one of the dataset's own files"
    return None


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate_dataset` checked."""

    n_samples: int
    n_files: int
    kinds: tuple[str, ...]


class DatasetReader:
    """Opens a simreal dataset folder.

    Reads and checks ``dataset.json`` and ``samples.jsonl`` (their shape and types, not the pixel files).

    Args:
        root: the dataset folder (holding ``dataset.json`` and ``samples.jsonl``).

    Raises:
        SimrealError: not a dataset folder, an unfinished one, or a damaged ``dataset.json`` /
            ``samples.jsonl`` (names the file, and the line for a record).

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
        self.info = self._read_info(info_path)
        self.records = self._read_records(self.root / "samples.jsonl")
        if len(self.records) != self.info.n_samples:
            raise SimrealError(
                f"dataset.json says {self.info.n_samples} samples but samples.jsonl has {len(self.records)}",
                self.root / "samples.jsonl",
            )

    @staticmethod
    def _read_info(path: Path) -> DatasetInfo:
        raw = _decode_json(_read_bytes(path), path)
        # A different schema is reported as such, before its fields are judged by this schema's rules.
        if isinstance(raw, dict) and isinstance(raw.get("schema"), str) and raw["schema"] != SCHEMA:
            raise SimrealError(f"schema {raw['schema']!r} is not {SCHEMA!r}", path)
        try:
            info = DatasetInfo.from_dict(raw)
        except _PARSE_ERRORS as exc:
            raise SimrealError(f"unreadable dataset description ({_why(exc)})", path) from None
        if not info.files:
            raise SimrealError("field 'files' is empty: a dataset holds at least one file kind", path)
        unknown = set(info.files) - set(FILE_KINDS)
        if unknown:
            raise SimrealError(f"unknown file kinds {sorted(unknown)}; known: {', '.join(FILE_KINDS)}", path)
        return info

    @staticmethod
    def _read_records(path: Path) -> list[SampleRecord]:
        if not path.is_file():
            raise SimrealError("samples.jsonl missing", path)
        records = []
        seen: set[str] = set()
        for n, line in enumerate(_read_bytes(path).split(b"\n"), start=1):
            if not line.strip():
                continue
            where = f"line {n}: "
            raw = _decode_json(line, path, where)
            try:
                rec = SampleRecord.from_dict(raw)
            except _PARSE_ERRORS as exc:
                raise SimrealError(f"{where}bad record ({_why(exc)})", path) from None
            problem = check_camera(rec.camera) if rec.camera is not None else None
            for kind, rel in rec.files.items():
                if problem is None and kind not in FILE_KINDS:
                    problem = f"unknown file kind {kind!r}"
                problem = problem or _check_rel_path(rel)
            if problem is not None:
                raise SimrealError(f"{where}sample {rec.id!r}: {problem}", path)
            if rec.id in seen:
                raise SimrealError(f"{where}duplicate sample id {rec.id!r}", path)
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
            if arr.ndim < 2 or min(arr.shape) == 0:
                raise SimrealError(f"{kind} holds no pixels (shape {arr.shape})", path)
            if size is not None and hw != tuple(size):
                raise SimrealError(f"size {hw[0]}x{hw[1]} does not match the dataset's {size[0]}x{size[1]}", path)
            if shape_hw is not None and hw != shape_hw:
                raise SimrealError(f"size {hw} differs from the sample's image size {shape_hw}", path)
            shape_hw = hw
            _check_values(arr, kind, path, self.info)
        if self.info.ct is not None:
            problem = check_ct_params(rec.params)
            if problem is not None:
                raise SimrealError(f"sample {rec.id}: {problem}", self.root / "samples.jsonl")
        if rec.camera is not None and shape_hw is not None and (rec.camera.height, rec.camera.width) != shape_hw:
            raise SimrealError(
                f"sample {rec.id}: camera is {rec.camera.width}x{rec.camera.height} but its images are "
                f"{shape_hw[1]}x{shape_hw[0]}",
                self.root / "samples.jsonl",
            )
        return len(kinds)


def _check_values(arr: np.ndarray, kind: str, path: Path, info: DatasetInfo) -> None:
    # Damaged floats (1e38, NaN) must end in our error, not in numpy's overflow warnings on stderr.
    with np.errstate(all="ignore"):
        _check_values_quietly(arr, kind, path, info)


def _check_values_quietly(arr: np.ndarray, kind: str, path: Path, info: DatasetInfo) -> None:
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
    elif kind in ("guidance", "edges"):
        if arr.ndim != 2:
            raise SimrealError(f"{kind} must be a single-channel (H, W) map, got shape {arr.shape}", path)
        if kind == "edges":
            bad = (arr != 0) & (arr != 255)
            if bad.any():
                raise SimrealError(f"edges must be 0 or 255, got {int(bad.sum())} pixels of other values", path)
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


def unnamed_files(reader: DatasetReader) -> list[str]:
    """Files in the dataset folder (relative, ``/``-separated, sorted) that are neither dataset.json,
    samples.jsonl nor named by a record: leftovers such as a crashed writer's temporaries."""
    named = set(META_FILES)
    for rec in reader.records:
        named.update(PurePosixPath(rel).as_posix() for rel in rec.files.values())
    found = []
    for folder, dirs, files in os.walk(reader.root):
        dirs.sort()
        rel_folder = Path(folder).relative_to(reader.root)
        for name in sorted(files):
            rel = (rel_folder / name).as_posix()
            if rel not in named:
                found.append(rel)
    return found


def validate_dataset(
    root: str | Path, progress: Callable[[int, int], None] | None = None
) -> ValidationReport:
    """Decode every file of a dataset and check it against ``dataset.json``.

    Args:
        root: the dataset folder.
        progress: called with (samples checked, total) after each sample.

    Raises:
        SimrealError: naming the first bad file (damaged dataset.json or samples.jsonl, a file that no
            record names, missing, corrupt, truncated, wrong size or type, NaN depth, non-unit normals,
            unknown mask values, camera size mismatch).
    """
    reader = DatasetReader(root)
    if len(reader) == 0:
        raise SimrealError("dataset has no samples", reader.root)
    declared = set(reader.info.files)
    named_by: dict[str, str] = {}
    for rec in reader.records:
        extra = sorted(set(rec.files) - declared)
        if extra:
            raise SimrealError(
                f"sample {rec.id!r} has files of kinds {extra} that dataset.json does not declare",
                reader.root / "samples.jsonl",
            )
        for kind, rel in sorted(rec.files.items()):
            key = PurePosixPath(rel).as_posix()
            if key in named_by:
                raise SimrealError(
                    f"file {rel!r} is named twice ({named_by[key]} and sample {rec.id!r} {kind})",
                    reader.root / "samples.jsonl",
                )
            named_by[key] = f"sample {rec.id!r} {kind}"
    strays = unnamed_files(reader)
    if strays:
        more = f" ({len(strays) - 1} more such files)" if len(strays) > 1 else ""
        raise SimrealError(f"no record in samples.jsonl names this file{more}", reader.root / strays[0])
    n_files = 0
    for i in range(len(reader)):
        n_files += reader.check_sample(i)
        if progress is not None:
            progress(i + 1, len(reader))
    return ValidationReport(n_samples=len(reader), n_files=n_files, kinds=reader.info.files)
