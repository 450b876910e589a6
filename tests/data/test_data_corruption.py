"""No traceback on corruption: every damaged dataset file ends in one SimrealError naming the file.

Unit cases for each reader path, then property-based tests (hypothesis, derandomized: the same examples
every run): any single corruption of any one file of a small dataset either still validates or raises
SimrealError, and ``simreal dataset validate`` exits 0 or 2, never with a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from simreal_testing import run_simreal, write_tiny_dataset
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.errors import SimrealError


def _records(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "samples.jsonl").read_text().splitlines()]


def _write_records(root: Path, records: list) -> None:
    (root / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _edit_info(root: Path, **changes) -> None:
    info = json.loads((root / "dataset.json").read_text())
    info.update(changes)
    (root / "dataset.json").write_text(json.dumps(info))


# --- dataset.json and samples.jsonl ------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff\xfe{}", "dataset.json: not UTF-8 text"),
        (b"", "dataset.json: not valid JSON"),
        (b"[1, 2]", "dataset.json must be a JSON object, got list"),
        (b"7", "dataset.json must be a JSON object, got integer"),
        (b'{"schema": "simreal-dataset/9"}', "schema 'simreal-dataset/9' is not"),
        (b"[" * 100000, "dataset.json: not valid JSON"),
    ],
)
def test_damaged_dataset_json(tiny_dataset: Path, content: bytes, message: str) -> None:
    (tiny_dataset / "dataset.json").write_bytes(content)
    with pytest.raises(SimrealError, match=message):
        DatasetReader(tiny_dataset)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"files": "image"}, "field 'files' must be a list, got string"),
        ({"files": []}, "field 'files' is empty"),
        ({"files": ["image", "image"]}, "lists a kind twice"),
        ({"files": ["image", "depthmap"]}, r"unknown file kinds \['depthmap'\]"),
        ({"labels": []}, "field 'labels' must be an object, got list"),
        ({"labels": {"mask": {"classes": {"one": "polyp"}}}}, r"labels.mask: class id 'one' is not a whole number"),
        ({"image_size": [8]}, r"field 'image_size' must be \[height, width\]"),
        ({"n_samples": "3"}, "field 'n_samples' must be an integer, got string"),
        ({"n_samples": True}, "field 'n_samples' must be an integer, got boolean"),
        ({"seed": 1.5}, "field 'seed' must be an integer, got number"),
        ({"modality": None}, "field 'modality' must be a string, got null"),
        ({"n_samples": 2}, "dataset.json says 2 samples but samples.jsonl has 3"),
    ],
)
def test_dataset_json_of_the_wrong_shape(tiny_dataset: Path, changes: dict, message: str) -> None:
    _edit_info(tiny_dataset, **changes)
    with pytest.raises(SimrealError, match=message):
        DatasetReader(tiny_dataset)


def test_samples_jsonl_not_utf8_names_the_line(tiny_dataset: Path) -> None:
    raw = (tiny_dataset / "samples.jsonl").read_bytes().split(b"\n")
    raw[1] = raw[1][:10] + b"\xc3\x28" + raw[1][12:]
    (tiny_dataset / "samples.jsonl").write_bytes(b"\n".join(raw))
    with pytest.raises(SimrealError, match=r"samples.jsonl: line 2: not UTF-8 text"):
        DatasetReader(tiny_dataset)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda r: 5, "line 1: bad record .a record must be a JSON object, got integer"),
        (lambda r: {**r, "files": ["image/000000.png"]}, "field 'files' must be an object, got list"),
        (lambda r: {**r, "files": {**r["files"], "image": 3}}, "files.image must be a string"),
        (lambda r: {**r, "id": 0}, "field 'id' must be a string, got integer"),
        (lambda r: {**r, "group": 1}, "field 'group' must be a string, got integer"),
        (lambda r: {**r, "params": [1]}, "field 'params' must be an object, got list"),
        (lambda r: {**r, "camera": {**r["camera"], "fx": "wide"}}, "bad record .ValueError"),
        (lambda r: {**r, "camera": {**r["camera"], "fx": -4.0}}, "camera fx, fy must be finite and positive"),
        (lambda r: {**r, "camera": {**r["camera"], "pose": [[1.0, 0.0]]}}, "camera pose must be a 4x4 matrix"),
        (lambda r: {**r, "camera": {**r["camera"], "width": None}}, "bad record .TypeError"),
        (lambda r: {**r, "files": {**r["files"], "image": "../../etc/passwd"}}, "must be relative to the dataset folder"),
        (lambda r: {**r, "files": {**r["files"], "image": "/etc/passwd"}}, "must be relative to the dataset folder"),
        (lambda r: {**r, "files": {**r["files"], "scan": "scan/0.png"}}, "unknown file kind 'scan'"),
    ],
)
def test_records_of_the_wrong_shape(tiny_dataset: Path, damage, message: str) -> None:
    records = _records(tiny_dataset)
    records[0] = damage(records[0])
    _write_records(tiny_dataset, records)
    with pytest.raises(SimrealError, match=message):
        DatasetReader(tiny_dataset)


def test_records_naming_one_file_twice_or_undeclared_kinds(tiny_dataset: Path) -> None:
    records = _records(tiny_dataset)
    records[1]["files"]["image"] = records[0]["files"]["image"]
    _write_records(tiny_dataset, records)
    with pytest.raises(SimrealError, match="file 'image/000000.png' is named twice"):
        validate_dataset(tiny_dataset)
    records[1]["files"]["image"] = "image/000001.png"
    records[2]["files"]["instance"] = "mask/000002.png"
    _write_records(tiny_dataset, records)
    with pytest.raises(SimrealError, match=r"sample '000002' has files of kinds \['instance'\] that dataset.json does not declare"):
        validate_dataset(tiny_dataset)


# --- pixel files -------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*zero-size array")
@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: Image.fromarray(np.zeros((8, 8, 2), np.uint8), "LA").save(d / "mask/000001.png"), None),
        (lambda d: Image.fromarray(np.zeros((8, 8), np.uint16)).save(d / "mask/000001.png"), "mask must be 8-bit"),
        (lambda d: Image.fromarray(np.zeros((8, 8), bool)).save(d / "mask/000001.png"), "mask must be 8-bit, got bool"),
        (lambda d: Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "image/000001.png", format="JPEG"), None),
        (lambda d: tifffile.imwrite(d / "depth/000001.tiff", np.ones((8, 8), np.float64)), "depth must be float32, got float64"),
        (lambda d: tifffile.imwrite(d / "depth/000001.tiff", np.ones((8, 8, 3), np.float32)), "single-channel"),
        (lambda d: tifffile.imwrite(d / "depth/000001.tiff", np.full((8, 8), -1, np.float32)), "negative values"),
        (lambda d: tifffile.imwrite(d / "normals/000001.tiff", np.zeros((8, 8), np.float32)), r"normals must be \(H, W, 3\)"),
        (lambda d: tifffile.imwrite(d / "normals/000001.tiff", np.full((8, 8, 3), np.inf, np.float32)), "NaN/inf"),
        (lambda d: tifffile.imwrite(d / "depth/000001.tiff", np.zeros((0, 8), np.float32)), "000001.tiff"),
        (lambda d: (d / "depth/000001.tiff").write_bytes((d / "depth/000001.tiff").read_bytes()[:-40]), "cannot decode TIFF|truncated TIFF"),
        (lambda d: (d / "image/000001.png").write_bytes(b"GIF89a" + bytes(40)), "cannot decode image"),
    ],
)
def test_damaged_pixel_files(tiny_dataset: Path, damage, message: str | None) -> None:
    damage(tiny_dataset)
    if message is None:  # still a valid file of its kind (a grey+alpha mask, a JPEG under .png): accepted
        validate_dataset(tiny_dataset)
        return
    with pytest.raises(SimrealError, match=message) as exc:
        validate_dataset(tiny_dataset)
    assert "000001" in str(exc.value)


def test_a_tiff_header_claiming_huge_pixels_is_refused_before_allocating(tiny_dataset: Path) -> None:
    path = tiny_dataset / "depth" / "000001.tiff"
    raw = bytearray(path.read_bytes())
    assert raw[:4] == b"II*\x00"
    n_tags = int.from_bytes(raw[8:10], "little")  # tifffile puts the first IFD at offset 8
    for k in range(n_tags):
        tag = 10 + 12 * k
        if int.from_bytes(raw[tag : tag + 2], "little") in (256, 257):  # ImageWidth, ImageLength
            raw[tag + 2 : tag + 4] = (4).to_bytes(2, "little")  # type LONG
            raw[tag + 8 : tag + 12] = (2**20).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(SimrealError, match="000001.tiff: cannot decode TIFF|000001.tiff: truncated TIFF"):
        validate_dataset(tiny_dataset)


# --- property-based: any one corruption of any one file ----------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 4x4 samples with image, depth, normals and mask: ten small files."""
    return write_tiny_dataset(tmp_path_factory.mktemp("pristine") / "ds", n=2, size=(4, 4))


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


CORRUPTIONS = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 1 << 16)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), min_size=1, max_size=4)),
    st.tuples(st.just("zero"), st.integers(0, 1 << 16), st.integers(1, 64)),
    st.tuples(st.just("splice"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=32)),
    st.tuples(st.just("random"), st.binary(max_size=400)),
    st.tuples(st.just("delete")),
)


def corrupt(path: Path, how: tuple) -> None:
    """Apply one corruption; positions wrap around the file's length."""
    kind, data = how[0], bytearray(path.read_bytes())
    n = max(len(data), 1)
    if kind == "delete":
        path.unlink()
        return
    if kind == "truncate":
        data = data[: how[1] % n]
    elif kind == "flip":
        for pos, mask in how[1]:
            if data:
                data[pos % n] ^= mask
    elif kind == "zero":
        start = how[1] % n
        data[start : start + how[2]] = bytes(len(data[start : start + how[2]]))
    elif kind == "splice":
        start = how[1] % n
        data[start : start + len(how[2])] = how[2]
    else:
        data = bytearray(how[1])
    path.write_bytes(bytes(data))


@contextlib.contextmanager
def damaged_copy(pristine: Path, which: int, how: tuple):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        shutil.copytree(pristine, root)
        files = _files(root)
        corrupt(root / files[which % len(files)], how)
        yield root


@settings(max_examples=250, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, 9), how=CORRUPTIONS)
def test_validate_either_succeeds_or_names_the_damage(pristine: Path, which: int, how: tuple) -> None:
    with damaged_copy(pristine, which, how) as root:
        try:
            report = validate_dataset(root)
        except SimrealError as exc:
            assert exc.path is not None, str(exc)
            assert exc.path == root or root in exc.path.parents, str(exc)  # names a file of this dataset
        else:
            assert report.n_samples == 2


def _validate_in_process(root: Path) -> tuple[int, str]:
    """``simreal dataset validate ROOT`` through the console entry point; (exit code, stdout + stderr).

    An exception other than SimrealError escapes main() and fails the test: that is a traceback."""
    from simreal.cli import main

    buf = io.StringIO()
    with mock.patch.object(sys, "argv", ["simreal", "dataset", "validate", str(root)]), \
            contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), pytest.raises(SystemExit) as exc:
        main()
    return (0 if exc.value.code is None else int(exc.value.code)), buf.getvalue()


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, 9), how=CORRUPTIONS)
def test_cli_validate_exits_0_or_2_without_traceback(pristine: Path, which: int, how: tuple) -> None:
    with damaged_copy(pristine, which, how) as root:
        code, output = _validate_in_process(root)
    assert code in (0, 2), output
    assert "Traceback" not in output
    if code == 2:
        assert output.startswith("error: ") and output.count("\n") == 1, output


def test_cli_non_utf8_samples_in_a_real_process(tiny_dataset: Path) -> None:
    """The failure first seen in the field: non-UTF-8 bytes in samples.jsonl gave a UnicodeDecodeError."""
    path = tiny_dataset / "samples.jsonl"
    path.write_bytes(path.read_bytes()[:30] + b"\x9c\xff" + path.read_bytes()[32:])
    done = run_simreal("dataset", "validate", str(tiny_dataset))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "samples.jsonl: line 1: not UTF-8 text" in done.stderr
