"""The dataset folder contract: writer, reader, validator, torch view, contact sheet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from simreal_testing import run_simreal as run_cli
from simreal_testing import write_tiny_dataset
from simreal.data.format import DatasetInfo, SampleRecord
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.data.torch_dataset import SimrealDataset, collate_samples, resize_label
from simreal.data.writer import DatasetWriter, partial_dir
from simreal.errors import SimrealError


def test_round_trip(tiny_dataset: Path) -> None:
    reader = DatasetReader(tiny_dataset)
    assert len(reader) == 3 and reader.ids == ["000000", "000001", "000002"]
    assert reader.info.labels["mask"].classes == {0: "background", 1: "polyp"}
    assert reader.read(1, "depth").dtype == np.float32
    assert reader.records[1].camera.fx == 4.0 and reader.records[1].group == "seq1"
    report = validate_dataset(tiny_dataset)
    assert report.n_samples == 3 and report.n_files == 12
    assert not partial_dir(tiny_dataset).exists()


def test_same_content_same_bytes(tmp_path: Path) -> None:
    a = write_tiny_dataset(tmp_path / "a", seed=1)
    b = write_tiny_dataset(tmp_path / "b", seed=1)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_resume_keeps_finished_samples_and_refuses_other_settings(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    info = DatasetInfo(modality="image", domain="real", image_size=(4, 4), files=("image",), generator={"k": 1})
    w = DatasetWriter(out, info)
    w.write(SampleRecord(id="a", files={}), {"image": np.zeros((4, 4, 3), np.uint8)})
    w.close()  # the run is interrupted
    # a new writer with the same settings sees the finished sample
    again = DatasetWriter(out, info)
    assert again.done_ids == {"a"}
    again.close()
    other = DatasetInfo(**{**info.__dict__, "generator": {"k": 2}})
    with pytest.raises(SimrealError, match="different settings"):
        DatasetWriter(out, other)
    incomplete = DatasetWriter(out, info)
    with pytest.raises(SimrealError, match="missing"):
        incomplete.finish(expected_ids=["a", "b"])
    incomplete.close()
    DatasetWriter(out, info).finish(expected_ids=["a"])
    assert DatasetReader(out).ids == ["a"]
    with pytest.raises(SimrealError, match="already exists"):
        DatasetWriter(out, info)


def test_two_writers_never_share_a_dataset(tmp_path: Path) -> None:
    info = DatasetInfo(modality="image", domain="real", image_size=(4, 4), files=("image",))
    first = DatasetWriter(tmp_path / "ds", info)
    with pytest.raises(SimrealError, match="another run is writing"):
        DatasetWriter(tmp_path / "ds", info)
    first.write(SampleRecord(id="a", files={}), {"image": np.zeros((4, 4, 3), np.uint8)})
    first.finish()
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["dataset.json", "image", "samples.jsonl"]


def test_validate_names_the_bad_file(tiny_dataset: Path) -> None:
    png = tiny_dataset / "image" / "000001.png"
    png.write_bytes(png.read_bytes()[:40])  # truncated
    with pytest.raises(SimrealError, match="000001.png"):
        validate_dataset(tiny_dataset)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: tifffile.imwrite(d / "depth/000002.tiff", np.full((8, 8), np.nan, np.float32)), "NaN"),
        (lambda d: tifffile.imwrite(d / "depth/000002.tiff", np.ones((4, 8), np.float32)), "does not match"),
        (lambda d: (d / "depth/000002.tiff").write_bytes(b"II*\x00garbage"), "cannot decode TIFF"),
        (lambda d: tifffile.imwrite(d / "normals/000002.tiff", np.ones((8, 8, 3), np.float32)), "unit length"),
        (lambda d: (d / "mask/000002.png").unlink(), "not found"),
    ],
)
def test_validate_detects(tiny_dataset: Path, damage, message: str) -> None:
    damage(tiny_dataset)
    with pytest.raises(SimrealError, match=message):
        validate_dataset(tiny_dataset)


def test_unknown_mask_value(tiny_dataset: Path) -> None:
    from simreal.data.images import write_png

    write_png(tiny_dataset / "mask/000000.png", np.full((8, 8), 7, np.uint8))
    with pytest.raises(SimrealError, match=r"label values \[7\]"):
        validate_dataset(tiny_dataset)


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(SimrealError, match="not a simreal dataset"):
        DatasetReader(tmp_path)
    with pytest.raises(SimrealError, match="not found"):
        DatasetReader(tmp_path / "nope")
    (tmp_path / "dataset.json").write_text("{broken")
    with pytest.raises(SimrealError, match="dataset.json: not valid JSON"):
        DatasetReader(tmp_path)


def test_count_mismatch(tiny_dataset: Path) -> None:
    info = json.loads((tiny_dataset / "dataset.json").read_text())
    info["n_samples"] = 5
    (tiny_dataset / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(SimrealError, match="says 5 samples"):
        DatasetReader(tiny_dataset)


def test_torch_dataset_types_and_resize(tiny_dataset: Path) -> None:
    ds = SimrealDataset(tiny_dataset, kinds=("depth", "mask"), size=(4, 4))
    s = ds[0]
    assert s.image.shape == (3, 4, 4) and s.image.dtype == torch.float32 and float(s.image.max()) <= 1
    assert s.depth.shape == (1, 4, 4) and s.mask.shape == (4, 4) and s.mask.dtype == torch.int64
    assert set(s.mask.unique().tolist()) <= {0, 1}  # nearest neighbour keeps class ids
    assert s.camera.width == 4 and s.camera.fx == pytest.approx(2.0)
    batch = collate_samples([ds[0], ds[1]])
    assert batch.image.shape == (2, 3, 4, 4) and batch.ids == ["000000", "000001"]
    with pytest.raises(SimrealError, match="no 'instance' labels"):
        SimrealDataset(tiny_dataset, kinds=("instance",))


def test_scale_camera_keeps_a_centred_principal_point_centred() -> None:
    from simreal.data.format import Camera
    from simreal.data.torch_dataset import scale_camera

    cam = Camera(width=8, height=6, fx=4.0, fy=4.0, cx=3.5, cy=2.5)  # OpenCV: centre at ((W-1)/2, (H-1)/2)
    small = scale_camera(cam, (3, 4))
    assert (small.width, small.height, small.fx, small.fy) == (4, 3, 2.0, 2.0)
    assert (small.cx, small.cy) == (1.5, 1.0)  # (4 - 1) / 2, (3 - 1) / 2
    # a point keeps its place in the image: the left edge of pixel 0 (u = -0.5) stays the left edge
    assert scale_camera(Camera(width=8, height=6, fx=4.0, fy=4.0, cx=-0.5, cy=-0.5), (3, 4)).cx == -0.5
    assert scale_camera(cam, (6, 8)) is cam


def test_resize_label_never_blends() -> None:
    depth = torch.tensor([[0.0, 10.0], [10.0, 0.0]])
    out = resize_label(depth, (5, 5))
    assert set(out.unique().tolist()) == {0.0, 10.0}


def test_cli_validate_and_show(tiny_dataset: Path, tmp_path: Path) -> None:
    ok = run_cli("dataset", "validate", str(tiny_dataset))
    assert ok.returncode == 0 and "3 samples" in ok.stdout
    sheet = tmp_path / "sheet.png"
    shown = run_cli("dataset", "show", str(tiny_dataset), "--out", str(sheet), "--n", "3")
    assert shown.returncode == 0, shown.stderr
    from PIL import Image

    assert Image.open(sheet).size[0] > 100
    (tiny_dataset / "image/000000.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    bad = run_cli("dataset", "validate", str(tiny_dataset))
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error:") and "000000.png" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert run_cli("dataset", "validate", str(tmp_path / "missing")).returncode == 2


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (5, 7, 3), (33, 64, 3), (64, 33)])
def test_png_encoder_is_lossless_and_standard(tmp_path, shape):
    """simreal encodes PNGs itself (Sub filter, zlib run-length): Pillow and OpenCV decode exactly the array."""
    from PIL import Image

    from simreal.data.images import read_gray, read_rgb, write_png

    a = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    a[: shape[0] // 2] = 3  # runs, as in label maps
    write_png(tmp_path / "a.png", a)
    img = Image.open(tmp_path / "a.png")
    assert img.mode == ("RGB" if a.ndim == 3 else "L") and np.array_equal(np.asarray(img), a)
    assert np.array_equal(read_rgb(tmp_path / "a.png") if a.ndim == 3 else read_gray(tmp_path / "a.png"), a)
    try:
        import cv2
    except ImportError:  # pragma: no cover
        return
    back = cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(back[..., ::-1] if a.ndim == 3 else back, a)
